"""Tests for exchange_sim.book: unit tests plus a hypothesis state machine
checked against a naive reference model."""

from __future__ import annotations

import pytest
from hypothesis import HealthCheck, settings
from hypothesis import strategies as st
from hypothesis.stateful import (
    RuleBasedStateMachine,
    initialize,
    invariant,
    precondition,
    rule,
)

from exchange_sim.book import (
    BUY,
    SELL,
    STP_EXPIRE_BOTH,
    STP_EXPIRE_MAKER,
    STP_EXPIRE_TAKER,
    STP_NONE,
    MatchResult,
    Order,
    OrderBook,
)

# ------------------------------------------------------------------ helpers


def mk(book: OrderBook, oid: int, side: int, price: int, qty: int, account: int = 1, **kw) -> Order:
    o = Order(oid, account, side, price, qty, **kw)
    book.add(o)
    book._check()
    return o


def fills_of(res: MatchResult) -> list[tuple[int, int, int]]:
    return [(o.order_id, q, p) for o, q, p in res.fills]


def ids_at(book: OrderBook, side: int) -> list[int]:
    return [o.order_id for o in book.iter_orders(side)]


@pytest.fixture
def book() -> OrderBook:
    return OrderBook("BTC-PERP")


# -------------------------------------------------------------- construction


def test_order_defaults():
    o = Order(7, 3, BUY, 100, 5)
    assert (o.order_id, o.account, o.side, o.price, o.qty, o.filled) == (7, 3, BUY, 100, 5, 0)
    assert o.stp == STP_EXPIRE_TAKER
    assert o.client_order_id is None and o.symbol == "" and o.tif == 0
    assert o.flags == 0 and o.created_seq == 0
    assert not hasattr(o, "__dict__")  # __slots__: lean
    o2 = Order(8, 3, SELL, 101, 1, STP_NONE, "c1", "ETH", 2, 4, 99)
    assert (o2.stp, o2.client_order_id, o2.symbol, o2.tif, o2.flags, o2.created_seq) == (
        STP_NONE, "c1", "ETH", 2, 4, 99)


def test_empty_book(book):
    assert book.best_bid() is None and book.best_ask() is None
    assert len(book) == 0 and 1 not in book and book.get(1) is None
    assert book.depth(BUY, 5) == [] and book.depth(SELL) == []
    res = book.match(BUY, None, 10, 1, STP_EXPIRE_TAKER)
    assert res.fills == [] and res.stp_expired == [] and res.remaining == 10
    assert res.taker_expired_by_stp is False
    assert book.take_changes() == []
    book._check()


def test_add_best_prices_len_contains_get(book):
    a = mk(book, 1, BUY, 100, 5)
    mk(book, 2, BUY, 101, 5)
    mk(book, 3, SELL, 105, 5)
    mk(book, 4, SELL, 103, 5)
    assert book.best_bid() == 101 and book.best_ask() == 103
    assert len(book) == 4 and 1 in book and 9 not in book
    assert book.get(1) is a and book.get(9) is None


def test_add_duplicate_id_raises(book):
    mk(book, 1, BUY, 100, 5)
    with pytest.raises(ValueError):
        book.add(Order(1, 2, SELL, 200, 1))
    book._check()
    assert len(book) == 1


def test_add_same_object_twice_raises(book):
    o = mk(book, 1, BUY, 100, 5)
    other = OrderBook("OTHER")
    with pytest.raises(ValueError):
        other.add(o)
    assert len(other) == 0 and book.get(1) is o
    book._check()
    other._check()


@pytest.mark.parametrize("side,qty", [(0, 5), (2, 5), (BUY, 0), (SELL, -3)])
def test_add_invalid_raises(book, side, qty):
    with pytest.raises(ValueError):
        book.add(Order(1, 1, side, 100, qty))
    assert len(book) == 0
    book._check()


# ---------------------------------------------------------------- priority


def test_price_time_priority_same_price_fifo(book):
    for oid in (1, 2, 3):
        mk(book, oid, SELL, 100, 2, account=oid)
    res = book.match(BUY, 100, 5, 9, STP_EXPIRE_TAKER)
    assert fills_of(res) == [(1, 2, 100), (2, 2, 100), (3, 1, 100)]
    assert res.remaining == 0
    assert ids_at(book, SELL) == [3]
    book._check()


