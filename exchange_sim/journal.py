"""Write-ahead journal: every command, before it is applied.

Record layout (little-endian)::

    +----------------+----------------+------------------------------+
    | length: u32    | crc32: u32     | payload: `length` bytes      |
    +----------------+----------------+------------------------------+
    payload = msgpack [seq, ts, command]   (command: a protocol Struct)

``crc32`` covers the payload. Records live in segment files
``journal-<first seq, 16 digits>.log``; a segment rotates once it passes
``segment_bytes``. Snapshots (``snapshot-<seq>.msgpack``, written atomically:
temp file, fsync, rename, fsync of the directory) carry the state they reflect
and its hash.

Recovery rules (the same for the server's restart and for offline replay):

- a damaged record at the very end of the **last** segment — a length that
  runs past the end of the file, or a CRC mismatch with nothing after it — is
  a torn write from a crash: it is reported and truncated away;
- a damaged record anywhere else (a CRC mismatch followed by more data, or
  in an older segment) is corruption: recovery stops with
  :class:`JournalCorrupt` naming the file and byte offset, and waits for an
  operator; it never guesses or "repairs" silently.

Durability: ``fsync`` syncs every record; ``group`` (the default) buffers
records and syncs them together in :meth:`Journal.commit`, which the server
calls before it sends the replies to those commands, so "acknowledged"
always means "on disk".
"""

from __future__ import annotations

import os
import struct
import zlib
from pathlib import Path

import msgspec

from protocol.messages import Command

_HEADER = struct.Struct("<II")
MAX_RECORD = 16 * 1024 * 1024


class Record(msgspec.Struct, array_like=True):
    seq: int
    ts: int
    command: Command


_encoder = msgspec.msgpack.Encoder()
_decoder = msgspec.msgpack.Decoder(Record)


class JournalCorrupt(Exception):
    """A damaged record that is not a torn tail. Carries ``path`` and ``offset``."""

    def __init__(self, path: Path, offset: int, why: str):
        super().__init__(f"journal {path} is corrupt at byte {offset}: {why}")
        self.path = path
        self.offset = offset


def encode_record(seq: int, ts: int, command) -> bytes:
    payload = _encoder.encode(Record(seq, ts, command))
    return _HEADER.pack(len(payload), zlib.crc32(payload)) + payload


def segment_name(first_seq: int) -> str:
    return f"journal-{first_seq:016d}.log"


def segments(directory: Path) -> list[Path]:
    return sorted(directory.glob("journal-*.log"))


def scan(path: Path, last: bool) -> tuple[list[tuple[int, Record]], int, str | None]:
    """Read one segment. Returns (records with offsets, valid length, torn-tail note).

    Raises :class:`JournalCorrupt` for damage that is not a torn tail of the
    last segment.
    """
    data = path.read_bytes()
    out = []
    pos = 0
    end = len(data)
    while pos < end:
        if end - pos < _HEADER.size:
            return _damaged(path, last, data, out, pos, "a partial record header")
        length, crc = _HEADER.unpack_from(data, pos)
        body = pos + _HEADER.size
        if length > MAX_RECORD or body + length > end:
            return _damaged(path, last, data, out, pos, f"a record of length {length} runs past the end")
        payload = data[body : body + length]
        if zlib.crc32(payload) != crc:
            return _damaged(path, last, data, out, pos, "a CRC mismatch")
        try:
            rec = _decoder.decode(payload)
        except msgspec.DecodeError as exc:
            raise JournalCorrupt(path, pos, f"undecodable record ({exc})") from None
        out.append((pos, rec))
        pos = body + length
    return out, pos, None


def _damaged(path: Path, last: bool, data: bytes, out, pos: int, what: str):
    """A torn tail only if nothing valid follows in the last segment."""
    if last and not _valid_record_after(data, pos + 1):
        return out, pos, f"{path.name}: torn write at byte {pos} ({what}); truncated"
    raise JournalCorrupt(path, pos, f"{what}, with more data after it" if last else what)


def _valid_record_after(data: bytes, start: int, limit: int = 4 * 1024 * 1024) -> bool:
    """Is there a well-formed record starting anywhere in data[start:start+limit]?
    (Only run when damage was found, to tell a torn tail from corruption.)"""
    end = len(data)
    for off in range(start, min(end - _HEADER.size, start + limit) + 1):
        length, crc = _HEADER.unpack_from(data, off)
        body = off + _HEADER.size
        if 0 < length <= MAX_RECORD and body + length <= end and zlib.crc32(data[body : body + length]) == crc:
            return True
    return False


