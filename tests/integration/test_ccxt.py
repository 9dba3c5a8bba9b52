"""The CCXT-style facade (``clients.ccxt``) against a real ``exchange-sim
serve``: a bot written only against ccxt's API runs with only its import
and config changed; then shapes, symbols, precision, the exception mapping
(each class), positions and their liquidation-price estimate, margin modes,
and the asyncio ``watch_*`` methods.

Numbers (default config): BTC-PERP tick 0.1, lot 0.001, maker 0.02%,
taker 0.05%, IM 1% / MM 0.5% up to $250,000 of notional; BTC index 60,000.
The maker (account 1) quotes 59,990 / 60,010, 5 BTC each side.
"""

from __future__ import annotations

import asyncio
import time

import pytest
import zmq

import ccxt_bot
import clients.ccxt as ccxt_mod
from clients import Client
from clients import ccxt
from clients import errors as client_errors
from clients.ccxt import async_support as accxt
from clients.ccxt._base import METHODS, liquidation_price
from exchange_sim import Venue
from integration_helpers import ADMIN_KEY, KEYS, cfg, quote
from protocol import messages as m
from protocol.messages import RejectReason

BTC = "BTC/USDT:USDT"




def offline() -> ccxt.exchangesim:
    """An exchange object with the default markets, no server (unit tests)."""
    ex = ccxt.exchangesim({})
    ex._set_markets(Venue().apply(m.QueryInstruments())[0])
    return ex


def dead_endpoint() -> str:
    s = zmq.Context.instance().socket(zmq.ROUTER)
    port = s.bind_to_random_port("tcp://127.0.0.1")
    s.close(linger=0)
    return f"tcp://127.0.0.1:{port}"


# ------------------------------------------------------------------ the bot


def test_bot_runs_unchanged_on_the_facade(server, ctx):
    maker = quote(server, ctx)
    report = ccxt_bot.run(ccxt, "exchangesim", cfg(server))
    maker.close()
    assert "stopped" not in report, report
    assert report["market"] == {"id": "BTC-PERP", "type": "swap", "linear": True, "contractSize": 1.0,
                                "maker": 0.0002, "taker": 0.0005}
    assert report["last"] == 60000.0  # no trade yet: the mark
    assert report["free_before"] == 1_000_000.0
    assert report["amount"] == 0.016  # 1,000 / 60,000 = 0.01666 truncated to the lot
    assert report["bid"] == {"id": report["bid"]["id"], "clientOrderId": "ccxt-bot-bid-1", "status": "open",
                             "price": 59400.0, "amount": 0.016, "remaining": 0.016}
    assert report["open_ids"] == [report["bid"]["id"]]
    assert (report["cancelled_status"], report["open_after_cancel"]) == ("canceled", 0)
    assert report["buy"] == {"status": "closed", "filled": 0.016, "remaining": 0.0, "average": 60010.0}
    (pos,) = report["position"]
    assert (pos["side"], pos["contracts"], pos["entryPrice"], pos["marginMode"]) == ("long", 0.016, 60010.0, "cross")
    assert pos["unrealizedPnl"] == pytest.approx(0.016 * (60000 - 60010))
    assert report["close"] == {"status": "closed", "filled": 0.016, "average": 59990.0}
    assert report["positions_after"] == 0
    assert report["errors"] == {"reduce_only_when_flat": "InvalidOrder", "post_only_cross": "OrderImmediatelyFillable",
                                "too_big": "InsufficientFunds"}
    assert report["my_trades"] == [("buy", 0.016, "taker"), ("sell", 0.016, "taker")]
    # paid: the spread (0.016 x 20) and two taker fees (0.016 x 60,010 x 0.0005 + 0.016 x 59,990 x 0.0005)
    assert report["free_after"] == pytest.approx(1_000_000 - 0.32 - 0.48008 - 0.47992)


def test_bot_stops_on_network_error():
    t0 = time.monotonic()
    report = ccxt_bot.run(ccxt, "exchangesim", {"apiKey": "2:x", "timeout": 200,
                                                "urls": {"api": {"orders": dead_endpoint()}}})
    assert report["stopped"].startswith("RequestTimeout")  # a NetworkError, retried twice
    assert time.monotonic() - t0 < 5


# ----------------------------------------------------------- module surface