def test_better_price_first_and_fills_at_maker_price(book):
    mk(book, 1, SELL, 103, 1)
    mk(book, 2, SELL, 101, 1)
    mk(book, 3, SELL, 102, 1)
    res = book.match(BUY, 110, 3, 9, STP_EXPIRE_TAKER)
    # Taker limit 110, but every fill is at the maker's price.
    assert fills_of(res) == [(2, 1, 101), (3, 1, 102), (1, 1, 103)]
    assert len(book) == 0 and book.best_ask() is None
    book._check()


def test_sell_taker_hits_highest_bid_first(book):
    mk(book, 1, BUY, 98, 1)
    mk(book, 2, BUY, 99, 1)
    res = book.match(SELL, 90, 2, 9, STP_EXPIRE_TAKER)
    assert fills_of(res) == [(2, 1, 99), (1, 1, 98)]


def test_partial_fill_of_maker_keeps_it_at_head(book):
    m = mk(book, 1, SELL, 100, 10)
    mk(book, 2, SELL, 100, 5)
    res = book.match(BUY, 100, 4, 9, STP_EXPIRE_TAKER)
    assert fills_of(res) == [(1, 4, 100)]
    assert res.fills[0][0] is m and m.qty == 6 and m.filled == 4
    assert ids_at(book, SELL) == [1, 2]
    assert book.level_qty(SELL, 100) == 11
    res = book.match(BUY, 100, 7, 9, STP_EXPIRE_TAKER)
    assert fills_of(res) == [(1, 6, 100), (2, 1, 100)]
    assert m.qty == 0 and m.filled == 10 and 1 not in book
    book._check()


def test_partial_fill_of_taker(book):
    mk(book, 1, SELL, 100, 3)
    res = book.match(BUY, 100, 10, 9, STP_EXPIRE_TAKER)
    assert fills_of(res) == [(1, 3, 100)] and res.remaining == 7
    assert not res.taker_expired_by_stp
    assert len(book) == 0
    book._check()


def test_sweep_several_levels(book):
    mk(book, 1, SELL, 100, 2)
    mk(book, 2, SELL, 100, 2)
    mk(book, 3, SELL, 101, 3)
    mk(book, 4, SELL, 102, 4)
    mk(book, 5, SELL, 103, 4)
    res = book.match(BUY, 103, 10, 9, STP_EXPIRE_TAKER)
    assert fills_of(res) == [(1, 2, 100), (2, 2, 100), (3, 3, 101), (4, 3, 102)]
    assert res.remaining == 0 and res.filled_qty == 10
    assert book.best_ask() == 102 and book.level_qty(SELL, 102) == 1
    assert book.depth(SELL) == [(102, 1), (103, 4)]
    book._check()


def test_limit_respected(book):
    mk(book, 1, SELL, 100, 2)
    mk(book, 2, SELL, 101, 2)
    mk(book, 3, SELL, 102, 2)
    res = book.match(BUY, 101, 10, 9, STP_EXPIRE_TAKER)
    assert fills_of(res) == [(1, 2, 100), (2, 2, 101)]
    assert res.remaining == 6 and book.best_ask() == 102
    # Nothing marketable: limit below the best ask.
    res = book.match(BUY, 101, 10, 9, STP_EXPIRE_TAKER)
    assert res.fills == [] and res.remaining == 10
    # Sell side symmetric.
    mk(book, 4, BUY, 90, 2)
    mk(book, 5, BUY, 89, 2)
    res = book.match(SELL, 90, 5, 9, STP_EXPIRE_TAKER)
    assert fills_of(res) == [(4, 2, 90)] and res.remaining == 3
    book._check()


def test_market_order_no_limit(book):
    mk(book, 1, BUY, 100, 1)
    mk(book, 2, BUY, 50, 1)
    mk(book, 3, BUY, 1, 1)
    res = book.match(SELL, None, 5, 9, STP_EXPIRE_TAKER)
    assert fills_of(res) == [(1, 1, 100), (2, 1, 50), (3, 1, 1)]
    assert res.remaining == 2 and len(book) == 0
    book._check()


def test_match_zero_qty_is_noop(book):
    mk(book, 1, SELL, 100, 1)
    res = book.match(BUY, None, 0, 9, STP_EXPIRE_TAKER)
    assert res.fills == [] and res.remaining == 0 and len(book) == 1


