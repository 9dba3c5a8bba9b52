"""Cost of a mark move with many untriggered conditional orders waiting
(docs/adr/0011-protective-orders.md).

    python benchmarks/bench_triggers.py [--rounds 5]
    PYTHONPATH=<old tree> python benchmarks/bench_triggers.py --stops-only   # the tree before, same flow
    python -m pytest benchmarks/bench_triggers.py --benchmark-disable -q      # smoke (CI): N = 100

For N = 100, 1,000, 10,000 reduce-only stop-market orders resting far from
the mark (none fires), time ``SetIndexPrice`` moving BTC's index by ±$1
(CPU µs per command, best of ``--rounds``). With the sorted trigger index
the cost should not grow with N; the old linear scan grows linearly.
Without ``--stops-only`` it also times a mix of take-profits, trailing
stops (active: scanned on every move) and last-price stops.
"""

from __future__ import annotations

import argparse
import time

import msgspec

from exchange_sim import Venue, config
from protocol.messages import PRICE_SCALE, Deposit, NewOrder, SetIndexPrice

MOVES = 2_000


def venue_with(n: int, mix: bool) -> Venue:
    cfg = config.default()
    v = Venue(msgspec.structs.replace(cfg, venue=msgspec.structs.replace(cfg.venue, max_open_orders=20_000)))
    for acct in (1, 2):
        v.apply(Deposit(account=acct, asset="USDT", amount=10**12))
    # account 1 long 1 BTC (1,000 lots) so its reduce-only sells are valid
    v.apply(NewOrder(account=2, symbol="BTC-PERP", side="sell", qty=1000, price=600_000))
    v.apply(NewOrder(account=1, symbol="BTC-PERP", side="buy", qty=1000, price=600_000, tif="ioc"))
    for i in range(n):
        k = i % 4 if mix else 0
        if k == 0:
            cmd = NewOrder(account=1, symbol="BTC-PERP", side="sell", qty=1, type="stop_market",
                           stop_price=400_000 + i % 1000, reduce_only=True)
        elif k == 1:
            cmd = NewOrder(account=1, symbol="BTC-PERP", side="sell", qty=1, type="take_profit_market",
                           stop_price=800_000 + i % 1000, reduce_only=True)
        elif k == 2:
            cmd = NewOrder(account=1, symbol="BTC-PERP", side="sell", qty=1, type="stop_market",
                           stop_price=400_000 + i % 1000, reduce_only=True, working_type="contract_price")
        else:
            cmd = NewOrder(account=1, symbol="BTC-PERP", side="sell", qty=1, type="trailing_stop_market",
                           callback_bps=1000, reduce_only=True)  # active at once: scanned on every move
        (ev, *_) = v.apply(cmd)
        assert type(ev).__name__ == "OrderAccepted", ev
    return v


def time_moves(v: Venue) -> float:
    cmds = [SetIndexPrice(asset="BTC", price=(60_000 + (1 if i % 2 else -1)) * PRICE_SCALE) for i in range(MOVES)]
    apply = v.apply
    t = time.process_time()
    for c in cmds:
        apply(c)
    return (time.process_time() - t) / MOVES * 1e6


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--rounds", type=int, default=5)
    ap.add_argument("--stops-only", action="store_true", help="stop-market orders only (runs on the old tree too)")
    args = ap.parse_args()
    kinds = [False] if args.stops_only else [False, True]
    for mix in kinds:
        for n in (100, 1_000, 10_000):
            best = min(time_moves(venue_with(n, mix)) for _ in range(args.rounds))
            print(f"{'mix' if mix else 'stops'} N={n:>6}: {best:8.2f} us per mark move", flush=True)


def test_mark_move_with_waiting_orders(benchmark):
    """pytest-benchmark form (the CI smoke run): N = 100, the mix; nothing fires."""
    import itertools

    v = venue_with(100, True)
    waiting = len(v.engines["BTC-PERP"].stops)
    moves = itertools.cycle([SetIndexPrice(asset="BTC", price=(60_000 + d) * PRICE_SCALE) for d in (1, -1)])
    benchmark(lambda: v.apply(next(moves)))
    assert len(v.engines["BTC-PERP"].stops) == waiting


if __name__ == "__main__":
    main()