def test_module_surface_matches_ccxt():
    import clients.ccxt.pro as ccxtpro

    assert ccxt is ccxt_mod and ccxt.exchanges == ["exchangesim"] == accxt.exchanges
    for mod in (ccxt, accxt, ccxtpro):
        ex = getattr(mod, "exchangesim")({"apiKey": "2:k"})
        assert ex.id == "exchangesim" and ex.has["fetchPositions"] and ex.has["createOrder"]
        for name in ("BaseError", "ExchangeError", "AuthenticationError", "PermissionDenied", "InsufficientFunds",
                     "InvalidOrder", "OrderNotFound", "BadSymbol", "BadRequest", "RateLimitExceeded", "NetworkError",
                     "RequestTimeout", "ExchangeNotAvailable", "DuplicateOrderId", "NotSupported"):
            assert getattr(mod, name) is getattr(ccxt.errors, name)
    assert accxt.exchangesim.has["watchOrderBook"] and not ccxt.exchangesim.has["watchOrderBook"]
    # CCXT 4's hierarchy: network trouble is not an exchange error
    assert not issubclass(ccxt.NetworkError, ccxt.ExchangeError)
    assert issubclass(ccxt.RequestTimeout, ccxt.NetworkError) and issubclass(ccxt.RateLimitExceeded, ccxt.NetworkError)
    assert issubclass(ccxt.ExchangeNotAvailable, ccxt.NetworkError)
    assert issubclass(ccxt.OrderNotFound, ccxt.InvalidOrder) and issubclass(ccxt.DuplicateOrderId, ccxt.InvalidOrder)
    assert issubclass(ccxt.BadSymbol, ccxt.BadRequest) and issubclass(ccxt.PermissionDenied, ccxt.AuthenticationError)
    assert all(issubclass(getattr(ccxt, n), ccxt.BaseError) for n in ("ExchangeError", "NetworkError"))
    for name in METHODS:  # the same unified methods, blocking and awaited
        assert callable(getattr(ccxt.exchangesim, name)) and asyncio.iscoroutinefunction(getattr(accxt.exchangesim, name))
    for name in ("watch_order_book", "watch_orders", "watch_positions"):
        assert asyncio.iscoroutinefunction(getattr(accxt.exchangesim, name))  # coroutines, as ccxt.pro
    ex = ccxt.exchangesim({})
    assert ex.fetchTicker == ex.fetch_ticker and ex.createOrder == ex.create_order  # ccxt's camelCase too
    assert ex.amountToPrecision == ex.amount_to_precision and ex.loadMarkets == ex.load_markets
    assert asyncio.iscoroutinefunction(accxt.exchangesim({}).watchOrderBook)
    with pytest.raises(ccxt.NotSupported, match="fetchLedger"):  # a unified method the venue lacks
        ex.fetchLedger()
    with pytest.raises(ccxt.NotSupported):
        ex.fetch_deposits()
    with pytest.raises(AttributeError):
        ex.no_such_thing


def test_credentials_and_endpoints(monkeypatch):
    monkeypatch.delenv("EXCHANGESIM_ORDERS", raising=False)
    monkeypatch.delenv("EXCHANGESIM_MARKET_DATA", raising=False)
    assert ccxt.exchangesim({"apiKey": "2:demo-key-taker-2"})._credentials() == (2, "demo-key-taker-2")
    assert ccxt.exchangesim({"apiKey": "demo-key-taker-2", "uid": "2"})._credentials() == (2, "demo-key-taker-2")
    assert ccxt.exchangesim({"apiKey": "k:with:colons", "options": {"account": 3}})._credentials() == (3, "k:with:colons")
    for bad in ({}, {"apiKey": "demo-key-taker-2"}, {"apiKey": "x", "uid": "two"}):
        with pytest.raises(ccxt.AuthenticationError):
            ccxt.exchangesim(bad).check_required_credentials()

    default = ccxt.exchangesim({})
    assert default.urls["api"] == {"orders": "tcp://127.0.0.1:7001", "marketData": "tcp://127.0.0.1:7002"}
    monkeypatch.setenv("EXCHANGESIM_ORDERS", "tcp://127.0.0.1:9001")
    monkeypatch.setenv("EXCHANGESIM_MARKET_DATA", "tcp://127.0.0.1:9002")
    assert ccxt.exchangesim({}).urls["api"] == {"orders": "tcp://127.0.0.1:9001", "marketData": "tcp://127.0.0.1:9002"}
    ex = ccxt.exchangesim({"options": {"orders": "tcp://h:1"}, "urls": {"api": {"marketData": "tcp://h:2"}}})
    assert ex.urls["api"] == {"orders": "tcp://h:1", "marketData": "tcp://h:2"}  # config beats the environment


# ------------------------------------------------- symbols and precision


