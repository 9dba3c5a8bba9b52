"""Benchmarks for the venue-wide risk sweep (``exchange_sim.risk.sweep``).

Run::

    python -m pytest benchmarks/bench_sweep.py --benchmark-only -q -s   # figures
    python -m pytest benchmarks/bench_sweep.py --benchmark-disable -q   # smoke (CI): small sizes

What is timed:

* ``test_sweep`` — one ``sweep(arrays, engine)`` over N accounts × 20
  instruments: equity (tiered haircuts on every wallet asset + uPnL +
  isolated allocations), IM, MM and ratio per account. N = 10,000 and
  100,000; accounts in portfolio mode (the headline), cross, or a third in
  each of cross / portfolio / isolated. The issue's target: 100,000
  accounts, portfolio, ≤ 20 ms on 2 cores.
* ``test_sweep_20_underlyings`` — the same with 20 instruments on 20
  different underlyings (42 portfolio scenarios instead of 12).
* ``test_index_update_through_the_venue`` — ``Venue.apply(SetIndexPrice)``
  on a venue holding N accounts: sync of dirty accounts (none), the sweep,
  margin-call levels, stops — what every index tick costs.

The arrays are filled directly with numpy (fast to set up, and the same
columns ``RiskArrays.sync`` writes): each account holds 1-6 of the 20
instruments (mean ~3.5), notionals log-uniform $100 - $1M long or short,
entries within ±5 % of mark; every wallet has USDT, 40 % hold BTC, 25 % ETH,
20 % USDC, 5 % MEME (every haircut bracket type is exercised). A sample of
accounts is checked against the per-account model path before timing.

With ``--benchmark-disable`` every test runs once at N = 2,000 so CI stays
fast; set ``RISK_BENCH_N`` (comma-separated) to override the sizes.
"""

from __future__ import annotations

import math
import os

import msgspec
import numpy as np
import pytest

from exchange_sim import config as config_mod
from exchange_sim.accounts import Account
from exchange_sim.config import AssetConfig, Config
from exchange_sim.risk.sweep import MODE_CODE, RiskArrays, sweep
from exchange_sim.venue import Venue
from protocol.messages import MarginMode, SetIndexPrice

SIZES = [int(x) for x in os.environ.get("RISK_BENCH_N", "10000,100000").split(",")]
SMOKE_N = 2_000
N_INSTRUMENTS = 20
TARGET_MS_100K = 20.0


# ------------------------------------------------------------------ configs


def config_20(distinct_underlyings: bool = False) -> Config:
    """20 instruments: copies of the 5 default ones (``BTC-PERP-2``...) over
    the default underlyings, or over 15 extra assets ``X01``...``X15``
    (price $100, SOL-like haircut and tiers) so every instrument has its own
    underlying."""
    cfg = config_mod.default()
    base = list(cfg.instruments)
    out = list(base)
    assets = list(cfg.assets)
    k = 0
    while len(out) < N_INSTRUMENTS:
        template = base[k % len(base)]
        k += 1
        if distinct_underlyings:
            sol = next(i for i in base if i.symbol == "SOL-PERP")
            name = f"X{k:02d}"
            assets.append(AssetConfig(name=name, decimals=8, index_price="100",
                                      haircut=[(250_000.0, 0.10), (math.inf, 0.15)]))
            out.append(msgspec.structs.replace(sol, symbol=f"{name}-PERP", underlying=name))
        else:
            out.append(msgspec.structs.replace(template, symbol=f"{template.symbol}-{k // len(base) + 2}"))
    return msgspec.structs.replace(cfg, assets=assets, instruments=out)


# ------------------------------------------------------------------ arrays


