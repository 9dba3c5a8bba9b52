"""Index feeds: a seeded random walk and a CSV replay move the market with no
bot; their ticks are ordinary commands (MarkPrice on the PUB socket)."""

from __future__ import annotations

import time

import pytest
import zmq

from exchange_sim.feed import CsvFeed, RandomWalkFeed, usd_to_e8
from protocol import messages as m
from protocol.session import decode_market

BTC0 = 60_000 * 10**8


def test_random_walk_is_seeded_and_time_independent():
    a = RandomWalkFeed({"BTC": BTC0, "ETH": 3000 * 10**8}, {"BTC": 0.6, "ETH": 0.8, "USDT": 0.0}, seed=42,
                       interval_s=1.0, speed=3600.0)
    b = RandomWalkFeed({"BTC": BTC0, "ETH": 3000 * 10**8}, {"BTC": 0.6, "ETH": 0.8}, seed=42, interval_s=1.0,
                       speed=3600.0)
    path_a = [a.step() for _ in range(200)]
    path_b = [b.step() for _ in range(200)]
    assert path_a == path_b and [c.asset for c in path_a[0]] == ["BTC", "ETH"]
    c = RandomWalkFeed({"BTC": BTC0}, {"BTC": 0.6}, seed=43, interval_s=1.0, speed=3600.0)
    assert [s[0].price for s in (c.step() for _ in range(5))] != [s[0].price for s in path_a[:5]]
    # an hour per tick at sigma 0.6: sd of one step = 0.6 * sqrt(1/8760) = 0.64%
    moves = [abs(path_a[i + 1][0].price / path_a[i][0].price - 1) for i in range(199)]
    assert 0.002 < sum(moves) / len(moves) < 0.012
    a.start(100.0)
    assert a.poll(100.5) == [] and len(a.poll(101.0)) == 2 and a.next_due() == 102.0


def test_csv_feed_parses_and_refuses(tmp_path):
    p = tmp_path / "path.csv"
    p.write_text("time,asset,price\n0,BTC,61000\n0.5,ETH,3010.5\n1,BTC,61000.123456789\n")
    f = CsvFeed(p, speed=10.0, known_assets={"BTC", "ETH"})
    f.start(0.0)
    assert [(c.asset, c.price) for c in f.poll(0.05)] == [("BTC", 61_000 * 10**8), ("ETH", 301_050_000_000)]
    assert [c.price for c in f.poll(1.0)] == [usd_to_e8("61000.12345679")] and f.next_due() is None
    bad = tmp_path / "bad.csv"
    bad.write_text("0,DOGE,1\n")
    with pytest.raises(ValueError, match="bad.csv:1: unknown asset"):
        CsvFeed(bad, known_assets={"BTC"})
    bad.write_text("0,BTC,-5\n")
    with pytest.raises(ValueError, match="bad.csv:1"):
        CsvFeed(bad)


def _marks(ctx, endpoint: str, symbol: str, n: int, timeout: float = 10.0) -> list[int]:
    s = ctx.socket(zmq.SUB)
    s.linger = 0
    s.setsockopt(zmq.SUBSCRIBE, f"{symbol}.mark\x00".encode())
    s.connect(endpoint)
    out: list[int] = []
    deadline = time.monotonic() + timeout
    while len(out) < n and time.monotonic() < deadline:
        if s.poll(100):
            ev = decode_market(s.recv())
            assert type(ev) is m.MarkPrice
            out.append(ev.index)
    s.close()
    return out


@pytest.mark.deadline(40)
def test_server_random_walk_moves_marks(serve, ctx):
    srv = serve(feed={"kind": "random_walk", "interval_ms": 20, "seed": 5, "speed": 36000.0,
                      "volatility": {"BTC": 0.6}}, args=("--feed", "random-walk"))
    idx = _marks(ctx, srv.market_data, "BTC-PERP", 10)
    assert len(idx) == 10 and len(set(idx)) > 5


@pytest.mark.deadline(40)
def test_server_csv_feed_replays_a_path(serve, ctx, tmp_path):
    csv = tmp_path / "prices.csv"
    rows = [f"{1 + i * 0.02:.2f},ETH,{3000 + i}" for i in range(30)]
    csv.write_text("time,asset,price\n" + "\n".join(rows) + "\n")
    srv = serve(args=("--feed-csv", str(csv)))
    idx = _marks(ctx, srv.market_data, "ETH-PERP", 10)
    assert len(idx) == 10
    steps = [b - a for a, b in zip(idx, idx[1:])]
    assert all(s == 10**8 for s in steps)  # consecutive CSV rows, $1 apart