def test_symbol_mapping_and_market_fields():
    ex = offline()
    assert ex.symbols == ["BNB/USDT:USDT", "BTC/USDT:USDT", "ETH/USDT:USDT", "MEME/USDT:USDT", "SOL/USDT:USDT"]
    assert ex.ids == ["BNB-PERP", "BTC-PERP", "ETH-PERP", "MEME-PERP", "SOL-PERP"]
    btc = ex.market(BTC)
    assert ex.market("BTC-PERP") is btc and ex.market("BTC/USDT") is btc and ex.markets_by_id["BTC-PERP"] == [btc]
    assert ex.market_id(BTC) == "BTC-PERP"
    assert {k: btc[k] for k in ("id", "base", "quote", "settle", "type", "swap", "spot", "contract", "linear",
                                "inverse", "contractSize", "maker", "taker", "active")} == {
        "id": "BTC-PERP", "base": "BTC", "quote": "USDT", "settle": "USDT", "type": "swap", "swap": True,
        "spot": False, "contract": True, "linear": True, "inverse": False, "contractSize": 1.0, "maker": 0.0002,
        "taker": 0.0005, "active": True}
    assert btc["precision"]["amount"] == 0.001 and btc["precision"]["price"] == 0.1
    assert btc["limits"]["amount"] == {"min": 0.001, "max": 1000.0}
    assert btc["limits"]["cost"]["min"] == 5.0 and btc["limits"]["price"]["min"] == 0.1
    assert ex.market("MEME-PERP")["precision"] == {"amount": 1.0, "price": 0.00001, "cost": None, "base": None,
                                                   "quote": None}
    assert ex.currencies["BTC"]["precision"] == 1e-8 and ex.currencies["USDT"]["precision"] == 1e-6
    for bad in ("BTC/USD:USD", "btc-perp", "XRP/USDT:USDT", None):
        with pytest.raises(ccxt.BadSymbol):
            ex.market(bad)
    with pytest.raises(ccxt.ExchangeError, match="markets not loaded"):
        ccxt.exchangesim({}).market(BTC)


def test_precision_helpers():
    ex = offline()
    assert ex.amount_to_precision(BTC, 0.0129) == "0.012"  # truncated, as CCXT
    assert ex.amount_to_precision(BTC, "1.2345") == "1.234"
    assert ex.amount_to_precision(BTC, 2) == "2"
    assert ex.price_to_precision(BTC, 60000.05) == "60000.1"  # rounded half up
    assert ex.price_to_precision(BTC, 60000.04) == "60000"
    assert ex.price_to_precision(BTC, 0.1 + 0.2) == "0.3"  # floats by their shortest repr
    assert ex.price_to_precision("SOL-PERP", 150.12345) == "150.123"
    assert ex.amount_to_precision("MEME/USDT:USDT", 1234.9) == "1234"
    assert ex.price_to_precision("MEME/USDT:USDT", 0.250004) == "0.25"
    with pytest.raises(ccxt.InvalidOrder, match="minimum amount precision of 0.001"):
        ex.amount_to_precision(BTC, 0.0009)
    with pytest.raises(ccxt.BadRequest):
        ex.price_to_precision(BTC, "abc")
    with pytest.raises(ccxt.BadSymbol):
        ex.amount_to_precision("NOPE/USDT:USDT", 1)


# ------------------------------------------------------------------ errors


def test_every_reject_reason_has_a_ccxt_class():
    for reason in RejectReason:
        cls = ccxt.errors.class_for(reason)
        assert issubclass(cls, ccxt.BaseError) and cls is not ccxt.BaseError, reason
    cf = ccxt.errors.class_for
    assert cf(RejectReason.INSUFFICIENT_MARGIN) is ccxt.InsufficientFunds
    assert cf(RejectReason.REDUCE_ONLY_MODE) is ccxt.InsufficientFunds
    assert cf(RejectReason.UNKNOWN_SYMBOL) is ccxt.BadSymbol
    assert cf(RejectReason.UNKNOWN_ORDER) is ccxt.OrderNotFound
    assert cf(RejectReason.DUPLICATE_CLIENT_ORDER_ID) is ccxt.DuplicateOrderId
    assert cf(RejectReason.RATE_LIMITED) is ccxt.RateLimitExceeded
    assert cf(RejectReason.AUTH_FAILED) is ccxt.AuthenticationError
    assert cf(RejectReason.NOT_ALLOWED) is ccxt.PermissionDenied
    assert cf(RejectReason.POST_ONLY_WOULD_CROSS) is ccxt.errors.OrderImmediatelyFillable
    assert cf(RejectReason.INVALID_FIELD, "NewOrder") is ccxt.InvalidOrder
    assert cf(RejectReason.INVALID_FIELD, "QueryAccount") is ccxt.BadRequest
    assert cf("a_reason_from_a_newer_server") is ccxt.ExchangeError


def test_client_exceptions_translate():
    tr = ccxt.errors.translate
    assert type(tr(client_errors.RequestTimeout("slow"))) is ccxt.RequestTimeout
    assert type(tr(client_errors.Disconnected("server shutting down"))) is ccxt.ExchangeNotAvailable
    assert type(tr(zmq.ZMQError(zmq.ETERM))) is ccxt.NetworkError
    assert type(tr(client_errors.InvalidOrder("x", RejectReason.BAD_TICK))) is ccxt.InvalidOrder
    assert type(tr(client_errors.InvalidOrder("x", RejectReason.INVALID_FIELD))) is ccxt.InvalidOrder  # client-side
    rej = m.Rejected(reason=RejectReason.INSUFFICIENT_MARGIN, message="im > equity", command="NewOrder")
    err = tr(client_errors.error_for(rej))
    assert type(err) is ccxt.InsufficientFunds and err.reason == "insufficient_margin"
    assert str(err) == "exchangesim insufficient_margin: im > equity"
    assert type(tr(client_errors.ExchangeError("odd reply"))) is ccxt.ExchangeError
    assert tr(KeyError("x")).__class__ is KeyError  # not ours: unchanged


