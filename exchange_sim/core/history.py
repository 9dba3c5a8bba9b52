"""History: what happened, kept for the reads that ask about the past.

Fed once per ``Venue.apply`` with the events the other stages produced
(:meth:`History.record`); it changes no other state and no event, so the
sequencer's output is the same with or without it. The queries
(``QueryTrades``, ``QueryCandles``, ``QueryTicker``, ``QueryFundingHistory``,
``QueryPremiumIndex``, ``QueryOrderHistory``, ``QueryMyTrades``,
``QueryOrder``) read it through :mod:`.views`, unsequenced. Decisions and
the Binance USD-M endpoints each follows: docs/adr/0009-history.md.

What is kept (every container bounded by ``[history]`` in the config, oldest
dropped first, all of it in snapshots, and rebuilt by replaying a journal
because it is a function of the events):

====================  =====================================================
public trades         ``Trade`` events, per symbol
candles               per symbol and source (``last`` trades, ``mark``,
                      ``index``): the open 1-minute candle, finished
                      candles per interval, and per wider interval the open
                      candle built from finished minutes
funding               ``FundingRate`` events, per symbol
orders                open: a row per accepted order, updated by its fills,
                      amends, trigger; ended: the same row, per account
own trades            ``Fill`` events, per account
====================  =====================================================

Hot path cost, per event: a dict lookup on its type. Per trade: a deque
append and an in-place update of the open minute candle (wider intervals are
folded in only when a minute rolls over, once per minute of venue time, not
per trade). Per order: one small untracked ``Row`` while open, moved to a deque when it
ends; the ``OrderRecord`` message is built only when a query asks. Queries
do the rest (window filters, the 24-hour ticker over the minute candles).

Candle rows are lists ``[open_time, open, high, low, close, volume, quote,
trades]`` (ns, ticks or index units, lots, settlement minor units).
"""

from __future__ import annotations

from collections import deque

import msgspec

from exchange_sim.book import FLAG_REDUCE_ONLY
from exchange_sim.core import reject
from exchange_sim.core.reject import R, Reject
from exchange_sim.core.state import State
from exchange_sim.funding import RATE_SCALE, FundingRule
from protocol import messages as M
from protocol.messages import (
    CancelCause,
    Candle,
    CandleInterval,
    Fill,
    FundingRate,
    MarkPrice,
    OrderAccepted,
    OrderAmended,
    OrderCancelled,
    OrderRecord,
    OrderStatus,
    OrderTriggered,
    PriceSource,
    Rejected,
    Trade,
)

MINUTE = 60 * 10**9
DAY = 1440 * MINUTE
#: width of each interval, ns
INTERVAL_NS = {
    CandleInterval.M1: MINUTE, CandleInterval.M5: 5 * MINUTE, CandleInterval.M15: 15 * MINUTE,
    CandleInterval.H1: 60 * MINUTE, CandleInterval.H4: 240 * MINUTE, CandleInterval.D1: DAY,
}
_WIDER = tuple(INTERVAL_NS.values())[1:]
SOURCES = (PriceSource.LAST, PriceSource.MARK, PriceSource.INDEX)
#: causes that end an order as ``expired`` (Binance EXPIRED / EXPIRED_IN_MATCH); the rest are ``cancelled``
_EXPIRES = frozenset({CancelCause.IOC, CancelCause.FOK, CancelCause.PRICE_BAND, CancelCause.SELF_TRADE})
_FILLED, _CANCELLED = OrderStatus.FILLED, OrderStatus.CANCELLED

_BOOK_DELTA, _ACCOUNT_UPDATE = M.BookDelta, M.AccountUpdate


class Row(msgspec.Struct, array_like=True, gc=False):
    """One order's history row, open or ended; also its snapshot form.
    ``gc=False``: it holds scalars and an ``OrderAccepted`` (itself
    untracked), so thousands of them cost the garbage collector nothing."""

    accepted: OrderAccepted
    filled: int = 0
    quote: int = 0  # sum of fill price x lots
    update: int = -1  # venue time of the last change (ns); -1: none since it was accepted
    #: (ordered lots, limit price) after the last amend; None: as accepted
    amended: tuple[int, int | None] | None = None
    triggered: bool = False
    status: OrderStatus | None = None  # None while open
    cause: CancelCause | None = None
    reason: str | None = None


