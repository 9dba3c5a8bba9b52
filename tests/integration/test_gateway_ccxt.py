"""The real ccxt package's binanceusdm, with only its urls pointed at
`exchange-sim gateway` in front of a real venue server: each unified call
returns ccxt's structure without ccxt raising, and what it shows is what the
venue did."""

from __future__ import annotations

import pytest

pytest.importorskip("aiohttp")
ccxt = pytest.importorskip("ccxt")

from gateway_helpers import binanceusdm  # noqa: E402
from integration_helpers import quote  # noqa: E402



@pytest.mark.deadline(120)
def test_ccxt_binanceusdm_market_data_and_trading(server, gateway):
    maker = quote(server)  # 5 BTC bid at 59990, 5 BTC ask at 60010
    try:
        ex = binanceusdm(gateway.url)
        markets = ex.load_markets()
        mk = markets["BTC/USDT:USDT"]
        assert mk["id"] == "BTCUSDT" and mk["swap"] and mk["linear"]
        assert mk["precision"]["price"] == 0.1 and mk["limits"]["cost"]["min"] > 0

        book = ex.fetch_order_book("BTC/USDT:USDT", 5)
        assert book["bids"][0] == [59990.0, 5.0] and book["asks"][0] == [60010.0, 5.0]
        assert book["nonce"] > 0

        # a market buy takes 0.1 BTC from the ask
        assert ex.set_leverage(5, "BTC/USDT:USDT")["leverage"] == 5
        mkt = ex.create_order("BTC/USDT:USDT", "market", "buy", 0.1)
        assert mkt["status"] == "closed" and mkt["filled"] == 0.1 and mkt["average"] == 60010.0

        trades = ex.fetch_trades("BTC/USDT:USDT")
        assert trades[-1]["price"] == 60010.0 and trades[-1]["amount"] == 0.1 and trades[-1]["side"] == "buy"
        tick = ex.fetch_ticker("BTC/USDT:USDT")
        assert tick["last"] == 60010.0 and tick["symbol"] == "BTC/USDT:USDT"
        candles = ex.fetch_ohlcv("BTC/USDT:USDT", "1m")
        assert candles[-1][4] == 60010.0 and candles[-1][5] == 0.1

        mine = ex.fetch_my_trades("BTC/USDT:USDT")
        assert [(t["order"], t["price"], t["amount"]) for t in mine] == [(mkt["id"], 60010.0, 0.1)]
        positions = [p for p in ex.fetch_positions(["BTC/USDT:USDT"]) if p["contracts"]]
        assert positions[0]["side"] == "long" and positions[0]["contracts"] == 0.1
        bal = ex.fetch_balance()
        assert 999_000 < bal["USDT"]["total"] <= 1_000_000 and bal["USDT"]["free"] < bal["USDT"]["total"]

        # a resting limit order: open, fetched, cancelled
        lim = ex.create_order("BTC/USDT:USDT", "limit", "buy", 0.2, 59000)
        assert lim["status"] == "open" and lim["price"] == 59000.0
        assert [o["id"] for o in ex.fetch_open_orders("BTC/USDT:USDT")] == [lim["id"]]
        got = ex.fetch_order(lim["id"], "BTC/USDT:USDT")
        assert got["remaining"] == 0.2 and got["type"] == "limit"
        cancelled = ex.cancel_order(lim["id"], "BTC/USDT:USDT")
        assert cancelled["status"] == "canceled"
        assert ex.fetch_open_orders("BTC/USDT:USDT") == []

        # a reduce-only stop-market below the market rests untriggered (this ccxt sends
        # conditional orders to Binance's algo-order API, /fapi/v1/algoOrder)
        stop = ex.create_order("BTC/USDT:USDT", "market", "sell", 0.1, None,
                               {"stopPrice": 55000, "reduceOnly": True})
        assert stop["status"] == "open" and stop["triggerPrice"] == 55000.0 and stop["reduceOnly"]
        assert ex.fetch_order(stop["id"], "BTC/USDT:USDT", {"trigger": True})["status"] == "open"
        assert [o["id"] for o in ex.fetch_open_orders("BTC/USDT:USDT", params={"trigger": True})] == [stop["id"]]
        ex.cancel_order(stop["id"], "BTC/USDT:USDT", {"trigger": True})
        assert ex.fetch_open_orders("BTC/USDT:USDT", params={"trigger": True}) == []

        # reduce-only closes the long; one more reduce-only sell would increase and is refused
        close = ex.create_order("BTC/USDT:USDT", "market", "sell", 0.1, None, {"reduceOnly": True})
        assert close["filled"] == 0.1
        assert not [p for p in ex.fetch_positions(["BTC/USDT:USDT"]) if p["contracts"]]
        with pytest.raises(ccxt.ExchangeError, match="-2022"):
            ex.create_order("BTC/USDT:USDT", "market", "sell", 0.1, None, {"reduceOnly": True})
    finally:
        maker.close()


