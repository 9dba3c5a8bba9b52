"""Margin modes per account: switching rules, isolated allocations, adding
and removing isolated margin, reduce-only mode, margin calls.

Fees are off (``risk_helpers.new_venue``) so every wallet figure is exact;
``venue._check()`` (money conservation, positions net to zero, sweep
columns in sync, no allocation without a position) runs after every step.
"""

from __future__ import annotations

import pytest
from risk_helpers import (
    HOUSE,
    U,
    assert_rejected,
    default_config,
    deposit,
    new_venue,
    no_fees,
    open_position,
    set_mode,
    set_price,
    with_models,
    with_profile,
    with_risk,
)

from protocol.messages import (
    AccountUpdate,
    AdjustIsolatedMargin,
    CancelOrder,
    IsolatedMarginChanged,
    MarginCall,
    MarginMode,
    MarginModeChanged,
    NewOrder,
    OrderAccepted,
    QueryAccount,
    Rejected,
    RejectReason,
    SetMarginMode,
    SettleFunding,
    Side,
    Withdraw,
)

R = RejectReason


def update(v, account: int) -> AccountUpdate:
    (ev,) = v.apply(QueryAccount(account=account))
    return ev


def step(v, cmd) -> list:
    events = v.apply(cmd)
    v._check()
    return events


def calls(events, account: int) -> list[str]:
    return [e.level for e in events if isinstance(e, MarginCall) and e.account == account]


def buy(account, qty, price, symbol="BTC-PERP", **kw):
    return NewOrder(account=account, symbol=symbol, side=Side.BUY, qty=qty, price=price, **kw)


def sell(account, qty, price, symbol="BTC-PERP", **kw):
    return NewOrder(account=account, symbol=symbol, side=Side.SELL, qty=qty, price=price, **kw)


# ------------------------------------------------------------------ switching


def test_switch_modes_when_flat():
    """A new account starts in ``risk.default_mode`` (cross); with nothing
    open it may go to portfolio, isolated and back; each switch gives
    MarginModeChanged + AccountUpdate in the new mode and moves the sweep
    column's mode code."""
    v = new_venue()
    deposit(v, 1, USDT=1_000)
    assert update(v, 1).margin_mode is MarginMode.CROSS
    for mode, code in (("portfolio", 1), ("isolated", 2), ("cross", 0), ("isolated", 2), ("portfolio", 1)):
        events = step(v, SetMarginMode(account=1, mode=mode))
        assert isinstance(events[0], MarginModeChanged) and events[0].mode == mode
        assert isinstance(events[1], AccountUpdate) and events[1].margin_mode == mode
        v.risk_sweep()
        assert v.arrays.mode[v.accounts[1].col] == code


def test_default_mode_comes_from_the_config():
    v = new_venue(with_risk(no_fees(default_config()), default_mode="portfolio"))
    deposit(v, 7, USDT=1)
    assert update(v, 7).margin_mode is MarginMode.PORTFOLIO


def test_switch_rejects_same_mode_unknown_mode_and_unknown_account():
    v = new_venue()
    deposit(v, 1, USDT=1_000)
    assert_rejected(v, SetMarginMode(account=1, mode="cross"), R.MARGIN_MODE_CHANGE_DENIED)
    assert_rejected(v, SetMarginMode(account=1, mode="hedge"), R.INVALID_FIELD)
    assert_rejected(v, SetMarginMode(account=99, mode="portfolio"), R.UNKNOWN_ACCOUNT)


