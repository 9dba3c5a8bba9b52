"""Replay the language-neutral conformance vectors (protocol/vectors/*.json)
against a real server: frames in, expected answers out. The format is
described in protocol/vectors/README.md; a client in any language can run
the same files."""

from __future__ import annotations

import json
from pathlib import Path

import msgspec
import pytest
import zmq

VECTORS = Path(__file__).resolve().parents[2] / "protocol" / "vectors"
FILES = sorted(VECTORS.glob("*.json"))
MAX_SKIPPED = 50  # server heartbeats skipped while waiting for one answer (bounded)


def _frame(spec) -> bytes:
    """One frame of a vector: ``{"hex": "..."}`` or ``{"json": {...}}`` (msgpack-encoded)."""
    return bytes.fromhex(spec["hex"]) if "hex" in spec else msgspec.msgpack.encode(spec["json"])


def _sent(step) -> list[bytes] | None:
    if "send" in step:
        return [msgspec.msgpack.encode(step["send"])]
    if "send_hex" in step:
        return [bytes.fromhex(step["send_hex"])]
    if "send_frames" in step:
        return [_frame(f) for f in step["send_frames"]]
    return None


def match(expect, got, where: str = "$") -> None:
    """``got`` must match ``expect``: equal scalars (same type: 1 is not 1.0),
    lists of the same length matched item by item, and maps holding every
    expected key. Markers: ``"$any"`` matches any value (ids, timestamps,
    risk floats); ``{"$contains": s}`` a string containing ``s``;
    ``"$absent"`` a key that must NOT be there (a field omitted because it
    equals its default). Keys the vector does not name are allowed: a venue
    may add fields (with defaults) and a client must ignore those it does not
    know."""
    if expect == "$any":
        return
    if isinstance(expect, dict) and set(expect) == {"$contains"}:
        assert isinstance(got, str) and expect["$contains"] in got, f"{where}: {got!r} lacks {expect['$contains']!r}"
        return
    if isinstance(expect, dict):
        assert isinstance(got, dict), f"{where}: expected a map, got {got!r}"
        for k, e in expect.items():
            if e == "$absent":
                assert k not in got, f"{where}.{k}: should be omitted (default), got {got[k]!r}"
            else:
                assert k in got, f"{where}: no field {k!r} in {sorted(got)}"
                match(e, got[k], f"{where}.{k}")
        return
    if isinstance(expect, list):
        assert isinstance(got, list) and len(got) == len(expect), f"{where}: {got!r} != {expect!r}"
        for i, (e, g) in enumerate(zip(expect, got)):
            match(e, g, f"{where}[{i}]")
        return
    assert type(got) is type(expect) and got == expect, f"{where}: {got!r} != {expect!r}"


def _recv(sock: zmq.Socket, what: str) -> list[bytes]:
    for _ in range(MAX_SKIPPED):
        assert sock.poll(5000), f"no answer: {what}"
        frames = sock.recv_multipart()
        try:
            body = msgspec.msgpack.decode(frames[-1])
        except msgspec.DecodeError:
            return frames
        if not (isinstance(body, dict) and body.get("msg") == "Heartbeat"):  # may come at any time
            return frames
    raise AssertionError(f"only heartbeats: {what}")


def _recv_md(sub: zmq.Socket, topic: str, what: str) -> dict:
    for _ in range(MAX_SKIPPED):
        assert sub.poll(5000), f"no market data: {what}"
        t, sep, body = sub.recv().partition(b"\x00")
        assert sep, "a market-data frame without its 0x00 separator"
        msg = msgspec.msgpack.decode(body)
        if t.decode() == topic and msg.get("msg") != "BookHeartbeat":
            return msg
    raise AssertionError(f"only heartbeats: {what}")


def run_vector(vector: dict, orders: str, market_data: str, ctx: zmq.Context) -> int:
    """Run one vector; returns the number of steps checked."""
    socks: dict[str, zmq.Socket] = {}
    sub = None
    try:
        for topic in vector.get("subscribe", []):
            if sub is None:
                sub = ctx.socket(zmq.SUB)
                sub.linger = 0
                sub.connect(market_data)
            sub.subscribe(topic.encode())
        if sub is not None:  # a BookHeartbeat proves the subscription is live
            for _ in range(MAX_SKIPPED):
                assert sub.poll(5000), "no market-data heartbeat"
                if b"BookHeartbeat" in sub.recv():
                    break
        for n, step in enumerate(vector["steps"]):
            what = f"{vector['name']} step {n}: {step.get('note', '')}"
            if "md_expect" in step:
                exp = step["md_expect"]
                match(exp["msg"], _recv_md(sub, exp["topic"], what), f"{what} $")
                continue
            name = step.get("session", "main")
            sock = socks.get(name)
            if sock is None:
                sock = socks[name] = ctx.socket(zmq.DEALER)
                sock.linger = 0
                sock.connect(orders)
            frames = _sent(step)
            if frames is not None:
                sock.send_multipart(frames)
            if "expect" in step:
                got = _recv(sock, what)
                assert len(got) == 1, f"{what}: {len(got)} frames back"
                match(step["expect"], msgspec.msgpack.decode(got[0]), f"{what} $")
            elif "expect_frames" in step:
                got = _recv(sock, what)
                assert len(got) == len(step["expect_frames"]), f"{what}: {len(got)} frames back"
                for i, (e, g) in enumerate(zip(step["expect_frames"], got)):
                    if "hex" in e:
                        assert g.hex() == e["hex"], f"{what}: frame {i}"
                    else:
                        match(e["json"], msgspec.msgpack.decode(g), f"{what} frame {i} $")
        return len(vector["steps"])
    finally:
        for s in socks.values():
            s.close()
        if sub is not None:
            sub.close()


def test_there_are_vectors_and_each_names_itself():
    assert len(FILES) >= 5
    for f in FILES:
        v = json.loads(f.read_text())
        assert v["name"] == f.stem and v["description"] and v["steps"], f


@pytest.mark.parametrize("path", FILES, ids=[f.stem for f in FILES])
def test_vector(serve, ctx, path):
    """Each vector against a freshly started server (embedded default config)."""
    srv = serve()
    assert run_vector(json.loads(path.read_text()), srv.orders, srv.market_data, ctx) > 0


def test_the_matcher_fails_on_a_difference():
    """The replay would be worthless if the matcher let differences through."""
    match({"a": "$any", "b": [1, {"$contains": "lo"}], "c": "$absent"}, {"a": 5, "b": [1, "hello"], "new": 0})
    for expect, got in (({"a": "$absent"}, {"a": False}), ({"a": 1}, {"a": 2}), ([1], [1, 2]), (1, 1.0),
                        ({"a": {"$contains": "x"}}, {"a": "y"}), ({"a": 1, "b": 2}, {"a": 1})):
        with pytest.raises(AssertionError):
            match(expect, got)
