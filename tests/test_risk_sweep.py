"""The vectorized risk sweep (``exchange_sim.risk.sweep``) against the
per-account path (``exchange_sim.risk.margin``).

For every account the sweep must give, to 1e-9 relative:

- equity  = ``venue.margin.equity(acct)`` (collateral after haircuts +
  isolated allocations + uPnL),
- MM      = ``acct.mm`` after ``venue.margin.fresh(acct)``,
- ratio   = ``venue.margin.ratio(acct)`` (None there = +inf here),
- IM      = the account's model ``im`` on its *positions* (the sweep leaves
  resting orders to the pre-trade check), i.e. Σ IM tiers for isolated.
"""

from __future__ import annotations

import math

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from risk_helpers import (
    BTC2,
    COIN,
    HOUSE,
    U,
    close,
    default_config,
    deposit,
    new_venue,
    no_fees,
    open_position,
    set_price,
    with_profile,
    with_second_btc,
)

from exchange_sim.accounts import Account
from exchange_sim.risk import sweep as sweep_mod
from protocol.messages import AdjustIsolatedMargin, CancelAll, Deposit, MarginMode, NewOrder, Rejected, SetMarginMode, SettleFunding, Side

MODES = [MarginMode.CROSS, MarginMode.PORTFOLIO, MarginMode.ISOLATED]
SETTINGS = settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.too_slow])
VENUE_SETTINGS = settings(max_examples=100, deadline=None, suppress_health_check=[HealthCheck.too_slow])


def assert_sweep_matches(v) -> None:
    """Every account: sweep figures == per-account figures (1e-9 relative)."""
    res = v.risk_sweep()
    assert sorted(res.ids) == sorted(v.accounts)
    m = v.margin
    for col, acct_id in enumerate(res.ids):
        acct = m.fresh(v.accounts[acct_id])
        exposures = m.exposures(acct)
        im_pos = m.model(acct).im(exposures) if exposures else 0.0
        got = (res.equity[col], res.mm[col], res.im[col], res.ratio[col])
        want = (m.equity(acct), acct.mm, im_pos, m.ratio(acct))
        for name, g, w in zip(("equity", "mm", "im", "ratio"), got, want):
            assert close(float(g), w, abs_=1e-7), f"account {acct_id} ({acct.margin_mode}) {name}: sweep {g} != {w}"


# ----------------------------------------------------- direct construction

PRICES = {"BTC": 60_000, "ETH": 3_000, "SOL": 150, "BNB": 600, "MEME": 0.25}


@st.composite
def accounts_and_prices(draw):
    """Random wallets (debts included), positions up to tens of $M (every
    tier), isolated allocations, modes, and index prices moved ±50 %."""
    n = draw(st.integers(1, 8))
    accounts = []
    for _ in range(n):
        mode = draw(st.sampled_from(MODES))
        balances = {}
        for asset in ("USDT", "USDC", "BTC", "ETH", "SOL", "BNB", "MEME"):
            if draw(st.booleans()):
                lo = -(10**12) if asset == "USDT" else 0  # only the settlement asset goes negative
                balances[asset] = draw(st.integers(lo, 10**15))
        positions = {}
        for sym, max_lots in (("BTC-PERP", 400_000), ("ETH-PERP", 5_000_000), ("SOL-PERP", 500_000),
                              ("BNB-PERP", 500_000), ("MEME-PERP", 100_000_000), (BTC2, 400_000)):
            if draw(st.booleans()):
                qty = draw(st.integers(-max_lots, max_lots).filter(bool))
                entry = draw(st.floats(0.5, 1.5))
                positions[sym] = qty
                positions[sym + ":entry"] = entry
        accounts.append((mode, balances, positions, draw(st.lists(st.integers(1, 10**10), min_size=6, max_size=6))))
    moves = {a: draw(st.floats(0.5, 1.5)) for a in PRICES}
    profile = draw(st.sampled_from(["default", "stress"]))
    block = draw(st.sampled_from([None, 1, 2, 3]))  # the sweep's column block (None: its default)
    return accounts, moves, profile, block


