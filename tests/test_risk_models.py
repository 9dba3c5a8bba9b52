"""Margin models (``exchange_sim.risk.models``): tiers and haircuts, cross
margin, portfolio margin (closed form vs scenario list), the calibration of
the default profile against cross, the stricter ``stress`` profile, and a
user model plugged in by import path.

Exposures are ``[(instrument, signed USD notional)]``. Tier tables: see
``risk_helpers``.
"""

from __future__ import annotations

import math

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from risk_helpers import (
    BTC2,
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
    with_second_btc,
)

from exchange_sim.instruments import Asset
from exchange_sim.risk.brackets import Brackets
from exchange_sim.risk.margin import counted_value
from exchange_sim.risk.models import CrossMargin, PortfolioMargin, load_model, tiered
from exchange_sim.venue import Venue
from protocol.messages import AccountUpdate, MarginCall, NewOrder, RejectReason, Side

SYMBOLS = ["BTC-PERP", "ETH-PERP", "SOL-PERP", "BNB-PERP", "MEME-PERP"]
SETTINGS = settings(max_examples=60, deadline=None)


@pytest.fixture(scope="module")
def dv() -> Venue:
    """A default-config venue (default profile), only for its models."""
    return Venue(default_config())


@pytest.fixture(scope="module")
def sv() -> Venue:
    """The same with the stress profile in force."""
    return Venue(with_profile(default_config(), "stress"))


def book(venue: Venue, *pairs) -> list:
    return [(venue.instruments[s], float(n)) for s, n in pairs]


# ------------------------------------------------------- brackets, haircuts


def test_brackets_are_marginal_like_tax_brackets():
    """BTC-PERP maintenance tiers 0.5 % to $250k, 1 % to $1M, 2.5 % to $10M, 5 % above:

    - $100k → 100,000 × 0.5 % = 500
    - $250k (a bound: still the first bracket) → 1,250
    - $600k → 1,250 + 350,000 × 1 % = 4,750
    - $4M → 1,250 + 7,500 + 3,000,000 × 2.5 % = 83,750
    - $25M → 1,250 + 7,500 + 225,000 + 15,000,000 × 5 % = 983,750
    The vectorized ``tiered`` gives the same numbers.
    """
    ins = Venue(default_config()).instruments["BTC-PERP"]
    xs = [0.0, 100e3, 250e3, 600e3, 4e6, 25e6]
    want = [0.0, 500.0, 1250.0, 4750.0, 83_750.0, 983_750.0]
    assert [ins.mm_tiers.amount(x) for x in xs] == pytest.approx(want)
    assert tiered(ins.mm_tiers, np.array(xs)).tolist() == pytest.approx(want)


@settings(max_examples=100, deadline=None)
@given(st.lists(st.floats(1.0, 1e7), min_size=1, max_size=5, unique=True).map(sorted),
       st.lists(st.floats(0.0, 1.0), min_size=6, max_size=6),
       st.lists(st.floats(0.0, 1e8), min_size=1, max_size=20))
def test_tiered_equals_brackets_amount(bounds, rates, xs):
    """``tiered`` (numpy) == ``Brackets.amount`` for any table and amounts,
    including amounts exactly on a bound, and amount() is continuous there."""
    rows = [(b, r) for b, r in zip(bounds, rates)] + [(math.inf, rates[len(bounds)])]
    b = Brackets(rows)
    xs = xs + bounds
    got = tiered(b, np.array(xs))
    for x, g in zip(xs, got):
        assert g == pytest.approx(b.amount(x), rel=1e-12, abs=1e-9)
    for bound in bounds:
        assert b.amount(bound) == pytest.approx(b.amount(math.nextafter(bound, math.inf)), rel=1e-9, abs=1e-6)


def test_meme_haircut_100_counts_as_70_and_nothing_past_the_cap():
    """Default MEME haircut: 30 % up to $50,000 of value, 100 % above.

    - 400 MEME at $0.25 = $100 → counted 100 − 30 = $70 (the article's example);
    - 400,000 MEME = $100,000 → 50,000 × 0.7 + 50,000 × 0 = $35,000;
    - a debt of −$100 (negative balance) counts −$100: no haircut benefit.
    """
    meme = Venue(default_config()).assets["MEME"]
    assert counted_value(meme, 400 * 10**8) == pytest.approx((100.0, 70.0))
    assert counted_value(meme, 400_000 * 10**8) == pytest.approx((100_000.0, 35_000.0))
    assert counted_value(meme, -400 * 10**8) == pytest.approx((-100.0, -100.0))