def test_match_result_is_unpackable_tuple(book):
    mk(book, 1, SELL, 100, 1)
    fills, expired, remaining, texp = book.match(BUY, 100, 2, 9, STP_EXPIRE_TAKER)
    assert [f[0].order_id for f in fills] == [1] and expired == [] and remaining == 1 and not texp
    assert "MatchResult(" in repr(book.match(BUY, 100, 2, 9, STP_EXPIRE_TAKER))


def test_match_result_copy_and_pickle():
    import copy
    import pickle

    r = MatchResult([], [], 3, True)
    assert copy.copy(r) == r and pickle.loads(pickle.dumps(r)) == r
    assert pickle.loads(pickle.dumps(r)).remaining == 3


def test_match_invalid_side_raises(book):
    with pytest.raises(ValueError):
        book.match(0, 100, 1, 1, STP_NONE)


# ------------------------------------------------------------------ cancel


@pytest.mark.parametrize("victim,left", [(1, [2, 3]), (2, [1, 3]), (3, [1, 2])])
def test_cancel_head_middle_tail(book, victim, left):
    for oid in (1, 2, 3):
        mk(book, oid, BUY, 100, oid)
    o = book.cancel(victim)
    assert o is not None and o.order_id == victim and o.qty == victim
    assert ids_at(book, BUY) == left
    assert book.level_qty(BUY, 100) == 6 - victim
    assert victim not in book and book.get(victim) is None
    book._check()
    # The rest still match FIFO.
    res = book.match(SELL, 100, 10, 9, STP_EXPIRE_TAKER)
    assert [f[0].order_id for f in res.fills] == left


def test_cancel_unknown_returns_none(book):
    assert book.cancel(42) is None
    mk(book, 1, SELL, 100, 1)
    assert book.cancel(1) is not None
    assert book.cancel(1) is None
    book._check()


def test_cancel_last_order_removes_level(book):
    mk(book, 1, BUY, 100, 1)
    mk(book, 2, BUY, 99, 1)
    mk(book, 3, BUY, 98, 1)
    book.cancel(2)  # middle level
    assert book.depth(BUY) == [(100, 1), (98, 1)]
    book.cancel(1)  # best level
    assert book.best_bid() == 98
    book.cancel(3)
    assert book.best_bid() is None and book.depth(BUY) == []
    book._check()


def test_cancelled_order_can_be_re_added(book):
    o = mk(book, 1, BUY, 100, 1)
    mk(book, 2, BUY, 100, 1)
    book.cancel(1)
    book.add(o)  # back of the queue now
    assert ids_at(book, BUY) == [2, 1]
    book._check()


# ------------------------------------------------------------------ reduce


def test_reduce_keeps_priority(book):
    mk(book, 1, SELL, 100, 10)
    mk(book, 2, SELL, 100, 10)
    o = book.reduce(1, 3)
    assert o.qty == 3 and o.filled == 0
    assert book.level_qty(SELL, 100) == 13
    book._check()
    res = book.match(BUY, 100, 4, 9, STP_EXPIRE_TAKER)
    assert fills_of(res) == [(1, 3, 100), (2, 1, 100)]


@pytest.mark.parametrize("new_qty", [0, -1, 10, 11])
def test_reduce_invalid_qty_raises(book, new_qty):
    mk(book, 1, SELL, 100, 10)
    with pytest.raises(ValueError):
        book.reduce(1, new_qty)
    assert book.get(1).qty == 10
    book._check()


def test_reduce_unknown_raises_keyerror(book):
    with pytest.raises(KeyError):
        book.reduce(5, 1)


# --------------------------------------------------------------------- STP


def _stp_book(book):
    mk(book, 1, SELL, 100, 2, account=7)   # other
    mk(book, 2, SELL, 100, 2, account=1)   # own
    mk(book, 3, SELL, 101, 2, account=7)   # other
    return book


def test_stp_expire_taker(book):
    _stp_book(book)
    res = book.match(BUY, 101, 6, 1, STP_EXPIRE_TAKER)
    assert fills_of(res) == [(1, 2, 100)]
    assert res.stp_expired == [] and res.remaining == 4 and res.taker_expired_by_stp
    assert ids_at(book, SELL) == [2, 3]  # own maker untouched
    book._check()


