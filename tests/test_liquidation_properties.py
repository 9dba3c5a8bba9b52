"""Random portfolios, random price paths (including ±50 % jumps) and random
order flow through the liquidation engine. After every command:

- ``Venue._check()``: money conserved per asset (accounts + insurance fund +
  fees = deposits − withdrawals), positions net to zero per instrument,
  books and order indexes consistent;
- no account other than the fund holds an open position below its
  maintenance margin (isolated: any position below its own MM) unless that
  command's events report ``CascadeBoundHit`` naming it;
- every liquidation fill is no worse than its slice's bankruptcy price, and a
  slice's ``book_qty`` is what those fills traded;
- an account with no position and no order before a price move pays nothing
  for anyone's bankruptcy (its balances do not move);
- the engine's incremental ADL queue always equals a full re-ranking.

Kept well under a minute: modest examples, no deadline (``LIQ_EXAMPLES``
raises the count for a deeper hunt).
"""

from __future__ import annotations

import os
from decimal import Decimal

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from liq_helpers import (
    BNB,
    BTC,
    ETH,
    HOUSE,
    MEME,
    SOL,
    U,
    Venue,
    liq_config,
    under_mm,
)
from protocol.messages import (
    CancelAll,
    CascadeBoundHit,
    Deposit,
    Fill,
    LiquidationSlice,
    NewOrder,
    OrderType,
    Rejected,
    SetMarginMode,
    SettleFunding,
    ShockPrice,
    Side,
    Tick,
    TimeInForce,
    Withdraw,
)

SYMBOLS = (BTC, ETH, SOL, BNB, MEME)
ASSETS = ("BTC", "ETH", "SOL", "BNB", "MEME")
MODES = ("cross", "portfolio", "isolated")
MAKER = 9
TRADERS = (1, 2, 3, 4, 5, 6)
#: examples per test; LIQ_EXAMPLES=3000 for a deeper hunt (minutes)
EXAMPLES = int(os.environ.get("LIQ_EXAMPLES", "150"))

collateral = st.fixed_dictionaries(
    {"USDT": st.sampled_from([0, 200, 1_000, 5_000])},
    optional={"MEME": st.sampled_from([10_000, 200_000]), "BTC": st.sampled_from(["0.02", "0.1"]),
              "ETH": st.sampled_from(["0.5", "2"])},
)
position = st.tuples(st.sampled_from(SYMBOLS), st.integers(-90_000, 90_000))  # signed USD
account = st.tuples(st.sampled_from(MODES), collateral, st.lists(position, max_size=4))
shock_bps = st.one_of(st.integers(-1_500, 1_500), st.sampled_from([-5_000, 5_000, -3_000, 3_000, -1_000, 1_000]))
shock_step = st.tuples(st.just("shock"), st.sampled_from(ASSETS), shock_bps)
other_step = st.one_of(
    st.tuples(st.just("market"), st.sampled_from(TRADERS), st.sampled_from(SYMBOLS), st.booleans(),
              st.integers(100, 30_000)),
    st.tuples(st.just("limit"), st.sampled_from(TRADERS), st.sampled_from(SYMBOLS), st.booleans(),
              st.integers(100, 20_000), st.integers(-300, 300)),
    st.tuples(st.just("requote")),
    st.tuples(st.just("funding")),
    st.tuples(st.just("withdraw"), st.sampled_from(TRADERS), st.integers(1, 2_000)),
    st.tuples(st.just("tick")),
)
# four steps in ten move a price
step = st.integers(0, 9).flatmap(lambda k: shock_step if k < 4 else other_step)


