"""Raw HTTP against `exchange-sim gateway`: Binance's auth checks and error
bodies (HTTP status + {"code", "msg"}), and the order types ccxt routes elsewhere."""

from __future__ import annotations

import hashlib
import hmac
import json
import time
import urllib.error
import urllib.parse
import urllib.request

import pytest

pytest.importorskip("aiohttp")

from gateway_helpers import SECRETS, start_gateway  # noqa: E402
from integration_helpers import KEYS, quote  # noqa: E402



def call(gateway, method: str, path: str, params: dict | None = None, *, account: int | None = 2,
         secret: str | None = None, ts_ms: int | None = None, sign: bool = True):
    q = dict(params or {})
    if account is not None:
        q["timestamp"] = ts_ms if ts_ms is not None else int(time.time() * 1000)
    qs = urllib.parse.urlencode(q)
    if account is not None and sign:
        key = (secret or SECRETS[account]).encode()
        qs += "&signature=" + hmac.new(key, qs.encode(), hashlib.sha256).hexdigest()
    req = urllib.request.Request(f"{gateway.url}{path}?{qs}", method=method)
    if account is not None:
        req.add_header("X-MBX-APIKEY", KEYS[account])
    try:
        with urllib.request.urlopen(req, timeout=10) as r:
            return r.status, json.loads(r.read())
    except urllib.error.HTTPError as e:
        return e.code, json.loads(e.read())


def test_auth_failures_are_binance_codes(server, gateway):
    assert call(gateway, "GET", "/fapi/v2/balance", secret="wrong-secret") == (
        400, {"code": -1022, "msg": "Signature for this request is not valid."})
    stale = int(time.time() * 1000) - 60_000
    assert call(gateway, "GET", "/fapi/v2/balance", ts_ms=stale)[1]["code"] == -1021
    status, body = call(gateway, "GET", "/fapi/v2/balance", sign=False)
    assert (status, body["code"]) == (400, -1102) and "signature" in body["msg"]
    status, body = call(gateway, "GET", "/fapi/v2/balance", {"foo": "1"})
    assert (status, body["code"]) == (400, -1104) and "foo" in body["msg"]
    ok = call(gateway, "GET", "/fapi/v2/balance")
    assert ok[0] == 200 and {b["asset"]: b["balance"] for b in ok[1]}["USDT"] == "1000000.000000"


def test_error_codes_and_order_types(server, gateway):
    maker = quote(server)
    try:
        assert call(gateway, "GET", "/fapi/v1/depth", {"symbol": "NOPE"}, account=None) == (
            400, {"code": -1121, "msg": "Invalid symbol."})
        assert call(gateway, "GET", "/fapi/v1/order", {"symbol": "BTCUSDT", "orderId": 999999})[1]["code"] == -2013
        assert call(gateway, "DELETE", "/fapi/v1/order", {"symbol": "BTCUSDT", "orderId": 999999})[1]["code"] == -2011
        gtx = {"symbol": "BTCUSDT", "side": "BUY", "type": "LIMIT", "timeInForce": "GTX", "quantity": "0.1",
               "price": "60010.0"}
        assert call(gateway, "POST", "/fapi/v1/order", gtx)[1]["code"] == -5022
        off_tick = {"symbol": "BTCUSDT", "side": "BUY", "type": "LIMIT", "timeInForce": "GTC", "quantity": "0.001",
                    "price": "59000.05"}
        assert call(gateway, "POST", "/fapi/v1/order", off_tick)[1] == {"code": -4014, "msg": "Price not increased by tick size."}
        assert call(gateway, "POST", "/fapi/v1/positionSide/dual", {"dualSidePosition": "true"})[1]["code"] == -1130
        assert call(gateway, "GET", "/fapi/v1/positionSide/dual") == (200, {"dualSidePosition": False})
        stop = {"symbol": "BTCUSDT", "side": "SELL", "type": "STOP_MARKET", "quantity": "0.1",
                "stopPrice": "55000.0", "workingType": "MARK_PRICE", "newClientOrderId": "my-stop-1"}
        status, o = call(gateway, "POST", "/fapi/v1/order", stop)
        assert status == 200, o
        assert (o["type"], o["status"], o["stopPrice"], o["clientOrderId"], o["workingType"]) == (
            "STOP_MARKET", "NEW", "55000.0", "my-stop-1", "MARK_PRICE")
        opens = call(gateway, "GET", "/fapi/v1/openOrders", {"symbol": "BTCUSDT"})[1]
        assert [(x["orderId"], x["workingType"]) for x in opens] == [(o["orderId"], "MARK_PRICE")]
        assert call(gateway, "DELETE", "/fapi/v1/allOpenOrders", {"symbol": "BTCUSDT"})[1]["code"] == 200
        assert call(gateway, "GET", "/fapi/v1/openOrders")[1] == []
    finally:
        maker.close()


