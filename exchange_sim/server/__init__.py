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


def run(config: Config, *, orders: str | None = None, market_data: str | None = None,
        feed: str | None = None, feed_csv: str | None = None, seed: int | None = None,
        speed: float | None = None, duration: float | None = None, out: TextIO = sys.stdout) -> int:
    """Build, bind, announce and serve; return an exit status."""
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s: %(message)s",
                        stream=sys.stderr)
    server = Server(config, orders_endpoint=orders, market_data_endpoint=market_data)
    server.feed = make_feed(config, server.venue, feed, feed_csv, seed, speed)
    server.start_up()
    orders_ep, md_ep = server.bind()
    p = config.server
    say = lambda text="": print(text, file=out)  # noqa: E731
    say(f"exchange-sim serving {len(server.venue.instruments)} instruments")
    say(f"orders:      {orders_ep}")
    say(f"market-data: {md_ep}")
    say(f"curve:       {'on, server public key ' + p.curve_public_key if p.curve_public_key else 'off'}")
    feed_name = "none" if server.feed is None else type(server.feed).__name__
    say(f"feed:        {feed_name}")
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
    s = server.stats()
    say(f"stopped after {time.monotonic() - started:.1f}s: {s.commands} commands, {s.frames_in} frames, "
        f"{sum(s.rejects.values())} server rejects, {s.published} published")
    out.flush()
    return 0
