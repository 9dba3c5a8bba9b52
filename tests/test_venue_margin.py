"""Cross margin through ``Venue.apply``: tiered IM/MM, collateral after
tiered haircuts, the pre-trade check (this order plus the same side's open
orders at their limit prices), risk-reducing orders, withdrawals, and the
source article's cross-collateral scenario.

BTC-PERP tiers (notional USD up to: IM rate, MM rate), applied marginally
like tax brackets: 250k: 1 % / 0.5 %; 1M: 2 % / 1 %; 10M: 5 % / 2.5 %.
Haircuts (USD value up to: rate), marginal too: BTC/ETH 1M: 5 %, 5M: 10 %,
above: 20 %; SOL/BNB 250k: 10 %, above 15 %; MEME 50k: 30 %, above 100 %;
USDC 2 %; USDT 0. Risk figures are float USD, compared with a 1e-6 margin.
"""

from __future__ import annotations

import pytest

from venue_helpers import (
    BNB,
    BTC,
    BTC_MARK,
    MAKER,
    SOL,
    U,
    account_view,
    accepted_id,
    assert_rejected,
    fund,
    make_venue,
    one,
    place,
    position,
    rest,
    set_index,
    trade,
)
from protocol.messages import (
    AmendOrder,
    BalanceChanged,
    NewOrder,
    OpenAccount,
    OrderAccepted,
    OrderAmended,
    OrderType,
    RejectReason,
    Side,
    Withdraw,
)

R = RejectReason
P = BTC_MARK
approx = lambda x: pytest.approx(x, abs=1e-6)  # noqa: E731


def _venue_with(account: int = 1, **assets):
    """A default venue where ``account`` holds ``assets`` (whole units) and
    MAKER holds 100,000,000 USDT to trade against."""
    ven = make_venue()
    fund(ven, MAKER, USDT=100_000_000)
    if assets:
        fund(ven, account, **assets)
    return ven


def buy_order(account: int, qty: int, price: int | None = P, **kw) -> NewOrder:
    return NewOrder(account=account, symbol=BTC, side=Side.BUY, qty=qty, price=price, **kw)


# ======================================================= IM / MM from tiers


def test_margin_tiers_are_marginal():
    """Long 5 BTC (5000 lots) @ $60,000 = $300,000 notional.
    IM = 250,000 × 1 % + 50,000 × 2 % = 3,500 (a flat 2 % would be 6,000);
    MM = 250,000 × 0.5 % + 50,000 × 1 % = 1,750.
    Taker fee 300,000 × 0.05 % = 150 → equity 99,850, ratio 99,850 / 1,750."""
    ven = _venue_with(USDT=100_000)
    trade(ven, 1, MAKER, 5000, P)
    pos = position(ven, 1)
    assert (pos.im, pos.mm) == (approx(3_500), approx(1_750))
    view = account_view(ven, 1)
    assert (view.im, view.mm, view.equity) == (approx(3_500), approx(1_750), approx(99_850))
    assert view.margin_ratio == pytest.approx(99_850 / 1_750)
    ven._check()


def test_small_position_uses_the_first_tier():
    """Short 1 BTC @ $60,000: IM 1 % = 600, MM 0.5 % = 300."""
    ven = _venue_with(USDT=10_000)
    trade(ven, MAKER, 1, 1000, P, taker="seller")
    view = account_view(ven, 1)
    assert (view.im, view.mm) == (approx(600), approx(300))


def test_no_position_no_risk():
    ven = _venue_with(USDT=10_000)
    view = account_view(ven, 1)
    assert (view.im, view.mm, view.margin_ratio) == (0.0, 0.0, None)


def test_open_orders_count_in_im_one_side_at_a_time():
    """Bids 1000 lots @ 600,000 ($60,000 → IM 600) and asks 1500 lots @
    600,010 ($90,001.5 → IM 900.015): IM is the worse side, 900.015, not
    the sum. Orders carry no MM."""
    ven = _venue_with(USDT=10_000)
    rest(ven, 1, "buy", 1000, P)
    rest(ven, 1, "sell", 1500, P + 10)
    view = account_view(ven, 1)
    assert (view.im, view.mm) == (approx(900.015), 0.0)


def test_orders_against_the_position_offset_it():
    """Long 1 BTC (IM 600) with a resting sell of 1 BTC @ 600,100: if the
    sell fills the account is flat, so IM stays 600. A sell of 2 BTC would
    leave short 1 BTC at $60,010 ... worst side |60,000 − 120,020| = 60,020
    → IM 600.2."""
    ven = _venue_with(USDT=10_000)
    trade(ven, 1, MAKER, 1000, P)
    sell = rest(ven, 1, "sell", 1000, P + 100)
    assert account_view(ven, 1).im == approx(600)
    ven.apply(AmendOrder(account=1, order_id=sell, qty=2000))
    assert account_view(ven, 1).im == approx(600.2)


