"""The asyncio client: the same methods as :class:`clients.Client`, awaited.

    >>> async def main():                                                    # doctest: +SKIP
    ...     async with await AsyncClient.connect(account=2, api_key="demo-key-taker-2") as c:
    ...         order = await c.buy("BTC-PERP", "0.01", price="59990.0")
    ...         async for ev in c.events():
    ...             print(ev)

One reader task owns the receive side of the socket (``zmq.asyncio``): it
resolves each ``Reply`` to the future waiting on its request id and puts
pushed events on a queue; a heartbeat task sends a ``Heartbeat`` whenever
nothing was sent for an interval. Many requests may be in flight at once
(``asyncio.gather`` pipelines them over the one connection).
"""

from __future__ import annotations

import asyncio
import itertools
import time
from collections import deque

import zmq
import zmq.asyncio

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


class AsyncClient(Core):
    def __init__(self, endpoint: str = DEFAULT_ORDERS, *, server_key: str | bytes | None = None,
                 timeout: float = 5.0, context: zmq.asyncio.Context | None = None):
        self.endpoint = endpoint
        self.timeout = timeout
        self.ctx = context or zmq.asyncio.Context.instance()
        self.sock = self.ctx.socket(zmq.DEALER)
        setup_dealer(self.sock, server_key)
        self.sock.connect(endpoint)
        self._ids = itertools.count(1)
        self._pending: dict[int, asyncio.Future] = {}
        self._bare: deque[asyncio.Future] = deque()
        self._events: asyncio.Queue = asyncio.Queue()
        self._hb_s = 1.0
        self._last_send = 0.0
        self.last_heard = time.monotonic()
        self.account_id: int | None = None
        self.admin = False
        self.session: LoginOk | None = None
        self.logged_out: LoggedOut | None = None
        self.markets: models.Markets | None = None
        self._reader = asyncio.get_running_loop().create_task(self._read())
        self._hb_task: asyncio.Task | None = None

    @classmethod
    async def connect(cls, endpoint: str = DEFAULT_ORDERS, account: int | None = None, api_key: str | None = None, *,
                      cancel_on_disconnect: bool = False, latency: str | None = None, **kw) -> AsyncClient:
        """Create, connect and (with an ``api_key``) log in (``latency``: as :meth:`login`)."""
        self = cls(endpoint, **kw)
        if api_key is not None:
            await self.login(account if account is not None else 0, api_key, cancel_on_disconnect=cancel_on_disconnect,
                             latency=latency)
        return self

    # ------------------------------------------------------------ plumbing

    async def _send(self, frame: bytes) -> None:
        await self.sock.send(frame)
        self._last_send = time.monotonic()

    async def _read(self) -> None:
        sock = self.sock
        try:
            while True:
                frame = await sock.recv()
                self.last_heard = time.monotonic()
                try:
                    msg = decode_outbound(frame)
                except Exception as exc:
                    self._events.put_nowait(ExchangeError(f"undecodable frame from server: {exc}"))
                    continue
                t = type(msg)
                if (t is Reply or t is BatchReply) and msg.id is not None:
                    fut = self._pending.pop(msg.id, None)
                    if fut is not None and not fut.done():
                        fut.set_result(msg)
                elif t is Push:
                    for ev in msg.events:
                        self._events.put_nowait(ev)
                elif t is Heartbeat:
                    pass
                elif t is LoggedOut:
                    self.logged_out = msg
                    self.session = None
                    self._events.put_nowait(msg)
                    self._resolve_bare(msg, logout=True)
                else:
                    self._resolve_bare(msg)
        except (asyncio.CancelledError, zmq.ZMQError):
            return

    def _resolve_bare(self, msg, logout: bool = False) -> None:
        while self._bare:
            fut = self._bare.popleft()
            if not fut.done():
                if logout and not getattr(fut, "wants_logout", False):
                    self._bare.appendleft(fut)
                    return
                fut.set_result(msg)
                return

    async def _heartbeats(self) -> None:
        try:
            while True:
                await asyncio.sleep(self._hb_s / 4)
                if self.session is not None and time.monotonic() - self._last_send >= self._hb_s:
                    await self._send(_HEARTBEAT)
        except (asyncio.CancelledError, zmq.ZMQError):
            return

    async def _await(self, fut: asyncio.Future, timeout: float | None, what: str):
        t = self.timeout if timeout is None else timeout
        try:
            return await asyncio.wait_for(fut, t)
        except asyncio.TimeoutError:
            raise RequestTimeout(f"no answer to {what} within {t}s") from None

    async def _bare_request(self, msg, timeout: float | None = None, wants_logout: bool = False):
        fut = asyncio.get_running_loop().create_future()
        fut.wants_logout = wants_logout  # type: ignore[attr-defined]
        self._bare.append(fut)
        await self._send(encode(msg))
        ans = await self._await(fut, timeout, type(msg).__name__)
        if type(ans) is Rejected:
            raise error_for(ans)
        return ans

    # --------------------------------------------------------- sessions

    async def login(self, account: int, api_key: str, *, cancel_on_disconnect: bool = False,
                    timeout: float | None = None, latency: str | None = None) -> LoginOk:
        """``latency``: a latency profile of the server's config for this session
        (None: the one the key names, else the server's default)."""
        ans = await self._bare_request(Login(account=account, api_key=api_key,
                                             cancel_on_disconnect=cancel_on_disconnect, latency=latency), timeout)
        if type(ans) is not LoginOk:
            raise ExchangeError(f"unexpected answer to login: {ans!r}")
        self.session = ans
        self.logged_out = None
        self.account_id = ans.account
        self.admin = ans.admin
        self._hb_s = ans.heartbeat_interval_ms / 1000
        await self.load_markets()
        if self._hb_task is None:
            self._hb_task = asyncio.get_running_loop().create_task(self._heartbeats())
        return ans

    async def load_markets(self) -> models.Markets:
        (info,) = raise_for((await self.request(m.QueryInstruments())).events)
        self.markets = models.Markets(info)
        return self.markets

    async def logout(self, timeout: float | None = None) -> LoggedOut:
        return await self._bare_request(Logout(), timeout, wants_logout=True)

    async def close(self, logout: bool = True) -> None:
        if self.sock.closed:
            return
        if logout and self.session is not None:
            try:
                await self.logout(timeout=1.0)
            except (ExchangeError, zmq.ZMQError):
                pass
        for task in (self._hb_task, self._reader):
            if task is not None:
                task.cancel()
        for task in (self._hb_task, self._reader):
            if task is not None:
                try:
                    await task
                except BaseException:
                    pass
        self.sock.close(linger=0)

    async def __aenter__(self) -> AsyncClient:
        return self

    async def __aexit__(self, *exc) -> None:
        await self.close()

    async def heartbeat(self) -> None:
        await self._send(_HEARTBEAT)

    # --------------------------------------------------------- requests

    async def request(self, cmd, timeout: float | None = None) -> Reply:
        rid = next(self._ids)
        fut = asyncio.get_running_loop().create_future()
        self._pending[rid] = fut
        await self._send(encode(Request(id=rid, cmd=cmd)))
        try:
            return await self._await(fut, timeout, f"request {rid}")
        finally:
            self._pending.pop(rid, None)

    async def call(self, cmd, timeout: float | None = None) -> list:
        return raise_for((await self.request(cmd, timeout)).events)

    async def batch(self, cmds: list, timeout: float | None = None) -> list[list]:
        rid = next(self._ids)
        fut = asyncio.get_running_loop().create_future()
        self._pending[rid] = fut
        await self._send(encode(Batch(id=rid, cmds=cmds)))
        try:
            rep = await self._await(fut, timeout, f"batch {rid}")
        finally:
            self._pending.pop(rid, None)
        if len(rep.results) == 1 and len(cmds) != 1:
            raise_for(rep.results[0])
        return rep.results

    # ------------------------------------------------------------ trading

    async def place(self, symbol: str, side, qty, price=None, *, type: str = "limit", tif: str = "gtc",
                    post_only: bool = False, reduce_only: bool = False, stop_price=None, stp: str = "expire_taker",
                    client_order_id: str | None = None, timeout: float | None = None,
                    **protective) -> models.OrderResult:
        cmd = self.new_order_cmd(symbol, side, qty, price, type=type, tif=tif, post_only=post_only,
                                 reduce_only=reduce_only, stop_price=stop_price, stp=stp,
                                 client_order_id=client_order_id, **protective)
        rep = await self.request(cmd, timeout)
        return self.parse_order(rep.events, rep.duplicate)

    async def buy(self, symbol: str, qty, price=None, **kw) -> models.OrderResult:
        return await self.place(symbol, "buy", qty, price, type=kw.pop("type", "limit" if price is not None else "market"), **kw)

    async def sell(self, symbol: str, qty, price=None, **kw) -> models.OrderResult:
        return await self.place(symbol, "sell", qty, price, type=kw.pop("type", "limit" if price is not None else "market"), **kw)

    async def cancel(self, order_id: int | None = None, *, client_order_id: str | None = None) -> models.OrderUpdate:
        evs = await self.call(self.cancel_cmd(order_id, client_order_id))
        return next((self.human(e) for e in evs if type(e) is m.OrderCancelled), evs)

    async def amend(self, symbol: str, order_id: int | None = None, *, client_order_id: str | None = None,
                    qty=None, price=None) -> models.OrderUpdate:
        evs = await self.call(self.amend_cmd(symbol, order_id, client_order_id, qty=qty, price=price))
        return next((self.human(e) for e in evs if type(e) is m.OrderAmended), evs)

    async def cancel_all(self, symbol: str | None = None) -> list[models.OrderUpdate]:
        evs = await self.call(m.CancelAll(account=self._acct(None), symbol=symbol))
        return [self.human(e) for e in evs if type(e) is m.OrderCancelled]

    async def withdraw(self, asset: str, amount) -> models.BalanceUpdate:
        evs = await self.call(m.Withdraw(account=self._acct(None), asset=asset, amount=self.minor(asset, amount)))
        return next(self.human(e) for e in evs if type(e) is m.BalanceChanged)

    # ------------------------------------------------------------ queries

    async def account(self, account: int | None = None) -> models.AccountState:
        return self.parse_account((await self.request(m.QueryAccount(account=self._acct(account)))).events)

    async def positions(self) -> tuple[models.Position, ...]:
        return (await self.account()).positions

    async def open_orders(self, symbol: str | None = None) -> list[models.OpenOrder]:
        rep = await self.request(m.QueryOpenOrders(account=self._acct(None), symbol=symbol))
        return self.parse_open_orders(rep.events)

    async def book(self, symbol: str, depth: int | None = None) -> models.Book:
        return self.parse_book((await self.request(m.QueryBook(symbol=symbol, depth=depth))).events)

    # --- history: the venue's market and account history (docs/history.md),
    # as the blocking client's methods of the same names

    async def trades(self, symbol: str, limit: int = 500) -> list[models.Trade]:
        return self.parse_history(await self.call(m.QueryTrades(symbol=symbol, limit=limit)))

    async def candles(self, symbol: str, interval: str = "1m", *, price: str = "last", start: int | None = None,
                      end: int | None = None, limit: int = 500) -> list[models.Candle]:
        cmd = self.candles_cmd(symbol, interval, price=price, start=start, end=end, limit=limit)
        return self.parse_history(await self.call(cmd))

    async def ticker(self, symbol: str | None = None):
        return self.parse_history(await self.call(m.QueryTicker(symbol=symbol)))

    async def funding_history(self, symbol: str | None = None, *, start: int | None = None,
                              end: int | None = None, limit: int = 100) -> list[models.FundingEntry]:
        cmd = m.QueryFundingHistory(symbol=symbol, start=start, end=end, limit=limit)
        return self.parse_history(await self.call(cmd))

    async def premium_index(self, symbol: str | None = None):
        return self.parse_history(await self.call(m.QueryPremiumIndex(symbol=symbol)))

    async def order_history(self, symbol: str | None = None, *, start: int | None = None, end: int | None = None,
                            limit: int = 500) -> list[models.OrderRecord]:
        cmd = m.QueryOrderHistory(account=self._acct(None), symbol=symbol, start=start, end=end, limit=limit)
        return self.parse_history(await self.call(cmd))

    async def my_trades(self, symbol: str | None = None, *, start: int | None = None, end: int | None = None,
                        limit: int = 500) -> list[models.Fill]:
        cmd = m.QueryMyTrades(account=self._acct(None), symbol=symbol, start=start, end=end, limit=limit)
        return self.parse_history(await self.call(cmd))

    async def order(self, order_id: int | None = None, *, client_order_id: str | None = None) -> models.OrderRecord:
        return self.parse_history(await self.call(self.order_cmd(order_id, client_order_id)))

    # -------------------------------------------------------------- admin

    async def deposit(self, account: int, asset: str, amount) -> models.BalanceUpdate:
        evs = await self.call(m.Deposit(account=account, asset=asset, amount=self.minor(asset, amount)))
        return next(self.human(e) for e in evs if type(e) is m.BalanceChanged)

    async def set_index_price(self, asset: str, price) -> list:
        return await self.call(m.SetIndexPrice(asset=asset, price=models.Markets.index_e8(price)))

    async def shock_price(self, asset: str, pct) -> list:
        return await self.call(m.ShockPrice(asset=asset, change_bps=shock_bps(pct)))

    async def pause(self, symbol: str, paused: bool = True) -> list:
        return await self.call(m.PauseSymbol(symbol=symbol, paused=paused))

    async def resume(self, symbol: str) -> list:
        return await self.pause(symbol, False)

    async def open_account(self, account: int) -> list:
        return await self.call(m.OpenAccount(account=account))

    async def close_account(self, account: int) -> list:
        return await self.call(m.CloseAccount(account=account))

    # ---------------------------------------------------------- leverage

    async def set_leverage(self, symbol: str, leverage: int) -> m.LeverageChanged:
        """See :meth:`clients.client.Client.set_leverage`."""
        return self.parse_leverage_changed((await self.request(self.set_leverage_cmd(symbol, leverage))).events)

    async def leverage(self, symbol: str | None = None) -> dict[str, models.SymbolLeverage]:
        return self.parse_leverage((await self.request(m.QueryLeverage(account=self._acct(None), symbol=symbol))).events)

    async def leverage_tiers(self, symbol: str | None = None) -> dict[str, tuple[models.LeverageTier, ...]]:
        return self.parse_leverage_tiers((await self.request(m.QueryLeverageTiers(symbol=symbol))).events)

    async def ledger(self) -> models.Ledger:
        """Admin: the venue's money ledger per asset."""
        return self.parse_ledger((await self.request(m.QueryLedger())).events)

    async def check_invariants(self) -> Invariants:
        return await self._bare_request(CheckInvariants())

    async def take_snapshot(self) -> SnapshotTaken:
        """Admin: snapshot the venue now (a server started with --data-dir)."""
        return await self._bare_request(TakeSnapshot())

    async def stats(self) -> Stats:
        return await self._bare_request(QueryStats())

    # ------------------------------------------------------------- events

    async def poll_event(self, timeout: float = 0.0, *, raw: bool = False):
        """The next pushed private event, or None after ``timeout`` s."""
        try:
            if timeout <= 0:
                ev = self._events.get_nowait()
            else:
                ev = await asyncio.wait_for(self._events.get(), timeout)
        except (asyncio.QueueEmpty, asyncio.TimeoutError):
            return None
        if isinstance(ev, Exception):
            raise ev
        return ev if raw else self.human(ev)

    async def events(self, timeout: float | None = None, *, raw: bool = False):
        """``async for`` over pushed events; ends after ``timeout`` s of
        silence (None: never) or when the session ends."""
        while True:
            ev = await self.poll_event(3600.0 if timeout is None else timeout, raw=raw)
            if ev is None:
                if timeout is None:
                    continue
                return
            yield ev
            if type(ev) is LoggedOut:
                return

    def ensure_logged_in(self) -> None:
        if self.session is None:
            raise Disconnected(self.logged_out.reason if self.logged_out else "not logged in")
