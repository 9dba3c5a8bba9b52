"""The wire contract: every Command and Event round-trips through
``protocol.codec``; garbage raises msgspec's errors and nothing else; the
JSON Schema lists every message.

Sample messages are built from each Struct's own type information
(``msgspec.inspect``), so a message added to the unions is covered here
without editing this file.
"""

from __future__ import annotations

import json
import typing
from typing import get_args

import msgspec
import msgspec.inspect as mi
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from protocol import codec
from protocol.messages import (
    MAX_PRICE,
    MAX_QTY,
    PROTOCOL_VERSION,
    Command,
    Deposit,
    Event,
    NewOrder,
    OrderType,
    Rejected,
    RejectReason,
    Side,
    TimeInForce,
)
from protocol.schema import json_schema

COMMANDS = typing.get_args(Command)
EVENTS = typing.get_args(Event)


def _int_in(t: mi.IntType) -> int:
    lo = t.ge if t.ge is not None else (t.gt + 1 if t.gt is not None else -5)
    hi = t.le if t.le is not None else (t.lt - 1 if t.lt is not None else 10**9)
    return min(max(lo, 7), hi)


def sample(t: mi.Type, full: bool, depth: int = 0):
    """A valid value of type ``t``; ``full`` also fills optional fields."""
    if isinstance(t, mi.Metadata):  # a field's description wraps its type
        return sample(t.type, full, depth)
    if isinstance(t, mi.IntType):
        return _int_in(t)
    if isinstance(t, mi.FloatType):
        return 1.5
    if isinstance(t, mi.BoolType):
        return True
    if isinstance(t, mi.StrType):
        if t.pattern:
            return "cid-1.A_b:c/d"
        return "X" * max(t.min_length or 1, 1) if t.max_length is None or t.max_length >= 1 else ""
    if isinstance(t, mi.NoneType):
        return None
    if isinstance(t, mi.EnumType):
        return list(t.cls)[-1]
    if isinstance(t, mi.LiteralType):
        return t.values[0]
    if isinstance(t, mi.UnionType):
        concrete = [x for x in t.types if not isinstance(x, mi.NoneType)]
        if not full and len(concrete) < len(t.types):
            return None
        return sample(concrete[0], full, depth + 1)
    if isinstance(t, (mi.ListType, mi.SetType, mi.FrozenSetType, mi.VarTupleType)):
        items = [] if depth > 4 else [sample(t.item_type, full, depth + 1)]
        return {mi.ListType: list, mi.VarTupleType: tuple}.get(type(t), list)(items)
    if isinstance(t, mi.TupleType):
        return tuple(sample(x, full, depth + 1) for x in t.item_types)
    if isinstance(t, mi.DictType):
        return {} if depth > 4 else {sample(t.key_type, full, depth + 1): sample(t.value_type, full, depth + 1)}
    if isinstance(t, mi.StructType):
        return build(t.cls, full, depth + 1)
    if isinstance(t, mi.AnyType):
        return 1
    if isinstance(t, mi.Metadata):  # a field with a description: sample the type it annotates
        return sample(t.type, full, depth)
    raise NotImplementedError(f"no sample for {t!r}")


def build(cls, full: bool, depth: int = 0):
    info = mi.type_info(cls)
    kwargs = {f.name: sample(f.type, full, depth) for f in info.fields if full or f.required}
    return cls(**kwargs)


@pytest.mark.parametrize("full", [False, True], ids=["required-only", "all-fields"])
@pytest.mark.parametrize("cls", COMMANDS, ids=lambda c: c.__name__)
def test_every_command_round_trips(cls, full):
    msg = build(cls, full)
    frame = codec.encode(msg)
    back = codec.decode_command(frame)
    assert type(back) is cls
    assert back == msg
    assert codec.encode(back) == frame


