"""Bad input never crashes the server and never changes state it should not.

First the named cases, each with its typed reject; then 12,000 random and
mutated frames (valid messages with fields flipped, truncated, retyped,
dropped, oversized, or sent as the wrong number of frames), after which a
well-behaved pair of clients still trades and the venue's invariants hold.
"""

from __future__ import annotations

import math
import random
import time

import msgspec
import pytest
import zmq

from clients import Client
from integration_helpers import ADMIN_KEY, KEYS
from protocol import messages as m
from protocol.session import Login, Reply, Request, decode_outbound, encode

R = m.RejectReason


def _dealer(ctx, endpoint: str) -> zmq.Socket:
    s = ctx.socket(zmq.DEALER)
    s.linger = 0
    s.connect(endpoint)
    return s


def _ask(sock: zmq.Socket, *frames: bytes, timeout_ms: int = 5000):
    sock.send_multipart(list(frames))
    assert sock.poll(timeout_ms), "no answer"
    return decode_outbound(sock.recv())


def _reason(msg) -> R:
    if type(msg) is Reply:
        msg = msg.events[0]
    assert type(msg) is m.Rejected, msg
    return msg.reason


def test_each_kind_of_bad_input_gets_its_typed_reject(serve, ctx):
    srv = serve(max_frame_bytes=4096)
    s = _dealer(ctx, srv.orders)
    order = {"msg": "NewOrder", "account": 3, "symbol": "BTC-PERP", "side": "buy", "qty": 10, "price": 599_000}
    cases = [
        (b"\xc1\xc1", R.MALFORMED),  # not msgpack
        (b"", R.MALFORMED),  # empty frame
        (msgspec.msgpack.encode(order) + b"x", R.MALFORMED),  # trailing bytes
        (msgspec.msgpack.encode(order)[:-3], R.MALFORMED),  # truncated
        (msgspec.msgpack.encode([1, 2, 3]), R.MALFORMED),  # not a map
        (msgspec.msgpack.encode({"account": 3}), R.MALFORMED),  # no type tag
        (msgspec.msgpack.encode({"msg": "Teleport"}), R.UNKNOWN_MESSAGE),
        (msgspec.msgpack.encode({"msg": "Reply", "events": []}), R.UNKNOWN_MESSAGE),  # server->client only
        (b"\x00" * 5000, R.MALFORMED),  # oversized
    ]
    for frame, reason in cases:
        assert _reason(_ask(s, frame)) == reason, frame[:40]
    rej = _ask(s, b"a", b"b", b"c")
    assert _reason(rej) == R.MALFORMED and "got 3" in rej.message
    # before login: a well-formed order is refused, nothing placed
    assert _reason(_ask(s, encode(Request(id=1, cmd=m.NewOrder(account=3, symbol="BTC-PERP", side=m.Side.BUY,
                                                                    qty=10, price=599_000))))) == R.NOT_LOGGED_IN
    login = _ask(s, encode(Login(account=3, api_key=KEYS[3])))
    assert type(login).__name__ == "LoginOk"
    typed = [
        ({**order, "qty": "10"}, R.MALFORMED),  # wrong type
        ({**order, "qty": 1.5}, R.MALFORMED),  # a float for an integer
        ({**order, "reduceOnly": True}, R.INVALID_FIELD),  # an unknown field is refused, not dropped
        ({k: v for k, v in order.items() if k != "side"}, R.MALFORMED),  # missing field
        ({k: v for k, v in order.items() if k != "qty"}, R.BAD_LOT),  # qty is left out only with close_position
        ({**order, "qty": -5}, R.INVALID_FIELD),  # negative
        ({**order, "qty": 2**63}, R.INVALID_FIELD),  # absurdly large
        ({**order, "price": 0}, R.INVALID_FIELD),
        ({**order, "side": "up"}, R.INVALID_FIELD),
        ({**order, "client_order_id": "has spaces"}, R.INVALID_FIELD),
        ({**order, "account": 1}, R.NOT_ALLOWED),  # another account
        ({**order, "qty": 10**12}, R.ABOVE_MAX_QTY),  # in protocol bounds, beyond the instrument's
    ]
    for i, (cmd, reason) in enumerate(typed):
        frame = msgspec.msgpack.encode({"msg": "Request", "id": 100 + i, "cmd": cmd})
        rep = _ask(s, frame)
        assert type(rep) is Reply and rep.id == 100 + i  # the id survives a bad command
        assert _reason(rep) == reason, (cmd, rep)
    # past 16 x max_frame_bytes libzmq drops the connection unread (no reply
    # possible); the server and everyone else carry on
    big = _dealer(ctx, srv.orders)
    big.send(b"\x00" * (16 * 4096 + 1))
    assert not big.poll(300)
    big.close()
    assert _reason(_ask(s, b"\xc1")) == R.MALFORMED
    s.close()
    with Client(srv.orders, 0, ADMIN_KEY, context=ctx) as admin:
        assert admin.check_invariants().ok
        (acct,) = admin.call(m.QueryOpenOrders(account=3))
        assert acct.orders == []  # nothing above was placed


