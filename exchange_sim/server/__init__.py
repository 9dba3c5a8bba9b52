"""exchange-sim over ZeroMQ: ``exchange-sim serve``.

- :mod:`exchange_sim.server.loop` — the socket loop and the one door into the
  core (:meth:`Server.execute`);
- :mod:`exchange_sim.server.sessions` — auth, permissions, rate limits,
  idempotent client order ids;
- :mod:`exchange_sim.server.routing` — which event goes to whom, PUB topics,
  decode errors as typed rejects.

The wire contract is :mod:`protocol.messages` plus :mod:`protocol.session`;
the Python clients are in :mod:`clients`. Design record:
``docs/adr/0002-server-loop.md``.
"""

from __future__ import annotations

import logging
import sys
import time
from pathlib import Path
from typing import TextIO

from exchange_sim.config import Config
from exchange_sim.server.loop import Server

__all__ = ["Server", "make_feed", "run"]


def make_feed(config: Config, venue, kind: str | None = None, csv_path: str | None = None,
              seed: int | None = None, speed: float | None = None):
    """The feed the config (or the command line, which wins) asks for, or None."""
    from exchange_sim.feed import CsvFeed, RandomWalkFeed

    f = config.server.feed
    kind = (kind or f.kind).replace("-", "_")
    speed = f.speed if speed is None else speed
    if kind == "none":
        return None
    if kind == "random_walk":
        start = {name: a.index for name, a in venue.assets.items() if a.index}
        return RandomWalkFeed(start, dict(f.volatility), seed=f.seed if seed is None else seed,
                              interval_s=f.interval_ms / 1000, speed=speed)
    if kind == "csv":
        path = csv_path or f.csv_path
        if not path:
            raise ValueError("the csv feed needs a path: --feed-csv PATH or server.feed.csv_path")
        return CsvFeed(path, speed=speed, loop=f.csv_loop, known_assets=set(venue.assets))
    raise ValueError(f"unknown feed {kind!r}: none, random-walk or csv")


def open_data_dir(directory: str | Path, config: Config, config_text: str, out: TextIO):
    """Recover the venue kept in ``directory`` (or start one there).

    The data dir keeps the config it was created with (``config.toml``): a
    journal only replays exactly under the config that wrote it, so a later
    ``--config`` is refused if it differs. Returns (config, venue, journal,
    fresh) where ``fresh`` means nothing was recovered.
    """
    from exchange_sim import config as config_mod
    from exchange_sim import replay
    from exchange_sim.journal import Journal

    d = Path(directory)
    d.mkdir(parents=True, exist_ok=True)
    saved = d / "config.toml"
    if saved.exists():
        kept = config_mod.load(saved)
        if config_text and kept != config:
            raise ValueError(f"{d} was created with another config ({saved}); start it with the --config "
                             "(and --liquidity / --replay) it was created with, or use a new data dir")
        config = kept
    else:
        saved.write_text(config_text, encoding="utf-8")
    started = time.monotonic()
    venue, notes, replayed = replay.recover(d, config)
    for note in notes:
        print(f"recovery: {note}", file=out)
    fresh = venue.seq == 0
    if not fresh:
        print(f"recovered seq {venue.seq} ({replayed} journaled commands replayed) "
              f"in {time.monotonic() - started:.2f}s", file=out)
    j = config.journal
    return config, venue, Journal(d, policy=j.policy, segment_bytes=j.segment_bytes), fresh


