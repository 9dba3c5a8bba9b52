"""The aiohttp application: Binance USD-M REST paths answered by commands and
queries to the venue over its ZeroMQ session protocol (clients.aio).

One unauthenticated venue session answers the public endpoints; a signed
request is answered by a session logged in as the key's account, opened on
first use and re-opened if the venue dropped it (a cache: nothing in it
survives only here)."""

from __future__ import annotations

import asyncio
import json
import signal
import time
from collections.abc import Awaitable, Callable
from decimal import Decimal
from urllib.parse import parse_qsl

from aiohttp import web

from clients.aio import AsyncClient
from clients.errors import Disconnected, ExchangeError, RequestTimeout
from exchange_sim.gateway import auth, shapes, ws
from exchange_sim.gateway.errors import BinanceError, for_reason, invalid, mandatory, not_read, unknown_order
from protocol import messages as m
from protocol.messages import RejectReason

SIGNING = ("timestamp", "recvWindow", "signature")
DEPTH_LIMITS = (5, 10, 20, 50, 100, 500, 1000)
INTERVALS = ("1m", "5m", "15m", "1h", "4h", "1d")


def now_ms() -> int:
    return time.time_ns() // 1_000_000


class Params:
    """A request's parameters (query string + form body), each read at most
    once by name; a parameter the endpoint did not read is refused (-1104)."""

    def __init__(self, pairs: list[tuple[str, str]]):
        self.raw = dict(pairs)
        self.read: set[str] = set(SIGNING)

    def get(self, name: str, default=None):
        self.read.add(name)
        v = self.raw.get(name)
        return default if v in (None, "") else v

    def req(self, name: str) -> str:
        v = self.get(name)
        if v is None:
            raise mandatory(name)
        return v

    def int(self, name: str, default=None, lo: int | None = None, hi: int | None = None) -> int | None:
        v = self.get(name)
        if v is None:
            return default
        try:
            x = int(v)
        except ValueError:
            raise invalid(name) from None
        if (lo is not None and x < lo) or (hi is not None and x > hi):
            raise invalid(name)
        return x

    def bool(self, name: str) -> bool:
        v = self.get(name)
        if v is None:
            return False
        if v.lower() not in ("true", "false"):
            raise invalid(name)
        return v.lower() == "true"

    def done(self) -> None:
        sent = list(self.raw)
        if set(sent) - self.read:
            raise not_read([k for k in sent if k in self.read], sent)


def _decimal(p: Params, name: str) -> Decimal:
    try:
        return Decimal(p.req(name))
    except ArithmeticError:
        raise invalid(name) from None


def _ns(ms_value: int | None) -> int | None:
    return None if ms_value is None else ms_value * shapes.NS_PER_MS


