"""Scenarios: what-if index paths, from a grid, history, a file or a seeded random law.

A scenario is a **path**: a list of steps, each a mapping asset -> the
cumulative relative move of its index from the starting state (``-0.3`` =
30% below where the state was). An asset a step does not name keeps its
previous move; an asset no step names never moves. A one-step path is a
plain shock. Steps are ``step_s`` seconds of venue time apart (funding
settles on its interval boundaries as it would live).

Sources, in the order :func:`number` gives them indices:

- a scenario file (TOML, :func:`load_file`): ``[[scenario]]`` tables with a
  ``name`` and either ``moves = { BTC = -0.3 }`` or ``path = [{ BTC = -0.1 },
  { BTC = -0.3 }]``, optional ``step_s``;
- a grid (:func:`grid`): the cross product of per-asset ranges
  ``BTC=-0.5:0.5:0.1``;
- historical moves (:func:`historical`): the approximate crash paths shipped
  in ``historical.toml``;
- Monte-Carlo (:func:`monte_carlo`): correlated geometric Brownian motion,
  annual volatilities from the config's ``[server.feed] volatility``;
- bootstrap (:func:`bootstrap`): steps resampled, whole (all assets of one
  historical step together, so their co-movement is kept), from the
  historical file's step returns.

Random sources take a seed and use one ``numpy.random.Generator``; the
scenarios are generated once in the calling process and shipped as data, so
every executor runs exactly the same floats.
"""

from __future__ import annotations

import itertools
import math
import tomllib
from importlib import resources
from pathlib import Path

import msgspec
import numpy as np

MAX_STEPS = 10_000
KINDS = ("file", "grid", "historical", "monte_carlo", "bootstrap")


class Scenario(msgspec.Struct, frozen=True, kw_only=True):
    index: int
    name: str
    kind: str
    #: per step: asset -> cumulative relative move from the starting state
    path: list[dict[str, float]]
    step_s: int = 3600


def _check_path(name: str, path: object, assets: set[str], where: str) -> list[dict[str, float]]:
    """The path as clean floats, or ValueError naming the scenario and step."""
    if not isinstance(path, list) or not path:
        raise ValueError(f"{where}scenario {name!r}: path must be a non-empty list of {{asset = move}} tables")
    if len(path) > MAX_STEPS:
        raise ValueError(f"{where}scenario {name!r}: {len(path)} steps, at most {MAX_STEPS}")
    out = []
    for n, step in enumerate(path, 1):
        if not isinstance(step, dict) or not step:
            raise ValueError(f"{where}scenario {name!r} step {n}: expected a table like {{ BTC = -0.2 }}, got {step!r}")
        clean = {}
        for asset, move in sorted(step.items()):
            if asset not in assets:
                raise ValueError(f"{where}scenario {name!r} step {n}: unknown asset {asset!r}; "
                                 f"the venue's priced assets are {', '.join(sorted(assets))}")
            if isinstance(move, bool) or not isinstance(move, (int, float)) or not math.isfinite(move):
                raise ValueError(f"{where}scenario {name!r} step {n}: move of {asset} must be a number, got {move!r}")
            if move <= -1.0 or move > 100.0:
                raise ValueError(f"{where}scenario {name!r} step {n}: move of {asset} is {move:+.0%}; "
                                 "a move must be above -100% (a price stays positive) and at most +10000%")
            clean[asset] = float(move)
        out.append(clean)
    return out


def make(index: int, name: str, kind: str, path, assets: set[str], step_s: int = 3600, where: str = "") -> Scenario:
    if isinstance(step_s, bool) or not isinstance(step_s, int) or not 1 <= step_s <= 86_400 * 30:
        raise ValueError(f"{where}scenario {name!r}: step_s must be whole seconds in 1..2592000, got {step_s!r}")
    return Scenario(index=index, name=name, kind=kind, path=_check_path(name, path, assets, where), step_s=step_s)