def quote(v: Venue, levels: int = 5, step_bps: int = 20, level_usd: float = 8_000.0) -> list:
    """The market maker cancels everything and quotes around every mark."""
    events = v.apply(CancelAll(account=MAKER))
    for sym in SYMBOLS:
        ins = v.instruments[sym]
        qty = max(1, int(level_usd / ins.usd(ins.mark)))
        for k in range(1, levels + 1):
            off = max(1, ins.mark * step_bps * k // 10_000)
            for side, price in ((Side.BUY, ins.mark - off), (Side.SELL, ins.mark + off)):
                if price >= 1:
                    events += v.apply(NewOrder(account=MAKER, symbol=sym, side=side, qty=qty, price=price,
                                               tif=TimeInForce.POST_ONLY))
    return events


def lots(v: Venue, sym: str, usd: int) -> int:
    ins = v.instruments[sym]
    return max(1, int(abs(usd) / ins.usd(ins.mark)))


def check(v: Venue, events: list, quiet: dict[int, dict] | None = None) -> None:
    """The invariants of one command's events (see the module docstring)."""
    v._check()
    below = under_mm(v)
    if below:
        hits = [e for e in events if isinstance(e, CascadeBoundHit)]
        assert hits, f"accounts {below} left below MM without CascadeBoundHit"
        assert set(below) <= set(hits[-1].pending), (below, hits[-1])
    open_fills: dict[int, list] = {}
    for e in events:
        if isinstance(e, Fill) and e.liquidation:
            open_fills.setdefault(e.account, []).append(e)
        elif isinstance(e, LiquidationSlice):
            fills = open_fills.pop(e.account, [])
            assert all(f.symbol == e.symbol for f in fills)
            assert sum(f.qty for f in fills) == e.book_qty
            assert e.book_qty + e.takeover_qty == e.qty > 0 and e.fee >= 0
            for f in fills:
                if e.side == Side.SELL:
                    assert f.price >= e.bankruptcy_price, (f, e)
                else:
                    assert f.price <= e.bankruptcy_price, (f, e)
    assert not open_fills, f"liquidation fills without a slice: {open_fills}"
    for aid, balances in (quiet or {}).items():
        assert dict(v.accounts[aid].balances) == balances, f"flat account {aid} paid for a liquidation"


def checked_adl_queue(v: Venue) -> None:
    """Make the engine's incremental ADL queue assert, at every use, that it
    equals a full re-ranking of every account (``adl_ranking``)."""
    engine = v.liq
    fast = engine._adl_queue

    def queue(ins, side):
        keys = fast(ins, side)
        assert keys == [(-r, a.id) for r, a in engine.adl_ranking(ins, None, side)]
        return keys

    engine._adl_queue = queue


def build(seed_usd: str, max_rounds: int, accounts: list) -> Venue:
    v = Venue(liq_config(fees=True, insurance_seed=seed_usd, max_rounds=max_rounds))
    checked_adl_queue(v)
    v.apply(Deposit(account=HOUSE, asset="USDT", amount=10**12 * U))
    v.apply(Deposit(account=MAKER, asset="USDT", amount=10**8 * U))
    for aid, (mode, coll, positions) in zip(TRADERS, accounts):
        for asset, whole in coll.items():
            amount = int(Decimal(str(whole)) * v.assets[asset].unit)
            if amount:
                v.apply(Deposit(account=aid, asset=asset, amount=amount))
        if aid not in v.accounts:
            v.apply(Deposit(account=aid, asset="USDT", amount=U))
        if mode != "cross":
            v.apply(SetMarginMode(account=aid, mode=mode))
        for sym, usd in positions:
            if not usd:
                continue
            q = lots(v, sym, usd)
            buy = usd > 0
            mark = v.instruments[sym].mark
            v.apply(NewOrder(account=HOUSE, symbol=sym, side=Side.SELL if buy else Side.BUY, qty=q, price=mark,
                             tif=TimeInForce.POST_ONLY))
            v.apply(NewOrder(account=aid, symbol=sym, side=Side.BUY if buy else Side.SELL, qty=q, price=mark,
                             tif=TimeInForce.IOC))
            v.apply(CancelAll(account=HOUSE))  # a rejected taker leaves the house order: drop it
        v._check()
    quote(v)
    return v


def run_step(v: Venue, s: tuple) -> tuple[list, dict]:
    kind = s[0]
    quiet: dict[int, dict] = {}
    if kind == "shock":
        # flat accounts without orders must not pay for anybody's bankruptcy
        for aid, acct in v.accounts.items():
            if aid != v.liq.fund_id and not acct.orders and not any(p.qty for p in acct.positions.values()):
                quiet[aid] = dict(acct.balances)
        return v.apply(ShockPrice(asset=s[1], change_bps=s[2])), quiet
    if kind == "market":
        _, aid, sym, buy, usd = s
        return v.apply(NewOrder(account=aid, symbol=sym, side=Side.BUY if buy else Side.SELL, qty=lots(v, sym, usd),
                                type=OrderType.MARKET)), quiet
    if kind == "limit":
        _, aid, sym, buy, usd, bps = s
        ins = v.instruments[sym]
        price = max(1, ins.mark * (10_000 + bps) // 10_000)
        return v.apply(NewOrder(account=aid, symbol=sym, side=Side.BUY if buy else Side.SELL, qty=lots(v, sym, usd),
                                price=price)), quiet
    if kind == "requote":
        return quote(v), quiet
    if kind == "funding":
        return v.apply(SettleFunding()), quiet
    if kind == "withdraw":
        return v.apply(Withdraw(account=s[1], asset="USDT", amount=s[2] * U)), quiet
    return v.apply(Tick()), quiet


@settings(max_examples=EXAMPLES, deadline=None, suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large])
@given(
    seed_usd=st.sampled_from(["1000000", "0", "300"]),
    max_rounds=st.sampled_from([1, 2, 50]),
    accounts=st.lists(account, min_size=3, max_size=len(TRADERS)),
    steps=st.lists(step, min_size=4, max_size=20),
)
def test_random_crashes_keep_every_invariant(seed_usd, max_rounds, accounts, steps):
    v = build(seed_usd, max_rounds, accounts)
    check(v, [])  # nobody starts below MM: positions were opened under IM
    for s in steps:
        events, quiet = run_step(v, s)
        if len(events) == 1 and isinstance(events[0], Rejected):
            continue
        check(v, events, quiet)


@settings(max_examples=max(1, EXAMPLES // 2), deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(
    accounts=st.lists(account, min_size=4, max_size=len(TRADERS)),
    path=st.lists(st.tuples(st.sampled_from(ASSETS), shock_bps), min_size=1, max_size=6),
)
def test_price_paths_with_thin_books_and_an_empty_fund(accounts, path):
    """The harshest setting: no insurance money (takeovers only while fees
    last, then ADL), one round per command, books re-quoted after each move."""
    v = build("0", 1, accounts)
    for asset, bps in path:
        events = v.apply(ShockPrice(asset=asset, change_bps=bps))
        check(v, events)
        events = quote(v)
        check(v, events)
        for _ in range(3):  # let deferred rounds drain
            events = v.apply(Tick())
            check(v, events)