def test_each_exception_from_the_live_venue(server, ctx):
    maker = quote(server, ctx)
    admin = Client(server.orders, 0, ADMIN_KEY, context=ctx)
    ex = ccxt.exchangesim(cfg(server))
    ex.load_markets()

    def raises(cls, fn, *args, **kw):
        with pytest.raises(cls) as info:
            fn(*args, **kw)
        assert type(info.value) is cls, info.value  # the exact class, not only a parent
        return info.value

    raises(ccxt.InsufficientFunds, ex.create_order, BTC, "limit", "buy", 300, 59000)
    raises(ccxt.InvalidOrder, ex.create_order, BTC, "limit", "buy", 0.01, 40000)  # outside the 20% band
    raises(ccxt.InvalidOrder, ex.create_order, BTC, "limit", "buy", 0.001, 1000)  # below min notional...
    raises(ccxt.InvalidOrder, ex.create_order, BTC, "limit", "buy", 0.0001, 59000)  # ...and below one lot
    raises(ccxt.errors.OrderImmediatelyFillable, ex.create_order, BTC, "limit", "buy", 0.01, 60010, {"postOnly": True})
    raises(ccxt.errors.OrderNotFillable, ex.create_order, BTC, "limit", "buy", 6, 60010, {"timeInForce": "FOK"})
    raises(ccxt.InvalidOrder, ex.create_order, BTC, "market", "sell", 0.01, None, {"reduceOnly": True})
    raises(ccxt.errors.ArgumentsRequired, ex.create_order, BTC, "limit", "buy", 0.01)
    raises(ccxt.OrderNotFound, ex.cancel_order, "987654", BTC)
    raises(ccxt.OrderNotFound, ex.fetch_order, "987654")
    raises(ccxt.BadSymbol, ex.fetch_ticker, "DOGE/USDT:USDT")
    raises(ccxt.BadRequest, ex.cancel_order, "not-an-id")
    raises(ccxt.BadRequest, ex.set_margin_mode, "hedged")
    raises(ccxt.BadRequest, ex.set_leverage, 500, BTC)  # above the 100x of BTC's first tier
    raises(ccxt.NotSupported, ex.create_order, BTC, "market", "sell", 0.01, None, {"trailingAmount": 100})
    raises(ccxt.PermissionDenied, ex.add_margin, BTC, 100)  # isolated margin while in cross mode: not allowed
    first = ex.create_order(BTC, "limit", "buy", 0.01, 59000, {"clientOrderId": "dup-1"})
    again = ex.create_order(BTC, "limit", "buy", 0.01, 59000, {"clientOrderId": "dup-1"})  # a resend: same order
    assert again["id"] == first["id"] and len(ex.fetch_open_orders(BTC)) == 1
    raises(ccxt.DuplicateOrderId, ex.create_order, BTC, "limit", "buy", 0.01, 59100, {"clientOrderId": "dup-1"})
    raises(ccxt.errors.OperationRejected, ex.set_margin_mode, "isolated")  # an open order: refused
    admin.pause("BTC-PERP")
    raises(ccxt.errors.MarketClosed, ex.create_order, BTC, "limit", "buy", 0.01, 59000)
    admin.resume("BTC-PERP")
    with ccxt.exchangesim(cfg(server) | {"apiKey": "2:wrong-key"}) as wrong_key:
        raises(ccxt.AuthenticationError, wrong_key.fetch_balance)
    with ccxt.exchangesim({"urls": cfg(server)["urls"]}) as no_key:
        raises(ccxt.AuthenticationError, no_key.fetch_balance)
    with ccxt.exchangesim({"timeout": 200, "urls": {"api": {"orders": dead_endpoint()}}}) as nobody:
        raises(ccxt.RequestTimeout, nobody.load_markets)
    for c in (ex, admin, maker):
        c.close()


def test_rate_limit_exceeded(serve):
    srv = serve(rate_limit_per_s=1, rate_limit_burst=6)
    ex = ccxt.exchangesim(cfg(srv))
    with pytest.raises(ccxt.RateLimitExceeded) as info:
        for _ in range(20):
            ex.fetch_balance()
    assert isinstance(info.value, ccxt.NetworkError) and info.value.reason == "rate_limited"
    ex.close()


# ------------------------------------------------------------------ shapes


