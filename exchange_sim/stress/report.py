"""The stress report: a JSON document and a self-contained HTML page.

:func:`build` turns the per-scenario results into one dict (sorted keys,
money rounded to the cent, ratios to 6 decimals): the distributions
(quantiles p50 / p90 / p99 / max and the mean) of the figures that matter
to a risk engineer, the scenarios that exhaust the insurance fund (with
their ADL), how far the first-order answer is from the full cascade, the
worst scenarios, and every scenario's result. Nothing in it depends on which
executor ran the scenarios or how long they took, so the same state,
scenarios and seed give the same bytes.

:func:`html` draws it with inline SVG and CSS only (no script, no external
file): fund drawdown vs shock size, a histogram of accounts liquidated, and
first-order vs cascade liquidations.
"""

from __future__ import annotations

import html as html_mod
import json

import msgspec
import numpy as np

from exchange_sim.stress.run import ScenarioResult

FIGURES = ("accounts_liquidated", "notional_closed", "bad_debt", "fund_drawdown", "adl_count", "cover1", "cover2",
           "clear_s", "first_order_below_mm")
QUANTILES = (("p50", 0.5), ("p90", 0.9), ("p99", 0.99), ("max", 1.0))


def _value(r: ScenarioResult, name: str) -> float:
    v = getattr(r, name)
    return float(len(v)) if isinstance(v, list) else float(v)


def distribution(values: list[float]) -> dict[str, float]:
    if not values:
        return {}
    arr = np.array(values, dtype=np.float64)
    out = {k: round(float(np.quantile(arr, q)), 2) for k, q in QUANTILES}
    out["mean"] = round(float(arr.mean()), 2)
    return out


def build(results: list[ScenarioResult], meta: dict) -> dict:
    """The report as a JSON-ready dict. ``meta``: what the run was over
    (source, accounts, seed, ...), copied in as given."""
    results = sorted(results, key=lambda r: r.index)
    exhausting = [r for r in results if r.fund_exhausted]
    diffs = [len(r.accounts_liquidated) - r.first_order_below_mm for r in results]
    worst = sorted(results, key=lambda r: (-r.fund_drawdown, -len(r.accounts_liquidated), r.index))[:10]
    return {
        "run": meta,
        "scenarios_run": len(results),
        "distributions": {name: distribution([_value(r, name) for r in results]) for name in FIGURES},
        "fund": {
            "start": results[0].fund_start if results else 0.0,
            "exhausted_in": len(exhausting),
            "exhausting_scenarios": [
                {"index": r.index, "name": r.name, "shock": r.shock, "fund_min": r.fund_min, "adl_count": r.adl_count,
                 "adl_accounts": r.adl_accounts, "bad_debt": r.bad_debt}
                for r in exhausting
            ],
        },
        "first_order_vs_cascade": {
            "what": "accounts liquidated by the full cascade minus accounts below MM in the first-order sweep",
            "same": sum(1 for d in diffs if d == 0),
            "cascade_more": sum(1 for d in diffs if d > 0),
            "first_order_more": sum(1 for d in diffs if d < 0),
            "mean_abs_difference": round(float(np.mean(np.abs(diffs))), 6) if diffs else 0.0,
            "max_abs_difference": int(max((abs(d) for d in diffs), default=0)),
        },
        "worst_by_fund_drawdown": [{"index": r.index, "name": r.name, "fund_drawdown": r.fund_drawdown,
                                    "accounts_liquidated": len(r.accounts_liquidated), "adl_count": r.adl_count}
                                   for r in worst],
        "scenarios": [msgspec.to_builtins(r) for r in results],
    }


def to_json(report: dict) -> str:
    return json.dumps(report, indent=1, sort_keys=True) + "\n"


# ------------------------------------------------------------------- HTML

W, H, PAD = 560, 300, 48


def _axis_ticks(lo: float, hi: float, n: int = 5) -> list[float]:
    if hi <= lo:
        hi = lo + 1.0
    return [lo + (hi - lo) * k / (n - 1) for k in range(n)]


def _fmt(x: float, pct: bool = False) -> str:
    if pct:
        return f"{x:+.0%}"
    a = abs(x)
    if a >= 1e6:
        return f"{x / 1e6:.1f}M"
    if a >= 1e3:
        return f"{x / 1e3:.1f}k"
    return f"{x:.0f}" if a >= 10 or x == 0 else f"{x:.2g}"


