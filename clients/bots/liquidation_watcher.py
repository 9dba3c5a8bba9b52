"""A liquidation watcher: the market's liquidations, and how close we are to ours.

Two views at once, one public and one private:

- Public. Every liquidation order that trades in the book is announced on
  the PUB socket as a ``LiquidationNotice`` (symbol, side, quantity, average
  price) on the topic ``<SYMBOL>.liquidation`` (Binance's forceOrder
  stream). No login is needed: anyone may subscribe, and nobody learns whose
  account it was. What the book could not absorb goes to the insurance fund
  and is not announced.
- Private. Logged in as an account, we are pushed that account's margin
  calls (``MarginCall``, level warning / reduce_only / liquidation, each
  sent when the level gets *worse*) and its liquidation events, and we ask
  for its margin ratio (equity / maintenance margin) every ``--every`` s.

A second session of an account sees everything the account does, so this
bot can watch the account another bot trades with (the default, account 4,
is the one ``leveraged_trader`` uses).

    exchange-sim serve &
    python -m clients.bots.liquidation_watcher --account 4
    python -m clients.bots.leveraged_trader --account 4      # in another terminal
"""

from __future__ import annotations

import threading
import time
from dataclasses import dataclass, field
from typing import TextIO

from clients import Client
from clients._core import DEFAULT_MARKET_DATA, DEFAULT_ORDERS
from clients.bots._common import MarketData, Stop, api_key, demo_key, parser, say
from protocol import messages as m
from protocol.session import LoggedOut
from protocol.units import ratio_text


@dataclass
class Stats:
    notices: list[tuple[str, str, str, str]] = field(default_factory=list)  # (symbol, side, qty, price)
    margin_calls: list[str] = field(default_factory=list)
    ratios: int = 0  # margin ratio lines printed


def run(endpoint: str = DEFAULT_ORDERS, market_data: str = DEFAULT_MARKET_DATA, account: int = 4,
        key: str | None = None, *, symbols: list[str] | None = None, every: float = 2.0,
        duration: float | None = None, stop: Stop | threading.Event | None = None,
        server_key: str | None = None, out: TextIO | None = None) -> Stats:
    """Print until ``stop``/``duration``; return what was seen."""
    stop = stop if isinstance(stop, Stop) else Stop(duration, stop)
    stats = Stats()
    with Client(endpoint, account, key or demo_key(account), server_key=server_key) as c:
        mk = c.markets
        symbols = symbols or sorted(mk.instruments)  # default: every instrument
        public = MarketData(market_data, [f"{s}.liquidation" for s in symbols], server_key=server_key)
        say(out, f"watching liquidations on {', '.join(symbols)} and account {account}")
        next_ratio = 0.0
        try:
            while not stop:
                for n in public.poll(timeout=0.05):
                    if type(n) is m.LiquidationNotice:
                        ins = mk[n.symbol]  # venue units -> human
                        qty, price = ins.qty(n.qty), ins.price(n.price)
                        stats.notices.append((n.symbol, n.side.value, str(qty), str(price)))
                        say(out, f"LIQUIDATION {n.symbol}: {n.side.value} {qty} @ {price} (public notice)")
                ev = c.poll_event(timeout=0.05)
                while ev is not None:
                    if isinstance(ev, m.MarginCall):
                        stats.margin_calls.append(ev.level)
                        say(out, f"MARGIN CALL {ev.level}: account {ev.account} ratio {ratio_text(ev.margin_ratio)}")
                    elif isinstance(ev, (m.LiquidationStarted, m.LiquidationFinished)):
                        what = "started" if isinstance(ev, m.LiquidationStarted) else "finished"
                        say(out, f"account {ev.account} liquidation {what}: ratio {ratio_text(ev.margin_ratio)}, "
                                 f"equity {ev.equity:,.2f}")
                    elif isinstance(ev, LoggedOut):
                        stop.set(f"logged out: {ev.reason}")
                    ev = c.poll_event()
                if time.monotonic() >= next_ratio and not stop:
                    next_ratio = time.monotonic() + every
                    a = c.account()
                    stats.ratios += 1
                    say(out, f"account {account} margin ratio {ratio_text(a.margin_ratio)}  equity {a.equity}  "
                             f"MM {a.mm}")
        finally:
            public.close()
    say(out, f"watcher stopped ({stop.reason}): {len(stats.notices)} liquidation notices, "
             f"margin calls {stats.margin_calls}")
    return stats


def main(argv: list[str] | None = None) -> int:
    ap = parser("liquidation_watcher", __doc__, account=4, symbol=None)
    ap.add_argument("--every", type=float, default=2.0,
                    help="print the margin ratio this often, s (default %(default)s)")
    args = ap.parse_args(argv)
    run(args.endpoint, args.market_data, args.account, api_key(args),
        symbols=[args.symbol] if args.symbol else None, every=args.every,
        stop=Stop(args.duration).on_signals(), server_key=args.server_key)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