# ============================================== collateral after haircuts


@pytest.mark.parametrize(
    "assets, counted",
    [
        # $100 of MEME (400 × $0.25) counts as $70: the article's example
        (dict(MEME=400), 70.0),
        # $100,000 of MEME: 50,000 × 0.7 + 50,000 × 0 = 35,000
        (dict(MEME=400_000), 35_000.0),
        # 1 BTC = $60,000 × 0.95 = 57,000
        (dict(BTC=1), 57_000.0),
        # 20 BTC = $1.2M: 1M × 0.95 + 0.2M × 0.90 = 1,130,000
        (dict(BTC=20), 1_130_000.0),
        # 1,000 USDC × 0.98 = 980; USDT counts in full
        (dict(USDC=1_000, USDT=1_000), 1_980.0),
        # 100 SOL = $15,000 × 0.9 = 13,500; 10 ETH = $30,000 × 0.95 = 28,500
        (dict(SOL=100, ETH=10), 42_000.0),
    ],
)
def test_collateral_is_counted_after_tiered_haircuts(assets, counted):
    ven = _venue_with(**assets)
    view = account_view(ven, 1)
    assert view.collateral == approx(counted)
    assert view.equity == approx(counted)


def test_haircut_follows_the_index_price():
    """1 BTC at $40,000 counts 38,000."""
    ven = _venue_with(BTC=1)
    set_index(ven, "BTC", 40_000)
    assert account_view(ven, 1).collateral == approx(38_000)


def test_a_negative_usdt_balance_counts_in_full():
    """1 BTC (counted 57,000) and a taker fee of 10 lots × 600,000 × 100 ×
    0.05 % = 300,000 µUSDT paid from no USDT: balance −0.3 USDT, collateral
    57,000 − 0.3 = 56,999.7 (the debt gets no haircut benefit)."""
    ven = _venue_with(BTC=1)
    trade(ven, 1, MAKER, 10, P)
    view = account_view(ven, 1)
    assert view.balances == {"BTC": 10**8, "USDT": -300_000}
    assert view.collateral == approx(56_999.7)


def test_haircut_collateral_decides_the_pre_trade_check():
    """400 MEME ($100) counts $70. A bid of 0.1 BTC ($6,000, IM 60) passes;
    0.12 BTC ($7,200, IM 72) does not, though it would against $100."""
    ven = _venue_with(MEME=400)
    assert account_view(ven, 1).collateral == approx(70)
    rest(ven, 1, "buy", 100, P)
    assert_rejected(ven, buy_order(1, 20, P), R.INSUFFICIENT_MARGIN)  # 120 lots: IM 72
    accepted_id(ven.apply(buy_order(1, 16, P)))  # 116 lots = $6,960 → IM 69.6


# ======================================================= pre-trade checks


def test_pre_trade_counts_the_order_and_same_side_orders_at_limit_prices():
    """Equity $1,000. Bids at 540,000 ($54,000 per BTC):
    A 1000 lots = $54,000 → IM 540 ≤ 1,000: accepted;
    B  800 lots: A + B = $97,200 → IM 972: accepted (at mark it would be
      $108,000 → 1,080: the limit price counts, not the mark);
    C  100 lots: $102,600 → IM 1,026 > 1,000: rejected."""
    ven = _venue_with(USDT=1_000)
    rest(ven, 1, "buy", 1000, 540_000)
    rest(ven, 1, "buy", 800, 540_000)
    assert account_view(ven, 1).im == approx(972)
    assert_rejected(ven, buy_order(1, 100, 540_000), R.INSUFFICIENT_MARGIN)


def test_the_other_side_does_not_add_up():
    """With bids worth IM 972 resting, asks of 1600 lots @ 600,000 ($96,000,
    IM 960) pass: the worse side is still the bids. Asks of 1700 lots
    ($102,000 → IM 1,020 > 1,000) are refused."""
    ven = _venue_with(USDT=1_000)
    rest(ven, 1, "buy", 1800, 540_000)
    rest(ven, 1, "sell", 1600, P)
    assert account_view(ven, 1).im == approx(972)
    assert_rejected(ven, NewOrder(account=1, symbol=BTC, side=Side.SELL, qty=100, price=P), R.INSUFFICIENT_MARGIN)


