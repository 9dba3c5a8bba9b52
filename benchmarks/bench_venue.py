"""Benchmarks for ``Venue.apply`` (pytest-benchmark).

Run::

    python -m pytest benchmarks/bench_venue.py --benchmark-only -q -s   # figures
    python -m pytest benchmarks/bench_venue.py --benchmark-disable -q   # smoke (CI)

The headline is ``test_venue_apply_mixed``: ``N`` pre-generated commands per
round (``flows.mixed_flow``: 60% new non-crossing limits, 30% cancels of
live orders, 10% marketable orders sweeping 1-3 levels; 100 funded accounts;
default instruments, mostly BTC-PERP and ETH-PERP; a warm book of ~1,000
resting orders). Pre-trade margin checks are always on in the venue. The
commands are protocol Structs built outside the timed part; each round's
``setup`` builds a fresh venue with the same funded accounts and warm book,
so rounds are identical. The reported time is per ROUND:

* commands/s = N / mean (``extra_info["commands_per_sec"]``),
* ns per command = mean / N.

``test_venue_apply_trading_heavy`` times the trading-heavy flow
(``flows.trading_flow``): every command an IOC that fills 1-3 makers.

The flow's statistics (reject rate, events, fills, book size) come from the
generator's shadow run and are stored in ``extra_info`` too (visible with
``--benchmark-json``; printed with ``-s``). After a timed round the venue's
end state is compared with the shadow run's, so the replay provably did the
same work.

``margin_mode`` is a parameter; ``MODES`` holds only "cross" (the core
issue's flow: accounts in the venue's default mode). The same flow in
portfolio mode, timed alternately with cross for the portfolio issue's 1.5x
budget, is ``bench_venue_portfolio.py``; add "portfolio" to ``MODES`` to get
it here as well (a mode the venue cannot switch to is skipped).
"""

from __future__ import annotations

import json
import os
import subprocess
import sys

import pytest
from flows import limit_cancel_pairs, mixed_flow, sweep_stream, trading_flow

N = 20_000  # commands per round of the headline benchmark
ROUNDS = 10
PAIRS = 1_000  # limit + cancel pairs per round
SWEEPS = 200  # marketable orders per round
SMALL_ROUNDS = 30
HEAVY = 5_000  # IOCs per round of the trading-heavy benchmark
MAX_REJECT_RATE = 0.01

HERE = os.path.dirname(os.path.abspath(__file__))
MODES = ["cross"]


_flows: dict = {}


def _flow(mode: str):
    """The mixed flow for ``mode``, built once per session."""
    if mode not in _flows:
        _flows[mode] = mixed_flow(N, margin_mode=None if mode == "cross" else mode)
    return _flows[mode]


def _report(benchmark, n: int, label: str, unit: str = "commands") -> None:
    stats = getattr(benchmark, "stats", None)
    if not stats:  # --benchmark-disable: no timing collected
        return
    mean = stats.stats.mean
    benchmark.extra_info[f"{unit}_per_round"] = n
    benchmark.extra_info[f"{unit}_per_sec"] = round(n / mean)
    benchmark.extra_info[f"ns_per_{unit.rstrip('s')}"] = round(mean / n * 1e9)
    print(f"\n{label}: {n / mean:,.0f} {unit}/s, {mean / n * 1e6:,.2f} us each (mean of {stats.stats.rounds} rounds)")


def _replay(benchmark, commands, new_venue, rounds):
    """Time ``apply`` over ``commands`` on a fresh venue per round; returns
    the last venue for checks."""
    box = {}

    def setup():
        venue = new_venue()
        box["venue"] = venue
        return (venue.apply, commands), {}

    def run(apply, commands):
        for cmd in commands:
            apply(cmd)

    benchmark.pedantic(run, setup=setup, rounds=rounds, iterations=1, warmup_rounds=1)
    return box["venue"]


# --------------------------------------------------------------- headline


