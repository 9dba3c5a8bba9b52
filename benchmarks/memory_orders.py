#!/usr/bin/env python
"""Peak memory of a venue holding many resting orders (core issue target:
1,000,000 orders over the default instruments and 10,000 accounts stay
under 600 MB peak RSS).

Run (full size, then the small version CI runs through bench_venue.py)::

    python benchmarks/memory_orders.py
    python benchmarks/memory_orders.py --orders 20000 --accounts 200 --check

Every account is funded (multi-asset, see ``flows.funding_commands``), then
``--orders`` non-crossing GTC limits inside the limit price band go in
through ``Venue.apply`` as protocol Structs, ``orders / accounts`` per
account (at most the venue's max open orders). The commands are generated
lazily, one at a time, so the generator holds nothing: what stays in memory
is the venue. Prints one JSON line:

- ``peak_rss_mb``: ``resource.getrusage(RUSAGE_SELF).ru_maxrss`` at the end
  (the whole process: interpreter, imports, venue);
- ``baseline_rss_mb``: the same before any order was placed (interpreter,
  imports, funded accounts);
- ``bytes_per_order``: (peak - baseline) / resting orders;
- ``build_s`` and ``orders_per_s``: wall time of the order phase.

Exit status 1 if an order was rejected or ``--max-mb`` is exceeded.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import resource
import sys
import time

from flows import funding_commands, resting_orders  # this directory: sys.path[0] when run as a script

from exchange_sim import Venue
from protocol.messages import Rejected


def _rss_mb() -> float:
    kb = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    # Linux reports KiB, macOS bytes
    return kb / 1024 / 1024 if sys.platform == "darwin" else kb / 1024


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--orders", type=int, default=1_000_000, help="resting orders to place (default 1,000,000)")
    ap.add_argument("--accounts", type=int, default=10_000, help="accounts they spread over (default 10,000)")
    ap.add_argument("--account-usd", type=float, default=100_000.0, help="collateral per account, USD")
    ap.add_argument("--seed", type=int, default=3)
    ap.add_argument("--max-mb", type=float, default=None, help="fail (exit 1) above this peak RSS")
    ap.add_argument("--check", action="store_true", help="run Venue._check() at the end (slow at full size)")
    args = ap.parse_args(argv)

    t0 = time.perf_counter()
    venue = Venue()
    apply = venue.apply
    for a in range(1, args.accounts + 1):
        for cmd in funding_commands(a, args.account_usd):
            apply(cmd)
    fund_s = time.perf_counter() - t0
    baseline = _rss_mb()

    rejects: dict[str, int] = {}
    t1 = time.perf_counter()
    for cmd in resting_orders(args.orders, args.accounts, seed=args.seed, config=venue.config):
        events = apply(cmd)
        ev = events[0]
        if type(ev) is Rejected:
            rejects[ev.reason] = rejects.get(ev.reason, 0) + 1
    build_s = time.perf_counter() - t1
    peak = _rss_mb()

    resting = sum(len(ins.book) for ins in venue.instruments.values())
    levels = sum(len(ins.book.depth(s)) for ins in venue.instruments.values() for s in (1, -1))
    if args.check:
        venue._check()
    out = {
        "benchmark": "memory_orders",
        "orders": args.orders,
        "accounts": args.accounts,
        "resting": resting,
        "levels": levels,
        "rejects": sum(rejects.values()),
        "rejects_by_reason": {str(k): v for k, v in sorted(rejects.items())},
        "peak_rss_mb": round(peak, 1),
        "baseline_rss_mb": round(baseline, 1),
        "bytes_per_order": round((peak - baseline) * 1024 * 1024 / resting) if resting else None,
        "build_s": round(build_s, 2),
        "orders_per_s": round(args.orders / build_s) if build_s else None,
        "fund_s": round(fund_s, 2),
        "target_mb": 600,
        "python": platform.python_version(),
        "cpus": os.cpu_count(),
    }
    print(json.dumps(out), flush=True)
    if out["rejects"] or (args.max_mb is not None and peak > args.max_mb):
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
