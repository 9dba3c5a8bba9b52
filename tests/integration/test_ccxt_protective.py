"""Protective orders through the ccxt facade against a real ``exchange-sim
serve`` (docs/adr/0011-protective-orders.md): an entry with an attached
stop-loss that fires when the price is shocked, take-profit / trailing /
close-position orders, and every protective param consumed or refused.

Numbers (default config): BTC-PERP tick 0.1, lot 0.001; BTC index 60,000.
The maker (account 1) quotes 59,990 / 60,010, 5 BTC each side.
"""

from __future__ import annotations

import asyncio
from decimal import Decimal

import pytest

from clients import Client
from clients import errors as client_errors
from clients import ccxt
from clients.ccxt import async_support as accxt
from clients.ccxt._base import PROTECTIVE_PARAMS, protective_params
from integration_helpers import ADMIN_KEY, KEYS, cfg, quote

BTC = "BTC/USDT:USDT"




def test_entry_with_attached_stop_loss_fires_on_a_shock_and_closes_the_position(server, ctx):
    maker = quote(server, ctx)
    admin = Client(server.orders, 0, ADMIN_KEY, context=ctx)
    ex = ccxt.exchangesim(cfg(server))
    try:
        entry = ex.create_order(BTC, "market", "buy", 0.5, None, {
            "stopLoss": {"triggerPrice": 58_000},
            "takeProfit": {"triggerPrice": 63_000, "price": 63_000, "type": "limit"},
        })
        assert entry["status"] == "closed" and entry["filled"] == 0.5
        by_kind = {("sl" if o["stopLossPrice"] else "tp"): o for o in ex.fetch_open_orders(BTC)}
        sl, tp = by_kind["sl"], by_kind["tp"]
        assert (sl["side"], sl["amount"], sl["stopLossPrice"], sl["reduceOnly"], sl["type"]) == (
            "sell", 0.5, 58_000.0, True, "market")
        assert sl["info"]["parent_order_id"] == int(entry["id"])
        assert (tp["takeProfitPrice"], tp["price"], tp["type"]) == (63_000.0, 63_000.0, "limit")
        assert ex.fetch_position(BTC)["contracts"] == 0.5
        admin.shock_price("BTC", -4)  # mark 57,600: below the stop-loss's 58,000
        assert ex.fetch_positions() == []  # the stop-loss sold the 0.5 BTC into the maker's bid
        assert ex.fetch_open_orders(BTC) == []  # and the take-profit went with it (one cancels the other)
        assert ex.fetch_order(tp["id"])["status"] == "canceled"
        assert ex.fetch_order(sl["id"])["status"] == "closed"
    finally:
        for c in (ex, admin, maker):
            c.close()


def test_take_profit_trailing_and_close_position_orders(server, ctx):
    maker = quote(server, ctx)
    admin = Client(server.orders, 0, ADMIN_KEY, context=ctx)
    ex = ccxt.exchangesim(cfg(server, 3))
    try:
        ex.create_order(BTC, "market", "buy", 0.2)
        tp = ex.create_take_profit_order(BTC, "market", "sell", 0.1, None, 61_000)
        assert (tp["takeProfitPrice"], tp["reduceOnly"], tp["status"]) == (61_000.0, True, "open")
        trail = ex.create_trailing_percent_order(BTC, "market", "sell", 0.1, None, 1, 60_500, {"triggerType": "mark"})
        assert (trail["info"]["type"], trail["info"]["callback_rate"], trail["info"]["activation_price"]) == (
            "trailing_stop_market", 1.0, 60_500.0)
        close = ex.create_order(BTC, "market", "sell", None, None, {"stopLossPrice": 55_000, "closePosition": True})
        assert (close["info"]["type"], close["info"]["close_position"], close["info"]["working_type"]) == (
            "stop_market", True, "mark_price")
        with pytest.raises(ccxt.InvalidOrder):  # a buy take-profit must be below the market
            ex.create_take_profit_order(BTC, "market", "buy", 0.1, None, 61_000)
        admin.set_index_price("BTC", 61_000)  # the take-profit fires; the trailing stop activates at 60,500
        assert ex.fetch_position(BTC)["contracts"] == pytest.approx(0.1)
        views = {o["id"]: o for o in ex.fetch_open_orders(BTC)}
        assert set(views) == {trail["id"], close["id"]}
        admin.set_index_price("BTC", 60_390)  # 1 % below the high of 61,000: the trailing stop sells
        assert ex.fetch_positions() == []
        assert ex.fetch_open_orders(BTC) == []  # the close-position stop has nothing left to close
        ex.create_order(BTC, "market", "sell", 0.1)
        done = ex.close_position(BTC)
        assert (done["side"], done["filled"], done["reduceOnly"]) == ("buy", 0.1, True)
        assert ex.fetch_positions() == []
        with pytest.raises(ccxt.InvalidOrder, match="no open"):
            ex.close_position(BTC)
    finally:
        for c in (ex, admin, maker):
            c.close()


