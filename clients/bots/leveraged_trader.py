"""A leveraged directional trader: one big bet, held until the venue takes it away.

Leverage is position notional / equity. At 10x, a 10% move against the
position costs the whole equity, and the venue steps in well before that.
What it watches is the margin ratio, equity / maintenance margin (MM), with
the thresholds of ``[risk]`` in the config:

    ratio < 150%  MarginCall "warning"
    ratio < 120%  MarginCall "reduce_only": only orders that shrink risk
    ratio < 100%  liquidation: the venue closes the position in slices

Worked example, the demo "student" account 4 (10,000 USDT + 0.5 BTC),
BTC at 60,000 (BTC-PERP maintenance rate 0.5% up to $250k, 1% above):

    equity   10,000 + 0.5 x 60,000 x (1 - 5% haircut)  =  38,500 USDT
    10x   -> 385,000 USDT of BTC-PERP                  ~   6.416 BTC long
    MM       250,000 x 0.5% + 135,000 x 1%             =   2,600
    ratio    ~38,240 / 2,600 ~ 1,470%   (equity after the 0.05% taker fee and the spread paid)
    BTC -30% (an admin shock, or exchange-sim load --shock BTC:-30%@20s):
    loss     6.416 x 18,000 ~ 115,500 > equity         -> liquidated

The bot buys (or sells) with one market order, then holds. It prints its
margin ratio every ``--every`` s and every margin call and liquidation event
the server pushes to it, and stops once the position is gone.

    exchange-sim serve &
    python -m clients.bots.market_maker --size-usd 200000 &     # someone to buy from
    python -m clients.bots.leveraged_trader --leverage 10 --side long
"""

from __future__ import annotations

import threading
import time
from dataclasses import dataclass, field
from decimal import ROUND_FLOOR, Decimal
from typing import TextIO

from clients import Client, ExchangeError
from clients._core import DEFAULT_MARKET_DATA, DEFAULT_ORDERS
from clients.bots._common import Stop, api_key, demo_key, index_price, parser, say
from clients.models import AccountState, Fill
from protocol import messages as m
from protocol.session import LoggedOut
from protocol.units import ratio_text


@dataclass
class Stats:
    filled: Decimal = Decimal(0)
    avg_price: Decimal | None = None
    margin_calls: list[str] = field(default_factory=list)  # levels, in order
    liquidated: bool = False
    min_ratio: Decimal | None = None


