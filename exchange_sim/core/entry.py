"""Entry (R1): validation and the pre-trade check.

Each function here turns one command into what the later stages need (an
order :class:`Ticket`, the account and amount of a transfer, ...) or raises
a typed :class:`~exchange_sim.core.reject.Reject`, and changes nothing: the
sequencer (``Venue.apply``) only runs matching and clearing on what entry
returned, so a rejected command leaves the state exactly as it was.

The pre-trade margin check (``pretrade``): an order is accepted only if the
account still meets initial margin as if this order and its other open
orders on the same side filled at their limit prices; a change that does not
raise the requirement always passes (docs/adr/0003-incremental-pretrade-margin.md).
"""

from __future__ import annotations

from exchange_sim.accounts import Account
from exchange_sim.book import BUY, FLAG_REDUCE_ONLY, SELL, STP_EXPIRE_BOTH, STP_EXPIRE_MAKER, STP_EXPIRE_TAKER, STP_NONE
from exchange_sim.core import reject
from exchange_sim.core.matching import StopOrder
from exchange_sim.core.orders import OrderIndex
from exchange_sim.core.reject import R, Reject, amount_text, int_in, price_text, qty_text
from exchange_sim.core.state import State
from exchange_sim.instruments import Asset, Instrument
from exchange_sim.risk import leverage
from exchange_sim.risk.margin import ISOLATED
from protocol import messages as M
from protocol.units import ratio_text
from protocol.messages import (
    MAX_AMOUNT,
    MAX_PRICE,
    AdjustIsolatedMargin,
    AmendOrder,
    AttachedOrder,
    CancelOrder,
    Deposit,
    MarginMode,
    NewOrder,
    OrderType,
    SetIndexPrice,
    SetMarginMode,
    ShockPrice,
    Side,
    StpMode,
    TimeInForce,
    Withdraw,
    WorkingType,
)

SIDE = {Side.BUY: BUY, Side.SELL: SELL}
STP = {
    StpMode.NONE: STP_NONE,
    StpMode.EXPIRE_TAKER: STP_EXPIRE_TAKER,
    StpMode.EXPIRE_MAKER: STP_EXPIRE_MAKER,
    StpMode.EXPIRE_BOTH: STP_EXPIRE_BOTH,
}
TIF = {t: t for t in TimeInForce}
TYPE = {t: t for t in OrderType}
# Enum members as module globals for the hot paths: ``OrderType.LIMIT`` goes
# through the enum metaclass (~0.1 µs in CPython 3.11), a global is ~10x cheaper.
_LIMIT, _MARKET, _STOP_MARKET, _STOP_LIMIT = OrderType.LIMIT, OrderType.MARKET, OrderType.STOP_MARKET, OrderType.STOP_LIMIT
_GTC, _IOC, _FOK, _POST_ONLY = TimeInForce.GTC, TimeInForce.IOC, TimeInForce.FOK, TimeInForce.POST_ONLY
# --- protective orders
_TP_MARKET, _TP_LIMIT, _TRAILING = OrderType.TAKE_PROFIT_MARKET, OrderType.TAKE_PROFIT_LIMIT, OrderType.TRAILING_STOP_MARKET
_MARK_PRICE = WorkingType.MARK_PRICE
WORKING = {w: w for w in WorkingType}
_REF_NAME = {WorkingType.MARK_PRICE: "mark", WorkingType.CONTRACT_PRICE: "last price"}
#: conditional types that become a market order at trigger (the others a limit order)
_MARKET_AT_TRIGGER = frozenset((_STOP_MARKET, _TP_MARKET, _TRAILING))
#: Binance USD-M's callbackRate range, 0.1 %..10 %, in basis points
CALLBACK_BPS = (10, 1_000)


class Ticket:
    """An order that passed entry: everything matching and clearing need,
    in venue units. ``limit`` is the worst price it may trade at (a market
    order's band edge); ``rests``: a GTC or post-only limit that does not
    cross, so it goes straight into the book; ``pre``: the pre-trade check's
    new IM terms (``MarginEngine.commit``) or None; ``order_id``: set for a
    triggered stop, which keeps its id."""

    __slots__ = ("acct", "ins", "cmd", "side", "otype", "tif", "stp", "price", "limit", "qty", "reduce_only",
                 "rests", "pre", "order_id")


class StopTicket:
    """A stop order that passed entry: it waits in its engine for the mark."""

    __slots__ = ("acct", "ins", "cmd", "side", "otype", "stop_price")


