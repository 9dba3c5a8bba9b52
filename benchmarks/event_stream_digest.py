"""SHA-256 of the event stream of fixed command flows, one line per flow.

Run it on two trees to show a refactor changed no event, bit for bit::

    python benchmarks/event_stream_digest.py                     # this tree
    PYTHONPATH=/path/to/other/tree python benchmarks/event_stream_digest.py

(``PYTHONPATH`` decides which ``exchange_sim`` is imported; the first line
says which one ran.) Every flow goes through ``Venue.apply`` only, and every
event is msgpack-encoded with msgspec, so two equal digests mean the same
events in the same order with the same field values. Flows:

- the benchmark flows of :mod:`flows` (mixed 60/30/10 in cross and portfolio
  margin, limit+cancel pairs, sweeps, the trading-heavy IOC flow when the
  flows module has it), setup commands included;
- ``kitchen``: a seeded random flow through every command kind: orders of
  every type, TIF, STP and reduce-only, stops, amends, cancels, cancel-alls,
  deposits, withdrawals, margin modes (cross, portfolio, isolated),
  isolated adjustments, index moves and shocks deep enough to liquidate,
  funding (venue time advances 1 h per 40 commands), pauses, queries and
  garbage; thin accounts so margin calls, liquidations, takeovers and ADL
  all happen (the event counts are printed).
"""

from __future__ import annotations

import argparse
import hashlib
import os
import random
import sys
from collections import Counter

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))

import msgspec  # noqa: E402

import exchange_sim  # noqa: E402
import flows  # noqa: E402
from exchange_sim import Venue  # noqa: E402
from protocol import messages as M  # noqa: E402

_enc = msgspec.msgpack.Encoder()
HOUR = 3_600 * 10**9
SYMBOLS = ("BTC-PERP", "ETH-PERP", "SOL-PERP", "MEME-PERP")
ASSET_OF = {"BTC-PERP": "BTC", "ETH-PERP": "ETH", "SOL-PERP": "SOL", "MEME-PERP": "MEME"}


def digest(venue: Venue, commands, stamps=None) -> tuple[str, Counter]:
    h = hashlib.sha256()
    kinds: Counter = Counter()
    for i, cmd in enumerate(commands):
        ts = stamps[i] if stamps is not None else None
        events = venue.apply(cmd, ts) if ts is not None else venue.apply(cmd)
        for ev in events:
            kinds[type(ev).__name__] += 1
        h.update(_enc.encode(events))
    venue._check()
    return h.hexdigest(), kinds


