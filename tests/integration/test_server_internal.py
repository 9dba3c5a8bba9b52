"""A fault inside the venue is the server's, not the bot's: the server answers
``Rejected(INTERNAL)``, logs the traceback, counts it in ``Stats``, keeps
serving, and each client raises its "server fault" exception (never
``InvalidOrder``).

The server runs in this process (in a thread) on a venue that raises on one
marked order: a venue bug cannot be provoked through the wire on purpose.
"""

from __future__ import annotations

import logging
import threading
from decimal import Decimal as D

import pytest

from clients import Client, InternalError, InvalidOrder
from clients import ccxt
from exchange_sim import config as config_mod
from exchange_sim.server import Server
from exchange_sim.venue import Venue
from integration_helpers import ADMIN_KEY, KEYS
from protocol import messages as m

BOOM = "boom"  # the client order id the faulty venue fails on


class FaultyVenue(Venue):
    """The real venue, except that a NewOrder with client order id ``boom``
    raises half-way (after the venue counted it), as a bug would."""

    def apply(self, command, ts=None):
        if type(command) is m.NewOrder and command.client_order_id == BOOM:
            self.seq += 1
            raise ZeroDivisionError("a venue bug")
        return super().apply(command, ts)


@pytest.fixture
def faulty_server():
    cfg = config_mod.default()
    srv = Server(cfg, orders_endpoint="tcp://127.0.0.1:*", market_data_endpoint="tcp://127.0.0.1:*",
                 venue=FaultyVenue(cfg))
    srv.start_up()
    srv.bind()
    t = threading.Thread(target=srv.serve_forever, kwargs={"duration": 30}, daemon=True)
    t.start()
    yield srv
    srv.stop()
    t.join(10)
    srv.close()
    assert not t.is_alive()


def test_a_venue_fault_is_answered_as_internal_and_the_server_goes_on(faulty_server, caplog):
    srv = faulty_server
    with caplog.at_level(logging.ERROR, logger="exchange_sim.server"), \
            Client(srv.orders_endpoint, 2, KEYS[2]) as bot:
        with pytest.raises(InternalError) as info:
            bot.buy("BTC-PERP", "0.01", "59990.0", client_order_id=BOOM)
        err = info.value
        assert not isinstance(err, InvalidOrder)
        assert err.reason is m.RejectReason.INTERNAL
        assert err.event.command == "NewOrder" and "ZeroDivisionError: a venue bug" in err.message

        # the next command of the same session is served normally
        ok = bot.buy("BTC-PERP", "0.01", "59990.0", client_order_id="after-1")
        assert (ok.status, ok.qty, ok.price) == ("new", D("0.01"), D("59990.0"))
        assert [o.client_order_id for o in bot.open_orders()] == ["after-1"]

    tracebacks = [r for r in caplog.records if "venue raised on" in r.getMessage()]
    assert len(tracebacks) == 1 and "Traceback" in tracebacks[0].getMessage()
    assert "ZeroDivisionError" in tracebacks[0].getMessage()
    with Client(srv.orders_endpoint, 0, ADMIN_KEY) as admin:
        assert admin.stats().rejects.get("internal") == 1  # the admin view counts server faults


def test_the_ccxt_facade_raises_exchange_error_not_invalid_order(faulty_server):
    ex = ccxt.exchangesim({"apiKey": f"2:{KEYS[2]}", "urls": {"api": {
        "orders": faulty_server.orders_endpoint, "marketData": faulty_server.market_data_endpoint}}})
    try:
        ex.load_markets()
        with pytest.raises(ccxt.ExchangeError) as info:
            ex.create_order("BTC/USDT:USDT", "limit", "buy", 0.01, 59990, {"clientOrderId": BOOM})
        assert type(info.value) is ccxt.ExchangeError and not isinstance(info.value, ccxt.InvalidOrder)
        assert info.value.reason == "internal"
        placed = ex.create_order("BTC/USDT:USDT", "limit", "buy", 0.01, 59990, {"clientOrderId": "after-2"})
        assert placed["status"] == "open" and placed["clientOrderId"] == "after-2"
    finally:
        ex.close()
