"""``exchange-sim serve --liquidity DEFAULT`` over real sockets: the README recipe
with the house maker instead of a bot, and a shock's liquidation filling near
the new mark (the in-process arithmetic is in tests/test_house_liquidity.py).
"""

from __future__ import annotations

from decimal import Decimal as D

import pytest

from clients import Client
from clients.models import Fill
from integration_helpers import ADMIN_KEY, KEYS, wait_for


@pytest.mark.deadline(60)
def test_a_shock_liquidation_fills_near_the_new_mark_on_house_liquidity(serve):
    """Account 4 (10,000 USDT + 0.5 BTC) buys 6.416 BTC at market from the
    house maker's asks (the book is there with no bot running); one admin
    ``shock_price("BTC", -9)`` (60,000 -> 54,600) puts it below MM with equity
    still positive. The server steps the house right after the shock, the
    liquidation engine waits its 250 ms grace, and the first slice sells into
    the re-formed bids: within 25 bps of 54,600 (the maker's half-spread right
    after a shock is about 20 bps), not at ~59,980 where the bids were."""
    sp = serve(args=("--liquidity", "DEFAULT"))
    assert any(line.startswith("liquidity:") and "grace 250 ms" in line for line in sp.banner)
    with Client(sp.orders, account=4, api_key=KEYS[4]) as trader, \
            Client(sp.orders, account=0, api_key=ADMIN_KEY) as admin:
        book = wait_for(lambda: (b := trader.book("BTC-PERP", 5)).bids and b.asks and b, 10, "the house book")
        assert book.bids[0][0] == D("59988.0") and book.asks[0][0] == D("60012.0")
        bought = trader.buy("BTC-PERP", "6.416")
        assert bought.status == "filled"
        admin.shock_price("BTC", -9)
        fills = []

        def liquidated():
            fills.extend(e for e in trader.drain_events() if type(e) is Fill and e.liquidation)
            return fills

        wait_for(liquidated, 10, "account 4's liquidation fills")
    mark = D(54_600)
    for f in fills:
        assert abs(f.price - mark) / mark * 10_000 < 25, f
