"""The blocking client: one DEALER socket, Decimal in and out, typed errors.

    >>> from clients import Client
    >>> with Client("tcp://127.0.0.1:7001", account=2, api_key="demo-key-taker-2") as c:  # doctest: +SKIP
    ...     order = c.buy("BTC-PERP", "0.01", price="59990.0", client_order_id="my-1")
    ...     print(order.status, order.order_id)
    ...     for ev in c.events(timeout=1.0):
    ...         print(ev)

How it talks (see :mod:`protocol.session`): every command goes out as
``Request(id, cmd)`` and its private outcome comes back as one
``Reply(id, events)``; events caused by others (a resting order's fills,
cancel-on-disconnect) arrive as ``Push`` frames and wait in a queue that
:meth:`Client.poll_event` / :meth:`Client.events` read. ``submit`` + ``result``
pipeline many requests; ``batch`` sends many commands in one frame.

Heartbeats: the client sends one whenever it has sent nothing for a
heartbeat interval; a daemon thread does it while your code is busy
elsewhere (``heartbeat_thread=False`` turns that off: then call into the
client, e.g. ``poll_event``, at least once per interval or the server drops
the session, cancelling its orders if ``cancel_on_disconnect`` was asked).
The socket is only ever used under one lock, so the thread is safe.
"""

from __future__ import annotations

import itertools
import threading
import time
from collections import deque
from collections.abc import Iterator

import zmq

from clients import models
from clients._core import DEFAULT_ORDERS, Core, raise_for, setup_dealer, shock_bps
from clients.errors import Disconnected, ExchangeError, RequestTimeout, error_for
from protocol import messages as m
from protocol.messages import Rejected
from protocol.session import (
    Batch,
    BatchReply,
    CheckInvariants,
    Heartbeat,
    Invariants,
    LoggedOut,
    Login,
    LoginOk,
    Logout,
    Push,
    QueryStats,
    Reply,
    Request,
    SnapshotTaken,
    Stats,
    TakeSnapshot,
    decode_outbound,
    encode,
)

_HEARTBEAT = encode(Heartbeat())