@pytest.mark.parametrize("start", ["cross", "portfolio", "isolated"])
def test_isolated_switch_needs_no_positions_and_no_orders(start):
    """To or from isolated: refused while the account has a resting order or
    an open position (as on Binance); allowed once both are gone."""
    v = new_venue()
    deposit(v, 1, USDT=10_000)
    if start != "cross":
        set_mode(v, 1, start)
    target = "cross" if start == "isolated" else "isolated"
    ev = step(v, buy(1, 10, 590_000))  # resting 0.01 BTC bid
    oid = next(e.order_id for e in ev if isinstance(e, OrderAccepted))
    assert_rejected(v, SetMarginMode(account=1, mode=target), R.MARGIN_MODE_CHANGE_DENIED)
    step(v, CancelOrder(account=1, order_id=oid))
    open_position(v, 1, "BTC-PERP", 10)
    assert_rejected(v, SetMarginMode(account=1, mode=target), R.MARGIN_MODE_CHANGE_DENIED)
    open_position(v, 1, "BTC-PERP", -10)  # flat again
    v._check()
    events = step(v, SetMarginMode(account=1, mode=target))
    assert isinstance(events[0], MarginModeChanged)


def test_cross_to_stress_portfolio_refused_above_equity():
    """Stress profile in force (BTC range 8 %, IM = 1.3 × MM). 10,000 USDT:

    - long 2 BTC ($120,000): cross IM 1 % = 1,200; portfolio IM would be
      1.3 × 8 % × 120,000 = 12,480 > 10,000 → MARGIN_MODE_CHANGE_DENIED,
      nothing changes;
    - with 1 BTC ($60,000): 1.3 × 4,800 = 6,240 ≤ 10,000 → allowed.
    """
    v = new_venue(with_profile(no_fees(default_config()), "stress"))
    deposit(v, 1, USDT=10_000)
    open_position(v, 1, "BTC-PERP", 2_000)
    rej = assert_rejected(v, SetMarginMode(account=1, mode="portfolio"), R.MARGIN_MODE_CHANGE_DENIED)
    assert "12480" in rej.message.replace(",", "") or "12480.00" in rej.message
    open_position(v, 1, "BTC-PERP", -1_000)
    events = step(v, SetMarginMode(account=1, mode="portfolio"))
    assert isinstance(events[0], MarginModeChanged)
    assert update(v, 1).im == pytest.approx(6_240)


def test_resting_orders_count_in_the_switch_check():
    """No position, one resting bid of 2 BTC at $59,000 ($118,000): cross IM
    1,180; stress portfolio IM 1.3 × 8 % × 118,000 = 12,272 > 10,000 →
    refused. After cancelling it the switch goes through."""
    v = new_venue(with_profile(no_fees(default_config()), "stress"))
    deposit(v, 1, USDT=10_000)
    ev = step(v, buy(1, 2_000, 590_000))
    oid = next(e.order_id for e in ev if isinstance(e, OrderAccepted))
    assert update(v, 1).im == pytest.approx(1_180)
    assert_rejected(v, SetMarginMode(account=1, mode="portfolio"), R.MARGIN_MODE_CHANGE_DENIED)
    step(v, CancelOrder(account=1, order_id=oid))
    assert isinstance(step(v, SetMarginMode(account=1, mode="portfolio"))[0], MarginModeChanged)


def test_portfolio_to_cross_refused_for_a_hedge_cross_cannot_carry():
    """Default profile, 3,000 USDT, portfolio mode: long 80 ETH ($240,000),
    short 2 BTC ($120,000). Portfolio IM = 2 × 780 = 1,560 ≤ 3,000 (see
    test_article step 3); cross would need 2,400 + 1,200 = 3,600 > 3,000 →
    refused, state unchanged."""
    v = new_venue()
    deposit(v, 1, USDT=3_000)
    set_mode(v, 1, "portfolio")
    open_position(v, 1, "ETH-PERP", 80_000)
    open_position(v, 1, "BTC-PERP", -2_000)
    assert update(v, 1).im == pytest.approx(1_560)
    assert_rejected(v, SetMarginMode(account=1, mode="cross"), R.MARGIN_MODE_CHANGE_DENIED)
    assert update(v, 1).margin_mode is MarginMode.PORTFOLIO
    deposit(v, 1, USDT=600)  # 3,600 ≥ 3,600: now it fits
    assert isinstance(step(v, SetMarginMode(account=1, mode="cross"))[0], MarginModeChanged)
    assert update(v, 1).im == pytest.approx(3_600)


