#!/usr/bin/env python
"""Peak memory of a venue holding many funded portfolio-margin accounts,
each with a few positions (risk-engine issue target: 100,000 accounts stay
under 1 GB peak RSS).

Run (full size, then the small version CI runs through bench_sweep.py)::

    python benchmarks/memory_accounts.py
    python benchmarks/memory_accounts.py --accounts 2000 --check

Everything goes in through ``Venue.apply`` as protocol Structs, as a
sequencer would hand it over: every account is funded (multi-asset, see
``flows.funding_commands``: one in four holds only BTC + ETH), switched to
portfolio margin, then accounts trade in pairs (2k−1 rests a post-only order
at mark, 2k takes it with an IOC) until each holds ``--positions`` positions
on distinct instruments, $2,000-$20,000 each, long or short. Then one risk
sweep and one index update (BTC +0.1 %) run, so the sweep's temporaries are
in the peak. Prints one JSON line:

- ``peak_rss_mb``: peak RSS at the end (``VmHWM`` on Linux, else
  ``ru_maxrss``): the whole process — interpreter, imports, venue, sweep
  temporaries;
- ``baseline_rss_mb``: RSS after imports and an empty venue;
- ``bytes_per_account``: (peak − baseline) / accounts;
- ``build_s``; ``sweep_ms``: the first ``venue.risk_sweep()``, which also
  syncs every account into the arrays (all are dirty after the build);
  ``index_update_ms``: then one ``apply(SetIndexPrice)`` (marks, sweep,
  margin-call levels) — the steady-state cost of an index tick.

Exit status 1 if a command was rejected or ``--max-mb`` is exceeded.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import random
import resource
import sys
import time

from flows import funding_commands  # this directory: sys.path[0] when run as a script

from exchange_sim import Venue
from protocol.messages import (
    CancelAll,
    MarginMode,
    NewOrder,
    Rejected,
    SetIndexPrice,
    SetMarginMode,
    Side,
    TimeInForce,
)

TARGET_MB = 1024


def _status_mb(field: str) -> float | None:
    try:
        with open("/proc/self/status") as f:
            for line in f:
                if line.startswith(field + ":"):
                    return int(line.split()[1]) / 1024
    except OSError:
        pass
    return None


def _peak_mb() -> float:
    """Peak RSS of this process image. Linux: ``VmHWM``, not ``ru_maxrss``,
    which a process started by fork + exec inherits from its parent (a
    subprocess of a 400 MB pytest run would report >= 400 MB)."""
    hwm = _status_mb("VmHWM")
    if hwm is not None:
        return hwm
    kb = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    return kb / 1024 / 1024 if sys.platform == "darwin" else kb / 1024


def _rss_mb() -> float:
    rss = _status_mb("VmRSS")
    return rss if rss is not None else _peak_mb()


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--accounts", type=int, default=100_000, help="accounts (default 100,000; even)")
    ap.add_argument("--positions", type=int, default=3, help="positions per account (default 3, at most 5)")
    ap.add_argument("--account-usd", type=float, default=100_000.0, help="collateral per account, USD")
    ap.add_argument("--mode", default="portfolio", choices=["cross", "portfolio", "isolated"])
    ap.add_argument("--seed", type=int, default=5)
    ap.add_argument("--max-mb", type=float, default=None, help="fail (exit 1) above this peak RSS")
    ap.add_argument("--check", action="store_true", help="run Venue._check() at the end (slow at full size)")
    args = ap.parse_args(argv)
    n = args.accounts + args.accounts % 2

    venue = Venue()
    baseline = _rss_mb()
    apply = venue.apply
    rnd = random.Random(args.seed)
    symbols = list(venue.instruments)
    k_pos = min(args.positions, len(symbols))
    rejects: dict[str, int] = {}

    def run(cmd) -> bool:
        ev = apply(cmd)[0]
        if type(ev) is Rejected:
            key = f"{type(cmd).__name__}:{ev.reason}"
            rejects[key] = rejects.get(key, 0) + 1
            return False
        return True

    t0 = time.perf_counter()
    mode = MarginMode(args.mode)
    for a in range(1, n + 1):
        for cmd in funding_commands(a, args.account_usd):
            run(cmd)
        if mode is not venue.default_mode:
            run(SetMarginMode(account=a, mode=mode))
    positions = 0
    for maker in range(1, n + 1, 2):
        taker = maker + 1
        for sym in rnd.sample(symbols, k_pos):
            ins = venue.instruments[sym]
            lot_usd = ins.mark * ins.value / ins.settle_unit
            qty = max(1, int(rnd.uniform(2_000, 20_000) / lot_usd))
            buy = rnd.random() < 0.5
            if not run(NewOrder(account=maker, symbol=sym, side=Side.SELL if buy else Side.BUY, qty=qty,
                                price=ins.mark, tif=TimeInForce.POST_ONLY)):
                continue
            if run(NewOrder(account=taker, symbol=sym, side=Side.BUY if buy else Side.SELL, qty=qty,
                            price=ins.mark, tif=TimeInForce.IOC)):
                positions += 2
            else:
                run(CancelAll(account=maker))
    build_s = time.perf_counter() - t0

    t1 = time.perf_counter()
    res = venue.risk_sweep()
    sweep_ms = (time.perf_counter() - t1) * 1e3
    btc = venue.assets["BTC"].index
    t2 = time.perf_counter()
    events = apply(SetIndexPrice(asset="BTC", price=btc + btc // 1000))
    index_ms = (time.perf_counter() - t2) * 1e3
    calls = sum(1 for e in events if type(e).__name__ == "MarginCall")
    peak = _peak_mb()
    if args.check:
        venue._check()
    held = sum(1 for a in venue.accounts.values() for p in a.positions.values() if p.qty)
    out = {
        "benchmark": "memory_accounts",
        "accounts": n,
        "mode": args.mode,
        "positions": held,
        "positions_per_account": round(held / n, 2),
        "swept": len(res.ids),
        "rejects": sum(rejects.values()),
        "rejects_by_reason": dict(sorted(rejects.items())),
        "margin_calls_on_tick": calls,
        "peak_rss_mb": round(peak, 1),
        "baseline_rss_mb": round(baseline, 1),
        "bytes_per_account": round((peak - baseline) * 1024 * 1024 / n),
        "build_s": round(build_s, 2),
        "commands_per_s": round((n * 3 + positions) / build_s) if build_s else None,
        "sweep_ms": round(sweep_ms, 2),
        "index_update_ms": round(index_ms, 2),
        "target_mb": TARGET_MB,
        "python": platform.python_version(),
        "cpus": os.cpu_count(),
    }
    print(json.dumps(out), flush=True)
    if out["rejects"] or (args.max_mb is not None and peak > args.max_mb):
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
