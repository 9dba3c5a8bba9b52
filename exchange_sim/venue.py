"""The venue core: one sequenced command in, the events it caused out.

Contract (the LMAX / exchange-core idea):

- single-threaded, no clock, no randomness, no I/O: time is what the caller
  passes as ``ts``; every container iterated here has a defined order;
- ``apply(command)`` validates completely before it changes anything, so a
  rejected command leaves the state exactly as it was and returns one
  :class:`~protocol.messages.Rejected` event. (Work that the command's
  timestamp makes due — funding at an interval boundary — runs first, whatever
  the command; a journal replays it identically because ``ts`` is journaled.)
- flagged accounts are liquidated before ``apply`` returns
  (:mod:`exchange_sim.liquidation`), so every command ends with no account
  below maintenance margin unless the cascade bound was hit and said so;
- the same commands give the same events, bit for bit.

The life of an order, by function: ``_new_order`` / ``_place`` (validation,
pre-trade margin ``_pretrade``) → ``_execute`` (matching in
:mod:`exchange_sim.book`) → ``_settle_fills`` (positions, realized PnL, fees;
:mod:`exchange_sim.accounts`) → events (``_book_delta``, ``_account_update``)
→ ``_check_level``. Margin figures come from :mod:`exchange_sim.risk.margin`;
``docs/life-of-an-order.md`` walks through it against a running server.
"""

from __future__ import annotations

import math
from collections import OrderedDict
from collections.abc import Callable
from decimal import Decimal

import numpy as np

from exchange_sim import config as config_mod
from exchange_sim.accounts import Account
from exchange_sim.book import (
    BUY,
    FLAG_LIQUIDATION,
    FLAG_REDUCE_ONLY,
    SELL,
    STP_EXPIRE_BOTH,
    STP_EXPIRE_MAKER,
    STP_EXPIRE_TAKER,
    STP_NONE,
    Order,
)
from exchange_sim.config import Config
from exchange_sim.instruments import Asset, Instrument
from exchange_sim.funding import FundingRule, payment
from exchange_sim.liquidation import LiquidationEngine
from exchange_sim.risk import explain as explain_mod
from exchange_sim.risk.margin import ISOLATED, MarginEngine, counted_value
from exchange_sim.risk.sweep import MODE_CODE, RiskArrays, sweep
from protocol.messages import (
    MAX_AMOUNT,
    MAX_PRICE,
    PROTOCOL_VERSION,
    AccountClosed,
    AccountOpened,
    AccountUpdate,
    AdjustIsolatedMargin,
    AmendOrder,
    AssetInfo,
    BalanceChanged,
    BookDelta,
    BookSnapshot,
    CancelAll,
    CancelCause,
    CancelOnDisconnect,
    CancelOrder,
    CloseAccount,
    Deposit,
    Explain,
    Fill,
    FundingPayment,
    FundingRate,
    InstrumentInfo,
    Instruments,
    IsolatedMarginChanged,
    Liquidity,
    MarginCall,
    MarginMode,
    MarginModeChanged,
    MarkPrice,
    NewOrder,
    OpenAccount,
    OpenOrders,
    OrderAccepted,
    OrderAmended,
    OrderCancelled,
    OrderTriggered,
    OrderType,
    OrderView,
    PauseSymbol,
    PositionView,
    QueryAccount,
    QueryBook,
    QueryExplain,
    QueryInstruments,
    QueryOpenOrders,
    Rejected,
    RejectReason,
    SetIndexPrice,
    SetMarginMode,
    SettleFunding,
    ShockPrice,
    Side,
    StpMode,
    SymbolStatus,
    Tick,
    TimeInForce,
    Trade,
    Withdraw,
)

R = RejectReason
_SIDE = {Side.BUY: BUY, Side.SELL: SELL}
_SIDE_ENUM = {BUY: Side.BUY, SELL: Side.SELL}
_STP = {
    StpMode.NONE: STP_NONE,
    StpMode.EXPIRE_TAKER: STP_EXPIRE_TAKER,
    StpMode.EXPIRE_MAKER: STP_EXPIRE_MAKER,
    StpMode.EXPIRE_BOTH: STP_EXPIRE_BOTH,
}
_TIF = {t: t for t in TimeInForce}
_TYPE = {t: t for t in OrderType}
# Enum members as module globals for the hot paths: ``OrderType.LIMIT`` goes
# through the enum metaclass (~0.1 µs in CPython 3.11), a global is ~10x cheaper.
_LIMIT, _MARKET, _STOP_MARKET, _STOP_LIMIT = OrderType.LIMIT, OrderType.MARKET, OrderType.STOP_MARKET, OrderType.STOP_LIMIT
_GTC, _IOC, _FOK, _POST_ONLY = TimeInForce.GTC, TimeInForce.IOC, TimeInForce.FOK, TimeInForce.POST_ONLY
_MAKER, _TAKER = Liquidity.MAKER, Liquidity.TAKER
_USER = CancelCause.USER
_LEVEL_NAMES = ("ok", "warning", "reduce_only", "liquidation")


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


class _Reject(Exception):
    """Raised by validation helpers; ``apply`` turns it into a Rejected event."""

    def __init__(self, reason: RejectReason, message: str):
        self.reason = reason
        self.message = message


def _int_in(value: object, lo: int, hi: int) -> bool:
    return type(value) is int and lo <= value <= hi