def test_stp_expire_maker(book):
    _stp_book(book)
    res = book.match(BUY, 101, 6, 1, STP_EXPIRE_MAKER)
    assert fills_of(res) == [(1, 2, 100), (3, 2, 101)]
    assert [o.order_id for o in res.stp_expired] == [2]
    assert res.remaining == 2 and not res.taker_expired_by_stp
    assert len(book) == 0 and 2 not in book
    book._check()


def test_stp_expire_both(book):
    _stp_book(book)
    res = book.match(BUY, 101, 6, 1, STP_EXPIRE_BOTH)
    assert fills_of(res) == [(1, 2, 100)]
    assert [o.order_id for o in res.stp_expired] == [2]
    assert res.remaining == 4 and res.taker_expired_by_stp
    assert ids_at(book, SELL) == [3]
    assert book.depth(SELL) == [(101, 2)]
    book._check()


def test_stp_none_trades_with_self(book):
    _stp_book(book)
    res = book.match(BUY, 101, 6, 1, STP_NONE)
    assert fills_of(res) == [(1, 2, 100), (2, 2, 100), (3, 2, 101)]
    assert res.stp_expired == [] and res.remaining == 0 and not res.taker_expired_by_stp


def test_stp_uses_taker_mode_not_maker_mode(book):
    mk(book, 1, SELL, 100, 2, account=1, stp=STP_NONE)
    res = book.match(BUY, 100, 2, 1, STP_EXPIRE_TAKER)
    assert res.fills == [] and res.taker_expired_by_stp
    mk(book, 2, BUY, 90, 2, account=1, stp=STP_EXPIRE_BOTH)
    res = book.match(SELL, 90, 2, 1, STP_NONE)
    assert fills_of(res) == [(2, 2, 90)]


def test_stp_not_triggered_when_filled_before_own_order(book):
    _stp_book(book)
    res = book.match(BUY, 101, 2, 1, STP_EXPIRE_TAKER)
    assert fills_of(res) == [(1, 2, 100)] and not res.taker_expired_by_stp


def test_stp_expire_maker_several_own_orders_empties_level(book):
    mk(book, 1, SELL, 100, 2, account=1)
    mk(book, 2, SELL, 100, 2, account=1)
    mk(book, 3, SELL, 102, 2, account=5)
    res = book.match(BUY, None, 1, 1, STP_EXPIRE_MAKER)
    assert [o.order_id for o in res.stp_expired] == [1, 2]
    assert fills_of(res) == [(3, 1, 102)]
    assert book.depth(SELL) == [(102, 1)]
    book._check()


def test_stp_unknown_mode_raises_before_mutating(book):
    mk(book, 1, SELL, 100, 2, account=2)
    mk(book, 2, SELL, 100, 2, account=1)
    with pytest.raises(ValueError):
        book.match(BUY, 100, 3, 1, 9)
    assert book.depth(SELL) == [(100, 4)] and book.get(1).filled == 0
    book._check()


# ---------------------------------------------------------------- fillable


def test_fillable_basic(book):
    mk(book, 1, SELL, 100, 2)
    mk(book, 2, SELL, 101, 3)
    assert book.fillable(BUY, 101, 5, 9, STP_EXPIRE_TAKER)
    assert not book.fillable(BUY, 101, 6, 9, STP_EXPIRE_TAKER)
    assert not book.fillable(BUY, 100, 3, 9, STP_EXPIRE_TAKER)
    assert book.fillable(BUY, None, 5, 9, STP_NONE)
    assert not book.fillable(BUY, None, 6, 9, STP_NONE)
    assert book.fillable(BUY, 100, 0, 9, STP_NONE)
    assert not book.fillable(SELL, None, 1, 9, STP_NONE)  # no bids
    assert len(book) == 2 and book.depth(SELL) == [(100, 2), (101, 3)]  # read-only
    book._check()


def test_fillable_stp_modes(book):
    _stp_book(book)  # 100: other 2, own 2 ; 101: other 2
    assert book.fillable(BUY, 101, 6, 1, STP_NONE)
    assert book.fillable(BUY, 101, 5, 1, STP_NONE)
    # EXPIRE_MAKER: own lots are skipped -> only 4 available.
    assert book.fillable(BUY, 101, 4, 1, STP_EXPIRE_MAKER)
    assert not book.fillable(BUY, 101, 5, 1, STP_EXPIRE_MAKER)
    # EXPIRE_TAKER / BOTH: the walk stops at the own order.
    for mode in (STP_EXPIRE_TAKER, STP_EXPIRE_BOTH):
        assert book.fillable(BUY, 101, 2, 1, mode)
        assert not book.fillable(BUY, 101, 3, 1, mode)
    # Other account: everything counts.
    assert book.fillable(BUY, 101, 6, 2, STP_EXPIRE_TAKER)
    with pytest.raises(ValueError):
        book.fillable(BUY, 101, 1, 1, 9)
    assert len(book) == 3
    book._check()