class Client(Core):
    """Blocking client for one account (or the admin). Not for sharing
    between threads beyond its own heartbeat thread; use one per thread."""

    def __init__(self, endpoint: str = DEFAULT_ORDERS, account: int | None = None, api_key: str | None = None, *,
                 server_key: str | bytes | None = None, cancel_on_disconnect: bool = False, timeout: float = 5.0,
                 firehose: bool = False,
                 heartbeat_thread: bool = True, context: zmq.Context | None = None,
                 latency: str | None = None):
        self.endpoint = endpoint
        self.timeout = timeout
        self.ctx = context or zmq.Context.instance()
        self.sock = self.ctx.socket(zmq.DEALER)
        setup_dealer(self.sock, server_key)
        self.sock.connect(endpoint)
        self._poller = zmq.Poller()
        self._poller.register(self.sock, zmq.POLLIN)
        self._lock = threading.Lock()
        self._ids = itertools.count(1)
        self._replies: dict[int, Reply | BatchReply] = {}
        self._bare: deque = deque()
        self._events: deque = deque()
        self._closed = threading.Event()
        self._hb_s = 1.0
        self._last_send = 0.0
        self.last_heard = time.monotonic()
        self.account_id: int | None = None
        self.admin = False
        self.session: LoginOk | None = None
        self.logged_out: LoggedOut | None = None
        self.markets: models.Markets | None = None
        self._hb_thread: threading.Thread | None = None
        self._want_hb_thread = heartbeat_thread
        if api_key is not None:
            self.login(account if account is not None else 0, api_key, cancel_on_disconnect=cancel_on_disconnect,
                       firehose=firehose, latency=latency)

    # ------------------------------------------------------------ plumbing

    def _send(self, frame: bytes) -> None:
        self.sock.send(frame)
        self._last_send = time.monotonic()

    def _dispatch(self, frame: bytes) -> None:
        self.last_heard = time.monotonic()
        try:
            msg = decode_outbound(frame)
        except Exception as exc:  # a newer server's message: keep going
            self._events.append(ExchangeError(f"undecodable frame from server: {exc}"))
            return
        t = type(msg)
        if t is Reply or t is BatchReply:
            if msg.id is None:
                self._bare.append(msg)
            else:
                self._replies[msg.id] = msg
        elif t is Push:
            self._events.extend(msg.events)
        elif t is Heartbeat:
            pass
        elif t is LoggedOut:
            self.logged_out = msg
            self.session = None
            self._events.append(msg)
        else:  # LoginOk, Invariants, Stats, bare Rejected: answers to bare requests
            self._bare.append(msg)

    def _pump(self, timeout: float) -> None:
        """Read what is there, waiting at most ``timeout`` s for the first
        frame; send a heartbeat if one is due. Caller holds the lock."""
        now = time.monotonic()
        if self.session is not None and now - self._last_send >= self._hb_s:
            self._send(_HEARTBEAT)
        if self._poller.poll(max(0, int(timeout * 1000))):
            recv = self.sock.recv
            while True:
                try:
                    frame = recv(zmq.NOBLOCK)
                except zmq.Again:
                    break
                self._dispatch(frame)

    def _wait(self, ready, timeout: float | None, what: str):
        deadline = time.monotonic() + (self.timeout if timeout is None else timeout)
        while True:
            out = ready()
            if out is not None:
                return out
            left = deadline - time.monotonic()
            if left <= 0:
                raise RequestTimeout(f"no answer to {what} within {self.timeout if timeout is None else timeout}s")
            self._pump(min(left, self._hb_s))

    def _hb_loop(self) -> None:
        while not self._closed.wait(self._hb_s / 4):
            if self._lock.acquire(blocking=False):
                try:
                    if self.session is not None and time.monotonic() - self._last_send >= self._hb_s:
                        self._send(_HEARTBEAT)
                except zmq.ZMQError:
                    return
                finally:
                    self._lock.release()

    # --------------------------------------------------------- sessions

    def login(self, account: int, api_key: str, *, cancel_on_disconnect: bool = False, firehose: bool = False,
              timeout: float | None = None, latency: str | None = None) -> LoginOk:
        """Log in and load instrument metadata. Raises AuthenticationFailed.
        ``latency``: a latency profile of the server's config for this session
        (None: the one the key names, else the server's default)."""
        with self._lock:
            self._bare.clear()
            self._send(encode(Login(account=account, api_key=api_key, cancel_on_disconnect=cancel_on_disconnect,
                                    firehose=firehose, latency=latency)))
            ans = self._wait(lambda: self._bare.popleft() if self._bare else None, timeout, "login")
        if type(ans) is Rejected:
            raise error_for(ans)
        if type(ans) is not LoginOk:
            raise ExchangeError(f"unexpected answer to login: {ans!r}")
        self.session = ans
        self.logged_out = None
        self.account_id = ans.account
        self.admin = ans.admin
        self._hb_s = ans.heartbeat_interval_ms / 1000
        self.load_markets()
        if self._want_hb_thread and self._hb_thread is None:
            self._hb_thread = threading.Thread(target=self._hb_loop, name="exchange-sim-heartbeat", daemon=True)
            self._hb_thread.start()
        return ans

    def load_markets(self) -> models.Markets:
        (info,) = raise_for(self.request(m.QueryInstruments()).events)
        self.markets = models.Markets(info)
        return self.markets

    def logout(self, timeout: float | None = None) -> LoggedOut:
        with self._lock:
            self._send(encode(Logout()))
            return self._wait(lambda: self.logged_out, timeout, "logout")

    def close(self, logout: bool = True) -> None:
        """Log out (cancel-on-disconnect applies if asked for) and close."""
        if self.sock.closed:
            return
        if logout and self.session is not None:
            try:
                self.logout(timeout=1.0)
            except (ExchangeError, zmq.ZMQError):
                pass
        self._closed.set()
        with self._lock:
            self.sock.close(linger=0)

    def __enter__(self) -> Client:
        return self

    def __exit__(self, *exc) -> None:
        self.close()

    def heartbeat(self) -> None:
        with self._lock:
            self._send(_HEARTBEAT)

    # --------------------------------------------------------- requests

    def submit(self, cmd) -> int:
        """Send one command without waiting; returns the request id."""
        rid = next(self._ids)
        with self._lock:
            self._send(encode(Request(id=rid, cmd=cmd)))
        return rid

    def result(self, rid: int, timeout: float | None = None) -> Reply | BatchReply:
        """Wait for the reply to request ``rid``."""
        with self._lock:
            return self._wait(lambda: self._replies.pop(rid, None), timeout, f"request {rid}")

    def request(self, cmd, timeout: float | None = None) -> Reply:
        """Send one protocol command, wait for its ``Reply`` (no raising)."""
        return self.result(self.submit(cmd), timeout)

    def call(self, cmd, timeout: float | None = None) -> list:
        """Send one protocol command; return its events, raising the typed
        exception of a ``Rejected``."""
        return raise_for(self.request(cmd, timeout).events)

    def batch(self, cmds: list, timeout: float | None = None) -> list[list]:
        """Many commands in one frame; one event list per command, in order
        (rejects are returned, not raised)."""
        rid = next(self._ids)
        with self._lock:
            self._send(encode(Batch(id=rid, cmds=cmds)))
            rep = self._wait(lambda: self._replies.pop(rid, None), timeout, f"batch {rid}")
        if len(rep.results) == 1 and len(cmds) != 1:
            raise_for(rep.results[0])
        return rep.results

    def _bare_request(self, msg, timeout: float | None = None):
        with self._lock:
            self._bare.clear()
            self._send(encode(msg))
            ans = self._wait(lambda: self._bare.popleft() if self._bare else None, timeout, type(msg).__name__)
        if type(ans) is Rejected:
            raise error_for(ans)
        return ans

    # ------------------------------------------------------------ trading

    def place(self, symbol: str, side, qty, price=None, *, type: str = "limit", tif: str = "gtc",
              post_only: bool = False, reduce_only: bool = False, stop_price=None, stp: str = "expire_taker",
              client_order_id: str | None = None, timeout: float | None = None,
              **protective) -> models.OrderResult:
        """Place an order in human units; returns its immediate outcome.

        ``type``: limit, market, stop_market, stop_limit, take_profit_market,
        take_profit_limit, trailing_stop_market; ``tif``: gtc, ioc, fok,
        post_only. ``qty`` may be None with ``close_position=True``.
        Raises InvalidOrder, InsufficientMargin, ...

        Protective-order keywords (docs/adr/0011-protective-orders.md):
        ``working_type`` ('mark' / 'mark_price' or 'last' / 'contract_price'),
        ``close_position``, ``callback_rate`` (trailing stop, percent: 1 =
        1 %), ``activation_price``, ``take_profit`` / ``stop_loss`` (a
        trigger price, or ``{"trigger_price", "price", "working_type"}``).
        """
        cmd = self.new_order_cmd(symbol, side, qty, price, type=type, tif=tif, post_only=post_only,
                                 reduce_only=reduce_only, stop_price=stop_price, stp=stp,
                                 client_order_id=client_order_id, **protective)
        rep = self.request(cmd, timeout)
        return self.parse_order(rep.events, rep.duplicate)

    def buy(self, symbol: str, qty, price=None, **kw) -> models.OrderResult:
        return self.place(symbol, "buy", qty, price, type=kw.pop("type", "limit" if price is not None else "market"), **kw)

    def sell(self, symbol: str, qty, price=None, **kw) -> models.OrderResult:
        return self.place(symbol, "sell", qty, price, type=kw.pop("type", "limit" if price is not None else "market"), **kw)

    def cancel(self, order_id: int | None = None, *, client_order_id: str | None = None) -> models.OrderUpdate:
        evs = self.call(self.cancel_cmd(order_id, client_order_id))
        return next((self.human(e) for e in evs if type(e) is m.OrderCancelled), evs)

    def amend(self, symbol: str, order_id: int | None = None, *, client_order_id: str | None = None,
              qty=None, price=None) -> models.OrderUpdate:
        """Change price and/or remaining size (size down keeps priority)."""
        evs = self.call(self.amend_cmd(symbol, order_id, client_order_id, qty=qty, price=price))
        return next((self.human(e) for e in evs if type(e) is m.OrderAmended), evs)

    def cancel_all(self, symbol: str | None = None) -> list[models.OrderUpdate]:
        evs = self.call(m.CancelAll(account=self._acct(None), symbol=symbol))
        return [self.human(e) for e in evs if type(e) is m.OrderCancelled]

    def withdraw(self, asset: str, amount) -> models.BalanceUpdate:
        evs = self.call(m.Withdraw(account=self._acct(None), asset=asset, amount=self.minor(asset, amount)))
        return next(self.human(e) for e in evs if type(e) is m.BalanceChanged)

    # ------------------------------------------------------------ queries

    def account(self, account: int | None = None) -> models.AccountState:
        return self.parse_account(self.request(m.QueryAccount(account=self._acct(account))).events)

    def positions(self) -> tuple[models.Position, ...]:
        return self.account().positions

    def open_orders(self, symbol: str | None = None) -> list[models.OpenOrder]:
        return self.parse_open_orders(self.request(m.QueryOpenOrders(account=self._acct(None), symbol=symbol)).events)

    def book(self, symbol: str, depth: int | None = None) -> models.Book:
        return self.parse_book(self.request(m.QueryBook(symbol=symbol, depth=depth)).events)

    # --- history: the venue's market and account history (docs/history.md).
    # Times are venue ns (``start``/``end`` inclusive); rows oldest first.

    def trades(self, symbol: str, limit: int = 500) -> list[models.Trade]:
        """Recent public trades of ``symbol``, newest last."""
        return self.parse_history(self.call(m.QueryTrades(symbol=symbol, limit=limit)))

    def candles(self, symbol: str, interval: str = "1m", *, price: str = "last", start: int | None = None,
                end: int | None = None, limit: int = 500) -> list[models.Candle]:
        """OHLCV candles; ``interval`` 1m, 5m, 15m, 1h, 4h or 1d; ``price``
        last (trades), mark or index."""
        return self.parse_history(self.call(self.candles_cmd(symbol, interval, price=price, start=start, end=end,
                                                              limit=limit)))

    def ticker(self, symbol: str | None = None):
        """Rolling 24-hour statistics of ``symbol`` (a ``Ticker``), or of every symbol (a list)."""
        return self.parse_history(self.call(m.QueryTicker(symbol=symbol)))

    def funding_history(self, symbol: str | None = None, *, start: int | None = None, end: int | None = None,
                        limit: int = 100) -> list[models.FundingEntry]:
        return self.parse_history(self.call(m.QueryFundingHistory(symbol=symbol, start=start, end=end, limit=limit)))

    def premium_index(self, symbol: str | None = None):
        """Mark, index, last and predicted funding rate, next funding time
        (a ``PremiumIndex``, or a list for every perpetual)."""
        return self.parse_history(self.call(m.QueryPremiumIndex(symbol=symbol)))

    def order_history(self, symbol: str | None = None, *, start: int | None = None, end: int | None = None,
                      limit: int = 500) -> list[models.OrderRecord]:
        """The account's ended orders (filled, cancelled, expired, rejected), by end time."""
        return self.parse_history(self.call(m.QueryOrderHistory(account=self._acct(None), symbol=symbol, start=start,
                                                                end=end, limit=limit)))

    def my_trades(self, symbol: str | None = None, *, start: int | None = None, end: int | None = None,
                  limit: int = 500) -> list[models.Fill]:
        """The account's own fills, with fee, realized PnL and liquidity."""
        return self.parse_history(self.call(m.QueryMyTrades(account=self._acct(None), symbol=symbol, start=start,
                                                            end=end, limit=limit)))

    def order(self, order_id: int | None = None, *, client_order_id: str | None = None) -> models.OrderRecord:
        """One order of the account, open or ended (OrderNotFound if unknown)."""
        return self.parse_history(self.call(self.order_cmd(order_id, client_order_id)))

    # -------------------------------------------------------------- admin

    def deposit(self, account: int, asset: str, amount) -> models.BalanceUpdate:
        evs = self.call(m.Deposit(account=account, asset=asset, amount=self.minor(asset, amount)))
        return next(self.human(e) for e in evs if type(e) is m.BalanceChanged)

    def set_index_price(self, asset: str, price) -> list:
        return self.call(m.SetIndexPrice(asset=asset, price=models.Markets.index_e8(price)))

    def shock_price(self, asset: str, pct) -> list:
        """Move an asset's index by ``pct`` percent in one step (-30 = crash)."""
        return self.call(m.ShockPrice(asset=asset, change_bps=shock_bps(pct)))

    def pause(self, symbol: str, paused: bool = True) -> list:
        return self.call(m.PauseSymbol(symbol=symbol, paused=paused))

    def resume(self, symbol: str) -> list:
        return self.pause(symbol, False)

    def open_account(self, account: int) -> list:
        return self.call(m.OpenAccount(account=account))

    def close_account(self, account: int) -> list:
        return self.call(m.CloseAccount(account=account))

    # ---------------------------------------------------------- leverage

    def set_leverage(self, symbol: str, leverage: int) -> m.LeverageChanged:
        """Set this account's leverage on ``symbol`` (IM rate 1/leverage, never
        below the notional tier's); raises InvalidOrder above the tier's
        maximum, InsufficientMargin when a lower one needs more than is free."""
        return self.parse_leverage_changed(self.request(self.set_leverage_cmd(symbol, leverage)).events)

    def leverage(self, symbol: str | None = None) -> dict[str, models.SymbolLeverage]:
        """Leverage per symbol (every symbol, or one), with the tier brackets."""
        return self.parse_leverage(self.request(m.QueryLeverage(account=self._acct(None), symbol=symbol)).events)

    def leverage_tiers(self, symbol: str | None = None) -> dict[str, tuple[models.LeverageTier, ...]]:
        """The notional brackets per symbol (Binance leverageBracket); public."""
        return self.parse_leverage_tiers(self.request(m.QueryLeverageTiers(symbol=symbol)).events)

    def ledger(self) -> models.Ledger:
        """Admin: the venue's money ledger per asset (conservation from queries)."""
        return self.parse_ledger(self.request(m.QueryLedger()).events)

    def check_invariants(self) -> Invariants:
        return self._bare_request(CheckInvariants())

    def stats(self) -> Stats:
        return self._bare_request(QueryStats())

    def take_snapshot(self) -> SnapshotTaken:
        """Admin: snapshot the venue now (a server started with --data-dir)."""
        return self._bare_request(TakeSnapshot())

    # ------------------------------------------------------------- events

    def poll_event(self, timeout: float = 0.0, *, raw: bool = False):
        """The next private event pushed to this session (human units unless
        ``raw``), or None after ``timeout`` seconds."""
        with self._lock:
            if not self._events:
                deadline = time.monotonic() + timeout
                while not self._events:
                    left = deadline - time.monotonic()
                    self._pump(max(0.0, min(left, self._hb_s)))
                    if left <= 0:
                        break
            if not self._events:
                return None
            ev = self._events.popleft()
        if isinstance(ev, Exception):
            raise ev
        return ev if raw else self.human(ev)

    def events(self, timeout: float | None = None, *, raw: bool = False) -> Iterator:
        """Private events as they come; stops after ``timeout`` s of silence
        (None: never), or when the server ends the session."""
        while True:
            ev = self.poll_event(3600.0 if timeout is None else timeout, raw=raw)
            if ev is None:
                if timeout is None:
                    continue
                return
            yield ev
            if type(ev) is LoggedOut:
                return

    def drain_events(self, raw: bool = False) -> list:
        """Everything pushed so far, without waiting."""
        out = []
        while True:
            ev = self.poll_event(0.0, raw=raw)
            if ev is None:
                return out
            out.append(ev)

    def ensure_logged_in(self) -> None:
        if self.session is None:
            raise Disconnected(self.logged_out.reason if self.logged_out else "not logged in")
