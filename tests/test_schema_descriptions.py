"""The JSON Schema is the contract for clients in other languages: every
message that can be on the wire is in it, and every field says what it is and
in which unit."""

import re

import pytest

from exchange_sim import config as config_mod
from exchange_sim.server import routing
from protocol import messages, session
from protocol.schema import LIMITS, MARKET_DATA_TOPICS, json_schema


def _all_messages() -> list[type]:
    """Every concrete message class: subclasses of the tagged base, found by
    walking the class tree (so a new class no union lists is still found)."""
    out, todo = [], [messages._Msg]
    while todo:
        cls = todo.pop()
        todo.extend(cls.__subclasses__())
        if cls is not messages._Msg and cls is not messages._Command:
            out.append(cls)
    return out


def _tag(cls: type) -> str:
    return cls.__struct_config__.tag


SCHEMA = json_schema()
DEFS = SCHEMA["$defs"]


def test_every_message_class_is_in_the_schema():
    missing = sorted({_tag(c) for c in _all_messages()} - set(DEFS))
    assert not missing, f"messages missing from the JSON Schema: {missing}"


def test_book_heartbeat_and_every_market_data_message_are_in_market_data():
    market = {r["$ref"].rsplit("/", 1)[-1] for r in SCHEMA["properties"]["market_data"]["anyOf"]}
    assert "BookHeartbeat" in market
    # every event the server routes to the PUB socket (no account, not a reply)
    public = {_tag(c) for c in messages.Event.__args__ if routing.route(c) == routing.PUBLIC}
    assert public <= market, f"published but not in market_data: {sorted(public - market)}"
    assert {"BookDelta", "Trade", "MarkPrice", "SymbolStatus", "FundingRate", "LiquidationNotice"} <= market


@pytest.mark.parametrize("name", sorted(n for n, s in DEFS.items() if s.get("type") == "object"))
def test_every_message_and_field_has_a_description(name):
    spec = DEFS[name]
    assert spec.get("description"), f"{name} has no description (give the class a docstring)"
    undocumented = [field for field, fs in spec.get("properties", {}).items() if not fs.get("description")]
    assert not undocumented, f"{name}: fields without a description: {undocumented}"


def test_numeric_fields_name_their_unit():
    """A number's description says its unit (ticks, lots, minor units, USD...)
    or that it is a count, an id, a ratio or a flag-like value."""
    unit = re.compile(r"\b(ticks?|lots|minor units|usdt?|1e-8|ns|count|id|ids|ratio|fraction|ms|bytes|seq|"
                      r"basis points|per second|decimals|version|rank|number)\b")
    vague = []
    for name, spec in DEFS.items():
        for field, fs in spec.get("properties", {}).items():
            types = {fs.get("type")} | {s.get("type") for s in fs.get("anyOf", [])}
            if types & {"integer", "number"}:
                text = fs.get("description", "").lower()
                if not unit.search(text):
                    vague.append(f"{name}.{field}: {text!r}")
    assert not vague, "numeric fields without a unit:\n" + "\n".join(vague)


def test_the_unit_rule_and_the_omitted_default_rule_are_said_once_at_the_top():
    top = SCHEMA["description"]
    assert "ticks" in top and "minor units" in top and "floats only for risk" in top
    assert "absent field" in top and "default" in top


def test_the_topic_table_is_the_servers_routing():
    """docs/protocol.md's topic table names, for each PUB topic, the messages
    the server really publishes there."""
    documented = {}
    for t, msgs, _ in MARKET_DATA_TOPICS:
        for name in msgs.split(", "):
            documented[name] = t.replace("<SYMBOL>", "BTC-PERP")
    public = [c for c in messages.Event.__args__ if routing.route(c) == routing.PUBLIC]
    published = {c.__name__: f"BTC-PERP.{routing.CHANNELS.get(c, c.__name__.lower())}" for c in public}
    published["BookHeartbeat"] = "BTC-PERP.book"  # the server's market-data heartbeat
    assert documented == published


def test_the_limits_table_is_the_embedded_config_and_login_ok():
    cfg = config_mod.default()
    login_ok = set(session.LoginOk.__struct_fields__)
    for field, key, default, _ in LIMITS:
        section, name = key.split(".")
        assert getattr(getattr(cfg, section), name) == default, key
        assert field in login_ok, field