# ------------------------------------------------------------------ isolated


def allocated(v, account: int, symbol: str = "BTC-PERP") -> int:
    return v.accounts[account].isolated.get(symbol, 0)


def usdt(v, account: int) -> int:
    return v.accounts[account].balances.get("USDT", 0)


def test_isolated_allocation_lifecycle():
    """10,000 USDT, isolated, fees off, every fill at mark $60,000 (BTC-PERP
    IM 1 % under $250k):

    1. buy 0.5 BTC ($30,000): allocation = IM = 300 USDT out of the wallet → 9,700
    2. buy 0.5 more (1 BTC, $60,000): topped up to IM 600 (+300) → wallet 9,400
    3. sell 0.4 (40 % closed): the closed share goes back, 600 × 600 // 1,000
       = 360 kept (−240) → wallet 9,640
    4. add 100 → 460; wallet 9,540
    5. remove 101 → 359 < IM of 0.6 BTC ($36,000 × 1 % = 360): refused
    6. remove 100 → 360 = IM: allowed (never *below* IM); remove 1 µUSDT more: refused
    7. add more than the wallet holds: INSUFFICIENT_BALANCE
    8. sell 0.6 (close): all 360 back → wallet 10,000, no allocation left
    Money is conserved at every step (``_check`` counts allocations).
    """
    v = new_venue()
    deposit(v, 1, USDT=10_000)
    set_mode(v, 1, "isolated")

    ev = open_position(v, 1, "BTC-PERP", 500)
    v._check()
    (chg,) = [e for e in ev if isinstance(e, IsolatedMarginChanged)]
    assert (chg.symbol, chg.delta, chg.allocated) == ("BTC-PERP", 300 * U, 300 * U)
    assert usdt(v, 1) == 9_700 * U

    open_position(v, 1, "BTC-PERP", 500)
    v._check()
    assert allocated(v, 1) == 600 * U and usdt(v, 1) == 9_400 * U

    ev = open_position(v, 1, "BTC-PERP", -400)
    v._check()
    (chg,) = [e for e in ev if isinstance(e, IsolatedMarginChanged)]
    assert chg.delta == -240 * U and chg.allocated == 360 * U
    assert usdt(v, 1) == 9_640 * U

    ev = step(v, AdjustIsolatedMargin(account=1, symbol="BTC-PERP", delta=100 * U))
    assert isinstance(ev[0], IsolatedMarginChanged) and ev[0].allocated == 460 * U
    assert usdt(v, 1) == 9_540 * U

    assert_rejected(v, AdjustIsolatedMargin(account=1, symbol="BTC-PERP", delta=-101 * U), R.INSUFFICIENT_MARGIN)
    step(v, AdjustIsolatedMargin(account=1, symbol="BTC-PERP", delta=-100 * U))
    assert allocated(v, 1) == 360 * U and usdt(v, 1) == 9_640 * U
    assert_rejected(v, AdjustIsolatedMargin(account=1, symbol="BTC-PERP", delta=-1), R.INSUFFICIENT_MARGIN)
    assert_rejected(v, AdjustIsolatedMargin(account=1, symbol="BTC-PERP", delta=9_640 * U + 1),
                    R.INSUFFICIENT_BALANCE)

    ev = open_position(v, 1, "BTC-PERP", -600)
    v._check()
    (chg,) = [e for e in ev if isinstance(e, IsolatedMarginChanged)]
    assert chg.delta == -360 * U and chg.allocated == 0
    assert v.accounts[1].isolated == {} and usdt(v, 1) == 10_000 * U