def test_async_facade_places_an_entry_with_attached_orders(server, ctx):
    maker = quote(server, ctx)

    async def run() -> None:
        aex = accxt.exchangesim(cfg(server))
        try:
            await aex.create_order(BTC, "limit", "buy", 0.3, 60_010, {
                "stopLoss": 59_000, "takeProfit": {"triggerPrice": 61_000}, "triggerType": "last"})
            kinds = sorted((o["info"]["type"], o["amount"]) for o in await aex.fetch_open_orders(BTC))
            assert kinds == [("stop_market", 0.3), ("take_profit_market", 0.3)]
            await aex.create_order_with_take_profit_and_stop_loss(BTC, "market", "buy", 0.1, None, 62_000, 58_500)
            assert sorted(o["amount"] for o in await aex.fetch_open_orders(BTC)) == [0.1, 0.1, 0.3, 0.3]
            sl = await aex.create_stop_loss_order(BTC, "market", "sell", 0.1, None, 58_000)
            assert sl["stopLossPrice"] == 58_000.0
            assert (await aex.close_position(BTC, "sell"))["filled"] == 0.4
        finally:
            await aex.close()

    try:
        asyncio.run(asyncio.wait_for(run(), 30))
    finally:
        maker.close()


# ------------------------------------------------------------ params, offline


def test_every_protective_param_is_consumed():
    params = {"stopLoss": {"triggerPrice": 1, "price": 2, "type": "limit"}, "takeProfit": {"triggerPrice": 3},
              "workingType": "CONTRACT_PRICE", "triggerType": "last"}
    out = protective_params("x", params)
    assert params == {}
    assert out["stop_loss"] == {"trigger_price": 1, "price": 2, "working_type": "contract_price"}
    assert out["take_profit"] == {"trigger_price": 3, "price": None, "working_type": "contract_price"}
    params = {"trailingPercent": 1.5, "trailingTriggerPrice": 10, "workingType": "MARK_PRICE"}
    out = protective_params("x", params)
    assert params == {} and (out["callback_rate"], out["activation_price"], out["working_type"]) == (1.5, 10, "mark_price")
    params = {"takeProfitPrice": 5, "closePosition": True}
    out = protective_params("x", params)
    assert params == {} and out["conditional"][0] == "take_profit_market" and out["close_position"] is True
    params = {"stopPrice": 7}
    assert protective_params("x", params)["trigger"] == 7 and params == {}
    # and every name the decorator lets through is one protective_params pops
    for name in PROTECTIVE_PARAMS:
        params = {name: {"triggerPrice": 1} if name in ("stopLoss", "takeProfit") else
                  ("last" if name in ("workingType", "triggerType") else 1)}
        try:
            protective_params("x", params)
        except ccxt.BaseError:
            pass  # refused alone (e.g. a working type with no trigger): still never dropped
        assert params == {}, name


