"""Price-time priority limit order book for one instrument.

Pure Python, integers only (prices in ticks, quantities in lots), no I/O, no
clock, no randomness: the same sequence of calls always gives the same result.

Data layout
===========

Sides are the ints ``BUY = 1`` and ``SELL = -1``.  Every price level is stored
under a *key* ``side * price``: bids under ``+price``, asks under ``-price``.
On both sides a larger key is a better price, so the same code serves both
sides and "is this level within the taker's limit" is one int comparison
(``key >= -taker_side * limit``).

Per side the book keeps:

* ``levels``: ``dict`` key -> :class:`_Level` (O(1) lookup on add/level_qty);
* ``keys``: a plain ``list`` of the level keys sorted ascending, so the *best*
  level is ``keys[-1]``.  Best-at-the-end makes removing the best level (the
  common case while matching) an O(1) ``list.pop()``, and new levels near the
  touch are inserted near the end, where ``bisect.insort`` moves few pointers.
  Insert/remove of a deep level is O(L) pointer moves (L = levels on that
  side), a single ``memmove``.  Up to ~10^3 levels per side that is as
  cheap as the O(log L) Python-level work of ``sortedcontainers``
  (``SortedList``/``SortedDict``); for churn of levels at random depth the
  latter wins by ~1.3x at 10^4 levels and ~6x at 10^5, while churn near the
  touch stays cheap here (measured: ``docs/adr/0001-order-book-structure.md``).

Each level is a circular, intrusive, doubly linked list of :class:`Order`
objects whose sentinel is the :class:`_Level` itself (it has the same
``_prev``/``_next`` slots as an order): ``level._next`` is the oldest order
(head, first to trade), ``level._prev`` the newest (tail).  The sentinel
removes every head/tail special case, so cancel is two pointer writes, and
the level is empty exactly when ``level._next is level``.  A ``dict`` used as
a FIFO was rejected: deleting from its front leaves dummy slots that
``next(iter(d))`` must scan.  A ``deque`` was rejected: cancelling from its
middle is O(n).

``orders``: one ``dict`` order_id -> :class:`Order` for O(1) get/cancel.

Market-data change tracking: one ``set`` of touched level keys per side (one
``set.add`` of an int per touched level); :meth:`OrderBook.take_changes`
resolves them against the current levels.

The sides are held in 3-element tuples ``(None, bid_thing, ask_thing)`` so
that ``tup[side]`` selects the side directly (``tup[1]`` is the bid entry,
``tup[-1]`` the ask entry) without a branch.

Complexity
==========

L = number of price levels on the side concerned, k = number of maker orders
touched by a match, m = number of levels touched.

=========================  ==============================================
operation                  cost
=========================  ==============================================
``best_bid/best_ask``      O(1)
``add``                    O(1) into an existing level; new level:
                           O(log L) search + O(L) pointer move (memmove,
                           near O(1) close to the touch)
``cancel``                 O(1); if it empties a level, + O(log L) search
                           and O(L) memmove (O(1) for the best level)
``reduce``                 O(1)
``get/__contains__/len``   O(1)
``match``                  O(k + m) (+ O(1) per emptied level, which is
                           always the best one); O(1) when nothing matches
``fillable``               O(m) with STP_NONE, else O(k + m); read-only
``iter_orders``            O(1) per order yielded
``would_cross``            O(1)
``level_qty``              O(1)
``depth(side, n)``         O(n)
``take_changes``           O(c log c), c = changed levels since last call
``take_delta``             the same, split by side (O(1) for c = 1)
``_check``                 O(N + L) (debug/tests only)
=========================  ==============================================

Memory: an :class:`Order` is one ``__slots__`` object (15 slots, 152 bytes on
64-bit CPython 3.11, GC header included) plus one id-index dict entry (~63
bytes per order measured at 10^6 orders); no per-order containers.  Orders
leaving the book get their linkage cleared, so dead orders form no reference
cycles and are freed by refcounting alone.
"""

from __future__ import annotations

from bisect import bisect_left, insort
from operator import itemgetter

__all__ = [
    "BUY",
    "SELL",
    "STP_NONE",
    "STP_EXPIRE_TAKER",
    "STP_EXPIRE_MAKER",
    "STP_EXPIRE_BOTH",
    "Order",
    "MatchResult",
    "OrderBook",
]