def test_market_orders_are_checked_at_the_band_edge():
    """A market buy may pay up to 630,000 (mark + 5 %). Equity $1,000:
    1600 lots → $100,800 → IM 1,008: refused even though the ask is at
    $60,000; 1500 lots → $94,500 → IM 945: accepted."""
    ven = _venue_with(USDT=1_000)
    rest(ven, MAKER, "sell", 5000, P)
    assert_rejected(ven, NewOrder(account=1, symbol=BTC, side=Side.BUY, qty=1600, type=OrderType.MARKET), R.INSUFFICIENT_MARGIN)
    events = ven.apply(NewOrder(account=1, symbol=BTC, side=Side.BUY, qty=1500, type=OrderType.MARKET))
    assert position(ven, 1).qty == 1500
    assert one(events, OrderAccepted).qty == 1500


def test_the_position_counts_with_the_new_order():
    """Long 1 BTC @ 60,000 (IM 600; taker fee 30 → equity 970). A bid of
    600 lots @ 600,000 → 1.6 BTC = $96,000 → IM 960 ≤ 970: accepted;
    another 100 lots → $102,000 → 1,020 > 970: refused."""
    ven = _venue_with(USDT=1_000)
    trade(ven, 1, MAKER, 1000, P)
    assert account_view(ven, 1).equity == approx(970)
    rest(ven, 1, "buy", 600, P)
    assert_rejected(ven, buy_order(1, 100, P), R.INSUFFICIENT_MARGIN)


def test_amend_that_grows_is_checked_and_one_that_shrinks_is_not():
    """Equity $1,000; bid 1000 lots @ 540,000 (IM 540). Amend to 1900 lots
    ($102,600 → IM 1,026) is refused; to 1800 ($97,200 → 972) accepted."""
    ven = _venue_with(USDT=1_000)
    bid = rest(ven, 1, "buy", 1000, 540_000)
    assert_rejected(ven, AmendOrder(account=1, order_id=bid, qty=1900), R.INSUFFICIENT_MARGIN)
    assert one(ven.apply(AmendOrder(account=1, order_id=bid, qty=1800)), OrderAmended).qty == 1800


def _underwater_long():
    """$1,000 USDT, long 1 BTC @ 60,000 (fee 30). Index to $59,500: uPnL =
    1000 × (595,000 − 600,000) × 100 µ = −$500; equity 1,000 − 30 − 500 =
    470 < IM 595 (1 % of $59,500); MM 297.5, ratio 1.58 (above the 1.2
    reduce-only and 1.0 liquidation thresholds)."""
    ven = _venue_with(USDT=1_000)
    trade(ven, 1, MAKER, 1000, P)
    set_index(ven, "BTC", 59_500)
    view = account_view(ven, 1)
    assert (view.equity, view.im, view.mm) == (approx(470), approx(595), approx(297.5))
    return ven


def test_below_im_new_risk_is_refused():
    ven = _underwater_long()
    assert_rejected(ven, buy_order(1, 10, 595_000), R.INSUFFICIENT_MARGIN)
    # a flip to short 1.5 BTC raises the requirement too: refused
    assert_rejected(ven, NewOrder(account=1, symbol=BTC, side=Side.SELL, qty=2500, price=595_000), R.INSUFFICIENT_MARGIN)


@pytest.mark.parametrize("reduce_only", [False, True])
def test_below_im_reducing_orders_always_pass(reduce_only):
    ven = _underwater_long()
    oid = rest(ven, 1, "sell", 500, 596_000, reduce_only=reduce_only)
    assert account_view(ven, 1).im == approx(595)  # the sell does not add IM
    assert one(ven.apply(AmendOrder(account=1, order_id=oid, qty=1000)), OrderAmended).qty == 1000
    place(ven, MAKER, "buy", 1000, 596_000)  # lifts the whole sell
    assert position(ven, 1) is None
    ven._check()


# ============================================================ withdrawals


def test_withdraw_refused_when_equity_would_fall_below_im():
    """$1,000 USDT, long 1 BTC (IM 600, equity 970 after the 30 fee).
    Withdrawing 371 would leave 599 < 600: refused; 369 leaves 601: done."""
    ven = _venue_with(USDT=1_000)
    trade(ven, 1, MAKER, 1000, P)
    assert_rejected(ven, Withdraw(account=1, asset="USDT", amount=371 * U), R.INSUFFICIENT_MARGIN)
    events = ven.apply(Withdraw(account=1, asset="USDT", amount=369 * U))
    assert one(events, BalanceChanged).balance == 601 * U
    ven._check()


