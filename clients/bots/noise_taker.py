"""A noise taker: random market and limit orders at a steady, seeded rate.

Real markets are full of orders that carry no view on the price: hedgers,
rebalancers, people who just want in or out. That flow is "noise", and it is
what a market maker lives on. This bot is that flow.

- Timing. Orders arrive as a Poisson process: the wait before each one is
  exponential with mean ``1/rate`` s, drawn from ``random.Random(seed)``, so
  the same seed makes the same decisions (what fills still depends on the
  book at that moment).
- Market orders (``--market-pct``) take liquidity at once. The venue stops
  them at its price band (5% from mark) and cancels the rest, like an IOC.
- Limit orders go at the mark plus or minus a random offset of up to
  ``--limit-bps``: a buy above the mark crosses the spread and trades at
  once (a "marketable limit"), one below rests in the book and may be
  filled later, by someone else's order (that fill is *pushed* to us).
  Resting orders are cancelled after ``--limit-ttl`` s: no trail left.
- Self-trade prevention. Our own resting limit may be the best price when
  we send a market order the other way; trading with ourselves is
  forbidden, so the venue expires one of the two. ``stp="expire_maker"``
  says "cancel my old resting order and go on", so the new order still
  trades with everyone else (the default, expire_taker, would cancel it).
- Sizes are drawn uniformly in USD between ``--min-usd`` and ``--max-usd``
  and rounded to whole lots at the current mark.
- Refusals are typed exceptions (``clients.errors``): NO_LIQUIDITY when
  there is nothing to take, INSUFFICIENT_MARGIN, ... Counted by reason and
  printed; never fatal.

    exchange-sim serve &
    python -m clients.bots.market_maker &
    python -m clients.bots.noise_taker --rate 2 --market-pct 50
"""

from __future__ import annotations

import random
import threading
import time
from collections import Counter, deque
from dataclasses import dataclass, field
from decimal import ROUND_FLOOR, Decimal
from typing import TextIO

from clients import Client, ExchangeError, OrderNotFound
from clients._core import DEFAULT_MARKET_DATA, DEFAULT_ORDERS
from clients.bots._common import MarketData, Stop, api_key, demo_key, index_price, parser, say
from clients.models import Fill
from protocol import messages as m
from protocol.session import LoggedOut


@dataclass
class Stats:
    orders: int = 0
    market: int = 0
    limit: int = 0
    fills: int = 0  # ours: as taker (in the reply) and as maker (pushed later)
    maker_fills: int = 0
    refused: Counter = field(default_factory=Counter)  # reason -> count
    position: Decimal = Decimal(0)


