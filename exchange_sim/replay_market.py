"""Historical replay as the market: ``exchange-sim serve --replay DATA [--speed X]``.

(Not :mod:`exchange_sim.replay`, which rebuilds a run from its own journal.)

Recorded market data drives the venue:

- **Formats** (a directory of CSV files, or one file; the kind is read from
  the header): Tardis-style ``incremental_book_L2`` (``is_snapshot,side,
  price,amount``; amount 0 removes a level), ``book_snapshot_25``
  (``asks[0].price,asks[0].amount,bids[0].price,...``: each row is the whole
  top of book), ``trades`` (``id,side,price,amount``) and
  ``derivative_ticker`` (``index_price,mark_price,funding_rate,...``), with
  ``timestamp`` in µs since the epoch; and the project's own simple CSV,
  ``time,symbol,kind,side,price,amount`` (``time`` in seconds, ``kind`` one
  of ``level``, ``trade``, ``index``, ``mark``, ``funding``). Symbols map to the venue's
  by underlying: ``BTCUSDT``, ``BTC-PERP``, ``BTCUSD``, ``BTC-PERPETUAL``
  are ``BTC-PERP``. Sizes are the venue's lots, prices its ticks (rounded).
- **Prices.** The venue's mark is its index (rounded to a tick), so the
  recorded mark, when the data has one, is set as the index; else the
  recorded index; else each recorded trade's price.
- **Funding.** A ticker row names the next funding time and its (predicted)
  rate; once a row names a later time, the earlier settlement happened and
  the replay sends ``SettleFunding(symbol, rate_e8)`` at the rate last
  recorded for it (a simple-CSV ``funding`` row, price = the rate, settles at
  once). Data with funding turns the venue's own automatic funding off
  (``[funding] automatic = false`` in the effective config), so nothing is
  paid twice; data without keeps it.
- **Liquidity.** A replay account (903)
  mirrors the recorded book with one ordinary GTC limit per recorded level:
  placed when the level appears, amended when its size changes, cancelled
  when it goes. A user's order trades against those orders with price-time
  priority and *consumes* them: the size a user took stays gone until the
  data's next update for that level, which sets the order to the recorded
  size again.

**Queue model.** The replay's order at a level stands for the whole
recorded queue there. A user order joining a level rests behind it (it came
first); a recorded *increase* is an amend up, which sends the replay order
behind the user (new size joins the back of a real queue too); a recorded
*decrease* is an amend down, which keeps its place, i.e. it is taken from
the queue *ahead* of the user. That is the optimistic end of queue models
(hftbacktest's "risk-averse" model takes decreases from behind instead):
chosen because it needs no per-level bookkeeping outside the book and it is
exactly price-time priority over real orders; with one order a level a user
is filled once the recorded size ahead of it is traded or cancelled. A
recorded level that crosses a user's resting order trades with it, as an
incoming order on a real book would; a transiently crossed record (a bid
update before the ask it crosses is removed) expires the replay's own older
order (self-trade prevention ``expire_maker``).

**Time.** The venue time of everything the replay sends is its data:
a record's commands are stamped with the record's timestamp, and with
``tick_ns`` (the server passes ``[server] tick_interval_ms``) a ``Tick`` is
sent at every multiple of it that falls between two records (none on a
record's own time, none after the last record), which is what moves the
clock through a quiet stretch of the data; the server's own wall-clock
``Tick`` is off. The wall clock only paces *when* records are sent
(``speed`` times real time, :meth:`ReplayMarket.step`), so two live runs of
the same data with the same seeds journal the same commands with the same
stamps, byte for byte, whatever the machine's load. A user's command is
stamped with the data clock at its entry (:meth:`ReplayMarket.clock`: the
data time the wall clock has reached, never past the next record not yet
sent, so journal time never runs backwards). :func:`replay_offline` applies
the same records and ticks with no server and no wall clock: the same
commands and stamps as a live run's replay commands.
"""

from __future__ import annotations

import csv
import gzip
import time
from collections.abc import Iterator
from decimal import Decimal, InvalidOperation
from pathlib import Path

