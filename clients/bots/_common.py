"""What every example bot needs besides its idea: options, stopping, prices.

- :func:`parser` — the shared command-line options: where the venue is
  (``--endpoint``, ``--market-data``), who we are (``--account``,
  ``--api-key``, defaulting to the demo account's key from the embedded
  config), what we trade (``--symbol``), and for how long (``--duration``);
  ``--seed`` for the bots that draw random numbers.
- :class:`Stop` — one flag set by Ctrl-C, SIGTERM or the ``--duration``
  deadline; bot loops check it between short waits, so they always get to
  cancel their orders and log out before exiting.
- :class:`MarketData` — a SUB socket on the venue's PUB endpoint. Topics
  are ``<SYMBOL>.<channel>`` (``BTC-PERP.mark``, ``BTC-PERP.liquidation``,
  see :mod:`exchange_sim.server.routing`); each message is decoded to its
  protocol struct (venue units: ticks, lots).
- :func:`index_price` — an asset's current index price. The mark only
  appears on the PUB socket when it *changes*, so a bot starts from the
  instrument query's index price and follows ``.mark`` messages after.
"""

from __future__ import annotations

import argparse
import signal
import sys
import threading
import time
from decimal import Decimal
from typing import TextIO

import zmq

from clients import Client
from clients._core import DEFAULT_MARKET_DATA, DEFAULT_ORDERS
from clients.models import Markets
from protocol import messages as m
from protocol.session import decode_market


def demo_key(account: int) -> str | None:
    """The API key of a demo account in the embedded config (``[server]``)."""
    from exchange_sim import config as config_mod

    keys = {a.account: a.api_key for a in config_mod.default().server.accounts}
    return keys.get(account)


def parser(prog: str, doc: str, *, account: int, symbol: str | None = "BTC-PERP",
           seed: bool = False) -> argparse.ArgumentParser:
    """The options every bot has; each bot adds its own."""
    ap = argparse.ArgumentParser(prog=f"python -m clients.bots.{prog}", description=doc,
                                 formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--endpoint", default=DEFAULT_ORDERS,
                    help="the venue's orders (ROUTER) endpoint (default %(default)s)")
    ap.add_argument("--market-data", default=DEFAULT_MARKET_DATA,
                    help="the venue's market-data (PUB) endpoint (default %(default)s)")
    ap.add_argument("--account", type=int, default=account, help="account number (default %(default)s)")
    ap.add_argument("--api-key", help="API key (default: the demo account's key from the embedded config)")
    ap.add_argument("--server-key", help="the server's CURVE public key, if it uses CURVE")
    ap.add_argument("--symbol", default=symbol,
                    help="instrument (default %(default)s)" if symbol else "instrument (default: every instrument)")
    ap.add_argument("--duration", type=float, help="stop by itself after this many seconds (default: until Ctrl-C)")
    if seed:
        ap.add_argument("--seed", type=int, default=1,
                        help="random seed: same seed, same decisions (default %(default)s)")
    return ap


def api_key(args: argparse.Namespace) -> str:
    key = args.api_key or demo_key(args.account)
    if key is None:
        raise SystemExit(f"no demo key for account {args.account}: pass --api-key")
    return key


class Stop:
    """Set by :meth:`set`, a signal, or the deadline ``duration`` s from now.

    ``Stop(duration, event)`` wraps a caller's ``threading.Event`` (tests
    stop a bot running in a thread that way); :meth:`on_signals` is for the
    main thread of a command-line bot.
    """

    def __init__(self, duration: float | None = None, event: threading.Event | None = None):
        self.event = event or threading.Event()
        self.deadline = None if duration is None else time.monotonic() + duration
        self.reason = ""

    def on_signals(self) -> Stop:
        def handler(signum, _frame):
            self.set(signal.Signals(signum).name)

        signal.signal(signal.SIGINT, handler)
        signal.signal(signal.SIGTERM, handler)
        return self

    def set(self, reason: str = "stopped") -> None:
        self.reason = self.reason or reason
        self.event.set()

    def __bool__(self) -> bool:
        """True once it is time to stop: ``while not stop: ...``."""
        if self.deadline is not None and time.monotonic() >= self.deadline:
            self.set("duration")
        if self.event.is_set():
            self.reason = self.reason or "stopped"
            return True
        return False

    def wait(self, seconds: float) -> bool:
        """Sleep up to ``seconds`` (less if the deadline comes first); True if stopping."""
        if self.deadline is not None:
            seconds = min(seconds, max(0.0, self.deadline - time.monotonic()))
        self.event.wait(seconds)
        return bool(self)


class MarketData:
    """Public messages for some topics, decoded (venue units)."""

    def __init__(self, endpoint: str, topics: list[str], *, server_key: str | None = None,
                 context: zmq.Context | None = None):
        self.sock = (context or zmq.Context.instance()).socket(zmq.SUB)
        self.sock.linger = 0
        if server_key is not None:
            from clients._core import curve

            curve(self.sock, server_key)
        for t in topics:  # a prefix match: b"BTC-PERP.mark\0" is exactly that topic
            self.sock.setsockopt(zmq.SUBSCRIBE, t.encode() + b"\x00")
        self.sock.connect(endpoint)

    def poll(self, timeout: float = 0.0) -> list:
        """Everything that has arrived, waiting up to ``timeout`` s for the first."""
        out = []
        if self.sock.poll(int(timeout * 1000)):
            while True:
                try:
                    out.append(decode_market(self.sock.recv(zmq.NOBLOCK)))
                except zmq.Again:
                    return out
        return out

    def close(self) -> None:
        self.sock.close(linger=0)


def index_price(client: Client, asset: str) -> Decimal:
    """``asset``'s index price in USD, from the instrument query."""
    (info,) = client.call(m.QueryInstruments())
    for a in info.assets:
        if a.name == asset and a.index_price:
            return Markets.index_usd(a.index_price)
    raise ValueError(f"{asset} has no index price yet")


def say(out: TextIO | None, text: str) -> None:
    """One line, time-stamped and flushed (bots are often piped to a file)."""
    print(f"{time.strftime('%H:%M:%S')} {text}", file=out or sys.stdout, flush=True)