class Series:
    """Candles of one symbol and source. ``cur`` is the open minute;
    ``done[width]`` the finished candles of each interval; ``agg[width]``
    the open candle of each wider interval, from the finished minutes."""

    __slots__ = ("cur", "done", "agg")

    def __init__(self, keep: int):
        self.cur: list | None = None
        self.done: dict[int, deque] = {w: deque(maxlen=keep) for w in INTERVAL_NS.values()}
        self.agg: dict[int, list | None] = {w: None for w in _WIDER}

    def price(self, now: int, price: int) -> list:
        """The open minute after a price at ``now`` (rolled over if due)."""
        c = self.cur
        if c is None or now >= c[0] + MINUTE:
            if c is not None:
                self._fold(c)
            c = self.cur = [now - now % MINUTE, price, price, price, price, 0, 0, 0]
        else:
            if price > c[2]:
                c[2] = price
            elif price < c[3]:
                c[3] = price
            c[4] = price
        return c

    def _fold(self, c: list) -> None:
        """A finished minute: into the 1m candles and each wider open candle."""
        done = self.done
        done[MINUTE].append(c)
        agg = self.agg
        for w in _WIDER:
            start = c[0] - c[0] % w
            a = agg[w]
            if a is None or a[0] != start:
                if a is not None:
                    done[w].append(a)
                agg[w] = [start, *c[1:]]
            else:
                _merge(a, c)

    def rows(self, width: int) -> list[list]:
        """Every candle of ``width`` held, oldest first, the open ones included."""
        rows = list(self.done[width])
        cur = self.cur
        if width == MINUTE:
            if cur is not None:
                rows.append(cur)
            return rows
        a = self.agg[width]
        if a is not None:
            a = list(a)
            rows.append(a)
        if cur is not None:
            start = cur[0] - cur[0] % width
            if a is not None and a[0] == start:
                _merge(a, cur)
            else:
                rows.append([start, *cur[1:]])
        return rows


def _merge(a: list, c: list) -> None:
    """Fold candle ``c`` (later) into ``a`` (same interval)."""
    if c[2] > a[2]:
        a[2] = c[2]
    if c[3] < a[3]:
        a[3] = c[3]
    a[4] = c[4]
    a[5] += c[5]
    a[6] += c[6]
    a[7] += c[7]


def window(rows, key, start: int | None, end: int | None, limit: int) -> list:
    """Rows (oldest first) with ``start <= key(row) <= end``: the first
    ``limit`` of them if ``start`` is given, else the last ``limit``
    (Binance's rule for klines, userTrades, allOrders)."""
    if start is not None or end is not None:
        lo = -1 if start is None else start
        hi = 2**63 if end is None else end
        rows = [r for r in rows if lo <= key(r) <= hi]
    else:
        rows = list(rows)
    return rows[:limit] if start is not None else rows[-limit:]