from exchange_sim.funding import RATE_SCALE
from protocol.messages import (
    PRICE_SCALE,
    AmendOrder,
    CancelAll,
    CancelOrder,
    Deposit,
    Fill,
    NewOrder,
    OpenAccount,
    OrderAccepted,
    OrderAmended,
    OrderCancelled,
    SetIndexPrice,
    SettleFunding,
    Side,
    StpMode,
    Tick,
    TimeInForce,
)

# record kinds; at one timestamp prices go first (a level is checked against the mark's band)
MARK, INDEX, TRADE, BOOK, FUNDING = 0, 1, 2, 3, 4
_SIDES = {"bid": Side.BUY, "buy": Side.BUY, "ask": Side.SELL, "sell": Side.SELL}


class Record(tuple):
    """(ts_ns, kind, symbol, payload): payload is a price for MARK/INDEX/TRADE,
    and for BOOK ``(snapshot?, [(side, price, amount), ...])``."""

    __slots__ = ()


def _open(path: Path):
    return gzip.open(path, "rt", newline="") if path.suffix == ".gz" else open(path, newline="", encoding="utf-8")


def _dec(text: str, where: str) -> Decimal:
    try:
        return Decimal(text)
    except InvalidOperation:
        raise ValueError(f"{where}: not a number: {text!r}") from None


def read(path: str | Path) -> list[Record]:
    """Every record of a file or of the CSV files of a directory, in time order
    (ties: prices before book, then file order). Raises ``ValueError`` naming
    ``FILE:LINE`` for a row it cannot read, or a file whose header it does not know."""
    p = Path(path)
    files = sorted(f for f in p.iterdir() if f.name.endswith((".csv", ".csv.gz"))) if p.is_dir() else [p]
    if not files:
        raise ValueError(f"{p}: no .csv files")
    out: list[tuple] = []
    for f in files:
        out.extend(_read_file(f))
    out.sort(key=lambda r: (r[0], r[1]))  # stable: file and row order within a tie
    return [Record(r) for r in out]


def _read_file(f: Path) -> list[tuple]:
    with _open(f) as fh:
        rows = csv.reader(fh)
        header = next(rows, None)
        if header is None:
            return []
        cols = {name.strip(): i for i, name in enumerate(header)}
        if "is_snapshot" in cols:
            return _l2(f, cols, rows)
        if "asks[0].price" in cols:
            return _snap25(f, cols, rows)
        if "mark_price" in cols or "index_price" in cols:
            return _ticker(f, cols, rows)
        if {"id", "side", "price", "amount"} <= set(cols):
            return _trades(f, cols, rows)
        if {"time", "symbol", "kind", "price"} <= set(cols):
            return _simple(f, cols, rows)
    raise ValueError(f"{f}: unknown CSV header {header!r} (Tardis incremental_book_L2, book_snapshot_25, "
                     "trades, derivative_ticker, or time,symbol,kind,side,price,amount)")


def _ts(row, cols, where) -> int:
    return int(_dec(row[cols["timestamp"]], where)) * 1000  # µs -> ns


def _l2(f, cols, rows) -> list[tuple]:
    out = []
    batch = None  # consecutive rows of one timestamp and symbol become one BOOK record
    for n, row in enumerate(rows, 2):
        where = f"{f}:{n}"
        ts, sym = _ts(row, cols, where), row[cols["symbol"]]
        snap = row[cols["is_snapshot"]].strip().lower() == "true"
        side = _SIDES.get(row[cols["side"]].strip().lower())
        if side is None:
            raise ValueError(f"{where}: side must be bid or ask, got {row[cols['side']]!r}")
        lvl = (side, _dec(row[cols["price"]], where), _dec(row[cols["amount"]], where))
        if batch is not None and batch[0] == ts and batch[2] == sym and batch[3][0] == snap:
            batch[3][1].append(lvl)
            continue
        batch = (ts, BOOK, sym, (snap, [lvl]))
        out.append(batch)
    return out


def _snap25(f, cols, rows) -> list[tuple]:
    out = []
    for n, row in enumerate(rows, 2):
        where = f"{f}:{n}"
        levels = []
        for side, name in ((Side.SELL, "asks"), (Side.BUY, "bids")):
            i = 0
            while f"{name}[{i}].price" in cols:
                px, amt = row[cols[f"{name}[{i}].price"]], row[cols[f"{name}[{i}].amount"]]
                if px.strip():
                    levels.append((side, _dec(px, where), _dec(amt, where)))
                i += 1
        out.append((_ts(row, cols, where), BOOK, row[cols["symbol"]], (True, levels)))
    return out


