"""WebSocket market streams (``/ws/<stream>`` and ``/stream?streams=a/b``):
``<symbol>@depth@100ms`` (also ``@depth``: 250 ms), ``<symbol>@aggTrade`` and
``<symbol>@markPrice`` / ``@markPrice@1s`` (every 3 s / 1 s, as Binance).

Each WebSocket has its own SUB socket on the venue's market data: nothing is
shared, nothing outlives the connection. Depth diffs follow Binance's
local-order-book procedure: ``U``/``u`` are the first and last venue book
``seq`` merged into the event and REST ``depth``'s ``lastUpdateId`` is the
same ``seq``; ``pu`` is ``U - 1``, so a delta the venue's PUB dropped shows as
``pu`` != the previous event's ``u`` (the client re-snapshots, as on Binance)."""

from __future__ import annotations

import asyncio
import json
import time

import zmq
import zmq.asyncio
from aiohttp import WSMsgType, web

from clients._core import curve
from exchange_sim.gateway import shapes
from exchange_sim.gateway.errors import BinanceError
from protocol.messages import BookDelta, Trade
from protocol.session import decode_market

INTERVAL_S = {"100ms": 0.1, "250ms": 0.25}


class _Depth:
    __slots__ = ("stream", "symbol", "every", "first", "last", "bids", "asks")

    def __init__(self, stream: str, symbol: str, every: float):
        self.stream, self.symbol, self.every = stream, symbol, every
        self.first: int | None = None
        self.last = 0
        self.bids: dict[int, int] = {}
        self.asks: dict[int, int] = {}

    def add(self, d: BookDelta) -> None:
        if self.first is None:
            self.first = d.seq
        self.last = d.seq
        self.bids.update(d.bids)  # absolute lots per price: the latest covers the earlier
        self.asks.update(d.asks)

    def take(self, ins, binance: str) -> dict | None:
        if self.first is None:
            return None
        now = time.time_ns() // shapes.NS_PER_MS
        out = {"e": "depthUpdate", "E": now, "T": now, "s": binance, "U": self.first, "u": self.last,
               "pu": self.first - 1,
               "b": [[shapes.s(ins.price(p)), shapes.s(ins.qty(q))] for p, q in sorted(self.bids.items(), reverse=True)],
               "a": [[shapes.s(ins.price(p)), shapes.s(ins.qty(q))] for p, q in sorted(self.asks.items())]}
        self.first, self.bids, self.asks = None, {}, {}
        return out


def _stream(gw, name: str) -> tuple[str, str, float]:
    """``(venue symbol, kind, interval)`` of a stream name, else Binance's error."""
    sym_b, _, rest = name.partition("@")
    sym = gw.syms.venue(sym_b)
    if sym is None:
        raise BinanceError(-1121, f"Invalid symbol: {sym_b}")
    kind, _, speed = rest.partition("@")
    if kind == "depth" and (speed or "250ms") in INTERVAL_S:
        return sym, "depth", INTERVAL_S[speed or "250ms"]
    if kind == "aggTrade" and not speed:
        return sym, "aggTrade", 0.0
    if kind == "markPrice" and speed in ("", "1s"):
        return sym, "markPrice", 1.0 if speed else 3.0
    raise BinanceError(-1100, f"Invalid stream name: {name}")


