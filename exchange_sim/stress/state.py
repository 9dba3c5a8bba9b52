"""The state a stress run starts from, as bytes every worker can restore.

Sources: a journaled data dir (its newest snapshot, or the state at a given
sequence number: the newest snapshot at or before it plus the journal up to
it, as ``exchange-sim replay --until`` rebuilds it), an ``explain``-style
scenario file (:mod:`exchange_sim.scenario`), a live :class:`Venue`, or a
generated venue (:func:`generated`).

The copy of a state is ``snapshot.encode(snapshot.capture(venue))``; each
scenario runs on ``snapshot.restore(config, snapshot.decode(bytes))`` — the
snapshot module's public capture/restore pair, the same the journal's
recovery uses, so a scenario starts from exactly the state (the tests
compare state hashes) and never touches the original.
"""

from __future__ import annotations

from decimal import Decimal
from pathlib import Path

import msgspec
import numpy as np

from exchange_sim import config as config_mod
from exchange_sim import journal, replay, snapshot
from exchange_sim.config import Config
from exchange_sim.stress import first_order
from exchange_sim.venue import Venue
from protocol.messages import (
    Deposit,
    NewOrder,
    Rejected,
    SetMarginMode,
    Side,
)


class Prepared(msgspec.Struct, kw_only=True):
    """Everything a worker needs, shipped once per worker."""

    config: Config
    state: bytes  # snapshot.encode(VenueState)
    #: accounts whose resting orders follow the index (re-quoted at each tick)
    makers: list[int] = []
    #: the largest index move of one tick; bigger steps are split
    max_tick: float = 0.05
    label: str = ""


def from_venue(venue: Venue, makers: list[int] | None = None, max_tick: float = 0.05, label: str = "") -> Prepared:
    return Prepared(config=venue.config, state=snapshot.encode(snapshot.capture(venue)), makers=sorted(makers or []),
                    max_tick=max_tick, label=label)


def from_data_dir(directory: str | Path, at: int | None = None) -> tuple[Venue, str]:
    """The venue of a data dir: its newest snapshot, or the state at ``at``.
    ValueError with a plain reason when there is no snapshot, ``at`` is
    beyond the journal or the journal is corrupt."""
    try:
        return _from_data_dir(Path(directory), at)
    except journal.JournalCorrupt as exc:
        raise ValueError(f"cannot read the journal of {directory}: {exc}") from None


def _from_data_dir(directory: Path, at: int | None) -> tuple[Venue, str]:
    if not directory.is_dir():
        raise ValueError(f"data dir {directory} does not exist or is not a directory")
    cfg = replay.data_config(directory)
    if at is None:
        notes: list[str] = []
        snap = journal.newest_snapshot(directory, notes)
        if snap is None:
            why = f" ({'; '.join(notes)})" if notes else ""
            raise ValueError(f"{directory} holds no readable snapshot{why}: a data dir written by "
                             "`exchange-sim serve --data-dir` gets one every [journal] snapshot_every commands; "
                             "use --at SEQ to rebuild the state from the journal instead")
        return replay.from_snapshot(cfg, snap), f"{directory} snapshot at seq {snap.seq}"
    if at < 0:
        raise ValueError(f"--at {at}: a sequence number is 0 or more")
    records, _ = journal.read(directory, repair=False)
    last = records[-1].seq if records else 0
    snaps = [journal.load_snapshot(p).seq for p in journal.snapshots(directory)]
    last = max([last, *snaps])
    if at > last:
        raise ValueError(f"--at {at} is beyond the journal of {directory}: its last command is seq {last}")
    venue = None
    for _, _, venue in replay.replay(directory, until=at, cfg=cfg):
        pass
    if venue is None:  # a snapshot exactly at `at`, or nothing to replay
        for path in reversed(journal.snapshots(directory)):
            snap = journal.load_snapshot(path)
            if snap.seq <= at:
                venue = replay.from_snapshot(cfg, snap)
                break
        else:
            venue = Venue(cfg)
    reached = snapshot.capture(venue).seq
    if reached != at:
        raise ValueError(f"--at {at}: the journal of {directory} does not reach seq {at} (it stops at {reached})")
    return venue, f"{directory} at seq {at}"


def from_scenario_file(path: str | Path, cfg: Config | None = None) -> Venue:
    """The venue ``exchange-sim explain`` builds from a scenario TOML: one
    account and the house that traded its positions."""
    from exchange_sim import scenario

    cfg = cfg if cfg is not None else config_mod.default()
    return scenario.build(cfg, scenario.load(path))


# -------------------------------------------------------------- generated