@pytest.mark.parametrize("mode", MODES)
def test_venue_apply_mixed(benchmark, mode):
    """N commands per round: 60% new non-crossing limits, 30% cancels, 10%
    marketable (1-3 levels), 100 funded accounts, ~1,000-order warm book,
    pre-trade margin on. commands/s = N / mean."""
    flow = _flow(mode)
    st = flow.stats
    assert st["reject_rate"] <= MAX_REJECT_RATE, f"flow is mostly rejects: {st['rejects_by_reason']}"
    # a limit that raises IM takes the check all the way to the equity
    # comparison (cross: ~55% of limits, portfolio: ~37%, hedges lower IM)
    assert st["new_orders_raising_im"] > 0.2 * st["kinds"]["limit"], "margin checks short-circuit too often"
    venue = _replay(benchmark, flow.commands, flow.new_venue, ROUNDS)
    flow.check_replay(venue)
    benchmark.extra_info.update(
        margin_mode=mode,
        reject_rate=st["reject_rate"],
        events_per_command=round(st["events"] / st["commands"], 2),
        fills=st["fills"],
        resting_start=st["resting_start"],
        resting_end=st["resting_end"],
        im_over_equity_max=round(st["im_over_equity_max"], 4),
    )
    _report(benchmark, len(flow.commands), f"Venue.apply mixed 60/30/10 [{mode}]")
    if getattr(benchmark, "stats", None):
        print("flow:", json.dumps({k: v for k, v in st.items() if k != "rejects_by_reason"}))


def test_venue_apply_trading_heavy(benchmark):
    """HEAVY commands per round, every one a limit IOC that fills 1-3 resting
    makers of other accounts (``flows.trading_flow``): matching, settlement,
    fills, trades and account updates dominate. commands/s = HEAVY / mean."""
    flow = trading_flow(HEAVY)
    st = flow.stats
    assert set(st["makers_per_command"]) == {1, 2, 3}, st["makers_per_command"]
    venue = _replay(benchmark, flow.commands, flow.new_venue, ROUNDS)
    flow.check_replay(venue)
    benchmark.extra_info.update(fills=st["fills"], events_per_command=round(st["events"] / st["commands"], 2))
    _report(benchmark, len(flow.commands), "Venue.apply trading-heavy (IOC, 1-3 makers)")


# --------------------------------------------------------- single operations


def test_venue_limit_then_cancel(benchmark):
    """PAIRS x (one non-crossing GTC limit, then its cancel) on the warm
    venue of the mixed flow. Reported per pair (2 commands)."""
    flow = _flow("cross")
    commands = limit_cancel_pairs(flow, PAIRS)
    venue = _replay(benchmark, commands, flow.new_venue, SMALL_ROUNDS)
    assert venue.next_order_id == flow.new_venue().next_order_id + PAIRS
    assert sum(len(i.book) for i in venue.instruments.values()) == flow.stats["resting_start"]
    _report(benchmark, PAIRS, "limit + cancel pair", unit="pairs")


def test_venue_marketable(benchmark):
    """SWEEPS marketable orders (limit IOC at level j's price or market; each
    fills levels 1..j-1 and ends inside level j, j = 1..3) on the warm venue
    of the mixed flow; includes settlement, fills, trades, account updates."""
    flow = _flow("cross")
    commands = sweep_stream(flow, SWEEPS)
    _replay(benchmark, commands, flow.new_venue, SMALL_ROUNDS)
    _report(benchmark, len(commands), "marketable order (1-3 levels)", unit="orders")


# ------------------------------------------------------------------ memory


def test_memory_orders_small(benchmark):
    """``memory_orders.py`` at a small size in a subprocess, so the script
    cannot rot (the full 1,000,000-order run is manual; see RESULTS.md)."""
    cmd = [sys.executable, os.path.join(HERE, "memory_orders.py"), "--orders", "20000", "--accounts", "200", "--check"]
    out = {}

    def run():
        proc = subprocess.run(cmd, capture_output=True, text=True, timeout=120)
        assert proc.returncode == 0, proc.stdout + proc.stderr
        out.update(json.loads(proc.stdout.strip().splitlines()[-1]))

    benchmark.pedantic(run, rounds=1, iterations=1)
    assert out["resting"] == 20_000 and out["rejects"] == 0
    assert out["peak_rss_mb"] < 600
    benchmark.extra_info.update({k: out[k] for k in ("peak_rss_mb", "baseline_rss_mb", "bytes_per_order", "build_s")})