class History:
    """The history stage: :meth:`record` on the hot path, reads for the views."""

    __slots__ = (
        "s", "p", "funding_rule", "values", "trades", "series", "tapes", "funding", "live", "ended", "my_trades",
        "_handlers",
    )

    def __init__(self, state: State):
        self.s = state
        self.p = p = state.config.history
        self.funding_rule = FundingRule(state.config.funding)
        syms = list(state.instruments)
        self.values = {sym: ins.value for sym, ins in state.instruments.items()}
        self.trades: dict[str, deque] = {sym: deque(maxlen=p.trades_per_symbol) for sym in syms}
        self.series: dict[tuple[str, PriceSource], Series] = {
            (sym, src): Series(p.candles_per_interval) for sym in syms for src in SOURCES
        }
        self.funding: dict[str, deque] = {sym: deque(maxlen=p.funding_per_symbol) for sym in syms}
        #: order id -> row, for every open order (resting or an untriggered stop)
        self.live: dict[int, list] = {}
        #: account -> its ended order rows, oldest end first
        self.ended: dict[int, deque] = {}
        #: account -> its Fill events, oldest first
        self.my_trades: dict[int, deque] = {}
        #: symbol -> (its trades' append, its trade candles, its tick x lot value): one lookup per trade
        self.tapes = {
            sym: (self.trades[sym].append, self.series[(sym, PriceSource.LAST)], self.values[sym]) for sym in syms
        }
        #: the rarer events (the common ones are inline in :meth:`record`)
        self._handlers = {
            OrderAmended: self._amended, OrderTriggered: self._triggered, Rejected: self._rejected,
            MarkPrice: self._mark, FundingRate: self._funding,
        }

    # ------------------------------------------------------------- hot path

    def record(self, events: list) -> None:
        """Take in one command's events (all at venue time ``now``). This
        runs on every command, so the common kinds are handled inline, by
        type identity, with as few lookups as possible (benchmarks/RESULTS.md,
        "History on the hot path")."""
        now = self.s.now
        live = self.live
        for ev in events:
            t = type(ev)
            if t is _BOOK_DELTA or t is _ACCOUNT_UPDATE:
                continue
            if t is OrderAccepted:
                live[ev.order_id] = Row(ev)
            elif t is Fill:
                try:
                    self.my_trades[ev.account].append(ev)
                except KeyError:
                    self.my_trades[ev.account] = deque((ev,), maxlen=self.p.trades_per_account)
                row = live.get(ev.order_id)
                if row is not None:  # None: a liquidation order (never accepted as an order)
                    qty = ev.qty
                    row.filled += qty
                    row.quote += ev.price * qty
                    row.update = now
                    if not ev.remaining:
                        del live[ev.order_id]
                        row.status = _FILLED
                        try:  # (inline _ended: a call per ended order is measurable here)
                            self.ended[ev.account].append(row)
                        except KeyError:
                            self._ended(ev.account, row)
            elif t is Trade:
                append, ser, value = self.tapes[ev.symbol]
                append(ev)
                price, qty = ev.price, ev.qty
                c = ser.cur
                if c is not None and now < c[0] + MINUTE:  # the open minute (inline Series.price)
                    if price > c[2]:
                        c[2] = price
                    elif price < c[3]:
                        c[3] = price
                    c[4] = price
                else:
                    c = ser.price(now, price)
                c[5] += qty
                c[6] += price * qty * value
                c[7] += 1
            elif t is OrderCancelled:
                row = live.pop(ev.order_id, None)
                if row is not None:
                    # cancelled or expired, by cause: decided when a query asks (record())
                    row.status = _CANCELLED
                    row.cause = ev.cause
                    row.update = now
                    try:
                        self.ended[ev.account].append(row)
                    except KeyError:
                        self._ended(ev.account, row)
            else:
                f = self._handlers.get(t)
                if f is not None:
                    f(ev, now)

    def _ended(self, account: int, row: Row) -> None:
        try:
            self.ended[account].append(row)
        except KeyError:
            self.ended[account] = deque((row,), maxlen=self.p.orders_per_account)

    def _mark(self, ev: MarkPrice, now: int) -> None:
        sym = ev.symbol
        self.series[(sym, PriceSource.MARK)].price(now, ev.mark)
        self.series[(sym, PriceSource.INDEX)].price(now, ev.index)

    def _funding(self, ev: FundingRate, now: int) -> None:
        self.funding[ev.symbol].append(ev)

    def _amended(self, ev: OrderAmended, now: int) -> None:
        row = self.live.get(ev.order_id)
        if row is not None:
            row.amended = (row.filled + ev.qty, ev.price)  # the amend sets the remaining quantity
            row.update = now

    def _triggered(self, ev: OrderTriggered, now: int) -> None:
        row = self.live.get(ev.order_id)
        if row is not None:
            row.triggered = True
            row.update = now

    def _rejected(self, ev: Rejected, now: int) -> None:
        # only a triggered stop is refused after acceptance (its NewOrder, its id);
        # any other reject that names an order id (a refused cancel) leaves the order be
        if ev.command == "NewOrder" and ev.order_id is not None:
            self._end(ev.order_id, OrderStatus.REJECTED, None, ev.message, now)

    def _end(self, order_id: int, status: OrderStatus, cause, reason, now: int) -> None:
        row = self.live.pop(order_id, None)
        if row is None:
            return
        row.status = status
        row.cause = cause
        row.reason = reason
        row.update = now
        self._ended(row.accepted.account, row)

    # ---------------------------------------------------------------- reads

    def trades_of(self, cmd: M.QueryTrades) -> M.Trades:
        ins = reject.instrument(self.s, cmd.symbol)
        _limit(cmd.limit, 1000)
        return M.Trades(symbol=ins.symbol, trades=list(self.trades[ins.symbol])[-cmd.limit:])

    def candles(self, cmd: M.QueryCandles) -> M.Candles:
        ins = reject.instrument(self.s, cmd.symbol)
        try:
            interval = CandleInterval(cmd.interval)
            source = PriceSource(cmd.source)
        except ValueError:
            raise Reject(R.INVALID_FIELD, f"interval must be one of {', '.join(INTERVAL_NS)} and source one of "
                         f"{', '.join(SOURCES)}") from None
        _limit(cmd.limit, 1500)
        _times(cmd.start, cmd.end)
        width = INTERVAL_NS[interval]
        rows = window(self.series[(ins.symbol, source)].rows(width), _first, cmd.start, cmd.end, cmd.limit)
        return M.Candles(symbol=ins.symbol, interval=interval, source=source, candles=[
            Candle(open_time=r[0], close_time=r[0] + width, open=r[1], high=r[2], low=r[3], close=r[4],
                   volume=r[5], quote_volume=r[6], trades=r[7]) for r in rows
        ])

    def ticker(self, symbol: str) -> M.Ticker:
        """Rolling 24 hours: the 1440 minute candles ending with the current minute."""
        s = self.s
        ins = s.instruments[symbol]
        now = s.now
        since = max(0, now - now % MINUTE - DAY + MINUTE)
        rows = [r for r in self.series[(symbol, PriceSource.LAST)].rows(MINUTE) if r[0] >= since]
        book = ins.book
        bid = book.depth(1, 1)
        ask = book.depth(-1, 1)
        t = M.Ticker(
            symbol=symbol, open_time=since, close_time=now, mark=ins.mark,
            index=s.assets[ins.underlying].index, best_bid=bid[0][0] if bid else None,
            best_bid_qty=bid[0][1] if bid else 0, best_ask=ask[0][0] if ask else None,
            best_ask_qty=ask[0][1] if ask else 0,
        )
        trades = self.trades[symbol]
        if trades:
            t.last, t.last_qty = trades[-1].price, trades[-1].qty
        if rows:
            t.open = rows[0][1]
            t.high = max(r[2] for r in rows)
            t.low = min(r[3] for r in rows)
            t.volume = vol = sum(r[5] for r in rows)
            t.quote_volume = quote = sum(r[6] for r in rows)
            t.trades = sum(r[7] for r in rows)
            t.change = t.last - t.open
            t.change_bps = int(t.change * 10_000 / t.open)
            t.vwap = quote / (vol * ins.value) if vol else 0.0
        return t

    def premium_index(self, symbol: str) -> M.PremiumIndex:
        s = self.s
        ins = s.instruments[symbol]
        rule = self.funding_rule
        past = self.funding[symbol]
        return M.PremiumIndex(
            symbol=symbol, mark=ins.mark, index=s.assets[ins.underlying].index,
            last_funding_rate_e8=past[-1].rate_e8 if past else 0,
            predicted_funding_rate_e8=rule.rate_e8(rule.premium(ins)) if ins.mark and ins.funded else 0,
            next_funding_time=s.next_funding, interest_rate_e8=round(rule.interest * RATE_SCALE),
            interval_ns=rule.interval_ns, ts=s.now,
        )

    def funding_history(self, cmd: M.QueryFundingHistory) -> M.FundingHistory:
        _limit(cmd.limit, 1000)
        _times(cmd.start, cmd.end)
        if cmd.symbol is not None:
            rows = self.funding[reject.instrument(self.s, cmd.symbol).symbol]
        else:  # every symbol, by time (stable: same-time rates in instrument order)
            rows = sorted((ev for d in self.funding.values() for ev in d), key=_ts)
        return M.FundingHistory(rates=window(rows, _ts, cmd.start, cmd.end, cmd.limit))

    def order_history(self, cmd: M.QueryOrderHistory) -> M.OrderHistory:
        acct, rows = self._account_window(cmd, self.ended, _row_symbol, _updated)
        return M.OrderHistory(account=acct, orders=[record(r) for r in rows])

    def my_trades_of(self, cmd: M.QueryMyTrades) -> M.MyTrades:
        acct, rows = self._account_window(cmd, self.my_trades, _fill_symbol, _ts)
        return M.MyTrades(account=acct, trades=rows)

    def _account_window(self, cmd, store: dict, symbol_of, key) -> tuple[int, list]:
        """The account's rows of ``store`` the query selects (symbol, times, limit)."""
        acct = reject.account(self.s, cmd.account)
        sym = _symbol(self.s, cmd.symbol)
        _limit(cmd.limit, 1000)
        _times(cmd.start, cmd.end)
        rows = store.get(acct.id, ())
        if sym is not None:
            rows = [r for r in rows if symbol_of(r) == sym]
        return acct.id, window(rows, key, cmd.start, cmd.end, cmd.limit)

    def order(self, cmd: M.QueryOrder) -> OrderRecord:
        acct = reject.account(self.s, cmd.account)
        oid, cid = cmd.order_id, cmd.client_order_id
        if oid is None and cid is None:
            raise Reject(R.INVALID_FIELD, "give order_id or client_order_id")
        if oid is None:
            for o in acct.orders.values():
                if o.client_order_id == cid:
                    oid = o.order_id
                    break
        row = self.live.get(oid) if oid is not None else None
        if row is not None and row.accepted.account == acct.id:
            return record(row)
        for row in reversed(self.ended.get(acct.id, ())):
            ev = row.accepted
            if (ev.order_id == oid) if oid is not None else (ev.client_order_id == cid):
                return record(row)
        what = f"order {oid}" if cmd.order_id is not None else f"client order id {cid!r}"
        raise Reject(R.UNKNOWN_ORDER, f"{what} is not an open or a recent order of account {acct.id} "
                                      f"(the last {self.p.orders_per_account} ended orders are kept)")

    # ------------------------------------------------------------ snapshots

    def capture(self) -> HistoryState:
        """Everything held, in a canonical order (symbols in config order,
        accounts and open orders by id)."""
        return HistoryState(
            trades=[(sym, list(d)) for sym, d in self.trades.items() if d],
            series=[
                SeriesState(sym, str(src), ser.cur, [list(d) for d in ser.done.values()], list(ser.agg.values()))
                for (sym, src), ser in self.series.items() if ser.cur is not None
            ],
            funding=[(sym, list(d)) for sym, d in self.funding.items() if d],
            live=[self.live[oid] for oid in sorted(self.live)],
            ended=[(a, list(self.ended[a])) for a in sorted(self.ended)],
            my_trades=[(a, list(self.my_trades[a])) for a in sorted(self.my_trades)],
        )

    def restore(self, st: HistoryState) -> None:
        """Load a captured state into this (empty) history. Raises
        ``ValueError`` for a symbol the config does not have."""
        p = self.p
        try:
            for sym, rows in st.trades:
                self.trades[sym].extend(rows)
            for sym, rows in st.funding:
                self.funding[sym].extend(rows)
            for ss in st.series:
                ser = self.series[(ss.symbol, PriceSource(ss.source))]
                ser.cur = ss.cur
                for d, rows in zip(ser.done.values(), ss.done):
                    d.extend(rows)
                ser.agg = dict(zip(_WIDER, ss.agg))
        except KeyError as e:
            raise ValueError(f"snapshot history symbol {e.args[0]!r} is not in the config") from None
        for row in st.live:
            self.live[row.accepted.order_id] = row
        for acct, rows in st.ended:
            self.ended[acct] = deque(rows, maxlen=p.orders_per_account)
        for acct, rows in st.my_trades:
            self.my_trades[acct] = deque(rows, maxlen=p.trades_per_account)


