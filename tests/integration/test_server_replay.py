"""``exchange-sim serve --replay DATA``: the shipped sample over real sockets."""

from __future__ import annotations

from decimal import Decimal as D

import pytest

from clients import Client
from clients.models import Fill
from exchange_sim.replay_data import SAMPLE
from integration_helpers import KEYS, wait_for


@pytest.mark.deadline(60)
def test_a_user_order_fills_against_the_replayed_book(serve):
    """The sample's book (10 levels a side around 42,000, 1.0 apart) appears on
    the venue; a user's IOC buy fills against the replay account's orders at
    recorded prices."""
    sp = serve(args=("--replay", str(SAMPLE), "--speed", "2"))
    assert any(line.startswith("replay:") and "BTC-PERP" in line for line in sp.banner)
    with Client(sp.orders, account=2, api_key=KEYS[2]) as bot:
        book = wait_for(lambda: (b := bot.book("BTC-PERP")) and len(b.bids) == 10 and len(b.asks) == 10 and b,
                        10, "the recorded book")
        best_ask = book.asks[0][0]
        assert D(41_900) < best_ask < D(42_100) and book.asks[0][0] - book.bids[0][0] == D("1.0")
        # 5 levels through: the recorded book moves +-1.0 a step, not 5 within one round trip
        limit = best_ask + D(5)
        got = bot.buy("BTC-PERP", "0.001", price=str(limit), tif="ioc")
        fills = [e for e in bot.drain_events() if type(e) is Fill] or got.fills
        assert got.status == "filled"
        assert fills and all(D(41_900) < f.price <= limit for f in fills)
