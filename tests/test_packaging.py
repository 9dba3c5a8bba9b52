"""What ``pip install .`` ships: every package and data file the code needs.

A non-editable install once lacked ``exchange_sim.core`` (the package list
in pyproject.toml was written by hand), so ``exchange-sim demo`` failed on a
fresh machine while the editable test install passed.
"""

from __future__ import annotations

import tomllib
from pathlib import Path

from setuptools import find_packages

ROOT = Path(__file__).resolve().parent.parent
ROOTS = ("exchange_sim", "protocol", "clients")


def _pyproject() -> dict:
    return tomllib.loads((ROOT / "pyproject.toml").read_text(encoding="utf-8"))


def test_every_package_is_shipped():
    tool = _pyproject()["tool"]["setuptools"]
    assert "packages" not in tool or "find" in tool["packages"], "list packages by discovery, not by hand"
    shipped = set(find_packages(where=str(ROOT), include=tool["packages"]["find"]["include"]))
    on_disk = {str(p.parent.relative_to(ROOT)).replace("/", ".")
               for r in ROOTS for p in (ROOT / r).rglob("__init__.py")}
    assert on_disk <= shipped, f"not shipped: {sorted(on_disk - shipped)}"


def test_every_data_file_the_code_reads_is_shipped():
    data = _pyproject()["tool"]["setuptools"]["package-data"]
    for pkg, patterns in data.items():
        base = ROOT / pkg.replace(".", "/")
        for pattern in patterns:
            assert list(base.glob(pattern)), f"{pkg}: {pattern} matches nothing"
    dirs = {ROOT / k.replace(".", "/"): k for k in data}
    for toml in (ROOT / "exchange_sim").rglob("*.toml"):  # configs, lessons, historical moves
        owner = next((d for d in toml.parents if d in dirs), None)
        assert owner is not None, f"{toml.relative_to(ROOT)} is in no package with package data"
        rel = toml.relative_to(owner)
        assert any(rel.match(pat) for pat in data[dirs[owner]]), f"{toml.relative_to(ROOT)} is not package data"
