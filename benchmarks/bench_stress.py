"""Benchmarks for ``exchange-sim stress`` (``exchange_sim.stress``).

Run::

    python -m pytest benchmarks/bench_stress.py --benchmark-only -q -s   # figures
    python -m pytest benchmarks/bench_stress.py --benchmark-disable -q   # smoke (CI): small sizes

What is timed:

* ``test_one_scenario`` — one full-cascade scenario (BTC -30%, ETH -30%:
  six 5% ticks, maker re-quotes, every liquidation to its end) on a
  generated venue of N traders: restore from snapshot bytes, run, count.
* ``test_first_order_grid`` — the first-order sweep of N synthetic accounts
  (the generated venue's population law) × a BTC × ETH grid of shocks.

Scaling over processes and Dask is ``benchmarks/stress_scaling.py`` (one
run, several executors: the ratio is what it reports). With
``--benchmark-disable`` everything runs once at small sizes; set
``STRESS_BENCH_FULL=1`` for N = 1,000 traders and 10^6 accounts × 100 shocks.
"""

from __future__ import annotations

import os

import pytest

from exchange_sim import config as config_mod
from exchange_sim.stress import first_order, run, scenarios, state


def _full(request) -> bool:
    return os.environ.get("STRESS_BENCH_FULL") == "1" and not request.config.getoption("benchmark_disable")


def test_one_scenario(benchmark, request):
    n = 1_000 if _full(request) else 40
    prep = state.from_venue(state.generated(n, 1, state.generated_config(insurance="100000")), [state.MAKER])
    [sc] = scenarios.number([scenarios.grid([("BTC", [-0.3]), ("ETH", [-0.3])])])
    runner = run.Runner(prep)
    res = benchmark(runner.run, sc)
    assert res.liquidations > 0
    benchmark.extra_info.update(traders=n, liquidations=res.liquidations, ticks=res.ticks)


def test_first_order_grid(benchmark, request):
    full = _full(request)
    n = 1_000_000 if full else 20_000
    cfg = config_mod.default()
    pop = first_order.synthetic(cfg, n, seed=1)
    btc = [round(-0.5 + 0.1 * k, 10) for k in range(10)] if full else [-0.5, -0.2, 0.0]
    eth = btc
    shocks = [{"BTC": b, "ETH": e} for b in btc for e in eth]
    res = benchmark.pedantic(first_order.sweep, args=(pop, shocks), rounds=1 if full else 3, iterations=1)
    assert res.below_mm[0] > 0
    benchmark.extra_info.update(accounts=n, shocks=len(shocks))
