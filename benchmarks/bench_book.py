"""Benchmarks for :mod:`exchange_sim.book` (pytest-benchmark).

Run::

    PYTHONPATH=. python -m pytest benchmarks/bench_book.py --benchmark-only -q
    PYTHONPATH=. python -m pytest benchmarks/bench_book.py --benchmark-disable -q  # smoke

Every benchmark uses ``benchmark.pedantic`` with a ``setup`` that rebuilds the
same ~1,000-order book from a fixed seed, so rounds are identical and
comparable.  One round runs a pre-generated batch of operations; the reported
time is per ROUND, so:

* per-op time = mean / ops per round (BATCH, SWEEP_BATCH or N_MIXED;
  ``extra_info["ns_per_op"]``),
* mixed ops/s = N_MIXED / mean   (``extra_info["ops_per_sec"]``).

Both are stored in ``extra_info`` (visible with ``--benchmark-json``) and
printed (visible with ``-s``), together with the same figures for the best
(least disturbed) round -- useful on a shared, noisy machine.

Operation generation is deterministic (``random.Random(seed)``): the mixed
stream is produced by simulating it on a scratch book, so every cancel hits a
resting order, every add is non-crossing and every marketable order sweeps
exactly the 1-3 levels it was sized for.  The book size is self-stabilising
around ~1,000 orders: adds land 1 + Exp(mean ``ADD_SCALE``) ticks from the
opposite best, so level density near the touch, and hence what each sweep
removes, grows with book size (over the 10,000 mixed ops: mean ~900 orders,
range ~670-1,170; ~3.7 fills per sweep).  The stand-alone sweep benchmark
starts from the initial book, which is denser at the touch (~8.5 fills per
sweep).
"""

from __future__ import annotations

import random

import pytest

from exchange_sim.book import (
    BUY,
    SELL,
    STP_EXPIRE_TAKER,
    Order,
    OrderBook,
)

MID = 100_000
BOOK_SIZE = 1_000
ADD_SCALE = 40  # mean distance (ticks) of a new order from the opposite best
ADD_WINDOW = 250  # ... capped at this many ticks
MAX_QTY = 10
N_ACCOUNTS = 100  # makers use accounts 1..N_ACCOUNTS; takers use account 0
N_MIXED = 10_000
BATCH = 200  # ops per round for the single-operation benchmarks
SWEEP_BATCH = 100
ROUNDS = 60
ADD, CANCEL, MATCH = 0, 1, 2


# --------------------------------------------------------------- generation


def _offset(rnd: random.Random) -> int:
    """Distance in ticks from the opposite best: 1 + Exp(mean ADD_SCALE),
    capped; denser near the touch, like a real book."""
    return 1 + min(int(rnd.expovariate(1 / ADD_SCALE)), ADD_WINDOW)


def initial_specs(seed: int = 1, n: int = BOOK_SIZE) -> list[tuple]:
    """Order specs ``(order_id, account, side, price, qty)`` for a two-sided,
    non-crossed book of ``n`` orders around ``MID`` (ids 1..n)."""
    rnd = random.Random(seed)
    specs = []
    for oid in range(1, n + 1):
        side = BUY if oid % 2 else SELL
        price = MID - side * _offset(rnd)
        specs.append((oid, rnd.randint(1, N_ACCOUNTS), side, price, rnd.randint(1, MAX_QTY)))
    return specs


def build_book(specs: list[tuple]) -> OrderBook:
    book = OrderBook("BTC-PERP")
    add = book.add
    for spec in specs:
        add(Order(*spec))
    return book


def _rand_add_spec(rnd: random.Random, book: OrderBook, oid: int) -> tuple:
    side = BUY if rnd.random() < 0.5 else SELL
    opp = book.best_ask() if side == BUY else book.best_bid()
    if opp is None:
        opp = MID + side
    price = opp - side * _offset(rnd)
    return (oid, rnd.randint(1, N_ACCOUNTS), side, price, rnd.randint(1, MAX_QTY))