def read(directory: Path, after_seq: int = 0, repair: bool = False) -> tuple[list[Record], list[str]]:
    """Every record with ``seq > after_seq``, in order, and notes on what was
    dropped. With ``repair`` the torn tail is truncated from the file."""
    notes = []
    records: list[Record] = []
    segs = segments(directory)
    for i, path in enumerate(segs):
        recs, valid, note = scan(path, last=(i == len(segs) - 1))
        if note:
            notes.append(note)
            if repair:
                with open(path, "r+b") as f:
                    f.truncate(valid)
                    f.flush()
                    os.fsync(f.fileno())
        for offset, rec in recs:
            if rec.seq > after_seq:
                if records and rec.seq != records[-1].seq + 1:
                    raise JournalCorrupt(path, offset, f"sequence jumps from {records[-1].seq} to {rec.seq}")
                records.append(rec)
    return records, notes


class Journal:
    """Appends records to the current segment; see the module docstring."""

    def __init__(self, directory: str | Path, policy: str = "group", segment_bytes: int = 64 * 1024 * 1024):
        if policy not in ("group", "fsync"):
            raise ValueError("journal policy must be 'group' or 'fsync'")
        self.dir = Path(directory)
        self.dir.mkdir(parents=True, exist_ok=True)
        self.policy = policy
        self.segment_bytes = segment_bytes
        self._buf: list[bytes] = []
        self._file = None
        self._size = 0
        segs = segments(self.dir)
        if segs:
            self._open(segs[-1])

    def _open(self, path: Path) -> None:
        if self._file is not None:
            self._file.close()
        self._file = open(path, "ab")
        self._size = self._file.tell()
        _fsync_dir(self.dir)

    def append(self, seq: int, ts: int, command) -> None:
        """Journal one command (before it is applied)."""
        if self._file is None or self._size >= self.segment_bytes:
            self.commit()
            self._open(self.dir / segment_name(seq))
        rec = encode_record(seq, ts, command)
        self._size += len(rec)
        if self.policy == "fsync":
            self._file.write(rec)
            self._file.flush()
            _sync(self._file.fileno())
        else:
            self._buf.append(rec)

    @property
    def pending(self) -> int:
        return len(self._buf)

    def commit(self) -> None:
        """Write and fsync every buffered record (group commit)."""
        if self._buf and self._file is not None:
            self._file.write(b"".join(self._buf))
            self._buf.clear()
            self._file.flush()
            _sync(self._file.fileno())

    def close(self) -> None:
        self.commit()
        if self._file is not None:
            self._file.close()
            self._file = None


# fdatasync skips the inode's timestamps; the data and the file size it needs
# to read them back are still synced (POSIX), which is all recovery relies on
_sync = getattr(os, "fdatasync", os.fsync)


def _fsync_dir(directory: Path) -> None:
    fd = os.open(directory, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


# --------------------------------------------------------------- snapshots


def snapshot_name(seq: int) -> str:
    return f"snapshot-{seq:016d}.msgpack"


class SnapshotFile(msgspec.Struct):
    seq: int
    state_hash: str
    state: bytes  # exchange_sim.snapshot.encode(VenueState)


def write_snapshot(directory: Path, seq: int, state_hash: str, state: bytes) -> Path:
    """Atomically write a snapshot: temp file, fsync, rename, fsync dir."""
    path = directory / snapshot_name(seq)
    tmp = path.with_suffix(".tmp")
    with open(tmp, "wb") as f:
        f.write(msgspec.msgpack.encode(SnapshotFile(seq=seq, state_hash=state_hash, state=state)))
        f.flush()
        os.fsync(f.fileno())
    os.replace(tmp, path)
    _fsync_dir(directory)
    return path


def snapshots(directory: Path) -> list[Path]:
    return sorted(directory.glob("snapshot-*.msgpack"))


def load_snapshot(path: Path) -> SnapshotFile:
    """Raises ``msgspec.DecodeError`` for a damaged file."""
    return msgspec.msgpack.decode(path.read_bytes(), type=SnapshotFile)


def newest_snapshot(directory: Path, notes: list[str]) -> SnapshotFile | None:
    """The newest snapshot that decodes; damaged ones are skipped with a note."""
    for path in reversed(snapshots(directory)):
        try:
            return load_snapshot(path)
        except (msgspec.DecodeError, OSError) as exc:
            notes.append(f"{path.name}: unreadable snapshot skipped ({exc})")
    return None


def prune(directory: Path) -> list[Path]:
    """Delete journal segments wholly before the newest snapshot, and older
    snapshots. Returns what was removed."""
    snaps = snapshots(directory)
    if not snaps:
        return []
    newest = load_snapshot(snaps[-1]).seq
    removed = []
    segs = segments(directory)
    for path, nxt in zip(segs, segs[1:]):
        # a segment is wholly covered if the next one starts at or before newest + 1
        if int(nxt.stem.split("-")[1]) <= newest + 1:
            path.unlink()
            removed.append(path)
    for path in snaps[:-1]:
        path.unlink()
        removed.append(path)
    return removed


__all__ = [
    "Journal", "JournalCorrupt", "Record", "read", "scan", "segments", "write_snapshot", "snapshots",
    "load_snapshot", "newest_snapshot", "prune", "encode_record",
]
