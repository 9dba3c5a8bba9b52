"""Perpetual funding (``exchange_sim.funding`` and ``Clearing.settle_funding``).

Default parameters: every 8 h of venue time, interest 0.01 %, clamp
±0.05 %, cap ±0.75 %:

    premium = (max(0, best bid − mark) − max(0, mark − best ask)) / mark
    rate    = clamp(premium + clamp(interest − premium, ±clamp), ±cap)
    payment = floor(−qty × mark × value × rate_e8 / 1e8)   (µUSDT; + = received)

BTC-PERP: mark $60,000 = 600,000 ticks, value 100 µUSDT per tick×lot, so
1 BTC long (1,000 lots) has a notional of 6×10^10 µUSDT = $60,000.
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
    open_position,
    set_mode,
    set_price,
)

from exchange_sim.funding import RATE_SCALE, FundingRule, payment
from protocol.messages import (
    Deposit,
    FundingPayment,
    FundingRate,
    MarginCall,
    NewOrder,
    RejectReason,
    SettleFunding,
    Side,
    Tick,
)

INTERVAL_NS = 28_800 * 10**9


def rates(events) -> dict[str, int]:
    return {e.symbol: e.rate_e8 for e in events if isinstance(e, FundingRate)}


def payments(events) -> dict[tuple[int, str], int]:
    return {(e.account, e.symbol): e.amount for e in events if isinstance(e, FundingPayment)}


def pair_venue(lots: int = 1_000):
    """Account 1 long and account 2 short ``lots`` BTC-PERP (traded with each
    other at mark), 100,000 USDT each; the book is left empty."""
    v = new_venue()
    deposit(v, 1, USDT=100_000)
    deposit(v, 2, USDT=100_000)
    open_position(v, 1, "BTC-PERP", lots, house=2)
    return v


def rest_house(v, side: Side, price: int, symbol: str = "BTC-PERP", qty: int = 1):
    ev = v.apply(NewOrder(account=HOUSE, symbol=symbol, side=side, qty=qty, price=price, tif="post_only"))
    assert type(ev[0]).__name__ == "OrderAccepted", ev


# ----------------------------------------------------------------- formula


@pytest.mark.parametrize(
    "premium, rate_e8",
    [
        (0.0, 10_000),  # empty book: the interest rate, 0.01 %
        (0.0003, 10_000),  # 0.03 % + clamp(0.01 − 0.03 = −0.02 %) = 0.01 %
        (0.002, 150_000),  # 0.2 % + clamp(−0.19 % → −0.05 %) = 0.15 %
        (-0.003, -250_000),  # −0.3 % + clamp(0.31 % → +0.05 %) = −0.25 %
        (0.2, 750_000),  # 20 % − 0.05 % = 19.95 % → capped at 0.75 %
        (-0.2, -750_000),
    ],
)
def test_rate_formula(premium, rate_e8):
    rule = FundingRule(default_config().funding)
    assert rule.rate_e8(premium) == rate_e8


def test_payment_floors_against_the_account():
    """qty 7 lots, mark 600,001, value 100, rate 1e-4: 7 × 600,001 × 100 =
    420,000,700 µUSDT × 1e-4 = 42,000.07 → the long pays 42,001, the short
    receives 42,000."""
    assert payment(7, 600_001, 100, 10_000) == -42_001
    assert payment(-7, 600_001, 100, 10_000) == 42_000
    assert RATE_SCALE == 10**8


@pytest.mark.parametrize(
    "side, price, premium, rate_e8",
    [
        (None, None, 0.0, 10_000),
        (Side.BUY, 601_200, 0.002, 150_000),  # best bid 0.2 % over mark
        (Side.SELL, 598_200, -0.003, -250_000),  # best ask 0.3 % under mark
        (Side.BUY, 720_000, 0.2, 750_000),  # bid at the +20 % band edge: capped
    ],
)
def test_rate_from_the_book_top_and_who_pays(side, price, premium, rate_e8):
    """Long 1 BTC (account 1) vs short 1 BTC (account 2), $60,000 notional;
    the house quotes one order at ``price``. Payment = $60,000 × rate:
    0.01 % → 6; 0.15 % → 90; −0.25 % → the *short* pays 150; cap 0.75 % → 450.
    Longs pay when rate > 0, shorts when rate < 0; zero-sum here (no dust)."""
    v = pair_venue()
    if side is not None:
        rest_house(v, side, price)
    events = v.apply(SettleFunding(symbol="BTC-PERP"))
    (fr,) = [e for e in events if isinstance(e, FundingRate)]
    assert fr.premium == pytest.approx(premium) and fr.rate_e8 == rate_e8 and fr.mark == 600_000
    pay = payments(events)
    amount = 60_000 * U * rate_e8 // RATE_SCALE
    assert pay == {(1, "BTC-PERP"): -amount, (2, "BTC-PERP"): amount}
    assert v.accounts[1].balances["USDT"] == 100_000 * U - amount
    assert v.accounts[2].balances["USDT"] == 100_000 * U + amount
    v._check()


def test_funding_is_zero_sum_up_to_dust_that_goes_to_the_fee_ledger():
    """BTC index $60,000.1 (mark 600,001). Long 7 lots (account 1) against
    two shorts of 3 and 4 lots (accounts 2, 3), empty book (rate 1e-4):

    - long: 7 × 600,001 × 100 × 1e-4 = 42,000.07 → pays 42,001
    - shorts: 18,000.03 → 18,000 and 24,000.04 → 24,000
    - dust = 42,001 − 42,000 = 1 µUSDT → ``fees_collected``; Σ payments + dust = 0
    """
    v = new_venue()
    for acct in (1, 2, 3):
        deposit(v, acct, USDT=10_000)
    set_price(v, "BTC", "60000.1")
    open_position(v, 1, "BTC-PERP", 3, house=2)
    open_position(v, 1, "BTC-PERP", 4, house=3)
    fees_before = v.fees_collected.get("USDT", 0)
    events = v.apply(SettleFunding())
    pay = payments(events)
    assert pay == {(1, "BTC-PERP"): -42_001, (2, "BTC-PERP"): 18_000, (3, "BTC-PERP"): 24_000}
    dust = v.fees_collected.get("USDT", 0) - fees_before
    assert dust == 1 and sum(pay.values()) + dust == 0
    v._check()


def test_funding_conserves_money_in_every_mode():
    """Accounts in cross, portfolio and isolated mode hold longs and shorts
    across three instruments; a skewed book gives each a different rate.
    After settlement Σ payments + dust = 0, dust ≥ 0 and below one µUSDT
    per payment, and ``_check`` (money conservation incl. allocations) holds."""
    v = new_venue()
    for acct, mode in ((1, "cross"), (2, "portfolio"), (3, "isolated")):
        deposit(v, acct, USDT=50_000)
        if mode != "cross":
            set_mode(v, acct, mode)
    open_position(v, 1, "BTC-PERP", 333, house=2)
    open_position(v, 3, "ETH-PERP", -7_777, house=1)
    open_position(v, 2, "SOL-PERP", 1_234, house=3)
    rest_house(v, Side.BUY, 600_900)  # BTC premium 0.15 %
    rest_house(v, Side.SELL, 299_000, "ETH-PERP", qty=10)  # ETH premium −0.33 %
    fees_before = v.fees_collected.get("USDT", 0)
    events = v.apply(SettleFunding())
    pay = payments(events)
    assert len(pay) == 6
    dust = v.fees_collected.get("USDT", 0) - fees_before
    assert sum(pay.values()) + dust == 0 and 0 <= dust < len(pay)
    r = rates(events)
    assert r["BTC-PERP"] > 0 > r["ETH-PERP"] and r["SOL-PERP"] == 10_000
    assert pay[(1, "BTC-PERP")] < 0 < pay[(2, "BTC-PERP")]  # long pays at rate > 0
    assert pay[(3, "ETH-PERP")] < 0 < pay[(1, "ETH-PERP")]  # short pays at rate < 0
    v._check()


# -------------------------------------------------------------- scheduling


def test_settles_when_venue_time_crosses_an_interval_boundary():
    """Funding follows venue time (``apply(cmd, ts=...)``), 8 h boundaries:
    the first timestamp only starts the clock; a command at or past the next
    boundary settles once before its own events; several boundaries passed
    at once settle once."""
    v = pair_venue()
    assert rates(v.apply(Tick(), ts=1)) == {}
    assert rates(v.apply(Tick(), ts=INTERVAL_NS - 1)) == {}
    events = v.apply(Deposit(account=1, asset="USDT", amount=U), ts=INTERVAL_NS)
    assert len(rates(events)) == 5  # every instrument with a mark
    kinds = [type(e).__name__ for e in events]
    assert kinds.index("FundingRate") < kinds.index("BalanceChanged")
    assert payments(events)[(1, "BTC-PERP")] == -6 * U
    assert rates(v.apply(Tick(), ts=2 * INTERVAL_NS - 1)) == {}
    events = v.apply(Tick(), ts=5 * INTERVAL_NS + 7)
    assert len([e for e in events if isinstance(e, FundingRate)]) == 5
    assert rates(v.apply(Tick(), ts=5 * INTERVAL_NS + 8)) == {}
    assert rates(v.apply(Tick(), ts=6 * INTERVAL_NS)) != {}
    v._check()


def test_time_never_moves_backwards():
    v = pair_venue()
    v.apply(Tick(), ts=INTERVAL_NS - 10)
    assert rates(v.apply(Tick(), ts=INTERVAL_NS + 1)) != {}
    assert rates(v.apply(Tick(), ts=5)) == {}  # an older stamp changes nothing
    assert v.now == INTERVAL_NS + 1


def test_settle_funding_command():
    """``SettleFunding(symbol)`` settles one instrument, ``SettleFunding()``
    all of them; an unknown symbol is refused and changes nothing."""
    v = pair_venue()
    assert list(rates(v.apply(SettleFunding(symbol="BTC-PERP")))) == ["BTC-PERP"]
    assert sorted(rates(v.apply(SettleFunding()))) == sorted(v.instruments)
    assert_rejected(v, SettleFunding(symbol="NOPE-PERP"), RejectReason.UNKNOWN_SYMBOL)
    v._check()


def test_funding_can_bring_a_margin_call():
    """800 USDT, long 1 BTC at mark (IM 600, MM 300, ratio 2.67). The house
    bids at the +20 % band edge: rate capped at 0.75 % → the long pays
    $450 → equity 350 / 300 = 1.167 < 1.2 → a "reduce_only" MarginCall
    (per-account path after funding)."""
    v = new_venue()
    deposit(v, 1, USDT=800)
    open_position(v, 1, "BTC-PERP", 1_000)
    rest_house(v, Side.BUY, 720_000)
    events = v.apply(SettleFunding(symbol="BTC-PERP"))
    assert payments(events)[(1, "BTC-PERP")] == -450 * U
    (call,) = [e for e in events if isinstance(e, MarginCall) and e.account == 1]
    assert call.level == "reduce_only" and call.margin_ratio == pytest.approx(350 / 300)
    v._check()