@pytest.mark.deadline(120)
def test_ccxt_binanceusdm_more_unified_calls(server, gateway):
    maker = quote(server)
    try:
        ex = binanceusdm(gateway.url)
        ex.load_markets()
        fr = ex.fetch_funding_rate("BTC/USDT:USDT")
        assert fr["symbol"] == "BTC/USDT:USDT" and fr["markPrice"] > 0 and fr["fundingRate"] is not None
        # post-only at the ask would take: refused; below it, it rests
        with pytest.raises(ccxt.ExchangeError, match="-5022"):
            ex.create_order("BTC/USDT:USDT", "limit", "buy", 0.1, 60010, {"postOnly": True})
        po = ex.create_order("BTC/USDT:USDT", "limit", "buy", 0.1, 59980, {"postOnly": True})
        assert po["status"] == "open" and po["postOnly"]
        edited = ex.edit_order(po["id"], "BTC/USDT:USDT", "limit", "buy", 0.3, 59970)
        assert (edited["id"], edited["price"], edited["amount"], edited["remaining"]) == (po["id"], 59970.0, 0.3, 0.3)
        pair = ex.create_orders([{"symbol": "BTC/USDT:USDT", "type": "limit", "side": "buy", "amount": 0.1, "price": 59000},
                                 {"symbol": "BTC/USDT:USDT", "type": "limit", "side": "sell", "amount": 0.1, "price": 61000}])
        assert [(o["side"], o["price"], o["status"]) for o in pair] == [("buy", 59000.0, "open"), ("sell", 61000.0, "open")]
        fees = ex.fetch_trading_fee("BTC/USDT:USDT")
        assert fees["maker"] is not None and fees["taker"] >= fees["maker"]
        assert ex.fetch_order_book("BTC/USDT:USDT")["bids"][0] == [59990.0, 5.0]
        ex.cancel_all_orders("BTC/USDT:USDT")
        assert ex.fetch_open_orders("BTC/USDT:USDT") == []
        assert {(o["id"], o["status"]) for o in ex.fetch_orders("BTC/USDT:USDT")} == {
            (o["id"], "canceled") for o in (po, *pair)}
        # isolated while flat, then back to cross
        ex.set_margin_mode("isolated", "BTC/USDT:USDT")
        # (read on v2 positionRisk, which lists flat symbols too; ccxt's fetch_positions skips flat ones)
        assert ex.fapiPrivateV2GetPositionRisk({"symbol": "BTCUSDT"})[0]["marginType"] == "isolated"
        ex.set_margin_mode("cross", "BTC/USDT:USDT")
        # a take-profit-market above the market (through the algo-order API)
        entry = ex.create_order("BTC/USDT:USDT", "market", "buy", 0.1)
        assert [o["id"] for o in ex.fetch_closed_orders("BTC/USDT:USDT")] == [entry["id"]]  # filled; the cancelled one is not "closed"
        tp = ex.create_order("BTC/USDT:USDT", "market", "sell", 0.1, None,
                             {"takeProfitPrice": 65000, "reduceOnly": True})
        assert tp["status"] == "open" and tp["triggerPrice"] == 65000.0
    finally:
        maker.close()
