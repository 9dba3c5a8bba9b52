"""Matching: one engine per instrument. It owns the book, the untriggered
stops and the book's delta sequence, and never touches money: it returns
what happened as an :class:`Execution` for clearing to settle.

(The book itself, price-time priority and self-trade prevention, is
:mod:`exchange_sim.book`; docs/adr/0001-order-book-structure.md.)
"""

from __future__ import annotations

from exchange_sim.book import BUY, SELL, Order
from exchange_sim.instruments import Instrument
from sortedcontainers import SortedList

from protocol.messages import BookDelta, CancelCause, NewOrder, OrderType, TimeInForce, WorkingType

_MARKET = OrderType.MARKET
_IOC, _FOK = TimeInForce.IOC, TimeInForce.FOK
_SELF_TRADE, _PRICE_BAND, _CAUSE_IOC, _CAUSE_FOK = (
    CancelCause.SELF_TRADE, CancelCause.PRICE_BAND, CancelCause.IOC, CancelCause.FOK,
)


_TAKE_PROFIT = (OrderType.TAKE_PROFIT_MARKET, OrderType.TAKE_PROFIT_LIMIT)
_CONTRACT = WorkingType.CONTRACT_PRICE
_BIG = 1 << 62  # above any order id: bisects past every order at a price


class StopOrder:
    """An untriggered conditional order (stop, take-profit, trailing stop):
    it waits off-book for its price (the mark, or the last trade for
    ``working_type`` contract_price) to reach its trigger.

    ``up``: it fires when the price rises to ``trigger`` (a buy stop, a sell
    take-profit, a sell trailing stop's activation), else when it falls to
    it. A trailing stop (``cb``: callback bps) waits keyed on its activation
    price until ``best`` (the best price since activation) is set; then it
    is active and fires when the price retraces ``cb`` from ``best``.
    ``peer``: the other half of an attached take-profit / stop-loss pair
    (one cancels the other); ``parent``: the entry order it protects.
    (docs/adr/0011-protective-orders.md)"""

    __slots__ = ("order_id", "account", "symbol", "side", "stop_price", "cmd", "client_order_id", "qty", "filled",
                 "up", "trigger", "last", "close", "cb", "best", "peer", "parent")

    def __init__(self, order_id: int, cmd: NewOrder, side: int):
        self.order_id = order_id
        self.account = cmd.account
        self.symbol = cmd.symbol
        self.side = side
        self.stop_price = cmd.stop_price
        self.cmd = cmd
        self.client_order_id = cmd.client_order_id
        self.qty = cmd.qty or 0  # 0: close_position (sized at trigger)
        self.filled = 0
        # --- protective orders
        otype = cmd.type
        self.cb = cmd.callback_bps
        if otype in _TAKE_PROFIT or self.cb is not None:
            self.up = side == SELL  # a take-profit or a trailing activation: in the order's favour
        else:
            self.up = side == BUY
        self.trigger = cmd.activation_price if self.cb is not None else cmd.stop_price
        self.last = cmd.working_type == _CONTRACT
        self.close = cmd.close_position
        self.best = 0  # trailing: 0 until activated
        self.peer: int | None = None
        self.parent: int | None = None


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

    __slots__ = ("ins", "book", "stops", "symbol", "_up", "_down", "trailing", "last_price", "last_orders",
                 "brackets")

    def __init__(self, ins: Instrument):
        self.ins = ins
        self.book = ins.book
        self.symbol = ins.symbol
        #: order id -> StopOrder, in acceptance order
        self.stops: dict[int, StopOrder] = {}
        # --- protective orders
        # Waiting triggers sorted by (trigger, order id), one list per
        # direction and working type (index 0 mark, 1 last), so a price move
        # finds what fired by bisection: O(log n + fired), not a scan.
        self._up: tuple[SortedList, SortedList] = (SortedList(), SortedList())
        self._down: tuple[SortedList, SortedList] = (SortedList(), SortedList())
        #: active trailing stops per working type (order id -> StopOrder): each
        #: moves with the price, so these are scanned (only while there are any)
        self.trailing: tuple[dict, dict] = ({}, {})
        #: the last trade price in the book (ticks; 0: no trade yet)
        self.last_price = 0
        #: untriggered contract-price orders: the post-trade check runs only if > 0
        self.last_orders = 0
        #: entry order id -> Bracket (its attached take-profit / stop-loss)
        self.brackets: dict[int, object] = {}

    def execute(self, order: Order, otype: OrderType) -> Execution:
        """Match ``order`` as taker; rest what is left if it may rest (GTC or
        post-only limit), else say why it ends (``Execution.cause``)."""
        book = self.book
        res = book.match(order.side, order.price, order.qty, order.account, order.stp)
        ex = Execution()
        fills = ex.fills = res.fills
        if fills:
            self.last_price = fills[-1][2]
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

    # --- protective orders
    def add_stop(self, st: StopOrder) -> None:
        """Index an untriggered conditional order (new, or restored)."""
        self.stops[st.order_id] = st
        w = 1 if st.last else 0
        if st.last:
            self.last_orders += 1
        if st.best:
            self.trailing[w][st.order_id] = st
        else:
            (self._up if st.up else self._down)[w].add((st.trigger, st.order_id))

    def take_stop(self, order_id: int) -> StopOrder | None:
        """Remove a conditional order (triggered or cancelled); None if it is gone already."""
        st = self.stops.pop(order_id, None)
        if st is None:
            return None
        w = 1 if st.last else 0
        if st.last:
            self.last_orders -= 1
        if st.best:
            del self.trailing[w][order_id]
        else:
            (self._up if st.up else self._down)[w].remove((st.trigger, order_id))
        return st

    def fired(self, price: int, last: bool = False) -> list[StopOrder]:
        """Conditional orders of one working type (``last``: contract price)
        that ``price`` triggered, oldest first (still waiting: the caller takes
        each with :meth:`take_stop`). A trailing stop whose activation price
        was reached becomes active here, its best price ``price``.
        O(log n + fired + active trailing stops)."""
        w = 1 if last else 0
        up, down, trailing = self._up[w], self._down[w], self._trailing_or_none(w)
        if not up and not down and trailing is None:
            return []
        stops = self.stops
        hits = []
        if up and up[0][0] <= price:
            hits += [stops[oid] for _, oid in up.irange(None, (price, _BIG))]
        if down and down[-1][0] >= price:
            hits += [stops[oid] for _, oid in down.irange((price, -1), None)]
        out = []
        for st in hits:
            if st.cb is not None:
                # activation: from the sorted list into the trailing set (it
                # cannot fire at the price it activated at)
                (up if st.up else down).remove((st.trigger, st.order_id))
                st.best = price
                self.trailing[w][st.order_id] = st
            else:
                out.append(st)
        if trailing is not None:
            for st in trailing.values():
                if st.best == price:
                    continue
                if st.side == SELL:  # protects a long: best is the high
                    if price > st.best:
                        st.best = price
                    elif price * 10_000 <= st.best * (10_000 - st.cb):
                        out.append(st)
                else:
                    if price < st.best:
                        st.best = price
                    elif price * 10_000 >= st.best * (10_000 + st.cb):
                        out.append(st)
        if len(out) > 1:
            out.sort(key=_by_id)
        return out

    def check(self) -> None:
        """Assert the trigger index holds exactly the untriggered orders (invariants)."""
        keyed = {}
        for w in (0, 1):
            for lst, up in ((self._up[w], True), (self._down[w], False)):
                for trig, oid in lst:
                    st = self.stops[oid]
                    assert (st.trigger, st.up, st.last, st.best) == (trig, up, bool(w), 0), f"stop {oid} misfiled"
                    keyed[oid] = st
            for oid, st in self.trailing[w].items():
                assert st.best and st.last == bool(w) and self.stops[oid] is st, f"trailing stop {oid} misfiled"
                keyed[oid] = st
        assert keyed.keys() == self.stops.keys(), "trigger index out of date"
        assert self.last_orders == sum(1 for st in self.stops.values() if st.last)

    def _trailing_or_none(self, w: int):
        t = self.trailing[w]
        return t if t else None


def _by_id(st: StopOrder) -> int:
    return st.order_id