def kitchen(seed: int, n: int) -> tuple[list, list]:
    """The seeded flow through every command kind (see the module docstring)."""
    rng = random.Random(seed)
    shadow = Venue()
    cmds: list = [M.Deposit(account=900, asset="USDT", amount=10**9 * 10**6)]
    for a in range(1, 13):
        cmds.append(M.Deposit(account=a, asset="USDT", amount=rng.choice((2_000, 5_000, 20_000)) * 10**6))
        if a % 4 == 0:
            cmds.append(M.Deposit(account=a, asset="BTC", amount=5 * 10**6))
        if a % 3 == 1:
            cmds.append(M.SetMarginMode(account=a, mode=M.MarginMode(("portfolio", "isolated")[a % 2])))
    marks = {s: shadow.instruments[s].mark for s in SYMBOLS}
    index = {ASSET_OF[s]: shadow.assets[ASSET_OF[s]].index for s in SYMBOLS}
    start = dict(index)
    # a market maker quoting every symbol, so marketable orders fill
    for s in SYMBOLS:
        ins = shadow.instruments[s]
        for k in range(1, 9):
            for side, sign in ((M.Side.BUY, -1), (M.Side.SELL, 1)):
                px = ins.mark + sign * ins.mark * 15 * k // 10_000
                q = max(1, int(20_000 / ins.usd(px)))
                cmds.append(M.NewOrder(account=900, symbol=s, side=side, qty=q, price=px, tif=M.TimeInForce.POST_ONLY))
    next_oid = 1 + 8 * 2 * len(SYMBOLS)
    for _ in range(n):
        r = rng.random()
        a = rng.randint(1, 12)
        s = rng.choice(SYMBOLS)
        ins = shadow.instruments[s]
        mark = marks[s]
        usd = rng.choice((300, 1_000, 5_000, 20_000))
        qty = max(1, int(usd / max(ins.usd(mark), 1e-9)))
        if r < 0.45:
            otype = rng.choices(list(M.OrderType), weights=(60, 20, 10, 10))[0]
            tif = rng.choice(list(M.TimeInForce))
            if otype in (M.OrderType.MARKET, M.OrderType.STOP_MARKET) and tif in (M.TimeInForce.POST_ONLY, M.TimeInForce.FOK):
                tif = M.TimeInForce.IOC
            price = mark + mark * rng.randint(-40, 40) // 10_000
            stop = mark + mark * rng.randint(-150, 150) // 10_000
            cmds.append(M.NewOrder(
                account=a, symbol=s, side=rng.choice(list(M.Side)), qty=qty,
                price=None if otype in (M.OrderType.MARKET, M.OrderType.STOP_MARKET) else price,
                stop_price=stop if otype in (M.OrderType.STOP_MARKET, M.OrderType.STOP_LIMIT) else None,
                type=otype, tif=tif, stp=rng.choice(list(M.StpMode)), reduce_only=rng.random() < 0.2,
                client_order_id=rng.choice((None, None, f"k{rng.randint(0, 40)}")),
            ))
            next_oid += 1
        elif r < 0.55:
            cmds.append(M.CancelOrder(account=a, order_id=rng.randint(max(1, next_oid - 60), next_oid)))
        elif r < 0.62:
            cmds.append(M.AmendOrder(
                account=a, order_id=rng.randint(max(1, next_oid - 40), next_oid),
                qty=rng.choice((None, max(1, qty // 2), qty * 2)),
                price=rng.choice((None, mark + mark * rng.randint(-40, 40) // 10_000)),
            ))
        elif r < 0.65:
            cmds.append(M.CancelAll(account=a, symbol=rng.choice((None, s))))
        elif r < 0.68:
            cmds.append(M.Deposit(account=a, asset=rng.choice(("USDT", "BTC", "MEME")), amount=rng.randint(1, 10**9)))
        elif r < 0.70:
            cmds.append(M.Withdraw(account=a, asset=rng.choice(("USDT", "BTC")), amount=rng.randint(1, 10**10)))
        elif r < 0.72:
            cmds.append(M.SetMarginMode(account=a, mode=M.MarginMode(rng.choice(("cross", "portfolio", "isolated")))))
        elif r < 0.74:
            cmds.append(M.AdjustIsolatedMargin(account=a, symbol=s, delta=rng.randint(-500, 500) * 10**6))
        elif r < 0.88:
            u = ASSET_OF[s]
            bps = rng.choice((-30, -10, 10, 30)) if rng.random() < 0.9 else rng.choice((-1_500, -800, 800, 1_500))
            index[u] = min(max(index[u] + index[u] * bps // 10_000, start[u] // 2), start[u] * 2)
            if rng.random() < 0.3:
                cmds.append(M.ShockPrice(asset=u, change_bps=bps))
            else:
                cmds.append(M.SetIndexPrice(asset=u, price=index[u]))
            marks[s] = ins.mark_from_index(index[u])
        elif r < 0.90:
            cmds.append(M.PauseSymbol(symbol=s, paused=rng.random() < 0.3))
        elif r < 0.91:
            cmds.append(M.SettleFunding(symbol=rng.choice((None, s))))
        elif r < 0.96:
            cmds.append(rng.choice((
                M.QueryAccount(account=a), M.QueryOpenOrders(account=a), M.QueryBook(symbol=s, depth=5),
                M.QueryExplain(account=a), M.QueryInstruments(), M.QueryAccount(account=77),
            )))
        elif r < 0.97:
            cmds.append(M.Tick())
        elif r < 0.98:
            cmds.append(rng.choice((M.OpenAccount(account=a + 100), M.CloseAccount(account=rng.randint(100, 113)))))
        else:
            cmds.append(rng.choice((
                M.NewOrder(account=a, symbol="NOPE", side=M.Side.BUY, qty=1, price=1),
                M.NewOrder(account=a, symbol=s, side=M.Side.BUY, qty=-3, price=mark),
                M.NewOrder(account=a, symbol=s, side=M.Side.BUY, qty=qty, price=mark * 3),
                M.Withdraw(account=999, asset="USDT", amount=1),
                M.CancelOrder(account=a),
            )))
    stamps = [HOUR * (1 + i // 40) for i in range(len(cmds))]
    return cmds, stamps


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--n", type=int, default=4_000, help="timed commands per benchmark flow")
    ap.add_argument("--kitchen", type=int, default=6_000, help="commands of the kitchen flow")
    args = ap.parse_args()
    print("exchange_sim from", os.path.dirname(exchange_sim.__file__))
    mixed = flows.mixed_flow(args.n)
    runs = [
        ("mixed/cross", mixed.config, mixed.setup + mixed.commands),
        ("mixed/portfolio", None, None),
        ("limit_cancel_pairs", mixed.config, mixed.setup + flows.limit_cancel_pairs(mixed, args.n // 4)),
        ("sweep_stream", mixed.config, mixed.setup + flows.sweep_stream(mixed, args.n // 10)),
    ]
    port = flows.mixed_flow(args.n // 2, margin_mode="portfolio")
    runs[1] = ("mixed/portfolio", port.config, port.setup + port.commands)
    if hasattr(flows, "trading_flow"):
        heavy = flows.trading_flow(args.n)
        runs.append(("trading_heavy", heavy.config, heavy.setup + heavy.commands))
    for name, cfg, cmds in runs:
        d, _ = digest(Venue(cfg), cmds)
        print(f"{name:20s} {len(cmds):7d} commands  {d}")
    for seed in (1, 2, 3):
        cmds, stamps = kitchen(seed, args.kitchen)
        d, kinds = digest(Venue(), cmds, stamps)
        notable = {k: kinds[k] for k in ("Fill", "Rejected", "OrderTriggered", "MarginCall", "LiquidationSlice",
                                         "InsuranceTakeover", "AutoDeleverage", "FundingPayment",
                                         "IsolatedMarginChanged", "CollateralConversion")}
        print(f"kitchen/seed{seed:<8d} {len(cmds):7d} commands  {d}  {notable}")


if __name__ == "__main__":
    main()
