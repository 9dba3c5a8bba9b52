"""Recovery and offline replay: snapshot + journal tail → the same venue.

A data directory holds ``config.toml`` (the config the venue ran with), the
journal segments and the snapshots (:mod:`exchange_sim.journal`).

- :func:`recover` (server restart): newest readable snapshot, then every
  journaled command after it, re-applied with its recorded venue time. A torn
  tail is truncated and reported; corruption raises ``JournalCorrupt``.
- :func:`replay` (``exchange-sim replay``): the same, offline, optionally from
  the journal alone, stopping at a sequence number, yielding each command's
  events — a lesson or a liquidation cascade can be stepped through one
  command at a time. Replaying twice gives byte-identical event streams.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import NamedTuple

import msgspec

from exchange_sim import config as config_mod
from exchange_sim import journal, snapshot
from exchange_sim.config import Config
from exchange_sim.venue import Venue


def data_config(directory: Path) -> Config:
    """The config a data directory was written with (default if none saved)."""
    path = Path(directory) / "config.toml"
    return config_mod.load(path) if path.exists() else config_mod.default()


def from_snapshot(cfg: Config, snap: journal.SnapshotFile) -> Venue:
    venue = snapshot.restore(cfg, snapshot.decode(snap.state))
    got = snapshot.state_hash(venue)
    if got != snap.state_hash:
        raise ValueError(f"snapshot at seq {snap.seq} restores to hash {got}, recorded {snap.state_hash}")
    return venue


def recover(directory: str | Path, cfg: Config | None = None, repair: bool = True) -> tuple[Venue, list[str], int]:
    """Rebuild the venue from a data dir. Returns (venue, notes, commands replayed)."""
    directory = Path(directory)
    cfg = cfg if cfg is not None else data_config(directory)
    notes: list[str] = []
    snap = journal.newest_snapshot(directory, notes)
    venue = from_snapshot(cfg, snap) if snap is not None else Venue(cfg)
    records, torn = journal.read(directory, after_seq=venue.seq, repair=repair)
    notes.extend(torn)
    for rec in records:
        _step(venue, rec)
    return venue, notes, len(records)


def _step(venue: Venue, rec: journal.Record) -> list:
    if rec.seq != venue.seq + 1:
        raise ValueError(f"journal record {rec.seq} does not follow the venue's seq {venue.seq}")
    return venue.apply(rec.command, rec.ts)


def require_data_dir(directory: str | Path) -> Path:
    """``directory`` as a Path if it is a data dir (journal segments or
    snapshots in it); else ``ValueError`` saying what is wrong with it."""
    d = Path(directory)
    if not d.exists():
        raise ValueError(f"no such data dir: {d}")
    if not d.is_dir():
        raise ValueError(f"{d} is not a directory")
    if not journal.segments(d) and not journal.snapshots(d):
        raise ValueError(f"{d} holds no journal and no snapshot: not a data dir written by "
                         "`exchange-sim serve --data-dir` or `exchange-sim demo --data-dir`")
    return d


class Start(NamedTuple):
    """Where a replay starts: after ``seq`` (0 = the journal's first
    command), and why, in one line for a person."""

    seq: int
    why: str


def _journal_span(directory: Path) -> tuple[int, int]:
    """(first, last) seq in the journal; (0, 0) if it holds no record.
    Reads the last non-empty segment only."""
    segs = journal.segments(directory)
    if not segs:
        return 0, 0
    first = int(segs[0].stem.split("-")[1])
    for i in range(len(segs) - 1, -1, -1):
        recs, _, _ = journal.scan(segs[i], last=(i == len(segs) - 1))
        if recs:
            return first, recs[-1][1].seq
    return 0, 0


def start_point(directory: str | Path, until: int | None = None, from_start: bool = False,
                cfg: Config | None = None) -> tuple[Venue, Start]:
    """The venue a replay starts from, and where and why.

    The newest snapshot at or before ``until`` that still has journaled
    commands after it; a server writes a snapshot when it stops, so the
    newest one is often the journal's very end, and replaying from it would
    show nothing: then an older snapshot, or the journal from its start.
    ``ValueError`` when nothing can be replayed (a pruned journal whose
    only snapshot is its end)."""
    directory = require_data_dir(directory)
    cfg = cfg if cfg is not None else data_config(directory)
    first, last = _journal_span(directory)
    if last == 0:
        raise ValueError(f"{directory} holds no journaled command to replay")
    end = last if until is None else min(last, until)
    if from_start:
        return _from_start(cfg, directory, first, "--from-start: the snapshots are ignored")
    skipped: list[str] = []
    newest = None  # a snapshot at or past the end: nothing would follow it

    def at_end(seq: int) -> str:
        what = "the end of the journal" if seq >= last else f"--until {until} itself"
        return f"the newest snapshot (seq {seq}) is {what}, with nothing to replay after it"

    for path in reversed(journal.snapshots(directory)):
        try:
            snap = journal.load_snapshot(path)
        except (msgspec.DecodeError, OSError):
            skipped.append(f"{path.name} is unreadable")
            continue
        if until is not None and snap.seq > until:
            continue
        if snap.seq >= end:
            newest = snap.seq if newest is None else newest
            continue
        if snap.seq + 1 < first:  # the journal before it was pruned: no older snapshot helps either
            break
        why = "the newest snapshot" if newest is None else f"an older snapshot: {at_end(newest)}"
        return from_snapshot(cfg, snap), Start(snap.seq, "; ".join([why, *skipped]))
    if newest is not None:
        why = at_end(newest)
    elif journal.snapshots(directory) and not skipped:
        why = f"no snapshot at or before --until {until}"
    else:
        why = "no snapshot"
    return _from_start(cfg, directory, first, "; ".join([why, *skipped]))


def _from_start(cfg: Config, directory: Path, first: int, why: str) -> tuple[Venue, Start]:
    if first != 1:
        raise ValueError(f"{directory}: the journal starts at seq {first}, not 1 (pruned), and no snapshot "
                         f"before its end can start a replay ({why})")
    return Venue(cfg), Start(0, why)


def describe(start: Start) -> str:
    """The line ``exchange-sim replay`` prints before it replays."""
    where = "the start of the journal (seq 1)" if start.seq == 0 else f"the snapshot at seq {start.seq}"
    return f"replaying from {where}: {start.why}"


def replay(
    directory: str | Path, until: int | None = None, from_start: bool = False, cfg: Config | None = None,
    start: tuple[Venue, Start] | None = None,
) -> Iterator[tuple[journal.Record, list, Venue]]:
    """Yield (record, its events, the venue after it) for each journaled command.

    Starts where :func:`start_point` says (pass its result as ``start`` to
    know where beforehand). Never modifies the data dir.
    """
    directory = Path(directory)
    venue, _ = start if start is not None else start_point(directory, until, from_start, cfg)
    records, _ = journal.read(directory, after_seq=venue.seq, repair=False)
    for rec in records:
        if until is not None and rec.seq > until:
            return
        yield rec, _step(venue, rec), venue


class Check(NamedTuple):
    """One snapshot checked by :func:`verify`."""

    seq: int
    recorded: str  # the snapshot's state hash
    replayed: str  # the hash of the venue rebuilt from the journal alone, at that seq

    @property
    def ok(self) -> bool:
        return self.recorded == self.replayed


def verify(directory: str | Path, cfg: Config | None = None) -> tuple[list[Check], list[str]]:
    """Replay the journal alone, from seq 1, and compare the state hash at
    every snapshot's seq with the recorded one. Returns the checks (one per
    snapshot the journal reaches, oldest first) and notes on snapshots that
    could not be checked (unreadable, or past the journal's end)."""
    directory = require_data_dir(directory)
    cfg = cfg if cfg is not None else data_config(directory)
    expected: dict[int, str] = {}
    notes: list[str] = []
    for path in journal.snapshots(directory):
        try:
            snap = journal.load_snapshot(path)
        except (msgspec.DecodeError, OSError) as exc:
            notes.append(f"{path.name}: unreadable, not checked ({exc})")
            continue
        expected[snap.seq] = snap.state_hash
    checks = []
    if expected:
        first, last = _journal_span(directory)
        if first not in (0, 1):  # 0: no journal at all, so every snapshot is past its end
            raise ValueError(f"{directory}: the journal starts at seq {first}, not 1 (pruned): --verify "
                             "needs it whole, from seq 1")
        for rec, _, venue in replay(directory, start=(Venue(cfg), Start(0, "--verify: the journal alone"))):
            if rec.seq in expected:
                checks.append(Check(rec.seq, expected[rec.seq], snapshot.state_hash(venue)))
        for seq in sorted(expected):
            if seq > last:
                notes.append(f"snapshot at seq {seq}: past the journal's end (seq {last}), not checked")
    return checks, notes