def test_ticker_book_balance_shapes(server, ctx):
    maker = quote(server, ctx)
    ex = ccxt.exchangesim(cfg(server))
    ex.load_markets()
    t = ex.fetch_ticker(BTC)
    assert (t["symbol"], t["bid"], t["bidVolume"], t["ask"], t["askVolume"]) == (BTC, 59990.0, 5.0, 60010.0, 5.0)
    assert (t["last"], t["markPrice"], t["indexPrice"], t["info"]["lastSource"]) == (60000.0, 60000.0, 60000.0, "mark")
    assert abs(t["timestamp"] - time.time() * 1000) < 5000 and t["datetime"].endswith("Z")
    taker = Client(server.orders, 3, KEYS[3], context=ctx)
    taker.buy("BTC-PERP", "0.1", type="market")  # someone else trades: a public print
    deadline = time.monotonic() + 5
    while ex.fetch_ticker(BTC)["info"]["lastSource"] != "trade" and time.monotonic() < deadline:
        time.sleep(0.02)
    assert ex.fetch_ticker(BTC)["last"] == 60010.0
    assert [x["price"] for x in ex.fetch_trades(BTC)] == [60010.0]
    assert set(ex.fetch_tickers([BTC, "ETH-PERP"])) == {BTC, "ETH/USDT:USDT"}

    book = ex.fetch_order_book(BTC, 5)
    assert book["bids"] == [[59990.0, 5.0]] and book["asks"] == [[60010.0, 4.9]]
    assert book["symbol"] == BTC and isinstance(book["nonce"], int) and book["nonce"] > 0

    bal = ex.fetch_balance()
    assert bal["USDT"] == {"free": 1_000_000.0, "used": 0.0, "total": 1_000_000.0}
    assert bal["free"]["USDT"] == bal["USDT"]["free"] and bal["total"]["USDT"] == 1_000_000.0
    ex.create_order(BTC, "limit", "buy", 1, 59000)  # 59,000 of notional: 590 of initial margin
    bal = ex.fetch_balance()
    assert bal["USDT"] == {"free": 1_000_000.0 - 590, "used": 590.0, "total": 1_000_000.0}
    # an account with BTC: its haircut value backs USDT's figure; BTC shows as held
    student = ccxt.exchangesim(cfg(server, 4))
    sb = student.fetch_balance()
    assert sb["BTC"] == {"free": 0.5, "used": 0.0, "total": 0.5}
    assert sb["USDT"]["total"] == pytest.approx(10_000 + 0.5 * 60_000 * 0.95)
    assert sb["info"]["wallet"] == {"USDT": "10000", "BTC": "0.5"}
    for c in (ex, student, taker, maker):
        c.close()


def test_order_lifecycle_and_shapes(server, ctx):
    ex = ccxt.exchangesim(cfg(server, 1))  # the maker account trades through the facade
    ex.load_markets()
    taker = Client(server.orders, 3, KEYS[3], context=ctx)
    o = ex.create_limit_sell_order(BTC, 0.5, 60010.04, {"clientOrderId": "ask-1"})  # price rounded to the tick
    for key in ("id", "clientOrderId", "timestamp", "datetime", "lastTradeTimestamp", "symbol", "type", "timeInForce",
                "postOnly", "reduceOnly", "side", "price", "triggerPrice", "amount", "cost", "average", "filled",
                "remaining", "status", "fee", "fees", "trades", "info"):
        assert key in o, key
    assert isinstance(o["id"], str) and o["clientOrderId"] == "ask-1"
    assert (o["symbol"], o["type"], o["side"], o["price"], o["amount"], o["filled"], o["remaining"], o["status"],
            o["timeInForce"], o["postOnly"]) == (BTC, "limit", "sell", 60010.0, 0.5, 0.0, 0.5, "open", "GTC", False)

    taker.buy("BTC-PERP", "0.2", "60010.0")  # fills 0.2 of it: pushed to the facade's session
    f = ex.fetch_order(o["id"], BTC)
    assert (f["status"], f["filled"], f["remaining"], f["average"], f["cost"]) == ("open", 0.2, 0.3, 60010.0, 12002.0)
    assert f["fee"] == {"cost": pytest.approx(2.4004), "currency": "USDT"}
    (tr,) = f["trades"]
    assert (tr["order"], tr["side"], tr["takerOrMaker"], tr["price"], tr["amount"], tr["cost"]) == (
        o["id"], "sell", "maker", 60010.0, 0.2, 12002.0)
    assert tr["fee"] == {"cost": pytest.approx(2.4004), "currency": "USDT", "rate": 0.0002}
    assert ex.fetch_order(None, params={"clientOrderId": "ask-1"})["id"] == o["id"]

    e = ex.edit_order(o["id"], BTC, "limit", "sell", 0.4, 60020)  # total 0.4 = 0.2 filled + 0.2 left
    assert (e["amount"], e["remaining"], e["price"]) == (0.4, 0.2, 60020.0)
    [oo] = ex.fetch_open_orders(BTC)
    assert (oo["id"], oo["remaining"], oo["price"]) == (o["id"], 0.2, 60020.0)
    taker.buy("BTC-PERP", "0.2", "60020.0")  # fills the rest
    f = ex.fetch_order(o["id"])
    assert (f["status"], f["filled"], f["remaining"], len(f["trades"])) == ("closed", 0.4, 0.0, 2)
    assert f["average"] == pytest.approx((0.2 * 60010 + 0.2 * 60020) / 0.4)

    bid = ex.create_order(BTC, "limit", "buy", 0.1, 59000, {"timeInForce": "PO"})
    assert (bid["postOnly"], bid["timeInForce"]) == (True, "PO")
    stop = ex.create_order(BTC, "market", "sell", 0.1, None, {"stopPrice": 55000})
    assert (stop["type"], stop["triggerPrice"], stop["status"], stop["info"]["type"]) == (
        "market", 55000.0, "open", "stop_market")
    cancelled = ex.cancel_all_orders(BTC)
    assert sorted(c["id"] for c in cancelled) == sorted([bid["id"], stop["id"]])
    assert {c["status"] for c in cancelled} == {"canceled"} and ex.fetch_open_orders() == []
    assert [x["id"] for x in ex.fetch_closed_orders(BTC)] == [o["id"], bid["id"], stop["id"]]
    assert [x["id"] for x in ex.fetch_canceled_orders(BTC)] == [bid["id"], stop["id"]]

    # IOC: takes what is there, the rest is cancelled
    taker.sell("BTC-PERP", "0.3", "59990.0")
    ioc = ex.create_order(BTC, "limit", "buy", 1, 59990, {"timeInForce": "IOC"})
    assert (ioc["status"], ioc["filled"], ioc["remaining"], ioc["info"]["cancel_cause"]) == ("canceled", 0.3, 0.7, "ioc")

    trades = ex.fetch_my_trades(BTC)
    assert [(t["side"], t["amount"], t["takerOrMaker"]) for t in trades] == [
        ("sell", 0.2, "maker"), ("sell", 0.2, "maker"), ("buy", 0.3, "taker")]
    assert ex.fetch_my_trades(BTC, limit=1) == trades[-1:]
    assert ex.fetch_my_trades(BTC, since=trades[-1]["timestamp"] + 10**6) == []
    for c in (ex, taker):
        c.close()