MAKER = 1
MAKER_USDT = 1_000_000_000  # whole USDT: the market maker never runs out
LEVELS = 20  # price levels per side per symbol
SPACING = 0.0025  # 0.25% between levels, the first at 0.05% from mark
LEVEL_USD = 250_000  # notional per level


def generated_config(insurance: str | None = None, base: Config | None = None) -> Config:
    """The default config with room for the maker's ladders and, optionally,
    another insurance fund seed (whole USDT)."""
    cfg = base if base is not None else config_mod.default()
    cfg = msgspec.structs.replace(cfg, venue=msgspec.structs.replace(cfg.venue, max_open_orders=10_000))
    if insurance is not None:
        if Decimal(insurance) < 0:
            raise ValueError(f"--insurance {insurance}: the fund's seed is 0 or more USDT")
        cfg = msgspec.structs.replace(cfg, liquidation=msgspec.structs.replace(cfg.liquidation,
                                                                               insurance_seed=str(insurance)))
    return cfg


def generated(n: int, seed: int, cfg: Config | None = None, level_usd: float = LEVEL_USD) -> Venue:
    """A venue with ``n`` traders of the :func:`first_order.draw` law (ids
    10..) and a market maker (account 1, $1B USDT) quoting 20 levels a side,
    0.25% apart, ``level_usd`` ($250k) each, on BTC-, ETH- and SOL-PERP. Every account and
    position is made with ``Venue.apply``: deposits, margin mode, then each
    pair's short rests a post-only order at mark that its long takes."""
    if n < 2 or n > 200_000:
        raise ValueError(f"--accounts {n}: between 2 and 200000 (the first-order sweep takes more: "
                         "benchmarks/bench_stress.py)")
    cfg = cfg if cfg is not None else generated_config()
    v = Venue(cfg)
    units = {a.name: 10**a.decimals for a in cfg.assets}
    index = {name: e8 for name, e8 in snapshot.capture(v).index}
    _ok(v.apply(Deposit(account=MAKER, asset="USDT", amount=MAKER_USDT * units["USDT"])))
    pop = first_order.synthetic(cfg, n, seed)
    d = first_order.draw(n, seed)
    meta = pop.meta
    for r in range(n):
        acct = int(pop.ids[r])
        for col, whole in enumerate(pop.bal[r]):
            if whole > 0:
                asset = meta.assets[col]
                _ok(v.apply(Deposit(account=acct, asset=asset, amount=int(whole * units[asset]))))
        if d["portfolio"][r]:
            _ok(v.apply(SetMarginMode(account=acct, mode="portfolio")))
    for r in range(0, n - 1, 2):
        s = int(np.flatnonzero(pop.qty[r])[0])
        sym, lots = meta.symbols[s], int(pop.qty[r, s])
        mark = int(pop.cost[r, s] // lots)
        long_id, short_id = int(pop.ids[r]), int(pop.ids[r + 1])
        _ok(v.apply(NewOrder(account=short_id, symbol=sym, side=Side.SELL, qty=lots, price=mark, tif="post_only")))
        _ok(v.apply(NewOrder(account=long_id, symbol=sym, side=Side.BUY, qty=lots, price=mark, tif="ioc")))
    for sym in first_order.SYMBOLS:
        s = meta.symbols.index(sym)
        tick = int(meta.tick_e8[s])
        mark = max(1, (index[cfg.instruments[s].underlying] + tick // 2) // tick)
        lot_usd = mark * float(meta.usd_per[s])
        size = max(1, round(level_usd / lot_usd))
        for k in range(LEVELS):
            off = 0.0005 + k * SPACING
            for side, price in ((Side.BUY, round(mark * (1 - off))), (Side.SELL, round(mark * (1 + off)))):
                _ok(v.apply(NewOrder(account=MAKER, symbol=sym, side=side, qty=size, price=price, tif="post_only")))
    return v


def _ok(events: list) -> None:
    if events and isinstance(events[0], Rejected):
        raise RuntimeError(f"building the generated venue: {events[0].message}")


def decode_state(prep: Prepared):
    """The :class:`exchange_sim.snapshot.VenueState` inside ``prep``."""
    return snapshot.decode(prep.state)


def assets_priced(prep: Prepared) -> set[str]:
    """Assets a scenario may move: priced, and not the settlement asset."""
    st = snapshot.decode(prep.state)
    settle = prep.config.venue.settlement_asset
    return {name for name, e8 in st.index if e8 > 0 and name != settle}


__all__ = ["Prepared", "from_venue", "from_data_dir", "from_scenario_file", "generated", "generated_config",
           "assets_priced", "decode_state"]
