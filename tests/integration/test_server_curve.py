"""CURVE encryption: a client that pins the server's public key talks; one
with a wrong key or no CURVE at all gets no handshake and no answer."""

from __future__ import annotations

import pytest
import zmq

from clients import BookMirror, Client, RequestTimeout
from integration_helpers import KEYS


@pytest.mark.deadline(40)
def test_curve_right_key_wrong_key_no_key(serve, ctx):
    public, secret = zmq.curve_keypair()
    srv = serve(curve_public_key=public.decode(), curve_secret_key=secret.decode())
    assert f"curve:       on, server public key {public.decode()}" in srv.banner

    with Client(srv.orders, 2, KEYS[2], server_key=public, context=ctx) as c:
        assert c.buy("BTC-PERP", "0.01", "59000.0").status == "new"
        with BookMirror(["BTC-PERP"], market_data=srv.market_data, orders=srv.orders, server_key=public,
                        context=ctx) as mirror:
            mirror.wait_synced(5.0)
            assert mirror.best_bid("BTC-PERP")[0] == 59000

    wrong_public, _ = zmq.curve_keypair()
    for key in (wrong_public, None):
        c = Client(srv.orders, server_key=key, context=ctx, timeout=1.0, heartbeat_thread=False)
        with pytest.raises(RequestTimeout):
            c.login(2, KEYS[2])
        c.close(logout=False)