def adopt_open_orders(history: History, accounts) -> None:
    """A venue restored from a snapshot taken before history existed: give
    each open order a row, so it ends in the history like any other. The
    accept time is unknown (0), and the filled part is priced at the
    order's own limit price (exact for fills as a maker)."""
    from exchange_sim.core.matching import StopOrder  # the stop's own command has every field

    for acct in accounts:
        for o in acct.orders.values():
            if type(o) is StopOrder:
                c = o.cmd
                ev = OrderAccepted(account=acct.id, order_id=o.order_id, symbol=o.symbol, side=c.side, type=c.type,
                                   tif=c.tif, qty=c.qty, price=c.price, stop_price=c.stop_price,
                                   reduce_only=c.reduce_only, client_order_id=c.client_order_id)
                history.live[o.order_id] = Row(ev)
                continue
            ev = OrderAccepted(account=acct.id, order_id=o.order_id, symbol=o.symbol,
                               side=M.Side.BUY if o.side > 0 else M.Side.SELL, type=M.OrderType.LIMIT, tif=o.tif,
                               qty=o.qty + o.filled, price=o.price, reduce_only=bool(o.flags & FLAG_REDUCE_ONLY),
                               client_order_id=o.client_order_id)
            history.live[o.order_id] = Row(ev, o.filled, o.filled * o.price)


