"""Attached take-profit / stop-loss orders (docs/adr/0011-protective-orders.md).

An entry order (limit or market) may carry a ``take_profit`` and a
``stop_loss`` (:class:`~protocol.messages.AttachedOrder`). Nothing is placed
at acceptance: the entry's :class:`Bracket` waits in its engine, and as the
entry fills (as taker or as maker) each half becomes, or grows, a
reduce-only conditional order of the opposite side sized to the lots filled
so far (Bybit's "partial" TP/SL mode). The two halves are each other's
``peer``: when one triggers the other is cancelled (cause ``oco``). If the
position is closed some other way, the reduce-only upkeep cancels both
(cause ``reduce_only``), as for every reduce-only conditional order.

The bracket lives while the entry is open; the halves live on as ordinary
conditional orders after it ends. A half that triggers while its entry is
still open cancels the entry's unfilled rest too (cause ``oco``). Matching never touches money, and neither
does this module: it only creates, sizes and cancels orders.
"""

from __future__ import annotations

import msgspec

from exchange_sim.book import BUY
from exchange_sim.core.matching import Execution, MatchingEngine, StopOrder
from exchange_sim.core.orders import OrderIndex
from exchange_sim.core.state import State
from exchange_sim.instruments import Instrument
from protocol.messages import (
    AttachedOrder,
    CancelCause,
    NewOrder,
    OrderAccepted,
    OrderAmended,
    OrderType,
    Side,
    TimeInForce,
)

_OCO = CancelCause.OCO


class Bracket:
    """An open entry's attached orders: their specs and the ids of the
    conditional orders placed for them so far (None: not placed, or gone)."""

    __slots__ = ("entry_id", "account", "side", "stp", "tp", "sl", "tp_id", "sl_id")

    def __init__(self, entry_id: int, account: int, side: int, stp, tp: AttachedOrder | None,
                 sl: AttachedOrder | None):
        self.entry_id = entry_id
        self.account = account
        self.side = side  # the entry's side (the halves take the other)
        self.stp = stp
        self.tp = tp
        self.sl = sl
        self.tp_id: int | None = None
        self.sl_id: int | None = None


class Protect:
    """Brackets of attached orders: opened at entry acceptance, grown by the
    entry's fills, ended by one half triggering (see the module docstring)."""

    __slots__ = ("s", "orders")

    def __init__(self, state: State, orders: OrderIndex):
        self.s = state
        self.orders = orders

    def open(self, eng: MatchingEngine, entry_id: int, cmd: NewOrder, side: int) -> None:
        eng.brackets[entry_id] = Bracket(entry_id, cmd.account, side, cmd.stp, cmd.take_profit, cmd.stop_loss)

    def fills(self, eng: MatchingEngine, ins: Instrument, taker, ex: Execution, events: list) -> bool:
        """After an execution in ``eng``: grow the halves of every entry that
        filled (the taker, and makers), and drop the brackets of entries that
        ended. True if a half was placed or grown (its trigger may be due)."""
        brackets = eng.brackets
        grew = False
        for maker, lots, _price in ex.fills:
            b = brackets.get(maker.order_id)
            if b is not None:
                self._grow(eng, ins, b, lots, events)
                grew = True
                if not maker.qty:
                    del brackets[maker.order_id]
        b = brackets.get(taker.order_id)
        if b is not None:
            lots = ex.qty - taker.qty
            if lots:
                self._grow(eng, ins, b, lots, events)
                grew = True
            if not taker.qty or ex.cause is not None:
                del brackets[taker.order_id]  # filled, or its rest cancelled: nothing more to attach
        return grew

    def _grow(self, eng: MatchingEngine, ins: Instrument, b: Bracket, lots: int, events: list) -> None:
        stops = eng.stops
        tp = self._half(eng, ins, b, b.tp, stops.get(b.tp_id) if b.tp_id else None, lots, True, events)
        sl = self._half(eng, ins, b, b.sl, stops.get(b.sl_id) if b.sl_id else None, lots, False, events)
        if tp is not None:
            b.tp_id = tp.order_id
        if sl is not None:
            b.sl_id = sl.order_id
        if tp is not None and sl is not None:
            tp.peer, sl.peer = sl.order_id, tp.order_id

    def _half(self, eng: MatchingEngine, ins: Instrument, b: Bracket, spec: AttachedOrder | None,
              st: StopOrder | None, lots: int, take_profit: bool, events: list) -> StopOrder | None:
        if spec is None:
            return None
        if st is not None:  # grows with the entry's fills
            st.qty += lots
            st.cmd = msgspec.structs.replace(st.cmd, qty=st.qty)
            events.append(
                OrderAmended(account=st.account, order_id=st.order_id, symbol=st.symbol, price=st.cmd.price,
                             qty=st.qty, priority_kept=True, client_order_id=None, ts=self.s.now)
            )
            return st
        if take_profit:
            otype = OrderType.TAKE_PROFIT_MARKET if spec.price is None else OrderType.TAKE_PROFIT_LIMIT
        else:
            otype = OrderType.STOP_MARKET if spec.price is None else OrderType.STOP_LIMIT
        side = Side.SELL if b.side == BUY else Side.BUY
        cmd = NewOrder(
            account=b.account, symbol=ins.symbol, side=side, qty=lots, price=spec.price, type=otype,
            tif=TimeInForce.GTC, reduce_only=True, stop_price=spec.trigger_price, stp=b.stp,
            working_type=spec.working_type,
        )
        st = StopOrder(self.s.take_order_id(), cmd, -b.side)
        st.parent = b.entry_id
        self.orders.remember_stop(self.s.accounts[b.account], st)
        events.append(
            OrderAccepted(
                account=b.account, order_id=st.order_id, symbol=ins.symbol, side=side, type=otype,
                tif=TimeInForce.GTC, qty=lots, price=spec.price, stop_price=spec.trigger_price, reduce_only=True,
                working_type=spec.working_type, parent_order_id=b.entry_id, ts=self.s.now,
            )
        )
        return st

    def triggered(self, eng: MatchingEngine, st: StopOrder, events: list) -> None:
        """One half triggered: the other is cancelled (one cancels the other),
        and so is the unfilled rest of its entry if that is still open: the
        protection has fired, and a closing market order would otherwise meet
        the account's own entry first (self-trade prevention would kill it)."""
        peer = eng.stops.get(st.peer) if st.peer is not None else None
        if peer is not None:
            self.orders.cancel(peer, _OCO, events)
        if st.parent is not None and eng.brackets.pop(st.parent, None) is not None:
            entry = self.s.accounts[st.account].orders.get(st.parent)
            if entry is not None:
                self.orders.cancel(entry, _OCO, events)
                eng.delta(events)