def _ticker(f, cols, rows) -> list[tuple]:
    out = []
    for n, row in enumerate(rows, 2):
        where = f"{f}:{n}"
        ts, sym = _ts(row, cols, where), row[cols["symbol"]]
        for kind, name in ((MARK, "mark_price"), (INDEX, "index_price")):
            if name in cols and row[cols[name]].strip():
                out.append((ts, kind, sym, _dec(row[cols[name]], where)))
        if "funding_rate" in cols and "funding_timestamp" in cols and row[cols["funding_rate"]].strip():
            fts = int(_dec(row[cols["funding_timestamp"]], where)) * 1000
            out.append((ts, FUNDING, sym, (fts, _dec(row[cols["funding_rate"]], where))))
    return out


def _trades(f, cols, rows) -> list[tuple]:
    out = []
    for n, row in enumerate(rows, 2):
        where = f"{f}:{n}"
        out.append((_ts(row, cols, where), TRADE, row[cols["symbol"]], _dec(row[cols["price"]], where)))
    return out


def _simple(f, cols, rows) -> list[tuple]:
    kinds = {"mark": MARK, "index": INDEX, "trade": TRADE, "level": BOOK, "funding": FUNDING}
    out = []
    for n, row in enumerate(rows, 2):
        where = f"{f}:{n}"
        ts = int(_dec(row[cols["time"]], where) * 10**9)
        kind = kinds.get(row[cols["kind"]].strip())
        if kind is None:
            raise ValueError(f"{where}: kind must be one of {', '.join(kinds)}, got {row[cols['kind']]!r}")
        price = _dec(row[cols["price"]], where)
        if kind == BOOK:
            side = _SIDES.get(row[cols["side"]].strip().lower())
            if side is None:
                raise ValueError(f"{where}: side must be bid or ask, got {row[cols['side']]!r}")
            out.append((ts, BOOK, row[cols["symbol"]], (False, [(side, price, _dec(row[cols["amount"]], where))])))
        elif kind == FUNDING:  # settle now at this rate
            out.append((ts, FUNDING, row[cols["symbol"]], (None, price)))
        else:
            out.append((ts, kind, row[cols["symbol"]], price))
    return out


def has_funding(records: list[Record]) -> bool:
    """Whether the data records funding (then the venue's own automatic funding is turned off)."""
    return any(r[1] == FUNDING for r in records)


def resolve(raw: str, venue) -> str:
    """The venue symbol a recorded symbol means (``BTCUSDT`` -> ``BTC-PERP``)."""
    if raw in venue.instruments:
        return raw
    flat = raw.upper().replace("-", "").replace("_", "").replace("/", "")
    for sym, ins in venue.instruments.items():
        u = ins.underlying.upper()
        if flat in (u + "USDT", u + "PERP", u + "USDTPERP", u + "USD", u + "PERPETUAL", u + "USDTSWAP"):
            return sym
    raise ValueError(f"recorded symbol {raw!r} matches no instrument; valid: {', '.join(venue.instruments)}")


