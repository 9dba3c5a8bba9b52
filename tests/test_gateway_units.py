"""Gateway pieces without a server: the depth-diff ids a dropped venue delta
shows in, Binance's signature check, and the reject-code table."""

from __future__ import annotations

import hashlib
import hmac

import pytest

pytest.importorskip("aiohttp")

from exchange_sim.gateway import auth, errors  # noqa: E402
from exchange_sim.gateway.ws import _Depth  # noqa: E402
from protocol.messages import BookDelta, RejectReason  # noqa: E402


class _Ins:
    @staticmethod
    def price(t):
        return t

    @staticmethod
    def qty(q):
        return q


def test_a_dropped_delta_breaks_the_pu_chain():
    d = _Depth("btcusdt@depth@100ms", "BTC-PERP", 0.1)
    d.add(BookDelta(symbol="BTC-PERP", seq=7, bids=[(100, 5)], asks=[]))
    d.add(BookDelta(symbol="BTC-PERP", seq=8, bids=[(100, 0), (99, 2)], asks=[]))
    first = d.take(_Ins, "BTCUSDT")
    assert (first["U"], first["u"], first["b"]) == (7, 8, [["100", "0"], ["99", "2"]])
    assert d.take(_Ins, "BTCUSDT") is None  # nothing changed: no event, as Binance
    d.add(BookDelta(symbol="BTC-PERP", seq=9, bids=[], asks=[(101, 1)]))
    assert d.take(_Ins, "BTCUSDT")["pu"] == first["u"]
    d.add(BookDelta(symbol="BTC-PERP", seq=11, bids=[], asks=[(101, 0)]))  # seq 10 was dropped
    assert d.take(_Ins, "BTCUSDT")["pu"] == 10 != 9


def test_signature_and_window():
    keys = {"k" * 8: auth.Key(2, "k" * 8, "s3cret")}
    q = "symbol=BTCUSDT&timestamp=1000"
    sig = hmac.new(b"s3cret", q.encode(), hashlib.sha256).hexdigest()
    assert auth.check(keys, "k" * 8, f"{q}&signature={sig}", "", {"timestamp": "1000"}, 1500).account == 2
    with pytest.raises(errors.BinanceError) as e:
        auth.check(keys, "k" * 8, f"{q}&signature={sig}", "", {"timestamp": "1000"}, 7000)
    assert e.value.code == -1021
    with pytest.raises(errors.BinanceError) as e:
        auth.check(keys, "k" * 8, f"{q}&signature={'0' * 64}", "", {"timestamp": "1000"}, 1500)
    assert e.value.code == -1022
    with pytest.raises(errors.BinanceError) as e:
        auth.check(keys, "nope-nope", f"{q}&signature={sig}", "", {"timestamp": "1000"}, 1500)
    assert (e.value.code, e.value.status) == (-2015, 401)


def test_reject_table_names_binance_codes():
    assert errors.for_reason(RejectReason.INSUFFICIENT_MARGIN, "x").body() == {"code": -2019, "msg": "Margin is insufficient."}
    assert errors.for_reason(RejectReason.BELOW_MIN_NOTIONAL, "notional 1 USDT < 5").body() == {
        "code": -4164, "msg": "notional 1 USDT < 5"}
    assert errors.for_reason(RejectReason.INTERNAL, "boom").status == 500