# -------------------------------------------------- positions and margin


def test_positions_and_liquidation_price_estimate(server, ctx):
    """The estimate (clients.ccxt._base.liquidation_price) against the
    venue: 0.3% on the safe side of it nothing happens, 0.3% past it the
    position is liquidated. Account 4 holds 10,000 USDT and 0.5 BTC, so the
    BTC collateral moves with the price too."""
    maker = quote(server, ctx)
    admin = Client(server.orders, 0, ADMIN_KEY, context=ctx)
    ex = ccxt.exchangesim(cfg(server, 4))
    ex.create_order(BTC, "market", "buy", 3)  # 180,000 of notional: IM 1,800, MM 900
    (p,) = ex.fetch_positions()
    assert (p["symbol"], p["side"], p["contracts"], p["contractSize"], p["entryPrice"], p["markPrice"]) == (
        BTC, "long", 3.0, 1.0, 60010.0, 60000.0)
    assert (p["notional"], p["initialMargin"], p["maintenanceMargin"], p["leverage"], p["marginMode"]) == (
        180000.0, 1800.0, 900.0, 100.0, "cross")
    assert (p["initialMarginPercentage"], p["maintenanceMarginPercentage"]) == (0.01, 0.005)
    assert p["unrealizedPnl"] == pytest.approx(-30.0) and p["hedged"] is False and p["isolated"] is False
    equity = 10_000 - 3 * 60010 * 0.0005 + 0.5 * 60_000 * 0.95 - 30  # fee, haircut BTC, uPnL
    assert p["info"]["account_equity"] == pytest.approx(equity)
    assert p["marginRatio"] == pytest.approx(900 / equity)  # CCXT's: MM / equity
    liq = p["liquidationPrice"]
    # equity + (3 + 0.5 x 0.95)·ΔP = MM·P/60,000
    assert liq == pytest.approx(60_000 * (1 - (equity - 900) / (3 * 60_000 + 0.5 * 0.95 * 60_000 - 900)))
    assert ex.fetch_position(BTC)["contracts"] == 3.0 and ex.fetch_positions(["ETH/USDT:USDT"]) == []
    maker.cancel_all()
    admin.set_index_price("BTC", round(liq * 1.003, 1))
    (p,) = ex.fetch_positions()
    assert p["contracts"] == 3.0 and 1 < p["info"]["venue_margin_ratio"] < 2.5 and p["marginRatio"] > 0.4
    admin.set_index_price("BTC", round(liq * 0.997, 1))
    assert ex.fetch_positions() == []  # liquidated (the insurance fund took it over)
    for c in (ex, admin, maker):
        c.close()