@SETTINGS
@given(accounts_and_prices())
def test_sweep_equals_per_account_path_random_accounts(case):
    """Accounts written straight into the venue (no trading), so wallets can be
    anything: negative USDT, every haircut bracket, every margin tier, two
    instruments on BTC, isolated allocations. Then every index moves and the
    sweep must equal the per-account path for all three modes, whatever the
    column block the sweep works through (1, 2, 3 accounts or its default)."""
    accounts, moves, profile, block = case
    v = new_venue(with_profile(with_second_btc(no_fees(default_config())), profile))
    for k, (mode, balances, positions, allocs) in enumerate(accounts, start=1):
        acct = Account(k, mode)
        acct.balances.update(balances)
        for j, sym in enumerate([s for s in positions if ":" not in s]):
            ins = v.instruments[sym]
            pos = acct.position(sym)
            pos.qty = positions[sym]
            pos.cost = round(pos.qty * ins.mark * positions[sym + ":entry"])
            if mode is MarginMode.ISOLATED:
                acct.isolated[sym] = allocs[j]
        v.accounts[k] = acct
        v.arrays.add(acct)
    # prices move behind the venue's back: these books do not net to zero,
    # so no command may run on them (the liquidation engine would act)
    for asset, f in moves.items():
        a = v.assets[asset]
        a.index = round(PRICES[asset] * f * 10**8)
        for ins in v.by_underlying[asset]:
            ins.mark = ins.mark_from_index(a.index)
    v.margin.epoch += 1
    default_block = getattr(sweep_mod, "BLOCK", None)
    if block is not None and default_block is not None:
        sweep_mod.BLOCK = block
    try:
        assert_sweep_matches(v)
    finally:
        if default_block is not None:
            sweep_mod.BLOCK = default_block


# --------------------------------------------------------- through the venue

trade_op = st.tuples(st.just("trade"), st.integers(1, 4), st.sampled_from(["BTC-PERP", "ETH-PERP", "SOL-PERP", "MEME-PERP"]),
                    st.integers(-3, 3).filter(bool), st.floats(-0.01, 0.01))
op = st.one_of(
    trade_op, trade_op, trade_op,
    st.tuples(st.just("price"), st.sampled_from(["BTC", "ETH", "SOL", "MEME"]), st.floats(0.8, 1.2)),
    st.tuples(st.just("mode"), st.integers(1, 4), st.sampled_from(MODES)),
    st.tuples(st.just("adjust"), st.integers(1, 4), st.sampled_from(["BTC-PERP", "ETH-PERP"]), st.integers(-50, 50)),
    st.tuples(st.just("funding"),),
)
SIZE = {"BTC-PERP": 200, "ETH-PERP": 5_000, "SOL-PERP": 500, "MEME-PERP": 20_000}  # lots per unit step


@VENUE_SETTINGS
@given(st.lists(st.sampled_from(MODES), min_size=4, max_size=4),
       st.lists(st.tuples(st.integers(0, 50_000), st.integers(0, 100), st.integers(0, 200_000)), min_size=4, max_size=4),
       st.lists(op, min_size=6, max_size=30))