# ------------------------------------------------------------------ fuzz


def _valid_messages() -> list[dict]:
    cmds = [
        m.NewOrder(account=3, symbol="BTC-PERP", side=m.Side.BUY, qty=10, price=599_000, client_order_id="f-1"),
        m.NewOrder(account=3, symbol="ETH-PERP", side=m.Side.SELL, qty=5, type=m.OrderType.MARKET),
        m.NewOrder(account=3, symbol="SOL-PERP", side=m.Side.BUY, qty=3, price=149_000, type=m.OrderType.STOP_LIMIT,
                   stop_price=151_000),
        m.CancelOrder(account=3, order_id=1),
        m.CancelOrder(account=3, client_order_id="f-1"),
        m.AmendOrder(account=3, order_id=1, qty=5, price=598_000),
        m.CancelAll(account=3),
        m.QueryAccount(account=3),
        m.QueryOpenOrders(account=3),
        m.QueryBook(symbol="BTC-PERP", depth=5),
        m.QueryInstruments(),
        m.Deposit(account=3, asset="USDT", amount=10**6),
        m.Withdraw(account=3, asset="USDT", amount=1),
        m.SetIndexPrice(asset="BTC", price=6 * 10**12),
        m.PauseSymbol(symbol="BTC-PERP"),
    ]
    base = [msgspec.to_builtins(c) for c in cmds]
    out = list(base)
    out += [{"msg": "Request", "id": i, "cmd": c} for i, c in enumerate(base)]
    out += [{"msg": "Batch", "id": 7, "cmds": base[:5]}, {"msg": "Heartbeat"}, {"msg": "QueryStats"},
            {"msg": "Login", "account": 3, "api_key": "nope-nope"}]
    return out


_JUNK = [None, True, -1, 0, 2**63, -(2**63), 2**64 - 1, 1.5, math.nan, math.inf, "", "x" * 300, "BTC-PERP",
         b"\x00\xff", [], [1, "a"], {}, {"msg": "NewOrder"}, "buy", "gtc"]


def _mutate(rng: random.Random, msg):
    if isinstance(msg, dict) and msg:
        d = dict(msg)
        key = rng.choice(list(d))
        op = rng.random()
        if op < 0.35:
            d[key] = rng.choice(_JUNK)
        elif op < 0.5:
            del d[key]
        elif op < 0.6:
            d[rng.choice(["zz", "account", "msg", "id", "qty"])] = rng.choice(_JUNK)
        elif op < 0.7:
            d["msg"] = rng.choice(["NewOrderX", "", "Reply", "Push", "LoginOk", 5, None])
        else:
            d[key] = _mutate(rng, d[key])
        return d
    if isinstance(msg, list) and msg:
        lst = list(msg)
        i = rng.randrange(len(lst))
        lst[i] = _mutate(rng, lst[i]) if rng.random() < 0.7 else rng.choice(_JUNK)
        return lst
    return rng.choice(_JUNK)


def _frames(rng: random.Random, valid: list[dict], n: int):
    for _ in range(n):
        op = rng.random()
        if op < 0.1:
            yield [bytes(rng.getrandbits(8) for _ in range(rng.randrange(0, 64)))]
            continue
        msg = rng.choice(valid)
        for _ in range(rng.choice([1, 1, 2, 3])):
            msg = _mutate(rng, msg)
        try:
            frame = msgspec.msgpack.encode(msg)
        except (OverflowError, TypeError):
            frame = b"\xc1"
        if op < 0.3:
            frame = frame[: rng.randrange(len(frame) + 1)]
        elif op < 0.4 and frame:
            b = bytearray(frame)
            b[rng.randrange(len(b))] = rng.getrandbits(8)
            frame = bytes(b)
        elif op < 0.42:
            frame = frame + b"\x00" * (16_384 + rng.randrange(8_000))  # over max_frame_bytes: rejected unread
        if op > 0.97:
            yield [frame, frame]  # wrong frame count
        else:
            yield [frame]