def _frame(title: str, xs: list[float], ys: list[float], xpct: bool, xlabel: str, ylabel: str,
           body: str) -> str:
    xt = _axis_ticks(min(xs, default=0.0), max(xs, default=1.0))
    yt = _axis_ticks(0.0, max(ys, default=1.0) or 1.0)
    parts = [f'<svg viewBox="0 0 {W} {H}" width="{W}" height="{H}" role="img" aria-label="{html_mod.escape(title)}">',
             f'<rect x="{PAD}" y="10" width="{W - PAD - 10}" height="{H - PAD - 10}" class="plot"/>']
    for k, v in enumerate(xt):
        x = _sx(v, xt)
        anchor = "end" if k == len(xt) - 1 else "middle"  # the last label stays inside the frame
        parts.append(f'<text x="{x:.1f}" y="{H - PAD + 16}" class="tick" text-anchor="{anchor}">{_fmt(v, xpct)}</text>')
    for v in yt:
        y = _sy(v, yt)
        parts.append(f'<line x1="{PAD}" x2="{W - 10}" y1="{y:.1f}" y2="{y:.1f}" class="grid"/>'
                     f'<text x="{PAD - 4}" y="{y + 4:.1f}" class="tick" text-anchor="end">{_fmt(v)}</text>')
    parts.append(f'<text x="{(W + PAD) / 2}" y="{H - 8}" text-anchor="middle">{html_mod.escape(xlabel)}</text>')
    parts.append(f'<text x="12" y="{H / 2}" transform="rotate(-90 12 {H / 2})" text-anchor="middle">'
                 f'{html_mod.escape(ylabel)}</text>')
    parts.append(body)
    parts.append("</svg>")
    return f"<figure><figcaption>{html_mod.escape(title)}</figcaption>{''.join(parts)}</figure>"


def _sx(v: float, ticks: list[float]) -> float:
    lo, hi = ticks[0], ticks[-1]
    return PAD + (v - lo) / ((hi - lo) or 1.0) * (W - PAD - 10)


def _sy(v: float, ticks: list[float]) -> float:
    lo, hi = ticks[0], ticks[-1]
    return H - PAD - (v - lo) / ((hi - lo) or 1.0) * (H - PAD - 20)


def _scatter(title: str, pts: list[tuple[float, float, bool, str]], xpct: bool, xlabel: str, ylabel: str,
             diagonal: bool = False) -> str:
    xs = [p[0] for p in pts] or [0.0]
    ys = [p[1] for p in pts] or [0.0]
    if diagonal:
        top = max(max(xs), max(ys))
        xs, ys = xs + [0.0, top], ys + [0.0, top]
    xt = _axis_ticks(min(xs), max(xs))
    yt = _axis_ticks(0.0, max(ys) or 1.0)
    dots = []
    if diagonal:
        dots.append(f'<line x1="{_sx(0, xt):.1f}" y1="{_sy(0, yt):.1f}" x2="{_sx(xt[-1], xt):.1f}" '
                    f'y2="{_sy(min(xt[-1], yt[-1]), yt):.1f}" class="diag"/>')
    for x, y, hot, label in pts:
        dots.append(f'<circle cx="{_sx(x, xt):.1f}" cy="{_sy(y, yt):.1f}" r="3.5" class="{"hot" if hot else "dot"}">'
                    f"<title>{html_mod.escape(label)}</title></circle>")
    return _frame(title, xs, ys, xpct, xlabel, ylabel, "".join(dots))


def _histogram(title: str, values: list[int], xlabel: str) -> str:
    if not values:
        values = [0]
    lo, hi = min(values), max(values)
    nb = min(20, hi - lo + 1)
    width = (hi - lo + 1) / nb
    counts = [0] * nb
    for v in values:
        counts[min(nb - 1, int((v - lo) / width))] += 1
    xs = [lo, hi + 1]
    ys = [0.0, float(max(counts))]
    xt = _axis_ticks(lo, hi + 1)
    yt = _axis_ticks(0.0, max(counts))
    bars = []
    for k, c in enumerate(counts):
        x0, x1 = _sx(lo + k * width, xt), _sx(lo + (k + 1) * width, xt)
        y = _sy(c, yt)
        bars.append(f'<rect x="{x0 + 1:.1f}" y="{y:.1f}" width="{max(1.0, x1 - x0 - 2):.1f}" '
                    f'height="{_sy(0, yt) - y:.1f}" class="bar"><title>{c} scenarios</title></rect>')
    return _frame(title, xs, ys, False, xlabel, "scenarios", "".join(bars))


