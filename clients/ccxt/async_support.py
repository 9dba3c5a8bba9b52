"""The asyncio facade: ``ccxt.async_support`` plus ccxt.pro's ``watch_*``.

    import clients.ccxt.async_support as ccxt    # was: import ccxt.async_support as ccxt (or ccxt.pro)

    async def main():
        exchange = ccxt.exchangesim({"apiKey": "2:demo-key-taker-2"})
        try:
            await exchange.load_markets()
            order = await exchange.create_order("BTC/USDT:USDT", "limit", "buy", 0.01, 59000.0)
            while True:
                book = await exchange.watch_order_book("BTC/USDT:USDT", 5)   # the next update
                updates = await exchange.watch_orders("BTC/USDT:USDT")       # orders that changed
        finally:
            await exchange.close()

Every REST-style method of :class:`clients.ccxt.exchangesim` is here as a
coroutine with the same name and result. The ``watch_*`` methods are
coroutines, as in ccxt.pro (not async generators): each await returns the
next update.

- ``watch_order_book(symbol, limit)``: the book after the next change, kept
  by a :class:`clients.BookMirror` (snapshot + sequenced deltas, gaps
  repaired); the first call returns as soon as the mirror is in sync.
- ``watch_orders(symbol)``: the orders that changed (accepted, filled,
  amended, triggered, cancelled) since the previous call, waiting for at
  least one; changes start being collected at the first call.
- ``watch_positions(symbols)``: the account's positions after the next
  account update (a position that went flat is reported once with
  ``contracts`` 0).
- ``watch_trades(symbol)`` / ``watch_my_trades(symbol)``: the public trades /
  the account's fills since the previous call (waiting for one).
- ``watch_ticker(symbol)`` / ``watch_balance()``: the current value on the
  first call, then after each trade or mark message / account update.
- ``watch_ohlcv(symbol, timeframe)``: candles that changed since the
  previous call, built client-side from the trade stream
  (:mod:`clients.ccxt._streams`).

Private updates come from the venue's pushes to this session and from the
replies to this object's own orders (an order filled on arrival is news
too). A session ended by the server makes pending watches raise
``ExchangeNotAvailable``; the next call logs in again.
"""

from __future__ import annotations

import asyncio
from collections import OrderedDict

import zmq
import zmq.asyncio

from clients.aio import AsyncClient
from clients.ccxt import errors
from clients.ccxt import errors as E
from clients._core import raise_for
from clients.ccxt._base import DRAIN, METHODS, ExchangeBase, Req, _since_limit, params_read, refuse_unknown_params
from clients.ccxt._streams import Candles, Streams
from clients.ccxt.errors import *  # noqa: F401,F403  (CCXT's exception classes, at module level as in ccxt)
from clients.ccxt.errors import translate
from clients.errors import ExchangeError as _ClientError
from clients.mirror import BookMirror
from protocol import messages as m
from protocol.messages import Rejected, RejectReason

__version__ = "4.0.0-exchangesim"
version = __version__
exchanges = ["exchangesim"]

Exchange = ExchangeBase


def _not_logged_in(replies) -> bool:
    return any(type(ev) is Rejected and ev.reason == RejectReason.NOT_LOGGED_IN
               for rep in replies for ev in rep.events)