def test_margin_modes_and_isolated_liquidation_price(server, ctx):
    maker = quote(server, ctx)
    admin = Client(server.orders, 0, ADMIN_KEY, context=ctx)
    ex = ccxt.exchangesim(cfg(server, 3))
    other = ccxt.exchangesim(cfg(server, 2))
    assert ex.fetch_margin_mode(BTC) == {"info": {"account": 3, "margin_mode": "cross"}, "symbol": BTC,
                                         "marginMode": "cross"}
    r = ex.set_margin_mode("portfolio", BTC)
    assert (r["marginMode"], r["symbol"], r["info"]["changed"]) == ("portfolio", BTC, True)
    assert ex.fetch_margin_mode("ETH/USDT:USDT")["marginMode"] == "portfolio"  # per account: every symbol
    assert other.fetch_margin_mode()["marginMode"] == "cross"  # ...of this account only
    assert ex.set_margin_mode("isolated")["marginMode"] == "isolated"
    assert ex.set_margin_mode("isolated")["info"]["changed"] is False  # already: a no-op, as ccxt's binance
    ex.create_order(BTC, "market", "sell", 3)
    (p,) = ex.fetch_positions()
    assert (p["marginMode"], p["isolated"], p["side"], p["collateral"]) == ("isolated", True, "short", 1800.0)
    liq = p["liquidationPrice"]
    assert liq == pytest.approx((-3 * 59990 - 1800) / (-3 - 900 / 60000))  # alloc + q(P - entry) = MM·P/mark
    added = ex.add_margin(BTC, 200)
    assert (added["type"], added["amount"], added["total"], added["code"]) == ("add", 200.0, 2000.0, "USDT")
    assert ex.reduce_margin(BTC, 200)["total"] == 1800.0
    with pytest.raises(ccxt.InsufficientFunds):
        ex.reduce_margin(BTC, 1)  # never below the position's initial margin
    maker.cancel_all()
    admin.set_index_price("BTC", round(liq * 0.997, 1))
    assert ex.fetch_positions()[0]["contracts"] == 3.0
    admin.set_index_price("BTC", round(liq * 1.003, 1))
    assert ex.fetch_positions() == []
    assert liquidation_price("cross", 1.0, 100.0, 100.0, 1.0, 50.0, 1.0, -100.0 + 1.0, 0.0) is None  # hedged
    for c in (ex, other, admin, maker):
        c.close()


# ------------------------------------------------------------------ async


@pytest.mark.deadline(30)
def test_async_watch_order_book(server, ctx):
    async def main():
        ex = accxt.exchangesim(cfg(server))
        mk = accxt.exchangesim(cfg(server, 1))
        try:
            await ex.load_markets()
            first = await asyncio.wait_for(ex.watch_order_book(BTC, 5), 5)  # in sync: the current book
            assert (first["bids"], first["asks"], first["symbol"]) == ([], [], BTC)
            nxt = asyncio.ensure_future(ex.watch_order_book(BTC, 5))
            await asyncio.sleep(0.05)
            assert not nxt.done()  # waits for a change
            await mk.create_order(BTC, "limit", "sell", 1, 60010)
            book = await asyncio.wait_for(nxt, 5)
            assert book["asks"] == [[60010.0, 1.0]] and book["nonce"] == first["nonce"] + 1
            await mk.create_order(BTC, "limit", "buy", 2, 59990)
            await mk.create_order(BTC, "limit", "buy", 1, 59980)
            seen = []
            while len(seen) < 1 or seen[-1]["bids"] != [[59990.0, 2.0]]:
                seen.append(await asyncio.wait_for(ex.watch_order_book(BTC, 1), 5))  # limit 1: the top level
            assert seen[-1]["asks"] == [[60010.0, 1.0]]
            assert (await ex.fetch_order_book(BTC))["nonce"] == seen[-1]["nonce"]
        finally:
            await ex.close()
            await mk.close()

    asyncio.run(main())


@pytest.mark.deadline(30)
def test_async_watch_orders_and_positions(serve):
    srv = serve()

    async def main():
        ex = accxt.exchangesim(cfg(srv))
        mk = accxt.exchangesim(cfg(srv, 1))
        try:
            await mk.load_markets()
            ask = await mk.create_order(BTC, "limit", "sell", 1, 60010)
            maker_watch = asyncio.ensure_future(mk.watch_orders(BTC))
            positions = asyncio.ensure_future(ex.watch_positions([BTC]))
            mine = asyncio.ensure_future(ex.watch_orders())
            await asyncio.sleep(0.1)
            assert not (maker_watch.done() or positions.done() or mine.done())
            buy = await ex.create_order(BTC, "market", "buy", 0.4)
            (upd,) = await asyncio.wait_for(mine, 5)  # its own order, filled on arrival
            assert (upd["id"], upd["status"], upd["filled"]) == (buy["id"], "closed", 0.4)
            (pos,) = await asyncio.wait_for(positions, 5)
            assert (pos["symbol"], pos["side"], pos["contracts"], pos["entryPrice"]) == (BTC, "long", 0.4, 60010.0)
            (m_upd,) = await asyncio.wait_for(maker_watch, 5)  # the maker hears of its fill by a push
            assert (m_upd["id"], m_upd["status"], m_upd["filled"], m_upd["remaining"]) == (ask["id"], "open", 0.4, 0.6)
            assert (await mk.fetch_my_trades(BTC))[0]["takerOrMaker"] == "maker"

            flat = asyncio.ensure_future(ex.watch_positions([BTC]))
            await asyncio.sleep(0.05)
            await mk.create_order(BTC, "limit", "buy", 1, 59990)
            sell = await ex.create_order(BTC, "market", "sell", 0.4, None, {"reduceOnly": True})
            (gone,) = await asyncio.wait_for(flat, 5)
            assert (gone["symbol"], gone["contracts"]) == (BTC, 0.0)  # went flat: reported once, empty
            # changes not yet taken wait for the next call: the sell, closed
            assert [(o["id"], o["status"], o["reduceOnly"]) for o in await asyncio.wait_for(ex.watch_orders(), 5)] == [
                (sell["id"], "closed", True)]

            # the server goes away: a pending watch raises ExchangeNotAvailable (a NetworkError)
            pending = asyncio.ensure_future(ex.watch_orders())
            await asyncio.sleep(0.05)
            srv.stop()
            with pytest.raises(accxt.ExchangeNotAvailable):
                await asyncio.wait_for(pending, 10)
        finally:
            await ex.close()
            await mk.close()

    asyncio.run(main())


