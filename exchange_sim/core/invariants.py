"""Every invariant of the venue, per stage; the tests call :func:`check`
(``Venue._check``) after each step of their random flows.

- matching: each book's own invariants hold; every resting order is indexed
  on its account and every stop on its engine; each engine's trigger index
  (sorted trigger lists, active trailing stops) holds exactly its stops;
- clearing: money is conserved per asset: Σ balances (+ Σ isolated
  allocations and unrealized PnL for the settlement asset) + fees collected =
  Σ deposits − Σ withdrawals; positions net to zero per instrument;
  allocations only back open positions; an account not in the dirty set
  matches its column of the sweep's arrays;
- orders: every account's open-order index, client-id index and totals
  match its resting orders;
- history: it holds a row for exactly the open orders (no order ends
  without the history seeing it end);
- margin caches: every valid cache, kept up to date incrementally, holds the
  same bits as a refresh from scratch.
"""

from __future__ import annotations

from exchange_sim.accounts import Account
from exchange_sim.book import BUY, FLAG_REDUCE_ONLY, SELL, Order
from exchange_sim.risk.sweep import MODE_CODE


def _margin_cache(acct: Account) -> tuple:
    return (
        acct.collateral, acct.upnl, acct.mm, acct.im_total, dict(acct.hyp), dict(acct.cv_parts),
        dict(acct.upnl_parts), dict(acct.expo), dict(acct.mm_parts), dict(acct.im_parts),
    )


def check(venue) -> None:
    """Assert every invariant of ``venue`` (see the module docstring)."""
    s = venue.state
    check_matching(s)
    check_clearing(s, venue.clearing.dirty)
    check_orders(s)
    check_margin_caches(s)
    check_history(s, venue.history)  # --- history


def check_matching(s) -> None:
    for ins in s.instruments.values():
        ins.book.check()
    for ins in s.instruments.values():
        for side in (BUY, SELL):
            for o in ins.book.iter_orders(side):
                assert s.accounts[o.account].orders.get(o.order_id) is o, f"book order {o.order_id} not indexed"
    # --- protective orders: the trigger index holds exactly the untriggered orders
    for eng in s.engines.values():
        eng.check()


def check_clearing(s, dirty: dict) -> None:
    for name in s.assets:
        total = sum(a.balances.get(name, 0) for a in s.accounts.values())
        total += s.fees_collected.get(name, 0)
        if name == s.settle_name:
            for a in s.accounts.values():
                total += sum(a.isolated.values())
                for sym, pos in a.positions.items():
                    total += s.instruments[sym].upnl(pos.qty, pos.cost)
        expected = s.deposits.get(name, 0) - s.withdrawals.get(name, 0)
        assert total == expected, f"{name}: holdings {total} != net deposits {expected}"
    for sym in s.instruments:
        net = sum(a.position_qty(sym) for a in s.accounts.values())
        assert net == 0, f"{sym}: positions net to {net}"
    arrays = s.arrays
    assert arrays.n == len(s.accounts) and sorted(arrays.ids) == sorted(s.accounts)
    for acct in s.accounts.values():
        assert arrays.ids[acct.col] == acct.id, f"account {acct.id}: wrong sweep column"
        if acct.id not in dirty:  # synced accounts must match their columns
            col = acct.col
            for sym, i in arrays.sym_row.items():
                pos = acct.positions.get(sym)
                assert arrays.qty[i, col] == (pos.qty if pos else 0), f"account {acct.id}: stale qty {sym}"
            for name, k in arrays.asset_row.items():
                assert arrays.bal[k, col] == acct.balances.get(name, 0), f"account {acct.id}: stale {name}"
            assert arrays.mode[col] == MODE_CODE[acct.margin_mode]
        for sym, alloc in acct.isolated.items():
            assert alloc > 0 and acct.position_qty(sym) != 0, f"account {acct.id}: allocation without position"


def check_orders(s) -> None:
    for acct in s.accounts.values():
        resting = {}
        for oid, o in acct.orders.items():
            assert o.order_id == oid and o.account == acct.id
            if type(o) is Order:
                book_order = s.instruments[o.symbol].book.get(oid)
                assert book_order is o, f"order {oid} is indexed but not resting"
                t = resting.setdefault(o.symbol, [0, 0, 0, 0])
                k = 0 if o.side == BUY else 2
                t[k] += o.qty
                t[k + 1] += o.price * o.qty
            else:
                assert s.engines[o.symbol].stops.get(oid) is o
        assert resting == acct.open_totals, f"account {acct.id}: open totals {acct.open_totals} != {resting}"
        cids = {o.client_order_id: o for o in acct.orders.values() if o.client_order_id is not None}
        assert cids == acct.by_cid, f"account {acct.id}: client id index out of date"
        used = acct.client_ids or {}
        assert len(used) <= s.client_id_memory, f"account {acct.id}: client id memory over its bound"
        assert all(used.get(c, o.order_id) == o.order_id for c, o in cids.items()), (
            f"account {acct.id}: a remembered client id names another order than the open one"
        )
        ro = sum(1 for o in acct.orders.values() if type(o) is Order and o.flags & FLAG_REDUCE_ONLY)
        assert ro == acct.reduce_only_orders


def check_margin_caches(s) -> None:
    m = s.margin
    for acct in s.accounts.values():
        if acct.cache_epoch == m.epoch:
            cached = _margin_cache(acct)
            m.refresh(acct)
            assert cached == _margin_cache(acct), f"account {acct.id}: stale margin cache"


# --- history
def check_history(s, history) -> None:
    if not s.config.history.enabled:
        assert not history.live, "history is off but holds order rows"
        return
    open_ids = {oid for acct in s.accounts.values() for oid in acct.orders}
    live = set(history.live)
    assert live == open_ids, f"history rows {sorted(live - open_ids)} not open, open {sorted(open_ids - live)} not in history"