class exchangesim(ExchangeBase):  # noqa: N801
    """The asyncio exchange (see the module docstring)."""

    pro = True
    has = {**ExchangeBase.has, "watchOrderBook": True, "watchOrders": True, "watchPositions": True,
           # --- ccxt facade (issue 14)
           "ws": True, "watchTrades": True, "watchTicker": True, "watchBalance": True, "watchMyTrades": True,
           "watchOHLCV": True}

    def __init__(self, config: dict | None = None):
        super().__init__(config)
        self._client: AsyncClient | None = None
        self._login_lock = asyncio.Lock()
        self._pump_task: asyncio.Task | None = None
        self._waiters: list[asyncio.Future] = []
        self._order_updates: OrderedDict[int, None] | None = None  # None until watch_orders is first called
        self._positions_watched = False
        self._position_update = False
        self._position_symbols: set[str] = set()
        self._mirrors: dict[str, tuple[BookMirror, zmq.asyncio.Poller]] = {}
        self._book_seen: dict[str, tuple[int, int]] = {}
        self._streams = Streams()  # watch_trades / ticker / ohlcv / balance / my_trades (issue 14)
        self._md_task: asyncio.Task | None = None

    # ------------------------------------------------------------ the I/O

    async def _conn(self) -> AsyncClient:
        if self._client is None:
            self._client = AsyncClient(self.urls["api"]["orders"], server_key=self.server_key,
                                       timeout=float(self.timeout) / 1000)
        return self._client

    async def _login(self) -> AsyncClient:
        c = await self._conn()
        if c.session is None:
            async with self._login_lock:
                if c.session is None:
                    acct, key = self._credentials()
                    self._core.account_id = acct
                    await c.login(acct, key, cancel_on_disconnect=bool(self.options.get("cancelOnDisconnect")))
                    self.session_lost = None
        return c

    @staticmethod
    async def _send(c: AsyncClient, cmds) -> list:
        return list(await asyncio.gather(*(c.request(cmd) for cmd in cmds)))

    async def _io(self, op):
        if op is DRAIN:
            return await self._drain()
        if not op.auth:
            return await self._send(await self._conn(), op.cmds)
        replies = await self._send(await self._login(), op.cmds)
        if _not_logged_in(replies):  # the server forgot us (restart): log in again and resend once
            self._client.session = None
            replies = await self._send(await self._login(), op.cmds)
        return replies

    async def _drain(self) -> list:
        c, out = self._client, []
        if c is None:
            return out
        while True:
            try:
                ev = await c.poll_event(0.0, raw=True)
            except _ClientError:
                continue
            if ev is None:
                return out
            out.append(ev)

    async def _take_pushed(self) -> None:
        pushed = await self._drain()
        if pushed:
            self._on_pushed(pushed)
            self._check_session()

    async def _run(self, gen):
        """Drive a sans-I/O method (see :mod:`clients.ccxt._base`)."""
        try:
            self._drain_trade_feed()
            await self._take_pushed()
            op = next(gen)
            while True:
                try:
                    answer = await self._io(op)
                except Exception as exc:  # the method may handle it; if not, it comes back out
                    op = gen.throw(exc)
                    continue
                op = gen.send(answer)
        except StopIteration as stop:
            return stop.value
        except (_ClientError, zmq.ZMQError) as exc:
            raise translate(exc, self.id) from exc

    async def close(self) -> None:
        """Stop the watchers, log out, close every socket (as ccxt's async
        exchanges, call it before the event loop ends)."""
        for task in (self._pump_task, self._md_task):
            if task is not None:
                task.cancel()
                try:
                    await task
                except BaseException:
                    pass
        self._pump_task = self._md_task = None
        self._fail_waiters(E.ExchangeNotAvailable(f"{self.id} closed"))
        for mirror, _ in self._mirrors.values():
            mirror.close()
        self._mirrors.clear()
        self._close_feeds()
        if self._client is not None:
            try:
                await self._client.close()
            except (_ClientError, zmq.ZMQError):
                pass
            self._client = None

    def __del__(self):
        # the blocking sockets (trade feed, book mirrors); the asyncio client
        # needs ``await close()``, as ccxt's async exchanges do
        try:
            self._close_feeds()
            for mirror, _ in self._mirrors.values():
                mirror.close()
        except Exception:
            pass

    async def __aenter__(self) -> exchangesim:
        return self

    async def __aexit__(self, *exc) -> None:
        await self.close()

    # ------------------------------------------------------ watch plumbing

    def _after_apply(self, changed: set[int], account: bool) -> None:
        if self._order_updates is not None:
            for oid in changed:
                self._order_updates.pop(oid, None)
                self._order_updates[oid] = None
        if account and self._positions_watched:
            self._position_update = True
        if account and self._streams.balance_update is not None:  # None: watch_balance not called yet
            self._streams.balance_update = True
        self._wake()

    def _wake(self) -> None:
        waiters, self._waiters = self._waiters, []
        for fut in waiters:
            if not fut.done():
                fut.set_result(None)

    def _fail_waiters(self, exc: Exception) -> None:
        waiters, self._waiters = self._waiters, []
        for fut in waiters:
            if not fut.done():
                fut.set_exception(exc)

    def _check_session(self) -> None:
        if self.session_lost is not None:
            reason, self.session_lost = self.session_lost, None
            self._fail_waiters(E.ExchangeNotAvailable(f"{self.id} the server ended the session: {reason}"))

    async def _next_change(self) -> None:
        fut = asyncio.get_running_loop().create_future()
        self._waiters.append(fut)
        await fut

    def _start_pump(self) -> None:
        if self._pump_task is None or self._pump_task.done():
            self._pump_task = asyncio.get_running_loop().create_task(self._pump())

    async def _pump(self) -> None:
        """Read the venue's pushes while someone watches."""
        while self._client is not None and not self._client.sock.closed:
            try:
                ev = await self._client.poll_event(1.0, raw=True)
            except _ClientError:
                continue
            if ev is None:
                continue
            self._on_pushed([ev] + await self._drain())
            self._check_session()

    async def _watch_private(self) -> None:
        await self.load_markets()
        try:
            await self._login()
        except (_ClientError, zmq.ZMQError) as exc:
            raise translate(exc, self.id) from exc
        self._start_pump()

    # --------------------------------------------------------- watch_*

    async def watch_order_book(self, symbol: str, limit: int | None = None, params=None) -> dict:
        """The order book after its next change (the first call: as soon as
        the local mirror is in sync). ``nonce`` is the delta sequence."""
        refuse_unknown_params(self.id, 'watch_order_book', params)
        await self.load_markets()
        mid = self.market(symbol)["id"]
        entry = self._mirrors.get(mid)
        try:
            if entry is None:
                mirror = BookMirror([mid], market_data=self.urls["api"]["marketData"],
                                    orders=self.urls["api"]["orders"], server_key=self.server_key,
                                    timeout=float(self.timeout) / 1000)
                poller = zmq.asyncio.Poller()
                poller.register(mirror.sub, zmq.POLLIN)
                poller.register(mirror.req, zmq.POLLIN)
                entry = self._mirrors[mid] = (mirror, poller)
            mirror, poller = entry
            book = mirror.books[mid]
            while True:
                mirror.poll(0)
                state = (book.seq, book.resyncs)
                if book.synced and state != self._book_seen.get(mid):
                    self._book_seen[mid] = state
                    ins = self._meta[mid]
                    bids, asks = mirror.levels(mid, limit)
                    return self._order_book(mid, [(ins.price(p), ins.qty(q)) for p, q in bids],
                                            [(ins.price(p), ins.qty(q)) for p, q in asks], book.seq)
                await poller.poll(1000)
        except (_ClientError, zmq.ZMQError) as exc:
            raise translate(exc, self.id) from exc

    async def watch_orders(self, symbol: str | None = None, since=None, limit=None, params=None) -> list[dict]:
        """Orders that changed since the previous call (waits for one)."""
        refuse_unknown_params(self.id, 'watch_orders', params)
        await self._watch_private()
        mid = None if symbol is None else self.market(symbol)["id"]
        if self._order_updates is None:
            self._order_updates = OrderedDict()
        while True:
            await self._take_pushed()
            ids = [oid for oid in self._order_updates
                   if oid in self._orders and (mid is None or self._orders[oid].symbol == mid)]
            if ids:
                for oid in ids:
                    del self._order_updates[oid]
                return _since_limit([self._order_dict(self._orders[oid]) for oid in ids], since, limit)
            await self._next_change()

    async def watch_positions(self, symbols=None, since=None, limit=None, params=None) -> list[dict]:
        """The account's positions after its next update."""
        refuse_unknown_params(self.id, 'watch_positions', params)
        await self._watch_private()
        self._positions_watched = True
        for s in symbols or ():
            self.market(s)
        while True:
            await self._take_pushed()
            if self._position_update and self._account_ev is not None:
                self._position_update = False
                ev = self._account_ev
                explain = await self._run(self._g_explain())
                current = {p.symbol for p in ev.positions if p.qty}
                closed = tuple(sorted(self._position_symbols - current))
                self._position_symbols = current
                out = self._positions(ev, explain, symbols, closed)
                if out:
                    return _since_limit(out, since, limit)
            await self._next_change()

    # --- ccxt facade: ccxt.pro watch_* from the public feed and the pushes (issue 14)

    def _on_public(self, ev, trade: dict | None) -> None:
        if trade is not None:
            self._streams.on_trade(ev.symbol, trade)
        else:
            self._streams.on_move(ev.symbol)
        self._wake()

    async def _watch_public(self, symbol: str, mark: bool = False) -> str:
        """Open the public feed (trades of every symbol; ``mark``: this
        symbol's mark messages too) and its reader task; the venue id."""
        await self.load_markets()
        mid = self.market(symbol)["id"]
        self._open_trade_feed(force=True)
        if mark:
            self._trade_sub.setsockopt(zmq.SUBSCRIBE, f"{mid}.mark".encode())
        if self._md_task is None or self._md_task.done():
            self._md_task = asyncio.get_running_loop().create_task(self._md_pump())
        return mid

    async def _md_pump(self) -> None:
        """Read the public feed while someone watches it."""
        poller = zmq.asyncio.Poller()
        poller.register(self._trade_sub, zmq.POLLIN)
        while self._trade_sub is not None and not self._trade_sub.closed:
            await poller.poll(1000)
            self._drain_trade_feed()

    @params_read()
    async def watch_trades(self, symbol: str, since=None, limit=None, params=None) -> list[dict]:
        """The public trades of ``symbol`` since the previous call (waits for
        one; collected from the first call on), oldest first."""
        mid = await self._watch_public(symbol)
        new = self._streams.trades.setdefault(mid, [])
        while True:
            self._drain_trade_feed()
            if new:
                out, new[:] = list(new), []
                out = _since_limit(out, since, limit)
                if out:
                    return out
            await self._next_change()

    @params_read()
    async def watch_ticker(self, symbol: str, params=None) -> dict:
        """``fetch_ticker(symbol)`` now (first call), then after each public
        trade or mark-price message of the symbol. One query per update: the
        ticker is the venue's (book, mark, last trade), the same structure
        as ``fetch_ticker``."""
        mid = await self._watch_public(symbol, mark=True)
        moves = self._streams.moves
        if mid in moves:
            while True:
                self._drain_trade_feed()
                if moves[mid]:
                    break
                await self._next_change()
        moves[mid] = 0
        return await self.fetch_ticker(symbol)

    @params_read()
    async def watch_ohlcv(self, symbol: str, timeframe: str = "1m", since=None, limit=None,
                          params=None) -> list[list]:
        """OHLCV candles ``[timestamp, open, high, low, close, volume]`` that
        changed since the previous call (waits for a trade), **built
        client-side from the public trade stream** since the first call for
        this symbol and timeframe (see :mod:`clients.ccxt._streams`)."""
        if not isinstance(timeframe, str) or len(timeframe) < 2:
            raise E.BadRequest(f"{self.id} watchOHLCV() timeframe must be like '1m', '1h', not {timeframe!r}")
        try:
            candles_new = Candles(timeframe)
        except ValueError as exc:
            raise E.BadRequest(f"{self.id} watchOHLCV() {exc}") from None
        mid = await self._watch_public(symbol)
        candles = self._streams.candles.setdefault((mid, timeframe), candles_new)
        while True:
            self._drain_trade_feed()
            out = candles.take()
            if since is not None:
                out = [c for c in out if c[0] >= since]
            if out:
                return out[-int(limit):] if limit else out
            await self._next_change()

    @params_read()
    async def watch_balance(self, params=None) -> dict:
        """``fetch_balance()`` now (first call), then after each account update
        the venue pushes (fills, cancels, funding, deposits...)."""
        await self._watch_private()
        first = self._streams.balance_update is None
        if not first:
            while True:
                await self._take_pushed()
                if self._streams.balance_update:
                    break
                await self._next_change()
        self._streams.balance_update = False
        return await self.fetch_balance()

    @params_read()
    async def watch_my_trades(self, symbol: str | None = None, since=None, limit=None, params=None) -> list[dict]:
        """The account's own trades (fills) since the previous call (waits for
        one; collected from the first call on), oldest first."""
        await self._watch_private()
        mid = None if symbol is None else self.market(symbol)["id"]
        st = self._streams
        if st.my_trades_after is None:
            st.my_trades_after = self._trades[-1] if self._trades else {}
        while True:
            await self._take_pushed()
            new = []
            for t in reversed(self._trades):
                if t is st.my_trades_after:
                    break
                new.append(t)
            new.reverse()
            if new:
                st.my_trades_after = new[-1]
                out = _since_limit([t for t in new if mid is None or t["info"]["symbol"] == mid], since, limit)
                if out:
                    return out
            await self._next_change()

    def _g_explain(self):
        (rep,) = yield Req((m.QueryExplain(account=self._account()),))
        return next((e for e in raise_for(rep.events) if type(e) is m.Explain), None)

    # ------------------------------------------------------------ markets

    async def load_markets(self, reload: bool = False, params=None) -> dict:
        return await self._run(self._g_load_markets(reload, params))

    async def fetch_markets(self, params=None) -> list[dict]:
        return await self._run(self._g_fetch_markets(params))

    async def fetch_currencies(self, params=None) -> dict:
        return await self._run(self._g_fetch_currencies(params))

    async def fetch_time(self, params=None) -> int:
        return await self._run(self._g_fetch_time(params))

    # ------------------------------------------------------- market data

    async def fetch_ticker(self, symbol: str, params=None) -> dict:
        return await self._run(self._g_fetch_ticker(symbol, params))

    async def fetch_tickers(self, symbols=None, params=None) -> dict:
        return await self._run(self._g_fetch_tickers(symbols, params))

    async def fetch_order_book(self, symbol: str, limit: int | None = None, params=None) -> dict:
        return await self._run(self._g_fetch_order_book(symbol, limit, params))

    async def fetch_trades(self, symbol: str, since=None, limit=None, params=None) -> list:
        return await self._run(self._g_fetch_trades(symbol, since, limit, params))

    # ------------------------------------------------------------ account

    async def fetch_balance(self, params=None) -> dict:
        return await self._run(self._g_fetch_balance(params))

    async def fetch_positions(self, symbols=None, params=None) -> list[dict]:
        return await self._run(self._g_fetch_positions(symbols, params))

    async def fetch_position(self, symbol: str, params=None) -> dict:
        return await self._run(self._g_fetch_position(symbol, params))

    async def fetch_margin_mode(self, symbol: str | None = None, params=None) -> dict:
        return await self._run(self._g_fetch_margin_mode(symbol, params))

    async def set_margin_mode(self, marginMode: str, symbol: str | None = None, params=None) -> dict:
        return await self._run(self._g_set_margin_mode(marginMode, symbol, params))

    async def add_margin(self, symbol: str, amount, params=None) -> dict:
        return await self._run(self._g_modify_margin(symbol, amount, "add", params))

    async def reduce_margin(self, symbol: str, amount, params=None) -> dict:
        return await self._run(self._g_modify_margin(symbol, amount, "reduce", params))

    # ------------------------------------------------------------- orders

    async def create_order(self, symbol: str, type: str, side: str, amount, price=None, params=None) -> dict:
        return await self._run(self._g_create_order(symbol, type, side, amount, price, params))

    async def edit_order(self, id, symbol: str, type: str | None = None, side: str | None = None, amount=None,
                         price=None, params=None) -> dict:
        return await self._run(self._g_edit_order(id, symbol, type, side, amount, price, params))

    async def cancel_order(self, id, symbol: str | None = None, params=None) -> dict:
        return await self._run(self._g_cancel_order(id, symbol, params))

    async def cancel_all_orders(self, symbol: str | None = None, params=None) -> list[dict]:
        return await self._run(self._g_cancel_all_orders(symbol, params))

    async def fetch_order(self, id, symbol: str | None = None, params=None) -> dict:
        return await self._run(self._g_fetch_order(id, symbol, params))

    async def fetch_open_orders(self, symbol: str | None = None, since=None, limit=None, params=None) -> list[dict]:
        return await self._run(self._g_fetch_open_orders(symbol, since, limit, params))

    async def fetch_orders(self, symbol: str | None = None, since=None, limit=None, params=None) -> list[dict]:
        return await self._run(self._g_fetch_orders(symbol, since, limit, params))

    async def fetch_closed_orders(self, symbol: str | None = None, since=None, limit=None, params=None) -> list[dict]:
        return await self._run(self._g_fetch_closed_orders(symbol, since, limit, params))

    async def fetch_canceled_orders(self, symbol: str | None = None, since=None, limit=None,
                                    params=None) -> list[dict]:
        return await self._run(self._g_fetch_canceled_orders(symbol, since, limit, params))

    async def fetch_my_trades(self, symbol: str | None = None, since=None, limit=None, params=None) -> list[dict]:
        return await self._run(self._g_fetch_my_trades(symbol, since, limit, params))

    # --- ccxt facade: base helpers, batch orders, status (issue 14)

    async def fetch_l2_order_book(self, symbol: str, limit: int | None = None, params=None) -> dict:
        return await self._run(self._g_fetch_l2_order_book(symbol, limit, params))

    async def fetch_status(self, params=None) -> dict:
        return await self._run(self._g_fetch_status(params))

    async def create_orders(self, orders: list[dict], params=None) -> list[dict]:
        return await self._run(self._g_create_orders(orders, params))

    async def sleep(self, milliseconds) -> None:
        """ccxt's ``await exchange.sleep(ms)``."""
        await asyncio.sleep(float(milliseconds) / 1000)

    # ----------------------------------------------------------- leverage

    async def set_leverage(self, leverage, symbol: str | None = None, params=None) -> dict:
        return await self._run(self._g_set_leverage(leverage, symbol, params))

    async def fetch_leverage(self, symbol: str, params=None) -> dict:
        return await self._run(self._g_fetch_leverage(symbol, params))

    async def fetch_leverages(self, symbols=None, params=None) -> dict:
        return await self._run(self._g_fetch_leverages(symbols, params))

    async def fetch_leverage_tiers(self, symbols=None, params=None) -> dict:
        return await self._run(self._g_fetch_leverage_tiers(symbols, params))

    async def fetch_market_leverage_tiers(self, symbol: str, params=None) -> list[dict]:
        return await self._run(self._g_fetch_market_leverage_tiers(symbol, params))


    # --- protective orders
    async def close_position(self, symbol: str, side: str | None = None, params=None) -> dict:
        return await self._run(self._g_close_position(symbol, side, params))

    # --- history: candles and funding from the venue (see the blocking class)

    async def fetch_ohlcv(self, symbol: str, timeframe: str = "1m", since=None, limit=None, params=None) -> list:
        return await self._run(self._g_fetch_ohlcv(symbol, timeframe, since, limit, params))

    async def fetch_mark_ohlcv(self, symbol: str, timeframe: str = "1m", since=None, limit=None, params=None) -> list:
        return await self._run(self._g_fetch_mark_ohlcv(symbol, timeframe, since, limit, params))

    async def fetch_index_ohlcv(self, symbol: str, timeframe: str = "1m", since=None, limit=None,
                                params=None) -> list:
        return await self._run(self._g_fetch_index_ohlcv(symbol, timeframe, since, limit, params))

    async def fetch_funding_rate(self, symbol: str, params=None) -> dict:
        return await self._run(self._g_fetch_funding_rate(symbol, params))

    async def fetch_funding_rates(self, symbols=None, params=None) -> dict:
        return await self._run(self._g_fetch_funding_rates(symbols, params))

    async def fetch_funding_rate_history(self, symbol: str | None = None, since=None, limit=None,
                                         params=None) -> list:
        return await self._run(self._g_fetch_funding_rate_history(symbol, since, limit, params))


__all__ = ["exchangesim", "exchanges", "Exchange", "errors", "version", "__version__", "METHODS",
           *errors.__all__]