def test_btc_haircut_rises_with_size():
    """BTC: 5 % to $1M, 10 % to $5M, 20 % above. 100 BTC at $60,000 = $6M:
    1,000,000 × 5 % + 4,000,000 × 10 % + 1,000,000 × 20 % = 50k + 400k + 200k
    = $650,000 off → $5,350,000 counted."""
    btc: Asset = Venue(default_config()).assets["BTC"]
    assert counted_value(btc, 100 * 10**8) == pytest.approx((6_000_000.0, 5_350_000.0))


# ------------------------------------------------------------ cross margin


def test_cross_margin_sums_positions_without_offsets(dv):
    """Cross: MM = Σ |notional| × tier, no offsets. Long $600k BTC + short
    $600k BTC-equivalent on ETH: 4,750 + 4,750 = 9,500 MM; IM (1 %, 2 %
    tiers) 2,500 + 7,000 = 9,500 each → 19,000."""
    m = dv.margin.cross
    exp = book(dv, ("BTC-PERP", 600e3), ("ETH-PERP", -600e3))
    assert m.mm(exp) == pytest.approx(9_500)
    assert m.im(exp) == pytest.approx(19_000)
    assert m.impacts(exp) == pytest.approx([4_750, 4_750])


# ------------------------------------------------------ portfolio margin


def test_portfolio_closed_form_hand_arithmetic(dv):
    """Default profile (c = 0.7, floor 0.1 %, IM = 2 × MM), long $200k ETH
    and short $100k BTC. Ranges = MM tier rate at the net: 0.5 % each.
    E_ETH = +1,000, E_BTC = −500, T = 500.

    - "ETH −": −(0.3 × 1,000 + 0.7 × 500) = loss 650  ← worst
    - "BTC +": 0.3 × (−500) + 0.7 × 500 = +200 pnl → its mirror "BTC −" loses 200
    - "market −": loss 500;  floor 0.1 % × 300,000 = 300
    MM = 650, IM = 1,300.
    """
    pm = dv.margin.portfolio
    exp = book(dv, ("ETH-PERP", 200e3), ("BTC-PERP", -100e3))
    assert pm.mm(exp) == pytest.approx(650)
    assert pm.im(exp) == pytest.approx(1_300)
    losses = {name: loss for name, _, loss in pm.scenarios(exp)}
    assert losses["ETH -"] == pytest.approx(650) and losses["ETH +"] == pytest.approx(-650)
    assert losses["BTC +"] == pytest.approx(-200) and losses["BTC -"] == pytest.approx(200)
    assert losses["market -"] == pytest.approx(500)
    assert max(losses.values()) == pytest.approx(650)


def test_portfolio_impacts_show_the_hedge(dv):
    """Impacts = MM(all) − MM(all but the position), same book as above:

    - without the ETH long: BTC short alone, MM 500 → ETH impact 650 − 500 = 150;
    - without the BTC short: ETH long alone, MM 1,000 → BTC impact 650 − 1,000 = −350
      (the hedge *lowers* the requirement, so liquidation would never close it first).
    """
    pm = dv.margin.portfolio
    exp = book(dv, ("ETH-PERP", 200e3), ("BTC-PERP", -100e3))
    assert pm.impacts(exp) == pytest.approx([150, -350])