BUY = 1
SELL = -1

STP_NONE = 0
STP_EXPIRE_TAKER = 1
STP_EXPIRE_MAKER = 2
STP_EXPIRE_BOTH = 3

_STP_MODES = (STP_NONE, STP_EXPIRE_TAKER, STP_EXPIRE_MAKER, STP_EXPIRE_BOTH)


# Order.flags bits, set by the venue (the book never reads them)
FLAG_REDUCE_ONLY = 1
FLAG_LIQUIDATION = 2


class Order:
    """One order.  Fields are owned by the venue; the book reads ``order_id``,
    ``account``, ``side``, ``price``, ``qty`` and ``stp``, decrements ``qty``
    and increments ``filled`` on fills.  ``_prev``/``_next``/``_level`` are the
    book's private linkage (``None`` when the order does not rest).

    Construction is O(1) and allocates nothing but the object itself.
    """

    __slots__ = (
        "order_id",
        "account",
        "side",
        "price",
        "qty",
        "filled",
        "stp",
        "client_order_id",
        "symbol",
        "tif",
        "flags",
        "created_seq",
        "_prev",
        "_next",
        "_level",
    )

    def __init__(
        self,
        order_id: int,
        account: int,
        side: int,
        price: int,
        qty: int,
        stp: int = STP_EXPIRE_TAKER,
        client_order_id: str | None = None,
        symbol: str = "",
        tif: int = 0,
        flags: int = 0,
        created_seq: int = 0,
    ) -> None:
        self.order_id = order_id
        self.account = account
        self.side = side
        self.price = price
        self.qty = qty
        self.filled = 0
        self.stp = stp
        self.client_order_id = client_order_id
        self.symbol = symbol
        self.tif = tif
        self.flags = flags
        self.created_seq = created_seq
        self._prev = None
        self._next = None
        self._level = None

    def __repr__(self) -> str:
        return (
            f"Order(order_id={self.order_id!r}, account={self.account!r}, "
            f"side={self.side!r}, price={self.price!r}, qty={self.qty!r}, "
            f"filled={self.filled!r}, stp={self.stp!r})"
        )


class _Level:
    """One price level: sentinel node of a circular doubly linked list of
    orders (``_next`` = oldest, ``_prev`` = newest) plus ``price`` and
    ``total`` (sum of the orders' qty).  Never empty while in the book.
    Built only by :meth:`OrderBook.add`, inline, with its first order."""

    __slots__ = ("_prev", "_next", "price", "total")


# object.__new__ bound once: creates a _Level with no __init__ frame.
_new_object = object.__new__

# tuple.__new__ bound once: the result tuple is built with no Python frame
# (measured ~0.17 us vs ~0.22 us for a __slots__ class with __init__).
_new_tuple = tuple.__new__


class MatchResult(tuple):
    """Result of :meth:`OrderBook.match`; a 4-tuple, so it can be unpacked:
    ``fills, stp_expired, remaining, taker_expired_by_stp = book.match(...)``.

    * ``fills``: list of ``(maker Order, fill_qty, price)`` in execution order;
      the maker's ``qty`` is its remaining qty after that fill (0 = fully
      filled and removed from the book), ``filled`` is updated.
    * ``stp_expired``: list of maker orders removed by self-trade prevention.
    * ``remaining``: taker lots not filled.
    * ``taker_expired_by_stp``: True if STP expired the taker's remainder.
    """

    __slots__ = ()

    # itemgetter properties: C-level accessors, no Python frame per access.
    fills = property(itemgetter(0))
    stp_expired = property(itemgetter(1))
    remaining = property(itemgetter(2))
    taker_expired_by_stp = property(itemgetter(3))

    def __new__(
        cls,
        fills: list,
        stp_expired: list,
        remaining: int,
        taker_expired_by_stp: bool,
    ) -> "MatchResult":
        return _new_tuple(cls, (fills, stp_expired, remaining, taker_expired_by_stp))

    def __getnewargs__(self) -> tuple:
        # Lets copy/pickle call __new__ with the four fields.
        return tuple(self)

    @property
    def filled_qty(self) -> int:
        """Total lots filled (sum of fill quantities); O(len(fills))."""
        return sum(f[1] for f in self[0])

    def __repr__(self) -> str:
        return (
            f"MatchResult(fills={self[0]!r}, stp_expired={self[1]!r}, "
            f"remaining={self[2]!r}, taker_expired_by_stp={self[3]!r})"
        )