def run(config: Config, *, orders: str | None = None, market_data: str | None = None,
        feed: str | None = None, feed_csv: str | None = None, seed: int | None = None,
        speed: float | None = None, duration: float | None = None, out: TextIO = sys.stdout,
        data_dir: str | None = None, config_text: str = "", liquidity: bool = False,
        replay: str | None = None) -> int:
    """Build, bind, announce and serve; return an exit status.

    With ``data_dir`` every command is journaled before it is applied, replies
    leave only once their records are on disk, snapshots are written every
    ``journal.snapshot_every`` commands and at shutdown, and a restart
    recovers the state exactly (:mod:`exchange_sim.replay`).

    With ``replay`` (a file or directory of recorded CSVs) the recorded index,
    mark and book drive the venue at ``speed`` (:mod:`exchange_sim.replay_market`).
    With ``liquidity`` the house agents of ``config.liquidity`` trade on the
    venue (:mod:`exchange_sim.liquidity`; the config should come from
    :func:`exchange_sim.liquidity.with_liquidity`, which sets the grace).
    """
    kind = (feed or ("csv" if feed_csv else None) or config.server.feed.kind).replace("-", "_")
    if replay is not None and kind != "none":
        # a wall-clock feed would put wall-clock index moves into a journal in data time
        raise ValueError(f"--replay and an index feed ({kind}, from --feed or server.feed.kind): choose one; "
                         "the recorded data is the index of a replay")
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s: %(message)s",
                        stream=sys.stderr)
    venue = journal = None
    fresh = True
    if data_dir is not None:
        config, venue, journal, fresh = open_data_dir(data_dir, config, config_text, out)
    server = Server(config, orders_endpoint=orders, market_data_endpoint=market_data, venue=venue)
    if journal is not None:
        server.journal = journal
        server.data_dir = Path(data_dir)
        server.snapshot_every = config.journal.snapshot_every
    if replay is not None:
        from exchange_sim.replay_market import ReplayMarket, read

        # the replay's commands and Ticks carry the data's time; the wall clock only paces them
        market = ReplayMarket(read(replay), server.venue, speed=1.0 if speed is None else speed,
                              tick_ns=config.server.tick_interval_ms * 10**6)
        server.house = market
        server.clock = market.clock
        server.wall_ticks = False
        speed = None  # the feed's own speed stays the config's
    server.feed = make_feed(config, server.venue, feed, feed_csv, seed, speed)
    if liquidity:
        from exchange_sim.liquidity import House

        server.house = House(config.liquidity, server.venue)
    if fresh:
        server.start_up()
    else:
        server.start_house()
    orders_ep, md_ep = server.bind()
    p = config.server
    say = lambda text="": print(text, file=out)  # noqa: E731
    say(f"exchange-sim serving {len(server.venue.instruments)} instruments")
    say(f"orders:      {orders_ep}")
    say(f"market-data: {md_ep}")
    say(f"curve:       {'on, server public key ' + p.curve_public_key if p.curve_public_key else 'off'}")
    feed_name = "none" if server.feed is None else type(server.feed).__name__
    say(f"feed:        {feed_name}")
    if replay is not None:
        say(f"replay:      {replay}: {len(market.records)} records of {', '.join(sorted(set(market.symbols.values())))}"
            f" at {market.speed}x, account {market.account} mirrors the book")
    if liquidity:
        lp = config.liquidity
        say(f"liquidity:   house maker {lp.maker_account}, arbitrageur {lp.arb_account}, noise "
            f"{lp.noise_account} on {len(server.house.instruments)} symbols; liquidation grace "
            f"{config.liquidation.grace_ms} ms")
    say(f"data dir:    {data_dir} (journal {config.journal.policy}, seq {server.venue.seq})" if data_dir
        else "data dir:    none (state is lost at exit; --data-dir DIR keeps it)")
    say(f"admin key:   {p.admin_key}")
    for a in p.accounts:
        say(f"account {a.account:<4} key {a.api_key}  {a.name}")
    say("ready")
    out.flush()
    server.install_signal_handlers()
    started = time.monotonic()
    try:
        server.serve_forever(duration=duration)
    finally:
        server.close()
        if journal is not None:
            journal.close()
    s = server.stats()
    say(f"stopped after {time.monotonic() - started:.1f}s: {s.commands} commands, {s.frames_in} frames, "
        f"{sum(s.rejects.values())} server rejects, {s.published} published")
    out.flush()
    return 0
