"""Journal, snapshots, recovery and replay (exchange_sim/journal.py, snapshot.py, replay.py)."""

from __future__ import annotations

import hashlib
import random
from pathlib import Path

import msgspec
import pytest

from exchange_sim import Venue, journal, replay, snapshot
from exchange_sim.cli import main
from protocol import messages as m
from units import U as USDT


class JournaledVenue(Venue):
    """Journals each command before applying it, with a venue clock, as the server does."""

    def __init__(self, directory, **kw):
        super().__init__()
        self.journal = journal.Journal(directory, **kw)
        self.clock = 1_700_000_000_000_000_000

    def apply(self, command, ts=None):
        self.clock += 3_600_000_000_000  # an hour per command: funding settles every 8
        self.journal.append(self.seq + 1, self.clock, command)
        return super().apply(command, self.clock)


def random_run(v: Venue, n: int = 600, seed: int = 5) -> list:
    """Deposits, orders that cross, cancels, price moves (with liquidations)."""
    rng = random.Random(seed)
    out = []
    for a in range(1, 6):
        out.append(v.apply(m.Deposit(account=a, asset="USDT", amount=(2_000 if a == 5 else 1_000_000) * USDT)))
    for i in range(n):
        a = rng.randint(1, 5)
        r = rng.random()
        if r < 0.75:
            cmd = m.NewOrder(account=a, symbol="BTC-PERP", side=rng.choice([m.Side.BUY, m.Side.SELL]),
                             qty=rng.randint(1, 200), price=v.instruments["BTC-PERP"].mark + rng.randint(-30, 30))
        elif r < 0.9:
            cmd = m.CancelAll(account=a)
        else:
            cmd = m.ShockPrice(asset="BTC", change_bps=rng.randint(-500, 500))
        out.append(v.apply(cmd))
    return out


@pytest.fixture
def run_dir(tmp_path):
    v = JournaledVenue(tmp_path, segment_bytes=16_384)
    events = random_run(v)
    v.journal.commit()
    v.snap_seq = v.seq  # 5 deposits + 600 commands
    journal.write_snapshot(tmp_path, v.seq, snapshot.state_hash(v), snapshot.encode(snapshot.capture(v)))
    events += random_run(v, n=200, seed=6)  # 5 more deposits + 200
    v.journal.close()
    return tmp_path, v, events


def test_recovery_reproduces_the_state_hash_and_uses_the_snapshot(run_dir):
    d, live, _ = run_dir
    assert len(journal.segments(d)) > 1, "the small segment size must have rotated the journal"
    recovered, notes, replayed = replay.recover(d)
    assert notes == []
    assert live.snap_seq == 605 and live.seq == 810
    assert replayed == 205  # only the tail after the snapshot
    assert snapshot.state_hash(recovered) == snapshot.state_hash(live)
    recovered._check()
    # and the venue goes on exactly as the live one would
    cmd = m.NewOrder(account=1, symbol="BTC-PERP", side=m.Side.BUY, qty=5, price=live.instruments["BTC-PERP"].mark)
    assert msgspec.msgpack.encode(recovered.apply(cmd, live.clock + 1)) == msgspec.msgpack.encode(
        Venue.apply(live, cmd, live.clock + 1))


def test_replaying_twice_gives_byte_identical_event_streams(run_dir):
    d, _, live_events = run_dir
    first = [ev for _, ev, _ in replay.replay(d, from_start=True)]
    second = [ev for _, ev, _ in replay.replay(d, from_start=True)]
    assert msgspec.msgpack.encode(first) == msgspec.msgpack.encode(second) == msgspec.msgpack.encode(live_events)
    assert any(isinstance(e, m.FundingRate) for evs in first for e in evs), "an hour per command crosses funding"


def test_verify_checks_the_snapshot_hash(run_dir):
    d, live, _ = run_dir
    checks, notes = replay.verify(d)
    assert notes == [] and [(c.seq, c.ok) for c in checks] == [(605, True)]
    assert checks[0].recorded == journal.load_snapshot(journal.snapshots(d)[0]).state_hash