def test_isolated_flip_reallocates_for_the_new_side():
    """Long 0.5 BTC (allocation 300), then sell 1.5 BTC: short 1 BTC. The
    flip sets the allocation to the new position's IM, 600, whatever was
    there (the realized PnL at mark is 0): wallet 10,000 − 600 = 9,400."""
    v = new_venue()
    deposit(v, 1, USDT=10_000)
    set_mode(v, 1, "isolated")
    open_position(v, 1, "BTC-PERP", 500)
    open_position(v, 1, "BTC-PERP", -1_500)
    v._check()
    assert allocated(v, 1) == 600 * U and usdt(v, 1) == 9_400 * U


def test_adjust_isolated_rejects():
    v = new_venue()
    deposit(v, 1, USDT=10_000)
    assert_rejected(v, AdjustIsolatedMargin(account=1, symbol="BTC-PERP", delta=U), R.NOT_ALLOWED)  # cross
    set_mode(v, 1, "isolated")
    assert_rejected(v, AdjustIsolatedMargin(account=1, symbol="BTC-PERP", delta=U), R.NOT_ALLOWED)  # no position
    open_position(v, 1, "BTC-PERP", 100)
    assert_rejected(v, AdjustIsolatedMargin(account=1, symbol="BTC-PERP", delta=0), R.INVALID_FIELD)
    assert_rejected(v, AdjustIsolatedMargin(account=1, symbol="NOPE-PERP", delta=U), R.UNKNOWN_SYMBOL)
    assert_rejected(v, AdjustIsolatedMargin(account=1, symbol="ETH-PERP", delta=U), R.NOT_ALLOWED)


def test_isolated_is_funded_from_usdt_only():
    """Isolated allocations come out of the settlement asset: 1 BTC in the
    wallet backs nothing there. With 59 USDT a 0.1 BTC buy ($6,000, IM 60)
    is refused; with 60 USDT it goes through and allocates exactly 60."""
    v = new_venue()
    deposit(v, 1, BTC=1, USDT=59)
    set_mode(v, 1, "isolated")
    v.apply(sell(HOUSE, 100, 600_000, tif="post_only"))
    assert_rejected(v, buy(1, 100, 600_000, tif="ioc"), R.INSUFFICIENT_MARGIN)
    deposit(v, 1, USDT=1)
    step(v, buy(1, 100, 600_000, tif="ioc"))
    assert allocated(v, 1) == 60 * U and usdt(v, 1) == 0


def test_isolated_position_at_risk_alone():
    """Two accounts with 10,000 USDT each long 0.5 BTC at $60,000; one
    isolated (allocation 300), one cross. BTC falls to $59,500:

    - isolated: own margin 300 + uPnL (−250) = 50 vs MM 29,750 × 0.5 % =
      148.75 → ratio 0.336: liquidation-level MarginCall although its wallet
      still holds 9,700 USDT; its loss stays capped at the 300 allocated,
      the wallet is not touched;
    - cross: equity 10,000 − 250 = 9,750 over MM 148.75: no call.
    """
    v = new_venue()
    for acct in (1, 2):
        deposit(v, acct, USDT=10_000)
    set_mode(v, 1, "isolated")
    for acct in (1, 2):
        open_position(v, acct, "BTC-PERP", 500)
    events = set_price(v, "BTC", 59_500)
    v._check()
    iso = [e for e in events if isinstance(e, MarginCall) and e.account == 1]
    assert [c.level for c in iso] == ["liquidation"]
    assert iso[0].margin_ratio == pytest.approx(50 / 148.75)
    assert calls(events, 2) == []
    assert usdt(v, 1) >= 9_700 * U, "an isolated loss is capped at the allocation"


# ------------------------------------------------------------- reduce-only


def reduce_only_account():
    """Account 1: 720 USDT, buys 1 BTC at $60,300 (0.5 % over mark): uPnL −300,
    equity 420, MM 300 → ratio 1.4 (warning). BTC → $59,900: uPnL −400,
    equity 320, MM 299.5 → ratio 1.068: below reduce_only_ratio 1.2."""
    v = new_venue()
    deposit(v, 1, USDT=720)
    open_position(v, 1, "BTC-PERP", 1_000, price=603_000)
    set_price(v, "BTC", 59_900)
    v._check()
    assert v.margin.ratio(v.margin.fresh(v.accounts[1])) == pytest.approx(320 / 299.5)
    return v


