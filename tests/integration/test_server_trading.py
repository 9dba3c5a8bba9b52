"""Two bots trade through a real server: orders, partial fills, cancels,
amends; both sides see consistent fills, and a subscriber sees the trade.

Numbers (BTC-PERP: tick 0.1, lot 0.001, maker 0.02%, taker 0.05%):
the maker rests 0.5 BTC at 60,010.0; the taker lifts 0.2, so the maker has
0.3 left. Notional 0.2 x 60,010 = 12,002 USDT: maker fee 12,002 x 0.0002 =
2.4004, taker fee x 0.0005 = 6.001 USDT.
"""

from __future__ import annotations

import asyncio
import time
from decimal import Decimal as D

import pytest
import zmq

from clients import AsyncClient, Client, InvalidOrder, OrderNotFound
from clients.models import Fill, OrderUpdate
from protocol import messages as m
from protocol.session import decode_market
from integration_helpers import ADMIN_KEY, KEYS


def _sub(ctx, endpoint: str, *topics: bytes) -> zmq.Socket:
    s = ctx.socket(zmq.SUB)
    s.linger = 0
    for t in topics:
        s.setsockopt(zmq.SUBSCRIBE, t)
    s.connect(endpoint)
    return s


def _recv_market(sock: zmq.Socket, want: type, timeout: float = 5.0):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if sock.poll(100):
            ev = decode_market(sock.recv())
            if type(ev) is want:
                return ev
    raise AssertionError(f"no {want.__name__} on the market-data socket")


def test_two_bots_trade(server, ctx):
    trades = _sub(ctx, server.market_data, b"BTC-PERP.trade")
    time.sleep(0.2)  # let the subscription reach the PUB socket
    with Client(server.orders, 1, KEYS[1], context=ctx) as maker, Client(server.orders, 2, KEYS[2], context=ctx) as taker:
        ask = maker.sell("BTC-PERP", "0.5", "60010.0", client_order_id="mm-ask-1")
        assert (ask.status, ask.qty, ask.price) == ("new", D("0.5"), D("60010.0"))

        hit = taker.buy("BTC-PERP", "0.2", "60010.0", client_order_id="tk-1")
        assert hit.status == "filled" and hit.filled == D("0.2") and hit.avg_price == D("60010.0")
        assert hit.fee == D("6.001")
        (tf,) = hit.fills

        mf = next(e for e in maker.events(timeout=2.0) if isinstance(e, Fill))
        assert mf.order_id == ask.order_id and mf.trade_id == tf.trade_id
        assert (mf.side, mf.price, mf.qty, mf.remaining, mf.fee) == ("sell", D("60010.0"), D("0.2"), D("0.3"), D("2.4004"))
        assert mf.position == D("-0.2") and tf.position == D("0.2")

        trade = _recv_market(trades, m.Trade)
        assert (trade.trade_id, trade.price, trade.qty, trade.taker_side) == (tf.trade_id, 600100, 200, m.Side.BUY)

        # amend down keeps priority; then cancel; a second cancel is not found
        am = maker.amend("BTC-PERP", ask.order_id, qty="0.1")
        assert am.kind == "amended" and am.qty == D("0.1") and am.priority_kept
        assert [o.qty for o in maker.open_orders()] == [D("0.1")]
        assert taker.open_orders() == []
        c = maker.cancel(client_order_id="mm-ask-1")
        assert c.kind == "cancelled" and c.cause == "user" and c.qty == D("0.1")
        with pytest.raises(OrderNotFound):
            maker.cancel(ask.order_id)

        # partial fill of a resting bid, then the rest cancelled by cancel_all
        bid = maker.buy("BTC-PERP", "1.0", "59990.0")
        part = taker.sell("BTC-PERP", "0.4", "59990.0", tif="ioc")
        assert part.status == "filled" and part.filled == D("0.4")
        left = maker.cancel_all("BTC-PERP")
        assert [(u.order_id, u.qty, u.cause) for u in left] == [(bid.order_id, D("0.6"), "cancel_all")]

        # both accounts agree: positions net to zero
        assert maker.account().positions[0].qty == D("0.2")  # -0.2 + 0.4
        assert taker.account().positions[0].qty == D("-0.2")

        with pytest.raises(InvalidOrder):
            taker.buy("BTC-PERP", "0.0005", "60000.0")  # not a whole lot: refused client-side
    with Client(server.orders, 0, ADMIN_KEY, context=ctx) as admin:
        assert admin.check_invariants().ok


def test_batch_answers_each_command(server, ctx):
    with Client(server.orders, 1, KEYS[1], context=ctx) as c:
        cmds = [
            c.new_order_cmd("ETH-PERP", "buy", "0.1", D("2990.00") - i, client_order_id=f"b-{i}") for i in range(50)
        ]
        cmds.append(m.NewOrder(account=1, symbol="ETH-PERP", side=m.Side.BUY, qty=1, price=10**9))  # outside band
        cmds.append(m.CancelOrder(account=1, client_order_id="b-3"))
        results = c.batch(cmds)
        assert len(results) == 52
        assert all(type(r[0]) is m.OrderAccepted for r in results[:50])
        assert results[50][0].reason == m.RejectReason.OUTSIDE_PRICE_BAND
        assert type(results[51][0]) is m.OrderCancelled
        assert len(c.open_orders("ETH-PERP")) == 49


def test_async_client(server):
    async def main():
        maker = await AsyncClient.connect(server.orders, 1, KEYS[1])
        taker = await AsyncClient.connect(server.orders, 2, KEYS[2])
        try:
            asks = await asyncio.gather(*[maker.sell("SOL-PERP", "10", D("150.5") + i) for i in range(5)])
            assert [a.status for a in asks] == ["new"] * 5
            hit = await taker.buy("SOL-PERP", "15", "151.5", tif="ioc")
            assert hit.filled == D("15") and len(hit.fills) == 2
            got = []
            async for ev in maker.events(timeout=1.0):
                if isinstance(ev, Fill):
                    got.append(ev.qty)
            assert sorted(got) == [D("5"), D("10")]
            acct = await taker.account()
            assert acct.positions[0].qty == D("15")
            upd = await maker.cancel(asks[-1].order_id)
            assert isinstance(upd, OrderUpdate) and upd.cause == "user"
            book = await taker.book("SOL-PERP")
            assert [p for p, _ in book.asks] == [D("151.5"), D("152.5"), D("153.5")]
        finally:
            await maker.close()
            await taker.close()

    asyncio.run(main())
