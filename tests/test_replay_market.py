"""Historical replay as the market (exchange_sim/replay_market.py), on the
shipped sample (exchange_sim/replay_data/make_sample.py): 30 s of a
synthetic BTCUSDT perpetual in Tardis layouts, 10 levels a side 1.0 apart.

The recorded book is rebuilt here independently from the CSV (a dict of
levels, updated row by row) and compared with the venue's book.
"""

from __future__ import annotations

import csv
from decimal import Decimal

import msgspec
import pytest

from exchange_sim import config as config_mod
from exchange_sim import replay_market as rm
from exchange_sim.journal import Journal
from exchange_sim.replay_data import SAMPLE, make_sample
from exchange_sim.venue import Venue
from protocol.messages import Deposit, Fill, NewOrder, Side, TimeInForce

T0 = make_sample.T0_US * 1000  # ns
S = 10**9


def recorded_book(until_ns: int) -> tuple[dict, dict]:
    """bids, asks (price ticks -> lots) of the sample's incremental_book_L2 after every row up to ``until_ns``."""
    book = {"bid": {}, "ask": {}}
    with open(SAMPLE / "incremental_book_L2.csv", newline="") as f:
        for row in csv.DictReader(f):
            if int(row["timestamp"]) * 1000 > until_ns:
                break
            ticks, lots = int(Decimal(row["price"]) * 10), int(Decimal(row["amount"]) * 1000)
            if lots:
                book[row["side"]][ticks] = lots
            else:
                book[row["side"]].pop(ticks, None)
    return book["bid"], book["ask"]


def replayed(until_ns: int | None = None):
    venue = Venue()
    market = rm.ReplayMarket(rm.read(SAMPLE), venue)
    out = rm.replay_offline(venue, market, until_ns)
    return venue, market, out


def test_the_shipped_sample_is_what_the_script_writes(tmp_path):
    for p in make_sample.write(tmp_path):
        assert p.read_bytes() == (SAMPLE / p.name).read_bytes(), p.name


@pytest.mark.parametrize("at_s", [0, 5, 17.35, 30])
def test_the_replay_reproduces_the_recorded_book_at_chosen_times(at_s):
    until = T0 + int(at_s * S)
    venue, _, out = replayed(until)
    assert not [e for _, _, evs in out for e in evs if type(e).__name__ == "Rejected"]
    bids, asks = recorded_book(until)
    snap = venue.book_snapshot("BTC-PERP")
    assert snap.bids == sorted(bids.items(), reverse=True)
    assert snap.asks == sorted(asks.items())
    assert len(snap.bids) == len(snap.asks) == 10


def test_recorded_mark_drives_the_index():
    """The ticker's mark_price at 10 s is the venue's index then (the venue's mark is its index)."""
    venue, _, _ = replayed(T0 + 10 * S)
    with open(SAMPLE / "derivative_ticker.csv", newline="") as f:
        mark = next(Decimal(r["mark_price"]) for r in csv.DictReader(f) if int(r["timestamp"]) * 1000 == T0 + 10 * S)
    assert venue.assets["BTC"].index == int(mark * 10**8)
    assert venue.instruments["BTC-PERP"].mark == int(mark * 10)


def test_a_user_order_fills_against_the_recorded_book_and_consumes_it():
    """At 10 s a user buys through the two best recorded asks (IOC one tick past
    the second): it fills at the recorded prices and sizes, best first; those
    levels stay consumed (gone from the venue's book) until the data updates
    them, and the venue's book equals the recording again after that."""
    until = T0 + 10 * S
    venue, market, _ = replayed(until)
    _, asks = recorded_book(until)
    (p1, q1), (p2, q2) = sorted(asks.items())[:2]
    venue.apply(Deposit(account=7, asset="USDT", amount=1_000_000 * 10**6), until)
    ev = venue.apply(NewOrder(account=7, symbol="BTC-PERP", side=Side.BUY, qty=q1 + q2, price=p2 + 1,
                              tif=TimeInForce.IOC), until)
    market.observe(None, ev)  # the server shows the replay every command's events
    fills = [(e.price, e.qty) for e in ev if type(e) is Fill and e.account == 7]
    assert fills == [(p1, q1), (p2, q2)]
    assert venue.book_snapshot("BTC-PERP", 1).asks[0][0] > p2  # consumed
    # replay on until both levels were updated (or removed) by the data
    records = [r for r in market.records[market.i:]]
    touched = set()
    for rec in records:
        market.i += 1
        for cmd in market.commands_for(rec, venue):
            market.observe(cmd, venue.apply(cmd, rec[0]))
        if rec[1] == rm.BOOK:
            touched |= {int(p * 10) for side, p, _ in rec[3][1] if side is Side.SELL} & {p1, p2}
        if touched == {p1, p2}:
            until = rec[0]
            break
    assert touched == {p1, p2}
    bids, asks = recorded_book(until)
    snap = venue.book_snapshot("BTC-PERP")
    assert (snap.bids, snap.asks) == (sorted(bids.items(), reverse=True), sorted(asks.items()))