class ReplayMarket:
    """Mirrors recorded data into a venue; the server steps it like the house
    (``observe``, ``step``, ``start_up``; see the module docstring)."""

    def __init__(self, records: list[Record], venue, account: int = 903, speed: float = 1.0,
                 deposit: int = 10**10, tick_ns: int = 0):
        self.records = records
        self.account = account
        self.speed = speed
        self.deposit = deposit
        #: a data-time ``Tick`` at every multiple of this (ns) between records; 0 = none
        self.tick_ns = tick_ns
        self.i = 0  # next record
        self.moved: set[str] = set()  # the server's "step me now" flag: replay runs on its timer
        self.commands = 0
        self.symbols = {raw: resolve(raw, venue) for raw in sorted({r[2] for r in records})}
        # the price source per symbol: mark if recorded, else index, else trades
        kinds: dict[str, set[int]] = {}
        for r in records:
            if r[1] < BOOK:
                kinds.setdefault(r[2], set()).add(r[1])
        self.source = {raw: min(k) for raw, k in kinds.items()}
        # the first recorded price of each symbol's source: set before its first book record, so the
        # recorded levels are inside the venue's price band from the start
        self.first: dict[str, Decimal] = {}
        for r in records:
            if r[1] < BOOK and r[1] == self.source.get(r[2]):
                self.first.setdefault(r[2], r[3])
        self._priced: set[str] = set()
        self._funding: dict[str, tuple[int, Decimal]] = {}  # symbol -> (next funding time, its predicted rate)
        #: (symbol, side, price ticks) -> [order id, open lots]; and order id -> that key
        self.levels: dict[tuple, list[int]] = {}
        self.by_id: dict[int, tuple] = {}
        self._pending_key: tuple | None = None
        self._t0_wall: int | None = None
        self._t0_data = records[0][0] if records else 0
        self.data_now = self._t0_data
        # the next data-time Tick (the first multiple of tick_ns after the data's start)
        self._tick_at = (self._t0_data // tick_ns + 1) * tick_ns if tick_ns else None
        #: while :meth:`step` hands out a record's commands: that record's time (what ``clock`` says)
        self._stamp: int | None = None

    # ------------------------------------------------------------ the clock

    def clock(self) -> int:
        """Venue time now (ns), the server's ``Server.clock``. For the replay's
        own commands, their record's time (or their Tick's); for anyone else's,
        the data time the wall clock has reached at ``speed``, but never past
        the next record not yet sent (its commands come next, and journal time
        never runs backwards); after the last record, data time goes on at
        ``speed``."""
        if self._stamp is not None:
            return self._stamp
        if self._t0_wall is None:
            return self._t0_data
        now = max(self.data_now, self._t0_data + int((time.time_ns() - self._t0_wall) * self.speed))
        nxt = self._next_at()
        return now if nxt is None else min(now, nxt)

    def _next_at(self) -> int | None:
        """The data time of the next thing the replay sends (a record or a Tick), None at the end."""
        if self.i >= len(self.records):
            return None
        ts = self.records[self.i][0]
        return ts if self._tick_at is None else min(ts, self._tick_at)

    @property
    def done(self) -> bool:
        return self.i >= len(self.records)

    # ------------------------------------------------------------ the server's hooks

    def start_up(self, venue) -> list:
        if self.account in venue.accounts:  # a recovered venue: the mirror starts again from the data's top
            return [CancelAll(account=self.account)]
        return [OpenAccount(account=self.account),
                Deposit(account=self.account, asset=venue.settle_name, amount=self.deposit)]

    def observe(self, command, events) -> None:
        """Keep the mirror's orders in step with what the venue did to them
        (its own commands, and users' fills against them)."""
        me = self.account
        levels, by_id = self.levels, self.by_id
        for ev in events:
            t = type(ev)
            if getattr(ev, "account", None) != me:
                continue
            if t is OrderAccepted and self._pending_key is not None:
                key = self._pending_key
                levels[key] = [ev.order_id, ev.qty]
                by_id[ev.order_id] = key
            elif t is Fill or t is OrderAmended:
                key = by_id.get(ev.order_id)
                if key is not None:
                    left = ev.remaining if t is Fill else ev.qty
                    if left:
                        levels[key][1] = left
                    else:
                        del levels[key], by_id[ev.order_id]
            elif t is OrderCancelled:
                key = by_id.pop(ev.order_id, None)
                if key is not None:
                    del levels[key]
        self._pending_key = None

    def step(self, venue, now: int) -> Iterator:
        """The commands of every record (and Tick) due by wall time ``now`` (ns)
        at ``speed``; while the server applies each, :meth:`clock` is its data time."""
        if self._t0_wall is None:
            self._t0_wall = now
        due = self._t0_data + int((now - self._t0_wall) * self.speed)
        try:
            for ts, cmd in self.due(venue, due):
                self._stamp = ts
                self.commands += 1
                yield cmd
        finally:
            self._stamp = None

    def due(self, venue, until: int | None = None) -> Iterator[tuple[int, object]]:
        """``(data time, command)`` of every record and Tick up to data time
        ``until`` (None: to the end), in order: the one sequence both the live
        :meth:`step` and :func:`replay_offline` send."""
        records, tick = self.records, self.tick_ns
        while self.i < len(records):
            ts = records[self.i][0]
            if tick:  # the quiet stretch before this record: a Tick at each multiple of tick_ns in it
                while self._tick_at < ts and (until is None or self._tick_at <= until):
                    self.data_now = self._tick_at
                    self._tick_at += tick
                    yield self.data_now, Tick()
            if until is not None and ts > until:
                return
            if tick and self._tick_at == ts:  # a record on a tick's time stands for that tick
                self._tick_at += tick
            rec = records[self.i]
            self.i += 1
            self.data_now = ts
            for cmd in self.commands_for(rec, venue):
                yield ts, cmd

    # ------------------------------------------------------------ records -> commands

    def commands_for(self, rec: Record, venue) -> Iterator:
        ts, kind, raw, payload = rec
        sym = self.symbols[raw]
        ins = venue.instruments[sym]
        if kind == FUNDING:
            yield from self._funding_for(raw, sym, *payload)
            return
        if kind != BOOK:
            if kind == self.source.get(raw):
                self._priced.add(raw)
                yield SetIndexPrice(asset=ins.underlying, price=int(payload * PRICE_SCALE))
            return
        snapshot, rows = payload
        if raw not in self._priced:  # a book before any price: start from the first recorded one, else its mid
            self._priced.add(raw)
            first = self.first.get(raw)
            if first is None:
                bids = [p for side, p, a in rows if side is Side.BUY and a > 0]
                asks = [p for side, p, a in rows if side is Side.SELL and a > 0]
                first = (max(bids) + min(asks)) / 2 if bids and asks else None
            if first is not None:
                yield SetIndexPrice(asset=ins.underlying, price=int(first * PRICE_SCALE))
        target: dict[tuple, int] = {}
        for side, price, amount in rows:
            key = (sym, side, int((price / ins.tick_size).to_integral_value()))
            target[key] = int((amount / ins.lot_size).to_integral_value())
        if snapshot:  # every level of this symbol not in the snapshot goes
            for key in sorted(k for k in self.levels if k[0] == sym and k not in target):
                yield CancelOrder(account=self.account, order_id=self.levels[key][0])
        for key, lots in target.items():
            yield from self._set(key, lots)

    def _funding_for(self, raw: str, sym: str, at: int | None, rate: Decimal) -> Iterator:
        """A ticker row names the next funding time and its rate; once a row names a
        later time, the earlier one has happened: settle it at the rate last
        recorded for it. (The simple CSV's ``funding`` row settles at once.)"""
        if at is None:
            yield SettleFunding(symbol=sym, rate_e8=int((rate * RATE_SCALE).to_integral_value()))
            return
        prev = self._funding.get(raw)
        self._funding[raw] = (at, rate)
        if prev is not None and at > prev[0]:
            yield SettleFunding(symbol=sym, rate_e8=int((prev[1] * RATE_SCALE).to_integral_value()))

    def _set(self, key: tuple, lots: int) -> Iterator:
        cur = self.levels.get(key)
        if cur is None:
            if lots > 0:
                self._pending_key = key
                yield NewOrder(account=self.account, symbol=key[0], side=key[1], qty=lots, price=key[2],
                               tif=TimeInForce.GTC, stp=StpMode.EXPIRE_MAKER)
        elif lots <= 0:
            yield CancelOrder(account=self.account, order_id=cur[0])
        elif lots != cur[1]:
            yield AmendOrder(account=self.account, order_id=cur[0], qty=lots)


def replay_offline(venue, market: ReplayMarket, until_ns: int | None = None) -> list[tuple[int, object, list]]:
    """Apply ``market``'s records (and Ticks) to ``venue`` with no server and
    no wall clock, each command stamped with its record's time. Returns
    ``[(ts, command, events)]``: the same for the same data, every time, and
    the same commands and stamps a live ``serve --replay`` journals for the replay."""
    out = []
    for cmd in market.start_up(venue):
        ev = venue.apply(cmd, market._t0_data)
        market.observe(cmd, ev)
        out.append((market._t0_data, cmd, ev))
    for ts, cmd in market.due(venue, until_ns):
        ev = venue.apply(cmd, ts)
        market.observe(cmd, ev)
        out.append((ts, cmd, ev))
    return out