def test_scenario_list_shape(dv):
    """2 scenarios per underlying (± r_u, others ± c·r_v) + market ±: 12 for
    5 underlyings; every scenario has its mirror (losses opposite)."""
    pm = dv.margin.portfolio
    exp = book(dv, ("BTC-PERP", 1e6), ("SOL-PERP", -3e5), ("MEME-PERP", 4e4))
    rows = pm.scenarios(exp)
    assert len(rows) == 12
    names = [r[0] for r in rows]
    assert names[:2] == ["BTC +", "BTC -"] and names[-2:] == ["market +", "market -"]
    for (n1, m1, l1), (n2, m2, l2) in zip(rows[::2], rows[1::2]):
        assert l1 == pytest.approx(-l2) and all(m1[u] == pytest.approx(-m2[u]) for u in m1)
    moves = dict((n, m) for n, m, _ in rows)["SOL +"]
    # SOL at $300k: r = (100k × 1 % + 200k × 2.5 %) / 300k = 2 %;
    # BTC at $1M: r = (1,250 + 7,500) / 1M = 0.875 %, moved by 0.7 × 0.875 %
    assert moves["SOL"] == pytest.approx(0.02) and moves["BTC"] == pytest.approx(0.7 * 0.00875)


def test_scenario_moves_of_the_stress_profile(sv):
    """Stress: fixed ranges (BTC 8 %, SOL 14 %), c = 0.8: "BTC +" moves BTC
    +8 % and SOL +0.8 × 14 % = +11.2 %."""
    rows = sv.margin.portfolio.scenarios(book(sv, ("BTC-PERP", 1e5), ("SOL-PERP", 1e5)))
    moves = dict((n, m) for n, m, _ in rows)["BTC +"]
    assert moves["BTC"] == pytest.approx(0.08) and moves["SOL"] == pytest.approx(0.112)


exposure_lists = st.lists(
    st.tuples(st.sampled_from(SYMBOLS + [BTC2]), st.floats(-5e7, 5e7).filter(lambda x: abs(x) > 1e-3)),
    min_size=1, max_size=7,
)


@SETTINGS
@given(exposure_lists, st.sampled_from(["default", "stress"]))
def test_closed_form_equals_worst_listed_scenario(pairs, profile):
    """``PortfolioMargin.mm`` (closed form, O(underlyings)) ==
    max(loss over ``scenarios()``, floor rate × gross) for random books,
    both profiles, two instruments on BTC included."""
    v = Venue(with_profile(with_second_btc(default_config()), profile))
    pm = v.margin.portfolio
    exp = book(v, *pairs)
    worst = max(loss for _, _, loss in pm.scenarios(exp))
    floor = pm.floor_rate * sum(abs(n) for _, n in exp)
    assert pm.mm(exp) == pytest.approx(max(worst, floor), rel=1e-9)
    assert pm.im(exp) == pytest.approx(pm.im_factor * max(worst, floor), rel=1e-9)


# ----------------------------------------------------------- calibration

SIZES = [100e3, 250e3, 600e3, 4e6, 25e6]


@pytest.mark.parametrize("symbol", SYMBOLS)
@pytest.mark.parametrize("size", SIZES)
@pytest.mark.parametrize("sign", [1, -1])
def test_naked_position_costs_the_same_under_portfolio_and_cross(dv, symbol, size, sign):
    """Default profile: r_u = the MM tier rate at the net exposure, so for one
    naked position E = ±tier(|N|) and every scenario's loss is at most
    |E| = cross MM ("market" or the position's own scenario hits it exactly);
    IM = 2 × MM = cross IM because every default tier has imr = 2 × mmr.
    E.g. BTC $600k: MM 1,250 + 350,000 × 1 % = 4,750 both, IM 9,500 both;
    BTC $25M: MM 983,750 both."""
    exp = book(dv, (symbol, sign * size))
    cross, pm = dv.margin.cross, dv.margin.portfolio
    assert pm.mm(exp) == pytest.approx(cross.mm(exp), rel=1e-12)
    assert pm.im(exp) == pytest.approx(cross.im(exp), rel=1e-12)


def test_naked_position_same_requirement_through_the_venue():
    """Two accounts with 100,000 USDT, one cross, one portfolio, each long
    10 BTC ($600k): both AccountUpdates say MM 4,750 and IM 9,500."""
    v = new_venue()
    for acct, mode in ((1, "cross"), (2, "portfolio")):
        deposit(v, acct, USDT=100_000)
        if mode != "cross":
            set_mode(v, acct, mode)
        events = open_position(v, acct, "BTC-PERP", 10_000)
        upd = [e for e in events if isinstance(e, AccountUpdate) and e.account == acct][-1]
        assert upd.mm == pytest.approx(4_750) and upd.im == pytest.approx(9_500), (mode, upd)


