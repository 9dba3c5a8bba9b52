"""WebSocket market streams (``/ws/<stream>`` and ``/stream?streams=a/b``):
``<symbol>@depth@100ms`` (also ``@depth``: 250 ms) and ``<symbol>@aggTrade``.

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


def _parse(gw, names: list[str]) -> tuple[dict[str, list[_Depth]], dict[str, list[str]]]:
    depth: dict[str, list[_Depth]] = {}
    trades: dict[str, list[str]] = {}
    for name in names:
        sym_b, _, rest = name.partition("@")
        sym = gw.syms.venue(sym_b)
        if sym is None:
            raise BinanceError(-1121, f"Invalid symbol: {sym_b}")
        kind, _, speed = rest.partition("@")
        if kind == "depth" and (speed or "250ms") in INTERVAL_S:
            depth.setdefault(sym, []).append(_Depth(name, sym, INTERVAL_S[speed or "250ms"]))
        elif kind == "aggTrade" and not speed:
            trades.setdefault(sym, []).append(name)
        else:
            raise BinanceError(-1100, f"Invalid stream name: {name}")
    return depth, trades


async def handle(gw, request: web.Request, names: list[str], combined: bool) -> web.StreamResponse:
    try:
        depth, trades = _parse(gw, names)
    except BinanceError as e:
        return web.json_response(e.body(), status=400)
    ws = web.WebSocketResponse(heartbeat=None, autoping=True)
    await ws.prepare(request)
    sub = zmq.asyncio.Context.instance().socket(zmq.SUB)
    if gw.server_key:
        curve(sub, gw.server_key)
    for sym in depth:
        sub.setsockopt(zmq.SUBSCRIBE, f"{sym}.book\x00".encode())
    for sym in trades:
        sub.setsockopt(zmq.SUBSCRIBE, f"{sym}.trade\x00".encode())
    sub.connect(gw.market_data)

    async def send(stream: str, data: dict) -> None:
        await ws.send_str(json.dumps({"stream": stream, "data": data} if combined else data, separators=(",", ":")))

    async def pump() -> None:
        while True:
            ev = decode_market(await sub.recv())
            t = type(ev)
            if t is BookDelta:
                for d in depth.get(ev.symbol, ()):
                    d.add(ev)
            elif t is Trade and ev.symbol in trades:
                ins = gw.mk[ev.symbol]
                data = {"e": "aggTrade", "E": time.time_ns() // shapes.NS_PER_MS, "s": gw.syms.binance(ev.symbol),
                        "a": ev.trade_id, "p": shapes.s(ins.price(ev.price)), "q": shapes.s(ins.qty(ev.qty)),
                        "f": ev.trade_id, "l": ev.trade_id, "T": shapes.ms(ev.ts), "m": ev.taker_side.value == "sell"}
                for name in trades[ev.symbol]:
                    await send(name, data)

    async def flush(d: _Depth) -> None:
        ins, binance = gw.mk[d.symbol], gw.syms.binance(d.symbol)
        while True:
            await asyncio.sleep(d.every)
            out = d.take(ins, binance)
            if out is not None:
                await send(d.stream, out)

    tasks = [asyncio.create_task(pump())] + [asyncio.create_task(flush(d)) for ds in depth.values() for d in ds]
    try:
        async for msg in ws:  # the client's frames: only close matters here (ping/pong: aiohttp)
            if msg.type in (WSMsgType.ERROR, WSMsgType.CLOSE):
                break
    finally:
        for t in tasks:
            t.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)
        sub.close(linger=0)
    return ws