def test_reduce_only_mode_refuses_risk_and_accepts_reductions():
    """Below the reduce-only ratio (1.068 < 1.2): any order that raises the
    account's IM is refused with REDUCE_ONLY_MODE (a BTC bid, an ETH bid, a
    sell that would flip the long into a bigger short), state unchanged;
    orders that reduce risk pass: a plain resting sell of 0.5 BTC, a
    reduce-only sell of 0.2 BTC."""
    v = reduce_only_account()
    assert_rejected(v, buy(1, 10, 590_000), R.REDUCE_ONLY_MODE)
    assert_rejected(v, buy(1, 100, 290_000, symbol="ETH-PERP"), R.REDUCE_ONLY_MODE)
    ev = step(v, sell(1, 500, 610_000))
    assert isinstance(ev[0], OrderAccepted)
    ev = step(v, sell(1, 200, 612_000, reduce_only=True))
    assert isinstance(ev[0], OrderAccepted)
    assert_rejected(v, sell(1, 3_000, 615_000), R.REDUCE_ONLY_MODE)


def test_reduce_only_mode_blocks_what_initial_margin_would_allow():
    """With a model where IM = MM (the toy model, MM = 10 % of gross), an
    account can sit between ratio 1.0 and 1.2 with equity above IM, so
    reduce-only mode is what refuses. 10,000 USDT, portfolio (→ toy), long
    1 BTC at $60,000 (IM = MM = 6,000). BTC → $56,000: equity 6,000, MM 5,600,
    ratio 1.071. A 0.001 BTC bid at $55,000 would need IM 5,605.5 ≤ 6,000,
    yet is refused (REDUCE_ONLY_MODE). BTC → $57,000: equity 7,000, MM 5,700,
    ratio 1.228 ≥ 1.2: the same bid is accepted."""
    v = new_venue(with_models(no_fees(default_config()), portfolio="toy_model:ToyModel"))
    deposit(v, 1, USDT=10_000)
    set_mode(v, 1, "portfolio")
    open_position(v, 1, "BTC-PERP", 1_000)
    events = set_price(v, "BTC", 56_000)
    assert calls(events, 1) == ["reduce_only"]
    assert_rejected(v, buy(1, 1, 550_000), R.REDUCE_ONLY_MODE)
    set_price(v, "BTC", 57_000)
    assert isinstance(step(v, buy(1, 1, 550_000))[0], OrderAccepted)


# --------------------------------------------------------------- margin calls


def test_margin_calls_once_per_worsening_level_after_fills_and_index_moves():
    """720 USDT; buy 1 BTC at $60,300 while mark is $60,000 (uPnL −300):

    - after the fill (per-account path): equity 420 / MM 300 = 1.4 < 1.5 → "warning"
    - BTC $59,950: equity 370 / 299.75 = 1.234: still warning → no new call
    - BTC $59,900: 320 / 299.5 = 1.068 < 1.2 → "reduce_only" (sweep path)
    - BTC $59,880: 300 / 299.4 = 1.002: still reduce_only → no call
    - BTC $59,850: 270 / 299.25 = 0.902 < 1.0 → "liquidation"
    """
    v = new_venue()
    deposit(v, 1, USDT=720)
    seen = []
    ev = open_position(v, 1, "BTC-PERP", 1_000, price=603_000)
    seen.append(calls(ev, 1))
    (call,) = [e for e in ev if isinstance(e, MarginCall)]
    assert call.margin_ratio == pytest.approx(1.4) and call.equity == pytest.approx(420) and call.mm == pytest.approx(300)
    for px in (59_950, 59_900, 59_880, 59_850):
        seen.append(calls(set_price(v, "BTC", px), 1))
        v._check()
    assert seen == [["warning"], [], ["reduce_only"], [], ["liquidation"]]