class Entry:
    """Validation and the pre-trade check; see the module docstring."""

    __slots__ = ("s", "accounts", "instruments", "orders", "margin", "risk", "settle_name")

    def __init__(self, state: State, orders: OrderIndex):
        self.s = state
        self.accounts = state.accounts
        self.instruments = state.instruments
        self.orders = orders  # read only: the reduce-only room
        self.margin = state.margin
        self.risk = state.risk
        self.settle_name = state.settle_name

    # ---------------------------------------------------------- new orders

    def new_order(self, cmd: NewOrder) -> Ticket | StopTicket:
        # lookups inlined for the hit; the helpers raise the reject on a miss
        account = cmd.account
        acct = self.accounts.get(account) if type(account) is int else None
        if acct is None:
            acct = reject.account(self.s, account)
        symbol = cmd.symbol
        ins = self.instruments.get(symbol) if type(symbol) is str else None
        if ins is None:
            ins = reject.instrument(self.s, symbol)
        # str-typed values only: an unhashable garbage value must reject, not raise
        side = SIDE.get(cmd.side) if isinstance(cmd.side, str) else None
        tif = TIF.get(cmd.tif) if isinstance(cmd.tif, str) else None
        otype = TYPE.get(cmd.type) if isinstance(cmd.type, str) else None
        stp = STP.get(cmd.stp) if isinstance(cmd.stp, str) else None
        if side is None or tif is None or otype is None or stp is None or type(cmd.reduce_only) is not bool:
            raise Reject(R.INVALID_FIELD, "side, type, tif, stp or reduce_only has an unknown value")
        if ins.paused:
            if ins.state != "trading":  # dated futures (issue 16): not listed yet, or expired
                raise Reject(R.NOT_TRADING, f"{ins.symbol} is {ins.state}: it takes no orders")
            raise Reject(R.SYMBOL_PAUSED, f"{ins.symbol} is paused")
        qty = cmd.qty
        if type(qty) is not int or qty <= 0:
            if qty is not None or cmd.close_position is not True:  # close_position: sized at trigger
                raise Reject(R.BAD_LOT, "qty must be a positive whole number of lots")
            qty = 0
        if qty > ins.max_qty:
            raise Reject(R.ABOVE_MAX_QTY, f"qty {qty_text(ins, qty)} exceeds the maximum {qty_text(ins, ins.max_qty)}")
        cid = cmd.client_order_id
        if cid is not None:
            if type(cid) is not str or not 0 < len(cid) <= 36:
                raise Reject(R.INVALID_FIELD, "client_order_id must be 1-36 characters")
            if cid in acct.by_cid:
                raise Reject(R.DUPLICATE_CLIENT_ORDER_ID, f"client order id {cid!r} is already open")
            # Reused after its order ended: refused too. Binance asks uniqueness
            # among open orders only; we keep the last N ids like Bybit's unique
            # orderLinkId, because the design promises a retried order is never
            # doubled. The memory is venue state (in snapshots, rebuilt by
            # replay), so a resend after a reconnect or a restart never fills twice.
            used = acct.client_ids
            if used is not None and cid in used:
                raise Reject(
                    R.DUPLICATE_CLIENT_ORDER_ID,
                    f"client order id {cid!r} was already used by order {used[cid]}, no longer open",
                )
        stop = otype is not _LIMIT and otype is not _MARKET  # a conditional order
        # the cap counts orders that stay open: IOC, FOK and market orders never rest
        cap = self.s.max_open_orders
        if len(acct.orders) >= cap and (tif is _GTC or tif is _POST_ONLY or stop) and otype is not _MARKET:
            raise Reject(R.TOO_MANY_OPEN_ORDERS, f"at most {cap} open orders")
        if ins.mark == 0:
            raise Reject(R.NO_MARK_PRICE, f"{ins.symbol} has no index price yet")
        if stop:
            return self._stop(cmd, acct, ins, side, otype)
        if (cmd.take_profit is not None or cmd.stop_loss is not None or cmd.working_type is not _MARK_PRICE
                or cmd.close_position is not False or cmd.callback_bps is not None or cmd.activation_price is not None):
            self._entry_protection(cmd, ins, side, otype)
        price = cmd.price
        if otype is _MARKET:
            if price is not None:
                raise Reject(R.INVALID_FIELD, "a market order takes no price")
            if tif is _POST_ONLY:
                raise Reject(R.INVALID_FIELD, "a market order cannot be post-only")
        else:
            if price is None:
                raise Reject(R.MISSING_PRICE, "a limit order needs a price")
            if type(price) is not int or not 1 <= price <= MAX_PRICE:
                raise Reject(R.BAD_TICK, "price must be a positive whole number of ticks")
        return self.order(acct, ins, cmd, side, otype, tif, stp, price, qty)

    def order(self, acct: Account, ins: Instrument, cmd, side: int, otype, tif, stp: int, price, qty: int,
              order_id: int | None = None) -> Ticket:
        """The checks that depend on the book and margin (also a triggered
        stop's, with its ``order_id``)."""
        book = ins.book
        if otype is _MARKET:
            limit = ins.market_limit(side == BUY)
            best = book.best_ask() if side == BUY else book.best_bid()
            if best is None or (best > limit if side == BUY else best < limit):
                raise Reject(R.NO_LIQUIDITY, "no liquidity within the market price band")
            # margin at the worst price the order may reach: the band edge for a
            # buy; for a sell the best bid (it fills at or below it) or mark
            ref_price = limit if side == BUY else max(best, ins.mark)
        else:
            if not ins.within_limit_band(price):
                raise Reject(R.OUTSIDE_PRICE_BAND, f"price {price_text(ins, price)} is too far from mark {price_text(ins, ins.mark)}")
            limit = ref_price = price
        reduce_only = cmd.reduce_only
        if reduce_only:
            # Bybit/Binance: a reduce-only order may only shrink the position;
            # a quantity above the position (less other reduce-only orders on
            # the same side) is trimmed to it.
            room = self.orders.reduce_room(acct, ins.symbol, side, acct.position_qty(ins.symbol))
            if room <= 0:
                raise Reject(R.REDUCE_ONLY_WOULD_INCREASE, "reduce-only order would open or increase a position")
            qty = qty if qty <= room else room
        elif ins.notional(ref_price, qty) < ins.min_notional:
            raise Reject(R.BELOW_MIN_NOTIONAL, f"notional below {ins.min_notional_str} {self.settle_name}")
        # resting: a GTC or post-only limit that does not cross (O(1) to ask)
        rests = (tif is _GTC or tif is _POST_ONLY) and otype is _LIMIT and not book.would_cross(side, price)
        if tif is _POST_ONLY and not rests:
            raise Reject(R.POST_ONLY_WOULD_CROSS, "post-only order would take liquidity")
        if tif is _FOK and not book.fillable(side, limit, qty, acct.id, stp):
            raise Reject(R.FOK_NOT_FILLABLE, "fill-or-kill order cannot fill completely now")
        t = Ticket()
        t.pre = None if reduce_only else self._check_margin(acct, ins, side, ref_price, qty)
        t.acct = acct
        t.ins = ins
        t.cmd = cmd
        t.side = side
        t.otype = otype
        t.tif = tif
        t.stp = stp
        t.price = price
        t.limit = limit
        t.qty = qty
        t.reduce_only = reduce_only
        t.rests = rests
        t.order_id = order_id
        return t

    def _stop(self, cmd, acct: Account, ins: Instrument, side: int, otype) -> StopTicket:
        """A conditional order: stop, take-profit (market or limit), trailing
        stop; on mark or last price; sized or close-position
        (docs/adr/0011-protective-orders.md)."""
        if cmd.take_profit is not None or cmd.stop_loss is not None:
            raise Reject(R.INVALID_FIELD, "take_profit / stop_loss attach to a limit or market entry order only")
        working = WORKING.get(cmd.working_type) if isinstance(cmd.working_type, str) else None
        if working is None:
            raise Reject(R.INVALID_FIELD, "working_type must be mark_price or contract_price")
        ref = self.trigger_ref(ins, working)
        trailing = otype is _TRAILING
        if trailing:
            cb = cmd.callback_bps
            lo, hi = CALLBACK_BPS
            if not int_in(cb, lo, hi):
                raise Reject(R.INVALID_FIELD, f"callback_bps must be a whole number of basis points in {lo}..{hi} "
                                              f"(0.1 %..10 %), not {cb!r}")
            if cmd.stop_price is not None or cmd.price is not None:
                raise Reject(R.INVALID_FIELD, "a trailing stop takes callback_bps and activation_price, "
                                              "no stop_price or price")
            stop = cmd.activation_price
            if stop is not None:
                if not int_in(stop, 1, MAX_PRICE):
                    raise Reject(R.BAD_TICK, "activation_price must be a positive whole number of ticks")
                if (side == SELL and ref >= stop) or (side == BUY and ref <= stop):
                    raise Reject(R.INVALID_FIELD, f"activation price {price_text(ins, stop)} would activate at once "
                                                  f"at {_REF_NAME[working]} {price_text(ins, ref)}: leave it out to "
                                                  "trail from now")
        else:
            if cmd.callback_bps is not None or cmd.activation_price is not None:
                raise Reject(R.INVALID_FIELD, "callback_bps and activation_price are for trailing_stop_market only")
            stop = cmd.stop_price
            if stop is None:
                raise Reject(R.MISSING_STOP_PRICE, f"a {otype} order needs stop_price")
            if not int_in(stop, 1, MAX_PRICE):
                raise Reject(R.BAD_TICK, "stop_price must be a positive whole number of ticks")
        market_at_trigger = otype in _MARKET_AT_TRIGGER
        if not market_at_trigger:
            if cmd.price is None:
                raise Reject(R.MISSING_PRICE, f"a {otype} order needs a price")
            if not int_in(cmd.price, 1, MAX_PRICE):
                raise Reject(R.BAD_TICK, "price must be a positive whole number of ticks")
        elif cmd.price is not None:
            raise Reject(R.INVALID_FIELD, f"a {otype} order takes no price")
        tif = TIF[cmd.tif]  # normalised: in-process callers may pass plain strings
        if tif is _POST_ONLY or tif is _FOK and market_at_trigger:
            raise Reject(R.INVALID_FIELD, f"{cmd.tif} is not allowed on {otype}")
        if not trailing:
            # a take-profit fires when the price moves in the order's favour,
            # a stop against it (Binance's direction rules)
            up = (side == SELL) if otype is _TP_MARKET or otype is _TP_LIMIT else (side == BUY)
            if (up and ref >= stop) or (not up and ref <= stop):
                # Binance: "Order would immediately trigger" is refused
                what = "stop price" if otype is _STOP_MARKET or otype is _STOP_LIMIT else "take-profit price"
                raise Reject(R.INVALID_FIELD, f"{what} {price_text(ins, stop)} would trigger immediately at "
                                              f"{_REF_NAME[working]} {price_text(ins, ref)}")
        if cmd.close_position is not False:
            self._close_position(cmd, acct, ins, side, otype)
        elif cmd.reduce_only and self.orders.reduce_room(acct, ins.symbol, side, acct.position_qty(ins.symbol)) <= 0:
            raise Reject(R.REDUCE_ONLY_WOULD_INCREASE, "reduce-only order would open or increase a position")
        t = StopTicket()
        t.acct, t.ins, t.cmd, t.side, t.otype, t.stop_price = acct, ins, cmd, side, otype, cmd.stop_price
        return t

    def triggered(self, st: StopOrder, acct: Account, ins: Instrument) -> Ticket:
        """A conditional order whose trigger was reached, as a live order
        keeping its id: market (IOC) for a stop-market, take-profit-market
        or trailing stop, limit with its TIF for a stop- or take-profit-limit.
        A close-position order is sized to the whole position now."""
        cmd = st.cmd
        otype = _MARKET if TYPE[cmd.type] in _MARKET_AT_TRIGGER else _LIMIT
        tif = _IOC if otype is _MARKET else TIF[cmd.tif]
        qty = cmd.qty
        if st.close:
            pos = acct.position_qty(ins.symbol)
            if pos == 0 or (pos > 0) == (st.side > 0):
                raise Reject(R.REDUCE_ONLY_WOULD_INCREASE, "close-position order has no position to close")
            qty = pos if pos > 0 else -pos
        return self.order(acct, ins, cmd, st.side, otype, tif, STP[cmd.stp], cmd.price, qty, order_id=st.order_id)

    # --- protective orders: field checks
    def trigger_ref(self, ins: Instrument, working) -> int:
        """The price a trigger of ``working`` type is compared with now (ticks)."""
        if working is _MARK_PRICE:
            return ins.mark
        last = self.s.engines[ins.symbol].last_price
        if not last:
            raise Reject(R.NO_MARK_PRICE, f"{ins.symbol} has no trade yet: use working_type mark_price")
        return last

    def _close_position(self, cmd, acct: Account, ins: Instrument, side: int, otype) -> None:
        """Binance closePosition: stop-market or take-profit-market, no qty,
        no reduce_only (it is implied); refused with no position to close."""
        if otype is not _STOP_MARKET and otype is not _TP_MARKET:
            raise Reject(R.INVALID_FIELD, f"close_position is for stop_market and take_profit_market, not {otype}")
        if cmd.close_position is not True:
            raise Reject(R.INVALID_FIELD, "close_position must be true or false")
        if cmd.qty is not None:
            raise Reject(R.INVALID_FIELD, "a close_position order takes no qty: it closes the whole position")
        if cmd.reduce_only is not False:
            raise Reject(R.INVALID_FIELD, "close_position implies reduce_only: send one, not both")
        pos = acct.position_qty(ins.symbol)
        if pos == 0 or (pos > 0) == (side == BUY):
            raise Reject(R.REDUCE_ONLY_WOULD_INCREASE,
                         f"close_position {'buy' if side == BUY else 'sell'}: no "
                         f"{'short' if side == BUY else 'long'} {ins.symbol} position to close")

    def _entry_protection(self, cmd, ins: Instrument, side: int, otype) -> None:
        """A limit or market entry: only take_profit / stop_loss may be set
        among the conditional fields, each on the right side of the entry
        price (the limit price, or the trigger's price now for a market
        entry): a buy's take-profit above it and stop-loss below, a sell's
        the other way round (Bybit's TP/SL rules)."""
        if cmd.working_type is not _MARK_PRICE and cmd.working_type != _MARK_PRICE:
            raise Reject(R.INVALID_FIELD, "working_type is for conditional orders; an attached order has its own")
        if cmd.close_position is not False:
            raise Reject(R.INVALID_FIELD, "close_position is for stop_market and take_profit_market orders")
        if cmd.callback_bps is not None or cmd.activation_price is not None:
            raise Reject(R.INVALID_FIELD, "callback_bps and activation_price are for trailing_stop_market only")
        if (cmd.take_profit is not None or cmd.stop_loss is not None) and cmd.reduce_only is not False:
            raise Reject(R.INVALID_FIELD, "take_profit / stop_loss protect an opening entry: not on a reduce-only order")
        for name, spec in (("take_profit", cmd.take_profit), ("stop_loss", cmd.stop_loss)):
            if spec is None:
                continue
            if type(spec) is not AttachedOrder:
                raise Reject(R.INVALID_FIELD, f"{name} must be an AttachedOrder")
            working = WORKING.get(spec.working_type) if isinstance(spec.working_type, str) else None
            if working is None:
                raise Reject(R.INVALID_FIELD, f"{name}.working_type must be mark_price or contract_price")
            trig = spec.trigger_price
            if not int_in(trig, 1, MAX_PRICE):
                raise Reject(R.BAD_TICK, f"{name}.trigger_price must be a positive whole number of ticks")
            if spec.price is not None and not int_in(spec.price, 1, MAX_PRICE):
                raise Reject(R.BAD_TICK, f"{name}.price must be a positive whole number of ticks")
            if otype is _LIMIT and type(cmd.price) is int:
                ref = cmd.price
            else:  # a market entry: the trigger's price now (the mark until a first trade sets a last price)
                ref = self.s.engines[ins.symbol].last_price if working is not _MARK_PRICE else 0
                ref = ref or ins.mark
            above = (name == "take_profit") == (side == BUY)  # where the trigger must be
            if (above and trig <= ref) or (not above and trig >= ref):
                raise Reject(
                    R.INVALID_FIELD,
                    f"{name} trigger {price_text(ins, trig)} of a {'buy' if side == BUY else 'sell'} entry must be "
                    f"{'above' if above else 'below'} {price_text(ins, ref)}")

    # ------------------------------------------------------ margin checks

    def _check_margin(self, acct: Account, ins: Instrument, side: int, price: int, qty: int) -> tuple | None:
        """Pre-trade: IM with this order (and the same side's others) ≤ equity.
        Returns the new margin terms for ``MarginEngine.commit`` (see pretrade)."""
        totals = acct.open_totals.get(ins.symbol)
        new = [0, 0, 0, 0] if totals is None else totals.copy()
        k = 0 if side == BUY else 2
        new[k] += qty
        new[k + 1] += price * qty
        return self.pretrade(acct, ins, new)

    def pretrade(self, acct: Account, ins: Instrument, new_totals: list[int]) -> tuple | None:
        """Accept a change of one symbol's open orders only if the account still
        meets initial margin with them; a change that does not raise the
        requirement (it reduces a position, or the other side dominates)
        always passes. In reduce-only territory (ratio below
        ``risk.reduce_only_ratio``) only such changes pass.
        Cost: one IM term and an fsum for an additive model (cross), one
        underlying's term and the scenario maximum for a netted one
        (portfolio), a model evaluation over the account's symbols otherwise
        (``MarginEngine.im_after``). Returns the
        account's new IM terms with ``new_totals`` (None in isolated mode), so
        an order that then rests unfilled stores them instead of evaluating
        the model again (``OrderIndex.remember``)."""
        m = self.margin
        m.fresh(acct)
        if acct.margin_mode is ISOLATED:
            need = m.isolated_need(acct, ins, new_totals)
            if need <= m.isolated_need(acct, ins, acct.open_totals.get(ins.symbol)):
                return None
            free = acct.balances.get(self.settle_name, 0) / self.s.settle.unit
            if need > free:
                raise Reject(
                    R.INSUFFICIENT_MARGIN,
                    f"isolated margin {need:.2f} exceeds the free {self.settle_name} balance {free:.2f}",
                )
            return None
        before, after, pre = m.im_after(acct, ins, new_totals)
        if after <= before:
            return pre
        eq, ratio = m.equity_and_ratio(acct)
        if ratio is not None and ratio < self.risk.reduce_only_ratio:
            raise Reject(R.REDUCE_ONLY_MODE, f"margin ratio {ratio_text(ratio)} is below {ratio_text(self.risk.reduce_only_ratio)}: reduce risk only")
        if after > eq:
            raise Reject(
                R.INSUFFICIENT_MARGIN,
                f"initial margin {after:.2f} would exceed equity {eq:.2f} {self.settle_name}",
            )
        return pre

    # ------------------------------------------------------ cancel / amend

    def find_order(self, acct: Account, cmd):
        if cmd.order_id is not None:
            if type(cmd.order_id) is not int:
                raise Reject(R.INVALID_FIELD, "order_id must be an integer")
            order = acct.orders.get(cmd.order_id)
        elif cmd.client_order_id is not None:
            if type(cmd.client_order_id) is not str:
                raise Reject(R.INVALID_FIELD, "client_order_id must be a string")
            order = acct.by_cid.get(cmd.client_order_id)
        else:
            raise Reject(R.INVALID_FIELD, "give order_id or client_order_id")
        if order is None:
            raise Reject(R.UNKNOWN_ORDER, "no open order with that id on this account")
        return order

    def cancel(self, cmd: CancelOrder):
        """The open order (resting or stop) a cancel names."""
        # lookups inlined for the hit; the helpers raise the reject on a miss
        account = cmd.account
        acct = self.accounts.get(account) if type(account) is int else None
        if acct is None:
            acct = reject.account(self.s, account)
        oid = cmd.order_id
        order = acct.orders.get(oid) if type(oid) is int else None
        if order is None:
            order = self.find_order(acct, cmd)
        return order

    def amend(self, cmd: AmendOrder) -> tuple:
        """(account, instrument, order, new price, new qty) of a valid amend."""
        acct = reject.account(self.s, cmd.account)
        order = self.find_order(acct, cmd)
        if type(order) is StopOrder:
            raise Reject(R.NOT_ALLOWED, "stop orders cannot be amended; cancel and place again")
        ins = self.instruments[order.symbol]
        if ins.paused:
            if ins.state != "trading":  # dated futures (issue 16)
                raise Reject(R.NOT_TRADING, f"{ins.symbol} is {ins.state}: it takes no amends")
            raise Reject(R.SYMBOL_PAUSED, f"{ins.symbol} is paused")
        new_qty = order.qty if cmd.qty is None else cmd.qty
        new_price = order.price if cmd.price is None else cmd.price
        if not int_in(new_qty, 1, ins.max_qty):
            raise Reject(R.BAD_LOT, f"qty must be {qty_text(ins, 1)} to {qty_text(ins, ins.max_qty)}")
        if not int_in(new_price, 1, MAX_PRICE):
            raise Reject(R.BAD_TICK, "price must be a positive whole number of ticks")
        if new_qty == order.qty and new_price == order.price:
            raise Reject(R.NOTHING_TO_AMEND, "the amend changes nothing")
        if new_price != order.price and not ins.within_limit_band(new_price):
            raise Reject(R.OUTSIDE_PRICE_BAND, f"price {price_text(ins, new_price)} is too far from mark {price_text(ins, ins.mark)}")
        reduce_only = order.flags & FLAG_REDUCE_ONLY
        if reduce_only:
            room = self.orders.reduce_room(acct, ins.symbol, order.side, acct.position_qty(ins.symbol)) + order.qty
            if new_qty > room:
                raise Reject(R.REDUCE_ONLY_WOULD_INCREASE, f"reduce-only order may hold at most {qty_text(ins, room)}")
        elif ins.notional(new_price, new_qty) < ins.min_notional:
            raise Reject(R.BELOW_MIN_NOTIONAL, f"notional below {ins.min_notional_str} {self.settle_name}")
        crosses = new_price != order.price and ins.book.would_cross(order.side, new_price)
        if crosses and order.tif is _POST_ONLY:
            raise Reject(R.POST_ONLY_WOULD_CROSS, "post-only order would take liquidity at the new price")
        if not reduce_only:
            grows = new_qty * new_price > order.qty * order.price or new_qty > order.qty
            if grows:
                new = acct.open_totals[ins.symbol].copy()
                k = 0 if order.side == BUY else 2
                new[k] += new_qty - order.qty
                new[k + 1] += new_price * new_qty - order.price * order.qty
                self.pretrade(acct, ins, new)
        return acct, ins, order, new_price, new_qty

    # ----------------------------------------------------- wallet (admin)

    def deposit(self, cmd: Deposit) -> Asset:
        a = reject.asset(self.s, cmd.asset)
        if not int_in(cmd.account, 0, 2**53):
            raise Reject(R.INVALID_FIELD, "account must be a non-negative integer")
        if not int_in(cmd.amount, 1, MAX_AMOUNT):
            raise Reject(R.INVALID_FIELD, f"amount must be {amount_text(a, 1)} to {amount_text(a, MAX_AMOUNT)}")
        return a

    def withdraw(self, cmd: Withdraw) -> tuple[Account, Asset]:
        acct = reject.account(self.s, cmd.account)
        asset = reject.asset(self.s, cmd.asset)
        if not int_in(cmd.amount, 1, MAX_AMOUNT):
            raise Reject(R.INVALID_FIELD, f"amount must be {amount_text(asset, 1)} to {amount_text(asset, MAX_AMOUNT)}")
        bal = acct.balances.get(asset.name, 0)
        if cmd.amount > bal:
            raise Reject(R.INSUFFICIENT_BALANCE, f"balance {amount_text(asset, bal)} is below {amount_text(asset, cmd.amount)}")
        m = self.margin
        m.fresh(acct)
        why = m.withdraw_refusal(acct, asset, bal, cmd.amount)
        if why is not None:
            raise Reject(R.INSUFFICIENT_MARGIN, why)
        return acct, asset

    # -------------------------------------------------------------- admin

    def set_index(self, cmd: SetIndexPrice) -> Asset:
        asset = reject.asset(self.s, cmd.asset)
        if not int_in(cmd.price, 1, MAX_PRICE):
            raise Reject(R.INVALID_FIELD, "price must be a positive integer (1e-8 USD units)")
        if asset is self.s.settle:
            raise Reject(R.NOT_ALLOWED, f"{asset.name} is the settlement asset; its price is 1")
        return asset

    def shock(self, cmd: ShockPrice) -> SetIndexPrice:
        asset = reject.asset(self.s, cmd.asset)
        if not int_in(cmd.change_bps, -9_999, 1_000_000):
            raise Reject(R.INVALID_FIELD, "change_bps must be in -9999..1000000")
        if asset.index == 0:
            raise Reject(R.NO_MARK_PRICE, f"{asset.name} has no index price to shock")
        return SetIndexPrice(asset=asset.name, price=max(1, asset.index * (10_000 + cmd.change_bps) // 10_000))

    def open_account(self, account_id) -> int:
        if not int_in(account_id, 0, 2**53):
            raise Reject(R.INVALID_FIELD, "account must be a non-negative integer")
        if account_id in self.accounts:
            raise Reject(R.ACCOUNT_EXISTS, f"account {account_id} already exists")
        return account_id

    def close_account(self, account_id) -> Account:
        acct = reject.account(self.s, account_id)
        if any(p.qty for p in acct.positions.values()):
            raise Reject(R.NOT_ALLOWED, "close the account's positions first")
        if any(acct.balances.values()):
            raise Reject(R.NOT_ALLOWED, "withdraw the account's balances first")
        return acct

    def margin_mode(self, cmd: SetMarginMode) -> tuple[Account, MarginMode]:
        acct = reject.account(self.s, cmd.account)
        try:
            mode = MarginMode(cmd.mode)
        except ValueError:
            raise Reject(R.INVALID_FIELD, f"unknown margin mode {cmd.mode!r}") from None
        if mode is acct.margin_mode:
            raise Reject(R.MARGIN_MODE_CHANGE_DENIED, f"the account is already in {mode} mode")
        if ISOLATED in (mode, acct.margin_mode) and (
            any(p.qty for p in acct.positions.values()) or acct.orders
        ):
            raise Reject(
                R.MARGIN_MODE_CHANGE_DENIED,
                "switching to or from isolated needs no open positions or orders (as on Binance)",
            )
        if mode is not ISOLATED and acct.margin_mode is not ISOLATED:
            im, _ = self.margin.mode_requirement(acct, mode)
            eq = self.margin.equity(acct)
            if im > eq:
                raise Reject(
                    R.MARGIN_MODE_CHANGE_DENIED,
                    f"{mode} mode would need initial margin {im:.2f} above equity {eq:.2f}",
                )
        return acct, mode

    # --- leverage

    def set_leverage(self, cmd: M.SetLeverage) -> tuple[Account, Instrument, int]:
        """(account, instrument, leverage) of a valid SetLeverage (Binance
        ``POST /fapi/v1/leverage``). Refused: above the maximum of the tier
        the symbol's notional (position and open orders, worse side) falls
        in; or, when it raises the initial margin (a lower leverage), if the
        account has not that much free: cross, the new IM above equity;
        isolated, the wallet's settlement balance short of what the position's
        top-up and the open orders need. The portfolio model ignores leverage
        (docs/adr/0010-leverage.md): there only the tier bound applies."""
        acct = reject.account(self.s, cmd.account)
        ins = reject.instrument(self.s, cmd.symbol)
        lev = cmd.leverage
        if type(lev) is not int or lev < 1:
            raise Reject(R.INVALID_FIELD, "leverage must be a whole number of at least 1")
        m = self.margin
        m.fresh(acct)
        notional = abs(acct.hyp.get(ins.symbol, 0.0))
        top = leverage.max_leverage(ins, notional)
        if lev > top:
            where = (f"for a notional of {notional:,.2f} {self.settle_name} (position and open orders)"
                     if notional else "on its first tier")
            raise Reject(R.LEVERAGE_ABOVE_MAX, f"leverage {lev}x is above the {top}x {ins.symbol} allows {where}")
        if acct.margin_mode is ISOLATED:
            trial = dict(acct.leverage)
            trial[ins.symbol] = lev
            need = m.isolated_need(acct, leverage=trial)
            if need > m.isolated_need(acct):
                free = acct.balances.get(self.settle_name, 0) / self.s.settle.unit
                if need > free:
                    raise Reject(
                        R.LEVERAGE_INSUFFICIENT_MARGIN,
                        f"{lev}x needs {need:,.2f} {self.settle_name} of isolated margin beyond the allocations, "
                        f"{need - max(free, 0.0):,.2f} more than the free balance {free:,.2f}",
                    )
            return acct, ins, lev
        after = m.im_at_leverage(acct, ins, lev)
        if after > acct.im_total:
            eq = m.equity(acct)
            if after > eq:
                raise Reject(
                    R.LEVERAGE_INSUFFICIENT_MARGIN,
                    f"{lev}x would need initial margin {after:,.2f} {self.settle_name}, "
                    f"{after - eq:,.2f} more than the equity {eq:,.2f}",
                )
        return acct, ins, lev

    def adjust_isolated(self, cmd: AdjustIsolatedMargin) -> tuple[Account, Instrument, int]:
        acct = reject.account(self.s, cmd.account)
        ins = reject.instrument(self.s, cmd.symbol)
        if acct.margin_mode is not ISOLATED:
            raise Reject(R.NOT_ALLOWED, "the account is not in isolated mode")
        delta = cmd.delta
        if not int_in(delta, -MAX_AMOUNT, MAX_AMOUNT) or delta == 0:
            raise Reject(R.INVALID_FIELD, "delta must be a non-zero integer of minor units")
        pos_qty = acct.position_qty(ins.symbol)
        if pos_qty == 0:
            raise Reject(R.NOT_ALLOWED, f"no open {ins.symbol} position to adjust")
        alloc = acct.isolated.get(ins.symbol, 0)
        if delta > 0:
            bal = acct.balances.get(self.settle_name, 0)
            if delta > bal:
                raise Reject(R.INSUFFICIENT_BALANCE, f"balance {amount_text(self.s.settle, bal)} is below {amount_text(self.s.settle, delta)}")
        else:
            im = self.margin.isolated_im(acct, ins, pos_qty)
            if (alloc + delta) / self.s.settle.unit < im:
                raise Reject(
                    R.INSUFFICIENT_MARGIN,
                    f"allocation would fall below the position's initial margin {im:.2f}",
                )
        return acct, ins, delta

    # --- funding and dated futures: admin commands' checks

    def settle_funding(self, cmd: M.SettleFunding) -> int | None:
        """The recorded rate of a valid SettleFunding (None: the book's own
        premium), its symbol, if named, checked."""
        if cmd.symbol is not None:
            reject.instrument(self.s, cmd.symbol)
        rate = cmd.rate_e8
        if rate is not None and (type(rate) is not int or abs(rate) > 10_000_000):
            raise Reject(R.INVALID_FIELD, f"rate_e8 must be an integer within +-10,000,000 (10%), got {rate}")
        return rate

    def shock_basis(self, cmd: M.ShockBasis) -> tuple[Instrument, Asset, int]:
        """(future, its underlying, basis change in 1e-8 USD) of a valid
        ShockBasis: a trading dated future whose underlying has an index."""
        ins = reject.instrument(self.s, cmd.symbol)
        if ins.kind != "future":
            raise Reject(R.INVALID_FIELD, f"{ins.symbol} is a {ins.kind}: only a dated future has a basis")
        if ins.state != "trading":
            raise Reject(R.NOT_TRADING, f"{ins.symbol} is {ins.state}")
        bps = cmd.change_bps
        if type(bps) is not int or not -10_000 < bps < 10_000:
            raise Reject(R.INVALID_FIELD, "change_bps must be a whole number of basis points between -9,999 and 9,999")
        asset = self.s.assets[ins.underlying]
        if not asset.index:
            raise Reject(R.NO_MARK_PRICE, f"{ins.underlying} has no index price yet")
        return ins, asset, asset.index * bps // 10_000
