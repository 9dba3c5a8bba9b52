"""End-to-end server benchmarks over tcp loopback (pytest-benchmark).

Each benchmark starts ``exchange-sim serve`` in a subprocess and drives it
with load clients in separate processes (``benchmarks/e2e_load.py``, which
is also the standalone script for the full-size runs recorded in
``benchmarks/RESULTS.md``). One round = one load run; the figures
(orders/s, ack latency percentiles, server CPU per order) are in
``extra_info`` and printed (``-s``).

    python -m pytest benchmarks/bench_e2e.py --benchmark-only -s       # measured sizes
    python -m pytest benchmarks/bench_e2e.py --benchmark-disable       # smoke: tiny sizes

With ``--benchmark-disable`` (CI) every run is small (a few thousand
orders) so the file cannot rot and costs a few seconds.
"""

from __future__ import annotations

import e2e_load  # this directory: pytest prepends it to sys.path (it has no __init__.py)
import pytest


@pytest.fixture(scope="module")
def server():
    sp = e2e_load.ServerProcess(clients=2)
    yield sp
    sp.stop()


def _small(benchmark) -> bool:
    return getattr(benchmark, "disabled", False)


def _record(benchmark, res: dict) -> None:
    benchmark.extra_info.update(res)
    print(res)


def test_e2e_throughput_one_order_per_message(benchmark, server):
    n = 2_000 if _small(benchmark) else 100_000
    res = benchmark.pedantic(e2e_load.run_throughput, args=(server.orders, 2, n, 1000, 1), rounds=1, iterations=1)
    assert res["all_answered"] and res["orders"] == 2 * n
    _record(benchmark, res)


def test_e2e_throughput_batched(benchmark, server):
    n = 4_000 if _small(benchmark) else 200_000
    res = benchmark.pedantic(e2e_load.run_throughput, args=(server.orders, 2, n, 10, 100), rounds=1, iterations=1)
    assert res["all_answered"] and res["orders"] == 2 * n
    _record(benchmark, res)


@pytest.mark.parametrize("rate", [5_000, 20_000])
def test_e2e_ack_latency_at_fixed_rate(benchmark, server, rate):
    seconds = 0.3 if _small(benchmark) else 5.0
    res = benchmark.pedantic(e2e_load.run_latency, args=(server.orders, rate, seconds), rounds=1, iterations=1)
    assert res["orders"] > 0 and res["p50_us"] > 0
    _record(benchmark, res)