def run(endpoint: str = DEFAULT_ORDERS, market_data: str = DEFAULT_MARKET_DATA, account: int = 4,
        key: str | None = None, *, symbol: str = "BTC-PERP", leverage="10", side: str = "long",
        every: float = 2.0, close_on_exit: bool = False, duration: float | None = None,
        stop: Stop | threading.Event | None = None, server_key: str | None = None,
        out: TextIO | None = None) -> Stats:
    """Open the position, hold it until liquidated (or stopped); return what happened.
    ``market_data`` is unused: everything this bot needs comes on its own session."""
    stop = stop if isinstance(stop, Stop) else Stop(duration, stop)
    stats = Stats()
    with Client(endpoint, account, key or demo_key(account), server_key=server_key) as c:
        ins = c.markets[symbol]
        mark = index_price(c, ins.underlying)
        before = c.account()
        # size: leverage x equity, in whole lots at the current index
        qty = (before.equity * Decimal(leverage) / mark / ins.lot_size).to_integral_value(ROUND_FLOOR) * ins.lot_size
        say(out, f"account {account}: equity {before.equity} USDT; {leverage}x {side} = {qty} {symbol} at ~{mark}")
        try:
            order = c.place(symbol, "buy" if side == "long" else "sell", qty, type="market")
        except ExchangeError as exc:  # e.g. NO_LIQUIDITY: nobody is quoting
            say(out, f"could not open the position: {exc}")
            return stats
        stats.filled, stats.avg_price = order.filled, order.avg_price
        if not order.filled:
            say(out, f"nothing filled ({order.status}, {order.cancel_cause}): is anyone quoting {symbol}?")
            return stats
        say(out, f"opened: {order.filled} @ {order.avg_price} ({order.status})")

        def show(a: AccountState) -> Decimal:
            pos = next((p.qty for p in a.positions if p.symbol == symbol), Decimal(0))
            if a.margin_ratio is not None:
                stats.min_ratio = a.margin_ratio if stats.min_ratio is None else min(stats.min_ratio, a.margin_ratio)
            say(out, f"margin ratio {ratio_text(a.margin_ratio)}  equity {a.equity}  MM {a.mm}  position {pos}")
            return pos

        def on_event(ev) -> None:
            if isinstance(ev, m.MarginCall):
                stats.margin_calls.append(ev.level)
                say(out, f"MARGIN CALL {ev.level}: ratio {ratio_text(ev.margin_ratio)} "
                         f"(equity {ev.equity:,.2f}, MM {ev.mm:,.2f})")
            elif isinstance(ev, m.LiquidationStarted):
                stats.liquidated = True
                say(out, f"LIQUIDATION started at ratio {ratio_text(ev.margin_ratio)}")
            elif isinstance(ev, m.LiquidationSlice):
                say(out, f"  slice: {ins.qty(ev.qty)} {ev.symbol} ({ins.qty(ev.book_qty)} in the book, "
                         f"{ins.qty(ev.takeover_qty)} taken over), bankruptcy price {ins.price(ev.bankruptcy_price)}")
            elif isinstance(ev, Fill) and ev.liquidation:
                say(out, f"  liquidation fill: {ev.side} {ev.qty} @ {ev.price}")
            elif isinstance(ev, m.LiquidationFinished):
                say(out, f"LIQUIDATION finished: ratio {ratio_text(ev.margin_ratio)}, equity {ev.equity:,.2f}")
            elif isinstance(ev, LoggedOut):
                stop.set(f"logged out: {ev.reason}")

        next_show = 0.0
        try:
            while not stop:
                ev = c.poll_event(timeout=0.1)  # margin calls and liquidation events are pushed to us
                while ev is not None:  # one push can carry a whole liquidation: take it all
                    on_event(ev)
                    if isinstance(ev, m.LiquidationFinished):
                        next_show = 0.0  # show the account right away
                    ev = c.poll_event()
                if time.monotonic() >= next_show:
                    next_show = time.monotonic() + every
                    if show(c.account()) == 0:
                        say(out, "the position is gone" + (": liquidated" if stats.liquidated else ""))
                        stop.set("position closed")
        finally:
            if close_on_exit and c.session is not None:
                pos = next((p.qty for p in c.positions() if p.symbol == symbol), Decimal(0))
                if pos:
                    c.place(symbol, "sell" if pos > 0 else "buy", abs(pos), type="market", reduce_only=True)
    say(out, f"leveraged trader stopped ({stop.reason}); margin calls {stats.margin_calls}, "
             f"liquidated {stats.liquidated}")
    return stats


def main(argv: list[str] | None = None) -> int:
    ap = parser("leveraged_trader", __doc__, account=4)
    ap.add_argument("--leverage", default="10", help="position notional / equity (default %(default)s)")
    ap.add_argument("--side", choices=["long", "short"], default="long")
    ap.add_argument("--every", type=float, default=2.0,
                    help="print the margin ratio this often, s (default %(default)s)")
    ap.add_argument("--close-on-exit", action="store_true", help="close what is left when stopped")
    args = ap.parse_args(argv)
    run(args.endpoint, args.market_data, args.account, api_key(args), symbol=args.symbol, leverage=args.leverage,
        side=args.side, every=args.every, close_on_exit=args.close_on_exit,
        stop=Stop(args.duration).on_signals(), server_key=args.server_key)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
