"""Per-session latency over real sockets: ordering effects, not speed.

Account 2's key has the profile ``slow`` (entry: a constant 600 ms; market
data: none); account 3 has none. The asserts are about order — which order
the sequencer saw first — and lower bounds the delay must add, never about
how fast anything was.
"""

from __future__ import annotations

import threading
import time
import tomllib

import pytest

from clients import Client, InvalidOrder
from exchange_sim import config as config_mod
from integration_helpers import KEYS

SLOW_MS = 600
PROFILES = {
    "slow": {"entry": {"kind": "constant", "ms": float(SLOW_MS)}},
    "reply-300": {"market_data": {"kind": "constant", "ms": 300.0}},
}


def _server(serve):
    accounts = tomllib.loads(config_mod.default_text())["server"]["accounts"]
    for a in accounts:
        if a["account"] == 2:
            a["latency"] = "slow"
    return serve(latency={"seed": 1, "default": "", "profiles": PROFILES}, accounts=accounts)


@pytest.mark.deadline(40)
def test_a_delayed_sessions_order_is_sequenced_after_an_undelayed_one_sent_later(serve):
    """Account 2 (600 ms entry delay) sends a bid first; 100 ms later account 3
    (no delay) sends one. The venue numbers orders in the order it applies
    them: account 3's order id is the smaller, although it was sent later."""
    sp = _server(serve)
    with Client(sp.orders, account=2, api_key=KEYS[2]) as slow, \
            Client(sp.orders, account=3, api_key=KEYS[3]) as fast:
        assert (slow.session.latency, fast.session.latency) == ("slow", "")
        got = {}
        sent = {}

        def place_slow():
            sent["slow"] = time.monotonic()
            got["slow"] = slow.buy("BTC-PERP", "0.01", price="50000.0", timeout=10)
            got["slow_ack_s"] = time.monotonic() - sent["slow"]

        t = threading.Thread(target=place_slow)
        t.start()
        time.sleep(0.1)
        got["fast"] = fast.buy("BTC-PERP", "0.01", price="50000.0")
        t.join(15)
        assert not t.is_alive()
    assert got["fast"].order_id < got["slow"].order_id
    # the slow session's ack includes its entry delay (a lower bound: it cannot come sooner)
    assert got["slow_ack_s"] >= SLOW_MS / 1000


@pytest.mark.deadline(40)
def test_login_chooses_a_profile_and_the_ack_includes_the_market_data_delay(serve):
    """Login(latency="reply-300"): every reply waits 300 ms after the venue;
    an unknown profile is refused, naming the valid ones."""
    sp = _server(serve)
    with Client(sp.orders, account=3, api_key=KEYS[3], latency="reply-300") as c:
        assert c.session.latency == "reply-300"
        t0 = time.monotonic()
        c.account()
        assert time.monotonic() - t0 >= 0.3
    with pytest.raises(InvalidOrder, match="reply-300, slow"):
        Client(sp.orders, account=3, api_key=KEYS[3], latency="warp")


@pytest.mark.deadline(40)
def test_the_asyncio_client_chooses_a_profile_too(serve):
    import asyncio

    from clients import AsyncClient

    sp = _server(serve)

    async def main():
        c = await AsyncClient.connect(sp.orders, 3, KEYS[3], latency="reply-300")
        try:
            t0 = time.monotonic()
            await c.account()
            return c.session.latency, time.monotonic() - t0
        finally:
            await c.close()

    name, took = asyncio.run(main())
    assert name == "reply-300" and took >= 0.3


# --- the measured ack distribution matches the configured profile (issue 19)

N_ORDERS = 40
#: what the machine may add on top of the configured delays (a loaded 2-core CI box: the
#: server, the client and the other tests share it). Generous on purpose: only the upper
#: check uses it; the lower checks are exact, because no load can make a delay shorter.
SLACK_MS = 150.0
ACK_PROFILES = {
    "const-40": {"entry": {"kind": "constant", "ms": 25.0}, "market_data": {"kind": "constant", "ms": 15.0}},
    "uniform-20-60": {"entry": {"kind": "uniform", "ms": 20.0, "high_ms": 60.0}},
}


def _acks_ms(orders: str, account: int, profile: str) -> list[float]:
    """Client-side ack times (ms) of N_ORDERS resting limit orders sent one
    after the other on a session that logged in with ``profile``."""
    with Client(orders, account=account, api_key=KEYS[account], latency=profile) as c:
        assert c.session.latency == profile
        out = []
        for i in range(N_ORDERS):
            t0 = time.monotonic()
            got = c.buy("BTC-PERP", "0.001", price=f"{50_000 - i}.0", timeout=10)
            out.append((time.monotonic() - t0) * 1000)
            assert got.status == "new"
    return out


@pytest.mark.deadline(120)
def test_the_measured_ack_distribution_matches_the_profile(serve):
    """A real server with two profiles; 40 orders each, acks timed by the client.

    - constant 25 ms entry + 15 ms market data: every ack >= 40 ms, the
      median in [40, 40 + SLACK_MS];
    - uniform 20-60 ms entry: every ack >= 20 ms, the median in
      [30, 60 + SLACK_MS] — 30 is the configured median 40 less three
      standard errors of a 40-draw median of that uniform (3 x 40/(2 sqrt 40)
      = 9.5 ms); it tells a uniform from a delay stuck at its minimum.

    The lower bounds are the behaviour (the delay is applied: no ack can come
    sooner); the upper ones only check that nothing far larger is added, with
    a slack no loaded machine should reach. Not a speed assert."""
    import statistics

    sp = serve(latency={"seed": 1, "default": "", "profiles": ACK_PROFILES})
    const = _acks_ms(sp.orders, 2, "const-40")
    uni = _acks_ms(sp.orders, 3, "uniform-20-60")
    assert min(const) >= 40.0, sorted(const)[:5]
    assert 40.0 <= statistics.median(const) <= 40.0 + SLACK_MS, statistics.median(const)
    assert min(uni) >= 20.0, sorted(uni)[:5]
    assert 30.0 <= statistics.median(uni) <= 60.0 + SLACK_MS, statistics.median(uni)
