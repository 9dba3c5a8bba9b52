"""Acceptance examples: the source article's numbers, observable in the venue
(../shared/SOURCE-ARTICLE.md and issue 3, "Acceptance examples").

Every test trades through ``Venue.apply`` (positions are opened against a
house account at mark, fees off so wallets hold exactly what is deposited)
and reads the figures the venue publishes (AccountUpdate, MarginCall,
``explain``).
"""

from __future__ import annotations

import math

import pytest
from risk_helpers import (
    BTC2,
    U,
    default_config,
    deposit,
    new_venue,
    no_fees,
    no_haircuts,
    open_position,
    set_mode,
    with_prices,
    with_second_btc,
    with_tiers,
)

from protocol.messages import AccountUpdate, MarginCall, MarginMode, QueryAccount, ShockPrice

ARTICLE_PRICES = {"BTC": "50000", "ETH": "2500", "SOL": "200", "BNB": "500"}
SOL_LONG = 2_500  # lots of 0.1 SOL = 250 SOL = $50,000 at $200
BNB_SHORT = -5_000  # lots of 0.01 BNB = 50 BNB = $25,000 at $500


def update(v, account: int) -> AccountUpdate:
    (ev,) = v.apply(QueryAccount(account=account))
    return ev


def article_venue(cfg, btc: str, eth: str):
    """Account 1 holds only BTC and ETH (no USDT at all) and opens the
    article's SOL-PERP long and BNB-PERP short."""
    v = new_venue(with_prices(cfg, **ARTICLE_PRICES))
    deposit(v, 1, BTC=btc, ETH=eth)
    open_position(v, 1, "SOL-PERP", SOL_LONG)
    open_position(v, 1, "BNB-PERP", BNB_SHORT)
    v._check()
    return v


@pytest.mark.parametrize("btc, eth", [("0.2", "2"), ("0.3", "0"), ("0", "6"), ("0.1", "4")])
def test_article_requirement_1500_and_ratio_1000_percent(btc, eth):
    """The article: $10,000 of BTC + $5,000 of ETH, no haircut configured; a
    SOL-PERP long needing $1,000 and a BNB-PERP short needing $500.

    The test instruments charge MM = IM = 2 % (tiers [inf, 2 %, 2 %]), so the
    requirement the venue's ratio uses (MM) is the article's $1,500:

    - SOL: 250 SOL × $200 = $50,000 × 2 % = $1,000
    - BNB: 50 BNB × $500 = $25,000 × 2 % = $500
    - requirement 1,000 + 500 = $1,500 (IM = MM = 1,500)
    - equity = 0.2 × 50,000 + 2 × 2,500 = $15,000 (no haircut, no uPnL at mark)
    - margin ratio = 15,000 / 1,500 = 10.0 = 1,000 %

    Any mix of the BTC/ETH pool worth $15,000 does the same (0.3 BTC; 6 ETH;
    0.1 BTC + 4 ETH); the wallet holds no USDT: cross-collateralization."""
    cfg = no_haircuts(no_fees(default_config()))
    for sym in ("SOL-PERP", "BNB-PERP"):
        cfg = with_tiers(cfg, sym, [(math.inf, 0.02, 0.02)])
    v = article_venue(cfg, btc, eth)
    upd = update(v, 1)
    assert upd.balances.get("USDT", 0) == 0
    assert upd.collateral == pytest.approx(15_000)
    assert upd.equity == pytest.approx(15_000)
    assert upd.im == pytest.approx(1_500)
    assert upd.mm == pytest.approx(1_500)
    assert upd.margin_ratio == pytest.approx(10.0)  # 1,000 %
    per_position = {p.symbol: (p.notional / U, p.im, p.mm) for p in upd.positions}
    assert per_position["SOL-PERP"] == pytest.approx((50_000, 1_000, 1_000))
    assert per_position["BNB-PERP"] == pytest.approx((25_000, 500, 500))


def test_article_ratio_against_im_with_default_tiers():
    """Default SOL/BNB tiers (IM 2 %, MM 1 % under $100k), still no haircut:
    IM = 1,000 + 500 = $1,500 — the article's requirement — so equity / IM =
    15,000 / 1,500 = 1,000 % as the article computes it; the venue's margin
    ratio is equity / MM = 15,000 / 750 = 2,000 %."""
    v = article_venue(no_haircuts(no_fees(default_config())), "0.2", "2")
    upd = update(v, 1)
    assert upd.im == pytest.approx(1_500) and upd.mm == pytest.approx(750)
    assert upd.equity / upd.im == pytest.approx(10.0)
    assert upd.margin_ratio == pytest.approx(20.0)


def test_thirty_percent_haircut_makes_100_dollars_count_as_70():
    """Default MEME haircut 30 %: 400 MEME × $0.25 = $100 → counted $70,
    in the AccountUpdate's collateral and in ``explain``."""
    v = new_venue()
    deposit(v, 1, MEME=400)
    assert update(v, 1).collateral == pytest.approx(70.0)
    (row,) = v.explain(1).assets
    assert (row.value, row.haircut, row.counted) == pytest.approx((100.0, 30.0, 70.0))


