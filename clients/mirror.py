"""BookMirror: a local L2 book kept in sync with the venue (Clone pattern).

The sync rules, from the ZeroMQ guide's Clone pattern and Binance's and
Bybit's "how to manage a local order book correctly":

1. Subscribe to ``<SYMBOL>.book`` on the PUB socket first, and buffer.
2. Ask for a snapshot over the ROUTER (``QueryBook``, no login needed); it
   carries the delta sequence number ``S`` it reflects.
3. Drop buffered deltas with ``seq <= S``; the next must be ``S + 1``.
4. Apply each delta (absolute lots per price; 0 removes the level). Any
   ``seq`` other than last + 1 is a gap: clear, re-snapshot, go to 3.
5. A ``BookHeartbeat`` whose ``seq`` is ahead of ours is a gap too (the
   lost delta was the last one before a quiet spell).

A gap is what a slow subscriber sees when the server's PUB high-water mark
drops its messages: matching never waits for anyone, the mirror repairs
itself, and ``resyncs`` counts how often.

Levels are kept in ``SortedDict``\\ s (bids keyed by negated price so "best"
is the first key on both sides): best bid/ask O(log n), a level update
O(log n), depth(n) O(n).

    >>> m = BookMirror(["BTC-PERP"], market_data="tcp://127.0.0.1:7002",  # doctest: +SKIP
    ...                orders="tcp://127.0.0.1:7001")
    >>> m.wait_synced(5.0); m.best_bid("BTC-PERP")                          # doctest: +SKIP
    (Decimal('59990.0'), Decimal('1.500'))
"""

from __future__ import annotations

import itertools
import time
from decimal import Decimal

import msgspec
import zmq
from sortedcontainers import SortedDict

from clients import models
from clients._core import DEFAULT_MARKET_DATA, DEFAULT_ORDERS, curve
from clients.errors import ExchangeError, RequestTimeout
from protocol.messages import BookDelta, BookSnapshot, Instruments, QueryBook, QueryInstruments
from protocol.session import BookHeartbeat, Reply, Request, decode_market, decode_outbound, encode


class _SymbolBook:
    __slots__ = ("symbol", "bids", "asks", "seq", "synced", "buffer", "pending", "resyncs")

    def __init__(self, symbol: str):
        self.symbol = symbol
        self.bids: SortedDict = SortedDict()  # -price -> lots
        self.asks: SortedDict = SortedDict()  # price -> lots
        self.seq = 0
        self.synced = False
        self.buffer: list[BookDelta] = []
        self.pending: int | None = None  # request id of the snapshot in flight
        self.resyncs = 0