def test_fillable_agrees_with_match(book):
    _stp_book(book)
    for mode in (STP_NONE, STP_EXPIRE_TAKER, STP_EXPIRE_MAKER, STP_EXPIRE_BOTH):
        for qty in range(1, 8):
            ok = book.fillable(BUY, 101, qty, 1, mode)
            clone = OrderBook("c")
            for o in list(book.iter_orders(SELL)):
                clone.add(Order(o.order_id, o.account, o.side, o.price, o.qty))
            res = clone.match(BUY, 101, qty, 1, mode)
            assert ok == (res.remaining == 0), (mode, qty)


# ------------------------------------------------------------- would_cross


def test_would_cross(book):
    assert not book.would_cross(BUY, 10**9) and not book.would_cross(SELL, -(10**9))
    mk(book, 1, SELL, 100, 1)
    mk(book, 2, BUY, 98, 1)
    assert book.would_cross(BUY, 100) and book.would_cross(BUY, 101)
    assert not book.would_cross(BUY, 99)
    assert book.would_cross(SELL, 98) and book.would_cross(SELL, 97)
    assert not book.would_cross(SELL, 99)
    with pytest.raises(ValueError):
        book.would_cross(0, 100)


# ---------------------------------------------------- level data / changes


def test_level_qty_and_depth(book):
    mk(book, 1, BUY, 100, 1)
    mk(book, 2, BUY, 100, 2)
    mk(book, 3, BUY, 99, 4)
    mk(book, 4, BUY, 97, 8)
    mk(book, 5, SELL, 101, 3)
    mk(book, 6, SELL, 105, 1)
    assert book.level_qty(BUY, 100) == 3 and book.level_qty(BUY, 98) == 0
    assert book.level_qty(SELL, 100) == 0 and book.level_qty(SELL, 101) == 3
    assert book.depth(BUY, 2) == [(100, 3), (99, 4)]
    assert book.depth(BUY) == [(100, 3), (99, 4), (97, 8)]
    assert book.depth(BUY, 10) == book.depth(BUY, None)
    assert book.depth(BUY, 0) == []
    assert book.depth(SELL, 1) == [(101, 3)]
    assert book.depth(SELL) == [(101, 3), (105, 1)]
    with pytest.raises(ValueError):
        book.depth(BUY, -1)
    with pytest.raises(ValueError):
        book.level_qty(3, 100)


def test_take_changes(book):
    mk(book, 1, BUY, 100, 1)
    mk(book, 2, BUY, 100, 2)
    mk(book, 3, SELL, 102, 5)
    mk(book, 4, SELL, 101, 5)
    assert book.take_changes() == [(SELL, 101, 5), (SELL, 102, 5), (BUY, 100, 3)]
    assert book.take_changes() == []
    book.match(BUY, 102, 7, 9, STP_EXPIRE_TAKER)  # removes 101, 102 -> 3
    book.reduce(2, 1)
    assert book.take_changes() == [(SELL, 101, 0), (SELL, 102, 3), (BUY, 100, 2)]
    book.cancel(1)
    book.cancel(2)
    mk(book, 5, BUY, 99, 4)
    assert book.take_changes() == [(BUY, 99, 4), (BUY, 100, 0)]
    # Nothing marketable / STP expire taker at the head: no change recorded.
    book.match(BUY, 101, 1, 9, STP_EXPIRE_TAKER)
    res = book.match(BUY, 103, 1, 1, STP_EXPIRE_TAKER)  # order 3 (102) is account 1's
    assert res.taker_expired_by_stp and res.fills == []
    assert book.take_changes() == []
    # A level removed and re-created between takes reports its new total.
    book.cancel(5)
    mk(book, 7, BUY, 99, 6)
    assert book.take_changes() == [(BUY, 99, 6)]


