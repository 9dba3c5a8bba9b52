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


def replay(
    directory: str | Path, until: int | None = None, from_start: bool = False, cfg: Config | None = None
) -> Iterator[tuple[journal.Record, list, Venue]]:
    """Yield (record, its events, the venue after it) for each journaled command.

    Starts from the newest snapshot at or before ``until`` unless
    ``from_start`` (journal alone). Never modifies the data dir.
    """
    directory = Path(directory)
    cfg = cfg if cfg is not None else data_config(directory)
    venue = Venue(cfg)
    if not from_start:
        for path in reversed(journal.snapshots(directory)):
            snap = journal.load_snapshot(path)
            if until is None or snap.seq <= until:
                venue = from_snapshot(cfg, snap)
                break
    records, _ = journal.read(directory, after_seq=venue.seq, repair=False)
    for rec in records:
        if until is not None and rec.seq > until:
            return
        yield rec, _step(venue, rec), venue


def verify(directory: str | Path, cfg: Config | None = None) -> list[tuple[int, bool]]:
    """Replay the journal alone and compare the state hash at every snapshot's
    seq with the recorded one. Returns (seq, matched) per snapshot reached."""
    directory = Path(directory)
    expected = {}
    for path in journal.snapshots(directory):
        snap = journal.load_snapshot(path)
        expected[snap.seq] = snap.state_hash
    results = []
    venue = None
    for rec, _, venue in replay(directory, from_start=True, cfg=cfg):
        if rec.seq in expected:
            results.append((rec.seq, snapshot.state_hash(venue) == expected[rec.seq]))
    return results