def test_one_directional_multi_underlying_book(dv):
    """All long: BTC $600k (MM 4,750), ETH $100k (500), SOL $300k
    (1,000 + 200k × 2.5 % = 6,000), MEME $80k (1,250 + 30k × 10 % = 4,250).
    Cross MM = 15,500. Portfolio: T = Σ E_u = 15,500 = "market −"'s loss;
    "u −" loses 0.3 E_u + 0.7 T ≤ T. So MM = 15,500 and IM = 31,000 in both;
    the same all short."""
    for sign in (1, -1):
        exp = book(dv, ("BTC-PERP", sign * 600e3), ("ETH-PERP", sign * 100e3), ("SOL-PERP", sign * 300e3),
                   ("MEME-PERP", sign * 80e3))
        assert dv.margin.cross.mm(exp) == pytest.approx(15_500)
        assert dv.margin.portfolio.mm(exp) == pytest.approx(15_500)
        assert dv.margin.portfolio.im(exp) == pytest.approx(dv.margin.cross.im(exp)) == pytest.approx(31_000)


one_instrument_books = st.dictionaries(st.sampled_from(SYMBOLS), st.floats(1.0, 5e7), min_size=1)


@SETTINGS
@given(one_instrument_books, st.booleans())
def test_portfolio_equals_cross_for_one_directional_books(notionals, long):
    """Random one-directional books (default config, one instrument per
    underlying): portfolio MM and IM equal cross MM and IM."""
    v = Venue(default_config())
    exp = book(v, *[(s, n if long else -n) for s, n in notionals.items()])
    assert v.margin.portfolio.mm(exp) == pytest.approx(v.margin.cross.mm(exp), rel=1e-9)
    assert v.margin.portfolio.im(exp) == pytest.approx(v.margin.cross.im(exp), rel=1e-9)


@SETTINGS
@given(st.dictionaries(st.sampled_from(SYMBOLS), st.floats(-5e7, 5e7).filter(lambda x: abs(x) > 1e-3), min_size=1))
def test_portfolio_never_exceeds_cross(notionals):
    """Any book in the default config: portfolio MM ≤ cross MM. (|T| ≤ Σ|E_u|
    and |(1−c)E_u + cT| ≤ Σ|E_u| = cross MM with one instrument per underlying.)"""
    v = Venue(default_config())
    exp = book(v, *notionals.items())
    assert v.margin.portfolio.mm(exp) <= v.margin.cross.mm(exp) * (1 + 1e-12)


@SETTINGS
@given(one_instrument_books, st.booleans())
def test_stress_profile_is_stricter_on_naked_and_one_directional_books(notionals, long):
    """Stress ranges (8-16 %) exceed every default effective tier rate (at most
    5 %, MEME 10 %) and its floor is 1 % (vs 0.1 %), so for naked and
    one-directional books stress MM > default MM; its IM = 1.3 × MM also
    exceeds default IM = 2 × MM since every range ratio is ≥ 1.6 (BTC 8 % vs
    < 5 %). E.g. BTC $100k long: default MM 500, stress 8,000."""
    d, s = Venue(default_config()), Venue(with_profile(default_config(), "stress"))
    pairs = [(sym, n if long else -n) for sym, n in notionals.items()]
    ed, es = book(d, *pairs), book(s, *pairs)
    assert s.margin.portfolio.mm(es) > d.margin.portfolio.mm(ed)
    assert s.margin.portfolio.im(es) > d.margin.portfolio.im(ed)


def test_stress_hand_arithmetic(sv):
    """Stress, long $100k BTC: MM = max(8 % × 100k, 1 % × 100k) = 8,000;
    IM = 1.3 × 8,000 = 10,400."""
    exp = book(sv, ("BTC-PERP", 100e3))
    assert sv.margin.portfolio.mm(exp) == pytest.approx(8_000)
    assert sv.margin.portfolio.im(exp) == pytest.approx(10_400)


# -------------------------------------------------------- pluggable model

TOY = "toy_model:ToyModel"


def toy_venue() -> Venue:
    return new_venue(with_models(no_fees(default_config()), portfolio=TOY))


def test_toy_model_is_loaded_by_import_path():
    v = toy_venue()
    assert type(v.margin.portfolio).__name__ == "ToyModel"
    assert isinstance(v.margin.cross, CrossMargin)


