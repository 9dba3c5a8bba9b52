"""The wire contract as a client in another language meets it: raw DEALER
sockets and hand-built msgpack maps, no ``clients`` library in between.

Strict input (an unknown field in *any* message is refused naming it; an
integral float where an integer belongs is refused saying so), the ROUTER
framing rules, the limits a LoginOk announces, and the one durable
idempotency window (ADR 0008)."""

from __future__ import annotations

import msgspec
import pytest
import zmq
from integration_helpers import KEYS, start_server

from protocol import messages as m
from protocol.session import decode_outbound

R = m.RejectReason
pack = msgspec.msgpack.encode
ORDER = {"msg": "NewOrder", "account": 3, "symbol": "BTC-PERP", "side": "buy", "qty": 10, "price": 590_000}


def _dealer(ctx, endpoint: str) -> zmq.Socket:
    s = ctx.socket(zmq.DEALER)
    s.linger = 0
    s.connect(endpoint)
    return s


def _frames(sock: zmq.Socket, *frames: bytes) -> list[bytes]:
    """Send ``frames`` as one message; the next message that is not a server
    heartbeat, as its list of frames."""
    sock.send_multipart(list(frames))
    for _ in range(20):  # bounded: a heartbeat or two may come first
        assert sock.poll(5000), "no answer"
        got = sock.recv_multipart()
        if msgspec.msgpack.decode(got[-1]).get("msg") != "Heartbeat":
            return got
    raise AssertionError("only heartbeats came back")


def _ask(sock: zmq.Socket, body: bytes):
    (frame,) = _frames(sock, body)
    return decode_outbound(frame)


def _rejected(msg) -> m.Rejected:
    if hasattr(msg, "events"):
        (msg,) = msg.events
    assert type(msg) is m.Rejected, msg
    return msg


def _login(sock, account: int = 3) -> None:
    assert type(_ask(sock, pack({"msg": "Login", "account": account, "api_key": KEYS[account]}))).__name__ == "LoginOk"


# every message a client may send, with its required fields: each must refuse an extra field
SESSION_MESSAGES = {
    "Login": {"account": 3, "api_key": KEYS[3]},
    "Logout": {},
    "Heartbeat": {},
    "Request": {"id": 7, "cmd": {"msg": "QueryAccount", "account": 3}},
    "Batch": {"id": 8, "cmds": [{"msg": "QueryAccount", "account": 3}]},
    "CheckInvariants": {},
    "QueryStats": {},
    "TakeSnapshot": {},
}


@pytest.mark.parametrize("name", sorted(SESSION_MESSAGES))
def test_an_unknown_field_in_a_session_message_is_refused_naming_it(server, ctx, name):
    """Heartbeat and Logout included: a field the schema does not list is
    never ignored. The answer is a bare Rejected (the frame was not read far
    enough to trust a request id), and nothing else happens: the session is
    not logged out, the request not run."""
    s = _dealer(ctx, server.orders)
    _login(s)
    rej = _rejected(_ask(s, pack({"msg": name, **SESSION_MESSAGES[name], "colour": "red"})))
    assert rej.reason == R.INVALID_FIELD
    assert f"unknown field `colour` in {name}" in rej.message and "refused, not ignored" in rej.message
    # still logged in, still account 3: a second Login is refused as such
    again = _rejected(_ask(s, pack({"msg": "Login", "account": 3, "api_key": KEYS[3]})))
    assert again.reason == R.NOT_ALLOWED and "already logged in as account 3" in again.message
    s.close()


@pytest.mark.parametrize("name", sorted(c.__name__ for c in m.Command.__args__))
def test_an_unknown_field_in_every_command_is_refused_naming_it(server, ctx, name):
    s = _dealer(ctx, server.orders)
    rep = _ask(s, pack({"msg": "Request", "id": 1, "cmd": {"msg": name, "clientOrderId": "x"}}))
    rej = _rejected(rep)
    assert rep.id == 1 and rej.reason == R.INVALID_FIELD and f"unknown field `clientOrderId` in {name}" in rej.message
    s.close()


def test_integral_floats_are_refused_saying_to_send_an_integer(server, ctx):
    """JavaScript's and Lua's encoders send 5.0 for a number that happens to
    be whole. The venue refuses it (MALFORMED, a wrong type) with a message
    that says so; it never truncates nor guesses. In a command, in a
    Request's id, in a Login, inside a Batch: the same rule."""
    s = _dealer(ctx, server.orders)
    _login(s)
    rep = _ask(s, pack({"msg": "Request", "id": 1, "cmd": {**ORDER, "qty": 5.0}}))
    rej = _rejected(rep)
    assert rep.id == 1 and rej.reason == R.MALFORMED
    assert "`qty` must be an integer" in rej.message and "send 5, not 5.0" in rej.message

    rej = _rejected(_ask(s, pack({"msg": "Request", "id": 2.0, "cmd": ORDER})))  # no id could be read: bare
    assert rej.reason == R.MALFORMED and "`id` must be an integer" in rej.message

    batch = _ask(s, pack({"msg": "Batch", "id": 3, "cmds": [{**ORDER, "price": 590_000.0}]}))
    rej = batch.results[0][0]
    assert rej.reason == R.MALFORMED and "command 0: `price` must be an integer" in rej.message

    fresh = _dealer(ctx, server.orders)
    rej = _rejected(_ask(fresh, pack({"msg": "Login", "account": 3.0, "api_key": KEYS[3]})))
    assert rej.reason == R.MALFORMED and "`account` must be an integer" in rej.message
    oo = _ask(s, pack({"msg": "QueryOpenOrders", "account": 3}))
    assert oo.events[0].orders == []  # nothing was placed by any of them
    s.close()
    fresh.close()