def test_btc_collateral_falling_brings_margin_calls_without_a_losing_position():
    """Wallet: 0.1 BTC only ($6,000 × 95 % = 5,700 counted). Long 30 ETH at
    $3,000 = $90,000 (MM 450, IM 900); ETH never moves, so uPnL stays 0.

    - BTC $8,000: 800 × 0.95 = 760 / 450 = 1.69 → no call
    - BTC $6,500: 617.5 / 450 = 1.372 → "warning"
    - BTC back to $60,000: ratio 12.7 → level reset, no call
    - BTC $6,500 again → "warning" again
    - BTC $5,500: 522.5 / 450 = 1.161 → "reduce_only"
    - BTC $4,500: 427.5 / 450 = 0.95 → "liquidation", only because BTC fell
    """
    v = new_venue()
    deposit(v, 1, BTC="0.1")
    open_position(v, 1, "ETH-PERP", 30_000)
    seen = []
    last = None
    for px in (8_000, 6_500, 60_000, 6_500, 5_500, 4_500):
        events = set_price(v, "BTC", px)
        v._check()
        seen.append(calls(events, 1))
        last = [e for e in events if isinstance(e, MarginCall) and e.account == 1] or last
    assert seen == [[], ["warning"], [], ["warning"], ["reduce_only"], ["liquidation"]]
    assert last[0].equity == pytest.approx(427.5) and last[0].mm == pytest.approx(450)


def test_margin_calls_are_private_and_ordered_most_under_margined_first():
    """Three accounts long 30 ETH each on BTC collateral of 0.1, 0.1 and
    0.09 BTC; BTC → $6,500: ratios 1.372, 1.372 and 1.235 → three warnings,
    the lowest ratio first, ties by account id: [3, 1, 2]."""
    v = new_venue()
    for acct, btc in ((1, "0.1"), (2, "0.1"), (3, "0.09")):
        deposit(v, acct, BTC=btc)
        open_position(v, acct, "ETH-PERP", 30_000)
    events = set_price(v, "BTC", 6_500)
    got = [(e.account, e.level) for e in events if isinstance(e, MarginCall)]
    assert got == [(3, "warning"), (1, "warning"), (2, "warning")]


def test_adding_isolated_margin_lifts_the_position_out_of_warning():
    """Isolated long 1 BTC at $60,300 (mark $60,000), 1,000 USDT: allocation
    = IM at mark 600, uPnL −300 → own 300 / MM 300 = 1.0 → reduce_only
    after the fill (exactly 1.0 is not below 1.0). Adding 200: own 500 /
    300 = 1.67 → level back to ok; then removing 150 (allocation 650 ≥ IM
    600) gives 350 / 300 = 1.167 → a new "reduce_only" call."""
    v = new_venue()
    deposit(v, 1, USDT=1_000)
    set_mode(v, 1, "isolated")
    ev = open_position(v, 1, "BTC-PERP", 1_000, price=603_000)
    assert allocated(v, 1) == 600 * U
    assert calls(ev, 1) == ["reduce_only"]
    ev = step(v, AdjustIsolatedMargin(account=1, symbol="BTC-PERP", delta=200 * U))
    assert calls(ev, 1) == []
    assert v.margin.ratio(v.margin.fresh(v.accounts[1])) == pytest.approx(500 / 300)
    ev = step(v, AdjustIsolatedMargin(account=1, symbol="BTC-PERP", delta=-150 * U))
    assert calls(ev, 1) == ["reduce_only"]


def test_rejected_commands_never_fire_margin_calls():
    v = reduce_only_account()
    ev = v.apply(buy(1, 10, 590_000))
    assert len(ev) == 1 and isinstance(ev[0], Rejected)


# ------------------------------------- isolated funding, withdrawals, margin calls