class BookMirror:
    """Local L2 books for ``symbols``. Call :meth:`poll` (or :meth:`run_for`)
    often; it applies what arrived and repairs gaps by itself.

    Prices and quantities are kept in venue integers (ticks, lots) and given
    in human ``Decimal`` units by :meth:`best_bid`, :meth:`best_ask` and
    :meth:`depth`; :meth:`levels` returns the integers.
    """

    def __init__(self, symbols: list[str] | str, *, market_data: str = DEFAULT_MARKET_DATA,
                 orders: str = DEFAULT_ORDERS, server_key: str | bytes | None = None,
                 context: zmq.Context | None = None, rcvhwm: int = 100_000, timeout: float = 5.0):
        self.ctx = context or zmq.Context.instance()
        self.timeout = timeout
        self.books = {s: _SymbolBook(s) for s in ([symbols] if isinstance(symbols, str) else symbols)}
        self.sub = self.ctx.socket(zmq.SUB)
        self.sub.linger = 0
        self.sub.rcvhwm = rcvhwm
        self.req = self.ctx.socket(zmq.DEALER)
        self.req.linger = 0
        if server_key is not None:
            curve(self.sub, server_key)
            curve(self.req, server_key)
        for s in self.books:
            self.sub.setsockopt(zmq.SUBSCRIBE, s.encode() + b".book\x00")
        self.sub.connect(market_data)
        self.req.connect(orders)
        self._poller = zmq.Poller()
        self._poller.register(self.sub, zmq.POLLIN)
        self._poller.register(self.req, zmq.POLLIN)
        self._ids = itertools.count(1)
        self._by_req: dict[int, _SymbolBook] = {}
        self.markets: models.Markets | None = None
        self.messages = 0
        self._ask_markets()
        for b in self.books.values():
            self._resync(b, count=False)

    # ------------------------------------------------------------- state

    @property
    def resyncs(self) -> int:
        """Re-snapshots forced by gaps, all symbols (the first sync is not counted)."""
        return sum(b.resyncs for b in self.books.values())

    def synced(self, symbol: str | None = None) -> bool:
        if symbol is not None:
            return self.books[symbol].synced
        return all(b.synced for b in self.books.values())

    def seq(self, symbol: str) -> int:
        return self.books[symbol].seq

    def levels(self, symbol: str, n: int | None = None) -> tuple[list[tuple[int, int]], list[tuple[int, int]]]:
        """(bids, asks) best first as (ticks, lots), like a ``BookSnapshot``."""
        b = self.books[symbol]
        bids = [(-p, q) for p, q in itertools.islice(b.bids.items(), n)]
        asks = list(itertools.islice(b.asks.items(), n))
        return bids, asks

    def best_bid(self, symbol: str) -> tuple[Decimal, Decimal] | None:
        b = self.books[symbol]
        if not b.bids:
            return None
        p, q = b.bids.peekitem(0)
        return self._human(symbol, -p, q)

    def best_ask(self, symbol: str) -> tuple[Decimal, Decimal] | None:
        b = self.books[symbol]
        if not b.asks:
            return None
        p, q = b.asks.peekitem(0)
        return self._human(symbol, p, q)

    def depth(self, symbol: str, n: int = 10) -> tuple[list[tuple[Decimal, Decimal]], list[tuple[Decimal, Decimal]]]:
        bids, asks = self.levels(symbol, n)
        return [self._human(symbol, p, q) for p, q in bids], [self._human(symbol, p, q) for p, q in asks]

    def _human(self, symbol: str, ticks: int, lots: int):
        if self.markets is None:
            return Decimal(ticks), Decimal(lots)
        ins = self.markets[symbol]
        return ins.price(ticks), ins.qty(lots)

    # ------------------------------------------------------------ running

    def poll(self, timeout: float = 0.0) -> int:
        """Process what has arrived, waiting up to ``timeout`` s for the
        first message. Returns the number of messages handled."""
        n = 0
        events = dict(self._poller.poll(max(0, int(timeout * 1000))))
        if self.req in events:
            while True:
                try:
                    frame = self.req.recv(zmq.NOBLOCK)
                except zmq.Again:
                    break
                self._on_reply(frame)
                n += 1
        if self.sub in events:
            recv = self.sub.recv
            while n < 100_000:
                try:
                    frame = recv(zmq.NOBLOCK)
                except zmq.Again:
                    break
                self._on_market(frame)
                n += 1
        return n

    def run_for(self, seconds: float) -> None:
        deadline = time.monotonic() + seconds
        while (left := deadline - time.monotonic()) > 0:
            self.poll(min(left, 0.05))

    def wait_synced(self, timeout: float | None = None, symbol: str | None = None) -> None:
        t = self.timeout if timeout is None else timeout
        deadline = time.monotonic() + t
        while not self.synced(symbol):
            left = deadline - time.monotonic()
            if left <= 0:
                raise RequestTimeout(f"book mirror not synced within {t}s")
            self.poll(min(left, 0.05))

    def wait_seq(self, symbol: str, seq: int, timeout: float | None = None) -> None:
        """Poll until ``symbol`` is synced at ``seq`` or later."""
        t = self.timeout if timeout is None else timeout
        deadline = time.monotonic() + t
        b = self.books[symbol]
        while not (b.synced and b.seq >= seq):
            left = deadline - time.monotonic()
            if left <= 0:
                raise RequestTimeout(f"{symbol} mirror at seq {b.seq} (synced={b.synced}), wanted {seq}, after {t}s")
            self.poll(min(left, 0.05))

    def close(self) -> None:
        self.sub.close(linger=0)
        self.req.close(linger=0)

    def __enter__(self) -> BookMirror:
        return self

    def __exit__(self, *exc) -> None:
        self.close()

    # ------------------------------------------------------------ internals

    def _ask_markets(self) -> None:
        self.req.send(encode(Request(id=0, cmd=QueryInstruments())))

    def _resync(self, b: _SymbolBook, count: bool = True) -> None:
        if count:
            b.resyncs += 1
        b.synced = False
        b.bids.clear()
        b.asks.clear()
        b.buffer.clear()
        if b.pending is None:
            rid = next(self._ids)
            b.pending = rid
            self._by_req[rid] = b
            self.req.send(encode(Request(id=rid, cmd=QueryBook(symbol=b.symbol))))

    def _on_reply(self, frame: bytes) -> None:
        try:
            msg = decode_outbound(frame)
        except msgspec.DecodeError as exc:
            raise ExchangeError(f"undecodable reply: {exc}") from None
        if type(msg) is not Reply or msg.id is None:
            return
        if msg.id == 0:
            if msg.events and type(msg.events[0]) is Instruments:
                self.markets = models.Markets(msg.events[0])
            return
        b = self._by_req.pop(msg.id, None)
        if b is None:
            return
        b.pending = None
        snap = msg.events[0] if msg.events else None
        if type(snap) is not BookSnapshot:
            raise ExchangeError(f"snapshot of {b.symbol} refused: {snap!r}")
        for p, q in snap.bids:
            b.bids[-p] = q
        for p, q in snap.asks:
            b.asks[p] = q
        b.seq = snap.seq
        b.synced = True
        buffered, b.buffer = b.buffer, []
        for d in buffered:
            if d.seq <= b.seq:
                continue  # already in the snapshot
            if not self._apply(b, d):
                return

    def _on_market(self, frame: bytes) -> None:
        self.messages += 1
        try:
            msg = decode_market(frame)
        except msgspec.DecodeError:
            return  # not ours to judge: a newer server's message
        t = type(msg)
        if t is BookDelta:
            b = self.books.get(msg.symbol)
            if b is None:
                return
            if not b.synced:
                b.buffer.append(msg)
                return
            self._apply(b, msg)
        elif t is BookHeartbeat:
            b = self.books.get(msg.symbol)
            if b is not None and b.synced and msg.seq > b.seq:
                self._resync(b)  # the last delta(s) before a quiet spell were lost

    def _apply(self, b: _SymbolBook, d: BookDelta) -> bool:
        if d.seq != b.seq + 1:
            if d.seq <= b.seq:
                return True  # a duplicate: ignore
            self._resync(b)
            return False
        bids, asks = b.bids, b.asks
        for p, q in d.bids:
            if q:
                bids[-p] = q
            else:
                bids.pop(-p, None)
        for p, q in d.asks:
            if q:
                asks[p] = q
            else:
                asks.pop(p, None)
        b.seq = d.seq
        return True