def fill(venue: Venue, n: int, mode: str, seed: int = 1) -> RiskArrays:
    """A RiskArrays of ``n`` random accounts (see module doc)."""
    rng = np.random.default_rng(seed)
    syms = list(venue.instruments)
    ni = len(syms)
    arrays = RiskArrays(syms, list(venue.assets), capacity=n)
    marks = np.array([float(venue.instruments[s].mark) for s in syms])
    values = np.array([float(venue.instruments[s].value) for s in syms])
    unit = venue.settle.unit
    held = rng.random((ni, n)) < 3.5 / ni
    held[rng.integers(0, ni, n), np.arange(n)] = True  # at least one position each
    usd = 10 ** rng.uniform(2, 6, (ni, n)) * np.where(rng.random((ni, n)) < 0.5, -1.0, 1.0)
    qty = np.where(held, np.trunc(usd * unit / (marks * values)[:, None]), 0.0)
    arrays.qty[:, :n] = qty
    arrays.cost[:, :n] = np.round(qty * marks[:, None] * rng.uniform(0.95, 1.05, (ni, n)))
    row = arrays.asset_row
    arrays.bal[row["USDT"], :n] = np.round(rng.uniform(1e3, 2e5, n) * unit)
    for name, share, usd_max in (("BTC", 0.4, 2e5), ("ETH", 0.25, 1e5), ("USDC", 0.2, 5e4), ("MEME", 0.05, 8e4)):
        a = venue.assets[name]
        amount = rng.uniform(0, usd_max, n) / (a.index / 1e8) * a.unit
        arrays.bal[row[name], :n] = np.where(rng.random(n) < share, np.round(amount), 0.0)
    if mode == "mixed":
        codes = rng.integers(0, 3, n).astype(np.int8)
    else:
        codes = np.full(n, MODE_CODE[MarginMode(mode)], dtype=np.int8)
    arrays.mode[:n] = codes
    iso = codes == 2
    # isolated columns carry allocations: the position's IM at mark
    notional = np.abs(qty * (marks * values / unit)[:, None])
    arrays.alloc[:, :n] = np.where(iso[None, :] & held, np.round(0.02 * notional * unit), 0.0)
    arrays.n = n
    arrays.ids = list(range(n))
    return arrays


def spot_check(venue: Venue, arrays: RiskArrays, res, k: int = 25) -> None:
    """The sweep equals the per-account model path for a few accounts."""
    m = venue.margin
    models = {0: m.cross, 1: m.portfolio, 2: m.isolated}
    for col in np.linspace(0, arrays.n - 1, k).astype(int):
        exp = [(venue.instruments[s], float(arrays.qty[i, col]) * venue.instruments[s].mark
                * venue.instruments[s].value / venue.settle.unit)
               for i, s in enumerate(arrays.symbols) if arrays.qty[i, col]]
        want = models[int(arrays.mode[col])].mm(exp)
        assert math.isclose(res.mm[col], want, rel_tol=1e-9), (col, res.mm[col], want)


def _report(benchmark, label: str, n: int) -> None:
    stats = getattr(benchmark, "stats", None)
    if not stats:
        return
    st = stats.stats
    benchmark.extra_info.update(accounts=n, mean_ms=round(st.mean * 1e3, 3), min_ms=round(st.min * 1e3, 3),
                                ns_per_account=round(st.mean / n * 1e9, 1))
    print(f"\n{label}: n={n:,} mean {st.mean * 1e3:.2f} ms, min {st.min * 1e3:.2f} ms, "
          f"median {st.median * 1e3:.2f} ms ({st.mean / n * 1e9:.0f} ns/account)")


_venues: dict = {}


def venue_for(distinct: bool) -> Venue:
    if distinct not in _venues:
        _venues[distinct] = Venue(config_20(distinct))
    return _venues[distinct]


# ------------------------------------------------------------------- sweeps


@pytest.mark.parametrize("mode", ["portfolio", "cross", "mixed"])
@pytest.mark.parametrize("n", SIZES, ids=lambda n: f"{n // 1000}k")
def test_sweep(benchmark, n, mode):
    """One sweep over n accounts × 20 instruments (5 underlyings, 12 scenarios)."""
    n = SMOKE_N if benchmark.disabled else n
    v = venue_for(False)
    arrays = fill(v, n, mode)
    res = benchmark(sweep, arrays, v.margin)
    assert len(res.ids) == n and np.isfinite(res.equity).all() and (res.mm > 0).all()
    spot_check(v, arrays, res)
    _report(benchmark, f"sweep [{mode}]", n)


