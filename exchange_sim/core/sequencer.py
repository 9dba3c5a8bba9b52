"""The sequencer: one sequenced command in, the events it caused out.

Contract (the LMAX / exchange-core idea; the stages are docs/adr/0007-pipeline.md):

- single-threaded, no clock, no randomness, no I/O: time is what the caller
  passes as ``ts``; every container iterated here has a defined order;
- ``apply(command)`` numbers the command (``seq``), runs what its time made
  due (funding at an interval boundary), then the stages in order:
  **entry** (R1: validate, pre-trade margin → ticket or typed reject; changes
  nothing) → **matching** (the instrument's engine → ``Execution``) →
  **clearing** (R2: settle; the only writer of money) → **watch** (margin
  levels) → **liquidation** of whoever watch flagged, before ``apply``
  returns, so every command ends with no account below maintenance margin
  unless the cascade bound was hit and said so, or the account waits out
  the liquidation grace (``[liquidation] grace_ms`` of venue time after its
  flag, so the book can re-form after a jump: docs/adr/0013-house-liquidity.md);
  last, the **history** (:mod:`.history`) reads the command's events (it
  changes no event);
- a rejected command leaves the state exactly as it was and returns one
  :class:`~protocol.messages.Rejected` event;
- ``query(command)`` answers a read (``Query*``) from :mod:`.views` without
  a sequence number: it changes nothing, so it needs no journal record.
  ``apply`` still sequences a query it is given (journals written before
  queries left the sequence hold them, and must replay);
- the same commands give the same events, bit for bit.

``docs/life-of-an-order.md`` walks one order through these files.
"""

from __future__ import annotations

import msgspec

from exchange_sim.accounts import Account
from exchange_sim.book import FLAG_REDUCE_ONLY, Order
from exchange_sim.config import Config
from exchange_sim.core import invariants
from exchange_sim.core.clearing import Clearing
from exchange_sim.core.entry import Entry, StopTicket, Ticket
from exchange_sim.core.history import History
from exchange_sim.core.liquidation import LiquidationEngine
from exchange_sim.core.matching import Execution, StopOrder
from exchange_sim.core.orders import OrderIndex
from exchange_sim.core.protect import Protect
from exchange_sim.core.reject import R, Reject, rejected
from exchange_sim.core.state import State
from exchange_sim.core.views import QUERIES, Views
from exchange_sim.core.watch import Watch
from exchange_sim.instruments import Instrument
from exchange_sim.products.dated_future import PENDING, SETTLED, TRADING, TWAP_WINDOW_NS
from protocol import messages as M
from protocol.messages import (
    AccountClosed,
    AccountOpened,
    BookSnapshot,
    CancelCause,
    Deposit,
    Explain,
    FutureListed,
    FutureSettled,
    LeverageChanged,
    MarginMode,
    MarginModeChanged,
    OrderAccepted,
    OrderAmended,
    OrderCancelled,
    OrderTriggered,
    OrderType,
    SymbolStatus,
)

__all__ = ["Venue", "StopOrder"]

_LIMIT = OrderType.LIMIT
_NEW_ORDER, _CANCEL_ORDER = M.NewOrder, M.CancelOrder
_USER = CancelCause.USER
#: every read; ``query`` answers them unsequenced (views.QUERIES)
_QUERIES = frozenset(QUERIES)
_SETTLE_PASSES = 8  # --- protective orders: trigger / liquidation passes after one command