def test_sweep_equals_per_account_path_through_the_venue(modes, wallets, ops):
    """Accounts 1-4 start in random modes with random USDT / BTC / MEME
    wallets, then random trades (at mark ±1 %), index moves, mode switches,
    isolated-margin adjustments and funding settlements (with fees on, so
    USDT can go negative). After every step the sweep (which syncs only the
    accounts the venue marked dirty) equals the per-account path, and the
    venue's invariants hold."""
    v = new_venue(default_config())
    for k, (mode, (usdt, btc_cents, meme)) in enumerate(zip(modes, wallets), start=1):
        deposit(v, k, USDT=usdt + 1, BTC=f"{btc_cents / 100}", MEME=meme)
        if mode is not MarginMode.CROSS:
            v.apply(SetMarginMode(account=k, mode=mode))
    for o in ops:
        if o[0] == "trade":
            _, acct, sym, steps, off = o
            ins = v.instruments[sym]
            price = max(1, round(ins.mark * (1 + off)))
            lots = steps * SIZE[sym]
            side, other = (Side.BUY, Side.SELL) if lots > 0 else (Side.SELL, Side.BUY)
            v.apply(NewOrder(account=HOUSE, symbol=sym, side=other, qty=abs(lots), price=price, tif="post_only"))
            v.apply(NewOrder(account=acct, symbol=sym, side=side, qty=abs(lots), price=price, tif="ioc"))
            v.apply(CancelAll(account=HOUSE))  # the house order is left when the account's was refused
        elif o[0] == "price":
            _, asset, f = o
            set_price(v, asset, round(v.assets[asset].index / 1e8 * f, 5))
        elif o[0] == "mode":
            v.apply(SetMarginMode(account=o[1], mode=o[2]))
        elif o[0] == "adjust":
            v.apply(AdjustIsolatedMargin(account=o[1], symbol=o[2], delta=o[3] * U))
        else:
            v.apply(SettleFunding())
        assert_sweep_matches(v)
        v._check()


# ------------------------------------------------------------ small cases


def test_sweep_hand_arithmetic_three_modes():
    """Three accounts, each holding 0.1 BTC ($6,000 → 5 % haircut → $5,700)
    and 1,000 USDT, each long 1 BTC-PERP at $60,000 and short 10 ETH-PERP at
    $3,000 ($30,000), no fees:

    - cross:     MM = 60,000×0.5 % + 30,000×0.5 % = 300 + 150 = 450;
                 IM = 600 + 300 = 900; equity = 5,700 + 1,000 = 6,700.
    - portfolio: E_BTC = +300, E_ETH = −150, T = 150; "BTC −" loses
                 0.3×300 + 0.7×150 = 195; "ETH +" 0.3×(−150)+0.7×150 = 60,
                 market 150; floor 0.1 %×90,000 = 90 → MM = 195, IM = 390.
    - isolated:  allocations = each position's IM (600, 300) moved out of
                 USDT (1,000 − 900 = 100 left); MM 450, IM 900; equity =
                 5,700 + 100 + 900 = 6,700; ratio = worst position's
                 (alloc + uPnL) / MM = min(600/300, 300/150) = 2.0.
    """
    v = new_venue()
    for k, mode in enumerate(("cross", "portfolio", "isolated"), start=1):
        deposit(v, k, USDT=1000, BTC="0.1")
        if mode != "cross":
            v.apply(SetMarginMode(account=k, mode=mode))
        open_position(v, k, "BTC-PERP", 1000)
        open_position(v, k, "ETH-PERP", -10_000)
    res = v.risk_sweep()
    col = {a: i for i, a in enumerate(res.ids)}
    c, p, i = col[1], col[2], col[3]
    assert res.equity[c] == pytest.approx(6700) and res.mm[c] == pytest.approx(450) and res.im[c] == pytest.approx(900)
    assert res.ratio[c] == pytest.approx(6700 / 450)
    assert res.equity[p] == pytest.approx(6700) and res.mm[p] == pytest.approx(195) and res.im[p] == pytest.approx(390)
    assert res.ratio[p] == pytest.approx(6700 / 195)
    assert res.equity[i] == pytest.approx(6700) and res.mm[i] == pytest.approx(450) and res.im[i] == pytest.approx(900)
    assert res.ratio[i] == pytest.approx(2.0)
    assert v.accounts[3].balances["USDT"] == 100 * U
    assert_sweep_matches(v)