def run(endpoint: str = DEFAULT_ORDERS, market_data: str = DEFAULT_MARKET_DATA, account: int = 2,
        key: str | None = None, *, symbol: str = "BTC-PERP", rate: float = 2.0, market_pct: float = 50.0,
        limit_bps: float = 10.0, limit_ttl: float = 5.0, min_usd="100", max_usd="2000", seed: int = 1,
        duration: float | None = None, stop: Stop | threading.Event | None = None,
        server_key: str | None = None, out: TextIO | None = None) -> Stats:
    """Send random orders until ``stop``/``duration``; cancel what rests; return the tally."""
    stop = stop if isinstance(stop, Stop) else Stop(duration, stop)
    rng = random.Random(seed)  # every decision below comes from here
    stats = Stats()
    resting: deque[tuple[float, int]] = deque()  # (placed at, order id), oldest first
    with Client(endpoint, account, key or demo_key(account), cancel_on_disconnect=True,
                server_key=server_key) as c:
        ins = c.markets[symbol]
        mark = index_price(c, ins.underlying)
        marks = MarketData(market_data, [f"{symbol}.mark"], server_key=server_key)
        say(out, f"noise taker, account {account}: {rate}/s on {symbol}, {market_pct}% market, mark {mark}")

        def count_fill(f: Fill) -> None:
            stats.fills += 1
            stats.maker_fills += f.liquidity == "maker"
            stats.position = f.position

        def one_order() -> None:
            side = rng.choice(("buy", "sell"))
            usd = Decimal(rng.uniform(float(min_usd), float(max_usd)))
            qty = max(ins.lot_size, (usd / mark / ins.lot_size).to_integral_value(ROUND_FLOOR) * ins.lot_size)
            try:
                if rng.uniform(0, 100) < market_pct:
                    stats.market += 1
                    r = c.place(symbol, side, qty, type="market", stp="expire_maker")
                else:
                    stats.limit += 1
                    offset = Decimal(rng.uniform(-limit_bps, limit_bps)) / 10_000  # > 0: through the mark
                    price = mark * (1 + offset if side == "buy" else 1 - offset)
                    price = (price / ins.tick_size).to_integral_value() * ins.tick_size
                    r = c.place(symbol, side, qty, price, stp="expire_maker")
                    if r.remaining:
                        resting.append((time.monotonic(), r.order_id))
            except ExchangeError as exc:
                stats.refused[exc.reason.value if exc.reason else type(exc).__name__] += 1
                say(out, f"{side} {qty} refused: {exc}")
                return
            finally:
                stats.orders += 1
            for f in r.fills:
                count_fill(f)
            say(out, f"{r.type} {side} {qty}: {r.status}" + (f", {r.filled} @ {r.avg_price}" if r.filled else "")
            + (f" ({r.cancel_cause})" if r.cancel_cause and r.cancel_cause != "ioc" else ""))

        next_at = time.monotonic() + rng.expovariate(rate)
        try:
            while not stop:
                # wait for the next order's time, handling pushed events meanwhile
                ev = c.poll_event(timeout=max(0.0, min(0.05, next_at - time.monotonic())))
                if isinstance(ev, Fill):
                    count_fill(ev)  # a resting limit of ours was hit
                elif isinstance(ev, LoggedOut):
                    stop.set(f"logged out: {ev.reason}")
                for msg in marks.poll():
                    if type(msg) is m.MarkPrice:
                        mark = ins.price(msg.mark)
                now = time.monotonic()
                while resting and now - resting[0][0] >= limit_ttl:
                    try:
                        c.cancel(resting.popleft()[1])
                    except OrderNotFound:
                        pass  # it filled while it waited
                if now >= next_at and not stop:
                    one_order()
                    next_at += rng.expovariate(rate)
        finally:
            marks.close()
            if c.session is not None:
                c.cancel_all(symbol)
    say(out, f"noise taker stopped ({stop.reason}): {stats.orders} orders ({stats.market} market, "
             f"{stats.limit} limit), {stats.fills} fills, refused {dict(stats.refused)}")
    return stats


def main(argv: list[str] | None = None) -> int:
    ap = parser("noise_taker", __doc__, account=2, seed=True)
    ap.add_argument("--rate", type=float, default=2.0, help="orders per second, on average (default %(default)s)")
    ap.add_argument("--market-pct", type=float, default=50.0, help="share of market orders (default %(default)s)")
    ap.add_argument("--limit-bps", type=float, default=10.0, help="limit price offset bound (default %(default)s)")
    ap.add_argument("--limit-ttl", type=float, default=5.0,
                    help="cancel resting limits after this many s (default %(default)s)")
    ap.add_argument("--min-usd", default="100", help="smallest order in USD (default %(default)s)")
    ap.add_argument("--max-usd", default="2000", help="largest order in USD (default %(default)s)")
    args = ap.parse_args(argv)
    run(args.endpoint, args.market_data, args.account, api_key(args), symbol=args.symbol, rate=args.rate,
        market_pct=args.market_pct, limit_bps=args.limit_bps, limit_ttl=args.limit_ttl, min_usd=args.min_usd,
        max_usd=args.max_usd, seed=args.seed, stop=Stop(args.duration).on_signals(), server_key=args.server_key)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
