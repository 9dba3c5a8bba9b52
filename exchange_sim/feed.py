"""Index price feeds: what moves a sandbox market when no admin does.

A feed never touches the venue. It produces ordinary
:class:`~protocol.messages.SetIndexPrice` commands, which the server sends
through the same door as every other command (sequenced, time-stamped, and
journaled once a journal exists), so a run with a live feed replays exactly
from its commands alone: the replay needs neither the seed nor the CSV.

Two feeds, chosen by ``[server.feed] kind`` or ``exchange-sim serve --feed``:

- :class:`RandomWalkFeed`: a seeded geometric random walk per asset. Each
  tick, ``price *= exp(sigma * sqrt(dt) * z - sigma**2 * dt / 2)`` with
  ``z ~ N(0, 1)`` from ``random.Random(seed)``, ``sigma`` the annualized
  volatility from config and ``dt`` the tick's simulated time in years
  (``interval * speed / 365 days``). The ``-sigma**2 dt / 2`` term keeps the
  expected price flat (a martingale), so a long sandbox run does not drift.
  Worked size: BTC at sigma = 0.6 with 1 s ticks moves about
  ``0.6 * sqrt(1 / 31_536_000) = 0.0107%`` (≈ $6 at $60,000) per tick; with
  ``speed = 3600`` (an hour a second) about 0.64% per tick. The price path
  depends only on the seed and the tick number, never on wall-clock jitter.
- :class:`CsvFeed`: replays ``time,asset,price`` rows (seconds from the start
  in time order, USD, a header row is optional), divided by ``speed``,
  optionally looping. A bad row is refused as ``FILE:LINE: what, the value``.

Both expose the same two methods the server's timer loop calls:
``next_due()`` (a ``time.monotonic()`` deadline, or ``None``) and
``poll(now)`` (the commands due by ``now``).
"""

from __future__ import annotations

import csv
import math
import random
from decimal import ROUND_HALF_EVEN, Decimal, InvalidOperation
from pathlib import Path

from protocol.messages import MAX_PRICE, PRICE_SCALE, SetIndexPrice

SECONDS_PER_YEAR = 365 * 86_400


def usd_to_e8(text: str | Decimal) -> int:
    """A USD price (decimal string) in index units of 1e-8 USD, rounded half-even.

    >>> usd_to_e8("60000.5")
    6000050000000
    """
    try:
        value = Decimal(text)
    except InvalidOperation:
        raise ValueError(f"price {str(text)!r} is not a number") from None
    if not value.is_finite() or value <= 0:
        raise ValueError(f"price {str(text)!r} is not a positive number")
    # range first: quantizing a huge value would overflow the decimal context
    e8 = 0 if value * PRICE_SCALE > MAX_PRICE else int((value * PRICE_SCALE).quantize(Decimal(1), ROUND_HALF_EVEN))
    if not 1 <= e8 <= MAX_PRICE:
        raise ValueError(f"price {str(text)!r} is out of range: 0.00000001 to {MAX_PRICE // PRICE_SCALE:,} USD")
    return e8


class RandomWalkFeed:
    """Seeded geometric random walk of index prices (see the module docstring).

    ``start`` maps asset -> starting index (1e-8 USD); ``volatility`` maps
    asset -> annualized sigma. Assets in ``volatility`` with no start price or
    a zero sigma do not move. O(assets) per tick.
    """

    def __init__(self, start: dict[str, int], volatility: dict[str, float], *, seed: int = 1,
                 interval_s: float = 1.0, speed: float = 1.0):
        if interval_s <= 0 or speed <= 0:
            raise ValueError("interval and speed must be positive")
        self.interval_s = interval_s
        self.rng = random.Random(seed)
        dt = interval_s * speed / SECONDS_PER_YEAR
        # sorted: the same seed draws the same z for the same asset every run
        self.assets = sorted(a for a, s in volatility.items() if s > 0 and start.get(a))
        self.price = {a: float(start[a]) for a in self.assets}
        self.scale = {a: volatility[a] * math.sqrt(dt) for a in self.assets}
        self.drift = {a: -0.5 * volatility[a] ** 2 * dt for a in self.assets}
        self.ticks = 0
        self._due: float | None = None

    def start(self, now: float) -> None:
        self._due = now + self.interval_s if self.assets else None

    def next_due(self) -> float | None:
        return self._due

    def step(self) -> list[SetIndexPrice]:
        """One tick of the walk, independent of time: the commands it makes."""
        self.ticks += 1
        out = []
        for a in self.assets:
            p = self.price[a] * math.exp(self.scale[a] * self.rng.gauss(0.0, 1.0) + self.drift[a])
            p = min(max(p, 1.0), float(MAX_PRICE))
            self.price[a] = p
            out.append(SetIndexPrice(asset=a, price=int(round(p))))
        return out

    def poll(self, now: float) -> list[SetIndexPrice]:
        """Commands due by ``now``. A late timer catches up at most one tick
        (a stalled server skips time rather than bursting prices)."""
        if self._due is None or now < self._due:
            return []
        self._due = max(self._due + self.interval_s, now)
        return self.step()