def test_async_rest_methods(server, ctx):
    maker = quote(server, ctx)

    async def main():
        async with accxt.exchangesim(cfg(server)) as ex:
            markets = await ex.load_markets()
            assert ex.market("BTC-PERP") is markets[BTC]
            assert (await ex.fetchTicker(BTC))["ask"] == 60010.0  # camelCase, as ccxt allows
            orders = await asyncio.gather(*(ex.create_limit_buy_order(BTC, 0.01, 59000 + i) for i in range(5)))
            assert sorted(o["price"] for o in await ex.fetch_open_orders(BTC)) == [59000 + i for i in range(5)]
            assert (await ex.cancel_order(orders[0]["id"]))["status"] == "canceled"
            assert len(await ex.cancel_all_orders()) == 4
            assert (await ex.fetch_balance())["USDT"]["used"] == 0.0
            with pytest.raises(accxt.InsufficientFunds):
                await ex.create_order(BTC, "limit", "buy", 300, 59000)
            with pytest.raises(accxt.OrderNotFound):
                await ex.fetch_order("424242")

    asyncio.run(main())
    maker.close()


def test_unknown_or_unsupported_params_are_refused_never_dropped(server, ctx):
    """A bot that sends a trailing stop by amount (``trailingAmount``; the
    venue trails by percent only) must hear that the venue cannot do it,
    before anything is sent: the order is not placed without it. A misspelled param (``reduce_only`` for
    ccxt's ``reduceOnly``) is ``BadRequest`` naming it; a ccxt param the
    venue does not support is ``NotSupported`` with the reason. Read-only
    methods refuse params they do not read, too. Nothing reaches the book."""
    maker = quote(server, ctx)
    ex = ccxt.exchangesim(cfg(server))
    try:
        with pytest.raises(ccxt.NotSupported, match=r"params\['trailingAmount'\] is not supported"):
            ex.create_order(BTC, "market", "buy", 0.01, None, {"trailingAmount": 500})
        with pytest.raises(ccxt.NotSupported, match=r"params\['triggerDirection'\]"):
            ex.create_order(BTC, "limit", "buy", 0.01, 59_000, {"triggerDirection": "up", "triggerPrice": 61_000})
        with pytest.raises(ccxt.BadRequest, match=r"createOrder\(\) unknown params\['reduce_only'\].*reduceOnly"):
            ex.create_limit_buy_order(BTC, 0.01, 59_000, {"reduce_only": True})
        with pytest.raises(ccxt.BadRequest, match=r"cancelOrder\(\) unknown params\['orderId'\]"):
            ex.cancel_order("1", BTC, {"orderId": 1})
        with pytest.raises(ccxt.BadRequest, match=r"fetchBalance\(\) unknown params\['type'\].*reads no params"):
            ex.fetch_balance({"type": "future"})
        with pytest.raises(ccxt.BadRequest, match="params must be a dict"):
            ex.fetch_ticker(BTC, ["x"])
        assert ex.fetch_open_orders(BTC) == []  # nothing above was placed
        assert ex.fetch_balance()["USDT"]["total"] > 0  # and the session works on
        o = ex.create_order(BTC, "limit", "buy", 0.01, 59_000, {"clientOrderId": "ok-1", "postOnly": True})
        assert o["clientOrderId"] == "ok-1" and o["postOnly"] is True  # known params still work
    finally:
        ex.close()
        maker.close()

    async def watch() -> None:
        aex = accxt.exchangesim(cfg(server))
        try:
            with pytest.raises(accxt.BadRequest, match=r"watchOrderBook\(\) unknown params\['speed'\]"):
                await aex.watch_order_book(BTC, None, {"speed": 100})
        finally:
            await aex.close()

    asyncio.run(asyncio.wait_for(watch(), 20))