class Gateway:
    def __init__(self, orders: str, keys: dict[str, auth.Key], server_key: str | None = None,
                 timeout: float = 5.0, market_data: str | None = None):
        self.orders = orders
        self.market_data = market_data
        self.keys = keys
        self.server_key = server_key
        self.timeout = timeout
        self.public: AsyncClient | None = None
        self.sessions: dict[int, AsyncClient] = {}
        self._login_lock = asyncio.Lock()
        self.syms: shapes.Symbols | None = None

    # ------------------------------------------------------------ venue

    async def start(self) -> None:
        self.public = AsyncClient(self.orders, server_key=self.server_key, timeout=self.timeout)
        await self.public.load_markets()
        self.syms = shapes.Symbols(self.public.markets)

    async def close(self) -> None:
        for c in [*self.sessions.values(), *([self.public] if self.public else [])]:
            await c.close()
        self.sessions.clear()

    async def session(self, key: auth.Key) -> AsyncClient:
        c = self.sessions.get(key.account)
        if c is not None and c.session is not None:
            return c
        async with self._login_lock:
            c = self.sessions.get(key.account)
            if c is None or c.session is None:
                if c is not None:
                    await c.close(logout=False)
                c = await AsyncClient.connect(self.orders, key.account, key.api_key, server_key=self.server_key,
                                              timeout=self.timeout)
                self.sessions[key.account] = c
            return c

    @property
    def mk(self):
        return self.public.markets

    def venue_symbol(self, p: Params, name: str = "symbol", required: bool = True) -> str | None:
        b = p.req(name) if required else p.get(name)
        if b is None:
            return None
        v = self.syms.venue(b)
        if v is None:
            raise BinanceError(-1121, "Invalid symbol.")
        return v

    # ------------------------------------------------------------ public

    async def ping(self, p: Params, c=None):
        return {}

    async def time(self, p: Params, c=None):
        return {"serverTime": now_ms()}

    async def exchange_info(self, p: Params, c=None):
        return shapes.exchange_info(self.mk, self.syms, now_ms(), await self.public.leverage_tiers())

    async def depth(self, p: Params, c=None):
        sym = self.venue_symbol(p)
        limit = p.int("limit", 500)
        if limit not in DEPTH_LIMITS:
            raise invalid("limit")
        return shapes.depth(await self.public.book(sym, limit), now_ms())

    async def trades(self, p: Params, c=None):
        sym = self.venue_symbol(p)
        limit = p.int("limit", 500, 1, 1000)
        return [shapes.trade(t, self.mk) for t in await self.public.trades(sym, limit)]

    async def agg_trades(self, p: Params, c=None):
        sym = self.venue_symbol(p)
        limit = p.int("limit", 500, 1, 1000)
        from_id, start, end = p.int("fromId"), p.int("startTime"), p.int("endTime")
        rows = await self.public.trades(sym, 1000 if (from_id or start or end) else limit)
        rows = [t for t in rows if (from_id is None or t.trade_id >= from_id)
                and (start is None or shapes.ms(t.ts) >= start) and (end is None or shapes.ms(t.ts) <= end)]
        rows = rows[:limit] if (from_id is not None or start is not None) else rows[-limit:]
        return [shapes.agg_trade(t) for t in rows]

    async def _klines(self, p: Params, price: str, sym_param: str = "symbol"):
        sym = self.venue_symbol(p, sym_param)
        interval = p.req("interval")
        if interval not in INTERVALS:
            raise BinanceError(-1120, "Invalid interval.")
        limit = p.int("limit", 500, 1, 1500)
        rows = await self.public.candles(sym, interval, price=price, start=_ns(p.int("startTime")),
                                         end=_ns(p.int("endTime")), limit=limit)
        return [shapes.kline(k) for k in rows]

    async def klines(self, p: Params, c=None):
        return await self._klines(p, "last")

    async def mark_klines(self, p: Params, c=None):
        return await self._klines(p, "mark")

    async def index_klines(self, p: Params, c=None):
        return await self._klines(p, "index", "pair")

    async def _each(self, p: Params, query, shape):
        sym = self.venue_symbol(p, required=False)
        got = await query(sym)
        if sym is not None:
            return shape(got, self.syms)
        return [shape(x, self.syms) for x in got]

    async def premium_index(self, p: Params, c=None):
        return await self._each(p, self.public.premium_index, shapes.premium_index)

    async def ticker_24hr(self, p: Params, c=None):
        return await self._each(p, self.public.ticker, shapes.ticker_24hr)

    async def ticker_price(self, p: Params, c=None):
        return await self._each(p, self.public.ticker, shapes.ticker_price)

    async def book_ticker(self, p: Params, c=None):
        return await self._each(p, self.public.ticker, shapes.book_ticker)

    async def funding_rate(self, p: Params, c=None):
        sym = self.venue_symbol(p, required=False)
        rows = await self.public.funding_history(sym, start=_ns(p.int("startTime")), end=_ns(p.int("endTime")),
                                                 limit=p.int("limit", 100, 1, 1000))
        return [shapes.funding_rate(f, self.syms) for f in rows]

    # ------------------------------------------------------------ signed

    async def leverage_bracket(self, p: Params, c: AsyncClient):
        sym = self.venue_symbol(p, required=False)
        levs = await c.leverage(sym)
        out = [shapes.brackets(lv, self.syms) for lv in levs.values()]
        return out[0] if sym is not None and out else out

    def _order_params(self, p: Params) -> dict:
        sym = self.venue_symbol(p)
        side = p.req("side").upper()
        if side not in ("BUY", "SELL"):
            raise BinanceError(-1117, "Invalid side.")
        btype = p.req("type").upper()
        vtype = shapes.ORDER_TYPES.get(btype)
        if vtype is None:
            raise BinanceError(-1116, "Invalid orderType.")
        if p.get("positionSide", "BOTH").upper() != "BOTH":
            raise BinanceError(-4061, "Order's position side does not match user's setting.")
        if p.bool("priceProtect"):
            raise invalid("priceProtect")  # not modelled: refused rather than silently ignored
        if p.get("newOrderRespType", "ACK").upper() not in ("ACK", "RESULT"):
            raise invalid("newOrderRespType")
        tif = p.get("timeInForce")
        limit_type = vtype in ("limit", "stop_limit", "take_profit_limit")
        if tif is None:
            tif = "GTC"
            if btype == "LIMIT":
                raise mandatory("timeInForce")
        if tif.upper() not in shapes.TIF:
            raise BinanceError(-1115, "Invalid timeInForce.")
        vtif = shapes.TIF[tif.upper()]
        close_position = p.bool("closePosition")
        qty = p.get("quantity")
        if qty is None and not close_position:
            raise mandatory("quantity")
        price = p.get("price")
        if limit_type and price is None:
            raise mandatory("price")
        stop = p.get("stopPrice")
        working = p.get("workingType")
        kw: dict = {}
        if working is not None:
            if working.upper() not in shapes.WORKING:
                raise invalid("workingType")
            kw["working_type"] = shapes.WORKING[working.upper()]
        if close_position:
            kw["close_position"] = True
        if (cb := p.get("callbackRate")) is not None:
            kw["callback_rate"] = cb
        if (act := p.get("activationPrice")) is not None:
            kw["activation_price"] = act
        stp = p.get("selfTradePreventionMode", "EXPIRE_TAKER").lower()
        if stp not in ("none", "expire_taker", "expire_maker", "expire_both"):
            raise invalid("selfTradePreventionMode")
        return dict(symbol=sym, side=side.lower(), qty=qty, price=price if limit_type else None, type=vtype,
                    tif=vtif if limit_type else "gtc", reduce_only=p.bool("reduceOnly"), stop_price=stop, stp=stp,
                    client_order_id=p.get("newClientOrderId"), **kw)

    async def new_order(self, p: Params, c: AsyncClient):
        a = self._order_params(p)
        p.done()
        sym, side, qty, price = a.pop("symbol"), a.pop("side"), a.pop("qty"), a.pop("price")
        res = await c.place(sym, side, qty, price, **a)
        rec = await c.order(res.order_id)
        return shapes.order(rec, self.syms, working_type=a.get("working_type", "mark_price"),
                            close_position=a.get("close_position", False))

    # --- algo orders: Binance serves conditional orders on /fapi/v1/algoOrder (ccxt sends
    # STOP/TAKE_PROFIT/TRAILING there); to the venue they are ordinary conditional orders

    _ALGO_NAMES = {"triggerPrice": "stopPrice", "activatePrice": "activationPrice", "clientAlgoId": "newClientOrderId"}

    def _algo_params(self, p: Params) -> Params:
        if p.req("algoType").upper() != "CONDITIONAL":
            raise invalid("algoType")
        q = Params([(self._ALGO_NAMES.get(k, k), v) for k, v in p.raw.items()])
        q.read.add("algoType")
        p.read.update(p.raw)  # every name is judged on q
        return q

    async def new_algo_order(self, p: Params, c: AsyncClient):
        q = self._algo_params(p)
        a = self._order_params(q)
        if a["type"] in ("limit", "market"):
            raise BinanceError(-1116, "Invalid orderType.")
        q.done()
        sym, side, qty, price = a.pop("symbol"), a.pop("side"), a.pop("qty"), a.pop("price")
        res = await c.place(sym, side, qty, price, **a)
        return shapes.algo_order(await c.order(res.order_id), self.syms,
                                 working_type=a.get("working_type", "mark_price"),
                                 close_position=a.get("close_position", False))

    def _algo_ref(self, p: Params) -> tuple[int | None, str | None]:
        self.venue_symbol(p, required=False)  # ccxt sends it; the id alone names the order
        oid, cid = p.int("algoId"), p.get("clientAlgoId")
        if oid is None and cid is None:
            raise BinanceError(-1102, "Param 'clientAlgoId' or 'algoId' must be sent, but both were empty/null!")
        return oid, cid

    async def get_algo_order(self, p: Params, c: AsyncClient):
        oid, cid = self._algo_ref(p)
        p.done()
        return shapes.algo_order(await self._find(c, oid, cid), self.syms)

    async def cancel_algo_order(self, p: Params, c: AsyncClient):
        oid, cid = self._algo_ref(p)
        p.done()
        rec = await self._find(c, oid, cid, cancel=True)
        if rec.status not in ("new", "partially_filled"):
            raise BinanceError(-2011, "Unknown order sent.")
        await c.cancel(rec.order_id)
        return {"algoId": rec.order_id, "clientAlgoId": rec.client_order_id or "", "code": "200", "msg": "success"}

    async def open_algo_orders(self, p: Params, c: AsyncClient):
        sym = self.venue_symbol(p, required=False)
        p.done()
        opens = [o for o in await c.open_orders(sym) if o.type not in ("limit", "market")]
        recs = await asyncio.gather(*(c.order(o.order_id) for o in opens))
        return [shapes.algo_order(r, self.syms, working_type=o.working_type, close_position=o.close_position)
                for o, r in zip(opens, recs) if not r.triggered]

    async def batch_orders(self, p: Params, c: AsyncClient):
        """POST /fapi/v1/batchOrders: up to 5 orders (JSON list in ``batchOrders``);
        the answer lists each order or its error, in order, as Binance."""
        try:
            items = json.loads(p.req("batchOrders"))
        except ValueError:
            raise invalid("batchOrders") from None
        if not isinstance(items, list) or not 1 <= len(items) <= 5 or not all(isinstance(x, dict) for x in items):
            raise invalid("batchOrders")
        p.done()
        out: list = []
        for item in items:
            q = Params([(k, v if isinstance(v, str) else json.dumps(v)) for k, v in item.items()])
            q.read.difference_update(SIGNING)  # signing fields belong to the request, not to an item
            try:
                a = self._order_params(q)
                q.done()
                sym, side, qty, price = a.pop("symbol"), a.pop("side"), a.pop("qty"), a.pop("price")
                res = await c.place(sym, side, qty, price, **a)
                out.append(shapes.order(await c.order(res.order_id), self.syms,
                                        working_type=a.get("working_type", "mark_price"),
                                        close_position=a.get("close_position", False)))
            except BinanceError as e:
                out.append(e.body())
            except ExchangeError as e:
                out.append(for_reason(e.reason, str(e)).body())
        return out

    def _order_ref(self, p: Params) -> tuple[int | None, str | None]:
        oid = p.int("orderId")
        cid = p.get("origClientOrderId")
        if oid is None and cid is None:
            raise BinanceError(-1102, "Param 'origClientOrderId' or 'orderId' must be sent, but both were empty/null!")
        return oid, cid

    @staticmethod
    async def _find(c: AsyncClient, oid, cid, sym: str | None = None, *, cancel: bool = False):
        """The order's record; unknown (or of another symbol): Binance's -2013,
        or -2011 when the request was a cancel."""
        missing = BinanceError(-2011, "Unknown order sent.") if cancel else unknown_order()
        try:
            rec = await c.order(oid, client_order_id=cid)
        except ExchangeError as e:
            if e.reason == RejectReason.UNKNOWN_ORDER:
                raise missing from None
            raise
        if sym is not None and rec.symbol != sym:
            raise missing
        return rec

    async def _record(self, c: AsyncClient, sym: str, oid, cid):
        return await self._find(c, oid, cid, sym)

    async def get_order(self, p: Params, c: AsyncClient):
        sym = self.venue_symbol(p)
        oid, cid = self._order_ref(p)
        p.done()
        return shapes.order(await self._record(c, sym, oid, cid), self.syms)

    async def cancel_order(self, p: Params, c: AsyncClient):
        sym = self.venue_symbol(p)
        oid, cid = self._order_ref(p)
        p.done()
        rec = await self._find(c, oid, cid, sym, cancel=True)
        if rec.status not in ("new", "partially_filled"):
            raise BinanceError(-2011, "Unknown order sent.")
        await c.cancel(rec.order_id)
        return shapes.order(await c.order(rec.order_id), self.syms)

    async def modify_order(self, p: Params, c: AsyncClient):
        """PUT /fapi/v1/order (Binance: LIMIT orders only; ``quantity`` is the order's
        total, the venue's AmendOrder takes the remaining: total - executed)."""
        sym = self.venue_symbol(p)
        oid, cid = self._order_ref(p)
        side = p.req("side").upper()
        qty, price = _decimal(p, "quantity"), _decimal(p, "price")
        if p.get("priceMatch", "NONE").upper() != "NONE":
            raise invalid("priceMatch")
        p.done()
        rec = await self._record(c, sym, oid, cid)
        if rec.status not in ("new", "partially_filled"):
            raise unknown_order()
        if rec.type != "limit":
            raise BinanceError(-1116, "Invalid orderType.")
        if side != rec.side.upper():
            raise invalid("side")
        remaining = qty - rec.filled
        if remaining <= 0:
            raise invalid("quantity")
        await c.amend(sym, rec.order_id, qty=remaining if remaining != rec.remaining else None,
                      price=price if price != rec.price else None)
        return shapes.order(await c.order(rec.order_id), self.syms)

    async def commission_rate(self, p: Params, c: AsyncClient):
        ins = self.mk[self.venue_symbol(p)]
        p.done()
        return {"symbol": self.syms.binance(ins.symbol), "makerCommissionRate": shapes.s(ins.maker_fee),
                "takerCommissionRate": shapes.s(ins.taker_fee)}

    async def cancel_all(self, p: Params, c: AsyncClient):
        sym = self.venue_symbol(p)
        p.done()
        await c.cancel_all(sym)
        return {"code": 200, "msg": "The operation of cancel all open order is done."}

    async def _open(self, c: AsyncClient, sym: str | None) -> list[dict]:
        opens = await c.open_orders(sym)
        recs = await asyncio.gather(*(c.order(o.order_id) for o in opens))
        return [shapes.order(r, self.syms, working_type=o.working_type, close_position=o.close_position)
                for o, r in zip(opens, recs)]

    async def open_orders(self, p: Params, c: AsyncClient):
        sym = self.venue_symbol(p, required=False)
        p.done()
        return await self._open(c, sym)

    async def open_order(self, p: Params, c: AsyncClient):
        sym = self.venue_symbol(p)
        oid, cid = self._order_ref(p)
        p.done()
        rec = await self._record(c, sym, oid, cid)
        if rec.status not in ("new", "partially_filled"):
            raise BinanceError(-2013, "Order does not exist.")
        return shapes.order(rec, self.syms)

    async def all_orders(self, p: Params, c: AsyncClient):
        sym = self.venue_symbol(p)
        oid = p.int("orderId")
        limit = p.int("limit", 500, 1, 1000)
        rows = await c.order_history(sym, start=_ns(p.int("startTime")), end=_ns(p.int("endTime")), limit=1000)
        rows = [r for r in rows if oid is None or r.order_id >= oid]
        rows.sort(key=lambda r: r.order_id)
        return [shapes.order(r, self.syms) for r in (rows[:limit] if oid is not None else rows[-limit:])]

    async def user_trades(self, p: Params, c: AsyncClient):
        sym = self.venue_symbol(p)
        limit = p.int("limit", 500, 1, 1000)
        from_id, oid = p.int("fromId"), p.int("orderId")
        rows = await c.my_trades(sym, start=_ns(p.int("startTime")), end=_ns(p.int("endTime")), limit=1000)
        rows = [f for f in rows if (from_id is None or f.trade_id >= from_id) and (oid is None or f.order_id == oid)]
        rows = rows[:limit] if from_id is not None else rows[-limit:]
        return [shapes.user_trade(f, self.mk, self.syms) for f in rows]

    async def _account(self, p: Params, c: AsyncClient, v3: bool):
        p.done()
        acct, levs = await asyncio.gather(c.account(), c.leverage())
        return shapes.account(acct, self.mk, self.syms, levs, v3, now_ms())

    async def account_v2(self, p: Params, c: AsyncClient):
        return await self._account(p, c, False)

    async def account_v3(self, p: Params, c: AsyncClient):
        return await self._account(p, c, True)

    async def balance(self, p: Params, c: AsyncClient):
        p.done()
        return shapes.balance(await c.account(), self.mk, f"account-{c.account_id}", now_ms())

    async def _position_risk(self, p: Params, c: AsyncClient, v3: bool):
        sym = self.venue_symbol(p, required=False)
        p.done()
        acct, levs = await asyncio.gather(c.account(), c.leverage())
        held = {x.symbol: x for x in acct.positions}
        # v2 lists every symbol (zero rows included), v3 only the open positions, as Binance
        names = [n for n in self.mk.instruments if sym in (None, n) and (not v3 or n in held)]
        return [shapes.position_risk(held.get(n), n, levs.get(n), acct, self.syms, v3) for n in names]

    async def position_risk_v2(self, p: Params, c: AsyncClient):
        return await self._position_risk(p, c, False)

    async def position_risk_v3(self, p: Params, c: AsyncClient):
        return await self._position_risk(p, c, True)

    async def set_leverage(self, p: Params, c: AsyncClient):
        sym = self.venue_symbol(p)
        lev = p.int("leverage", lo=1, hi=125)
        if lev is None:
            raise mandatory("leverage")
        p.done()
        await c.set_leverage(sym, lev)
        info = (await c.leverage(sym))[sym]
        cap = next((t.notional_cap for t in info.tiers if t.max_leverage >= lev and t.notional_cap), None)
        return {"leverage": lev, "maxNotionalValue": shapes.s(cap) if cap is not None else "INF",
                "symbol": self.syms.binance(sym)}

    async def margin_type(self, p: Params, c: AsyncClient):
        self.venue_symbol(p)
        mt = p.req("marginType").upper()
        if mt not in ("ISOLATED", "CROSSED"):
            raise invalid("marginType")
        p.done()
        mode = m.MarginMode.ISOLATED if mt == "ISOLATED" else m.MarginMode.CROSS
        acct = await c.account()
        if acct.margin_mode == mode.value or (mode is m.MarginMode.CROSS and acct.margin_mode == "portfolio"):
            raise BinanceError(-4046, "No need to change margin type.")
        await c.call(m.SetMarginMode(account=c.account_id, mode=mode))
        return {"code": 200, "msg": "success"}

    async def get_dual(self, p: Params, c: AsyncClient):
        p.done()
        return {"dualSidePosition": False}

    async def set_dual(self, p: Params, c: AsyncClient):
        hedge = p.req("dualSidePosition").lower()
        if hedge not in ("true", "false"):
            raise invalid("dualSidePosition")
        p.done()
        if hedge == "false":
            raise BinanceError(-4059, "No need to change position side.")
        # the venue nets one position per symbol (one-way mode only)
        raise invalid("dualSidePosition")