@pytest.mark.deadline(120)
def test_fuzz_then_trade_normally(serve, ctx):
    srv = serve(max_frame_bytes=16384)
    rng = random.Random(20261126)
    valid = _valid_messages()
    anon = _dealer(ctx, srv.orders)
    fuzzer = _dealer(ctx, srv.orders)
    _ask(fuzzer, encode(Login(account=3, api_key=KEYS[3])))
    sent = answered = 0
    reasons: dict[str, int] = {}
    socks = [anon, fuzzer]
    frames = list(_frames(rng, valid, 12_000))

    def take(s: zmq.Socket) -> None:
        nonlocal answered
        msg = decode_outbound(s.recv())  # every answer is a well-typed message
        answered += 1
        for ev in msg.events if type(msg) is Reply else [msg]:
            if type(ev) is m.Rejected:
                reasons[ev.reason.value] = reasons.get(ev.reason.value, 0) + 1

    t0 = time.monotonic()
    for i in range(0, len(frames), 200):
        for frame in frames[i:i + 200]:
            rng.choice(socks).send_multipart(frame)
            sent += 1
        for s in socks:  # read as we go: replies never pile up past the HWM
            while s.poll(0 if answered else 50):
                take(s)
    end = time.monotonic() + 3
    while time.monotonic() < end:  # the answers still in flight count too
        got = False
        for s in socks:
            while s.poll(20):
                take(s)
                got = True
        if not got:
            break
    elapsed = time.monotonic() - t0
    assert sent == 12_000
    assert answered > 0.9 * sent  # heartbeats need no answer; everything else was answered
    for r, at_least in (("malformed", 500), ("unknown_message", 100), ("invalid_field", 20)):
        assert reasons.get(r, 0) >= at_least, reasons
    assert srv.proc.poll() is None, srv.log()  # still serving

    mk = Client(srv.orders, 1, KEYS[1], context=ctx)
    tk = Client(srv.orders, 2, KEYS[2], context=ctx)
    admin = Client(srv.orders, 0, ADMIN_KEY, context=ctx)
    try:
        admin.resume("BTC-PERP")  # a fuzzed PauseSymbol from a non-admin could not pause it, but be sure
        ask = mk.sell("BTC-PERP", "0.05", "60020.0")
        hit = tk.buy("BTC-PERP", "0.05", "60020.0", tif="ioc")
        assert hit.status == "filled" and hit.fills[0].price == ask.price
        inv = admin.check_invariants()
        assert inv.ok, inv.message
        stats = admin.stats()
        assert stats.frames_in >= sent
    finally:
        for c in (mk, tk, admin):
            c.close()
    print(f"fuzz: {sent} frames in {elapsed:.2f}s, {answered} answers, rejects {reasons}")


def test_an_unknown_field_is_refused_naming_it_never_dropped(serve, ctx):
    """A bot that misspells ``reduce_only`` as ``reduceOnly`` must not get an
    order placed without it: the command is refused, naming the field, the
    message and the field it probably meant; so is an integral float where
    the protocol wants an integer (``5.0`` from a JavaScript encoder), and
    an unknown field in a session message or inside a batch. Nothing is
    placed."""
    srv = serve()
    s = _dealer(ctx, srv.orders)
    assert type(_ask(s, encode(Login(account=3, api_key=KEYS[3])))).__name__ == "LoginOk"
    order = {"msg": "NewOrder", "account": 3, "symbol": "BTC-PERP", "side": "buy", "qty": 10, "price": 599_000}

    rep = _ask(s, msgspec.msgpack.encode({"msg": "Request", "id": 1, "cmd": {**order, "reduceOnly": True}}))
    assert type(rep) is Reply and rep.id == 1 and _reason(rep) == R.INVALID_FIELD
    text = rep.events[0].message
    assert "unknown field `reduceOnly` in NewOrder" in text and "did you mean `reduce_only`?" in text, text

    bare = _ask(s, msgspec.msgpack.encode({**order, "stopLoss": {"price": 1}}))
    assert _reason(bare) == R.INVALID_FIELD and "unknown field `stopLoss` in NewOrder" in bare.message

    rep = _ask(s, msgspec.msgpack.encode({"msg": "Request", "id": 2, "cmd": {**order, "qty": 5.0}}))
    assert _reason(rep) == R.MALFORMED and "`qty` must be an integer" in rep.events[0].message
    assert "send 5, not 5.0" in rep.events[0].message

    rej = _ask(s, msgspec.msgpack.encode({"msg": "Login", "account": 3, "api_key": KEYS[3], "cancelOnDisconnect": True}))
    assert _reason(rej) == R.INVALID_FIELD and "did you mean `cancel_on_disconnect`?" in rej.message

    s.send(msgspec.msgpack.encode({"msg": "Batch", "id": 3, "cmds": [order, {**order, "postOnly": True}]}))
    assert s.poll(5000)
    batch = decode_outbound(s.recv())
    assert type(batch).__name__ == "BatchReply"
    assert type(batch.results[0][0]).__name__ == "OrderAccepted"  # the good one alone is placed
    bad = batch.results[1][0]
    assert bad.reason == R.INVALID_FIELD and "command 1: unknown field `postOnly` in NewOrder" in bad.message
    s.close()
    with Client(srv.orders, 0, ADMIN_KEY, context=ctx) as admin:
        (acct,) = admin.call(m.QueryOpenOrders(account=3))
        assert [o.qty for o in acct.orders] == [10]  # only the batch's valid order rests