def test_iter_orders_priority(book):
    mk(book, 1, BUY, 99, 1)
    mk(book, 2, BUY, 100, 1)
    mk(book, 3, BUY, 99, 1)
    mk(book, 4, SELL, 102, 1)
    mk(book, 5, SELL, 101, 1)
    assert ids_at(book, BUY) == [2, 1, 3]
    assert ids_at(book, SELL) == [5, 4]


def test_removed_orders_are_unlinked(book):
    mk(book, 1, SELL, 100, 1)
    mk(book, 2, SELL, 100, 1, account=3)
    mk(book, 3, SELL, 100, 1)
    c = book.cancel(3)
    res = book.match(BUY, 100, 5, 3, STP_EXPIRE_MAKER)
    for o in (c, res.fills[0][0], res.stp_expired[0]):
        assert o._prev is None and o._next is None and o._level is None


def test_check_detects_corruption(book):
    mk(book, 1, BUY, 100, 2)
    mk(book, 2, SELL, 101, 2)
    book.get(1).qty = 5  # level total now wrong
    with pytest.raises(AssertionError):
        book._check()
    book.get(1).qty = 2
    book._check()
    book.add(Order(3, 1, BUY, 105, 1))  # violates the non-crossing precondition
    with pytest.raises(AssertionError):
        book._check()


def test_deep_level_and_many_levels():
    book = OrderBook("X")
    for i in range(2000):
        book.add(Order(i, i % 5, SELL, 100 + i % 50, 1 + i % 3))
    book._check()
    total = sum(q for _, q in book.depth(SELL))
    res = book.match(BUY, None, total - 1, 99, STP_EXPIRE_TAKER)
    assert res.remaining == 0 and len(book) == 1
    book._check()


# ============================================================ state machine

ACCOUNTS = st.integers(1, 3)
STP_MODES = st.sampled_from([STP_NONE, STP_EXPIRE_TAKER, STP_EXPIRE_MAKER, STP_EXPIRE_BOTH])
SIDES = st.sampled_from([BUY, SELL])
PRICES = st.integers(95, 105)
QTYS = st.integers(1, 6)


class RefModel:
    """Naive reference: a dict of resting orders with arrival sequence;
    priority computed by sorting on every match."""

    def __init__(self):
        self.orders: dict[int, list] = {}  # id -> [side, price, qty, account, seq]
        self.seq = 0

    def add(self, oid, side, price, qty, account):
        self.seq += 1
        self.orders[oid] = [side, price, qty, account, self.seq]

    def queue(self, side):
        """Resting orders of ``side`` in priority order."""
        items = [(oid, o) for oid, o in self.orders.items() if o[0] == side]
        items.sort(key=lambda t: (-side * t[1][1], t[1][4]))
        return items

    def match(self, side, limit, qty, account, stp):
        fills, expired, texp = [], [], False
        for oid, o in self.queue(-side):
            if qty == 0:
                break
            if limit is not None and (o[1] > limit if side == BUY else o[1] < limit):
                break
            if stp != STP_NONE and o[3] == account:
                if stp == STP_EXPIRE_TAKER:
                    texp = True
                    break
                expired.append(oid)
                del self.orders[oid]
                if stp == STP_EXPIRE_BOTH:
                    texp = True
                    break
                continue
            q = min(qty, o[2])
            fills.append((oid, q, o[1]))
            o[2] -= q
            qty -= q
            if o[2] == 0:
                del self.orders[oid]
        return fills, expired, qty, texp

    def levels(self, side):
        agg: dict[int, int] = {}
        for o in self.orders.values():
            if o[0] == side:
                agg[o[1]] = agg.get(o[1], 0) + o[2]
        return sorted(agg.items(), key=lambda kv: -side * kv[0])

    def best(self, side):
        lv = self.levels(side)
        return lv[0][0] if lv else None