def test_modify_refuses_bad_numbers_and_unknown_orders(server, gateway):
    bad = {"symbol": "BTCUSDT", "orderId": 1, "side": "BUY", "quantity": "lots", "price": "59000.0"}
    assert call(gateway, "PUT", "/fapi/v1/order", bad) == (
        400, {"code": -1130, "msg": "Data sent for parameter 'quantity' is not valid."})
    gone = {**bad, "quantity": "0.1", "orderId": 424242}
    assert call(gateway, "PUT", "/fapi/v1/order", gone)[1]["code"] == -2013
    fees = call(gateway, "GET", "/fapi/v1/commissionRate", {"symbol": "BTCUSDT"})[1]
    assert set(fees) == {"symbol", "makerCommissionRate", "takerCommissionRate"} and fees["symbol"] == "BTCUSDT"


def test_batch_orders_answer_each_order_or_its_error(server, gateway):
    items = [{"symbol": "BTCUSDT", "side": "BUY", "type": "LIMIT", "timeInForce": "GTC", "quantity": "0.1",
              "price": "59000.0", "newClientOrderId": "b-1"},
             {"symbol": "BTCUSDT", "side": "BUY", "type": "LIMIT", "timeInForce": "GTC", "quantity": "0.1",
              "price": "59000.0", "bogus": "1"},
             {"symbol": "NOPE", "side": "SELL", "type": "MARKET", "quantity": "0.1"}]
    status, out = call(gateway, "POST", "/fapi/v1/batchOrders", {"batchOrders": json.dumps(items)})
    assert status == 200 and len(out) == 3
    assert (out[0]["clientOrderId"], out[0]["status"], out[0]["price"]) == ("b-1", "NEW", "59000.0")
    assert out[1]["code"] == -1104 and "bogus" in out[1]["msg"]
    assert out[2] == {"code": -1121, "msg": "Invalid symbol."}
    opens = call(gateway, "GET", "/fapi/v1/openOrders", {"symbol": "BTCUSDT"})[1]
    assert [o["clientOrderId"] for o in opens] == ["b-1"]


def _free_port() -> int:
    import socket

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.mark.deadline(90)
def test_a_venue_restart_costs_the_gateway_nothing(tmp_path):
    """The gateway keeps no venue state: after the venue is killed (-9, so no
    goodbye reaches the gateway's session) and restarts on the same endpoints,
    a signed request logs in again by itself and is answered."""
    from integration_helpers import start_server

    ports = ("--orders", f"tcp://127.0.0.1:{_free_port()}", "--market-data", f"tcp://127.0.0.1:{_free_port()}")
    first = start_server(tmp_path, args=ports)
    g = start_gateway(tmp_path, first)
    try:
        assert call(g, "GET", "/fapi/v2/balance")[0] == 200
        first.proc.kill()
        first.proc.wait(10)
        second = start_server(tmp_path, args=ports)
        try:
            status, out = call(g, "POST", "/fapi/v1/order", {"symbol": "BTCUSDT", "side": "BUY", "type": "LIMIT",
                                                              "timeInForce": "GTC", "quantity": "0.1",
                                                              "price": "59000.0"})
            assert status == 200 and out["status"] == "NEW"
            assert [o["orderId"] for o in call(g, "GET", "/fapi/v1/openOrders")[1]] == [out["orderId"]]
        finally:
            second.stop()
    finally:
        g.stop()
        first.stop()


def test_exchange_info_margin_percents_are_the_first_bracket(server, gateway):
    info = call(gateway, "GET", "/fapi/v1/exchangeInfo", account=None)[1]
    btc = next(x for x in info["symbols"] if x["symbol"] == "BTCUSDT")
    first = call(gateway, "GET", "/fapi/v1/leverageBracket", {"symbol": "BTCUSDT"})[1]["brackets"][0]
    assert float(btc["maintMarginPercent"]) == pytest.approx(first["maintMarginRatio"] * 100)
    assert float(btc["requiredMarginPercent"]) == pytest.approx(100 / first["initialLeverage"])
    assert {f["filterType"]: f for f in btc["filters"]}["MIN_NOTIONAL"]["notional"] == "5"