def test_torn_tail_is_truncated_and_reported(run_dir):
    d, live, _ = run_dir
    last = journal.segments(d)[-1]
    data = last.read_bytes()
    last.write_bytes(data[:-7])  # a crash in the middle of the last record
    recovered, notes, _ = replay.recover(d)
    assert len(notes) == 1 and "torn write" in notes[0] and last.name in notes[0]
    assert recovered.seq == live.seq - 1
    assert len(last.read_bytes()) < len(data) - 7, "the partial record is cut off the file"
    again, notes2, _ = replay.recover(d)
    assert notes2 == [] and again.seq == recovered.seq


def test_a_flipped_byte_mid_file_stops_recovery_naming_file_and_offset(run_dir):
    d, _, _ = run_dir
    seg = journal.segments(d)[-1]
    data = bytearray(seg.read_bytes())
    data[len(data) // 2] ^= 0x5A
    seg.write_bytes(bytes(data))
    with pytest.raises(journal.JournalCorrupt) as info:
        replay.recover(d)
    assert info.value.path == seg and 0 <= info.value.offset < len(data)
    assert seg.read_bytes() == bytes(data), "corruption is never 'repaired' silently"


def test_damage_in_an_older_segment_is_corruption_not_a_torn_tail(run_dir):
    d, _, _ = run_dir
    first = journal.segments(d)[0]
    first.write_bytes(first.read_bytes()[:-3])
    with pytest.raises(journal.JournalCorrupt):
        list(replay.replay(d, from_start=True))


def test_a_damaged_snapshot_is_skipped_for_the_journal(run_dir):
    d, live, _ = run_dir
    (snap,) = journal.snapshots(d)
    snap.write_bytes(b"not msgpack at all")
    recovered, notes, replayed = replay.recover(d)
    assert any("unreadable snapshot" in n for n in notes)
    assert replayed == live.seq and snapshot.state_hash(recovered) == snapshot.state_hash(live)


def test_prune_removes_segments_before_the_snapshot_and_recovery_still_works(run_dir):
    d, live, _ = run_dir
    before = journal.segments(d)
    removed = journal.prune(d)
    assert removed and all(p in before for p in removed)
    recovered, _, _ = replay.recover(d)
    assert snapshot.state_hash(recovered) == snapshot.state_hash(live)


def test_snapshot_restore_keeps_book_priority_and_client_ids(tmp_path):
    v = Venue()
    v.apply(m.Deposit(account=1, asset="USDT", amount=10**6 * USDT))
    v.apply(m.Deposit(account=2, asset="USDT", amount=10**6 * USDT))
    for i in range(3):
        v.apply(m.NewOrder(account=1, symbol="ETH-PERP", side=m.Side.SELL, qty=10, price=300_100, client_order_id=f"a{i}"))
    v2 = snapshot.restore(v.config, snapshot.decode(snapshot.encode(snapshot.capture(v))))
    fills = [e for e in v2.apply(m.NewOrder(account=2, symbol="ETH-PERP", side=m.Side.BUY, qty=15, price=300_100))
             if isinstance(e, m.Fill) and e.account == 1]
    assert [f.client_order_id for f in fills] == ["a0", "a1"], "time priority survives the snapshot"
    rej = v2.apply(m.NewOrder(account=1, symbol="ETH-PERP", side=m.Side.SELL, qty=1, price=300_200, client_order_id="a2"))
    assert isinstance(rej[0], m.Rejected) and rej[0].reason == m.RejectReason.DUPLICATE_CLIENT_ORDER_ID
    # a0 filled: no longer open, yet still taken after the restore (the snapshot keeps the memory)
    rej = v2.apply(m.NewOrder(account=1, symbol="ETH-PERP", side=m.Side.SELL, qty=1, price=300_200, client_order_id="a0"))
    assert isinstance(rej[0], m.Rejected) and rej[0].reason == m.RejectReason.DUPLICATE_CLIENT_ORDER_ID
    assert "no longer open" in rej[0].message


def test_a_snapshot_from_before_the_client_id_memory_loads_and_hashes_as_recorded():
    """``AccountState.client_ids`` came later, with a default: a snapshot
    written without it decodes, restores with nothing remembered, and
    restores to the very hash it was recorded with (recovery re-checks it)."""

    class OldAccountState(msgspec.Struct):  # AccountState as it was
        id: int
        mode: str
        balances: list[tuple[str, int]]
        positions: list[snapshot.PositionState]
        isolated: list[tuple[str, int]]
        level: int
        order_ids: list[int]

    v = Venue()
    v.apply(m.Deposit(account=1, asset="USDT", amount=10**6 * USDT))
    v.apply(m.NewOrder(account=1, symbol="ETH-PERP", side=m.Side.SELL, qty=10, price=300_100, client_order_id="x"))
    state = snapshot.capture(v)
    old = msgspec.structs.replace(state, accounts=[
        OldAccountState(**{f: getattr(a, f) for f in OldAccountState.__struct_fields__}) for a in state.accounts
    ])
    data = msgspec.msgpack.encode(old)
    restored = snapshot.restore(v.config, snapshot.decode(data))
    assert snapshot.state_hash(restored) == hashlib.sha256(data).hexdigest()
    assert restored.accounts[1].client_ids is None and "x" in restored.accounts[1].by_cid  # open: still unique
    restored._check()


def test_replay_cli_prints_verifies_and_writes_events(run_dir, tmp_path, capsys):
    d, live, _ = run_dir
    out = tmp_path / "events.bin"
    assert main(["replay", str(d), "--events", str(out)]) == 0
    assert f"venue at seq {live.seq}" in capsys.readouterr().out
    frames, data, pos = [], out.read_bytes(), 0
    while pos < len(data):
        n = int.from_bytes(data[pos:pos + 4], "little")
        frames.append(msgspec.msgpack.decode(data[pos + 4:pos + 4 + n]))
        pos += 4 + n
    assert [f[0] for f in frames] == list(range(606, 811))  # the tail after the snapshot
    assert main(["replay", str(d), "--verify"]) == 0
    assert "PASS seq 605" in capsys.readouterr().out
    assert main(["replay", str(d), "--from-start", "--until", "3", "--print"]) == 0
    printed = capsys.readouterr().out
    assert printed.count("#") == 3 and "Deposit" in printed
    seg = journal.segments(Path(d))[-1]
    raw = bytearray(seg.read_bytes())
    raw[40] ^= 0xFF
    seg.write_bytes(bytes(raw))
    assert main(["replay", str(d), "--from-start"]) == 3
    assert "corrupt" in capsys.readouterr().err


# ------------------------------------------------- replay / prune as a person runs them


def _snapshot_now(d: Path, v) -> int:
    journal.write_snapshot(d, v.seq, snapshot.state_hash(v), snapshot.encode(snapshot.capture(v)))
    return v.seq


def test_replay_starts_before_a_snapshot_that_ends_the_journal(run_dir, capsys):
    """A server snapshots when it stops: the newest snapshot is the journal's
    end. Replay starts from the previous snapshot instead, and says so."""
    d, live, _ = run_dir
    _snapshot_now(d, live)  # seq 810, the end
    assert main(["replay", str(d)]) == 0
    out = capsys.readouterr().out
    assert out.splitlines()[0] == ("replaying from the snapshot at seq 605: an older snapshot: the newest snapshot "
                                   "(seq 810) is the end of the journal, with nothing to replay after it")
    assert f"replayed 205 commands; venue at seq 810; state hash {snapshot.state_hash(live)}" in out


def test_replay_starts_from_the_journals_start_when_the_only_snapshot_ends_it(run_dir, capsys):
    d, live, _ = run_dir
    (older,) = journal.snapshots(d)
    older.unlink()
    _snapshot_now(d, live)
    assert main(["replay", str(d)]) == 0
    out = capsys.readouterr().out
    assert out.startswith("replaying from the start of the journal (seq 1): the newest snapshot (seq 810) is the "
                          "end of the journal")
    assert f"replayed 810 commands; venue at seq 810; state hash {snapshot.state_hash(live)}" in out
    # --until a snapshot's own seq: nothing would follow it, so from the start too
    assert main(["replay", str(d), "--until", "810", "--from-start"]) == 0
    assert "--from-start" in capsys.readouterr().out.splitlines()[0]


def test_replay_until_a_snapshot_seq_starts_before_it(run_dir, capsys):
    d, live, _ = run_dir
    assert main(["replay", str(d), "--until", "605"]) == 0
    out = capsys.readouterr().out
    assert "the newest snapshot (seq 605) is --until 605 itself" in out.splitlines()[0]
    assert "replayed 605 commands; venue at seq 605" in out


def test_replay_after_prune_to_the_end_is_a_clear_error(run_dir, capsys):
    d, live, _ = run_dir
    _snapshot_now(d, live)
    journal.prune(d)  # keeps the snapshot at 810 and the last segment only
    assert main(["replay", str(d)]) == 2
    err = capsys.readouterr().err
    assert "the journal starts at seq" in err and "not 1 (pruned)" in err
    assert main(["replay", str(d), "--verify"]) == 2
    assert "--verify needs it whole, from seq 1" in capsys.readouterr().err


@pytest.mark.parametrize("command", [["replay"], ["replay", "--verify"], ["replay", "--print"], ["prune"]])
@pytest.mark.parametrize("kind", ["missing", "empty", "file"])
def test_replay_and_prune_refuse_what_is_not_a_data_dir(tmp_path, capsys, command, kind):
    target = tmp_path / "run1"
    if kind == "empty":
        target.mkdir()
    elif kind == "file":
        target.write_text("hello")
    assert main([command[0], str(target), *command[1:]]) == 2
    captured = capsys.readouterr()
    assert captured.out == ""  # never "0 files removed" or a replay of nothing
    expected = {"missing": f"no such data dir: {target}", "empty": f"{target} holds no journal and no snapshot",
                "file": f"{target} is not a directory"}[kind]
    assert captured.err.startswith(f"exchange-sim: {expected}")


def test_prune_says_what_it_did_and_what_it_kept(run_dir, capsys):
    d, _, _ = run_dir
    before = journal.segments(d)
    assert main(["prune", str(d)]) == 0
    out = capsys.readouterr().out
    removed = [line.split()[1] for line in out.splitlines() if line.startswith("removed ")]
    assert removed and set(removed) <= {p.name for p in before}
    assert f"{len(removed)} files removed; the newest snapshot, {journal.snapshots(d)[-1].name}" in out
    assert main(["prune", str(d)]) == 0  # again: nothing left to remove, and it says so
    assert capsys.readouterr().out.startswith("nothing to prune: no journal segment or snapshot in")


def test_prune_and_verify_without_a_snapshot(tmp_path, capsys):
    v = JournaledVenue(tmp_path)
    random_run(v, n=20)
    v.journal.close()
    assert main(["prune", str(tmp_path)]) == 0
    assert capsys.readouterr().out.startswith("nothing to prune: ") and journal.segments(tmp_path)
    # --verify with nothing to compare with is not a pass
    assert main(["replay", str(tmp_path), "--verify"]) == 4
    captured = capsys.readouterr()
    assert "PASS" not in captured.out and "nothing to verify" in captured.err
    # replay itself works, from the start, and says why
    assert main(["replay", str(tmp_path)]) == 0
    assert capsys.readouterr().out.startswith("replaying from the start of the journal (seq 1): no snapshot")


def test_verify_fails_with_both_hashes_when_the_state_differs(run_dir, capsys):
    d, live, _ = run_dir
    (path,) = journal.snapshots(d)
    snap = journal.load_snapshot(path)
    forged = "0" * 64
    path.write_bytes(msgspec.msgpack.encode(msgspec.structs.replace(snap, state_hash=forged)))
    assert main(["replay", str(d), "--verify"]) == 1
    out = capsys.readouterr().out
    assert f"FAIL seq 605: replayed from seq 1 {snap.state_hash}, snapshot {forged}" in out
    assert "FAIL: the replayed state differs from 1 of 1 snapshots (seq 605)" in out
