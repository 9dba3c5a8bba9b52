"""A local order book kept by Binance's documented procedure (buffer the
``@depth@100ms`` stream, REST ``depth`` snapshot, drop ``u`` < lastUpdateId,
first event ``U`` <= lastUpdateId <= ``u``, then ``pu`` == previous ``u``)
equals a fresh ``depth`` snapshot after many book changes; and ``@aggTrade``."""

from __future__ import annotations

import asyncio
import json
import time
from decimal import Decimal

import pytest

aiohttp = pytest.importorskip("aiohttp")

from clients.aio import AsyncClient  # noqa: E402
from integration_helpers import KEYS  # noqa: E402



def _apply(side: dict, levels) -> None:
    for p, q in levels:
        if Decimal(q) == 0:
            side.pop(Decimal(p), None)
        else:
            side[Decimal(p)] = Decimal(q)


async def _local_book(server, gateway, n_orders: int) -> None:
    async with aiohttp.ClientSession() as http:
        ws = await http.ws_connect(f"{gateway.url}/ws/btcusdt@depth@100ms")
        trades_ws = await http.ws_connect(f"{gateway.url}/stream?streams=btcusdt@aggTrade")
        maker = await AsyncClient.connect(server.orders, 1, KEYS[1])
        taker = await AsyncClient.connect(server.orders, 2, KEYS[2])
        try:
            await maker.buy("BTC-PERP", "1", "59000.0")  # changes before the snapshot: buffered, then dropped
            await asyncio.sleep(0.3)
            async with http.get(f"{gateway.url}/fapi/v1/depth", params={"symbol": "BTCUSDT", "limit": 1000}) as r:
                snap = await r.json()
            bids = {Decimal(p): Decimal(q) for p, q in snap["bids"]}
            asks = {Decimal(p): Decimal(q) for p, q in snap["asks"]}
            for i in range(n_orders):  # resting orders on both sides and cancels: many level changes
                side, px = ("buy", 59000 - (i % 40) * 10) if i % 2 else ("sell", 61000 + (i % 40) * 10)
                o = await maker.place("BTC-PERP", side, "0.01", f"{px}.0")
                if i % 3 != 2:  # keep a third (the venue allows 200 open orders per account)
                    await maker.cancel(o.order_id)
            trade = await taker.buy("BTC-PERP", "0.02")  # takes the best ask
            await asyncio.sleep(0.3)
            async with http.get(f"{gateway.url}/fapi/v1/depth", params={"symbol": "BTCUSDT", "limit": 1000}) as r:
                final = await r.json()

            prev_u, synced, deadline = None, False, time.monotonic() + 20
            while prev_u is None or prev_u < final["lastUpdateId"]:
                assert time.monotonic() < deadline, "stream never reached the final snapshot"
                ev = json.loads((await ws.receive(timeout=10)).data)
                if ev["u"] < snap["lastUpdateId"]:
                    continue
                if not synced:
                    assert ev["U"] <= snap["lastUpdateId"] <= ev["u"]
                    synced = True
                else:
                    assert ev["pu"] == prev_u  # no delta dropped on loopback
                _apply(bids, ev["b"])
                _apply(asks, ev["a"])
                prev_u = ev["u"]
            assert prev_u == final["lastUpdateId"]
            assert bids == {Decimal(p): Decimal(q) for p, q in final["bids"]}
            assert asks == {Decimal(p): Decimal(q) for p, q in final["asks"]}
            assert len(bids) >= 20 and len(asks) >= 20  # the orders made many levels, not an empty book

            agg = json.loads((await trades_ws.receive(timeout=10)).data)
            assert agg["stream"] == "btcusdt@aggTrade"
            assert (agg["data"]["e"], agg["data"]["s"], agg["data"]["m"]) == ("aggTrade", "BTCUSDT", False)
            assert Decimal(agg["data"]["p"]) == trade.fills[0].price
        finally:
            await maker.close()
            await taker.close()
            await ws.close()
            await trades_ws.close()


@pytest.mark.deadline(120)
def test_local_book_by_binance_procedure_equals_depth(server, gateway):
    asyncio.run(_local_book(server, gateway, 450))


async def _live_subscribe(server, gateway) -> None:
    async with aiohttp.ClientSession() as http:
        ws = await http.ws_connect(f"{gateway.url}/ws")
        maker = await AsyncClient.connect(server.orders, 1, KEYS[1])
        taker = await AsyncClient.connect(server.orders, 2, KEYS[2])
        try:
            await ws.send_json({"method": "SUBSCRIBE", "params": ["btcusdt@aggTrade"], "id": 1})
            assert json.loads((await ws.receive(timeout=10)).data) == {"result": None, "id": 1}
            await ws.send_json({"method": "SUBSCRIBE", "params": ["nope@aggTrade"], "id": 2})
            err = json.loads((await ws.receive(timeout=10)).data)
            assert err["id"] == 2 and "nope" in err["error"]["msg"]
            await ws.send_json({"method": "LIST_SUBSCRIPTIONS", "id": 3})
            assert json.loads((await ws.receive(timeout=10)).data) == {"result": ["btcusdt@aggTrade"], "id": 3}
            await maker.sell("BTC-PERP", "1", "60010.0")
            await taker.buy("BTC-PERP", "0.25")
            agg = json.loads((await ws.receive(timeout=10)).data)
            assert (agg["e"], agg["p"], agg["q"]) == ("aggTrade", "60010.0", "0.250")
            await ws.send_json({"method": "UNSUBSCRIBE", "params": ["btcusdt@aggTrade"], "id": 4})
            assert json.loads((await ws.receive(timeout=10)).data) == {"result": None, "id": 4}
            await taker.buy("BTC-PERP", "0.25")
            await ws.send_json({"method": "LIST_SUBSCRIPTIONS", "id": 5})
            # the next frame is the list, not a trade: the stream is gone
            assert json.loads((await ws.receive(timeout=10)).data) == {"result": [], "id": 5}
        finally:
            await maker.close()
            await taker.close()
            await ws.close()


@pytest.mark.deadline(60)
def test_subscribe_list_unsubscribe_on_a_live_socket(server, gateway):
    asyncio.run(_live_subscribe(server, gateway))


async def _mark(gateway) -> None:
    async with aiohttp.ClientSession() as http:
        ws = await http.ws_connect(f"{gateway.url}/ws/btcusdt@markPrice@1s")
        try:
            ev = json.loads((await ws.receive(timeout=10)).data)
            async with http.get(f"{gateway.url}/fapi/v1/premiumIndex", params={"symbol": "BTCUSDT"}) as r:
                rest = await r.json()
            assert (ev["e"], ev["s"]) == ("markPriceUpdate", "BTCUSDT")
            assert Decimal(ev["p"]) > 0 and ev["T"] == rest["nextFundingTime"] and ev["i"] == rest["indexPrice"]
        finally:
            await ws.close()


@pytest.mark.deadline(60)
def test_mark_price_stream_agrees_with_premium_index(server, gateway):
    asyncio.run(_mark(gateway))
