"""Leverage per account and symbol (Binance/Bybit semantics; docs/adr/0010-leverage.md).

BTC-PERP at $60,000: one lot (0.001 BTC) is $60 of notional. Its tiers
(IM rate, max leverage): up to $250k 1 % (100x), to $1M 2 % (50x), to $10M
5 % (20x), beyond 10 % (10x). Fees: maker 0.02 %, taker 0.05 %.
"""

from __future__ import annotations

import pytest
from venue_helpers import BTC, MAKER, U, account_view, fund, make_venue, one, place, rest, trade

from exchange_sim import snapshot
from exchange_sim.venue import Venue
from protocol import messages as M
from protocol.messages import (
    AdjustIsolatedMargin,
    IsolatedMarginChanged,
    Leverage,
    LeverageChanged,
    LeverageTiers,
    QueryLeverage,
    QueryLeverageTiers,
    Rejected,
    RejectReason,
    SetLeverage,
    SetMarginMode,
)


def venue(*accounts: tuple[int, int]) -> Venue:
    """A venue with a rich maker and the given (account, whole USDT) funded."""
    v = make_venue()
    fund(v, MAKER, USDT=100_000_000)
    for acct, usdt in accounts:
        fund(v, acct, USDT=usdt)
    return v


def lev(v: Venue, account: int, symbol: str = BTC):
    (ev,) = v.query(QueryLeverage(account=account, symbol=symbol))
    assert isinstance(ev, Leverage), ev
    (row,) = ev.symbols
    return row


def set_lev(v: Venue, account: int, leverage: int, symbol: str = BTC) -> list:
    return v.apply(SetLeverage(account=account, symbol=symbol, leverage=leverage))


def test_tiers_read_like_binance_leverage_brackets():
    """MM = notional × rate − cum inside a bracket: at $500k (bracket 2)
    marginal tiers give 0.5 % × 250k + 1 % × 250k = $3,750, and Binance's
    form 1 % × 500k − cum 1,250 = $3,750."""
    v = venue()
    (ev,) = v.query(QueryLeverageTiers(symbol=BTC))
    assert isinstance(ev, LeverageTiers)
    (sym,) = ev.symbols
    rows = [(t.bracket, t.notional_floor, t.notional_cap, t.max_leverage, t.im_rate, t.mm_rate, t.mm_amount)
            for t in sym.tiers]
    assert rows == [
        (1, 0.0, 250_000.0, 100, 0.01, 0.005, 0.0),
        (2, 250_000.0, 1_000_000.0, 50, 0.02, 0.01, 1_250.0),
        (3, 1_000_000.0, 10_000_000.0, 20, 0.05, 0.025, 16_250.0),
        (4, 10_000_000.0, None, 10, 0.10, 0.05, 266_250.0),
    ]
    assert v.instruments[BTC].mm_tiers.amount(500_000.0) == 500_000 * 0.01 - 1_250 == 3_750
    (every,) = v.query(QueryLeverageTiers())
    assert [s.symbol for s in every.symbols] == list(v.instruments)


def test_a_symbol_never_set_reports_its_first_tier_and_keeps_the_tier_im():
    """No SetLeverage: 100x reported (1 / 1 %), not set; a resting buy of 10
    lots at $60,000 holds IM = 1 % × $600 = $6, today's figure."""
    v = venue((1, 1_000))
    row = lev(v, 1)
    assert (row.leverage, row.set, row.max_leverage, row.notional) == (100, False, 100, 0.0)
    assert len(row.tiers) == 4
    rest(v, 1, "buy", 10, 600_000)
    assert account_view(v, 1).im == v.instruments[BTC].im_tiers.amount(600.0) == 6.0


def test_leverage_sets_the_im_rate_and_the_pretrade_check_uses_it():
    """$100 at 10x: IM = notional / 10, so a buy of 16 lots ($960, IM $96)
    passes and then 2 more lots ($120 → IM $108 > equity $100) are refused;
    at the default 100x the same order needs only $10.80."""
    v = venue((1, 100))
    ev = set_lev(v, 1, 10)
    changed = one(ev, LeverageChanged)
    assert (changed.account, changed.symbol, changed.leverage, changed.max_leverage) == (1, BTC, 10, 100)
    assert (lev(v, 1).leverage, lev(v, 1).set) == (10, True)
    rest(v, 1, "buy", 16, 600_000)
    assert account_view(v, 1).im == pytest.approx(96.0)
    (rej,) = place(v, 1, "buy", 2, 600_000)
    assert isinstance(rej, Rejected) and rej.reason == RejectReason.INSUFFICIENT_MARGIN
    assert "initial margin 108.00 would exceed equity 100.00" in rej.message
    set_lev(v, 1, 100)
    rest(v, 1, "buy", 2, 600_000)
    assert account_view(v, 1).im == pytest.approx(18 * 60 / 100)


