"""Sessions over real sockets: auth, isolation between accounts, admin-only
commands, heartbeats with cancel-on-disconnect, idempotent resends, and the
per-session rate limit."""

from __future__ import annotations

import time
from decimal import Decimal as D

import pytest
import zmq

from clients import (
    AuthenticationFailed,
    Client,
    DuplicateOrder,
    NotAllowed,
    NotAuthenticated,
    OrderNotFound,
    OrderRejected,
)
from clients.models import OrderUpdate
from integration_helpers import ADMIN_KEY, KEYS
from protocol import messages as m
from protocol.session import LoggedOut, Login, Reply, Request, decode_outbound, encode


def test_login_refusals(server, ctx):
    for account, key in [(1, "wrong-key-123"), (99, KEYS[1]), (2, KEYS[1]), (1, "")]:
        c = Client(server.orders, context=ctx, heartbeat_thread=False)
        with pytest.raises(AuthenticationFailed) as exc:
            c.login(account, key)
        assert exc.value.reason == m.RejectReason.AUTH_FAILED
        assert "unknown account or wrong api key" in exc.value.message  # same words: no account probing
        c.close()


def test_commands_before_login(server, ctx):
    c = Client(server.orders, context=ctx, heartbeat_thread=False)
    with pytest.raises(NotAuthenticated):
        c.call(m.QueryAccount(account=1))
    with pytest.raises(NotAuthenticated):
        c.call(m.NewOrder(account=1, symbol="BTC-PERP", side=m.Side.BUY, qty=1, price=599_000))
    (snap,) = c.call(m.QueryBook(symbol="BTC-PERP"))  # public market data needs no login
    assert type(snap) is m.BookSnapshot
    c.close()


def test_auth_isolation(server, ctx):
    """Account 2 can neither cancel account 1's order nor see its events;
    a second session of account 1 does see them."""
    a1 = Client(server.orders, 1, KEYS[1], context=ctx)
    a1b = Client(server.orders, 1, KEYS[1], context=ctx)
    a2 = Client(server.orders, 2, KEYS[2], context=ctx)
    try:
        order = a1.buy("BTC-PERP", "0.1", "59000.0", client_order_id="private-1")
        with pytest.raises(NotAllowed):
            a2.call(m.CancelOrder(account=1, order_id=order.order_id))
        with pytest.raises(NotAllowed):
            a2.call(m.CancelAll(account=1))
        with pytest.raises(NotAllowed):
            a2.account(account=1)
        with pytest.raises(NotAllowed):
            a2.call(m.NewOrder(account=1, symbol="BTC-PERP", side=m.Side.SELL, qty=100, price=590_000))
        with pytest.raises(OrderNotFound):  # as itself, the order is simply not there
            a2.cancel(order.order_id)
        with pytest.raises(OrderNotFound):
            a2.cancel(client_order_id="private-1")
        assert [o.order_id for o in a1.open_orders()] == [order.order_id]

        a1.cancel(order.order_id)
        seen_b = a1b.drain_events(raw=True) + list(a1b.events(timeout=0.5, raw=True))
        assert {type(e) for e in seen_b} >= {m.OrderAccepted, m.OrderCancelled}
        assert all(e.account == 1 for e in seen_b if hasattr(e, "account"))
        seen_2 = a2.drain_events(raw=True) + list(a2.events(timeout=0.3, raw=True))
        assert not [e for e in seen_2 if getattr(e, "account", None) == 1]
    finally:
        for c in (a1, a1b, a2):
            c.close()


def test_admin_only_commands(server, ctx):
    user = Client(server.orders, 4, KEYS[4], context=ctx)
    admin = Client(server.orders, 0, ADMIN_KEY, context=ctx)
    try:
        assert admin.admin and not user.admin
        for cmd in [
            m.Deposit(account=4, asset="USDT", amount=10**6),
            m.SetIndexPrice(asset="BTC", price=50_000 * 10**8),
            m.ShockPrice(asset="BTC", change_bps=-3000),
            m.PauseSymbol(symbol="BTC-PERP"),
            m.OpenAccount(account=77),
            m.CloseAccount(account=4),
            m.CancelOnDisconnect(account=4),  # has an ``account``, yet only the server sends it
        ]:
            with pytest.raises(NotAllowed):
                user.call(cmd)
        with pytest.raises(NotAllowed):
            user.check_invariants()
        with pytest.raises(NotAllowed):
            user.stats()
        before = user.account().balances["USDT"]
        upd = admin.deposit(4, "USDT", "250.5")
        assert upd.delta == D("250.5") and user.account().balances["USDT"] == before + D("250.5")

        admin.pause("ETH-PERP")
        with pytest.raises(OrderRejected) as exc:
            user.buy("ETH-PERP", "0.01", "2990.00")
        assert exc.value.reason == m.RejectReason.SYMBOL_PAUSED
        admin.resume("ETH-PERP")
        assert user.buy("ETH-PERP", "0.01", "2990.00").status == "new"

        marks = admin.set_index_price("ETH", "3100")
        assert [e.mark for e in marks if type(e) is m.MarkPrice] == [310_000]
        admin.open_account(77)
        admin.close_account(77)
        assert admin.check_invariants().ok
        assert admin.stats().rejects.get("not_allowed", 0) >= 8
    finally:
        user.close()
        admin.close()


