"""What the asyncio facade's ccxt.pro ``watch_*`` methods collect between
two calls, from their first call on (no I/O here; the exchange object feeds
it from the public feed and the private pushes).

- public trades per symbol (``watch_trades``), bounded;
- "something moved" counters per symbol, a trade or a mark message
  (``watch_ticker``);
- OHLCV candles per symbol and timeframe, **built here from the public trade
  stream** (``watch_ohlcv``): a candle covers ``[start, start + timeframe)``
  by the trade's timestamp; open/high/low/close are trade prices and volume
  the base amount traded. Only trades seen since the first
  ``watch_ohlcv(symbol, timeframe)`` are in them; for older candles a bot
  calls ``fetch_ohlcv`` (where the venue has it).
"""

from __future__ import annotations

from collections import OrderedDict

from clients.ccxt import helpers

MAX_NEW_TRADES = 1_000  # per symbol, between two watch_trades calls
MAX_CANDLES = 1_000  # per symbol and timeframe


class Candles:
    """OHLCV candles of one symbol and timeframe, and which changed since
    they were last taken."""

    __slots__ = ("ms", "bars", "changed")

    def __init__(self, timeframe: str):
        self.ms = helpers.parse_timeframe(timeframe) * 1000
        if self.ms <= 0:
            raise ValueError(f"timeframe must be positive, not {timeframe!r}")
        self.bars: OrderedDict[int, list] = OrderedDict()
        self.changed: OrderedDict[int, None] = OrderedDict()

    def add(self, ts: int, price: float, amount: float) -> None:
        start = ts - ts % self.ms
        bar = self.bars.get(start)
        if bar is None:
            if self.bars and start < next(reversed(self.bars)):
                return  # a trade older than the newest candle (clock skew): not rewritten
            bar = self.bars[start] = [start, price, price, price, price, 0.0]
            while len(self.bars) > MAX_CANDLES:
                old, _ = self.bars.popitem(last=False)
                self.changed.pop(old, None)
        bar[2] = max(bar[2], price)
        bar[3] = min(bar[3], price)
        bar[4] = price
        bar[5] += amount
        self.changed.pop(start, None)
        self.changed[start] = None

    def take(self) -> list[list]:
        """Copies of the candles that changed since the last take, oldest first."""
        out = [list(self.bars[t]) for t in self.changed if t in self.bars]
        self.changed.clear()
        return out


class Streams:
    """The watch state of one asyncio exchange object."""

    __slots__ = ("trades", "moves", "candles", "balance_update", "my_trades_after")

    def __init__(self):
        self.trades: dict[str, list[dict]] = {}  # venue symbol -> public trades not yet returned
        self.moves: dict[str, int] = {}  # venue symbol -> trades + marks since watch_ticker last returned
        self.candles: dict[tuple[str, str], Candles] = {}
        self.balance_update: bool | None = None  # None until watch_balance is first called
        self.my_trades_after: dict | None = None  # the last own trade returned (None: not watched yet)

    def on_trade(self, symbol: str, trade: dict) -> None:
        new = self.trades.get(symbol)
        if new is not None:
            new.append(trade)
            del new[:-MAX_NEW_TRADES]
        self.on_move(symbol)
        for (sym, _), candles in self.candles.items():
            if sym == symbol:
                candles.add(trade["timestamp"], trade["price"], trade["amount"])

    def on_move(self, symbol: str) -> None:
        if symbol in self.moves:
            self.moves[symbol] += 1