def test_above_the_tier_maximum_for_the_notional_is_refused():
    """Long 5,000 lots = $300,000: bracket 2, at most 50x. 75x is refused,
    naming the tier's maximum and the notional; 50x passes, and with it the
    position needs $300,000 / 50 = $6,000 (the tiers alone: $3,500)."""
    v = venue((1, 20_000))
    trade(v, 1, MAKER, 5_000, 600_000)
    assert lev(v, 1).max_leverage == 50
    assert account_view(v, 1).im == pytest.approx(3_500.0)
    (rej,) = set_lev(v, 1, 75)
    assert rej.reason == RejectReason.LEVERAGE_ABOVE_MAX
    assert rej.message == ("leverage 75x is above the 50x BTC-PERP allows for a notional of "
                           "300,000.00 USDT (position and open orders)")
    assert lev(v, 1).set is False  # nothing changed
    assert not isinstance(set_lev(v, 1, 50)[0], Rejected)
    assert account_view(v, 1).im == pytest.approx(6_000.0)
    (rej,) = set_lev(v, 1, 1_001)
    assert rej.reason == RejectReason.LEVERAGE_ABOVE_MAX


def test_lowering_below_what_the_position_needs_is_refused_saying_how_much_is_missing():
    """$1,000, long 100 lots at $60,000 ($6,000) as taker: fee $3, equity
    $997. 10x needs $600: fine. 5x would need $1,200: $203 more than the
    equity, refused, and the account keeps 10x."""
    v = venue((1, 1_000))
    trade(v, 1, MAKER, 100, 600_000)
    assert account_view(v, 1).equity == pytest.approx(997.0)
    assert not isinstance(set_lev(v, 1, 10)[0], Rejected)
    (rej,) = set_lev(v, 1, 5)
    assert rej.reason == RejectReason.LEVERAGE_INSUFFICIENT_MARGIN
    assert rej.message == "5x would need initial margin 1,200.00 USDT, 203.00 more than the equity 997.00"
    assert lev(v, 1).leverage == 10
    assert account_view(v, 1).im == pytest.approx(600.0)
    # raising it again needs no margin check
    assert not isinstance(set_lev(v, 1, 20)[0], Rejected)
    assert account_view(v, 1).im == pytest.approx(300.0)


def test_isolated_allocation_follows_the_leverage():
    """Isolated, $1,000, 10x, then long 100 lots ($6,000): allocation $600
    (not the tiers' $60), wallet $1,000 − $600 − fee $3 = $397. 5x would top
    it up to $1,200: $600 more than the $397 free, refused. 8x tops it up by
    $150 to $750. Taking margin out below IM at 8x is refused."""
    v = venue((1, 1_000))
    v.apply(SetMarginMode(account=1, mode="isolated"))
    set_lev(v, 1, 10)
    ev = trade(v, 1, MAKER, 100, 600_000)
    assert one(ev, IsolatedMarginChanged, account=1).allocated == 600 * U
    assert account_view(v, 1).balances["USDT"] == 397 * U
    (rej,) = set_lev(v, 1, 5)
    assert rej.reason == RejectReason.LEVERAGE_INSUFFICIENT_MARGIN
    assert rej.message == ("5x needs 600.00 USDT of isolated margin beyond the allocations, "
                           "203.00 more than the free balance 397.00")
    ev = set_lev(v, 1, 8)
    top = one(ev, IsolatedMarginChanged, account=1)
    assert (top.delta, top.allocated) == (150 * U, 750 * U)
    upd = account_view(v, 1)
    assert (upd.balances["USDT"], upd.allocated) == (247 * U, 750 * U)
    (rej,) = v.apply(AdjustIsolatedMargin(account=1, symbol=BTC, delta=-1))
    assert rej.reason == RejectReason.INSUFFICIENT_MARGIN


def test_portfolio_mode_ignores_leverage_but_keeps_it():
    """Portfolio margin comes from the scenarios (Binance PM does not use the
    per-symbol leverage for its margin): 2x is stored and checked against the
    tier, the IM does not move; back in cross it applies."""
    v = venue((1, 10_000))
    v.apply(SetMarginMode(account=1, mode="portfolio"))
    trade(v, 1, MAKER, 100, 600_000)
    before = account_view(v, 1)
    assert not isinstance(set_lev(v, 1, 2)[0], Rejected)
    after = account_view(v, 1)
    assert (after.im, after.mm) == (before.im, before.mm)
    assert after.positions[0].im == before.positions[0].im
    assert not isinstance(v.apply(SetMarginMode(account=1, mode="cross"))[0], Rejected)
    assert account_view(v, 1).im == pytest.approx(3_000.0)  # $6,000 / 2