def load_file(path: str | Path, assets: set[str]) -> list[Scenario]:
    """Scenarios from a TOML file (see the module docstring). Unknown keys,
    unknown assets and malformed paths are refused with the scenario named."""
    path = Path(path)
    try:
        data = tomllib.loads(path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise ValueError(f"scenario file {path} does not exist") from None
    except tomllib.TOMLDecodeError as exc:
        raise ValueError(f"scenario file {path} is not valid TOML: {exc}") from None
    where = f"{path}: "
    extra = set(data) - {"scenario"}
    if extra:
        raise ValueError(f"{where}unknown top-level key(s) {sorted(extra)}; expected [[scenario]] tables")
    tables = data.get("scenario")
    if not isinstance(tables, list) or not tables:
        raise ValueError(f"{where}no [[scenario]] tables")
    out = []
    for n, t in enumerate(tables, 1):
        name = t.get("name", f"#{n}")
        unknown = set(t) - {"name", "moves", "path", "step_s"}
        if unknown:
            raise ValueError(f"{where}scenario {name!r}: unknown key(s) {sorted(unknown)} "
                             "(allowed: name, moves, path, step_s)")
        if ("moves" in t) == ("path" in t):
            raise ValueError(f"{where}scenario {name!r}: give exactly one of moves = {{...}} or path = [...]")
        steps = [t["moves"]] if "moves" in t else t["path"]
        out.append(make(0, str(name), "file", steps, assets, t.get("step_s", 3600), where))
    return out


def parse_grid(specs: list[str], assets: set[str]) -> list[tuple[str, list[float]]]:
    """``["BTC=-0.5:0.5:0.1", "ETH=-0.3:0:0.15"]`` -> per-asset move lists."""
    axes = []
    for spec in specs:
        asset, sep, rng = spec.partition("=")
        parts = rng.split(":")
        if not sep or len(parts) != 3:
            raise ValueError(f"--grid {spec!r}: expected ASSET=FROM:TO:STEP, e.g. BTC=-0.5:0.5:0.1")
        if asset not in assets:
            raise ValueError(f"--grid {spec!r}: unknown asset {asset!r}; the venue's priced assets are "
                             f"{', '.join(sorted(assets))}")
        try:
            lo, hi, step = (float(p) for p in parts)
        except ValueError:
            raise ValueError(f"--grid {spec!r}: FROM, TO and STEP must be numbers") from None
        if step <= 0 or hi < lo or lo <= -1.0:
            raise ValueError(f"--grid {spec!r}: need STEP > 0, TO >= FROM and FROM > -1")
        n = int(math.floor((hi - lo) / step + 1e-9)) + 1
        if n > 1000:
            raise ValueError(f"--grid {spec!r}: {n} points on one axis, at most 1000")
        # rounded so -0.5 + 5*0.1 is 0.0, not 1e-17: names and files stay clean
        axes.append((asset, [round(lo + k * step, 10) for k in range(n)]))
    return axes


def grid(axes: list[tuple[str, list[float]]]) -> list[Scenario]:
    """One one-step scenario per point of the cross product of the axes."""
    out = []
    names = [a for a, _ in axes]
    for point in itertools.product(*(values for _, values in axes)):
        moves = dict(zip(names, point))
        label = " ".join(f"{a} {m:+.0%}" for a, m in moves.items())
        out.append(Scenario(index=0, name=label, kind="grid", path=[moves]))
    return out


def historical_moves() -> dict:
    """The shipped historical file, parsed: name -> table."""
    text = resources.files("exchange_sim.stress").joinpath("historical.toml").read_text(encoding="utf-8")
    return {m["name"]: m for m in tomllib.loads(text)["move"]}


def _historical_path(m: dict) -> list[dict[str, float]]:
    series = m["moves"]
    length = len(next(iter(series.values())))
    return [{a: float(v[k]) for a, v in sorted(series.items())} for k in range(length)]


def historical(names: list[str] | None, assets: set[str]) -> list[Scenario]:
    """The named historical paths (all when ``names`` is None). Assets the
    venue does not price are refused, never dropped silently."""
    moves = historical_moves()
    chosen = list(moves) if names is None else names
    out = []
    for name in chosen:
        if name not in moves:
            raise ValueError(f"unknown historical move {name!r}; the shipped ones are {', '.join(moves)}")
        m = moves[name]
        out.append(make(0, name, "historical", _historical_path(m), assets, int(m["step_hours"] * 3600),
                        "historical.toml: "))
    return out


def monte_carlo(n: int, assets: list[str], vols: dict[str, float], steps: int, step_s: int, seed: int,
                corr: float = 0.8, vol_scale: float = 1.0) -> list[Scenario]:
    """``n`` correlated GBM paths: per step, log-return
    ``-σ²dt/2 + σ√dt·z`` with ``z`` drawn with pairwise correlation ``corr``
    (Cholesky of the equicorrelation matrix), ``σ`` = the config's annual
    volatility × ``vol_scale``, ``dt`` = ``step_s`` in years."""
    if not assets:
        raise ValueError("--monte-carlo: no asset to move (the config's [server.feed] volatility names none "
                         "that the venue prices)")
    if not -1.0 / max(1, len(assets) - 1) < corr < 1.0 and len(assets) > 1:
        raise ValueError(f"--corr {corr}: must be in ({-1.0 / (len(assets) - 1):.3g}, 1) for {len(assets)} assets")
    _check_steps(steps, step_s)
    if not 0.0 <= vol_scale <= 100.0:
        raise ValueError(f"--vol-scale {vol_scale}: must be in 0..100")
    rng = np.random.default_rng(seed)
    k = len(assets)
    cov = np.full((k, k), corr) + (1.0 - corr) * np.eye(k)
    chol = np.linalg.cholesky(cov)
    sigma = np.array([vols[a] * vol_scale for a in assets])
    dt = step_s / (365.0 * 86_400)
    z = rng.standard_normal((n, steps, k)) @ chol.T
    logret = -0.5 * sigma**2 * dt + sigma * math.sqrt(dt) * z
    moves = np.expm1(np.cumsum(logret, axis=1))
    return [_from_array(f"gbm #{i}", "monte_carlo", moves[i], assets, step_s) for i in range(n)]


def bootstrap(n: int, steps: int, seed: int, assets: set[str], step_s: int = 3600) -> list[Scenario]:
    """``n`` paths of ``steps`` steps, each step a whole historical step's
    log-returns (every asset of that step together) drawn with replacement."""
    _check_steps(steps, step_s)
    hist = historical_moves()
    names = sorted(set.intersection(*(set(m["moves"]) for m in hist.values())) & assets)
    if not names:
        raise ValueError("--bootstrap: the historical moves share no asset the venue prices")
    rows = []
    for m in hist.values():
        levels = np.log1p(np.array([[0.0] + list(m["moves"][a]) for a in names]).T)
        rows.append(np.diff(levels, axis=0))
    pool = np.vstack(rows)
    rng = np.random.default_rng(seed)
    picks = rng.integers(0, len(pool), size=(n, steps))
    moves = np.expm1(np.cumsum(pool[picks], axis=1))
    return [_from_array(f"bootstrap #{i}", "bootstrap", moves[i], names, step_s) for i in range(n)]


def _check_steps(steps: int, step_s: int) -> None:
    if not 1 <= steps <= MAX_STEPS:
        raise ValueError(f"--steps {steps}: must be in 1..{MAX_STEPS}")
    if not 1 <= step_s <= 86_400 * 30:
        raise ValueError(f"--step-s {step_s}: must be whole seconds in 1..2592000")


def _from_array(name: str, kind: str, moves: np.ndarray, assets: list[str], step_s: int) -> Scenario:
    # 12 significant digits: the path is data from here on, equal on every executor
    path = [{a: float(f"{moves[s, j]:.12g}") for j, a in enumerate(assets)} for s in range(moves.shape[0])]
    return Scenario(index=0, name=name, kind=kind, path=path, step_s=step_s)


def number(groups: list[list[Scenario]]) -> list[Scenario]:
    """All scenarios in one list, indexed 0.. in order: the index is the key
    every result and the report are sorted by."""
    flat = [s for g in groups for s in g]
    return [msgspec.structs.replace(s, index=i) for i, s in enumerate(flat)]


def shock_size(sc: Scenario) -> float:
    """The deepest fall of any asset along the path, or its largest rise if
    nothing fell: the x axis of "fund drawdown vs shock size"."""
    values = [m for step in sc.path for m in step.values()]
    low = min(values)
    return low if low < 0 else max(values)