@pytest.mark.parametrize("params, error, text", [
    ({"stopLoss": {"triggerPrice": 1, "trigger": 2}}, ccxt.BadRequest, "unknown key 'trigger'"),
    ({"stopLoss": {"price": 1}}, ccxt.ArgumentsRequired, "needs a triggerPrice"),
    ({"stopLoss": {"triggerPrice": 1, "type": "limit"}}, ccxt.InvalidOrder, "needs a price"),
    ({"triggerType": "index", "triggerPrice": 1}, ccxt.BadRequest, "index-price triggers are not supported"),
    ({"workingType": "MARK_PRICE", "triggerType": "last", "triggerPrice": 1}, ccxt.BadRequest, "disagree"),
    ({"stopLossPrice": 1, "takeProfitPrice": 2}, ccxt.InvalidOrder, "give one of"),
    ({"trailingTriggerPrice": 1}, ccxt.ArgumentsRequired, "needs trailingPercent"),
    ({"closePosition": True}, ccxt.InvalidOrder, "closePosition=True goes with"),
    ({"workingType": "MARK_PRICE"}, ccxt.InvalidOrder, "apply to trigger orders"),
    ({"stopLoss": 1, "triggerPrice": 2}, ccxt.InvalidOrder, "attach to a limit or market entry"),
])
def test_protective_param_mistakes_are_refused(params, error, text):
    with pytest.raises(error, match=text):
        protective_params("x", dict(params))


def test_still_unsupported_params_say_why():
    ex = ccxt.exchangesim({})
    from clients.ccxt._base import refuse_unknown_params
    with pytest.raises(ccxt.NotSupported, match="trailingPercent"):
        refuse_unknown_params(ex.id, "create_order", {"trailingAmount": 5})
    assert ex.has["createTakeProfitOrder"] and ex.has["createTrailingPercentOrder"] and ex.has["closePosition"]


# ------------------------------------------------------ the Python client


def test_python_client_places_protective_orders_in_human_units(server, ctx):
    maker = quote(server, ctx)
    c = Client(server.orders, 3, KEYS[3], context=ctx)
    try:
        entry = c.buy("BTC-PERP", "0.2", stop_loss={"trigger_price": "58000", "working_type": "last"},
                      take_profit="62000.5")
        assert entry.status == "filled"
        sl, tp = sorted(entry.attached, key=lambda u: u.type)
        assert (tp.type, tp.stop_price, tp.qty, tp.parent_order_id) == (
            "take_profit_market", Decimal("62000.5"), Decimal("0.2"), entry.order_id)
        assert (sl.type, sl.stop_price) == ("stop_market", Decimal("58000.0"))
        trail = c.sell("BTC-PERP", "0.1", type="trailing_stop_market", callback_rate="0.25", reduce_only=True)
        assert trail.status == "untriggered"
        close = c.sell("BTC-PERP", None, type="take_profit_market", stop_price="61000", close_position=True,
                       working_type="mark")
        assert close.status == "untriggered" and close.qty == 0
        views = {o.order_id: o for o in c.open_orders("BTC-PERP")}
        assert views[sl.order_id].working_type == "contract_price"
        assert (views[trail.order_id].callback_rate, views[trail.order_id].trail_best) == (Decimal("0.25"),
                                                                                          Decimal("60000.0"))
        assert views[close.order_id].close_position is True
        with pytest.raises(client_errors.InvalidOrder, match="whole number of basis points"):
            c.sell("BTC-PERP", "0.1", type="trailing_stop_market", callback_rate="0.125")
        with pytest.raises(client_errors.InvalidOrder, match="takes trigger_price"):
            c.buy("BTC-PERP", "0.1", "59000", stop_loss={"trigger": "58000"})
        with pytest.raises(TypeError):
            c.buy("BTC-PERP", "0.1", "59000", stoploss="58000")  # a misspelled keyword is never dropped
        with pytest.raises(client_errors.InvalidOrder, match="must be below"):
            c.buy("BTC-PERP", "0.1", "59000", stop_loss="59500")  # the venue's typed reject, in human units
    finally:
        c.close()
        maker.close()