def test_mode_switch_counts_the_leverage():
    """In portfolio with 2x stored, $2,000 and $6,000 long: cross at 2x would
    need $3,000 of IM, above the equity: the switch is refused."""
    v = venue((1, 2_000))
    v.apply(SetMarginMode(account=1, mode="portfolio"))
    trade(v, 1, MAKER, 100, 600_000)
    set_lev(v, 1, 2)
    (rej,) = v.apply(SetMarginMode(account=1, mode="cross"))
    assert rej.reason == RejectReason.MARGIN_MODE_CHANGE_DENIED
    assert "3000.00" in rej.message


def test_leverage_survives_a_snapshot_and_the_same_commands_give_the_same_state():
    cmds = [SetLeverage(account=1, symbol=BTC, leverage=7), SetLeverage(account=1, symbol="ETH-PERP", leverage=3)]

    def run() -> Venue:
        v = venue((1, 1_000))
        for c in cmds:
            assert not isinstance(v.apply(c)[0], Rejected)
        rest(v, 1, "buy", 10, 600_000)
        return v

    a, b = run(), run()
    assert snapshot.state_hash(a) == snapshot.state_hash(b)
    restored = snapshot.restore(a.config, snapshot.decode(snapshot.encode(snapshot.capture(a))))
    assert snapshot.state_hash(restored) == snapshot.state_hash(a)
    assert lev(restored, 1).leverage == 7 and lev(restored, 1, "ETH-PERP").leverage == 3
    assert account_view(restored, 1).im == account_view(a, 1).im == pytest.approx(600 / 7)
    restored._check()


def test_set_leverage_validates_its_input():
    v = venue((1, 100))
    (rej,) = v.apply(SetLeverage(account=1, symbol="NOPE", leverage=5))
    assert rej.reason == RejectReason.UNKNOWN_SYMBOL
    (rej,) = v.apply(SetLeverage(account=99, symbol=BTC, leverage=5))
    assert rej.reason == RejectReason.UNKNOWN_ACCOUNT
    (rej,) = v.apply(SetLeverage(account=1, symbol=BTC, leverage=0))
    assert rej.reason == RejectReason.INVALID_FIELD


def test_explain_shows_the_leverage_used_per_symbol():
    """10x on BTC, long 100 lots ($6,000): the position's IM at its leverage
    is $600; ETH, never set, shows none and its tier IM (1 % of $3,000)."""
    from exchange_sim.risk.explain import render

    v = venue((1, 10_000))
    set_lev(v, 1, 10)
    trade(v, 1, MAKER, 100, 600_000)
    trade(v, 1, MAKER, 1_000, 300_000, symbol="ETH-PERP")
    ex = v.explain(1)
    by = {p.symbol: p for p in ex.positions}
    assert (by[BTC].leverage, by[BTC].im) == (10, pytest.approx(600.0))
    assert (by["ETH-PERP"].leverage, by["ETH-PERP"].im) == (None, pytest.approx(30.0))
    assert ex.im == pytest.approx(630.0)
    assert "Leverage set: BTC-PERP 10x (IM $600.00)" in render(ex)


def test_leverage_is_journaled_and_replayed(tmp_path):
    """SetLeverage goes through the journal like any command: recovery from
    the journal alone rebuilds the leverage and the IM it implies."""
    from exchange_sim import journal, replay

    j = journal.Journal(tmp_path)
    v = make_venue()
    cmds = [M.Deposit(account=1, asset="USDT", amount=1_000 * U),
            SetLeverage(account=1, symbol=BTC, leverage=4),
            M.NewOrder(account=1, symbol=BTC, side=M.Side.BUY, qty=10, price=600_000)]
    for seq, c in enumerate(cmds, 1):
        j.append(seq, seq * 1_000, c)
        assert not isinstance(v.apply(c, seq * 1_000)[0], Rejected)
    j.close()
    recovered, _, replayed = replay.recover(tmp_path)
    assert replayed == 3
    assert snapshot.state_hash(recovered) == snapshot.state_hash(v)
    assert lev(recovered, 1).leverage == 4
    assert account_view(recovered, 1).im == pytest.approx(600 / 4)