@pytest.mark.parametrize("full", [False, True], ids=["required-only", "all-fields"])
@pytest.mark.parametrize("cls", EVENTS, ids=lambda c: c.__name__)
def test_every_event_round_trips(cls, full):
    msg = build(cls, full)
    frame = codec.encode(msg)
    back = codec.decode_event(frame)
    assert type(back) is cls
    assert back == msg
    assert codec.encode(back) == frame


def test_frames_are_tagged_by_class_name():
    raw = msgspec.msgpack.decode(codec.encode(NewOrder(account=1, symbol="BTC-PERP", side=Side.BUY, qty=1, price=2)))
    assert raw == {"msg": "NewOrder", "account": 1, "symbol": "BTC-PERP", "side": "buy", "qty": 1, "price": 2}


def test_defaults_are_omitted_and_restored():
    frame = msgspec.msgpack.encode({"msg": "NewOrder", "account": 1, "symbol": "BTC-PERP", "side": "sell", "qty": 3})
    order = codec.decode_command(frame)
    assert (order.type, order.tif, order.price, order.reduce_only) == (OrderType.LIMIT, TimeInForce.GTC, None, False)


def test_all_message_tags_are_unique():
    tags = [c.__struct_config__.tag for c in COMMANDS + EVENTS]
    assert len(tags) == len(set(tags))


def test_a_command_is_not_an_event_and_vice_versa():
    with pytest.raises(msgspec.ValidationError):
        codec.decode_event(codec.encode(Deposit(account=1, asset="USDT", amount=1)))
    with pytest.raises(msgspec.ValidationError):
        codec.decode_command(codec.encode(Rejected(reason=RejectReason.MALFORMED, message="x")))


def _frame(**fields) -> bytes:
    return msgspec.msgpack.encode(fields)


GOOD_ORDER = dict(msg="NewOrder", account=1, symbol="BTC-PERP", side="buy", qty=1, price=600_000)


@pytest.mark.parametrize(
    "frame",
    [
        b"",
        b"\xc1",  # a byte msgpack never uses
        b"\x93\x01\x02",  # truncated array
        b"\xa3abc",  # a bare string
        b"\x90",  # an empty array
        msgspec.json.encode(GOOD_ORDER),  # JSON is not msgpack
        _frame(),
        _frame(msg="Nope"),
        _frame(msg=7),
        _frame(msg="NewOrder"),  # required fields missing
        _frame(**{**GOOD_ORDER, "qty": 0}),
        _frame(**{**GOOD_ORDER, "qty": -1}),
        _frame(**{**GOOD_ORDER, "qty": MAX_QTY + 1}),
        _frame(**{**GOOD_ORDER, "qty": 1.5}),
        _frame(**{**GOOD_ORDER, "qty": "1"}),
        _frame(**{**GOOD_ORDER, "price": MAX_PRICE + 1}),
        _frame(**{**GOOD_ORDER, "price": 600_000.5}),
        _frame(**{**GOOD_ORDER, "side": "long"}),
        _frame(**{**GOOD_ORDER, "type": "iceberg"}),
        _frame(**{**GOOD_ORDER, "reduce_only": 1}),
        _frame(**{**GOOD_ORDER, "client_order_id": "has space"}),
        _frame(**{**GOOD_ORDER, "client_order_id": "x" * 37}),
        _frame(**{**GOOD_ORDER, "client_order_id": ""}),
        _frame(**{**GOOD_ORDER, "account": -1}),
        _frame(**{**GOOD_ORDER, "account": 2**64 - 1}),
        _frame(**{**GOOD_ORDER, "symbol": ""}),
        _frame(**{**GOOD_ORDER, "symbol": "S" * 33}),
        _frame(msg="Deposit", account=1, asset="USDT", amount=0),
        _frame(msg="ShockPrice", asset="BTC", change_bps=-10_000),
        _frame(msg="QueryBook", symbol="BTC-PERP", depth=0),
        msgspec.msgpack.encode([GOOD_ORDER]),  # a list of commands is not a command
    ],
    ids=lambda f: repr(f[:24]),
)
def test_garbage_frames_raise_msgspec_errors(frame):
    with pytest.raises(msgspec.DecodeError):
        codec.decode_command(frame)