class OrderBook:
    """Price-time priority limit order book for one instrument.

    Not thread-safe.  All methods are deterministic.  Only builtin exceptions
    are raised (``ValueError``, ``KeyError``).
    """

    __slots__ = ("symbol", "_orders", "_levels", "_keys", "_changed")

    def __init__(self, symbol: str) -> None:
        self.symbol = symbol
        self._orders: dict[int, Order] = {}
        # (None, bids, asks): indexed directly by side (1 -> bids, -1 -> asks).
        self._levels: tuple = (None, {}, {})
        self._keys: tuple = (None, [], [])
        self._changed: tuple = (None, set(), set())

    # ------------------------------------------------------------------ queries

    def best_bid(self) -> int | None:
        """Best (highest) bid price or None.  O(1)."""
        keys = self._keys[1]
        return keys[-1] if keys else None

    def best_ask(self) -> int | None:
        """Best (lowest) ask price or None.  O(1)."""
        keys = self._keys[-1]
        return -keys[-1] if keys else None

    def __len__(self) -> int:
        """Number of resting orders.  O(1)."""
        return len(self._orders)

    def __contains__(self, order_id: object) -> bool:
        """True if an order with this id rests in the book.  O(1)."""
        return order_id in self._orders

    def get(self, order_id: int) -> Order | None:
        """The resting order with this id, or None.  O(1)."""
        return self._orders.get(order_id)

    def would_cross(self, side: int, price: int) -> bool:
        """Post-only check: would a ``side`` order at ``price`` trade on
        arrival?  (A buy crosses if an ask exists and ``price >= best_ask``;
        a sell if a bid exists and ``price <= best_bid``.)  O(1).
        Raises ValueError for a bad side."""
        if side != 1 and side != -1:
            raise ValueError(f"side must be BUY (1) or SELL (-1), got {side!r}")
        keys = self._keys[-side]
        # Opposite key -side*price >= best opposite key  <=>  crosses.
        return bool(keys) and -side * price <= keys[-1]

    def level_qty(self, side: int, price: int) -> int:
        """Total resting lots at (side, price); 0 if no such level.  O(1).
        Raises ValueError for a bad side."""
        if side != 1 and side != -1:
            raise ValueError(f"side must be BUY (1) or SELL (-1), got {side!r}")
        lvl = self._levels[side].get(side * price)
        return lvl.total if lvl is not None else 0

    def depth(self, side: int, n: int | None = None) -> list[tuple[int, int]]:
        """Top ``n`` levels of ``side`` best-first as ``(price, total_lots)``;
        ``n=None`` for all levels.  O(n).  Raises ValueError for a bad side
        or negative n."""
        if side != 1 and side != -1:
            raise ValueError(f"side must be BUY (1) or SELL (-1), got {side!r}")
        keys = self._keys[side]
        levels = self._levels[side]
        if n is None:
            sel = keys[::-1]
        else:
            if n < 0:
                raise ValueError(f"n must be >= 0, got {n!r}")
            sel = keys[: -n - 1 : -1] if n else []
        # key = side * price  =>  price = side * key (side is +-1).
        return [(side * k, levels[k].total) for k in sel]

    def iter_orders(self, side: int):
        """Iterate the resting orders of ``side`` in priority order (best
        price first, FIFO within a price).  O(1) per order.  The book must not
        be mutated during iteration.  Raises ValueError for a bad side."""
        if side != 1 and side != -1:
            raise ValueError(f"side must be BUY (1) or SELL (-1), got {side!r}")
        levels = self._levels[side]
        for k in reversed(self._keys[side]):
            lvl = levels[k]
            o = lvl._next
            while o is not lvl:
                yield o
                o = o._next

    def take_changes(self) -> list[tuple[int, int, int]]:
        """Return ``(side, price, new_total_qty)`` for every level touched
        since the previous call (``new_total_qty`` 0 = level removed), sorted
        by (side, price), and clear the record.  A level touched and restored
        to its old total is still reported (with its current total).
        O(c log c) for c touched levels."""
        out = []
        for side in (SELL, BUY):
            touched = self._changed[side]
            if touched:
                levels = self._levels[side]
                for k in touched:
                    lvl = levels.get(k)
                    out.append((side, side * k, lvl.total if lvl is not None else 0))
                touched.clear()
        out.sort()
        return out

    def take_delta(self) -> tuple[list[tuple[int, int]], list[tuple[int, int]]]:
        """:meth:`take_changes` split by side, as the venue's BookDelta wants
        it: ``(bids, asks)``, each a list of ``(price, new_total_qty)`` in
        ascending price, and clear the record. The usual single touched level
        per side is answered without a sort. O(c log c)."""
        # the two sides written out (no loop, no intermediate list): this runs
        # once per order-book command
        touched = self._changed[BUY]
        if not touched:
            bids = []
        elif len(touched) == 1:
            k = touched.pop()
            lvl = self._levels[BUY].get(k)
            bids = [(k, lvl.total if lvl is not None else 0)]
        else:
            got = self._levels[BUY].get
            bids = [(k, lvl.total if (lvl := got(k)) is not None else 0) for k in sorted(touched)]
            touched.clear()
        touched = self._changed[SELL]
        if not touched:
            asks = []
        elif len(touched) == 1:
            k = touched.pop()
            lvl = self._levels[SELL].get(k)
            asks = [(-k, lvl.total if lvl is not None else 0)]
        else:
            # ask keys are −price: descending keys give ascending prices
            got = self._levels[SELL].get
            asks = [(-k, lvl.total if (lvl := got(k)) is not None else 0) for k in sorted(touched, reverse=True)]
            touched.clear()
        return bids, asks

    # ---------------------------------------------------------------- mutation

    def add(self, order: Order) -> None:
        """Rest ``order`` at the back of its price level.

        Precondition (not checked, for speed): the order does not cross the
        opposite side -- route crossing orders through :meth:`match` first
        (see :meth:`would_cross`).  ``_check()`` detects a violation.

        O(1) into an existing level; a new level costs O(log L) + an O(L)
        pointer move (near O(1) close to the touch).

        Raises ValueError if ``order.order_id`` already rests in this book,
        if the order object already rests (here or in another book), if
        ``order.side`` is not BUY/SELL, or if ``order.qty <= 0``.
        """
        if order._level is not None:
            raise ValueError(f"order {order.order_id!r} already rests in a book")
        side = order.side
        if side != 1 and side != -1:
            raise ValueError(f"side must be BUY (1) or SELL (-1), got {side!r}")
        qty = order.qty
        if qty <= 0:
            raise ValueError(f"qty must be > 0, got {qty!r}")
        oid = order.order_id
        # Duplicate check and index insert in one hash lookup (setdefault);
        # nothing below can fail, so the index never holds a half-added order.
        if self._orders.setdefault(oid, order) is not order:
            raise ValueError(f"order id {oid!r} already rests in the book")
        price = order.price
        key = side * price
        levels = self._levels[side]
        lvl = levels.get(key)
        if lvl is None:
            # New level built inline (object.__new__ + slot stores, no
            # __init__ frame and no self-link then relink): measurably cheaper
            # on the add/cancel churn at the touch.
            lvl = levels[key] = _new_object(_Level)
            lvl.price = price
            lvl.total = qty
            lvl._next = lvl._prev = order
            order._prev = order._next = lvl
            keys = self._keys[side]
            # Fast path: a new best (or the first) level is an append.
            if not keys or key > keys[-1]:
                keys.append(key)
            else:
                insort(keys, key)
        else:
            tail = lvl._prev
            order._prev = tail
            order._next = lvl
            tail._next = order
            lvl._prev = order
            lvl.total += qty
        order._level = lvl
        self._changed[side].add(key)

    def cancel(self, order_id: int) -> Order | None:
        """Remove the resting order ``order_id`` and return it (its linkage
        cleared, ``qty`` untouched), or None if it does not rest here.

        O(1); if the level empties, + O(log L) search and O(L) memmove to drop
        its key (O(1) for the best level).  Never raises for unknown ids.
        """
        order = self._orders.pop(order_id, None)
        if order is None:
            return None
        lvl = order._level
        prv = order._prev
        nxt = order._next
        prv._next = nxt
        nxt._prev = prv
        # Clear links so a removed order keeps no part of the book alive and
        # dead orders form no reference cycles (freed by refcount, not GC).
        order._prev = order._next = order._level = None
        side = order.side
        key = side * lvl.price
        if nxt is prv:
            # Only the sentinel can be both neighbours: the level is now empty.
            keys = self._keys[side]
            if keys[-1] == key:
                keys.pop()
            else:
                del keys[bisect_left(keys, key)]
            del self._levels[side][key]
            lvl._prev = lvl._next = None  # break the sentinel self-cycle
        else:
            lvl.total -= order.qty
        self._changed[side].add(key)
        return order

    def reduce(self, order_id: int, new_qty: int) -> Order:
        """Decrease the remaining qty of a resting order in place, keeping its
        time priority.  Returns the order.  O(1).

        Raises KeyError if the id does not rest here; ValueError unless
        ``0 < new_qty < order.qty``.
        """
        order = self._orders[order_id]
        old = order.qty
        if not 0 < new_qty < old:
            raise ValueError(f"new_qty must satisfy 0 < new_qty < {old}, got {new_qty!r}")
        order.qty = new_qty
        order._level.total -= old - new_qty
        self._changed[order.side].add(order.side * order.price)
        return order

    def match(
        self,
        side: int,
        limit_price: int | None,
        qty: int,
        account: int,
        stp: int,
    ) -> MatchResult:
        """Execute a taker order against the opposite side.

        The taker (``side``, ``limit_price`` or None for no limit, ``qty``
        lots, ``account``, ``stp`` mode) trades with makers in price-time
        priority while the level price is at or better than the limit; each
        fill is at the maker's price.  Filled makers leave the book.

        Self-trade prevention (the TAKER's mode decides), when the next maker
        has the taker's ``account`` and ``stp != STP_NONE``:
        ``STP_EXPIRE_TAKER`` stops matching and expires the taker remainder;
        ``STP_EXPIRE_MAKER`` removes that maker (reported in ``stp_expired``)
        and continues; ``STP_EXPIRE_BOTH`` removes that maker and expires the
        taker remainder.  ``STP_NONE`` trades normally.

        The taker itself is never rested by this method.

        Venues should test passive orders with :meth:`would_cross` first:
        it is cheaper than building an empty result here.

        O(k + m) for k makers touched over m levels; O(1) when nothing is
        marketable.  Raises ValueError (before changing anything) for a bad
        side, or for an unknown ``stp`` value when something is marketable.
        """
        if side != 1 and side != -1:
            raise ValueError(f"side must be BUY (1) or SELL (-1), got {side!r}")
        oside = -side
        keys = self._keys[oside]
        # Cheap empty path: nothing resting, or best level outside the limit.
        if not keys or qty <= 0:
            return _new_tuple(MatchResult, ([], [], qty, False))
        if limit_price is None:
            # keys[0] is the worst key; match() only ever pops keys from the
            # end, so every remaining key stays >= it: "no limit".
            limit_key = keys[0]
        else:
            limit_key = oside * limit_price
            if keys[-1] < limit_key:
                return _new_tuple(MatchResult, ([], [], qty, False))
        # Validated here, after the cheap empty path but before any mutation,
        # so a bad mode can never leave a half-applied match behind.
        if stp not in _STP_MODES:
            raise ValueError(f"unknown stp mode {stp!r}")

        levels = self._levels[oside]
        orders = self._orders
        changed = self._changed[oside]
        fills = []
        expired = []
        taker_expired = False
        # Locals instead of self./global lookups in the loop: measurable in
        # CPython, the loop body is a few dozen bytecodes.
        append_fill = fills.append
        while keys:
            key = keys[-1]
            if key < limit_key:
                break
            lvl = levels[key]
            price = lvl.price
            total = old_total = lvl.total
            o = lvl._next
            while o is not lvl:
                if stp and o.account == account:
                    if stp == STP_EXPIRE_TAKER:
                        taker_expired = True
                        break
                    nxt = o._next
                    del orders[o.order_id]
                    total -= o.qty
                    o._prev = o._next = o._level = None
                    expired.append(o)
                    o = nxt
                    if stp == STP_EXPIRE_BOTH:
                        taker_expired = True
                        break
                    continue
                oq = o.qty
                if oq > qty:
                    # Partial maker fill ends the taker; maker keeps priority.
                    o.qty = oq - qty
                    o.filled += qty
                    total -= qty
                    append_fill((o, qty, price))
                    qty = 0
                    break
                o.qty = 0
                o.filled += oq
                total -= oq
                qty -= oq
                append_fill((o, oq, price))
                nxt = o._next
                del orders[o.order_id]
                o._prev = o._next = o._level = None
                o = nxt
                if not qty:
                    break
            # Every removal above happened at the head: relink once.
            if o is lvl:
                # Level emptied (always the best one): O(1) pop.  No cycle to
                # break: the dead orders it still points to have cleared links.
                keys.pop()
                del levels[key]
                changed.add(key)
            elif total != old_total:
                lvl._next = o
                o._prev = lvl
                lvl.total = total
                changed.add(key)
            if taker_expired or not qty:
                break
        return _new_tuple(MatchResult, (fills, expired, qty, taker_expired))

    def fillable(
        self,
        side: int,
        limit_price: int | None,
        qty: int,
        account: int,
        stp: int,
    ) -> bool:
        """Fill-or-kill check: would :meth:`match` with these arguments fill
        all of ``qty`` without STP expiring the taker?  Read-only.

        Own orders (same ``account``) are skipped (not counted) under
        ``STP_EXPIRE_MAKER``, stop the walk (-> False unless ``qty`` was
        already reached) under ``STP_EXPIRE_TAKER``/``STP_EXPIRE_BOTH``, and
        count normally under ``STP_NONE``.  ``qty <= 0`` is trivially True.

        O(m) level totals under ``STP_NONE``, else O(k + m); stops as soon as
        ``qty`` is reached.  Raises ValueError for a bad side or stp mode.
        """
        if side != 1 and side != -1:
            raise ValueError(f"side must be BUY (1) or SELL (-1), got {side!r}")
        if stp not in _STP_MODES:
            raise ValueError(f"unknown stp mode {stp!r}")
        if qty <= 0:
            return True
        oside = -side
        keys = self._keys[oside]
        levels = self._levels[oside]
        limit_key = None if limit_price is None else oside * limit_price
        for key in reversed(keys):
            if limit_key is not None and key < limit_key:
                return False
            lvl = levels[key]
            if not stp:
                qty -= lvl.total
                if qty <= 0:
                    return True
                continue
            o = lvl._next
            while o is not lvl:
                if o.account == account:
                    if stp != STP_EXPIRE_MAKER:
                        return False
                else:
                    qty -= o.qty
                    if qty <= 0:
                        return True
                o = o._next
        return False

    # ------------------------------------------------------------------- debug

    def check(self) -> None:
        """Assert the book's invariants (``core/invariants.py``, the tests)."""
        self._check()

    def _check(self) -> None:
        """Assert every structural invariant (AssertionError on violation).
        O(N + L); for tests and debugging."""
        seen = 0
        for side in (BUY, SELL):
            keys = self._keys[side]
            levels = self._levels[side]
            assert len(keys) == len(levels), "key list / level dict size mismatch"
            assert all(a < b for a, b in zip(keys, keys[1:])), "keys not strictly sorted"
            assert set(keys) == set(levels), "key list / level dict mismatch"
            for key in keys:
                lvl = levels[key]
                assert isinstance(lvl, _Level)
                assert side * lvl.price == key, "level stored under wrong key"
                assert lvl._next is not lvl, "empty level kept"
                total = 0
                prev = lvl
                o = lvl._next
                count = 0
                while o is not lvl:
                    assert isinstance(o, Order), "non-order in level list"
                    assert o._prev is prev, "broken prev link"
                    assert o._level is lvl, "order points to wrong level"
                    assert o.side == side, "order on wrong side"
                    assert o.price == lvl.price, "order at wrong price level"
                    assert type(o.qty) is int and o.qty > 0, "non-positive order qty"
                    assert self._orders.get(o.order_id) is o, "order missing from id index"
                    total += o.qty
                    count += 1
                    assert count <= len(self._orders), "cycle in level list"
                    prev = o
                    o = o._next
                assert lvl._prev is prev, "level tail link broken"
                assert lvl.total == total, "level total != sum of order qty"
                seen += count
        assert seen == len(self._orders), "id index holds orders not in any level"
        bb, ba = self.best_bid(), self.best_ask()
        if bb is not None and ba is not None:
            assert bb < ba, f"crossed book: bid {bb} >= ask {ba}"
