"""Benchmarks for the liquidation engine (pytest-benchmark).

Run::

    python -m pytest benchmarks/bench_liquidation.py --benchmark-only -q -s   # figures
    python -m pytest benchmarks/bench_liquidation.py --benchmark-disable -q   # smoke (CI)

``test_crash_cascade``: a 30 % crash of SOL on a venue with
``LIQ_BENCH_ACCOUNTS`` accounts holding positions (10,000 by default; 300
when timing is disabled, so CI stays fast), built by
``benchmarks/crash.py``: 70 % long SOL at 1-4.5x (half also long
BTC), 17 % short SOL, the rest in ETH; cross, portfolio and isolated; a
market maker with 100 levels a side ($10M per side on SOL, 10 bps apart)
around the post-crash price. Timed: one ``venue.apply(ShockPrice(SOL,
-3000))`` — the sweep, every flagged account, every cascade round — on a
deep copy of the prepared venue per round (built once per parameter). The
insurance fund is a parameter: the default $1M (runs dry: takeovers, then
ADL) and $100M (takeovers only). Reported: events/s, liquidations/s,
slices/s (``extra_info`` and printed with ``-s``). Every timed round must
produce the reference run's exact event stream.

``test_margin_impacts_20_positions``: ``model.impacts(exposures)`` of the
portfolio model (the cross model for comparison) for one account with 20
positions over the 5 underlyings — the ranking the engine runs once per
slice.
"""

from __future__ import annotations

import copy
import hashlib
import os
import random

import msgspec
import pytest
from crash import bench_config, crash_venue, replace

from exchange_sim.venue import Venue
from protocol.messages import (
    AutoDeleverage,
    InsuranceTakeover,
    LiquidationSlice,
    LiquidationStarted,
    MarginMode,
    ShockPrice,
    Trade,
)

CRASH = ShockPrice(asset="SOL", change_bps=-3000)
ROUNDS = 5
FUNDS = {"fund-1M": "1000000", "fund-100M": "100000000"}


def _accounts(config) -> int:
    env = os.environ.get("LIQ_BENCH_ACCOUNTS")
    if env:
        return int(env)
    return 300 if config.getoption("benchmark_disable", False) else 10_000


_venues: dict = {}


def _prepared(n: int, fund: str):
    """(venue before the crash, digest of the crash's events, counts), once."""
    key = (n, fund)
    if key not in _venues:
        venue = crash_venue(n, fund_usd=fund)
        shadow = copy.deepcopy(venue)
        events = shadow.apply(CRASH)
        shadow._check()
        counts = {
            "events": len(events),
            "liquidations": sum(1 for e in events if type(e) is LiquidationStarted),
            "slices": sum(1 for e in events if type(e) is LiquidationSlice),
            "takeovers": sum(1 for e in events if type(e) is InsuranceTakeover),
            "adl": sum(1 for e in events if type(e) is AutoDeleverage),
            "trades": sum(1 for e in events if type(e) is Trade),
        }
        _venues[key] = (venue, hashlib.sha256(msgspec.msgpack.encode(events)).hexdigest(), counts)
    return _venues[key]


@pytest.mark.parametrize("fund", list(FUNDS))
def test_crash_cascade(benchmark, request, fund):
    """30 % SOL crash, one apply; target ≤ 1 s for 10,000 accounts."""
    n = _accounts(request.config)
    venue, digest, counts = _prepared(n, FUNDS[fund])
    # a few thousand of 10,000 go under (≈ 30 %), whatever the size
    assert 0.2 * n <= counts["liquidations"] <= 0.45 * n, counts
    box = {}

    def setup():
        box["venue"] = copy.deepcopy(venue)
        return (box["venue"],), {}

    def run(v):
        box["events"] = v.apply(CRASH)

    benchmark.pedantic(run, setup=setup, rounds=ROUNDS, iterations=1, warmup_rounds=0)
    assert hashlib.sha256(msgspec.msgpack.encode(box["events"])).hexdigest() == digest
    box["venue"]._check()
    benchmark.extra_info.update(accounts=n, fund=FUNDS[fund], **counts)
    stats = getattr(benchmark, "stats", None)
    if stats:
        mean, best = stats.stats.mean, stats.stats.min
        for what in ("events", "liquidations", "slices"):
            benchmark.extra_info[f"{what}_per_sec"] = round(counts[what] / mean)
        print(
            f"\ncrash {n:,} accounts [{fund}]: mean {mean * 1e3:,.0f} ms (min {best * 1e3:,.0f} ms); "
            f"{counts['liquidations']:,} liquidations, {counts['slices']:,} slices, {counts['events']:,} events, "
            f"{counts['takeovers']:,} takeovers, {counts['adl']:,} ADL, {counts['trades']:,} trades → "
            f"{counts['events'] / mean:,.0f} events/s, {counts['liquidations'] / mean:,.0f} liquidations/s"
        )


def _twenty_positions():
    """A venue with 20 instruments (the 5 defaults and copies of them over the
    same underlyings) and one account's exposures: mixed signs, $1k-$500k."""
    cfg = bench_config()
    base = list(cfg.instruments)
    out, k = list(base), 2
    while len(out) < 20:
        out += [replace(i, symbol=f"{i.symbol}-{k}") for i in base][: 20 - len(out)]
        k += 1
    v = Venue(replace(cfg, instruments=out))
    rnd = random.Random(3)
    exposures = [(ins, rnd.choice([-1, 1]) * rnd.uniform(1e3, 5e5)) for ins in v.instruments.values()]
    return v, exposures


@pytest.mark.parametrize("model", ["portfolio", "cross"])
def test_margin_impacts_20_positions(benchmark, model):
    """MM(all) − MM(all without k) for 20 positions; target ≤ 200 µs."""
    v, exposures = _twenty_positions()
    m = v.margin.models[MarginMode(model)]
    result = benchmark(m.impacts, exposures)
    assert len(result) == 20
    total = m.mm(exposures)
    for k in (0, 7, 19):  # spot-check against the definition
        rest = exposures[:k] + exposures[k + 1 :]
        assert result[k] == pytest.approx(total - m.mm(rest), rel=1e-9, abs=1e-6)
    stats = getattr(benchmark, "stats", None)
    if stats:
        benchmark.extra_info["us_per_call"] = round(stats.stats.mean * 1e6, 1)
        print(f"\nimpacts, 20 positions [{model}]: {stats.stats.mean * 1e6:,.1f} us (min {stats.stats.min * 1e6:,.1f})")