def _table(rows: list[list[str]], head: list[str]) -> str:
    th = "".join(f"<th>{html_mod.escape(h)}</th>" for h in head)
    body = "".join("<tr>" + "".join(f"<td>{html_mod.escape(str(c))}</td>" for c in r) + "</tr>" for r in rows)
    return f"<table><thead><tr>{th}</tr></thead><tbody>{body}</tbody></table>"


CSS = """body{font:14px/1.4 system-ui,sans-serif;margin:2em;max-width:1200px;color:#222}
h1{font-size:1.4em}h2{font-size:1.1em;margin-top:1.6em}
table{border-collapse:collapse;margin:.5em 0}td,th{border:1px solid #ccc;padding:2px 8px;text-align:right}
th{background:#f3f3f3}td:first-child,th:first-child{text-align:left}
figure{display:inline-block;margin:0 1em 1em 0}figcaption{font-weight:600}
.plot{fill:#fafafa;stroke:#999}.grid{stroke:#e4e4e4}.tick{font-size:11px;fill:#555}
.dot{fill:#2a6fdb;fill-opacity:.7}.hot{fill:#d62728}.bar{fill:#2a6fdb}.diag{stroke:#aaa;stroke-dasharray:4 3}"""


def html(report: dict) -> str:
    """The report as one HTML page: inline CSS and SVG, no script."""
    sc = report["scenarios"]
    run = report["run"]
    dist = report["distributions"]
    drawdown = _scatter("Insurance fund drawdown vs shock size (red: fund exhausted)",
                        [(s["shock"], s["fund_drawdown"], s["fund_exhausted"], f'#{s["index"]} {s["name"]}')
                         for s in sc], True, "shock (deepest move of any asset)", "fund drawdown, USD")
    hist = _histogram("Accounts liquidated per scenario", [len(s["accounts_liquidated"]) for s in sc],
                      "accounts liquidated")
    fo = _scatter("First-order (below MM, no cascade) vs full cascade",
                  [(s["first_order_below_mm"], len(s["accounts_liquidated"]), s["fund_exhausted"],
                    f'#{s["index"]} {s["name"]}') for s in sc], False, "first-order: accounts below MM",
                  "cascade: accounts liquidated", diagonal=True)
    drows = [[name, *(f'{d.get(k, 0):,.2f}' for k in ("p50", "p90", "p99", "max", "mean"))]
             for name, d in dist.items()]
    ex = report["fund"]["exhausting_scenarios"]
    erows = [[e["index"], e["name"], f'{e["shock"]:+.1%}', f'{e["fund_min"]:,.2f}', e["adl_count"],
              ", ".join(map(str, e["adl_accounts"][:10])) + (" ..." if len(e["adl_accounts"]) > 10 else "")]
             for e in ex]
    wrows = [[w["index"], w["name"], f'{w["fund_drawdown"]:,.2f}', w["accounts_liquidated"], w["adl_count"]]
             for w in report["worst_by_fund_drawdown"]]
    fvc = report["first_order_vs_cascade"]
    meta_rows = [[k, json.dumps(v) if not isinstance(v, str) else v] for k, v in sorted(run.items())]
    return "\n".join([
        "<!doctype html>", '<html lang="en"><head><meta charset="utf-8">',
        "<title>exchange-sim stress report</title>", f"<style>{CSS}</style></head><body>",
        "<h1>exchange-sim stress report</h1>",
        _table(meta_rows, ["run", "value"]),
        f'<p>{report["scenarios_run"]} scenarios; insurance fund at start {report["fund"]["start"]:,.2f} USD; '
        f'exhausted in <b>{report["fund"]["exhausted_in"]}</b>.</p>',
        drawdown, hist, fo,
        "<h2>Distributions over scenarios</h2>", _table(drows, ["figure", "p50", "p90", "p99", "max", "mean"]),
        "<h2>Scenarios that exhaust the insurance fund</h2>",
        _table(erows, ["#", "scenario", "shock", "fund min", "ADL", "accounts deleveraged"]) if erows
        else "<p>None.</p>",
        "<h2>First order vs full cascade</h2>",
        f'<p>{html_mod.escape(fvc["what"])}: same in {fvc["same"]}, cascade more in {fvc["cascade_more"]}, '
        f'first order more in {fvc["first_order_more"]}; mean |difference| {fvc["mean_abs_difference"]:.2f}, '
        f'max {fvc["max_abs_difference"]}.</p>',
        "<h2>Worst scenarios by fund drawdown</h2>",
        _table(wrows, ["#", "scenario", "fund drawdown", "liquidated", "ADL"]),
        "</body></html>", ""])