@pytest.mark.parametrize("n", SIZES, ids=lambda n: f"{n // 1000}k")
def test_sweep_20_underlyings(benchmark, n):
    """Portfolio mode, 20 instruments on 20 underlyings (42 scenarios)."""
    n = SMOKE_N if benchmark.disabled else n
    v = venue_for(True)
    assert len(v.margin.portfolio.scenario_names) == 42
    arrays = fill(v, n, "portfolio")
    res = benchmark(sweep, arrays, v.margin)
    spot_check(v, arrays, res)
    _report(benchmark, "sweep [portfolio, 20 underlyings]", n)


# ------------------------------------------------------ through the venue


def venue_with_accounts(n: int) -> Venue:
    """A venue holding ``n`` portfolio accounts written in directly (Account
    objects + their sweep columns), in pairs with opposite positions so
    every instrument nets to zero; wallets hold 40 % of gross notional in
    USDT, so nobody is near a margin call and ticks move prices only."""
    v = Venue(config_20(False))
    arrays = fill(v, n + n % 2, "portfolio")
    syms = arrays.symbols
    for col in range(0, arrays.n, 2):
        for j in (0, 1):
            acct = Account(col + j + 1, MarginMode.PORTFOLIO)
            for i in np.flatnonzero(arrays.qty[:, col]):
                pos = acct.position(syms[i])
                q = int(arrays.qty[i, col])
                pos.qty = q if j == 0 else -q
                pos.cost = pos.qty * v.instruments[syms[i]].mark
            gross = sum(abs(p.qty) * v.instruments[s].mark * v.instruments[s].value for s, p in acct.positions.items())
            acct.balances["USDT"] = int(0.4 * gross) + 10**9
            v.accounts[acct.id] = acct
            v.arrays.add(acct)
            v.deposits["USDT"] = v.deposits.get("USDT", 0) + acct.balances["USDT"]
    return v


@pytest.mark.parametrize("n", SIZES, ids=lambda n: f"{n // 1000}k")
def test_index_update_through_the_venue(benchmark, n):
    """``apply(SetIndexPrice(BTC))`` alternating $60,000 / $60,060 on a venue
    with n accounts: 4 marks move, the sweep runs, no margin call fires."""
    n = SMOKE_N if benchmark.disabled else n
    v = venue_with_accounts(n)
    prices = [SetIndexPrice(asset="BTC", price=6_006_000_000_000), SetIndexPrice(asset="BTC", price=6_000_000_000_000)]
    state = {"k": 0}

    def tick():
        state["k"] ^= 1
        return v.apply(prices[state["k"]])

    events = benchmark(tick)
    assert events and all(type(e).__name__ == "MarkPrice" for e in events), events[:5]
    _report(benchmark, "SetIndexPrice through the venue", len(v.accounts))


# ------------------------------------------------------------------ memory


def test_memory_accounts_small(benchmark):
    """``memory_accounts.py`` at a small size in a subprocess, so the script
    cannot rot (the full 100,000-account run is manual; see RESULTS.md)."""
    import json
    import subprocess
    import sys

    script = os.path.join(os.path.dirname(os.path.abspath(__file__)), "memory_accounts.py")
    cmd = [sys.executable, script, "--accounts", "2000", "--check"]
    out = {}

    def run():
        proc = subprocess.run(cmd, capture_output=True, text=True, timeout=300)
        assert proc.returncode == 0, proc.stdout + proc.stderr
        out.update(json.loads(proc.stdout.strip().splitlines()[-1]))

    benchmark.pedantic(run, rounds=1, iterations=1)
    assert out["accounts"] == 2000 and out["rejects"] == 0 and out["positions_per_account"] == 3.0, out
    assert out["swept"] >= 2000, out  # every account (and the insurance fund, if any)
    assert out["peak_rss_mb"] < 300, out
    benchmark.extra_info.update({k: out[k] for k in ("peak_rss_mb", "baseline_rss_mb", "bytes_per_account", "build_s")})