def record(row: Row) -> OrderRecord:
    """The ``OrderRecord`` message of an order row (open or ended)."""
    ev = row.accepted
    filled, quote = row.filled, row.quote
    qty, price = (ev.qty, ev.price) if row.amended is None else row.amended
    status = row.status or (OrderStatus.PARTIALLY_FILLED if filled else OrderStatus.NEW)
    if status is _CANCELLED and row.cause in _EXPIRES:
        status = OrderStatus.EXPIRED
    return OrderRecord(
        account=ev.account, order_id=ev.order_id, symbol=ev.symbol, side=ev.side, type=ev.type, tif=ev.tif,
        status=status, qty=qty, filled=filled, filled_quote=quote, avg_price=quote / filled if filled else 0.0,
        price=price, stop_price=ev.stop_price, reduce_only=ev.reduce_only,
        client_order_id=ev.client_order_id, cause=row.cause, reject_reason=row.reason, triggered=row.triggered,
        time=ev.ts, update_time=ev.ts if row.update < 0 else row.update,
    )


def _first(r: list) -> int:
    return r[0]


def _ts(ev) -> int:
    return ev.ts


def _row_symbol(r: Row) -> str:
    return r.accepted.symbol


def _fill_symbol(f: Fill) -> str:
    return f.symbol