def test_sweep_sees_changes_made_after_the_last_sweep():
    """The sweep syncs accounts the venue marked dirty: a fill, a deposit, a
    mode switch and a funding payment after one sweep all show in the next."""
    v = new_venue()
    deposit(v, 1, USDT=10_000)
    v.risk_sweep()
    open_position(v, 1, "BTC-PERP", 1000)  # $60,000 long: MM 300
    res = v.risk_sweep()
    assert res.mm[res.ids.index(1)] == pytest.approx(300)
    deposit(v, 1, BTC="1")  # +$57,000 counted
    res = v.risk_sweep()
    assert res.equity[res.ids.index(1)] == pytest.approx(67_000)
    v.apply(SetMarginMode(account=1, mode="portfolio"))
    v.apply(SettleFunding())  # empty book: rate 0.01 % → long pays 6 USDT
    res = v.risk_sweep()
    assert res.equity[res.ids.index(1)] == pytest.approx(66_994)
    assert v.arrays.mode[v.accounts[1].col] == 1
    assert_sweep_matches(v)


def test_sweep_many_accounts_grow_and_close():
    """More accounts than the arrays' initial capacity (1,024 columns: they
    double), then closing accounts moves the last column into the hole; the
    sweep still matches account by account."""
    from protocol.messages import CloseAccount, Withdraw

    v = new_venue()
    for k in range(1, 1100):
        deposit(v, k, USDT=1000 + k)
    assert v.arrays.cap >= 1100
    open_position(v, 7, "ETH-PERP", 3000)
    open_position(v, 1099, "ETH-PERP", -3000)
    for k in (1, 500, 8):
        v.apply(Withdraw(account=k, asset="USDT", amount=(1000 + k) * U))
        ev = v.apply(CloseAccount(account=k))
        assert not isinstance(ev[0], Rejected), ev
    v._check()
    assert_sweep_matches(v)


def test_sweep_of_no_accounts_and_of_an_account_without_positions():
    """A venue with no user accounts sweeps. An account with only a wallet: MM 0 and an
    infinite ratio (the per-account path says None)."""
    from exchange_sim.venue import Venue

    bare = Venue(default_config())
    res = bare.risk_sweep()
    assert res.ids == sorted(bare.accounts)  # only the insurance fund, if the venue has one
    v = new_venue()
    res = v.risk_sweep()
    col = res.ids.index(HOUSE)
    assert res.mm[col] == 0.0 and math.isinf(res.ratio[col])
    assert v.margin.ratio(v.accounts[HOUSE]) is None


# ------------------------------------------------- the models' own sweeps


@settings(max_examples=40, deadline=None)
@given(st.integers(1, 30), st.integers(0, 2**32 - 1), st.sampled_from(["default", "stress"]))
def test_model_sweep_equals_model_per_account(n, seed, profile):
    """``CrossMargin.sweep`` / ``PortfolioMargin.sweep`` (matrix form) equal
    ``mm`` / ``im`` (closed form) column by column, for random signed
    notionals from $0 to $50M (zeros included)."""
    v = new_venue(with_profile(with_second_btc(default_config()), profile))
    rng = np.random.default_rng(seed)
    symbols = list(v.instruments)
    notional = rng.choice([0.0, 1.0], size=(len(symbols), n)) * rng.uniform(-5e7, 5e7, size=(len(symbols), n))
    notional *= 10.0 ** rng.integers(-4, 1, size=(len(symbols), n))
    for model in (v.margin.cross, v.margin.portfolio):
        im, mm = model.sweep(notional, symbols)
        for a in range(n):
            exp = [(v.instruments[s], float(notional[i, a])) for i, s in enumerate(symbols) if notional[i, a]]
            want_mm = model.mm(exp) if exp else 0.0
            want_im = model.im(exp) if exp else 0.0
            assert close(float(mm[a]), want_mm, abs_=1e-7), (model.name, a, mm[a], want_mm)
            assert close(float(im[a]), want_im, abs_=1e-7), (model.name, a, im[a], want_im)


def test_sweep_uses_coin_units_for_collateral():
    """1 BTC deposited (10^8 satoshi) at $60,000 is $60,000 − 5 % of the first
    $1M = $57,000 in the sweep, as in the per-account path."""
    v = new_venue()
    v.apply(Deposit(account=1, asset="BTC", amount=COIN))
    res = v.risk_sweep()
    assert res.equity[res.ids.index(1)] == pytest.approx(57_000)