def test_two_replays_give_identical_commands_events_and_journals(tmp_path):
    a, b = replayed()[2], replayed()[2]
    assert a == b
    for name, run in (("a", a), ("b", b)):
        j = Journal(tmp_path / name)
        for seq, (ts, cmd, _) in enumerate(run, 1):
            j.append(seq, ts, cmd)
        j.commit()
        j.close()
    files = sorted(p.name for p in (tmp_path / "a").iterdir())
    assert files and files == sorted(p.name for p in (tmp_path / "b").iterdir())
    for f in files:
        assert (tmp_path / "a" / f).read_bytes() == (tmp_path / "b" / f).read_bytes()


def test_book_snapshot_25_and_the_simple_csv(tmp_path):
    """A book_snapshot_25 row is the whole top of book: a level missing from the
    next row is cancelled. The simple CSV sets index and levels."""
    snap = tmp_path / "snap"
    snap.mkdir()
    head = "exchange,symbol,timestamp,local_timestamp," + ",".join(
        f"asks[{i}].price,asks[{i}].amount,bids[{i}].price,bids[{i}].amount" for i in range(2))
    (snap / "book_snapshot_25.csv").write_text(
        head + "\n"
        "x,ETHUSDT,1000000,1000000,3000.5,1.0,2999.5,2.0,3001.5,1.5,2998.5,2.5\n"
        "x,ETHUSDT,2000000,2000000,3000.5,0.5,2999.5,2.0,,,2998.5,2.5\n")
    venue = Venue()
    rm.replay_offline(venue, rm.ReplayMarket(rm.read(snap), venue))
    b = venue.book_snapshot("ETH-PERP")
    assert b.asks == [(300050, 500)] and b.bids == [(299950, 2000), (299850, 2500)]  # ETH: tick 0.01, lot 0.001
    simple = tmp_path / "simple.csv"
    simple.write_text("time,symbol,kind,side,price,amount\n0,SOL-PERP,index,,150.0,\n"
                      "0.5,SOL-PERP,level,bid,149.9,10\n0.5,SOL-PERP,level,ask,150.1,12\n1,SOL-PERP,level,ask,150.1,0\n")
    venue = Venue()
    rm.replay_offline(venue, rm.ReplayMarket(rm.read(simple), venue))
    assert venue.assets["SOL"].index == 150 * 10**8
    b = venue.book_snapshot("SOL-PERP")
    assert (b.bids, b.asks) == ([(149_900, 100)], [])


def test_bad_data_is_refused_naming_file_and_line(tmp_path):
    bad = tmp_path / "bad.csv"
    bad.write_text("time,symbol,kind,side,price,amount\n0,BTC-PERP,index,,sixty,\n")
    with pytest.raises(ValueError, match=r"bad.csv:2: not a number: 'sixty'"):
        rm.read(bad)
    odd = tmp_path / "odd.csv"
    odd.write_text("a,b,c\n1,2,3\n")
    with pytest.raises(ValueError, match="unknown CSV header"):
        rm.read(odd)
    venue = Venue()
    doge = tmp_path / "doge.csv"
    doge.write_text("time,symbol,kind,side,price,amount\n0,DOGEUSDT,index,,0.1,\n")
    with pytest.raises(ValueError, match="DOGEUSDT"):
        rm.ReplayMarket(rm.read(doge), venue)


