"""The teaching pages in docs/ run: every ```python block of a page is
executed in order in one namespace, so their asserts check the numbers the
prose quotes against the code that produces them.

A page also shows what its blocks print. A block's output sits right after
it, marked so the reader and this test know it was generated::

    ```python
    print(1 + 1)
    ```

    <!-- output -->
    ```text
    2
    ```

On a page that uses the marker, every block that prints must be followed by
its output block, and the output block must be exactly what the block prints
now: the page cannot drift. ``python -m tests.test_docs --write [PAGE ...]``
runs the pages (by default every page that uses the marker) and writes the
output blocks in place; a page joins by being named once on that command
line. Output is compared as text, so it must be deterministic: no wall-clock
times, ports or temporary paths in what a block prints.
"""

from __future__ import annotations

import contextlib
import io
import re
import sys
from pathlib import Path

import pytest

DOCS = Path(__file__).resolve().parent.parent / "docs"
MARKER = "<!-- output -->"
BLOCK = re.compile(r"^```python\n(.*?)^```", re.S | re.M)
# a python block, then (after blank lines) its marked output block, if any
CELL = re.compile(r"^```python\n(?P<code>.*?)^```(?:\n|\Z)(?P<out>\n*" + re.escape(MARKER)
                  + r"\n```text\n(?P<text>.*?)^```\n)?", re.S | re.M)
PAGES = sorted(p for p in DOCS.glob("*.md") if BLOCK.search(p.read_text(encoding="utf-8")))


def uses_outputs(text: str) -> bool:
    return MARKER in text


def run_page(name: str, text: str) -> list[tuple[re.Match, str]]:
    """Execute the page's python blocks in order in one namespace; return each
    block's match and what it printed."""
    namespace: dict = {"__name__": f"docs.{Path(name).stem}"}
    cells = []
    for n, cell in enumerate(CELL.finditer(text), 1):
        buf = io.StringIO()
        try:
            with contextlib.redirect_stdout(buf):
                exec(compile(cell["code"], f"{name}[block {n}]", "exec"), namespace)
        except Exception as exc:  # name the block in the failure
            raise AssertionError(f"{name} block {n} failed: {exc!r}\n{cell['code']}") from exc
        cells.append((cell, buf.getvalue()))
    return cells


def output_block(printed: str) -> str:
    return f"\n{MARKER}\n```text\n{printed.rstrip()}\n```\n" if printed.strip() else ""


def with_outputs(text: str, cells: list[tuple[re.Match, str]]) -> str:
    """The page with each block's output block replaced by what it printed."""
    out, pos = [], 0
    for cell, printed in cells:
        code_end = cell.start("out") if cell["out"] is not None else cell.end()
        out.append(text[pos:code_end] + ("" if text[pos:code_end].endswith("\n") else "\n"))
        out.append(output_block(printed))
        pos = cell.end()
    out.append(text[pos:])
    return "".join(out)


def test_there_are_executable_pages():
    assert PAGES, "docs/ should hold pages with python blocks"


@pytest.mark.parametrize("page", PAGES, ids=lambda p: p.name)
def test_page_code_blocks_run(page):
    text = page.read_text(encoding="utf-8")
    cells = run_page(page.name, text)
    if not uses_outputs(text):
        return
    for n, (cell, printed) in enumerate(cells, 1):
        shown = cell["text"]
        if printed.strip() and shown is None:
            raise AssertionError(f"{page.name} block {n} prints but shows no output block; "
                                 f"run: python -m tests.test_docs --write docs/{page.name}")
        if shown is not None and shown.rstrip() != printed.rstrip():
            raise AssertionError(f"{page.name} block {n}: the page shows\n{shown}\nbut the code prints\n{printed}"
                                 f"run: python -m tests.test_docs --write docs/{page.name}")


def test_output_blocks_are_checked(tmp_path):
    """The checker itself: a stale output block fails, --write repairs it."""
    page = tmp_path / "demo.md"
    stale = f"```python\nx = 6 * 7\nprint(x)\n```\n\n{MARKER}\n```text\n41\n```\n\nafter\n\n```python\nassert x == 42\n```\n"
    cells = run_page(page.name, stale)
    assert [p for _, p in cells] == ["42\n", ""]
    fixed = with_outputs(stale, cells)
    assert fixed == stale.replace("\n41\n", "\n42\n")
    assert with_outputs(fixed, run_page(page.name, fixed)) == fixed  # idempotent
    fresh = "```python\nprint('hi')\n```\ntext\n"
    assert with_outputs(fresh, run_page(page.name, fresh)) == f"```python\nprint('hi')\n```\n\n{MARKER}\n```text\nhi\n```\ntext\n"


def main(argv: list[str]) -> int:
    if not argv or argv[0] != "--write":
        print("usage: python -m tests.test_docs --write [docs/PAGE.md ...]  (default: pages with output blocks)",
              file=sys.stderr)
        return 2
    pages = [Path(a) for a in argv[1:]] or [p for p in PAGES if uses_outputs(p.read_text(encoding="utf-8"))]
    for page in pages:
        text = page.read_text(encoding="utf-8")
        new = with_outputs(text, run_page(page.name, text))
        if new != text:
            page.write_text(new, encoding="utf-8")
        print(f"{page}: {'updated' if new != text else 'unchanged'}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main(sys.argv[1:]))