Handler = Callable[[Gateway, Params, AsyncClient | None], Awaitable[object]]

# (method, path, handler, signed)
ROUTES: list[tuple[str, str, Handler, bool]] = [
    ("GET", "/fapi/v1/ping", Gateway.ping, False),
    ("GET", "/fapi/v1/time", Gateway.time, False),
    ("GET", "/fapi/v1/exchangeInfo", Gateway.exchange_info, False),
    ("GET", "/fapi/v1/depth", Gateway.depth, False),
    ("GET", "/fapi/v1/trades", Gateway.trades, False),
    ("GET", "/fapi/v1/aggTrades", Gateway.agg_trades, False),
    ("GET", "/fapi/v1/klines", Gateway.klines, False),
    ("GET", "/fapi/v1/markPriceKlines", Gateway.mark_klines, False),
    ("GET", "/fapi/v1/indexPriceKlines", Gateway.index_klines, False),
    ("GET", "/fapi/v1/premiumIndex", Gateway.premium_index, False),
    ("GET", "/fapi/v1/ticker/24hr", Gateway.ticker_24hr, False),
    ("GET", "/fapi/v1/ticker/price", Gateway.ticker_price, False),
    ("GET", "/fapi/v2/ticker/price", Gateway.ticker_price, False),
    ("GET", "/fapi/v1/ticker/bookTicker", Gateway.book_ticker, False),
    ("GET", "/fapi/v1/fundingRate", Gateway.funding_rate, False),
    ("GET", "/fapi/v1/leverageBracket", Gateway.leverage_bracket, True),
    ("POST", "/fapi/v1/order", Gateway.new_order, True),
    ("GET", "/fapi/v1/order", Gateway.get_order, True),
    ("DELETE", "/fapi/v1/order", Gateway.cancel_order, True),
    ("PUT", "/fapi/v1/order", Gateway.modify_order, True),
    ("POST", "/fapi/v1/batchOrders", Gateway.batch_orders, True),
    ("GET", "/fapi/v1/commissionRate", Gateway.commission_rate, True),
    ("DELETE", "/fapi/v1/allOpenOrders", Gateway.cancel_all, True),
    ("POST", "/fapi/v1/algoOrder", Gateway.new_algo_order, True),
    ("GET", "/fapi/v1/algoOrder", Gateway.get_algo_order, True),
    ("DELETE", "/fapi/v1/algoOrder", Gateway.cancel_algo_order, True),
    ("GET", "/fapi/v1/openAlgoOrders", Gateway.open_algo_orders, True),
    ("GET", "/fapi/v1/openOrders", Gateway.open_orders, True),
    ("GET", "/fapi/v1/openOrder", Gateway.open_order, True),
    ("GET", "/fapi/v1/allOrders", Gateway.all_orders, True),
    ("GET", "/fapi/v1/userTrades", Gateway.user_trades, True),
    ("GET", "/fapi/v2/account", Gateway.account_v2, True),
    ("GET", "/fapi/v3/account", Gateway.account_v3, True),
    ("GET", "/fapi/v2/balance", Gateway.balance, True),
    ("GET", "/fapi/v3/balance", Gateway.balance, True),
    ("GET", "/fapi/v2/positionRisk", Gateway.position_risk_v2, True),
    ("GET", "/fapi/v3/positionRisk", Gateway.position_risk_v3, True),
    ("POST", "/fapi/v1/leverage", Gateway.set_leverage, True),
    ("POST", "/fapi/v1/marginType", Gateway.margin_type, True),
    ("GET", "/fapi/v1/positionSide/dual", Gateway.get_dual, True),
    ("POST", "/fapi/v1/positionSide/dual", Gateway.set_dual, True),
]


