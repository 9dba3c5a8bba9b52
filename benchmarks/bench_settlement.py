"""Benchmark: the expiry of a dated future held by many accounts (issue 16).

Run::

    python -m pytest benchmarks/bench_settlement.py --benchmark-only -q -s   # 10^5 positions
    python -m pytest benchmarks/bench_settlement.py --benchmark-disable -q   # smoke (CI): 1,000

``SETTLE_BENCH_POSITIONS`` sets the number of accounts holding BTC-25DEC26
(half long, half short, in pairs at $60,000.0, from
``docs/examples/futures.toml``). Timed: the one ``apply(Tick)`` at the
expiry — orders cancelled, every position settled in cash at the TWAP, the
fee-ledger rounding, the listing of the next expiries, one AccountUpdate
per account and their margin checks — on a deep copy of the prepared venue
per round. Every round must settle every position, zero-sum to the unit.
"""

from __future__ import annotations

import copy
import os
from pathlib import Path

import msgspec

from exchange_sim import config as config_mod
from exchange_sim.products.dated_future import NS, date_ns
from exchange_sim.venue import Venue
from protocol.messages import BalanceChanged, Deposit, FutureSettled, NewOrder, SetIndexPrice, Side, Tick

ROOT = Path(__file__).resolve().parent.parent
EXPIRY = date_ns("2026-12-25T08:00:00Z")
ROUNDS = 3
_venues: dict = {}


def _positions(config) -> int:
    env = os.environ.get("SETTLE_BENCH_POSITIONS")
    if env:
        return int(env)
    return 1_000 if config.getoption("benchmark_disable", False) else 100_000


def _prepared(n: int) -> Venue:
    if n not in _venues:
        cfg = config_mod.load(ROOT / "docs" / "examples" / "futures.toml")
        cfg = msgspec.structs.replace(
            cfg, futures=[msgspec.structs.replace(f, maker_fee="0", taker_fee="0") for f in cfg.futures])
        v = Venue(cfg)
        t = EXPIRY - 45 * 60 * NS
        for a in range(1, n + 1):
            v.apply(Deposit(account=a, asset="USDT", amount=10_000 * 10**6), ts=t)
        for a in range(1, n, 2):  # a buys 1 + a % 7 lots from a + 1
            lots = 1 + a % 7
            v.apply(NewOrder(account=a + 1, symbol="BTC-25DEC26", side=Side.SELL, qty=lots, price=600_000,
                             tif="post_only"), ts=t)
            v.apply(NewOrder(account=a, symbol="BTC-25DEC26", side=Side.BUY, qty=lots, price=600_000, tif="ioc"),
                    ts=t)
        v.apply(SetIndexPrice(asset="BTC", price=6_012_345_678_901), ts=EXPIRY - 17 * 60 * NS)
        _venues[n] = v
    return _venues[n]


def test_expiry_settlement(benchmark, request):
    n = _positions(request.config)
    base = _prepared(n)
    fees0 = base.fees_collected.get("USDT", 0)

    def setup():
        return (copy.deepcopy(base),), {}

    def run(v):
        events = v.apply(Tick(), ts=EXPIRY)
        (st,) = [e for e in events if type(e) is FutureSettled and e.symbol == "BTC-25DEC26"]
        paid = sum(e.delta for e in events if type(e) is BalanceChanged and e.reason == "settlement")
        assert st.positions == n - n % 2
        assert paid + v.fees_collected.get("USDT", 0) - fees0 == 0  # zero-sum to the unit
        return len(events)

    count = benchmark.pedantic(run, setup=setup, rounds=ROUNDS, iterations=1)
    benchmark.extra_info.update(positions=n, events=count)
    stats = getattr(benchmark, "stats", None)
    if stats is not None and getattr(stats, "stats", None) is not None:
        s = stats.stats
        print(f"\nexpiry of {n:,} positions: min {s.min * 1e3:,.0f} ms, median {s.median * 1e3:,.0f} ms; "
              f"{count:,} events → {n / s.min:,.0f} positions settled/s")