class CsvFeed:
    """Replay of a CSV price path: rows ``time,asset,price``.

    ``time`` is seconds from the start of the run (decimal, >= 0), ``price``
    USD (rounded half-even to 1e-8). An optional header row ``time,...``
    comes first; blank lines and lines starting with ``#`` are skipped. Rows
    must be in time order (rows at the same time are applied in file order;
    one asset has at most one price per time). Raises ``ValueError``
    "FILE:LINE: what is wrong, with the bad value" for a malformed row, an
    asset not in ``known_assets``, or a file without rows.
    """

    def __init__(self, path: str | Path, *, speed: float = 1.0, loop: bool = False,
                 known_assets: set[str] | None = None):
        if speed <= 0:
            raise ValueError("speed must be positive")
        self.speed = speed
        self.loop = loop
        self.rows = _read_csv(path, known_assets)
        self.period = (self.rows[-1][0] if self.rows else 0.0) + 1.0
        self.pos = 0
        self.offset = 0.0  # simulated seconds added per completed loop
        self.t0: float | None = None

    def start(self, now: float) -> None:
        self.t0 = now

    def next_due(self) -> float | None:
        if self.t0 is None or self.pos >= len(self.rows):
            return None
        return self.t0 + (self.rows[self.pos][0] + self.offset) / self.speed

    def poll(self, now: float) -> list[SetIndexPrice]:
        out: list[SetIndexPrice] = []
        while True:
            due = self.next_due()
            if due is None or due > now:
                break
            _, asset, price = self.rows[self.pos]
            out.append(SetIndexPrice(asset=asset, price=price))
            self.pos += 1
            if self.pos == len(self.rows) and self.loop:
                self.pos = 0
                self.offset += self.period
            if len(out) >= 10_000:  # a dense file never stalls the loop
                break
        return out


def _read_csv(path: str | Path, known_assets: set[str] | None) -> list[tuple[float, str, int]]:
    rows: list[tuple[float, str, int]] = []
    last_time: tuple[Decimal, int] | None = None  # (time, line) of the previous row
    seen: dict[tuple[Decimal, str], int] = {}  # (time, asset) -> line, for duplicates
    try:
        with open(path, newline="", encoding="utf-8") as fh:
            reader = csv.reader(fh)
            first = True
            for row in reader:
                where = f"{path}:{reader.line_num}"
                if not row or not "".join(row).strip() or row[0].strip().startswith("#"):
                    continue
                if first and row[0].strip().lower() == "time":
                    first = False
                    continue
                first = False
                if len(row) != 3:
                    raise ValueError(f"{where}: expected 3 columns time,asset,price, got {len(row)}: "
                                     f"{','.join(row)!r}")
                t_text, asset, p_text = (cell.strip() for cell in row)
                try:
                    t = Decimal(t_text)
                except InvalidOperation:
                    raise ValueError(f"{where}: time {t_text!r} is not a number (seconds from the start)") from None
                if not t.is_finite() or t < 0:
                    raise ValueError(f"{where}: time {t_text!r} is not a number of seconds >= 0")
                if last_time is not None and t < last_time[0]:
                    raise ValueError(f"{where}: time {t_text!r} is before {last_time[0]} on line {last_time[1]}: "
                                     "rows must be in time order")
                if known_assets is not None and asset not in known_assets:
                    raise ValueError(f"{where}: unknown asset {asset!r}; valid: {', '.join(sorted(known_assets))}")
                if (t, asset) in seen:
                    raise ValueError(f"{where}: {asset} already has a price at time {t_text} "
                                     f"(line {seen[t, asset]})")
                try:
                    price = usd_to_e8(p_text)
                except ValueError as exc:
                    raise ValueError(f"{where}: {exc}") from None
                seen[t, asset] = reader.line_num
                last_time = (t, reader.line_num)
                rows.append((float(t), asset, price))
    except UnicodeDecodeError as exc:
        raise ValueError(f"{path}: not UTF-8 text (byte {exc.start})") from None
    except csv.Error as exc:
        raise ValueError(f"{path}: {exc}") from None
    if not rows:
        raise ValueError(f"{path}: no price rows (lines time,asset,price)")
    return rows