def _json(status: int, body) -> web.Response:
    return web.Response(status=status, text=json.dumps(body, separators=(",", ":")), content_type="application/json")


def _handler(gw: Gateway, fn: Handler, signed: bool):
    async def handle(request: web.Request) -> web.Response:
        try:
            body = await request.text() if request.can_read_body else ""
            query = request.rel_url.raw_query_string
            pairs = parse_qsl(query, keep_blank_values=True) + parse_qsl(body, keep_blank_values=True)
            p = Params(pairs)
            client = None
            if signed:
                key = auth.check(gw.keys, request.headers.get("X-MBX-APIKEY"), query, body, p.raw, now_ms())
                client = await gw.session(key)
            try:
                out = await fn(gw, p, client)
            except ExchangeError as e:
                if not signed or e.reason != RejectReason.NOT_LOGGED_IN:
                    raise
                # the venue restarted and forgot this session: the refused command changed
                # nothing, so log in again and run the request once more
                client.session = None
                p = Params(pairs)
                out = await fn(gw, p, await gw.session(key))
            p.done()
            return _json(200, out)
        except BinanceError as e:
            return _json(e.status, e.body())
        except (RequestTimeout, Disconnected) as e:
            return _json(503, {"code": -1001, "msg": f"Internal error; unable to process your request. {e}"})
        except ExchangeError as e:
            err = for_reason(e.reason, str(e))
            return _json(err.status, err.body())
    return handle


