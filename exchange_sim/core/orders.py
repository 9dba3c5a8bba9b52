"""The accounts' open-order index and the initial margin it holds (R1's hold).

Every resting order and untriggered stop is indexed on its account (by id
and client order id), and each symbol's resting quantities are kept as
totals (``Account.open_totals``) that the pre-trade check reads instead of
rescanning orders; a change updates that symbol's IM term at once
(``MarginEngine.update_symbol`` / ``commit``, docs/adr/0003). The
reduce-only upkeep after a position change lives here too: it only shrinks
or cancels orders.
"""

from __future__ import annotations

from collections import OrderedDict

from exchange_sim.accounts import Account
from exchange_sim.book import BUY, FLAG_REDUCE_ONLY, Order
from exchange_sim.core.matching import StopOrder
from exchange_sim.core.state import State
from exchange_sim.instruments import Instrument
from protocol.messages import CancelCause, OrderAmended, OrderCancelled

_REDUCE_ONLY = CancelCause.REDUCE_ONLY


class OrderIndex:
    """Indexes and holds of open orders; see the module docstring."""

    __slots__ = ("s", "accounts", "instruments", "engines", "margin")

    def __init__(self, state: State):
        self.s = state
        self.accounts = state.accounts
        self.instruments = state.instruments
        self.engines = state.engines
        self.margin = state.margin

    def remember_client_id(self, acct: Account, cid: str, order_id: int) -> None:
        """An order with client order id ``cid`` was accepted: keep the id
        among the account's last ``client_id_memory`` (oldest forgotten
        first). O(1)."""
        limit = self.s.client_id_memory
        if not limit:
            return
        used = acct.client_ids
        if used is None:
            used = acct.client_ids = OrderedDict()
        used[cid] = order_id
        if len(used) > limit:
            used.popitem(last=False)

    def remember(self, acct: Account, order: Order, pre: tuple | None = None) -> None:
        """Index a resting order on its account and add it to the IM totals.
        ``pre``: the pre-trade check's result for exactly these totals (the
        order rests unfilled), stored instead of evaluating the model again."""
        acct.orders[order.order_id] = order
        if order.client_order_id is not None:
            acct.by_cid[order.client_order_id] = order
        if order.flags & FLAG_REDUCE_ONLY:
            acct.reduce_only_orders += 1
        totals = acct.open_totals.get(order.symbol)
        if totals is None:
            totals = acct.open_totals[order.symbol] = [0, 0, 0, 0]
        if order.side == BUY:
            totals[0] += order.qty
            totals[1] += order.price * order.qty
        else:
            totals[2] += order.qty
            totals[3] += order.price * order.qty
        if pre is not None:
            self.margin.commit(acct, self.instruments[order.symbol], pre)
        else:
            self.margin.update_symbol(acct, self.instruments[order.symbol])

    def remember_stop(self, acct: Account, stop: StopOrder) -> None:
        self.engines[stop.symbol].add_stop(stop)
        acct.orders[stop.order_id] = stop
        if stop.client_order_id is not None:
            acct.by_cid[stop.client_order_id] = stop

    def totals_sub(self, acct: Account, order: Order, qty: int, update: bool = True) -> None:
        """Take ``qty`` lots of ``order`` out of the open-order totals. O(1).
        ``update=False``: the caller updates the margin terms itself (a fill:
        ``MarginEngine.touch``)."""
        if not qty:
            return
        totals = acct.open_totals[order.symbol]
        if order.side == BUY:
            totals[0] -= qty
            totals[1] -= order.price * qty
        else:
            totals[2] -= qty
            totals[3] -= order.price * qty
        if totals[0] == 0 and totals[2] == 0:
            del acct.open_totals[order.symbol]
        if update:
            self.margin.update_symbol(acct, self.instruments[order.symbol])

    def forget(self, order: Order) -> None:
        """Drop an order that left the book from its account's index, and take
        its remaining ``qty`` out of the open-order totals. O(1)."""
        acct = self.accounts[order.account]
        del acct.orders[order.order_id]
        if order.client_order_id is not None:
            acct.by_cid.pop(order.client_order_id, None)
        if order.flags & FLAG_REDUCE_ONLY:
            acct.reduce_only_orders -= 1
        self.totals_sub(acct, order, order.qty)

    def forget_stop(self, stop: StopOrder) -> None:
        """Drop a stop that left its engine (triggered or cancelled)."""
        acct = self.accounts[stop.account]
        del acct.orders[stop.order_id]
        if stop.client_order_id is not None:
            acct.by_cid.pop(stop.client_order_id, None)

    def reduce_room(self, acct: Account, symbol: str, side: int, pos_qty: int) -> int:
        """Lots a new reduce-only order on ``side`` may still close."""
        if pos_qty == 0 or (pos_qty > 0) == (side > 0):
            return 0
        room = pos_qty if pos_qty > 0 else -pos_qty
        if acct.reduce_only_orders:
            for o in acct.orders.values():
                if type(o) is Order and o.flags & FLAG_REDUCE_ONLY and o.symbol == symbol and o.side == side:
                    room -= o.qty
        return room

    def reduce(self, acct: Account, order: Order, new_qty: int) -> None:
        """Shrink a resting order in place (keeps its priority)."""
        self.totals_sub(acct, order, order.qty - new_qty)
        self.engines[order.symbol].book.reduce(order.order_id, new_qty)

    # ------------------------------------------------------------ cancels

    def cancel(self, order, cause: CancelCause, events: list) -> None:
        """Take a resting order or an untriggered stop out, with its event."""
        eng = self.engines[order.symbol]
        if type(order) is StopOrder:
            eng.take_stop(order.order_id)
            self.forget_stop(order)
        else:
            eng.book.cancel(order.order_id)
            self.forget(order)
            if eng.brackets:
                eng.brackets.pop(order.order_id, None)  # an entry cancelled: nothing more to attach
        events.append(
            OrderCancelled(
                account=order.account, order_id=order.order_id, symbol=order.symbol, remaining=order.qty,
                cause=cause, client_order_id=order.client_order_id, ts=self.s.now,
            )
        )

    def cancel_all(self, acct: Account, symbol: str | None, cause: CancelCause, events: list) -> None:
        """Cancel the account's open orders (of ``symbol``, or all), oldest
        first, then one book delta per symbol touched."""
        victims = sorted(
            (o for o in acct.orders.values() if symbol is None or o.symbol == symbol), key=lambda o: o.order_id
        )
        for o in victims:
            self.cancel(o, cause, events)
        for sym in sorted({o.symbol for o in victims}):
            self.engines[sym].delta(events)

    def expire_stp(self, makers: list, symbol: str, events: list) -> None:
        """Resting makers removed from the book by self-trade prevention."""
        brackets = self.engines[symbol].brackets
        for maker in makers:
            self.forget(maker)
            if brackets:
                brackets.pop(maker.order_id, None)
            events.append(
                OrderCancelled(
                    account=maker.account, order_id=maker.order_id, symbol=symbol,
                    remaining=maker.qty, cause=CancelCause.SELF_TRADE, client_order_id=maker.client_order_id,
                    ts=self.s.now,
                )
            )

    # -------------------------------------------- after a position change

    def position_changed(self, acct: Account, ins: Instrument, events: list) -> None:
        """Reduce-only upkeep after ``acct``'s position in ``ins`` changed:
        resting reduce-only orders shrink to it, reduce-only stops that can
        no longer reduce anything are cancelled."""
        if acct.reduce_only_orders:
            self._trim_reduce_only(acct, ins, events)
        if self.engines[ins.symbol].stops:
            self._cancel_reduce_only_stops(acct, ins, events)

    def _trim_reduce_only(self, acct: Account, ins: Instrument, events: list) -> None:
        """Shrink or cancel reduce-only orders that would now increase the
        position (oldest keeps its quantity first)."""
        pos_qty = acct.position_qty(ins.symbol)
        room = abs(pos_qty)
        for o in sorted(
            (o for o in acct.orders.values() if type(o) is Order and o.flags & FLAG_REDUCE_ONLY and o.symbol == ins.symbol),
            key=lambda o: o.order_id,
        ):
            allowed = room if pos_qty and (pos_qty > 0) != (o.side > 0) else 0
            if o.qty <= allowed:
                room -= o.qty
                continue
            if allowed > 0:
                self.reduce(acct, o, allowed)
                room -= allowed
                events.append(
                    OrderAmended(
                        account=acct.id, order_id=o.order_id, symbol=ins.symbol, price=o.price, qty=allowed,
                        priority_kept=True, client_order_id=o.client_order_id, ts=self.s.now,
                    )
                )
            else:
                self.cancel(o, _REDUCE_ONLY, events)

    def _cancel_reduce_only_stops(self, acct: Account, ins: Instrument, events: list) -> None:
        """Cancel (cause ``reduce_only``) the account's reduce-only stops in
        ``ins`` that could no longer reduce anything, the position being flat
        or now on the stop's own side, as resting reduce-only orders are.
        O(the smaller of the symbol's stops and the account's orders)."""
        pos_qty = acct.position_qty(ins.symbol)
        stops = self.engines[ins.symbol].stops
        pool = stops.values() if len(stops) <= len(acct.orders) else acct.orders.values()
        dead = [
            o for o in pool
            if type(o) is StopOrder and o.account == acct.id and o.symbol == ins.symbol and o.cmd.reduce_only
            and (pos_qty == 0 or (pos_qty > 0) == (o.side > 0))
        ]
        for o in sorted(dead, key=lambda o: o.order_id):
            self.cancel(o, _REDUCE_ONLY, events)