def test_recorded_funding_is_settled_at_the_recorded_rate(tmp_path):
    """Two ticker rows name the funding at 08:00 (rate 0.0100%), a third names
    16:00: the 08:00 funding happened, at 0.0100% = 10,000 e-8. Account 7 long
    1 BTC at 42,000 pays 42,000 x 0.0001 = 4.2 USDT, account 8 short receives it."""
    f = tmp_path / "derivative_ticker.csv"
    h = ("exchange,symbol,timestamp,local_timestamp,funding_timestamp,funding_rate,predicted_funding_rate,"
         "open_interest,last_price,index_price,mark_price\n")
    e8, e16 = 1_704_096_000_000_000, 1_704_124_800_000_000
    f.write_text(h + f"x,BTCUSDT,1704095990000000,0,{e8},0.00005,,,,42000.0,42000.0\n"
                 f"x,BTCUSDT,1704095999000000,0,{e8},0.0001,,,,42000.0,42000.0\n"
                 f"x,BTCUSDT,1704096001000000,0,{e16},0.0002,,,,42000.0,42000.0\n")
    records = rm.read(f)
    assert rm.has_funding(records)
    cfg = config_mod.default()  # as serve --replay does for data with funding: the venue's own is off
    venue = Venue(msgspec.structs.replace(cfg, funding=msgspec.structs.replace(cfg.funding, automatic=False)))
    t = records[0][0]
    for acct in (7, 8):
        venue.apply(Deposit(account=acct, asset="USDT", amount=100_000 * 10**6), t)
    market = rm.ReplayMarket(records, venue)
    out = rm.replay_offline(venue, market, until_ns=t)  # the index first, then a trade at 42,000
    venue.apply(NewOrder(account=8, symbol="BTC-PERP", side=Side.SELL, qty=1000, price=420_000), t)
    venue.apply(NewOrder(account=7, symbol="BTC-PERP", side=Side.BUY, qty=1000, price=420_000), t)
    out = rm.replay_offline(venue, market)
    pays = [(e.account, e.rate_e8, e.amount) for _, _, evs in out for e in evs if type(e).__name__ == "FundingPayment"]
    assert pays == [(7, 10_000, -4_200_000), (8, 10_000, 4_200_000)]


def test_a_funding_rate_beyond_10pct_is_refused_and_changes_nothing():
    from exchange_sim import snapshot
    from protocol.messages import Rejected, SettleFunding

    venue = Venue()
    before = snapshot.state_hash(venue)
    (ev,) = venue.apply(SettleFunding(symbol="BTC-PERP", rate_e8=10_000_001))
    assert type(ev) is Rejected and "10,000,000" in ev.message
    venue.seq -= 1  # the refused command took a sequence number; the rest of the state is untouched
    assert snapshot.state_hash(venue) == before


# --- replay in data time (issue 19: live journals are reproducible)

def _sparse(tmp_path):
    """Index at 0.2 s, a bid at 3.0 s, index again at 3.5 s: two quiet seconds in between."""
    f = tmp_path / "sparse.csv"
    f.write_text("time,symbol,kind,side,price,amount\n1700000000.2,BTC-PERP,index,,42000.0,\n"
                 "1700000003.0,BTC-PERP,level,bid,41999.0,0.5\n1700000003.5,BTC-PERP,index,,42010.0,\n")
    return rm.read(f)


def test_ticks_fill_the_quiet_stretches_of_the_data_in_data_time(tmp_path):
    """With tick_ns = 1 s the replay sends a Tick at 1 s and 2 s (the venue
    clock moves through the quiet data), none at 3 s (a record is there) and
    none after the last record; without tick_ns, none at all."""
    from protocol.messages import Tick

    venue = Venue()
    out = rm.replay_offline(venue, rm.ReplayMarket(_sparse(tmp_path), venue, tick_ns=S))
    base = 1_700_000_000 * S
    assert [ts - base for ts, cmd, _ in out if type(cmd) is Tick] == [1 * S, 2 * S]
    assert [ts - base for ts, cmd, _ in out if type(cmd) is not Tick][-1] == 3 * S + S // 2
    assert venue.now == base + 3 * S + S // 2
    venue = Venue()
    assert not [c for _, c, _ in rm.replay_offline(venue, rm.ReplayMarket(_sparse(tmp_path), venue)) if type(c) is Tick]


def test_live_stepping_stamps_each_command_with_its_data_time(tmp_path):
    """What the server's clock says while it applies the replay's commands is
    their record's (or Tick's) time, whatever the wall clock; between steps a
    user's command gets the data clock, never past the next record not yet
    sent; after the data, it goes on."""
    venue = Venue()
    market = rm.ReplayMarket(_sparse(tmp_path), venue, speed=1e9, tick_ns=S)  # 1e9 x: the wall is far ahead
    base = 1_700_000_000 * S
    assert market.clock() == base + S // 5  # before the first step: the data's start
    wall = 10**18
    stamps = []
    for cmd in market.step(venue, wall):  # only what is due 0 ns of wall time after the start: the first record
        stamps.append(market.clock())
        venue.apply(cmd, market.clock())
    assert stamps == [base + S // 5]
    assert market.clock() == base + 1 * S  # the wall clock is far past it: capped at the next Tick not yet sent
    for cmd in market.step(venue, wall + 10):  # 10 ns of wall time at 1e9 x: 10 s of data, all of it
        stamps.append(market.clock())
        venue.apply(cmd, market.clock())
    assert stamps == [base + S // 5, base + S, base + 2 * S, base + 3 * S, base + 3 * S + S // 2]
    assert market.done and market.clock() > base + 4 * S  # after the data: the data clock goes on