async def _not_found(request: web.Request) -> web.Response:
    return _json(404, {"code": -5000, "msg": f"Path {request.path}, Method {request.method} is invalid"})


def make_app(gw: Gateway) -> web.Application:
    app = web.Application()
    paths: set[str] = set()
    for method, path, fn, signed in ROUTES:
        app.router.add_route(method, path, _handler(gw, fn, signed))
        paths.add(path)
    app.router.add_get("/ws", lambda r: ws.handle(gw, r, [], False))
    app.router.add_get("/ws/{streams:.+}", lambda r: ws.handle(gw, r, r.match_info["streams"].split("/"), False))
    app.router.add_get("/stream", lambda r: ws.handle(gw, r, r.query.get("streams", "").split("/"), True))
    app.router.add_route("*", "/{tail:.*}", _not_found)

    async def _startup(_app):
        await gw.start()

    async def _cleanup(_app):
        await gw.close()

    app.on_startup.append(_startup)
    app.on_cleanup.append(_cleanup)
    return app


def run(orders: str, host: str, port: int, keys: dict[str, auth.Key], server_key: str | None = None,
        duration: float | None = None, market_data: str | None = None) -> int:
    """Serve until SIGINT/SIGTERM (or ``duration`` s); prints ``http: URL`` and ``ready``."""

    async def main() -> None:
        gw = Gateway(orders, keys, server_key, market_data=market_data)
        runner = web.AppRunner(make_app(gw))
        await runner.setup()
        site = web.TCPSite(runner, host, port)
        await site.start()
        bound = runner.addresses[0]
        print(f"http: http://{bound[0]}:{bound[1]}", flush=True)
        print("ready", flush=True)
        stop = asyncio.Event()
        for sig in (signal.SIGINT, signal.SIGTERM):
            asyncio.get_running_loop().add_signal_handler(sig, stop.set)
        try:
            await asyncio.wait_for(stop.wait(), duration)
        except asyncio.TimeoutError:
            pass
        finally:
            await runner.cleanup()

    asyncio.run(main())
    return 0