class Venue:
    """The deterministic exchange state machine. See the module docstring."""

    def __init__(self, config: Config | None = None):
        self.config = config if config is not None else config_mod.default()
        settle_name = self.config.venue.settlement_asset
        self.assets: dict[str, Asset] = {a.name: Asset(a) for a in self.config.assets}
        self.settle = self.assets[settle_name]
        self.settle_name = settle_name
        self.instruments: dict[str, Instrument] = {
            c.symbol: Instrument(c, self.config, self.settle) for c in self.config.instruments
        }
        self.by_underlying: dict[str, list[Instrument]] = {}
        for ins in self.instruments.values():
            self.by_underlying.setdefault(ins.underlying, []).append(ins)
            if self.assets[ins.underlying].index:
                ins.mark = ins.mark_from_index(self.assets[ins.underlying].index)
        self.margin = MarginEngine(self.config, self.assets, self.instruments, self.settle)
        self.risk = self.config.risk
        self.default_mode = MarginMode(self.risk.default_mode)
        self.accounts: dict[int, Account] = {}
        self.arrays = RiskArrays(list(self.instruments), list(self.assets))
        #: accounts whose wallet or positions changed since the arrays were synced
        self._dirty: dict[int, Account] = {}
        self.funding = FundingRule(self.config.funding)
        self.next_funding: int | None = None  # venue time (ns) of the next settlement
        self.liq = LiquidationEngine(self)
        self.stops: dict[str, dict[int, StopOrder]] = {s: {} for s in self.instruments}
        self.max_open_orders = self.config.venue.max_open_orders
        self.client_id_memory = self.config.venue.client_id_memory
        self.seq = 0  # commands applied
        self.now = 0  # venue time, as given by the caller (ns)
        self.next_order_id = 1
        self.next_trade_id = 1
        # money-conservation ledger, per asset
        self.deposits: dict[str, int] = {}
        self.withdrawals: dict[str, int] = {}
        self.fees_collected: dict[str, int] = {}
        # the insurance fund is a real account, opened with its seed balance
        fund = Account(self.liq.fund_id, MarginMode.CROSS)
        self.accounts[fund.id] = fund
        self.arrays.add(fund)
        seed = int(Decimal(self.config.liquidation.insurance_seed) * self.settle.unit)
        if seed:
            fund.credit(settle_name, seed)
            self.deposits[settle_name] = seed
            self._dirty[fund.id] = fund
        self._handlers: dict[type, Callable] = {
            NewOrder: self._new_order,
            CancelOrder: self._cancel_order,
            AmendOrder: self._amend_order,
            CancelAll: self._cancel_all,
            CancelOnDisconnect: self._cancel_on_disconnect,
            Deposit: self._deposit,
            Withdraw: self._withdraw,
            SetIndexPrice: self._set_index_price,
            ShockPrice: self._shock_price,
            PauseSymbol: self._pause_symbol,
            OpenAccount: self._open_account,
            CloseAccount: self._close_account,
            QueryAccount: self._query_account,
            QueryOpenOrders: self._query_open_orders,
            QueryBook: self._query_book,
            QueryInstruments: self._query_instruments,
            QueryExplain: self._query_explain,
            SetMarginMode: self._set_margin_mode,
            AdjustIsolatedMargin: self._adjust_isolated,
            SettleFunding: self._settle_funding_cmd,
            Tick: self._tick,
        }

    # ------------------------------------------------------------ entry point

    def apply(self, command, ts: int | None = None) -> list:
        """Apply one command and return the events it caused, in order.

        ``ts`` is the venue time the sequencer stamped on the command (ns);
        time never moves backwards. Invalid commands return ``[Rejected]``
        and change nothing.
        """
        if ts is not None and type(ts) is not int:  # a sequencer bug, not user input
            raise TypeError(f"venue time must be an int of nanoseconds, got {type(ts).__name__}")
        self.seq += 1
        events: list = []
        if ts is not None and ts > self.now:
            self.now = ts
            self._clock(events)
        handler = self._handlers.get(type(command))
        if handler is None:
            return [Rejected(reason=R.UNKNOWN_MESSAGE, message=f"unknown command {type(command).__name__}")]
        try:
            handler(command, events)
        except _Reject as rej:
            events.append(self._rejected(command, rej.reason, rej.message))
        if self.liq.pending:
            self.liq.run(events)
        return events

    def _clock(self, events: list) -> None:
        """Time-driven work due at ``self.now``: funding at each interval
        boundary of venue time (00:00, 08:00, 16:00 UTC with the default 8 h)."""
        interval = self.funding.interval_ns
        if self.next_funding is None:
            self.next_funding = (self.now // interval + 1) * interval
        elif self.now >= self.next_funding:
            # one settlement even if several boundaries passed with no command
            self.next_funding = (self.now // interval + 1) * interval
            self._settle_funding(None, events)

    def _rejected(self, cmd, reason: RejectReason, message: str) -> Rejected:
        return Rejected(
            reason=reason,
            message=message,
            command=type(cmd).__name__,
            account=getattr(cmd, "account", None) if type(getattr(cmd, "account", None)) is int else None,
            order_id=getattr(cmd, "order_id", None) if type(getattr(cmd, "order_id", None)) is int else None,
            client_order_id=getattr(cmd, "client_order_id", None)
            if type(getattr(cmd, "client_order_id", None)) is str
            else None,
        )

    # ------------------------------------------------------------- lookups

    def _account(self, account_id) -> Account:
        acct = self.accounts.get(account_id) if type(account_id) is int else None
        if acct is None:
            raise _Reject(R.UNKNOWN_ACCOUNT, f"account {account_id!r} does not exist (deposit first)")
        return acct

    def _instrument(self, symbol) -> Instrument:
        ins = self.instruments.get(symbol) if type(symbol) is str else None
        if ins is None:
            raise _Reject(R.UNKNOWN_SYMBOL, f"unknown symbol {symbol!r}")
        return ins

    def _asset(self, name) -> Asset:
        asset = self.assets.get(name) if type(name) is str else None
        if asset is None:
            raise _Reject(R.UNKNOWN_ASSET, f"unknown asset {name!r}")
        return asset

    def _fresh(self, acct: Account) -> Account:
        return self.margin.fresh(acct)

    def _find_order(self, acct: Account, cmd):
        if cmd.order_id is not None:
            if type(cmd.order_id) is not int:
                raise _Reject(R.INVALID_FIELD, "order_id must be an integer")
            order = acct.orders.get(cmd.order_id)
        elif cmd.client_order_id is not None:
            if type(cmd.client_order_id) is not str:
                raise _Reject(R.INVALID_FIELD, "client_order_id must be a string")
            order = acct.by_cid.get(cmd.client_order_id)
        else:
            raise _Reject(R.INVALID_FIELD, "give order_id or client_order_id")
        if order is None:
            raise _Reject(R.UNKNOWN_ORDER, "no open order with that id on this account")
        return order

    # ---------------------------------------------------------- new orders

    def _new_order(self, cmd: NewOrder, events: list) -> None:
        # lookups inlined for the hit; the helpers raise the reject on a miss
        account = cmd.account
        acct = self.accounts.get(account) if type(account) is int else None
        if acct is None:
            acct = self._account(account)
        symbol = cmd.symbol
        ins = self.instruments.get(symbol) if type(symbol) is str else None
        if ins is None:
            ins = self._instrument(symbol)
        # str-typed values only: an unhashable garbage value must reject, not raise
        side = _SIDE.get(cmd.side) if isinstance(cmd.side, str) else None
        tif = _TIF.get(cmd.tif) if isinstance(cmd.tif, str) else None
        otype = _TYPE.get(cmd.type) if isinstance(cmd.type, str) else None
        stp = _STP.get(cmd.stp) if isinstance(cmd.stp, str) else None
        if side is None or tif is None or otype is None or stp is None or type(cmd.reduce_only) is not bool:
            raise _Reject(R.INVALID_FIELD, "side, type, tif, stp or reduce_only has an unknown value")
        if ins.paused:
            raise _Reject(R.SYMBOL_PAUSED, f"{ins.symbol} is paused")
        qty = cmd.qty
        if type(qty) is not int or qty <= 0:
            raise _Reject(R.BAD_LOT, "qty must be a positive whole number of lots")
        if qty > ins.max_qty:
            raise _Reject(R.ABOVE_MAX_QTY, f"qty {qty} exceeds the maximum {ins.max_qty} lots")
        cid = cmd.client_order_id
        if cid is not None:
            if type(cid) is not str or not 0 < len(cid) <= 36:
                raise _Reject(R.INVALID_FIELD, "client_order_id must be 1-36 characters")
            if cid in acct.by_cid:
                raise _Reject(R.DUPLICATE_CLIENT_ORDER_ID, f"client order id {cid!r} is already open")
            # Reused after its order ended: refused too. Binance asks uniqueness
            # among open orders only; we keep the last N ids like Bybit's unique
            # orderLinkId, because the design promises a retried order is never
            # doubled. The memory is venue state (in snapshots, rebuilt by
            # replay), so a resend after a reconnect or a restart never fills twice.
            used = acct.client_ids
            if used is not None and cid in used:
                raise _Reject(
                    R.DUPLICATE_CLIENT_ORDER_ID,
                    f"client order id {cid!r} was already used by order {used[cid]}, no longer open",
                )
        stop = otype is _STOP_MARKET or otype is _STOP_LIMIT
        # the cap counts orders that stay open: IOC, FOK and market orders never rest
        if len(acct.orders) >= self.max_open_orders and (
            tif is _GTC or tif is _POST_ONLY or stop
        ) and otype is not _MARKET:
            raise _Reject(R.TOO_MANY_OPEN_ORDERS, f"at most {self.max_open_orders} open orders")
        if ins.mark == 0:
            raise _Reject(R.NO_MARK_PRICE, f"{ins.symbol} has no index price yet")
        if stop:
            self._new_stop(cmd, acct, ins, side, otype, events)
            return
        price = cmd.price
        if otype is _MARKET:
            if price is not None:
                raise _Reject(R.INVALID_FIELD, "a market order takes no price")
            if tif is _POST_ONLY:
                raise _Reject(R.INVALID_FIELD, "a market order cannot be post-only")
        else:
            if price is None:
                raise _Reject(R.MISSING_PRICE, "a limit order needs a price")
            if type(price) is not int or not 1 <= price <= MAX_PRICE:
                raise _Reject(R.BAD_TICK, "price must be a positive whole number of ticks")
        self._place(acct, ins, cmd, side, otype, tif, stp, price, qty, events)

    def _place(self, acct, ins, cmd, side, otype, tif, stp, price, qty, events, order_id=None) -> None:
        """Checks that depend on the book and margin, then accept and execute."""
        book = ins.book
        if otype is _MARKET:
            limit = ins.market_limit(side == BUY)
            best = book.best_ask() if side == BUY else book.best_bid()
            if best is None or (best > limit if side == BUY else best < limit):
                raise _Reject(R.NO_LIQUIDITY, "no liquidity within the market price band")
            # margin at the worst price the order may reach: the band edge for a
            # buy; for a sell the best bid (it fills at or below it) or mark
            ref_price = limit if side == BUY else max(best, ins.mark)
        else:
            if not ins.within_limit_band(price):
                raise _Reject(R.OUTSIDE_PRICE_BAND, f"price {price} is too far from mark {ins.mark}")
            limit = ref_price = price
        reduce_only = cmd.reduce_only
        if reduce_only:
            # Bybit/Binance: a reduce-only order may only shrink the position;
            # a quantity above the position (less other reduce-only orders on
            # the same side) is trimmed to it.
            room = self._reduce_room(acct, ins.symbol, side, acct.position_qty(ins.symbol))
            if room <= 0:
                raise _Reject(R.REDUCE_ONLY_WOULD_INCREASE, "reduce-only order would open or increase a position")
            qty = qty if qty <= room else room
        elif ref_price * qty * ins.value < ins.min_notional:
            raise _Reject(R.BELOW_MIN_NOTIONAL, f"notional below {ins.min_notional_str} {self.settle_name}")
        # resting: a GTC or post-only limit that does not cross (O(1) to ask)
        rests = (tif is _GTC or tif is _POST_ONLY) and otype is _LIMIT and not book.would_cross(side, price)
        if tif is _POST_ONLY and not rests:
            raise _Reject(R.POST_ONLY_WOULD_CROSS, "post-only order would take liquidity")
        if tif is _FOK and not book.fillable(side, limit, qty, acct.id, stp):
            raise _Reject(R.FOK_NOT_FILLABLE, "fill-or-kill order cannot fill completely now")
        pre = None if reduce_only else self._check_margin(acct, ins, side, ref_price, qty)
        # ---- accepted: from here on the state changes
        cid = cmd.client_order_id
        if order_id is None:
            order_id = self.next_order_id
            self.next_order_id = order_id + 1
            if cid is not None:
                self._remember_client_id(acct, cid, order_id)
            events.append(
                OrderAccepted(
                    account=acct.id, order_id=order_id, symbol=ins.symbol, side=cmd.side, type=otype,
                    tif=tif, qty=qty, price=price, reduce_only=reduce_only, client_order_id=cid,
                )
            )
        order = Order(
            order_id, acct.id, side, limit, qty, stp, cid, ins.symbol, tif,
            FLAG_REDUCE_ONLY if reduce_only else 0, self.seq,
        )
        if rests:
            # The common case: what _execute does when nothing fills, minus the
            # empty match and the fill bookkeeping; the margin check's IM
            # terms are stored, not recomputed.
            book.add(order)
            self._remember(acct, order, pre)
            self._book_delta(ins, events)
            return
        self._execute(acct, ins, order, otype, events)

    def _reduce_room(self, acct: Account, symbol: str, side: int, pos_qty: int) -> int:
        """Lots a new reduce-only order on ``side`` may still close."""
        if pos_qty == 0 or (pos_qty > 0) == (side > 0):
            return 0
        room = pos_qty if pos_qty > 0 else -pos_qty
        if acct.reduce_only_orders:
            for o in acct.orders.values():
                if type(o) is Order and o.flags & FLAG_REDUCE_ONLY and o.symbol == symbol and o.side == side:
                    room -= o.qty
        return room

    def _check_margin(self, acct: Account, ins: Instrument, side: int, price: int, qty: int) -> tuple | None:
        """Pre-trade: IM with this order (and the same side's others) ≤ equity.
        Returns the new margin terms for ``MarginEngine.commit`` (see _pretrade)."""
        totals = acct.open_totals.get(ins.symbol)
        new = [0, 0, 0, 0] if totals is None else totals.copy()
        k = 0 if side == BUY else 2
        new[k] += qty
        new[k + 1] += price * qty
        return self._pretrade(acct, ins, new)

    def _pretrade(self, acct: Account, ins: Instrument, new_totals: list[int]) -> tuple | None:
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
        the model again (``_remember``)."""
        m = self.margin
        m.fresh(acct)
        if acct.margin_mode is ISOLATED:
            need = m.isolated_need(acct, ins, new_totals)
            if need <= m.isolated_need(acct, ins, acct.open_totals.get(ins.symbol)):
                return None
            free = acct.balances.get(self.settle_name, 0) / self.settle.unit
            if need > free:
                raise _Reject(
                    R.INSUFFICIENT_MARGIN,
                    f"isolated margin {need:.2f} exceeds the free {self.settle_name} balance {free:.2f}",
                )
            return None
        before, after, pre = m.im_after(acct, ins, new_totals)
        if after <= before:
            return pre
        ratio = m.ratio(acct)
        if ratio is not None and ratio < self.risk.reduce_only_ratio:
            raise _Reject(R.REDUCE_ONLY_MODE, f"margin ratio {ratio:.3f} is below {self.risk.reduce_only_ratio}: reduce risk only")
        eq = m.equity(acct)
        if after > eq:
            raise _Reject(
                R.INSUFFICIENT_MARGIN,
                f"initial margin {after:.2f} would exceed equity {eq:.2f} {self.settle_name}",
            )
        return pre

    def _new_stop(self, cmd, acct, ins, side, otype, events) -> None:
        stop = cmd.stop_price
        if stop is None:
            raise _Reject(R.MISSING_STOP_PRICE, "a stop order needs stop_price")
        if not _int_in(stop, 1, MAX_PRICE):
            raise _Reject(R.BAD_TICK, "stop_price must be a positive whole number of ticks")
        if otype is OrderType.STOP_LIMIT:
            if cmd.price is None:
                raise _Reject(R.MISSING_PRICE, "a stop-limit order needs a price")
            if not _int_in(cmd.price, 1, MAX_PRICE):
                raise _Reject(R.BAD_TICK, "price must be a positive whole number of ticks")
        elif cmd.price is not None:
            raise _Reject(R.INVALID_FIELD, "a stop-market order takes no price")
        tif = _TIF[cmd.tif]  # normalised: in-process callers may pass plain strings
        if tif is TimeInForce.POST_ONLY or tif is TimeInForce.FOK and otype is OrderType.STOP_MARKET:
            raise _Reject(R.INVALID_FIELD, f"{cmd.tif} is not allowed on {otype}")
        if (side == BUY and ins.mark >= stop) or (side == SELL and ins.mark <= stop):
            # Binance: "Order would immediately trigger" is refused
            raise _Reject(R.INVALID_FIELD, f"stop price {stop} would trigger immediately at mark {ins.mark}")
        if cmd.reduce_only and self._reduce_room(acct, ins.symbol, side, acct.position_qty(ins.symbol)) <= 0:
            raise _Reject(R.REDUCE_ONLY_WOULD_INCREASE, "reduce-only order would open or increase a position")
        order_id = self.next_order_id
        self.next_order_id += 1
        st = StopOrder(order_id, cmd, side)
        self.stops[ins.symbol][order_id] = st
        acct.orders[order_id] = st
        if cmd.client_order_id is not None:
            acct.by_cid[cmd.client_order_id] = st
            self._remember_client_id(acct, cmd.client_order_id, order_id)
        events.append(
            OrderAccepted(
                account=acct.id, order_id=order_id, symbol=ins.symbol, side=cmd.side, type=otype,
                tif=cmd.tif, qty=cmd.qty, price=cmd.price, stop_price=stop,
                reduce_only=cmd.reduce_only, client_order_id=cmd.client_order_id,
            )
        )

    # ------------------------------------------------------------ matching

    def _execute(self, acct: Account, ins: Instrument, order: Order, otype, events: list, liquidation: bool = False) -> None:
        """Match ``order`` as taker, settle each fill, rest or expire the rest."""
        book = ins.book
        limit = order.price
        taker_side = order.side
        res = book.match(taker_side, limit, order.qty, acct.id, order.stp)
        touched: list[Account] = []
        if res.fills:
            olds = self._settle_fills(acct, ins, order, res.fills, events, touched)
            for a in touched:
                self._dirty[a.id] = a
                if a.margin_mode is ISOLATED:
                    self._rebalance_isolated(a, ins, olds[a.id], events)
        for maker in res.stp_expired:
            self._forget(maker)
            events.append(
                OrderCancelled(
                    account=maker.account, order_id=maker.order_id, symbol=ins.symbol,
                    remaining=maker.qty, cause=CancelCause.SELF_TRADE, client_order_id=maker.client_order_id,
                )
            )
        order.qty = res.remaining
        if res.remaining:
            if res.taker_expired_by_stp:
                cause = CancelCause.SELF_TRADE
            elif otype is _MARKET:
                # stopped by the band only if liquidity is left beyond it
                left = book.best_ask() if taker_side == BUY else book.best_bid()
                cause = CancelCause.PRICE_BAND if left is not None else CancelCause.IOC
            elif order.tif is _IOC:
                cause = CancelCause.IOC
            elif order.tif is _FOK:
                cause = CancelCause.FOK  # only reachable through STP-free races; kept for safety
            else:
                cause = None
            if cause is None:
                book.add(order)
                self._remember(acct, order)
            elif not liquidation:  # the engine hands a liquidation's rest to the backstop
                events.append(
                    OrderCancelled(
                        account=acct.id, order_id=order.order_id, symbol=ins.symbol,
                        remaining=res.remaining, cause=cause, client_order_id=order.client_order_id,
                    )
                )
        stops = self.stops[ins.symbol]
        for a in touched:
            if a.reduce_only_orders:
                self._trim_reduce_only(a, ins, events)
            if stops:
                self._cancel_reduce_only_stops(a, ins, events)
        self._book_delta(ins, events)
        for a in touched:
            events.append(self._account_update(a))
        for a in touched:
            self._check_level(a, events)

    def _settle_fills(self, acct, ins, order, fills, events, touched) -> None:
        sym = ins.symbol
        value = ins.value
        settle = self.settle_name
        taker_side = order.side
        taker_enum = _SIDE_ENUM[taker_side]
        maker_enum = _SIDE_ENUM[-taker_side]
        taker_pos = acct.position(sym)
        accounts = self.accounts
        fees = self.fees_collected
        touched.append(acct)
        olds = {acct.id: taker_pos.qty}
        taker_fee_total = 0
        taker_pnl_total = 0
        liq = bool(order.flags & FLAG_LIQUIDATION)
        remaining = order.qty
        for maker, qty, price in fills:
            trade_id = self.next_trade_id
            self.next_trade_id += 1
            notional = price * qty * value
            # maker side
            mk = accounts[maker.account]
            if mk.id not in olds:
                olds[mk.id] = mk.position_qty(sym)
            mk_fee = ins.fee(notional, True)
            mk_pos = mk.position(sym)
            mk_pnl = mk_pos.apply_fill(-taker_side * qty, price) * value
            # not credit(): that would drop the margin cache; touch() below updates it
            bal = mk.balances
            bal[settle] = bal.get(settle, 0) + mk_pnl - mk_fee
            self._totals_sub(mk, maker, qty, False)
            if maker.qty == 0:
                self._forget(maker)  # its last lots were just taken out above
            if mk not in touched:
                touched.append(mk)
            events.append(
                Fill(
                    account=mk.id, order_id=maker.order_id, symbol=sym, side=maker_enum, price=price,
                    qty=qty, fee=mk_fee, liquidity=_MAKER, trade_id=trade_id, remaining=maker.qty,
                    realized_pnl=mk_pnl, position=mk_pos.qty, client_order_id=maker.client_order_id,
                )
            )
            # taker side; a liquidation pays the liquidation fee instead
            # (liquidation.fee_rate, charged by the engine after the slice):
            # the bankruptcy price leaves nothing for a taker fee on top
            tk_fee = 0 if liq else ins.fee(notional, False)
            tk_pnl = taker_pos.apply_fill(taker_side * qty, price) * value
            taker_fee_total += tk_fee
            taker_pnl_total += tk_pnl
            fees[settle] = fees.get(settle, 0) + mk_fee + tk_fee
            remaining -= qty
            order.filled += qty
            events.append(
                Fill(
                    account=acct.id, order_id=order.order_id, symbol=sym, side=taker_enum, price=price,
                    qty=qty, fee=tk_fee, liquidity=_TAKER, trade_id=trade_id, remaining=remaining,
                    realized_pnl=tk_pnl, position=taker_pos.qty, client_order_id=order.client_order_id,
                    liquidation=liq,
                )
            )
            events.append(Trade(symbol=sym, trade_id=trade_id, price=price, qty=qty, taker_side=taker_enum, liquidation=liq))
        bal = acct.balances
        bal[settle] = bal.get(settle, 0) + taker_pnl_total - taker_fee_total
        # Each account's settlement balance, position and open orders in this
        # symbol moved: recompute those margin terms only (no full refresh).
        touch = self.margin.touch
        for a in touched:
            touch(a, ins, settle)
        return olds

    # ------------------------------------------------- open-order bookkeeping

    def _remember_client_id(self, acct: Account, cid: str, order_id: int) -> None:
        """An order with client order id ``cid`` was accepted: keep the id
        among the account's last ``client_id_memory`` (oldest forgotten
        first). O(1)."""
        limit = self.client_id_memory
        if not limit:
            return
        used = acct.client_ids
        if used is None:
            used = acct.client_ids = OrderedDict()
        used[cid] = order_id
        if len(used) > limit:
            used.popitem(last=False)

    def _remember(self, acct: Account, order: Order, pre: tuple | None = None) -> None:
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

    def _totals_sub(self, acct: Account, order: Order, qty: int, update: bool = True) -> None:
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

    def _forget(self, order: Order) -> None:
        """Drop an order that left the book from its account's index, and take
        its remaining ``qty`` out of the open-order totals. O(1)."""
        acct = self.accounts[order.account]
        del acct.orders[order.order_id]
        if order.client_order_id is not None:
            acct.by_cid.pop(order.client_order_id, None)
        if order.flags & FLAG_REDUCE_ONLY:
            acct.reduce_only_orders -= 1
        self._totals_sub(acct, order, order.qty)

    def _trim_reduce_only(self, acct: Account, ins: Instrument, events: list) -> None:
        """After a position change, shrink or cancel reduce-only orders that
        would now increase it (oldest keeps its quantity first)."""
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
                self._totals_sub(acct, o, o.qty - allowed)
                ins.book.reduce(o.order_id, allowed)
                room -= allowed
                events.append(
                    OrderAmended(
                        account=acct.id, order_id=o.order_id, symbol=ins.symbol, price=o.price, qty=allowed,
                        priority_kept=True, client_order_id=o.client_order_id,
                    )
                )
            else:
                self._cancel_resting(o, ins, CancelCause.REDUCE_ONLY, events)

    def _cancel_reduce_only_stops(self, acct: Account, ins: Instrument, events: list) -> None:
        """After a position change: cancel (cause ``reduce_only``) the
        account's reduce-only stops in ``ins`` that could no longer reduce
        anything, the position being flat or now on the stop's own side, as
        resting reduce-only orders are. O(the smaller of the symbol's stops
        and the account's orders)."""
        pos_qty = acct.position_qty(ins.symbol)
        stops = self.stops[ins.symbol]
        pool = stops.values() if len(stops) <= len(acct.orders) else acct.orders.values()
        dead = [
            o for o in pool
            if type(o) is StopOrder and o.account == acct.id and o.symbol == ins.symbol and o.cmd.reduce_only
            and (pos_qty == 0 or (pos_qty > 0) == (o.side > 0))
        ]
        for o in sorted(dead, key=lambda o: o.order_id):
            self._cancel_resting(o, ins, CancelCause.REDUCE_ONLY, events)

    # ------------------------------------------------------ cancel / amend

    def _cancel_resting(self, order, ins: Instrument, cause: CancelCause, events: list) -> None:
        if type(order) is StopOrder:
            del self.stops[ins.symbol][order.order_id]
            acct = self.accounts[order.account]
            del acct.orders[order.order_id]
            if order.client_order_id is not None:
                acct.by_cid.pop(order.client_order_id, None)
        else:
            ins.book.cancel(order.order_id)
            self._forget(order)
        events.append(
            OrderCancelled(
                account=order.account, order_id=order.order_id, symbol=ins.symbol, remaining=order.qty,
                cause=cause, client_order_id=order.client_order_id,
            )
        )

    def _cancel_order(self, cmd: CancelOrder, events: list) -> None:
        # lookups inlined for the hit; the helpers raise the reject on a miss
        account = cmd.account
        acct = self.accounts.get(account) if type(account) is int else None
        if acct is None:
            acct = self._account(account)
        oid = cmd.order_id
        order = acct.orders.get(oid) if type(oid) is int else None
        if order is None:
            order = self._find_order(acct, cmd)
        ins = self.instruments[order.symbol]
        self._cancel_resting(order, ins, _USER, events)
        self._book_delta(ins, events)

    def _cancel_all(self, cmd: CancelAll, events: list, cause: CancelCause = CancelCause.CANCEL_ALL) -> None:
        acct = self._account(cmd.account)
        if cmd.symbol is not None:
            self._instrument(cmd.symbol)
        victims = sorted(
            (o for o in acct.orders.values() if cmd.symbol is None or o.symbol == cmd.symbol),
            key=lambda o: o.order_id,
        )
        for o in victims:
            self._cancel_resting(o, self.instruments[o.symbol], cause, events)
        for sym in sorted({o.symbol for o in victims}):
            self._book_delta(self.instruments[sym], events)

    def _cancel_on_disconnect(self, cmd: CancelOnDisconnect, events: list) -> None:
        """``CancelAll`` of every symbol, the cancels saying ``disconnect``
        (the server sends it when a cancel-on-disconnect session ends)."""
        self._cancel_all(CancelAll(account=cmd.account), events, CancelCause.DISCONNECT)

    def _amend_order(self, cmd: AmendOrder, events: list) -> None:
        acct = self._account(cmd.account)
        order = self._find_order(acct, cmd)
        if type(order) is StopOrder:
            raise _Reject(R.NOT_ALLOWED, "stop orders cannot be amended; cancel and place again")
        ins = self.instruments[order.symbol]
        if ins.paused:
            raise _Reject(R.SYMBOL_PAUSED, f"{ins.symbol} is paused")
        new_qty = order.qty if cmd.qty is None else cmd.qty
        new_price = order.price if cmd.price is None else cmd.price
        if not _int_in(new_qty, 1, ins.max_qty):
            raise _Reject(R.BAD_LOT, f"qty must be 1..{ins.max_qty} lots")
        if not _int_in(new_price, 1, MAX_PRICE):
            raise _Reject(R.BAD_TICK, "price must be a positive whole number of ticks")
        if new_qty == order.qty and new_price == order.price:
            raise _Reject(R.NOTHING_TO_AMEND, "the amend changes nothing")
        if new_price != order.price and not ins.within_limit_band(new_price):
            raise _Reject(R.OUTSIDE_PRICE_BAND, f"price {new_price} is too far from mark {ins.mark}")
        reduce_only = order.flags & FLAG_REDUCE_ONLY
        if reduce_only:
            room = self._reduce_room(acct, ins.symbol, order.side, acct.position_qty(ins.symbol)) + order.qty
            if new_qty > room:
                raise _Reject(R.REDUCE_ONLY_WOULD_INCREASE, f"reduce-only order may hold at most {room} lots")
        elif new_price * new_qty * ins.value < ins.min_notional:
            raise _Reject(R.BELOW_MIN_NOTIONAL, f"notional below {ins.min_notional_str} {self.settle_name}")
        crosses = new_price != order.price and ins.book.would_cross(order.side, new_price)
        if crosses and order.tif is TimeInForce.POST_ONLY:
            raise _Reject(R.POST_ONLY_WOULD_CROSS, "post-only order would take liquidity at the new price")
        if not reduce_only:
            grows = new_qty * new_price > order.qty * order.price or new_qty > order.qty
            if grows:
                self._check_amend_margin(acct, ins, order, new_price, new_qty)
        # ---- accepted
        if new_price == order.price and new_qty < order.qty:
            self._totals_sub(acct, order, order.qty - new_qty)
            ins.book.reduce(order.order_id, new_qty)
            events.append(
                OrderAmended(
                    account=acct.id, order_id=order.order_id, symbol=ins.symbol, price=new_price, qty=new_qty,
                    priority_kept=True, client_order_id=order.client_order_id,
                )
            )
            self._book_delta(ins, events)
            return
        # Loses priority: out of the book, then in again as a taker (a new
        # price may cross, as a cancel-replace would on Binance), keeping its id.
        ins.book.cancel(order.order_id)
        self._forget(order)
        order.price = new_price
        order.qty = new_qty
        events.append(
            OrderAmended(
                account=acct.id, order_id=order.order_id, symbol=ins.symbol, price=new_price, qty=new_qty,
                priority_kept=False, client_order_id=order.client_order_id,
            )
        )
        self._execute(acct, ins, order, OrderType.LIMIT, events)

    def _check_amend_margin(self, acct, ins, order, new_price, new_qty) -> None:
        new = acct.open_totals[ins.symbol].copy()
        k = 0 if order.side == BUY else 2
        new[k] += new_qty - order.qty
        new[k + 1] += new_price * new_qty - order.price * order.qty
        self._pretrade(acct, ins, new)

    # ------------------------------------------------------- wallet (admin)

    def _deposit(self, cmd: Deposit, events: list) -> None:
        asset = self._asset(cmd.asset)
        if not _int_in(cmd.account, 0, 2**53):
            raise _Reject(R.INVALID_FIELD, "account must be a non-negative integer")
        if not _int_in(cmd.amount, 1, MAX_AMOUNT):
            raise _Reject(R.INVALID_FIELD, f"amount must be 1..{MAX_AMOUNT} minor units")
        acct = self.accounts.get(cmd.account)
        if acct is None:
            acct = self.accounts[cmd.account] = Account(cmd.account, self.default_mode)
            self.arrays.add(acct)
        bal = acct.credit(asset.name, cmd.amount)
        self.deposits[asset.name] = self.deposits.get(asset.name, 0) + cmd.amount
        self._dirty[acct.id] = acct
        events.append(BalanceChanged(account=acct.id, asset=asset.name, delta=cmd.amount, balance=bal, reason="deposit"))
        events.append(self._account_update(acct))

    def _withdraw(self, cmd: Withdraw, events: list) -> None:
        acct = self._account(cmd.account)
        asset = self._asset(cmd.asset)
        if not _int_in(cmd.amount, 1, MAX_AMOUNT):
            raise _Reject(R.INVALID_FIELD, f"amount must be 1..{MAX_AMOUNT} minor units")
        bal = acct.balances.get(asset.name, 0)
        if cmd.amount > bal:
            raise _Reject(R.INSUFFICIENT_BALANCE, f"balance {bal} is below {cmd.amount}")
        self._fresh(acct)
        if acct.margin_mode is ISOLATED:
            self._check_isolated_withdraw(acct, asset, bal, cmd.amount)
        # with no IM, a debt (negative settlement balance) must stay backed too
        elif acct.im_total > 0.0 or any(b < 0 for b in acct.balances.values()):
            _, counted_before = counted_value(asset, bal)
            _, counted_after = counted_value(asset, bal - cmd.amount)
            eq_after = self.margin.equity(acct) - counted_before + counted_after
            if acct.im_total > eq_after:
                raise _Reject(
                    R.INSUFFICIENT_MARGIN,
                    f"withdrawal would leave equity {eq_after:.2f} below initial margin {acct.im_total:.2f}",
                )
        bal = acct.credit(asset.name, -cmd.amount)
        self.withdrawals[asset.name] = self.withdrawals.get(asset.name, 0) + cmd.amount
        self._dirty[acct.id] = acct
        events.append(BalanceChanged(account=acct.id, asset=asset.name, delta=-cmd.amount, balance=bal, reason="withdraw"))
        events.append(self._account_update(acct))

    def _check_isolated_withdraw(self, acct: Account, asset: Asset, bal: int, amount: int) -> None:
        """Isolated mode: each position is backed by its allocation, which its
        loss cannot exceed, so allocations and isolated uPnL are left out and
        only the wallet counts. After the withdrawal the free settlement
        balance must still cover the IM the open orders need beyond the
        allocations (``isolated_need``, as the pre-trade check), and a debt
        must stay backed by the wallet's counted collateral."""
        m = self.margin
        if asset is self.settle:
            need = m.isolated_need(acct)
            free = (bal - amount) / self.settle.unit
            if need > free:
                raise _Reject(
                    R.INSUFFICIENT_MARGIN,
                    f"withdrawal would leave the free {asset.name} balance {free:.2f} below the isolated "
                    f"margin its open orders need {need:.2f}",
                )
        if any(b < 0 for b in acct.balances.values()):
            _, counted_before = counted_value(asset, bal)
            _, counted_after = counted_value(asset, bal - amount)
            wallet_after = acct.collateral - counted_before + counted_after
            if wallet_after < 0.0:
                raise _Reject(
                    R.INSUFFICIENT_MARGIN,
                    f"withdrawal would leave the wallet {wallet_after:.2f} {self.settle_name} short of its debt",
                )

    # --------------------------------------------------------------- prices

    def _set_index_price(self, cmd: SetIndexPrice, events: list) -> None:
        asset = self._asset(cmd.asset)
        if not _int_in(cmd.price, 1, MAX_PRICE):
            raise _Reject(R.INVALID_FIELD, "price must be a positive integer (1e-8 USD units)")
        if asset is self.settle:
            raise _Reject(R.NOT_ALLOWED, f"{asset.name} is the settlement asset; its price is 1")
        asset.index = cmd.price
        self.margin.epoch += 1
        for ins in self.by_underlying.get(asset.name, ()):
            ins.mark = ins.mark_from_index(cmd.price)
            events.append(MarkPrice(symbol=ins.symbol, mark=ins.mark, index=cmd.price))
        for ins in self.by_underlying.get(asset.name, ()):
            self._trigger_stops(ins, events)
        self._sweep_levels(events)

    def _shock_price(self, cmd: ShockPrice, events: list) -> None:
        asset = self._asset(cmd.asset)
        if not _int_in(cmd.change_bps, -9_999, 1_000_000):
            raise _Reject(R.INVALID_FIELD, "change_bps must be in -9999..1000000")
        if asset.index == 0:
            raise _Reject(R.NO_MARK_PRICE, f"{asset.name} has no index price to shock")
        price = max(1, asset.index * (10_000 + cmd.change_bps) // 10_000)
        self._set_index_price(SetIndexPrice(asset=asset.name, price=price), events)

    def _pause_symbol(self, cmd: PauseSymbol, events: list) -> None:
        ins = self._instrument(cmd.symbol)
        if type(cmd.paused) is not bool:
            raise _Reject(R.INVALID_FIELD, "paused must be true or false")
        ins.paused = cmd.paused
        events.append(SymbolStatus(symbol=ins.symbol, paused=ins.paused))

    def _open_account(self, cmd: OpenAccount, events: list) -> None:
        if not _int_in(cmd.account, 0, 2**53):
            raise _Reject(R.INVALID_FIELD, "account must be a non-negative integer")
        if cmd.account in self.accounts:
            raise _Reject(R.ACCOUNT_EXISTS, f"account {cmd.account} already exists")
        self.arrays.add(acct := Account(cmd.account, self.default_mode))
        self.accounts[cmd.account] = acct
        events.append(AccountOpened(account=cmd.account))

    def _close_account(self, cmd: CloseAccount, events: list) -> None:
        acct = self._account(cmd.account)
        if any(p.qty for p in acct.positions.values()):
            raise _Reject(R.NOT_ALLOWED, "close the account's positions first")
        if any(acct.balances.values()):
            raise _Reject(R.NOT_ALLOWED, "withdraw the account's balances first")
        self._cancel_all(CancelAll(account=acct.id), events)
        self._dirty.pop(acct.id, None)
        self.arrays.remove(acct, self.accounts)
        del self.accounts[acct.id]
        events.append(AccountClosed(account=acct.id))

    def _trigger_stops(self, ins: Instrument, events: list) -> None:
        """Stops whose stop price the mark crossed become live orders, oldest first."""
        stops = self.stops[ins.symbol]
        if not stops:
            return
        mark = ins.mark
        fired = [s for s in stops.values() if (s.side == BUY and mark >= s.stop_price) or (s.side == SELL and mark <= s.stop_price)]
        for st in sorted(fired, key=lambda s: s.order_id):
            if stops.pop(st.order_id, None) is None:
                continue  # cancelled by an earlier one's fill (a reduce-only stop whose position closed)
            acct = self.accounts[st.account]
            del acct.orders[st.order_id]
            if st.client_order_id is not None:
                acct.by_cid.pop(st.client_order_id, None)
            events.append(
                OrderTriggered(account=acct.id, order_id=st.order_id, symbol=ins.symbol, mark=mark, client_order_id=st.client_order_id)
            )
            cmd = st.cmd
            otype = OrderType.MARKET if _TYPE[cmd.type] is OrderType.STOP_MARKET else OrderType.LIMIT
            tif = TimeInForce.IOC if otype is OrderType.MARKET else _TIF[cmd.tif]
            try:
                self._place(acct, ins, cmd, st.side, otype, tif, _STP[cmd.stp], cmd.price, cmd.qty, events, order_id=st.order_id)
            except _Reject as rej:
                events.append(self._rejected(cmd, rej.reason, f"stop order {st.order_id} triggered but: {rej.message}"))
                events[-1].order_id = st.order_id

    # ------------------------------------------------------- margin & risk

    def _level(self, ratio: float | None) -> int:
        if ratio is None:
            return 0
        r = self.risk
        if ratio < r.liquidation_ratio:
            return 3
        if ratio < r.reduce_only_ratio:
            return 2
        return 1 if ratio < r.warning_ratio else 0

    def _check_level(self, acct: Account, events: list) -> None:
        """Per-account path (after a fill, funding, a transfer): record the
        margin-call level and tell the account when it got worse (isolated:
        the worst position's ratio, and its symbol in the MarginCall)."""
        m = self.margin
        if acct.margin_mode is ISOLATED:
            ratio, symbol = m.isolated_worst(self._fresh(acct))
        else:
            ratio, symbol = m.ratio(self._fresh(acct)), None
        level = self._level(ratio)
        levels = self.arrays.level
        old = levels[acct.col]
        if level > old:
            events.append(
                MarginCall(
                    account=acct.id, level=_LEVEL_NAMES[level], margin_ratio=ratio,
                    equity=m.equity(acct), mm=acct.mm, symbol=symbol,
                )
            )
        if level != old:  # numpy scalar writes are slow; the level rarely changes
            levels[acct.col] = level
        if level == 3:
            self.liq.flag(acct)

    def risk_sweep(self):
        """Equity, IM, MM and ratio of every account in one vectorized pass
        (:mod:`exchange_sim.risk.sweep`)."""
        arrays = self.arrays
        for acct in self._dirty.values():
            arrays.sync(acct)
        self._dirty.clear()
        return sweep(arrays, self.margin)

    def _sweep_levels(self, events: list) -> None:
        """After a price move: re-check every account at once; margin calls go
        out most under-margined first (ties by account id)."""
        res = self.risk_sweep()
        n = len(res.ids)
        if n == 0:
            return
        r = self.risk
        ratio = res.ratio
        new = np.where(
            ratio < r.liquidation_ratio, 3,
            np.where(ratio < r.reduce_only_ratio, 2, np.where(ratio < r.warning_ratio, 1, 0)),
        ).astype(np.int8)
        old = self.arrays.level[:n]
        worse = np.flatnonzero(new > old)
        old[:] = new
        ids = res.ids
        for col in np.flatnonzero(new == 3).tolist():
            self.liq.flag(self.accounts[ids[col]])
        if worse.size == 0:
            return
        iso = self.arrays.mode[:n] == MODE_CODE[ISOLATED]
        for col in sorted(worse.tolist(), key=lambda c: (ratio[c], ids[c])):
            symbol = None
            if iso[col]:  # the worst position, per account: only for the few that get an event
                symbol = self.margin.isolated_worst(self.accounts[ids[col]])[1]
            events.append(
                MarginCall(
                    account=ids[col], level=_LEVEL_NAMES[new[col]], margin_ratio=float(ratio[col]),
                    equity=float(res.equity[col]), mm=float(res.mm[col]), symbol=symbol,
                )
            )

    def _rebalance_isolated(self, acct: Account, ins: Instrument, old_qty: int, events: list) -> None:
        """Isolated mode: keep each position's allocation in step with its size.

        Growing (or flipping): top the allocation up to the position's IM at
        mark, moved out of the wallet's settlement balance. Shrinking: release
        the closed share back to the wallet (rounded down: the position keeps
        the odd unit). Closed: release all of it.
        """
        sym = ins.symbol
        new_qty = acct.position_qty(sym)
        alloc = acct.isolated.get(sym, 0)
        flipped = old_qty != 0 and new_qty != 0 and (old_qty > 0) != (new_qty > 0)
        if new_qty == 0:
            target = 0
        elif flipped or abs(new_qty) > abs(old_qty):
            im = ins.im_tiers.amount(ins.usd(abs(new_qty) * ins.mark))
            target = max(0 if flipped else alloc, math.ceil(im * self.settle.unit))
        else:  # shrank: the closed share goes back to the wallet
            target = alloc * abs(new_qty) // abs(old_qty)
        delta = target - alloc
        if delta == 0:
            return
        acct.credit(self.settle_name, -delta)
        if target:
            acct.isolated[sym] = target
        else:
            acct.isolated.pop(sym, None)
        events.append(IsolatedMarginChanged(account=acct.id, symbol=sym, delta=delta, allocated=target))

    def _set_margin_mode(self, cmd: SetMarginMode, events: list) -> None:
        acct = self._account(cmd.account)
        try:
            mode = MarginMode(cmd.mode)
        except ValueError:
            raise _Reject(R.INVALID_FIELD, f"unknown margin mode {cmd.mode!r}") from None
        if mode is acct.margin_mode:
            raise _Reject(R.MARGIN_MODE_CHANGE_DENIED, f"the account is already in {mode} mode")
        if ISOLATED in (mode, acct.margin_mode) and (
            any(p.qty for p in acct.positions.values()) or acct.orders
        ):
            raise _Reject(
                R.MARGIN_MODE_CHANGE_DENIED,
                "switching to or from isolated needs no open positions or orders (as on Binance)",
            )
        if mode is not ISOLATED and acct.margin_mode is not ISOLATED:
            im, _ = self.margin.mode_requirement(acct, mode)
            eq = self.margin.equity(acct)
            if im > eq:
                raise _Reject(
                    R.MARGIN_MODE_CHANGE_DENIED,
                    f"{mode} mode would need initial margin {im:.2f} above equity {eq:.2f}",
                )
        acct.margin_mode = mode
        acct.cache_epoch = -1
        self._dirty[acct.id] = acct
        events.append(MarginModeChanged(account=acct.id, mode=mode))
        events.append(self._account_update(acct))
        self._check_level(acct, events)

    def _adjust_isolated(self, cmd: AdjustIsolatedMargin, events: list) -> None:
        acct = self._account(cmd.account)
        ins = self._instrument(cmd.symbol)
        if acct.margin_mode is not ISOLATED:
            raise _Reject(R.NOT_ALLOWED, "the account is not in isolated mode")
        delta = cmd.delta
        if not _int_in(delta, -MAX_AMOUNT, MAX_AMOUNT) or delta == 0:
            raise _Reject(R.INVALID_FIELD, "delta must be a non-zero integer of minor units")
        pos_qty = acct.position_qty(ins.symbol)
        if pos_qty == 0:
            raise _Reject(R.NOT_ALLOWED, f"no open {ins.symbol} position to adjust")
        alloc = acct.isolated.get(ins.symbol, 0)
        if delta > 0:
            bal = acct.balances.get(self.settle_name, 0)
            if delta > bal:
                raise _Reject(R.INSUFFICIENT_BALANCE, f"{self.settle_name} balance {bal} is below {delta}")
        else:
            im = ins.im_tiers.amount(ins.usd(abs(pos_qty) * ins.mark))
            if (alloc + delta) / self.settle.unit < im:
                raise _Reject(
                    R.INSUFFICIENT_MARGIN,
                    f"allocation would fall below the position's initial margin {im:.2f}",
                )
        acct.credit(self.settle_name, -delta)
        acct.isolated[ins.symbol] = alloc + delta
        self._dirty[acct.id] = acct
        events.append(IsolatedMarginChanged(account=acct.id, symbol=ins.symbol, delta=delta, allocated=alloc + delta))
        events.append(self._account_update(acct))
        self._check_level(acct, events)

    def _tick(self, cmd: Tick, events: list) -> None:
        """Time only: ``apply`` already ran what the new time made due."""

    def _settle_funding_cmd(self, cmd: SettleFunding, events: list) -> None:
        if cmd.symbol is not None:
            self._instrument(cmd.symbol)
        self._settle_funding(cmd.symbol, events)

    def _settle_funding(self, symbol: str | None, events: list) -> None:
        """Longs pay shorts (or the reverse) qty × mark × rate, per instrument,
        accounts in id order. See :mod:`exchange_sim.funding`.

        An isolated position pays from, and receives into, its own allocation
        (as on Binance); a payment larger than the allocation takes it to zero
        and only the rest comes from the wallet. Each allocation change is an
        ``IsolatedMarginChanged``; afterwards every holder's ratio is checked
        (isolated: each position's own, so a drained one is liquidated alone).
        """
        settle = self.settle_name
        holders = sorted(self.accounts.values(), key=lambda a: a.id)
        touched: dict[int, Account] = {}
        for ins in self.instruments.values():
            if (symbol is not None and ins.symbol != symbol) or ins.mark == 0:
                continue
            premium = self.funding.premium(ins)
            rate = self.funding.rate_e8(premium)
            events.append(FundingRate(symbol=ins.symbol, rate_e8=rate, mark=ins.mark, premium=premium))
            if rate == 0:
                continue
            dust = 0
            for acct in holders:
                qty = acct.position_qty(ins.symbol)
                if not qty:
                    continue
                amount = payment(qty, ins.mark, ins.value, rate)
                dust -= amount
                touched[acct.id] = acct
                events.append(
                    FundingPayment(account=acct.id, symbol=ins.symbol, position=qty, rate_e8=rate, amount=amount)
                )
                if acct.margin_mode is ISOLATED and amount:
                    rest = self._fund_isolated(acct, ins.symbol, amount, events)
                    if rest:
                        acct.credit(settle, rest)
                else:
                    acct.credit(settle, amount)
            self.fees_collected[settle] = self.fees_collected.get(settle, 0) + dust
        for acct in touched.values():
            self._dirty[acct.id] = acct
            events.append(self._account_update(acct))
        for acct in touched.values():
            self._check_level(acct, events)

    def _fund_isolated(self, acct: Account, sym: str, amount: int, events: list) -> int:
        """Book a funding ``amount`` (> 0 received, < 0 paid) against the
        isolated position's allocation; return what the wallet still pays
        (the part of a payment beyond the allocation), else 0."""
        alloc = acct.isolated.get(sym, 0)
        delta = amount if amount > 0 else max(amount, -alloc)
        if delta == 0:  # nothing allocated to pay from
            return amount
        target = alloc + delta
        if target:
            acct.isolated[sym] = target
        else:
            acct.isolated.pop(sym, None)
        acct.cache_epoch = -1  # the contract for changes outside the fill path (ADR 0003)
        events.append(IsolatedMarginChanged(account=acct.id, symbol=sym, delta=delta, allocated=target))
        return amount - delta

    def explain(self, account_id: int) -> Explain:
        """Every margin figure of one account, and the same holdings under each
        margin mode side by side (see :mod:`exchange_sim.risk.explain`).
        Raises ``KeyError`` for an unknown account."""
        return explain_mod.build(self, self.accounts[account_id])

    def _query_explain(self, cmd: QueryExplain, events: list) -> None:
        events.append(explain_mod.build(self, self._account(cmd.account)))

    # -------------------------------------------------------------- queries

    def _query_account(self, cmd: QueryAccount, events: list) -> None:
        events.append(self._account_update(self._account(cmd.account)))

    def _query_open_orders(self, cmd: QueryOpenOrders, events: list) -> None:
        acct = self._account(cmd.account)
        if cmd.symbol is not None:
            self._instrument(cmd.symbol)
        views = [
            self._order_view(o)
            for o in sorted(acct.orders.values(), key=lambda o: o.order_id)
            if cmd.symbol is None or o.symbol == cmd.symbol
        ]
        events.append(OpenOrders(account=acct.id, orders=views))

    def _order_view(self, o) -> OrderView:
        if type(o) is StopOrder:
            c = o.cmd
            return OrderView(
                order_id=o.order_id, symbol=o.symbol, side=c.side, type=c.type, tif=c.tif, qty=c.qty, filled=0,
                price=c.price, stop_price=c.stop_price, reduce_only=c.reduce_only, client_order_id=c.client_order_id,
            )
        return OrderView(
            order_id=o.order_id, symbol=o.symbol, side=_SIDE_ENUM[o.side], type=OrderType.LIMIT, tif=o.tif,
            qty=o.qty, filled=o.filled, price=o.price, reduce_only=bool(o.flags & FLAG_REDUCE_ONLY),
            client_order_id=o.client_order_id,
        )

    def _query_book(self, cmd: QueryBook, events: list) -> None:
        ins = self._instrument(cmd.symbol)
        depth = cmd.depth
        if depth is not None and not _int_in(depth, 1, 10_000):
            raise _Reject(R.INVALID_FIELD, "depth must be 1..10000")
        events.append(self.book_snapshot(ins.symbol, depth))

    def book_snapshot(self, symbol: str, depth: int | None = None) -> BookSnapshot:
        ins = self.instruments[symbol]
        return BookSnapshot(
            symbol=symbol, seq=ins.book_seq, bids=ins.book.depth(BUY, depth), asks=ins.book.depth(SELL, depth)
        )

    def _query_instruments(self, cmd: QueryInstruments, events: list) -> None:
        events.append(
            Instruments(
                protocol_version=PROTOCOL_VERSION,
                instruments=[
                    InstrumentInfo(
                        symbol=i.symbol, underlying=i.underlying, settlement=i.settlement,
                        tick_size=str(i.tick_size), lot_size=str(i.lot_size), min_notional=i.min_notional_str,
                        max_qty=i.max_qty, maker_fee=i.maker_fee_str, taker_fee=i.taker_fee_str,
                    )
                    for i in self.instruments.values()
                ],
                assets=[AssetInfo(name=a.name, decimals=a.decimals, index_price=a.index or None) for a in self.assets.values()],
            )
        )

    # --------------------------------------------------------- event helpers

    def _book_delta(self, ins: Instrument, events: list) -> None:
        bids, asks = ins.book.take_delta()
        if not bids and not asks:
            return
        ins.book_seq += 1
        events.append(BookDelta(symbol=ins.symbol, seq=ins.book_seq, bids=bids, asks=asks))

    def _account_update(self, acct: Account) -> AccountUpdate:
        """The account's whole state. Each PositionView is a function of the
        position's qty and cost and the mark only, so it is cached on the
        account under those three and rebuilt only when one moved: after a
        fill that is the traded symbol's view alone. (Views are shared by the
        events that carry them; events are read-only.)"""
        self._fresh(acct)
        positions = []
        views = acct.views
        for sym in sorted(acct.positions):
            pos = acct.positions[sym]
            qty = pos.qty
            if not qty:
                continue
            ins = self.instruments[sym]
            mark = ins.mark
            cached = views.get(sym)
            if cached is not None and cached[0] == qty and cached[1] == pos.cost and cached[2] == mark:
                positions.append(cached[3])
                continue
            notional = abs(qty) * mark * ins.value
            view = PositionView(
                symbol=sym, qty=qty, entry_price=pos.entry_price(), mark=mark, notional=notional,
                upnl=(qty * mark - pos.cost) * ins.value,
                im=ins.im_tiers.amount(notional / ins.settle_unit),
                mm=ins.mm_tiers.amount(notional / ins.settle_unit),
            )
            views[sym] = (qty, pos.cost, mark, view)
            positions.append(view)
        balances = acct.balances
        return AccountUpdate(
            account=acct.id, balances=dict(sorted(balances.items())) if len(balances) > 1 else balances.copy(),
            positions=positions, collateral=acct.collateral, equity=self.margin.equity(acct), im=acct.im_total,
            mm=acct.mm, margin_ratio=self.margin.ratio(acct), margin_mode=acct.margin_mode,
        )

    # ------------------------------------------------------------ invariants

    @staticmethod
    def _margin_cache(acct: Account) -> tuple:
        return (
            acct.collateral, acct.upnl, acct.mm, acct.im_total, dict(acct.hyp), dict(acct.cv_parts),
            dict(acct.upnl_parts), dict(acct.expo), dict(acct.mm_parts), dict(acct.im_parts),
        )

    def _check(self) -> None:
        """Assert every invariant of the venue (tests call this after each step).

        - each book's own invariants hold;
        - money is conserved per asset: Σ balances (+ Σ unrealized PnL for the
          settlement asset) + fees collected = Σ deposits − Σ withdrawals;
        - positions net to zero per instrument;
        - every account's open-order index and totals match its resting orders;
        - every valid margin cache, kept up to date incrementally, holds the
          same bits as a refresh from scratch.
        """
        for ins in self.instruments.values():
            ins.book._check()
        for name in self.assets:
            total = sum(a.balances.get(name, 0) for a in self.accounts.values())
            total += self.fees_collected.get(name, 0)
            if name == self.settle_name:
                for a in self.accounts.values():
                    total += sum(a.isolated.values())
                    for sym, pos in a.positions.items():
                        ins = self.instruments[sym]
                        total += (pos.qty * ins.mark - pos.cost) * ins.value
            expected = self.deposits.get(name, 0) - self.withdrawals.get(name, 0)
            assert total == expected, f"{name}: holdings {total} != net deposits {expected}"
        for sym, ins in self.instruments.items():
            net = sum(a.position_qty(sym) for a in self.accounts.values())
            assert net == 0, f"{sym}: positions net to {net}"
        arrays = self.arrays
        assert arrays.n == len(self.accounts) and sorted(arrays.ids) == sorted(self.accounts)
        for acct in self.accounts.values():
            assert arrays.ids[acct.col] == acct.id, f"account {acct.id}: wrong sweep column"
            if acct.id not in self._dirty:  # synced accounts must match their columns
                col = acct.col
                for sym, i in arrays.sym_row.items():
                    pos = acct.positions.get(sym)
                    assert arrays.qty[i, col] == (pos.qty if pos else 0), f"account {acct.id}: stale qty {sym}"
                for name, k in arrays.asset_row.items():
                    assert arrays.bal[k, col] == acct.balances.get(name, 0), f"account {acct.id}: stale {name}"
                assert arrays.mode[col] == MODE_CODE[acct.margin_mode]
            for sym, alloc in acct.isolated.items():
                assert alloc > 0 and acct.position_qty(sym) != 0, f"account {acct.id}: allocation without position"
        for acct in self.accounts.values():
            resting = {}
            for oid, o in acct.orders.items():
                assert o.order_id == oid and o.account == acct.id
                if type(o) is Order:
                    book_order = self.instruments[o.symbol].book.get(oid)
                    assert book_order is o, f"order {oid} is indexed but not resting"
                    t = resting.setdefault(o.symbol, [0, 0, 0, 0])
                    k = 0 if o.side == BUY else 2
                    t[k] += o.qty
                    t[k + 1] += o.price * o.qty
                else:
                    assert self.stops[o.symbol].get(oid) is o
            assert resting == acct.open_totals, f"account {acct.id}: open totals {acct.open_totals} != {resting}"
            cids = {o.client_order_id: o for o in acct.orders.values() if o.client_order_id is not None}
            assert cids == acct.by_cid, f"account {acct.id}: client id index out of date"
            used = acct.client_ids or {}
            assert len(used) <= self.client_id_memory, f"account {acct.id}: client id memory over its bound"
            assert all(used.get(c, o.order_id) == o.order_id for c, o in cids.items()), (
                f"account {acct.id}: a remembered client id names another order than the open one"
            )
            ro = sum(1 for o in acct.orders.values() if type(o) is Order and o.flags & FLAG_REDUCE_ONLY)
            assert ro == acct.reduce_only_orders
            if acct.cache_epoch == self.margin.epoch:
                cached = self._margin_cache(acct)
                self.margin.refresh(acct)
                assert cached == self._margin_cache(acct), f"account {acct.id}: stale margin cache"
        for ins in self.instruments.values():
            for side in (BUY, SELL):
                for o in ins.book.iter_orders(side):
                    assert self.accounts[o.account].orders.get(o.order_id) is o, f"book order {o.order_id} not indexed"