class Venue:
    """The deterministic exchange state machine. See the module docstring.

    ``state`` is the whole state (:class:`~exchange_sim.core.state.State`);
    its fields read through the venue too (``venue.accounts``, ``venue.seq``,
    ...). The stages are ``entry``, ``engines`` (matching, per symbol),
    ``orders``, ``clearing``, ``watch``, ``views`` and ``liq``."""

    def __init__(self, config: Config | None = None):
        self.state = s = State(config)
        self.orders = OrderIndex(s)
        self.entry = Entry(s, self.orders)
        self.clearing = Clearing(s, self.orders)
        self.views = Views(s)
        self.liq = LiquidationEngine(self)
        self.watch = Watch(s, self.clearing, self.liq.flag)
        self.engines = s.engines
        #: symbol -> its engine's untriggered stops (order id -> StopOrder)
        self.stops = {sym: eng.stops for sym, eng in s.engines.items()}
        self.funding = self.clearing.funding
        # --- history: fed the events of every apply (core/history.py), read by the views
        self.history = self.views.history = History(s)
        self._record = self.history.record if s.config.history.enabled else None
        # --- protective orders
        self.protect = Protect(s, self.orders)
        #: symbol -> instrument whose last trade price moved, or whose
        #: attached orders grew, this command: its triggers run before
        #: ``apply`` returns (a dict: insertion order is deterministic)
        self.due: dict[str, Instrument] = {}
        # the insurance fund is a real account, opened with its seed balance
        fund = self.clearing.open_account(s.fund_id, MarginMode.CROSS)
        seed = s.insurance_seed
        if seed:
            self.clearing.seed_fund(fund, seed)

    # ------------------------------------------------------------ entry point

    def apply(self, command, ts: int | None = None) -> list:
        """Apply one command and return the events it caused, in order.

        ``ts`` is the venue time the sequencer stamped on the command (ns);
        time never moves backwards. Invalid commands return ``[Rejected]``
        and change nothing.
        """
        if ts is not None and type(ts) is not int:  # a sequencer bug, not user input
            raise TypeError(f"venue time must be an int of nanoseconds, got {type(ts).__name__}")
        s = self.state
        s.seq += 1
        events: list = []
        if ts is not None and ts > s.now:
            s.now = ts
            self._clock(events)
        try:
            tc = type(command)
            # The two commands of most of the traffic first, by identity; the
            # rest by value patterns on the type (an isinstance check on a
            # msgspec Struct costs ~0.15 µs per case, a type comparison less).
            if tc is _NEW_ORDER:
                t = self.entry.new_order(command)
                if type(t) is Ticket:
                    self._place(t, events)
                else:
                    self._new_stop(t, events)
            elif tc is _CANCEL_ORDER:
                order = self.entry.cancel(command)
                self.orders.cancel(order, _USER, events)
                self.engines[order.symbol].delta(events)
            else:
                match tc:
                    case M.AmendOrder:
                        self._amend(*self.entry.amend(command), events)
                    case M.CancelAll:
                        acct = self._account(command.account)
                        if command.symbol is not None:
                            self._instrument(command.symbol)
                        self.orders.cancel_all(acct, command.symbol, CancelCause.CANCEL_ALL, events)
                    case M.CancelOnDisconnect:
                        # CancelAll of every symbol, the cancels saying ``disconnect``
                        # (the server sends it when a cancel-on-disconnect session ends)
                        self.orders.cancel_all(self._account(command.account), None, CancelCause.DISCONNECT, events)
                    case M.Deposit:
                        self._deposit(command, events)
                    case M.Withdraw:
                        acct, asset = self.entry.withdraw(command)
                        self.clearing.withdraw(acct, asset, command.amount, events)
                        events.append(self.views.account_update(acct))
                    case M.SetIndexPrice:
                        self._set_index(self.entry.set_index(command), command.price, events)
                    case M.ShockPrice:
                        cmd = self.entry.shock(command)
                        self._set_index(self.entry.set_index(cmd), cmd.price, events)
                    case M.PauseSymbol:
                        ins = self._instrument(command.symbol)
                        if type(command.paused) is not bool:
                            raise Reject(R.INVALID_FIELD, "paused must be true or false")
                        if ins.state != "trading":  # dated futures (issue 16)
                            raise Reject(R.NOT_TRADING, f"{ins.symbol} is {ins.state}: it cannot be paused or resumed")
                        ins.paused = command.paused
                        events.append(SymbolStatus(symbol=ins.symbol, paused=ins.paused))
                    case M.OpenAccount:
                        self.clearing.open_account(self.entry.open_account(command.account))
                        events.append(AccountOpened(account=command.account))
                    case M.CloseAccount:
                        acct = self.entry.close_account(command.account)
                        self.orders.cancel_all(acct, None, CancelCause.CANCEL_ALL, events)
                        self.clearing.close_account(acct)
                        events.append(AccountClosed(account=acct.id))
                    case M.SetMarginMode:
                        acct, mode = self.entry.margin_mode(command)
                        self.clearing.set_mode(acct, mode)
                        events.append(MarginModeChanged(account=acct.id, mode=mode))
                        events.append(self.views.account_update(acct))
                        self.watch.check(acct, events)
                    case M.AdjustIsolatedMargin:
                        acct, ins, delta = self.entry.adjust_isolated(command)
                        self.clearing.adjust_isolated(acct, ins.symbol, delta, events)
                        events.append(self.views.account_update(acct))
                        self.watch.check(acct, events)
                    case M.SettleFunding:
                        self._settle_funding(command.symbol, events, self.entry.settle_funding(command))
                    case M.Tick:
                        pass  # time only: the clock above ran what the new time made due
                    case _ if tc in _QUERIES:
                        # a journal written before reads left the sequence holds queries: answer as views does
                        events.extend(self.views.query(command))
                    # --- leverage
                    case M.SetLeverage:
                        acct, ins, lev = self.entry.set_leverage(command)
                        self.clearing.set_leverage(acct, ins, lev, events)
                        events.append(LeverageChanged(
                            account=acct.id, symbol=ins.symbol, leverage=lev,
                            max_leverage=self.views.max_leverage(acct, ins),
                        ))
                        events.append(self.views.account_update(acct))
                        self.watch.check(acct, events)
                    # --- dated futures (issue 16)
                    case M.ShockBasis:
                        self._shock_basis(*self.entry.shock_basis(command), events)
                    case _:
                        return [rejected(command, R.UNKNOWN_MESSAGE, f"unknown command {type(command).__name__}")]
        except Reject as rej:
            events.append(rejected(command, rej.reason, rej.message))
        if self.due:
            self._run_due(events)
        if self.liq.pending:
            self.liq.run(events)
            # the liquidation's trades moved last prices (contract-price
            # triggers), whose orders may flag accounts again: a bounded
            # number of passes, the rest waits for the next command
            for _ in range(_SETTLE_PASSES):
                if not self.due:
                    break
                self._run_due(events)
                if self.liq.pending:
                    self.liq.run(events)
        if self._record is not None:  # --- history
            self._record(events)
        return events

    def query(self, command) -> list:
        """Answer a read (``QueryAccount``, ``QueryOpenOrders``, ``QueryBook``,
        ``QueryInstruments``, ``QueryExplain``, and the history's
        ``QueryTrades`` ... ``QueryOrder``: docs/history.md): the same events
        ``apply`` gives, with no sequence number, no clock and no state
        change, so a server answers it without a journal record."""
        try:
            return self.views.query(command)
        except Reject as rej:
            return [rejected(command, rej.reason, rej.message)]

    def _clock(self, events: list) -> None:
        """Time-driven work due at ``now``: funding at each interval
        boundary of venue time (00:00, 08:00, 16:00 UTC with the default 8 h)."""
        s = self.state
        if s.config.funding.automatic:  # off in a replay: the recorded funding settles instead
            interval = self.funding.interval_ns
            if s.next_funding is None:
                s.next_funding = (s.now // interval + 1) * interval
            elif s.now >= s.next_funding:
                # one settlement even if several boundaries passed with no command
                s.next_funding = (s.now // interval + 1) * interval
                self._settle_funding(None, events)
        if s.futures:  # dated futures (issue 16): they expire whatever funding does
            self._futures_clock(events)

    def _account(self, account_id) -> Account:
        from exchange_sim.core import reject

        return reject.account(self.state, account_id)

    def _instrument(self, symbol) -> Instrument:
        from exchange_sim.core import reject

        return reject.instrument(self.state, symbol)

    # ---------------------------------------------------------------- orders

    def _place(self, t: Ticket, events: list) -> None:
        """Accept an entry ticket — its order id (a triggered stop keeps its
        own), its client id remembered, ``OrderAccepted`` — then straight into
        the book if it rests unfilled (the common case: no empty match, and the
        pre-trade check's IM terms are stored, not recomputed), else through
        matching and clearing (:meth:`execute`)."""
        acct = t.acct
        cmd = t.cmd
        cid = cmd.client_order_id
        order_id = t.order_id
        s = self.state
        ins = t.ins
        if order_id is None:
            order_id = s.next_order_id
            s.next_order_id = order_id + 1
            if cid is not None:
                self.orders.remember_client_id(acct, cid, order_id)
            events.append(
                OrderAccepted(
                    account=acct.id, order_id=order_id, symbol=ins.symbol, side=cmd.side, type=t.otype,
                    tif=t.tif, qty=t.qty, price=t.price, reduce_only=t.reduce_only, client_order_id=cid, ts=s.now,
                )
            )
            if cmd.take_profit is not None or cmd.stop_loss is not None:
                self._attach(t, order_id, events[-1])
        order = Order(
            order_id, acct.id, t.side, t.limit, t.qty, t.stp, cid, ins.symbol, t.tif,
            FLAG_REDUCE_ONLY if t.reduce_only else 0, s.seq,
        )
        if t.rests:
            eng = self.engines[ins.symbol]
            eng.book.add(order)
            self.orders.remember(acct, order, t.pre)
            eng.delta(events)
            return
        self.execute(acct, ins, order, t.otype, events)

    def execute(self, acct: Account, ins: Instrument, order: Order, otype, events: list,
                liquidation: bool = False) -> Execution:
        """One taker order through the stages: matching (fills, STP, rest or
        end), clearing (settlement, isolated allocations), the open-order
        index (STP'd makers, the rest, reduce-only upkeep), the book delta,
        each touched account's update and margin level. A liquidation
        order's unfilled rest gets no cancel event: the liquidation engine
        hands it to the backstop. Returns the :class:`Execution`."""
        eng = self.engines[ins.symbol]
        ex = eng.execute(order, otype)
        touched = self.clearing.settle(acct, ins, order, ex, events) if ex.fills else ()
        if eng.brackets and self.protect.fills(eng, ins, order, ex, events):
            self.due[ins.symbol] = ins  # a half placed now may be due at once
        elif eng.last_orders and ex.fills:
            self.due[ins.symbol] = ins  # the last trade price moved
        orders = self.orders
        if ex.stp_expired:
            orders.expire_stp(ex.stp_expired, ins.symbol, events)
        if order.qty:
            cause = ex.cause
            if cause is None:
                orders.remember(acct, order)
            elif not liquidation:
                events.append(
                    OrderCancelled(
                        account=acct.id, order_id=order.order_id, symbol=ins.symbol,
                        remaining=order.qty, cause=cause, client_order_id=order.client_order_id,
                        ts=self.state.now,
                    )
                )
        if touched:
            stops = eng.stops
            for a in touched:
                if a.reduce_only_orders or stops:  # reduce-only upkeep (rare): skip the call otherwise
                    orders.position_changed(a, ins, events)
        eng.delta(events)
        if touched:
            update = self.views.account_update
            updates = [update(a) for a in touched]
            events += updates
            check = self.watch.check_update  # the figures the updates just computed
            for a, upd in zip(touched, updates):
                check(a, upd, events)
        return ex

    def _new_stop(self, t: StopTicket, events: list) -> None:
        acct, cmd = t.acct, t.cmd
        if cmd.close_position:
            cmd = msgspec.structs.replace(cmd, reduce_only=True)  # closes only: the upkeep treats it as reduce-only
        st = StopOrder(self.state.take_order_id(), cmd, t.side)
        if st.cb is not None and st.trigger is None:
            # a trailing stop with no activation price trails from the price now
            st.best = self.entry.trigger_ref(t.ins, cmd.working_type)
        self.orders.remember_stop(acct, st)
        if cmd.client_order_id is not None:
            self.orders.remember_client_id(acct, cmd.client_order_id, st.order_id)
        events.append(
            OrderAccepted(
                account=acct.id, order_id=st.order_id, symbol=t.ins.symbol, side=cmd.side, type=t.otype,
                tif=cmd.tif, qty=cmd.qty or 0, price=cmd.price, stop_price=t.stop_price,
                reduce_only=cmd.reduce_only, client_order_id=cmd.client_order_id,
                working_type=cmd.working_type, close_position=cmd.close_position, callback_bps=cmd.callback_bps,
                activation_price=cmd.activation_price, ts=self.state.now,
            )
        )

    def _amend(self, acct: Account, ins: Instrument, order: Order, new_price: int, new_qty: int, events: list) -> None:
        if new_price == order.price and new_qty < order.qty:
            self.orders.reduce(acct, order, new_qty)
            events.append(
                OrderAmended(
                    account=acct.id, order_id=order.order_id, symbol=ins.symbol, price=new_price, qty=new_qty,
                    priority_kept=True, client_order_id=order.client_order_id, ts=self.state.now,
                )
            )
            self.engines[ins.symbol].delta(events)
            return
        # Loses priority: out of the book, then in again as a taker (a new
        # price may cross, as a cancel-replace would on Binance), keeping its id.
        ins.book.cancel(order.order_id)
        self.orders.forget(order)
        order.price = new_price
        order.qty = new_qty
        events.append(
            OrderAmended(
                account=acct.id, order_id=order.order_id, symbol=ins.symbol, price=new_price, qty=new_qty,
                priority_kept=False, client_order_id=order.client_order_id, ts=self.state.now,
            )
        )
        self.execute(acct, ins, order, _LIMIT, events)

    def _trigger_stops(self, ins: Instrument, events: list, last: bool = False) -> None:
        """Conditional orders whose trigger the mark (``last``: the last trade
        price) reached become live orders, oldest first; the other half of an
        attached pair is cancelled first (one cancels the other)."""
        eng = self.engines[ins.symbol]
        if not eng.stops:
            return
        mark = ins.mark
        price = eng.last_price if last else mark
        if not price:
            return
        for st in eng.fired(price, last):
            if eng.take_stop(st.order_id) is None:
                continue  # cancelled by an earlier one's fill (a reduce-only stop whose position closed)
            self.orders.forget_stop(st)
            acct = self.state.accounts[st.account]
            events.append(
                OrderTriggered(account=acct.id, order_id=st.order_id, symbol=ins.symbol, mark=mark,
                               client_order_id=st.client_order_id, price=price, working_type=st.cmd.working_type,
                               ts=self.state.now)
            )
            if st.peer is not None or st.parent is not None:
                self.protect.triggered(eng, st, events)
            try:
                self._place(self.entry.triggered(st, acct, ins), events)
            except Reject as rej:
                events.append(rejected(st.cmd, rej.reason, f"stop order {st.order_id} triggered but: {rej.message}"))
                events[-1].order_id = st.order_id

    # --- protective orders
    def _attach(self, t: Ticket, order_id: int, accepted: OrderAccepted) -> None:
        """An entry with attached take-profit / stop-loss was accepted: its
        bracket waits for its fills (:mod:`exchange_sim.core.protect`)."""
        cmd = t.cmd
        accepted.take_profit, accepted.stop_loss = cmd.take_profit, cmd.stop_loss
        self.protect.open(self.engines[t.ins.symbol], order_id, cmd, t.side)

    def _run_due(self, events: list) -> None:
        """Triggers of the instruments whose last trade price moved (or whose
        attached orders grew) this command, on both prices, until none is
        due: each round either fires an order, which leaves its engine, or
        ends, so this terminates. (Margin levels: each triggered order's
        execution checks the accounts it touched.)"""
        due = self.due
        while due:
            sym = next(iter(due))
            ins = due.pop(sym)
            self._trigger_stops(ins, events)
            self._trigger_stops(ins, events, last=True)

    # ------------------------------------------------------- wallet, prices

    def _deposit(self, cmd: Deposit, events: list) -> None:
        asset = self.entry.deposit(cmd)
        acct = self.state.accounts.get(cmd.account)
        if acct is None:
            acct = self.clearing.open_account(cmd.account)
        self.clearing.deposit(acct, asset, cmd.amount, events)
        events.append(self.views.account_update(acct))

    def _set_index(self, asset, price: int, events: list) -> None:
        self.clearing.reprice(asset, price, events)
        for ins in self.state.by_underlying.get(asset.name, ()):
            self._trigger_stops(ins, events)
        self.watch.sweep_levels(events)

    def _settle_funding(self, symbol: str | None, events: list, rate_e8: int | None = None) -> None:
        """Funding (clearing), then each payer's and receiver's update and
        margin level (isolated: each position's own, so a drained one is
        liquidated alone)."""
        touched = self.clearing.settle_funding(symbol, events, rate_e8)
        for acct in touched:
            events.append(self.views.account_update(acct))
        for acct in touched:
            self.watch.check(acct, events)

    # --- dated futures (issue 16)

    def _futures_clock(self, events: list) -> None:
        """Venue time moved on: add the index in force since the last call to
        each future's settlement TWAP; settle each future whose expiry has
        come (oldest first), and list the next of its family."""
        s = self.state
        t0, t1 = s.fut_t, s.now
        s.fut_t = t1
        assets = s.assets
        for ins in s.futures:
            if ins.state == SETTLED or ins.expiry - TWAP_WINDOW_NS >= t1:
                continue
            index = assets[ins.underlying].index
            ins.twap_advance(index, t0, t1)
            if t1 >= ins.expiry:
                self._expire(ins, index, events)

    def _expire(self, ins, index: int, events: list) -> None:
        """Expiry (products/dated_future.py): trading stops, every open order
        is cancelled (cause ``expired``), positions settle in cash at the
        TWAP (clearing), the instrument is ``settled``; the next pending
        expiry of the family lists."""
        s = self.state
        sym = ins.symbol
        ins.state = SETTLED
        ins.paused = True
        for aid in sorted(s.accounts):
            acct = s.accounts[aid]
            if any(o.symbol == sym for o in acct.orders.values()):
                self.orders.cancel_all(acct, sym, CancelCause.EXPIRED, events)
        price = ins.settlement_e8(index)
        ins.settlement_price = price
        paid, rounding = self.clearing.settle_expiry(ins, price, events)
        ins.mark = max(1, (price + ins.tick_e8 // 2) // ins.tick_e8)
        s.margin.epoch += 1  # positions closed outside the fill path: every cache is stale
        events.append(FutureSettled(symbol=sym, expiry=ins.expiry, price=price, positions=len(paid),
                                    rounding=rounding))
        for acct in paid:
            events.append(self.views.account_update(acct))
        for nxt in s.futures:
            if nxt.family == ins.family and nxt.state == PENDING:
                nxt.state = TRADING
                nxt.paused = False
                events.append(FutureListed(symbol=nxt.symbol, expiry=nxt.expiry))
                break
        for acct in paid:  # a closed leg can leave the rest of a portfolio under MM
            self.watch.check(acct, events)

    def _shock_basis(self, ins: Instrument, asset, change_e8: int, events: list) -> None:
        """Admin ``ShockBasis`` (checked by entry): one dated future's basis
        moves by ``change_e8`` (bounded); its mark follows."""
        self.clearing.shock_basis(ins, asset, change_e8, events)
        self._trigger_stops(ins, events)
        self.watch.sweep_levels(events)

    # ----------------------------------------------------------------- reads

    def explain(self, account_id: int) -> Explain:
        """Every margin figure of one account, and the same holdings under each
        margin mode side by side (see :mod:`exchange_sim.risk.explain`).
        Raises ``KeyError`` for an unknown account."""
        return self.views.explain(self.state.accounts[account_id])

    def book_snapshot(self, symbol: str, depth: int | None = None) -> BookSnapshot:
        return self.views.book_snapshot(symbol, depth)

    def account_update(self, account_id: int):
        """The ``AccountUpdate`` of one account now (``KeyError`` if unknown)."""
        return self.views.account_update(self.state.accounts[account_id])

    def risk_sweep(self):
        """Equity, IM, MM and ratio of every account in one vectorized pass."""
        return self.watch.risk_sweep()

    def _check(self) -> None:
        """Assert every invariant (:mod:`exchange_sim.core.invariants`); tests call it after each step."""
        invariants.check(self)


def _state_field(name: str) -> property:
    def get(self):
        return getattr(self.state, name)

    def put(self, value):
        setattr(self.state, name, value)

    return property(get, put, doc=f"``state.{name}``")


# The state's fields read (and, for the tests' and tools' sake, write) through the venue.
for _name in State.__slots__:
    if _name != "engines":
        setattr(Venue, _name, _state_field(_name))
del _name