def test_isolated_funding_cannot_build_an_unchecked_debt():
    """700 USDT, isolated, long 1 BTC at $60,300 (mark $60,000): allocation
    600, wallet 100, uPnL −300 → position ratio (600 − 300) / 300 = 1.0. Three
    funding settlements at the 0.75 % cap would cost 3 × 450 = 1,350; paid
    from the wallet they left it at −1,250 USDT with the isolated ratio still
    reading 1.0. Funding comes out of the allocation: after the first one it
    is 150, the position's own ratio (150 − 300) / 300 < 0 brings a
    "liquidation" MarginCall naming BTC-PERP, and the position is liquidated
    alone; the wallet's 100 USDT is never touched."""
    v = new_venue()
    deposit(v, 1, USDT=700)
    set_mode(v, 1, "isolated")
    open_position(v, 1, "BTC-PERP", 1_000, price=603_000)
    v.apply(buy(HOUSE, 1, 720_000, tif="post_only"))  # premium at the band edge: rate capped
    events = []
    for _ in range(3):
        events += v.apply(SettleFunding(symbol="BTC-PERP"))
    v._check()
    acct = v.accounts[1]
    assert v.margin.equity(v.margin.fresh(acct)) >= 0 or calls(events, 1), "negative equity, no margin call"
    (first,) = [e for e in events if isinstance(e, IsolatedMarginChanged) and e.account == 1][:1]
    assert (first.delta, first.allocated) == (-450 * U, 150 * U)
    (call,) = [e for e in events if isinstance(e, MarginCall) and e.account == 1]
    assert (call.level, call.symbol) == ("liquidation", "BTC-PERP")
    assert acct.position_qty("BTC-PERP") == 0 and usdt(v, 1) == 100 * U


def test_isolated_loss_does_not_lock_the_free_wallet():
    """700 USDT, isolated, long 1 BTC at $60,300 (mark $60,000): allocation
    600 (≥ IM 600), wallet 100 free. The position's loss (−300) is capped at
    its allocation, so withdrawing the free 100 passes (it used to be
    refused: "equity 300 below initial margin 600")."""
    v = new_venue()
    deposit(v, 1, USDT=700)
    set_mode(v, 1, "isolated")
    open_position(v, 1, "BTC-PERP", 1_000, price=603_000)
    ev = v.apply(Withdraw(account=1, asset="USDT", amount=100 * U))
    assert not isinstance(ev[0], Rejected), ev


def test_isolated_margin_call_names_the_position():
    """Sweep path: isolated long 0.5 BTC, BTC falls to $59,500: the
    MarginCall carries the position's symbol."""
    v = new_venue()
    deposit(v, 1, USDT=10_000)
    set_mode(v, 1, "isolated")
    open_position(v, 1, "BTC-PERP", 500)
    events = set_price(v, "BTC", 59_500)
    (call,) = [e for e in events if isinstance(e, MarginCall) and e.account == 1]
    assert call.symbol == "BTC-PERP"