def test_toy_model_drives_pretrade_account_updates_and_the_sweep():
    """Toy model (tests/toy_model.py): MM = IM = 10 % of gross notional.
    Account 1 (portfolio → toy) and account 2 (cross) hold 10,000 USDT each
    and buy 1 BTC at $60,000:

    - toy: MM = IM = 6,000; cross: MM 300, IM 600 (AccountUpdate and sweep);
    - a resting buy of 0.7 BTC at $59,000 ($41,300) would make toy IM
      6,000 + 4,130 = 10,130 > 10,000 equity → INSUFFICIENT_MARGIN, nothing
      changes; the same order from the cross account is accepted (IM 1,013);
    - BTC falls to $55,000: uPnL −5,000, equity 5,000; toy MM 5,500 → ratio
      0.909 → a liquidation-level MarginCall for account 1 with mm = 5,500
      (sweep path); account 2: MM 275, ratio 18 → no call.
    """
    v = toy_venue()
    for acct, mode in ((1, "portfolio"), (2, "cross")):
        deposit(v, acct, USDT=10_000)
        if mode != "cross":
            set_mode(v, acct, mode)
    ev1 = open_position(v, 1, "BTC-PERP", 1000)
    ev2 = open_position(v, 2, "BTC-PERP", 1000)
    up1 = [e for e in ev1 if isinstance(e, AccountUpdate) and e.account == 1][-1]
    up2 = [e for e in ev2 if isinstance(e, AccountUpdate) and e.account == 2][-1]
    assert (up1.mm, up1.im) == pytest.approx((6_000, 6_000))
    assert (up2.mm, up2.im) == pytest.approx((300, 600))
    res = v.risk_sweep()
    c1 = res.ids.index(1)
    assert res.mm[c1] == pytest.approx(6_000) and res.im[c1] == pytest.approx(6_000)
    assert res.ratio[c1] == pytest.approx(10_000 / 6_000)

    cmd = NewOrder(account=1, symbol="BTC-PERP", side=Side.BUY, qty=700, price=590_000)
    assert_rejected(v, cmd, RejectReason.INSUFFICIENT_MARGIN)
    ok = v.apply(NewOrder(account=2, symbol="BTC-PERP", side=Side.BUY, qty=700, price=590_000))
    assert "OrderAccepted" in [type(e).__name__ for e in ok]

    events = set_price(v, "BTC", 55_000)
    calls = [e for e in events if isinstance(e, MarginCall)]
    assert [(c.account, c.level) for c in calls] == [(1, "liquidation")]
    assert calls[0].mm == pytest.approx(5_500) and calls[0].equity == pytest.approx(5_000)
    v._check()


@pytest.mark.parametrize("path", ["toy_model:Nope", "no_such_module_xyz:Model", "toy_model", ":ToyModel", "toy_model:"])
@pytest.mark.parametrize("key", ["portfolio", "cross"])
def test_bad_model_path_is_a_value_error_at_construction(path, key):
    with pytest.raises(ValueError, match="risk model"):
        Venue(with_models(default_config(), **{key: path}))


def test_load_model_builds_builtins():
    cfg = default_config()
    v = Venue(cfg)
    assert isinstance(load_model("exchange_sim.risk.models:PortfolioMargin", cfg, v.instruments), PortfolioMargin)


def test_one_directional_book_on_two_instruments_of_one_underlying():
    """Config with a second BTC instrument (same tiers). Long $250k BTC-PERP
    + long $250k BTC-QPERP. Cross: 2 × 250,000 × 0.5 % = 2,500. Tiering the
    net $500k would give 1,250 + 250,000 × 1 % = 3,750 > 2,500; the default
    profile tiers each instrument's own exposure, E_BTC = 1,250 + 1,250, so
    portfolio asks exactly the cross 2,500 for this one-directional book."""
    v = Venue(with_second_btc(default_config()))
    exp = book(v, ("BTC-PERP", 250e3), (BTC2, 250e3))
    assert v.margin.cross.mm(exp) == pytest.approx(2_500)
    assert v.margin.portfolio.mm(exp) <= v.margin.cross.mm(exp)