@pytest.mark.deadline(30)
def test_heartbeat_drop_cancels_on_disconnect(serve, ctx):
    """A silent session is dropped after the timeout; with cancel-on-disconnect
    its orders are cancelled (cause ``disconnect``), without it they stay."""
    srv = serve(heartbeat_interval_ms=100, heartbeat_timeout_ms=600)
    silent = Client(srv.orders, 1, KEYS[1], context=ctx, cancel_on_disconnect=True, heartbeat_thread=False)
    watcher = Client(srv.orders, 1, KEYS[1], context=ctx)  # same account, keeps heartbeating
    keeper = Client(srv.orders, 2, KEYS[2], context=ctx, heartbeat_thread=False)  # no cancel-on-disconnect
    try:
        mine = [silent.sell("BTC-PERP", "0.1", D("60100.0") + i) for i in range(3)]
        kept = keeper.buy("BTC-PERP", "0.1", "59900.0")
        time.sleep(1.5)  # both silent sessions miss 15 heartbeats; the watcher does not

        cancels = [e for e in watcher.events(timeout=1.0) if isinstance(e, OrderUpdate) and e.kind == "cancelled"]
        assert sorted(c.order_id for c in cancels) == [o.order_id for o in mine]
        assert [c.cause for c in cancels] == ["disconnect"] * 3  # not "cancel_all": the venue knows why
        assert watcher.open_orders() == []
        assert watcher.session is not None  # the heartbeating session is still there

        ev = silent.poll_event(1.0, raw=True)
        assert type(ev) is LoggedOut and ev.reason == "heartbeat timeout" and ev.cancelled_orders
        with pytest.raises(NotAuthenticated):
            silent.call(m.QueryAccount(account=1))

        with Client(srv.orders, 2, KEYS[2], context=ctx) as again:
            assert [o.order_id for o in again.open_orders()] == [kept.order_id]
    finally:
        for c in (silent, watcher, keeper):
            c.close(logout=False)


def test_idempotent_resend(server, ctx):
    """A resent order with the same client order id is answered with the
    original outcome and never placed twice, even after it has filled."""
    mk = Client(server.orders, 1, KEYS[1], context=ctx)
    tk = Client(server.orders, 2, KEYS[2], context=ctx)
    try:
        first = mk.sell("BTC-PERP", "0.3", "60050.0", client_order_id="retry-me")
        again = mk.sell("BTC-PERP", "0.3", "60050.0", client_order_id="retry-me")
        assert again.duplicate and not first.duplicate
        assert again.order_id == first.order_id and again.status == "new"
        assert len(mk.open_orders()) == 1
        with pytest.raises(DuplicateOrder):
            mk.sell("BTC-PERP", "0.3", "60060.0", client_order_id="retry-me")

        # pipelined double-send (a retry before the first answer arrived)
        cmd = mk.new_order_cmd("BTC-PERP", "sell", "0.2", "60070.0", client_order_id="burst-1")
        r1, r2 = mk.submit(cmd), mk.submit(cmd)
        a, b = mk.result(r1), mk.result(r2)
        assert a.events[0].order_id == b.events[0].order_id and b.duplicate
        assert len(mk.open_orders()) == 2

        tk.buy("BTC-PERP", "0.5", "60070.0", tif="ioc")  # fills both: nothing open
        assert mk.open_orders() == []
        late = mk.sell("BTC-PERP", "0.3", "60050.0", client_order_id="retry-me")
        assert late.duplicate and late.order_id == first.order_id
        assert mk.open_orders() == []  # not placed again
        assert mk.account().positions[0].qty == D("-0.5")
    finally:
        mk.close()
        tk.close()


@pytest.mark.deadline(40)
def test_rate_limit_per_session(serve, ctx):
    """A flooding session gets RATE_LIMITED; another session is served."""
    srv = serve(rate_limit_per_s=500, rate_limit_burst=100)
    flood = ctx.socket(zmq.DEALER)
    flood.linger = 0
    flood.connect(srv.orders)
    flood.send(encode(Login(account=3, api_key=KEYS[3])))
    assert flood.poll(5000)
    flood.recv()
    n = 5000
    t_flood = time.monotonic()
    for i in range(n):
        flood.send(encode(Request(id=i + 1, cmd=m.QueryAccount(account=3))))
    good = Client(srv.orders, 2, KEYS[2], context=ctx)
    t0 = time.monotonic()
    for i in range(20):
        good.buy("BNB-PERP", "1", D("590.00") - i)
    served_in = time.monotonic() - t0
    assert len(good.open_orders("BNB-PERP")) == 20
    good.close()

    limited = ok = 0
    deadline = time.monotonic() + 20
    while limited + ok < n and time.monotonic() < deadline:
        if flood.poll(200):
            msg = decode_outbound(flood.recv())
            if type(msg) is Reply:
                if type(msg.events[0]) is m.Rejected:
                    assert msg.events[0].reason == m.RejectReason.RATE_LIMITED
                    limited += 1
                else:
                    ok += 1
    flood_s = time.monotonic() - t_flood
    flood.close()
    assert limited + ok == n
    # the burst, plus 500/s for as long as the flood lasted (slack for a slow machine)
    assert 100 <= ok <= 100 + 500 * (flood_s + 1.0) and limited > 0, (ok, limited, flood_s)
    assert served_in < 5.0


def test_req_socket_works_too(server, ctx):
    """A REQ peer (any language's simplest client) gets its empty delimiter back."""
    s = ctx.socket(zmq.REQ)
    s.linger = 0
    s.connect(server.orders)
    s.send(encode(Login(account=4, api_key=KEYS[4])))
    assert s.poll(5000)
    assert type(decode_outbound(s.recv())).__name__ == "LoginOk"
    s.send(encode(m.QueryAccount(account=4)))
    assert s.poll(5000)
    rep = decode_outbound(s.recv())
    assert type(rep) is Reply and rep.id is None and rep.events[0].account == 4
    s.close()
