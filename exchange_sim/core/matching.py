"""Matching: one engine per instrument. It owns the book, the untriggered
stops and the book's delta sequence, and never touches money: it returns
what happened as an :class:`Execution` for clearing to settle.

(The book itself, price-time priority and self-trade prevention, is
:mod:`exchange_sim.book`; docs/adr/0001-order-book-structure.md.)
"""

from __future__ import annotations

from exchange_sim.book import BUY, SELL, Order
from exchange_sim.instruments import Instrument
from protocol.messages import BookDelta, CancelCause, NewOrder, OrderType, TimeInForce

_MARKET = OrderType.MARKET
_IOC, _FOK = TimeInForce.IOC, TimeInForce.FOK
_SELF_TRADE, _PRICE_BAND, _CAUSE_IOC, _CAUSE_FOK = (
    CancelCause.SELF_TRADE, CancelCause.PRICE_BAND, CancelCause.IOC, CancelCause.FOK,
)


class StopOrder:
    """An untriggered stop order: it waits off-book for the mark to cross."""

    __slots__ = ("order_id", "account", "symbol", "side", "stop_price", "cmd", "client_order_id", "qty", "filled")

    def __init__(self, order_id: int, cmd: NewOrder, side: int):
        self.order_id = order_id
        self.account = cmd.account
        self.symbol = cmd.symbol
        self.side = side
        self.stop_price = cmd.stop_price
        self.cmd = cmd
        self.client_order_id = cmd.client_order_id
        self.qty = cmd.qty
        self.filled = 0


class Execution:
    """What one taker order did in the book: the message from matching to
    clearing (and to the liquidation engine).

    - ``fills``: (maker Order, lots, price ticks) in execution order;
    - ``stp_expired``: resting makers removed by self-trade prevention;
    - ``qty``: the taker's lots before matching; the order's ``qty`` is now
      what is left;
    - ``cause``: why the rest was cancelled (None: it rests, or nothing is left);
    - ``touched``: the accounts the fills settled (taker first), set by clearing.
    """

    __slots__ = ("fills", "stp_expired", "qty", "cause", "touched")

    def notional(self, value: int) -> int:
        """Σ price × lots × value of the fills, settlement minor units."""
        return sum(price * qty for _, qty, price in self.fills) * value

    def slippage(self, mark: int, side: int, value: int) -> int:
        """What the fills cost the taker against ``mark``, settlement minor units
        (positive: worse than mark)."""
        return sum((price - mark) * qty for _, qty, price in self.fills) * value * side


class MatchingEngine:
    """The book, stops and book sequence of one instrument."""

    __slots__ = ("ins", "book", "stops", "symbol")

    def __init__(self, ins: Instrument):
        self.ins = ins
        self.book = ins.book
        self.symbol = ins.symbol
        #: order id -> StopOrder, in acceptance order
        self.stops: dict[int, StopOrder] = {}

    def execute(self, order: Order, otype: OrderType) -> Execution:
        """Match ``order`` as taker; rest what is left if it may rest (GTC or
        post-only limit), else say why it ends (``Execution.cause``)."""
        book = self.book
        res = book.match(order.side, order.price, order.qty, order.account, order.stp)
        ex = Execution()
        ex.fills = res.fills
        ex.stp_expired = res.stp_expired
        ex.qty = order.qty
        ex.touched = ()
        remaining = order.qty = res.remaining
        cause = None
        if remaining:
            if res.taker_expired_by_stp:
                cause = _SELF_TRADE
            elif otype is _MARKET:
                # stopped by the band only if liquidity is left beyond it
                left = book.best_ask() if order.side == BUY else book.best_bid()
                cause = _PRICE_BAND if left is not None else _CAUSE_IOC
            elif order.tif is _IOC:
                cause = _CAUSE_IOC
            elif order.tif is _FOK:
                cause = _CAUSE_FOK  # only reachable through STP-free races; kept for safety
            else:
                book.add(order)
        ex.cause = cause
        return ex

    def delta(self, events: list) -> None:
        """The book's changes since the last delta as one ``BookDelta`` with
        the next sequence number (none if nothing changed)."""
        bids, asks = self.book.take_delta()
        if not bids and not asks:
            return
        ins = self.ins
        ins.book_seq += 1
        events.append(BookDelta(symbol=ins.symbol, seq=ins.book_seq, bids=bids, asks=asks))

    def fired(self, mark: int) -> list[StopOrder]:
        """Stops whose stop price ``mark`` crossed, oldest first (still
        waiting: the caller takes each with :meth:`take_stop`)."""
        return sorted(
            (s for s in self.stops.values()
             if (s.side == BUY and mark >= s.stop_price) or (s.side == SELL and mark <= s.stop_price)),
            key=lambda s: s.order_id,
        )

    def take_stop(self, order_id: int) -> StopOrder | None:
        """Remove a stop (triggered or cancelled); None if it is gone already."""
        return self.stops.pop(order_id, None)