def test_two_instruments_of_one_underlying_each_tiered_on_its_own(dv):
    """Default profile, BTC-PERP and BTC-QPERP (same tiers): E_BTC is the sum
    of each leg's signed tiered MM, never the tiers of the net.

    - long $250k + long $250k: E = 1,250 + 1,250 = 2,500 = cross MM (IM 5,000);
    - long $500k + short $100k: E = (1,250 + 2,500) − 500 = 3,250, below cross
      3,750 + 500 = 4,250; the explain view's BTC move is E / D = 3,250 /
      400,000 = 0.8125 % ("BTC −" loses 3,250);
    - long $600k + short $600k: E = 0, every scenario 0, MM = floor 0.1 % ×
      $1.2M = 1,200.
    """
    v = Venue(with_second_btc(default_config()))
    pm, cross = v.margin.portfolio, v.margin.cross
    same = book(v, ("BTC-PERP", 250e3), (BTC2, 250e3))
    assert pm.mm(same) == pytest.approx(2_500) and pm.im(same) == pytest.approx(cross.im(same)) == pytest.approx(5_000)
    mixed = book(v, ("BTC-PERP", 500e3), (BTC2, -100e3))
    assert cross.mm(mixed) == pytest.approx(4_250)
    assert pm.mm(mixed) == pytest.approx(3_250)
    rows = {name: (moves, loss) for name, moves, loss in pm.scenarios(mixed)}
    assert rows["BTC +"][0]["BTC"] == pytest.approx(0.008125) and rows["BTC -"][1] == pytest.approx(3_250)
    assert rows["BTC +"][0]["ETH"] == pytest.approx(0.7 * 0.005)  # not held: first-tier rate
    flat = book(v, ("BTC-PERP", 600e3), (BTC2, -600e3))
    assert all(loss == 0.0 for _, _, loss in pm.scenarios(flat))
    assert pm.mm(flat) == pytest.approx(1_200)
    # the vectorized sweep agrees (instrument rows: sign · tiered, added per underlying)
    symbols = list(v.instruments)
    notional = np.zeros((len(symbols), 3))
    for col, exp in enumerate((same, mixed, flat)):
        for ins, n in exp:
            notional[symbols.index(ins.symbol), col] = n
    im, mm = pm.sweep(notional, symbols)
    assert mm.tolist() == pytest.approx([2_500, 3_250, 1_200]) and im.tolist() == pytest.approx([5_000, 6_500, 2_400])


@SETTINGS
@given(st.lists(st.tuples(st.sampled_from(SYMBOLS + [BTC2]), st.floats(-5e7, 5e7)), min_size=1, max_size=7))
def test_default_profile_never_asks_more_than_cross(pairs):
    """|E_u| ≤ Σ_i mm_tiers_i(|n_i|), so every scenario loss is at most the
    cross MM, and the floor (0.1 %) is below every tier rate: portfolio ≤
    cross on any book, two instruments on one underlying included."""
    v = Venue(with_second_btc(default_config()))
    exp = book(v, *pairs)
    assert v.margin.portfolio.mm(exp) <= v.margin.cross.mm(exp) * (1 + 1e-12)


def test_same_direction_on_two_btc_instruments_through_the_venue():
    """Portfolio account long 3 BTC on BTC-PERP and 3 BTC on BTC-QPERP
    ($180k each): MM 900 + 900 = 1,800 and IM 3,600, as in cross (tiering
    the net $360k would ask 1,250 + 110,000 × 1 % = 2,350); the cached
    per-underlying term equals a refresh (``_check``) and the sweep agrees."""
    v = new_venue(with_second_btc(no_fees(default_config())))
    deposit(v, 1, USDT=100_000)
    set_mode(v, 1, "portfolio")
    open_position(v, 1, "BTC-PERP", 3_000)
    events = open_position(v, 1, BTC2, 3_000)
    upd = [e for e in events if isinstance(e, AccountUpdate) and e.account == 1][-1]
    assert (upd.mm, upd.im) == pytest.approx((1_800, 3_600))
    v._check()
    res = v.risk_sweep()
    col = res.ids.index(1)
    assert res.mm[col] == pytest.approx(1_800) and res.im[col] == pytest.approx(3_600)
