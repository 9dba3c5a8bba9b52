"""Latency profiles (exchange_sim/server/latency.py): the distributions are
what the config says, seeded, and one session's frames keep their order.
No wall clock here: the delays are drawn and compared as numbers."""

from __future__ import annotations

import random
import statistics

import pytest

from exchange_sim import config as config_mod
from exchange_sim.config import LatencyDist, LatencyProfile
from exchange_sim.server.latency import DelayQueue, SessionLatency, sample_ms

N = 20_000


def _draws(profile: LatencyProfile, seed=1, sid=1, n=N) -> list[float]:
    lat = SessionLatency("p", profile, seed, sid)
    return [lat.entry_due(0.0) for _ in range(n)]  # due times from now=0 are the running max of the draws


def test_constant_uniform_and_lognormal_match_their_configuration():
    """constant 5 ms is 5 ms every time; uniform 25..75 ms has mean 50 and stays in
    range; lognormal median 10 ms, sigma 0.5 has median 10 (±3%) and
    mean 10 x e^(0.5²/2) = 11.33 (±3%)."""
    import random

    rng = random.Random(1)
    assert {sample_ms(LatencyDist(kind="constant", ms=5.0), rng) for _ in range(100)} == {5.0}
    u = [sample_ms(LatencyDist(kind="uniform", ms=25.0, high_ms=75.0), rng) for _ in range(N)]
    assert 25.0 <= min(u) and max(u) <= 75.0
    assert statistics.fmean(u) == pytest.approx(50.0, rel=0.02)
    ln = [sample_ms(LatencyDist(kind="lognormal", ms=10.0, sigma=0.5), rng) for _ in range(N)]
    assert statistics.median(ln) == pytest.approx(10.0, rel=0.03)
    assert statistics.fmean(ln) == pytest.approx(11.33, rel=0.03)


def test_the_shipped_profiles_are_valid_and_named():
    profiles = config_mod.default().server.latency.profiles
    assert {"none", "binance-like", "deribit-like", "uniform-50"} <= set(profiles)
    assert profiles["binance-like"].entry.ms > profiles["deribit-like"].entry.ms


def test_same_seed_same_delays_and_sessions_differ():
    prof = config_mod.default().server.latency.profiles["binance-like"]
    assert _draws(prof, n=50) == _draws(prof, n=50)
    assert _draws(prof, sid=1, n=50) != _draws(prof, sid=2, n=50)
    assert _draws(prof, seed=1, n=50) != _draws(prof, seed=2, n=50)


def test_a_sessions_frames_keep_their_order_under_jitter():
    """Uniform 0..100 ms jitter would reorder frames 1 ms apart; a frame never
    becomes due before the one sent before it (TCP keeps order)."""
    lat = SessionLatency("j", LatencyProfile(entry=LatencyDist(kind="uniform", ms=0.0, high_ms=100.0)), 1, 1)
    q = DelayQueue()
    for i in range(200):
        q.push(lat.entry_due(i / 1000), i)
    assert q.pop_due(10.0) == list(range(200))


def test_unknown_profiles_are_refused_by_name(tmp_path):
    cfg = tmp_path / "typo.toml"
    cfg.write_text('[server.latency]\ndefault = "binanse-like"\n')
    with pytest.raises(ValueError, match="binanse-like"):
        config_mod.load(cfg)
    with pytest.raises(ValueError, match="high_ms"):
        LatencyDist(kind="uniform", ms=10.0, high_ms=5.0)
    with pytest.raises(ValueError, match="gaussian"):
        LatencyDist(kind="gaussian")


def test_the_venue_profiles_draw_the_figures_docs_live_market_md_states():
    """The table in docs/live-market.md: binance-like ~10 ms median round trip,
    entry p99 ~51 ms; deribit-like ~1.5 ms, entry p99 ~3.2 ms."""
    profiles = config_mod.default().server.latency.profiles
    rng = random.Random(7)
    for name, rt, p99 in (("binance-like", 10.0, 51.0), ("deribit-like", 1.5, 3.2)):
        prof = profiles[name]
        entry = sorted(sample_ms(prof.entry, rng) for _ in range(N))
        trips = [e + sample_ms(prof.market_data, rng) for e in entry]
        assert statistics.median(trips) == pytest.approx(rt, rel=0.1), name
        assert entry[int(0.99 * N)] == pytest.approx(p99, rel=0.1), name