class BookMachine(RuleBasedStateMachine):
    @initialize()
    def setup(self):
        self.book = OrderBook("SIM")
        self.model = RefModel()
        self.next_id = 1
        self.filled: dict[int, int] = {}
        self.snapshot: dict[tuple[int, int], int] = {}  # level totals at last take

    def _check_match(self, res, expect):
        fills, expired, remaining, texp = expect
        assert fills_of(res) == fills
        assert [o.order_id for o in res.stp_expired] == expired
        assert res.remaining == remaining
        assert res.taker_expired_by_stp == texp
        for o, q, _ in res.fills:
            self.filled[o.order_id] = self.filled.get(o.order_id, 0) + q
            assert o.filled == self.filled[o.order_id]
            ref = self.model.orders.get(o.order_id)
            assert o.qty == (ref[2] if ref else 0)
            assert (o.order_id in self.book) == (ref is not None)
        for o in res.stp_expired:
            assert o.order_id not in self.book

    def _match(self, side, limit, qty, account, stp):
        ok = self.book.fillable(side, limit, qty, account, stp)
        res = self.book.match(side, limit, qty, account, stp)
        expect = self.model.match(side, limit, qty, account, stp)
        self._check_match(res, expect)
        assert ok == (res.remaining == 0)
        return res

    @rule(side=SIDES, price=PRICES, qty=QTYS, account=ACCOUNTS, stp=STP_MODES)
    def limit_order(self, side, price, qty, account, stp):
        """Venue-style GTC limit: match if it would cross, rest the rest."""
        oid = self.next_id
        self.next_id += 1
        crosses = self.book.would_cross(side, price)
        ref_best = self.model.best(-side)
        assert crosses == (ref_best is not None and (price >= ref_best if side == BUY else price <= ref_best))
        if crosses:
            res = self._match(side, price, qty, account, stp)
            if res.taker_expired_by_stp or res.remaining == 0:
                return
            qty = res.remaining
        order = Order(oid, account, side, price, qty, stp)
        self.book.add(order)
        self.model.add(oid, side, price, qty, account)

    @rule(side=SIDES, limit=st.none() | PRICES, qty=st.integers(1, 20), account=ACCOUNTS, stp=STP_MODES)
    def taker(self, side, limit, qty, account, stp):
        """IOC / market taker (remainder never rests)."""
        self._match(side, limit, qty, account, stp)

    @rule(side=SIDES, limit=st.none() | PRICES, qty=st.integers(1, 20), account=ACCOUNTS, stp=STP_MODES)
    def fok(self, side, limit, qty, account, stp):
        """Fill-or-kill: only match if fillable()."""
        if self.book.fillable(side, limit, qty, account, stp):
            res = self._match(side, limit, qty, account, stp)
            assert res.remaining == 0 and not res.taker_expired_by_stp

    @precondition(lambda self: self.model.orders)
    @rule(data=st.data())
    def cancel(self, data):
        oid = data.draw(st.sampled_from(sorted(self.model.orders)))
        o = self.book.cancel(oid)
        assert o is not None and o.order_id == oid and o.qty == self.model.orders[oid][2]
        del self.model.orders[oid]
        assert self.book.cancel(oid) is None

    @rule(oid=st.integers(10**6, 10**6 + 5))
    def cancel_unknown(self, oid):
        assert self.book.cancel(oid) is None

    @precondition(lambda self: any(o[2] > 1 for o in self.model.orders.values()))
    @rule(data=st.data())
    def reduce(self, data):
        oid = data.draw(st.sampled_from(sorted(k for k, o in self.model.orders.items() if o[2] > 1)))
        ref = self.model.orders[oid]
        new_qty = data.draw(st.integers(1, ref[2] - 1))
        assert self.book.reduce(oid, new_qty).qty == new_qty
        ref[2] = new_qty

    @rule()
    def take_changes(self):
        changes = self.book.take_changes()
        assert changes == sorted(changes)
        reported = {(s, p): q for s, p, q in changes}
        assert len(reported) == len(changes)
        current = {(s, p): q for s in (BUY, SELL) for p, q in self.model.levels(s)}
        for key, q in reported.items():
            assert current.get(key, 0) == q
        for key in set(current) | set(self.snapshot):
            if current.get(key, 0) != self.snapshot.get(key, 0):
                assert key in reported, key
        self.snapshot = current

    @invariant()
    def consistent(self):
        self.book._check()
        assert len(self.book) == len(self.model.orders)
        for side in (BUY, SELL):
            assert self.book.depth(side) == self.model.levels(side)
            assert ids_at(self.book, side) == [oid for oid, _ in self.model.queue(side)]
        assert self.book.best_bid() == self.model.best(BUY)
        assert self.book.best_ask() == self.model.best(SELL)


BookMachine.TestCase.settings = settings(
    max_examples=150,
    stateful_step_count=40,
    deadline=None,
    suppress_health_check=[HealthCheck.too_slow],
)
TestBookMachine = BookMachine.TestCase