class _Conn:
    """One WebSocket's subscriptions: its own SUB socket, one flusher per depth stream."""

    def __init__(self, gw, ws: web.WebSocketResponse, combined: bool):
        self.gw, self.ws, self.combined = gw, ws, combined
        self.depth: dict[str, list[_Depth]] = {}
        self.trades: dict[str, list[str]] = {}
        self.flushers: dict[str, asyncio.Task] = {}
        self.sub = zmq.asyncio.Context.instance().socket(zmq.SUB)
        if gw.server_key:
            curve(self.sub, gw.server_key)
        self.sub.connect(gw.market_data)

    def names(self) -> list[str]:
        marks = [n for n in self.flushers if "@markPrice" in n]
        return ([d.stream for ds in self.depth.values() for d in ds] + [n for ns in self.trades.values() for n in ns]
                + marks)

    def add(self, name: str) -> None:
        if name in self.names():
            return
        sym, kind, every = _stream(self.gw, name)
        if kind == "markPrice":  # Binance's is periodic too (3 s, or 1 s): read the premium index each time
            self.flushers[name] = asyncio.create_task(self.mark(name, sym, every))
        elif kind == "depth":
            d = _Depth(name, sym, every)
            self.depth.setdefault(sym, []).append(d)
            self.flushers[name] = asyncio.create_task(self.flush(d))
            self.sub.setsockopt(zmq.SUBSCRIBE, f"{sym}.book\x00".encode())
        else:
            self.trades.setdefault(sym, []).append(name)
            self.sub.setsockopt(zmq.SUBSCRIBE, f"{sym}.trade\x00".encode())

    def remove(self, name: str) -> None:
        # the SUB topic stays subscribed: events no stream wants are dropped in pump()
        for ds in self.depth.values():
            ds[:] = [d for d in ds if d.stream != name]
        for ns in self.trades.values():
            ns[:] = [n for n in ns if n != name]
        task = self.flushers.pop(name, None)
        if task is not None:
            task.cancel()

    async def send(self, stream: str, data: dict) -> None:
        msg = {"stream": stream, "data": data} if self.combined else data
        await self.ws.send_str(json.dumps(msg, separators=(",", ":")))

    async def pump(self) -> None:
        gw = self.gw
        while True:
            ev = decode_market(await self.sub.recv())
            t = type(ev)
            if t is BookDelta:
                for d in self.depth.get(ev.symbol, ()):
                    d.add(ev)
            elif t is Trade and self.trades.get(ev.symbol):
                ins = gw.mk[ev.symbol]
                data = {"e": "aggTrade", "E": time.time_ns() // shapes.NS_PER_MS, "s": gw.syms.binance(ev.symbol),
                        "a": ev.trade_id, "p": shapes.s(ins.price(ev.price)), "q": shapes.s(ins.qty(ev.qty)),
                        "f": ev.trade_id, "l": ev.trade_id, "T": shapes.ms(ev.ts), "m": ev.taker_side.value == "sell"}
                for name in self.trades[ev.symbol]:
                    await self.send(name, data)

    async def flush(self, d: _Depth) -> None:
        ins, binance = self.gw.mk[d.symbol], self.gw.syms.binance(d.symbol)
        while True:
            await asyncio.sleep(d.every)
            out = d.take(ins, binance)
            if out is not None:
                await self.send(d.stream, out)

    async def mark(self, name: str, sym: str, every: float) -> None:
        gw = self.gw
        while True:
            await asyncio.sleep(every)
            p = await gw.public.premium_index(sym)
            await self.send(name, {"e": "markPriceUpdate", "E": time.time_ns() // shapes.NS_PER_MS,
                                   "s": gw.syms.binance(sym), "p": shapes.s(p.mark), "i": shapes.s(p.index),
                                   "P": shapes.s(p.index), "r": shapes.s(p.predicted_funding_rate),
                                   "T": shapes.ms(p.next_funding_time)})

    async def control(self, text: str) -> None:
        """Binance's live subscribing: SUBSCRIBE / UNSUBSCRIBE / LIST_SUBSCRIPTIONS."""
        try:
            req = json.loads(text)
            method, rid, params = req.get("method"), req.get("id"), req.get("params", [])
            if not isinstance(params, list) or not all(isinstance(x, str) for x in params):
                raise BinanceError(2, "Invalid request: params must be a list of stream names")
            if method == "SUBSCRIBE":
                for name in params:
                    _stream(self.gw, name)  # all valid, or none subscribed
                for name in params:
                    self.add(name)
                result = None
            elif method == "UNSUBSCRIBE":
                for name in params:
                    self.remove(name)
                result = None
            elif method == "LIST_SUBSCRIPTIONS":
                result = self.names()
            else:
                raise BinanceError(2, f"Invalid request: unknown method {method!r}")
        except (ValueError, AttributeError):
            await self.ws.send_str(json.dumps({"error": {"code": 3, "msg": "Invalid JSON"}, "id": None}))
            return
        except BinanceError as e:
            await self.ws.send_str(json.dumps({"error": {"code": 2, "msg": e.msg}, "id": req.get("id")}))
            return
        await self.ws.send_str(json.dumps({"result": result, "id": rid}))

    async def close(self) -> None:
        tasks = list(self.flushers.values())
        for t in tasks:
            t.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)
        self.sub.close(linger=0)


async def handle(gw, request: web.Request, names: list[str], combined: bool) -> web.StreamResponse:
    names = [n for n in names if n]
    try:
        for name in names:
            _stream(gw, name)
    except BinanceError as e:
        return web.json_response(e.body(), status=400)
    ws = web.WebSocketResponse(heartbeat=None, autoping=True)
    await ws.prepare(request)
    conn = _Conn(gw, ws, combined)
    for name in names:
        conn.add(name)
    pump = asyncio.create_task(conn.pump())
    try:
        async for msg in ws:  # the client's frames (ping/pong: aiohttp)
            if msg.type == WSMsgType.TEXT:
                await conn.control(msg.data)
            elif msg.type in (WSMsgType.ERROR, WSMsgType.CLOSE):
                break
    finally:
        pump.cancel()
        await asyncio.gather(pump, return_exceptions=True)
        await conn.close()
    return ws