def _sweep_args(rnd: random.Random, book: OrderBook) -> tuple | None:
    """Taker (side, limit, qty, account, stp) sweeping 1-3 levels: it fills
    the first j-1 levels completely and ends inside level j."""
    side = BUY if rnd.random() < 0.5 else SELL
    levels = book.depth(-side, 3)
    if not levels:
        side = -side
        levels = book.depth(-side, 3)
        if not levels:
            return None
    j = rnd.randint(1, len(levels))
    qty = sum(q for _, q in levels[: j - 1]) + rnd.randint(1, levels[j - 1][1])
    limit = None if rnd.random() < 0.2 else levels[j - 1][0]
    return (side, limit, qty, 0, STP_EXPIRE_TAKER)


def gen_mixed(seed: int = 7, n_ops: int = N_MIXED, specs: list[tuple] | None = None):
    """Deterministic mixed stream: exactly 60% adds, 30% cancels, 10% sweeps
    (kinds shuffled), valid against the book built from ``specs``.

    Returns ``(ops, expected_len)``; ops are ``(ADD, spec)``,
    ``(CANCEL, order_id)`` or ``(MATCH, side, limit, qty, account, stp)``."""
    specs = initial_specs() if specs is None else specs
    rnd = random.Random(seed)
    book = build_book(specs)
    live = [s[0] for s in specs]  # resting ids, swap-remove on cancel
    pos = {oid: i for i, oid in enumerate(live)}

    def forget(oid):
        i = pos.pop(oid)
        last = live.pop()
        if last != oid:
            live[i] = last
            pos[last] = i

    kinds = [ADD] * (n_ops * 6 // 10) + [CANCEL] * (n_ops * 3 // 10)
    kinds += [MATCH] * (n_ops - len(kinds))
    rnd.shuffle(kinds)
    next_id = len(specs) + 1
    ops = []
    for kind in kinds:
        if kind == CANCEL and live:
            oid = live[rnd.randrange(len(live))]
            book.cancel(oid)
            forget(oid)
            ops.append((CANCEL, oid))
            continue
        if kind == MATCH:
            args = _sweep_args(rnd, book)
            if args is not None:
                res = book.match(*args)
                for maker, _, _ in res.fills:
                    if maker.qty == 0:
                        forget(maker.order_id)
                ops.append((MATCH,) + args)
                continue
        spec = _rand_add_spec(rnd, book, next_id)  # also the fallback kind
        next_id += 1
        book.add(Order(*spec))
        pos[spec[0]] = len(live)
        live.append(spec[0])
        ops.append((ADD, spec))
    book._check()
    return ops, len(book)


# ----------------------------------------------------------------- fixtures

SPECS = initial_specs()


@pytest.fixture(scope="module")
def mixed():
    return gen_mixed()


def _report(benchmark, n_ops: int, label: str) -> None:
    stats = getattr(benchmark, "stats", None)
    if not stats:  # --benchmark-disable: no timing collected
        return
    mean, best = stats.stats.mean, stats.stats.min
    benchmark.extra_info["ops_per_round"] = n_ops
    benchmark.extra_info["ns_per_op"] = round(mean / n_ops * 1e9, 1)
    benchmark.extra_info["ops_per_sec"] = round(n_ops / mean)
    benchmark.extra_info["ops_per_sec_best_round"] = round(n_ops / best)
    print(
        f"\n{label}: {n_ops / mean:,.0f} ops/s, {mean / n_ops * 1e9:,.0f} ns/op (mean); "
        f"best round {n_ops / best:,.0f} ops/s, {best / n_ops * 1e9:,.0f} ns/op"
    )


# --------------------------------------------------------------- benchmarks


def test_add_non_crossing(benchmark):
    """BATCH non-crossing adds (mix of existing and new levels) onto a
    1,000-order book (ends at 1,200).  Order objects are built in setup."""
    rnd = random.Random(11)
    probe = build_book(SPECS)
    specs = [_rand_add_spec(rnd, probe, 10_000 + i) for i in range(BATCH)]

    def setup():
        book = build_book(SPECS)
        return (book.add, [Order(*s) for s in specs]), {}

    def run(add, orders):
        for o in orders:
            add(o)

    benchmark.pedantic(run, setup=setup, rounds=ROUNDS, iterations=1)
    _report(benchmark, BATCH, "add")


def test_cancel(benchmark):
    """BATCH cancels of random resting orders (head/middle/tail positions,
    some emptying levels) from a 1,000-order book."""
    ids = random.Random(12).sample([s[0] for s in SPECS], BATCH)

    def setup():
        return (build_book(SPECS).cancel, ids), {}

    def run(cancel, ids):
        for oid in ids:
            cancel(oid)

    benchmark.pedantic(run, setup=setup, rounds=ROUNDS, iterations=1)
    _report(benchmark, BATCH, "cancel")


def _sweep_stream(seed: int, n: int) -> tuple[list[tuple], int]:
    """n sweeps (each sized for 1-3 levels of the book as it will be) and the
    total number of maker fills they produce."""
    rnd = random.Random(seed)
    book = build_book(SPECS)
    out = []
    n_fills = 0
    for _ in range(n):
        args = _sweep_args(rnd, book)
        n_fills += len(book.match(*args).fills)
        out.append(args)
    return out, n_fills


def test_match_sweep_1_to_3_levels(benchmark):
    """SWEEP_BATCH marketable orders, each sweeping 1-3 levels (ending inside
    the last one), starting from a 1,000-order book."""
    stream, n_fills = _sweep_stream(13, SWEEP_BATCH)
    benchmark.extra_info["fills_per_sweep"] = n_fills / SWEEP_BATCH

    def setup():
        return (build_book(SPECS).match, stream), {}

    def run(match, stream):
        for side, limit, qty, account, stp in stream:
            match(side, limit, qty, account, stp)

    benchmark.pedantic(run, setup=setup, rounds=ROUNDS, iterations=1)
    _report(benchmark, SWEEP_BATCH, f"match sweep ({n_fills / SWEEP_BATCH:.1f} fills/sweep)")


def test_match_not_marketable(benchmark):
    """BATCH match() calls whose limit does not reach the opposite best (the
    empty-result path a venue runs for every passive limit order)."""
    book = build_book(SPECS)
    bb, ba = book.best_bid(), book.best_ask()
    calls = [(BUY, bb, 5, 0, STP_EXPIRE_TAKER), (SELL, ba, 5, 0, STP_EXPIRE_TAKER)] * (BATCH // 2)

    def setup():
        return (book.match, calls), {}

    def run(match, calls):
        for side, limit, qty, account, stp in calls:
            match(side, limit, qty, account, stp)

    benchmark.pedantic(run, setup=setup, rounds=ROUNDS, iterations=1)
    _report(benchmark, BATCH, "match (nothing marketable)")


def test_mixed_60_30_10(benchmark, mixed):
    """Headline: N_MIXED = 10,000 pre-generated ops per round (60% add
    non-crossing, 30% cancel, 10% marketable sweeping 1-3 levels) on a book
    of ~1,000 orders.  ops/s = N_MIXED / mean.  Order objects for the adds
    are built in setup, so this measures the book alone; see the next
    benchmark for the cost including Order construction."""
    ops, expected_len = mixed
    box = {}

    def setup():
        book = build_book(SPECS)
        box["book"] = book
        add, cancel, match = book.add, book.cancel, book.match
        # Bind (method, args) per op so the timed loop is one call per op.
        bound = []
        for op in ops:
            kind = op[0]
            if kind == ADD:
                bound.append((add, (Order(*op[1]),)))
            elif kind == CANCEL:
                bound.append((cancel, (op[1],)))
            else:
                bound.append((match, op[1:]))
        return (bound,), {}

    def run(bound):
        for fn, args in bound:
            fn(*args)

    benchmark.pedantic(run, setup=setup, rounds=ROUNDS // 2, iterations=1)
    assert len(box["book"]) == expected_len  # replay reproduced the stream
    box["book"]._check()
    _report(benchmark, len(ops), "mixed 60/30/10 (book only)")


def test_mixed_60_30_10_with_order_construction(benchmark, mixed):
    """Same stream as above but each add constructs its Order inside the
    timed loop (what a venue pays end to end).  ops/s = N_MIXED / mean."""
    ops, expected_len = mixed
    box = {}

    def setup():
        book = build_book(SPECS)
        box["book"] = book
        return (book, ops), {}

    def run(book, ops):
        add, cancel, match = book.add, book.cancel, book.match
        for op in ops:
            kind = op[0]
            if kind == ADD:
                add(Order(*op[1]))
            elif kind == CANCEL:
                cancel(op[1])
            else:
                match(op[1], op[2], op[3], op[4], op[5])

    benchmark.pedantic(run, setup=setup, rounds=ROUNDS // 2, iterations=1)
    assert len(box["book"]) == expected_len
    _report(benchmark, len(ops), "mixed 60/30/10 (incl. Order construction)")
