"""A market maker: post-only quotes on both sides of the index, skewed by inventory.

A market maker earns the spread by always offering to buy a little below the
fair price and to sell a little above it. Three habits keep it alive:

1. Post-only (``post_only=True``, Binance's GTX). A quote must rest in the
   book and earn the maker fee. If the market has moved and it would trade
   at once, the venue refuses it (``InvalidOrder``, POST_ONLY_WOULD_CROSS)
   rather than make us a taker: every fill of this bot is a maker fill.
2. Amend, don't cancel and replace. When the index moves or a fill changes
   our inventory, each quote is *amended* to its new price and size. It
   keeps its order id, costs one message instead of two, and a pure size
   decrease even keeps its place in the queue.
3. Inventory skew. A position is risk. When long, every quote moves down
   (we sell more readily and buy less eagerly); when short, up. The centre
   is ``mark x (1 - skew_bps/10^4 x position/max_position)``, and at
   ``max_position`` the side that would add to it stops quoting.

Quotes for a mark of 60,000 with ``--spread-bps 5 --step-bps 5 --levels 3``
and no position (a long of half ``max_position`` with ``--skew-bps 10``
would move every price down 5 bps, $30):

    ask 3  60,090.0   mark x (1 + 15 bps)
    ask 2  60,060.0   mark x (1 + 10 bps)
    ask 1  60,030.0   mark x (1 +  5 bps)
    bid 1  59,970.0   mark x (1 -  5 bps)   ... and so on down

The loop: wait briefly for a pushed event (our fills arrive as pushes: someone
else's order caused them), read new marks from the PUB socket, then bring
each quote to where it should be; only a difference sends a message. Every
index move re-prices every quote around the new mark, however far it went:
after an admin ``shock_price("BTC", -30)`` the whole ladder is amended to
around 42,000 on the next turn. Two details keep those re-quotes valid:

- the side the move runs toward goes first (bids when the price falls), so
  a new ask never crosses our own stale bid;
- a quote is kept clear of the other side of the book only for levels near
  the mark (``CHASE_BPS``): a bid far above a fallen mark is a level our
  book mirror has not yet seen go (it lags the venue), and chasing it would
  put our ask outside the venue's limit price band.

    exchange-sim serve &
    python -m clients.bots.market_maker --symbol BTC-PERP --levels 3 --size-usd 3000
"""

from __future__ import annotations

import threading
import time
from dataclasses import dataclass, field
from decimal import ROUND_CEILING, ROUND_FLOOR, Decimal
from typing import TextIO

from clients import BookMirror, Client, ExchangeError, OrderNotFound
from clients._core import DEFAULT_MARKET_DATA, DEFAULT_ORDERS
from clients.bots._common import MarketData, Stop, api_key, demo_key, index_price, parser, say
from clients.models import Fill, OrderUpdate
from protocol import messages as m
from protocol.session import LoggedOut

BPS = Decimal("0.0001")
#: how far past the mark (bps) a quote may be pushed to stay clear of the other side
CHASE_BPS = Decimal(100)


@dataclass
class Quote:
    order_id: int  # kept for the quote's whole life: amends never change it
    price: Decimal
    qty: Decimal  # what is still open


@dataclass
class Stats:
    placed: int = 0
    amended: int = 0
    refused: int = 0  # post-only would cross, margin, ...: skipped for a turn
    refused_by: dict = field(default_factory=dict)  # reject reason (str) -> count
    fills: int = 0
    taker_fills: int = 0  # stays 0: every quote is post-only
    position: Decimal = Decimal(0)


def target_quotes(mark: Decimal, position: Decimal, *, tick: Decimal, levels: int, size: Decimal,
                  spread_bps: Decimal, step_bps: Decimal, skew_bps: Decimal, max_position: Decimal) -> dict:
    """Where every quote should be: ``{(side, level): price}``, prices on ticks."""
    lean = max(Decimal(-1), min(Decimal(1), position / max_position))  # -1 (max short) .. +1 (max long)
    centre = mark * (1 - skew_bps * lean * BPS)
    want = {}
    for level in range(levels):
        away = (spread_bps + level * step_bps) * BPS
        if position + size <= max_position:  # room to buy
            want["buy", level] = (centre * (1 - away) / tick).to_integral_value(ROUND_FLOOR) * tick
        if position - size >= -max_position:  # room to sell
            want["sell", level] = (centre * (1 + away) / tick).to_integral_value(ROUND_CEILING) * tick
    return want