def test_router_framing_one_frame_per_message_and_what_an_empty_delimiter_does(server, ctx):
    """A DEALER sends each message as ONE frame. A leading empty frame (what a
    REQ socket adds) is accepted and marks the peer as REQ-like: from then on
    every message to it starts with an empty frame too. Any other number of
    frames is refused MALFORMED, unread."""
    s = _dealer(ctx, server.orders)
    (frame,) = _frames(s, pack({"msg": "QueryInstruments"}))
    assert type(decode_outbound(frame)).__name__ == "Reply"

    three = _frames(s, b"a", b"b", b"c")
    rej = _rejected(decode_outbound(three[-1]))
    assert rej.reason == R.MALFORMED and "expected 1 frame per message, got 3" in rej.message

    req_like = _dealer(ctx, server.orders)
    empty, body = _frames(req_like, b"", pack({"msg": "QueryInstruments"}))
    assert empty == b"" and type(decode_outbound(body)).__name__ == "Reply"
    empty, body = _frames(req_like, b"", pack({"msg": "Login", "account": 3, "api_key": KEYS[3]}))
    assert empty == b"" and type(decode_outbound(body)).__name__ == "LoginOk"
    s.close()
    req_like.close()


def test_login_ok_announces_every_limit(serve, ctx):
    srv = serve(venue={"client_id_memory": 777}, rate_limit_per_s=900, rate_limit_burst=450, max_batch=33,
                max_frame_bytes=65_536)
    s = _dealer(ctx, srv.orders)
    ok = _ask(s, pack({"msg": "Login", "account": 3, "api_key": KEYS[3]}))
    assert (ok.rate_limit_per_s, ok.rate_limit_burst, ok.max_batch, ok.max_frame_bytes, ok.idempotency_window) == (
        900, 450, 33, 65_536, 777)
    # and they are the limits in force
    rej = _ask(s, pack({"msg": "Batch", "id": 1, "cmds": [{"msg": "QueryAccount", "account": 3}] * 34})).results[0][0]
    assert rej.reason == R.INVALID_FIELD and "exceeds max_batch 33" in rej.message
    rej = _rejected(_ask(s, pack({"msg": "QueryInstruments", "pad": "x" * 70_000})))
    assert rej.reason == R.MALFORMED and "exceeds the maximum 65536" in rej.message
    s.close()


@pytest.mark.deadline(120)
def test_the_idempotency_window_is_one_and_survives_a_restart(tmp_path, ctx):
    """Account 3 places "keep-me" (an IOC that expires at once, so only the
    memory of used ids, not an open order, holds its id), then 1,100 more
    orders with client ids (beyond the 1,000 a restart used to keep, inside
    the one 10,000 window).
    In the same run a resend is answered from the store; after a clean
    restart from the data dir (shutdown snapshot), the resend is refused
    DUPLICATE_CLIENT_ORDER_ID naming the original order: not placed twice."""
    data = tmp_path / "data"
    sp = start_server(tmp_path, args=("--data-dir", str(data)))
    try:
        s = _dealer(ctx, sp.orders)
        ok = _ask(s, pack({"msg": "Login", "account": 3, "api_key": KEYS[3]}))
        assert ok.idempotency_window == 10_000
        # IOC buys far below the book: each is accepted (its id remembered) and expires at once
        ioc = {**ORDER, "qty": 1, "price": 500_000, "tif": "ioc"}
        keep = {**ioc, "client_order_id": "keep-me"}
        first = _ask(s, pack({"msg": "Request", "id": 1, "cmd": keep}))
        accepted = first.events[0]
        assert type(accepted) is m.OrderAccepted and accepted.client_order_id == "keep-me"
        assert type(first.events[1]) is m.OrderCancelled  # expired: the id is no open order's
        for b in range(2):
            cmds = [{**ioc, "client_order_id": f"more-{b}-{i}"} for i in range(550)]
            reply = _ask(s, pack({"msg": "Batch", "id": 10 + b, "cmds": cmds}))
            assert all(type(r[0]) is m.OrderAccepted for r in reply.results)
        again = _ask(s, pack({"msg": "Request", "id": 2, "cmd": keep}))
        assert again.duplicate and again.events[0] == accepted
        s.close()
    finally:
        assert sp.stop() == 0

    sp = start_server(tmp_path, args=("--data-dir", str(data)))
    try:
        s = _dealer(ctx, sp.orders)
        _login(s)
        rej = _rejected(_ask(s, pack({"msg": "Request", "id": 3, "cmd": keep})))
        assert rej.reason == R.DUPLICATE_CLIENT_ORDER_ID and rej.client_order_id == "keep-me"
        assert f"already used by order {accepted.order_id}" in rej.message
        oo = _ask(s, pack({"msg": "QueryOpenOrders", "account": 3})).events[0]
        assert oo.orders == []
        s.close()
    finally:
        sp.stop()
