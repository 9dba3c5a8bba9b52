"""Per-session latency: delays applied by the server, outside the core.

A session with a latency profile (``[server.latency]`` in the config; chosen
per API key or per ``Login(latency=...)``) has two delays, each drawn per
frame from its distribution (constant, uniform, lognormal; ms):

- **entry** — a frame it sends waits that long before the server handles it,
  so its commands reach the sequencer (and the journal) when they would have
  on a real venue: a slow session's order is sequenced after a fast
  session's order sent later;
- **market data** — everything the server sends it (replies, pushes,
  snapshots, heartbeats) waits that long, after the venue.

The ack a client measures is the sum of both, plus the server's own time.
Frames of one session keep their order (TCP does): a draw that would put a
frame before its predecessor waits for it instead. Draws come from
``random.Random`` seeded with ``(seed, session number)``, so a server that
sees the same sessions draws the same delays; the core never sees a delay,
only the order in which commands entered it, which the journal records.

Not delayed: the PUB market-data socket (it is shared by every subscriber and
tied to no session).
"""

from __future__ import annotations

import heapq
import math
import random

from exchange_sim.config import LatencyDist, LatencyProfile

MAX_S = 10.0  # no single delay beyond this (a config bound too)


def sample_ms(dist: LatencyDist, rng: random.Random) -> float:
    """One delay in milliseconds from ``dist``."""
    kind = dist.kind
    if kind == "constant":
        return dist.ms
    if kind == "uniform":
        return rng.uniform(dist.ms, dist.high_ms)
    return dist.ms * math.exp(rng.gauss(0.0, dist.sigma)) if dist.ms else 0.0  # lognormal, median ms


class SessionLatency:
    """The delays of one session (see the module docstring)."""

    __slots__ = ("name", "profile", "rng", "entry_on", "md_on", "last_in", "last_out")

    def __init__(self, name: str, profile: LatencyProfile, seed: int, sid: int):
        self.name = name
        self.profile = profile
        self.rng = random.Random(f"{seed}:{sid}")
        self.entry_on = profile.entry.ms > 0 or profile.entry.high_ms > 0
        self.md_on = profile.market_data.ms > 0 or profile.market_data.high_ms > 0
        self.last_in = 0.0  # due time of this session's last delayed inbound frame
        self.last_out = 0.0

    def entry_due(self, now: float) -> float:
        due = max(now + min(MAX_S, sample_ms(self.profile.entry, self.rng) / 1000), self.last_in)
        self.last_in = due
        return due

    def out_due(self, now: float) -> float:
        due = max(now + min(MAX_S, sample_ms(self.profile.market_data, self.rng) / 1000), self.last_out)
        self.last_out = due
        return due


class DelayQueue:
    """Frames waiting out their delay, in due order (ties: arrival order)."""

    __slots__ = ("_heap", "_n")

    def __init__(self):
        self._heap: list = []
        self._n = 0

    def __len__(self) -> int:
        return len(self._heap)

    def push(self, due: float, item) -> None:
        self._n += 1
        heapq.heappush(self._heap, (due, self._n, item))

    def next_due(self) -> float | None:
        return self._heap[0][0] if self._heap else None

    def pop_due(self, now: float) -> list:
        """Every item due by ``now``, in order."""
        out = []
        heap = self._heap
        while heap and heap[0][0] <= now:
            out.append(heapq.heappop(heap)[2])
        return out
