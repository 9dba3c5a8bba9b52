"""``exchange-sim serve --replay DATA``: the shipped sample over real sockets."""

from __future__ import annotations

from decimal import Decimal as D

import pytest

from clients import Client
from clients.models import Fill
from exchange_sim.replay_data import SAMPLE
from integration_helpers import KEYS, wait_for


@pytest.mark.deadline(60)
def test_a_user_order_fills_against_the_replayed_book(serve):
    """The sample's book (10 levels a side around 42,000, 1.0 apart) appears on
    the venue; a user's IOC buy fills against the replay account's orders at
    recorded prices."""
    sp = serve(args=("--replay", str(SAMPLE), "--speed", "2"))
    assert any(line.startswith("replay:") and "BTC-PERP" in line for line in sp.banner)
    with Client(sp.orders, account=2, api_key=KEYS[2]) as bot:
        book = wait_for(lambda: (b := bot.book("BTC-PERP")) and len(b.bids) == 10 and len(b.asks) == 10 and b,
                        10, "the recorded book")
        best_ask = book.asks[0][0]
        assert D(41_900) < best_ask < D(42_100) and book.asks[0][0] - book.bids[0][0] == D("1.0")
        # 5 levels through: the recorded book moves +-1.0 a step, not 5 within one round trip
        limit = best_ask + D(5)
        got = bot.buy("BTC-PERP", "0.001", price=str(limit), tif="ioc")
        fills = [e for e in bot.drain_events() if type(e) is Fill] or got.fills
        assert got.status == "filled"
        assert fills and all(D(41_900) < f.price <= limit for f in fills)


# --- replay in data time: live journals are reproducible (issue 19)

SPEED = 20  # the sample's 30 s of data in 1.5 s of wall time
RUN_S = 6.0  # each server's whole life (--duration): the data ends well before it, even on a loaded machine


def _live_replay(tmp_path, name: str, during=None):
    """A real ``serve --replay SAMPLE --speed 20 --data-dir DIR`` that stops by
    itself after RUN_S; ``during(sp)`` runs while it serves. Returns the data
    dir's journal records and segment bytes."""
    from exchange_sim import journal
    from integration_helpers import start_server

    d = tmp_path / name
    sp = start_server(tmp_path, args=("--replay", str(SAMPLE), "--speed", str(SPEED), "--data-dir", str(d)),
                      duration=RUN_S)
    try:
        if during is not None:
            during(sp)
        assert sp.proc.wait(RUN_S + 30) == 0, sp.log()
    finally:
        sp.stop()
    records, notes = journal.read(d)
    assert not notes
    return records, b"".join(p.read_bytes() for p in journal.segments(d))


def _last_data_ns() -> int:
    from exchange_sim import replay_market

    return replay_market.read(SAMPLE)[-1][0]


@pytest.mark.deadline(90)
def test_two_live_replays_write_byte_identical_journals(tmp_path):
    """Two live runs of the sample, same seeds, nobody trading: the same
    journal, byte for byte (the wall clock paced them, the data stamped
    them), and it holds what the offline replay sends, with the same stamps."""
    from exchange_sim import config as config_mod
    from exchange_sim import replay_market
    from exchange_sim.venue import Venue

    first, first_bytes = _live_replay(tmp_path, "run1")
    second, second_bytes = _live_replay(tmp_path, "run2")
    last = _last_data_ns()
    # the whole data was played (else the comparison below would be about a prefix)
    assert first[-1].ts == last and second[-1].ts == last
    assert first_bytes == second_bytes
    # the replay's part of the journal is exactly the offline replay (records and data-time Ticks);
    # the rest is the configured accounts' start-up, stamped at the data's start
    cfg = config_mod.load(tmp_path / "run1" / "config.toml")
    venue = Venue(cfg)
    market = replay_market.ReplayMarket(replay_market.read(SAMPLE), venue,
                                        tick_ns=cfg.server.tick_interval_ms * 10**6)
    offline = [(ts, cmd) for ts, cmd, _ in replay_market.replay_offline(venue, market)]
    users = {a.account for a in cfg.server.accounts}
    live = [(r.ts, r.command) for r in first if getattr(r.command, "account", None) not in users]
    assert live == offline
    assert all(r.ts == offline[0][0] for r in first if getattr(r.command, "account", None) in users)


@pytest.mark.deadline(90)
def test_a_users_order_is_stamped_with_the_data_clock_at_entry(tmp_path):
    """A user's order in the middle of a live replay is journaled with a data
    time inside the recording, between the replay commands sent before and
    after it: journal time never runs backwards."""
    placed = {}

    def trade(sp):
        with Client(sp.orders, account=2, api_key=KEYS[2]) as bot:
            wait_for(lambda: (b := bot.book("BTC-PERP")) and len(b.bids) == 10, 5, "the recorded book")
            placed["order"] = bot.buy("BTC-PERP", "0.001", price="41000.0")  # rests below the book

    records, _ = _live_replay(tmp_path, "user", during=trade)
    ours = [r for r in records if type(r.command).__name__ == "NewOrder" and r.command.account == 2]
    assert len(ours) == 1 and placed["order"].status == "new"
    first_data = min(r.ts for r in records)
    assert first_data < ours[0].ts <= _last_data_ns()
    stamps = [r.ts for r in records]
    assert stamps == sorted(stamps)