def test_a_good_frame_decodes():
    order = codec.decode_command(_frame(**GOOD_ORDER))
    assert order == NewOrder(account=1, symbol="BTC-PERP", side=Side.BUY, qty=1, price=600_000)


@settings(max_examples=500, deadline=None)
@given(st.binary(max_size=64))
def test_random_bytes_decode_or_raise_a_decode_error(frame):
    for decode in (codec.decode_command, codec.decode_event):
        try:
            msg = decode(frame)
        except msgspec.DecodeError:
            continue
        assert isinstance(msg, COMMANDS if decode is codec.decode_command else EVENTS)


JSONISH = st.recursive(
    st.none() | st.booleans() | st.integers(-(2**63), 2**64 - 1) | st.floats() | st.text(max_size=8),
    lambda inner: st.lists(inner, max_size=3) | st.dictionaries(st.text(max_size=8), inner, max_size=3),
    max_leaves=8,
)


@settings(max_examples=300, deadline=None)
@given(tag=st.sampled_from([c.__name__ for c in COMMANDS] + ["Nope", ""]),
       fields=st.dictionaries(st.sampled_from(["account", "symbol", "side", "qty", "price", "asset", "amount",
                                               "order_id", "type", "tif", "depth", "paused", "extra"]),
                              JSONISH, max_size=6))
def test_structured_garbage_decodes_or_raises_a_decode_error(tag, fields):
    frame = msgspec.msgpack.encode({"msg": tag, **fields})
    try:
        msg = codec.decode_command(frame)
    except msgspec.DecodeError:
        return
    assert type(msg).__name__ == tag
    assert codec.decode_command(codec.encode(msg)) == msg


# ----------------------------------------------------------------- schema


def test_json_schema_lists_every_message():
    schema = json_schema()
    json.dumps(schema)  # plain JSON
    defs = schema["$defs"]
    for cls in COMMANDS + EVENTS:
        assert cls.__name__ in defs, f"{cls.__name__} missing from the schema"
        assert defs[cls.__name__]["properties"]["msg"]["enum"] == [cls.__name__]

    def refs(union):
        return {r["$ref"].rsplit("/", 1)[1] for r in union["anyOf"]}

    assert refs(schema["properties"]["command"]) == {c.__name__ for c in COMMANDS}
    assert refs(schema["properties"]["event"]) == {c.__name__ for c in EVENTS}
    assert str(PROTOCOL_VERSION) in schema["title"]
    # everything the PUB socket carries, BookHeartbeat included, and every
    # session message both ways: a bot written from the schema alone meets
    # no message it was not told about
    from protocol import session
    wire = set(get_args(session.Inbound)) | set(get_args(session.Outbound)) | set(get_args(session.MarketData))
    assert {c.__name__ for c in wire} <= set(defs)
    assert refs(schema["properties"]["market_data"]) == {c.__name__ for c in get_args(session.MarketData)}
    assert "BookHeartbeat" in refs(schema["properties"]["market_data"])
    # what a client sends is closed (unknown fields refused), what it receives is open
    for cls in tuple(COMMANDS) + get_args(session.SessionMessage):
        assert defs[cls.__name__].get("additionalProperties") is False, cls.__name__
    assert "additionalProperties" not in defs["Fill"]


def test_json_schema_carries_the_field_bounds():
    order = json_schema()["$defs"]["NewOrder"]
    # qty may be left out only by a close_position order (docs/adr/0011); the venue refuses it missing otherwise
    assert {"type": "integer", "exclusiveMinimum": 0, "maximum": MAX_QTY} in order["properties"]["qty"]["anyOf"]
    assert set(order["required"]) == {"msg", "account", "symbol", "side"}
    assert json_schema()["$defs"]["Side"]["enum"] == ["buy", "sell"]