def test_step3_hedge_needs_less_than_the_long_alone_and_than_cross():
    """The article's Step 3, default profile, fees off. Long 80 ETH × $3,000 =
    $240,000; short 2 BTC × $60,000 = $120,000. Scanning ranges = MM tier rate
    (0.5 % under $250k): E_ETH = 1,200, E_BTC = −600, T = 600, c = 0.7.

    - portfolio, hedged: "ETH −" loses 0.3 × 1,200 + 0.7 × 600 = 780
      (BTC scenarios 0.3 × 600 − 420 → 240; market 600; floor 360) → MM 780, IM 1,560
    - portfolio, ETH long alone: MM 1,200, IM 2,400
    - cross, both: MM 1,200 + 600 = 1,800, IM 2,400 + 1,200 = 3,600
    780 < 1,200 < 1,800: the hedge keeps the ETH bias and frees margin.
    """
    v = new_venue()
    for acct, mode, legs in ((1, "portfolio", 2), (2, "portfolio", 1), (3, "cross", 2)):
        deposit(v, acct, USDT=10_000)
        if mode != "cross":
            set_mode(v, acct, mode)
        open_position(v, acct, "ETH-PERP", 80_000)
        if legs == 2:
            open_position(v, acct, "BTC-PERP", -2_000)
    hedged, alone, cross = update(v, 1), update(v, 2), update(v, 3)
    assert (hedged.mm, hedged.im) == pytest.approx((780, 1_560))
    assert (alone.mm, alone.im) == pytest.approx((1_200, 2_400))
    assert (cross.mm, cross.im) == pytest.approx((1_800, 3_600))
    assert hedged.mm < alone.mm < cross.mm
    compare = {c.mode: c for c in v.explain(1).compare}
    assert compare[MarginMode.PORTFOLIO].mm == pytest.approx(780)
    assert compare[MarginMode.CROSS].mm == pytest.approx(1_800)
    v._check()


def test_long_and_short_on_the_same_underlying_need_only_the_floor():
    """A second BTC instrument (BTC-QPERP, same tiers). Long 1 BTC on BTC-PERP,
    short 1 BTC on BTC-QPERP, $60,000 each, portfolio mode: the net BTC
    exposure is 0, every scenario loses 0, so MM = floor = 0.1 % × gross
    $120,000 = $120 and IM = 2 × 120 = $240. Cross would ask 300 + 300 = $600
    MM (IM 1,200)."""
    v = new_venue(with_second_btc(no_fees(default_config())))
    deposit(v, 1, USDT=5_000)
    set_mode(v, 1, "portfolio")
    open_position(v, 1, "BTC-PERP", 1_000)
    open_position(v, 1, BTC2, -1_000)
    upd = update(v, 1)
    assert (upd.mm, upd.im) == pytest.approx((120, 240))
    ex = v.explain(1)
    assert ex.floor == pytest.approx(120)
    assert all(s.loss == pytest.approx(0.0, abs=1e-9) for s in ex.scenarios)
    compare = {c.mode: c for c in ex.compare}
    assert (compare[MarginMode.CROSS].mm, compare[MarginMode.CROSS].im) == pytest.approx((600, 1_200))
    v._check()


def test_stablecoin_buffer_survives_what_liquidates_the_meme_backed_book():
    """Same positions, same $4,000 of collateral at the start, fees off:
    account 1 holds 4,000 USDT, account 2 holds 16,000 MEME × $0.25 = $4,000
    (counted 2,800 after the 30 % haircut). Each is long 300 SOL-PERP at
    $150 = $45,000 (MM 1 % = 450, IM 900).

    One market shock: SOL −4 % → $144 (loss 300 × 6 = 1,800; MM 432), MEME
    −30 % → $0.175.

    - USDT-backed: equity 4,000 − 1,800 = 2,200 → ratio 2,200 / 432 = 5.09:
      no margin call of any level.
    - MEME-backed: 16,000 × 0.175 = 2,800 × 0.7 = 1,960 counted;
      equity 1,960 − 1,800 = 160 → ratio 160 / 432 = 0.37 < 1.0: a
      liquidation-level MarginCall.
    """
    v = new_venue()
    deposit(v, 1, USDT=4_000)
    deposit(v, 2, MEME=16_000)
    assert update(v, 2).collateral == pytest.approx(2_800)
    for acct in (1, 2):
        open_position(v, acct, "SOL-PERP", 3_000)
    events = v.apply(ShockPrice(asset="SOL", change_bps=-400))
    calls_after_sol = [e for e in events if isinstance(e, MarginCall)]
    events += v.apply(ShockPrice(asset="MEME", change_bps=-3_000))
    calls = [e for e in events if isinstance(e, MarginCall)]
    assert not [c for c in calls if c.account == 1]
    assert not [c for c in calls_after_sol if c.account == 2], "the MEME book survives the SOL move alone"
    liq = [c for c in calls if c.account == 2]
    assert [c.level for c in liq] == ["liquidation"]
    assert liq[0].equity == pytest.approx(160) and liq[0].mm == pytest.approx(432)
    assert liq[0].margin_ratio == pytest.approx(160 / 432)
    one = update(v, 1)
    assert one.equity == pytest.approx(2_200) and one.margin_ratio == pytest.approx(2_200 / 432)
    assert v.accounts[1].balances["USDT"] == 4_000 * U
    v._check()