def _updated(r: Row) -> int:
    return r.accepted.ts if r.update < 0 else r.update


def _limit(limit, hi: int) -> None:
    # the wire decoder bounds it; in-process callers are checked here
    if not reject.int_in(limit, 1, hi):
        raise Reject(R.INVALID_FIELD, f"limit must be 1..{hi}")


def _times(start, end) -> None:
    for name, t in (("start", start), ("end", end)):
        if t is not None and not reject.int_in(t, 0, 2**63 - 1):
            raise Reject(R.INVALID_FIELD, f"{name} must be a venue time in ns (an integer >= 0)")
    if start is not None and end is not None and start > end:
        raise Reject(R.INVALID_FIELD, f"start {start} is after end {end}")


def _symbol(state: State, symbol) -> str | None:
    return None if symbol is None else reject.instrument(state, symbol).symbol


# ------------------------------------------------------------------ snapshot


class SeriesState(msgspec.Struct, array_like=True):
    symbol: str
    source: str
    cur: list[int] | None
    done: list[list[list[int]]]  # per interval, 1m first
    agg: list[list[int] | None]  # per wider interval, 5m first


class HistoryState(msgspec.Struct):
    trades: list[tuple[str, list[Trade]]] = []
    series: list[SeriesState] = []
    funding: list[tuple[str, list[FundingRate]]] = []
    live: list[Row] = []
    ended: list[tuple[int, list[Row]]] = []
    my_trades: list[tuple[int, list[Fill]]] = []