def run(endpoint: str = DEFAULT_ORDERS, market_data: str = DEFAULT_MARKET_DATA, account: int = 1,
        key: str | None = None, *, symbol: str = "BTC-PERP", levels: int = 3, size_usd="3000",
        spread_bps="5", step_bps="5", skew_bps="10", max_position_usd=None, requote_bps="1",
        duration: float | None = None, stop: Stop | threading.Event | None = None,
        server_key: str | None = None, out: TextIO | None = None) -> Stats:
    """Quote until ``stop`` is set or ``duration`` s have passed; cancel everything; return the tally."""
    stop = stop if isinstance(stop, Stop) else Stop(duration, stop)
    stats = Stats()
    quotes: dict[tuple[str, int], Quote] = {}
    D = Decimal
    with Client(endpoint, account, key or demo_key(account), cancel_on_disconnect=True,
                server_key=server_key) as c:
        ins = c.markets[symbol]  # tick and lot sizes, loaded at login
        # cancel-on-disconnect: if this process dies, the server pulls our quotes
        c.cancel_all(symbol)  # and start clean: quotes of an earlier run are strangers
        mark = index_price(c, ins.underlying)  # the mark is the index on a tick
        marks = MarketData(market_data, [f"{symbol}.mark"], server_key=server_key)
        book = BookMirror([symbol], market_data=market_data, orders=endpoint, server_key=server_key)
        stats.position = next((p.qty for p in c.positions() if p.symbol == symbol), D(0))
        # sizes in USD at the start mark, whole lots
        size = max(ins.lot_size, (D(size_usd) / mark / ins.lot_size).to_integral_value(ROUND_FLOOR) * ins.lot_size)
        # default inventory limit: 20 quotes' worth
        max_pos = D(max_position_usd) / mark if max_position_usd is not None else 20 * size
        if size > max_pos:
            say(out, f"warning: a quote ({size}) is larger than the position limit ({max_pos:.3f}): nothing to quote")
        say(out, f"market maker, account {account}: {levels} levels of {size} {symbol} each side, mark {mark}")

        def on_event(ev) -> None:
            if isinstance(ev, Fill) and ev.symbol == symbol:
                stats.fills += 1
                stats.taker_fills += ev.liquidity == "taker"
                stats.position = ev.position
                for key_, q in list(quotes.items()):
                    if q.order_id == ev.order_id:
                        if ev.remaining == 0:
                            del quotes[key_]  # filled: a new order goes up next turn
                        else:
                            q.qty = ev.remaining  # partly: the amend tops it up again
                say(out, f"fill {ev.side} {ev.qty} @ {ev.price} ({ev.liquidity}), position {ev.position}")
            elif isinstance(ev, OrderUpdate) and ev.kind == "cancelled":
                for key_, q in list(quotes.items()):  # e.g. cancelled by the venue (liquidation, admin)
                    if q.order_id == ev.order_id:
                        del quotes[key_]
            elif isinstance(ev, LoggedOut):
                stop.set(f"logged out: {ev.reason}")

        def requote() -> None:
            want = target_quotes(mark, stats.position, tick=ins.tick_size, levels=levels, size=size,
                                 spread_bps=D(spread_bps), step_bps=D(step_bps), skew_bps=D(skew_bps),
                                 max_position=max_pos)
            # never price through the other side of the book (post-only would refuse it
            # anyway), but only chase levels near the mark: see CHASE_BPS
            bid, ask = book.best_bid(symbol), book.best_ask(symbol)
            chase = mark * CHASE_BPS * BPS
            if bid is not None and bid[0] > mark + chase:
                bid = None
            if ask is not None and ask[0] < mark - chase:
                ask = None
            for key_, q in list(quotes.items()):
                if key_ not in want:  # at the inventory limit: stop adding to it
                    try:
                        c.cancel(q.order_id)
                    except OrderNotFound:
                        pass
                    del quotes[key_]
            # the side the price moved toward first: a falling mark moves the bids
            # down out of the way before the asks come down over them
            falling = any(q.price > want.get(k, q.price) for k, q in quotes.items() if k[0] == "buy")
            order = ("buy", "sell") if falling else ("sell", "buy")
            for (side, level), price in sorted(want.items(), key=lambda kv: (order.index(kv[0][0]), kv[0][1])):
                if side == "sell" and bid is not None:
                    price = max(price, bid[0] + ins.tick_size)
                if side == "buy" and ask is not None:
                    price = min(price, ask[0] - ins.tick_size)
                q = quotes.get((side, level))
                try:
                    if q is None:
                        r = c.place(symbol, side, size, price, post_only=True)
                        quotes[side, level] = Quote(r.order_id, price, r.remaining)
                        stats.placed += 1
                    elif abs(q.price - price) >= mark * D(requote_bps) * BPS or q.qty != size:
                        # one message; the order keeps its id (a new price goes to the back of the queue)
                        c.amend(symbol, q.order_id, price=price if price != q.price else None,
                                qty=size if q.qty != size else None)
                        q.price, q.qty = price, size
                        stats.amended += 1
                except OrderNotFound:
                    quotes.pop((side, level), None)  # it filled meanwhile; the fill event is on its way
                except ExchangeError as exc:  # post-only would cross, margin, band...: skip a turn
                    stats.refused += 1
                    why = exc.reason.value if exc.reason is not None else "client"
                    stats.refused_by[why] = stats.refused_by.get(why, 0) + 1
                    if stats.refused <= 5 or stats.refused % 100 == 0:
                        say(out, f"{side} {level + 1} at {price} refused: {exc}")

        next_status = time.monotonic() + 5
        try:
            while not stop:
                ev = c.poll_event(timeout=0.05)  # our fills, pushed by the server
                while ev is not None:
                    on_event(ev)
                    ev = c.poll_event()
                for msg in marks.poll():
                    if type(msg) is m.MarkPrice:
                        mark = ins.price(msg.mark)
                book.poll()
                if not stop:
                    requote()
                if time.monotonic() >= next_status:
                    next_status += 5
                    bids = [q.price for k, q in quotes.items() if k[0] == "buy"]
                    asks = [q.price for k, q in quotes.items() if k[0] == "sell"]
                    say(out, f"mark {mark}  bid {max(bids, default='-')}  ask {min(asks, default='-')}  "
                             f"position {stats.position}  "
                             f"placed {stats.placed} amended {stats.amended} fills {stats.fills}")
        finally:
            marks.close()
            book.close()
            if c.session is not None:
                c.cancel_all(symbol)  # leave nothing behind
    say(out, f"market maker stopped ({stop.reason}): placed {stats.placed}, amended {stats.amended}, "
             f"fills {stats.fills} (taker {stats.taker_fills}), position {stats.position}")
    return stats


def main(argv: list[str] | None = None) -> int:
    ap = parser("market_maker", __doc__, account=1)
    ap.add_argument("--levels", type=int, default=3, help="quotes per side (default %(default)s)")
    ap.add_argument("--size-usd", default="3000",
                    help="size of each quote in USD at the start mark (default %(default)s)")
    ap.add_argument("--spread-bps", default="5", help="first level's distance from the centre (default %(default)s)")
    ap.add_argument("--step-bps", default="5", help="distance between levels (default %(default)s)")
    ap.add_argument("--skew-bps", default="10", help="centre shift at max position (default %(default)s)")
    ap.add_argument("--max-position-usd", help="stop adding beyond this (default: 20 quotes' worth)")
    ap.add_argument("--requote-bps", default="1", help="amend a quote once it is this far off (default %(default)s)")
    args = ap.parse_args(argv)
    run(args.endpoint, args.market_data, args.account, api_key(args), symbol=args.symbol, levels=args.levels,
        size_usd=args.size_usd, spread_bps=args.spread_bps, step_bps=args.step_bps, skew_bps=args.skew_bps,
        max_position_usd=args.max_position_usd, requote_bps=args.requote_bps,
        stop=Stop(args.duration).on_signals(), server_key=args.server_key)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