def test_withdraw_of_collateral_counts_its_haircut():
    """1 BTC only; long 1 BTC-PERP (IM 600), fee 30 → USDT −30.
    Keep 0.011 BTC = $660 → counted 627 → equity 597 < 600: refused
    (without the haircut it would be 630 and pass). Keep 0.012 BTC = $720
    → 684 − 30 = 654: done."""
    ven = _venue_with(BTC=1)
    trade(ven, 1, MAKER, 1000, P)
    assert_rejected(ven, Withdraw(account=1, asset="BTC", amount=98_900_000), R.INSUFFICIENT_MARGIN)
    ven.apply(Withdraw(account=1, asset="BTC", amount=98_800_000))
    assert account_view(ven, 1).equity == approx(654)
    ven._check()


def test_withdraw_cannot_leave_a_usdt_debt_unbacked():
    """1 BTC only; buy and sell back 10 lots @ 600,000: two taker fees of
    300,000 µUSDT → USDT −0.6 and no position (IM 0). Withdrawing all the
    BTC would leave equity −0.6: refused. Keeping 0.0001 BTC ($6 → 5.70
    counted) leaves equity 5.10: done."""
    ven = _venue_with(BTC=1)
    trade(ven, 1, MAKER, 10, P)
    trade(ven, MAKER, 1, 10, P, taker="seller")
    assert ven.accounts[1].balances["USDT"] == -600_000
    assert position(ven, 1) is None
    assert_rejected(ven, Withdraw(account=1, asset="BTC", amount=10**8), R.INSUFFICIENT_MARGIN)
    ven.apply(Withdraw(account=1, asset="BTC", amount=10**8 - 10_000))
    assert account_view(ven, 1).equity == approx(5.10)
    ven._check()


def test_withdraw_with_no_risk_and_no_debt_is_free():
    ven = _venue_with(BTC=1)
    ven.apply(Withdraw(account=1, asset="BTC", amount=10**8))
    assert account_view(ven, 1).balances == {"BTC": 0}


# ================================================= the article's scenario


def test_btc_and_eth_back_a_sol_long_and_a_bnb_short():
    """Wallet: $10,000 of BTC (0.2 BTC at $50,000) and $5,000 of ETH (2 ETH
    at $2,500), no USDT. Counted: 9,500 + 4,750 = 14,250.
    SOL at $125: long 400 SOL (4000 lots) = $50,000 → IM 2 % = 1,000,
    MM 1 % = 500. BNB at $500: short 50 BNB (5000 lots) = $25,000 → IM 500,
    MM 250. Total IM 1,500, which the BTC and ETH cover.
    The trader's orders rest and a USDT-funded counterparty takes them, so
    the trader pays maker fees in USDT it never had: 0.02 % × 50,000 = 10
    and 0.02 % × 25,000 = 5 → USDT −15, collateral 14,235, ratio
    14,235 / 750 = 18.98."""
    ven = make_venue()
    for asset, usd in (("BTC", 50_000), ("ETH", 2_500), ("SOL", 125), ("BNB", 500)):
        set_index(ven, asset, usd)
    fund(ven, MAKER, USDT=10_000_000)
    fund(ven, 10, BTC="0.2", ETH=2)
    assert account_view(ven, 10).collateral == approx(14_250)

    trade(ven, 10, MAKER, 4000, 125_000, symbol=SOL, taker="seller")  # trader's bid rests
    trade(ven, MAKER, 10, 5000, 50_000, symbol=BNB, taker="buyer")  # trader's ask rests

    view = account_view(ven, 10)
    assert view.balances == {"BTC": 20_000_000, "ETH": 200_000_000, "USDT": -15 * U}
    assert [(p.symbol, p.qty) for p in view.positions] == [(BNB, -5000), (SOL, 4000)]
    assert (view.im, view.mm) == (approx(1_500), approx(750))
    assert view.collateral == approx(14_235)
    assert view.margin_ratio == pytest.approx(14_235 / 750)
    ven._check()


def test_without_collateral_the_same_trade_is_refused():
    ven = make_venue()
    ven.apply(OpenAccount(account=11))
    assert_rejected(ven, NewOrder(account=11, symbol=SOL, side=Side.BUY, qty=4000, price=150_000), R.INSUFFICIENT_MARGIN)


def test_collateral_caps_what_the_pair_of_trades_may_need():
    """With $14,250 counted, a SOL bid needing more than that is refused:
    SOL at $125, tiers 2 % to $100k, 5 % to $1M: $400,000 needs 2,000 +
    300,000 × 5 % = 17,000 > 14,250."""
    ven = make_venue()
    for asset, usd in (("BTC", 50_000), ("ETH", 2_500), ("SOL", 125)):
        set_index(ven, asset, usd)
    fund(ven, 10, BTC="0.2", ETH=2)
    assert_rejected(ven, NewOrder(account=10, symbol=SOL, side=Side.BUY, qty=32_000, price=125_000), R.INSUFFICIENT_MARGIN)