def test_isolated_funding_is_paid_from_and_into_the_allocation():
    """Rate capped at +0.75 % (house bid at the band edge), BTC mark $60,000.
    Account 1, isolated, 700 USDT, long 1 BTC bought at $59,000 (uPnL
    +1,000): allocation 600, wallet 100. Account 2, isolated, 700 USDT,
    short 1 BTC sold at $61,000 (uPnL +1,000): allocation 600, wallet 100.

    - funding 1: account 1 pays 450 from its allocation (600 → 150), account
      2 receives 450 into its own (600 → 1,050); wallets stay at 100;
    - funding 2: account 1 owes 450 but has 150 allocated: the allocation
      goes to 0 and the wallet pays the other 300 (100 → −200); its
      position's own ratio (0 + 1,000) / 300 = 3.3 stays fine, no call;
      account 2's allocation is 1,500.
    Each allocation change is an IsolatedMarginChanged; money is conserved.
    """
    v = new_venue()
    for acct in (1, 2):
        deposit(v, acct, USDT=700)
        set_mode(v, acct, "isolated")
    open_position(v, 1, "BTC-PERP", 1_000, price=590_000)
    open_position(v, 2, "BTC-PERP", -1_000, price=610_000)
    v.apply(buy(HOUSE, 1, 720_000, tif="post_only"))
    assert (allocated(v, 1), usdt(v, 1), allocated(v, 2), usdt(v, 2)) == (600 * U, 100 * U, 600 * U, 100 * U)
    ev = step(v, SettleFunding(symbol="BTC-PERP"))
    changed = [(e.account, e.delta, e.allocated) for e in ev if isinstance(e, IsolatedMarginChanged)]
    assert changed == [(1, -450 * U, 150 * U), (2, 450 * U, 1_050 * U)]
    assert (usdt(v, 1), usdt(v, 2)) == (100 * U, 100 * U)
    assert calls(ev, 1) == [] and calls(ev, 2) == []
    ev = step(v, SettleFunding(symbol="BTC-PERP"))
    changed = [(e.account, e.delta, e.allocated) for e in ev if isinstance(e, IsolatedMarginChanged)]
    assert changed == [(1, -150 * U, 0), (2, 450 * U, 1_500 * U)]
    assert "BTC-PERP" not in v.accounts[1].isolated and usdt(v, 1) == -200 * U
    assert calls(ev, 1) == []
    assert v.margin.ratio(v.margin.fresh(v.accounts[1])) == pytest.approx(1_000 / 300)
    # the wallet debt must stay backed: 0.01 BTC counts 570, 0.005 BTC 285
    deposit(v, 1, BTC="0.01")
    assert_rejected(v, Withdraw(account=1, asset="BTC", amount=10**6), R.INSUFFICIENT_MARGIN)
    assert not isinstance(step(v, Withdraw(account=1, asset="BTC", amount=5 * 10**5))[0], Rejected)


def test_isolated_withdrawal_keeps_what_open_orders_need():
    """700 USDT, isolated, long 1 BTC at mark (allocation 600, wallet 100),
    and a resting buy of 0.1 BTC at $59,000: the worst side is long $65,900,
    IM 659, of which the allocation covers 600: the wallet must keep 59.
    Withdrawing 50 (leaves 50) is refused; 40 (leaves 60) passes."""
    v = new_venue()
    deposit(v, 1, USDT=700)
    set_mode(v, 1, "isolated")
    open_position(v, 1, "BTC-PERP", 1_000)
    assert not isinstance(step(v, buy(1, 100, 590_000))[0], Rejected)
    assert v.margin.isolated_need(v.margin.fresh(v.accounts[1])) == pytest.approx(59)
    assert_rejected(v, Withdraw(account=1, asset="USDT", amount=50 * U), R.INSUFFICIENT_MARGIN)
    assert not isinstance(step(v, Withdraw(account=1, asset="USDT", amount=40 * U))[0], Rejected)
    assert usdt(v, 1) == 60 * U


def test_isolated_margin_call_names_the_worst_position():
    """Isolated longs of 1 BTC and 20 ETH ($60,000 each, allocations 600
    each, 10,000 USDT). ETH falls 1.2 % to $2,964 (sweep path): ETH's own
    ratio (600 − 720) / 296.4 is below 0, BTC's (600 + 0) / 300 = 2: the
    call names ETH-PERP, and only the ETH position is liquidated."""
    v = new_venue()
    deposit(v, 1, USDT=10_000)
    set_mode(v, 1, "isolated")
    open_position(v, 1, "BTC-PERP", 1_000)
    open_position(v, 1, "ETH-PERP", 20_000)
    events = set_price(v, "ETH", 2_964)
    v._check()
    (call,) = [e for e in events if isinstance(e, MarginCall) and e.account == 1]
    assert (call.level, call.symbol) == ("liquidation", "ETH-PERP")
    assert call.margin_ratio == pytest.approx(-120 / 296.4)
    assert v.accounts[1].position_qty("ETH-PERP") == 0 and v.accounts[1].position_qty("BTC-PERP") == 1_000
