"""History over real sockets (docs/history.md): the blocking and asyncio
clients' history methods in human units, the ccxt facade's candles,
tickers, funding, orders and trades from the venue, and all of it still
there after the server restarts from its data dir (a bot that reconciles
after a restart of both bot and venue).

Numbers (default config): BTC-PERP tick 0.1, lot 0.001, taker fee 0.05%;
BTC index 60,000. The maker (account 1) rests asks, the taker (2) lifts them.
"""

from __future__ import annotations

import asyncio
from decimal import Decimal

import pytest
from integration_helpers import ADMIN_KEY, KEYS, cfg, start_server

from clients import AsyncClient, Client
from clients import ccxt
from clients.errors import OrderNotFound
from protocol import messages as m

BTC = "BTC/USDT:USDT"
JOURNAL = {"journal": {"snapshot_every": 0}}


def _trade(maker: Client, taker: Client, qty: str, price: str, cid: str):
    maker.sell("BTC-PERP", qty, price, tif="post_only")
    return taker.buy("BTC-PERP", qty, price, tif="ioc", client_order_id=cid)


def test_history_through_the_clients_survives_a_restart(tmp_path):
    data = tmp_path / "data"
    sp = start_server(tmp_path, args=("--data-dir", str(data)), sections=JOURNAL)
    admin = Client(sp.orders, 0, ADMIN_KEY, timeout=5.0)
    maker = Client(sp.orders, 1, KEYS[1], timeout=5.0)
    taker = Client(sp.orders, 2, KEYS[2], timeout=5.0)
    try:
        first = _trade(maker, taker, "0.010", "60000.0", "t-1")
        second = _trade(maker, taker, "0.020", "60010.0", "t-2")
        resting = maker.sell("BTC-PERP", "0.5", "60100.0", client_order_id="ask-open")
        cancelled = taker.buy("BTC-PERP", "0.1", "59000.0")
        taker.cancel(cancelled.order_id)
        admin.call(m.SettleFunding(symbol="BTC-PERP"))

        trades = taker.trades("BTC-PERP")
        assert [(t.price, t.qty, t.taker_side) for t in trades[-2:]] == [
            (Decimal("60000.0"), Decimal("0.010"), "buy"), (Decimal("60010.0"), Decimal("0.020"), "buy")]
        assert trades[-1].ts >= trades[-2].ts > 0
        (candle,) = taker.candles("BTC-PERP", "1d")
        assert (candle.open, candle.high, candle.close, candle.volume) == (
            Decimal("60000.0"), Decimal("60010.0"), Decimal("60010.0"), Decimal("0.030"))
        assert candle.quote_volume == Decimal("1800.2")  # 60,000 × 0.01 + 60,010 × 0.02
        t = taker.ticker("BTC-PERP")
        assert (t.last, t.open, t.volume, t.mark, t.ask) == (
            Decimal("60010.0"), Decimal("60000.0"), Decimal("0.030"), Decimal("60000.0"), Decimal("60100.0"))
        assert t.percentage == Decimal("0.01")  # +$10 on $60,000 = 0.0166%: 1 bp (rounded toward zero)
        p = taker.premium_index("BTC-PERP")
        assert p.mark == Decimal("60000.0") and p.next_funding_time > 0
        (f,) = taker.funding_history("BTC-PERP")
        assert f.rate == p.last_funding_rate and f.ts > 0
        mine = taker.my_trades("BTC-PERP")
        assert [(x.order_id, x.qty, x.liquidity) for x in mine] == [
            (first.order_id, Decimal("0.010"), "taker"), (second.order_id, Decimal("0.020"), "taker")]
        assert mine[1].fee == Decimal("0.60010")  # 0.05% of 1,200.2
        ended = taker.order_history()
        assert [(o.order_id, o.status) for o in ended] == [
            (first.order_id, "filled"), (second.order_id, "filled"), (cancelled.order_id, "cancelled")]
        assert maker.order(client_order_id="ask-open").status == "new"

        admin.set_index_price("BTC", "60500")

        async def aio():
            c = await AsyncClient.connect(sp.orders, 2, KEYS[2], timeout=5.0)
            try:
                return await c.order(second.order_id), await c.candles("BTC-PERP", "1m", price="mark")
            finally:
                await c.close()
        rec, marks = asyncio.run(aio())
        assert (rec.status, rec.avg_price, rec.filled, rec.client_order_id) == (
            "filled", Decimal("60010.0"), Decimal("0.020"), "t-2")
        assert (marks[-1].close, marks[-1].volume) == (Decimal("60500.0"), 0)
        before = (trades, candle, mine, ended, taker.order(first.order_id))
        admin.take_snapshot()  # the restart loads it, then replays the journal after it
    finally:
        for c in (admin, maker, taker):
            c.close()
        sp.stop()

    # the venue restarts from its data dir; a new bot process reconciles
    sp = start_server(tmp_path, args=("--data-dir", str(data)), sections=JOURNAL)
    taker = Client(sp.orders, 2, KEYS[2], timeout=5.0)
    ex = ccxt.exchangesim(cfg(sp, 2))
    try:
        after = (taker.trades("BTC-PERP"), taker.candles("BTC-PERP", "1d")[0], taker.my_trades("BTC-PERP"),
                 taker.order_history(), taker.order(first.order_id))
        assert after == before
        with pytest.raises(OrderNotFound):
            taker.order(10**9)

        o = ex.fetch_order(str(second.order_id))  # ended before the restart
        assert (o["status"], o["filled"], o["average"], o["clientOrderId"], len(o["trades"])) == (
            "closed", 0.02, 60010.0, "t-2", 1)
        assert o["fee"] == {"cost": pytest.approx(0.6001), "currency": "USDT"}
        closed = ex.fetch_closed_orders(BTC)
        assert [(x["id"], x["status"]) for x in closed] == [
            (str(first.order_id), "closed"), (str(second.order_id), "closed"), (str(cancelled.order_id), "canceled")]
        assert [x["id"] for x in ex.fetch_canceled_orders(BTC)] == [str(cancelled.order_id)]
        my = ex.fetch_my_trades(BTC)
        assert [(x["order"], x["amount"], x["takerOrMaker"]) for x in my] == [
            (str(first.order_id), 0.01, "taker"), (str(second.order_id), 0.02, "taker")]
        assert ex.fetch_my_trades(BTC, since=my[1]["timestamp"]) == my[1:]
        ohlcv = ex.fetch_ohlcv(BTC, "1d")
        assert ohlcv == [[ohlcv[0][0], 60000.0, 60010.0, 60000.0, 60010.0, 0.03]]
        assert ex.fetch_ohlcv(BTC, "1m", since=ohlcv[0][0], limit=1)[0][1] == 60000.0
        tk = ex.fetch_ticker(BTC)
        assert (tk["last"], tk["open"], tk["high"], tk["baseVolume"], tk["info"]["lastSource"]) == (
            60010.0, 60000.0, 60010.0, 0.03, "trade")
        assert tk["quoteVolume"] == pytest.approx(1800.2) and tk["vwap"] == pytest.approx(1800.2 / 0.03)
        assert set(ex.fetch_tickers([BTC])) == {BTC}
        fr = ex.fetch_funding_rate(BTC)
        assert fr["markPrice"] == 60500.0 and fr["interval"] == "8h" and fr["fundingTimestamp"] > 0
        assert fr["previousFundingRate"] == float(f.rate)
        assert BTC in ex.fetch_funding_rates()
        (hist,) = ex.fetch_funding_rate_history(BTC)
        assert hist["fundingRate"] == float(f.rate) and hist["symbol"] == BTC
        assert [x["price"] for x in ex.fetch_trades(BTC)[-2:]] == [60000.0, 60010.0]
        with pytest.raises(ccxt.BadRequest, match="timeframe"):
            ex.fetch_ohlcv(BTC, "3m")
        with pytest.raises(ccxt.BadRequest, match="colour"):
            ex.fetch_ohlcv(BTC, "1m", params={"colour": "mark"})  # unknown params are refused, naming them
        with pytest.raises(ccxt.BadRequest, match="price"):
            ex.fetch_ohlcv(BTC, "1m", params={"price": "last-ish"})
        with pytest.raises(ccxt.OrderNotFound):
            ex.fetch_order("999999999")
    finally:
        ex.close()
        taker.close()
        sp.stop()
