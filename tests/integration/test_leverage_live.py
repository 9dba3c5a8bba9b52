"""Leverage, free collateral and the ledger over real sockets: the Python
client, the ccxt facade (blocking and asyncio) and the server's admin rule."""

from __future__ import annotations

import asyncio
from decimal import Decimal

import pytest

from clients import Client
from clients import ccxt
from clients import errors as client_errors
from clients.ccxt import async_support as accxt
from integration_helpers import ADMIN_KEY, KEYS, cfg

BTC = "BTC/USDT:USDT"



def test_client_leverage_free_and_ledger(server, ctx):
    """Account 2 sets 10x and rests a bid of 0.1 BTC at $59,000 ($5,900):
    IM $590, and ``free`` is what a withdrawal may take, to the minor unit."""
    with Client(server.orders, 2, KEYS[2], context=ctx) as c:
        before = c.leverage("BTC-PERP")["BTC-PERP"]
        assert (before.leverage, before.set, before.max_leverage) == (100, False, 100)
        assert before.tiers[1].max_leverage == 50 and before.tiers[1].mm_amount == Decimal("1250.0")
        ev = c.set_leverage("BTC-PERP", 10)
        assert (ev.symbol, ev.leverage) == ("BTC-PERP", 10)
        c.buy("BTC-PERP", "0.1", "59000")
        acct = c.account()
        assert acct.im == Decimal("590.000000")
        assert c.leverage()["BTC-PERP"].leverage == 10
        with pytest.raises(client_errors.InvalidOrder):
            c.set_leverage("BTC-PERP", 500)
        with pytest.raises(client_errors.InvalidOrder):
            c.set_leverage("BTC-PERP", 2.5)
        with pytest.raises(client_errors.InsufficientMargin):
            c.withdraw("USDT", acct.free + Decimal("0.000001"))
        c.withdraw("USDT", acct.free)
        assert c.account().free == 0
        tiers = c.leverage_tiers()
        assert set(tiers) >= {"BTC-PERP", "ETH-PERP"} and tiers["BTC-PERP"][0].max_leverage == 100
        with pytest.raises(client_errors.NotAllowed):
            c.ledger()  # admin only, like ShockPrice
    with Client(server.orders, 0, ADMIN_KEY, context=ctx) as admin:
        led = admin.ledger()
        usdt = led.assets["USDT"]
        assert usdt.withdrawals > 0 and usdt.deposits > usdt.withdrawals


def test_ccxt_leverage_methods(server):
    ex = ccxt.exchangesim(cfg(server, 3))
    assert ex.has["setLeverage"] and ex.has["fetchLeverage"]
    out = ex.set_leverage(20, BTC)
    assert (out["symbol"], out["leverage"]) == (BTC, 20)
    lev = ex.fetch_leverage(BTC)
    assert (lev["symbol"], lev["longLeverage"], lev["shortLeverage"], lev["marginMode"]) == (BTC, 20, 20, "cross")
    assert ex.fetch_leverages()[BTC]["longLeverage"] == 20
    assert ex.fetchLeverages([BTC]).keys() == {BTC}
    tiers = ex.fetch_market_leverage_tiers(BTC)
    assert [(t["tier"], t["maxLeverage"], t["maxNotional"]) for t in tiers[:2]] == [(1, 100, 250_000.0), (2, 50, 1_000_000.0)]
    assert tiers[1]["minNotional"] == 250_000.0 and tiers[0]["maintenanceMarginRate"] == 0.005
    assert ex.fetch_leverage_tiers([BTC])[BTC] == tiers
    with pytest.raises(ccxt.ArgumentsRequired):
        ex.set_leverage(5)
    with pytest.raises(ccxt.NotSupported):
        ex.set_leverage(5, BTC, {"marginMode": "isolated"})  # per account: set_margin_mode
    with pytest.raises(ccxt.BadRequest):
        ex.set_leverage(5, BTC, {"levrage": 5})  # refused, not ignored
    with pytest.raises(ccxt.BadRequest):
        ex.set_leverage(1.5, BTC)
    ex.close()


def test_async_ccxt_leverage_methods(server):
    async def run():
        ex = accxt.exchangesim(cfg(server, 4))
        try:
            await ex.set_leverage(3, BTC)
            assert (await ex.fetch_leverage(BTC))["longLeverage"] == 3
            assert (await ex.fetch_leverage_tiers())[BTC][0]["maxLeverage"] == 100
            assert len(await ex.fetch_market_leverage_tiers(BTC)) == 4
            assert (await ex.fetch_leverages([BTC]))[BTC]["shortLeverage"] == 3
        finally:
            await ex.close()

    asyncio.run(asyncio.wait_for(run(), 20))
