"""Settlement in exact integers: fees, realized PnL, average entry price and
money conservation.

BTC-PERP: one tick × one lot = 0.1 USDT × 0.001 = 100 µUSDT, so a fill of
``q`` lots at ``p`` ticks has notional ``q × p × 100`` µUSDT. Fees: maker
0.02 % (2/10_000), taker 0.05 % (5/10_000), each rounded **up** to the
µUSDT (against the account). Realized PnL = closed lots × (exit − entry)
ticks × 100 µUSDT.
"""

from __future__ import annotations

import pytest

from venue_helpers import (
    BTC,
    BTC_MARK,
    ETH,
    ETH_MARK,
    MAKER,
    MEME,
    U,
    account_view,
    fund,
    of,
    one,
    place,
    position,
    rest,
    set_index,
    trade,
)
from protocol.messages import AccountUpdate, Fill, Liquidity, Side, Trade, Withdraw

P = BTC_MARK
START = 1_000_000 * U  # each of accounts 1, 2, 3 (fixture ``v``)


def usdt(v, account: int) -> int:
    return v.accounts[account].balances.get("USDT", 0)


# ==================================================================== fees


def test_fees_are_rounded_up_against_each_side(v):
    """1 lot @ 600_010: notional 1 × 600_010 × 100 = 60_001_000 µUSDT.
    taker 0.05 % = 30_000.5 → 30_001 µUSDT; maker 0.02 % = 12_000.2 → 12_001."""
    events = trade(v, 1, 2, 1, P + 10)
    taker = one(events, Fill, account=1)
    maker = one(events, Fill, account=2)
    assert (taker.fee, taker.liquidity) == (30_001, Liquidity.TAKER)
    assert (maker.fee, maker.liquidity) == (12_001, Liquidity.MAKER)
    assert usdt(v, 1) == START - 30_001
    assert usdt(v, 2) == START - 12_001
    assert v.fees_collected == {"USDT": 42_002}
    v._check()


def test_exact_fees_are_not_rounded(v):
    """10 lots @ 600_000: notional 600_000_000 µUSDT; taker 300_000, maker
    120_000, exactly."""
    events = trade(v, 1, 2, 10, P)
    assert one(events, Fill, account=1).fee == 300_000
    assert one(events, Fill, account=2).fee == 120_000


def test_fee_on_each_fill_is_rounded_separately(v):
    """A taker buy of 2 lots meets two asks of 1 lot @ 600_001 and 600_003:
    fees ⌈60_000_100 × 5/10_000⌉ = ⌈30_000.05⌉ = 30_001 and
    ⌈60_000_300 × 5/10_000⌉ = ⌈30_000.15⌉ = 30_001: 60_002 in all."""
    rest(v, 2, "sell", 1, P + 1)
    rest(v, 3, "sell", 1, P + 3)
    events = place(v, 1, "buy", 2, P + 3)
    assert [f.fee for f in of(events, Fill, account=1)] == [30_001, 30_001]
    assert usdt(v, 1) == START - 60_002


def test_eth_fees_use_the_eth_contract_value(v):
    """ETH-PERP: 0.01 USDT × 0.001 ETH = 10 µUSDT per tick×lot. 2 lots @
    300_001: notional 6_000_020 µUSDT; taker ⌈3_000.01⌉ = 3_001, maker
    ⌈1_200.004⌉ = 1_201."""
    events = trade(v, 1, 2, 2, ETH_MARK + 1, symbol=ETH)
    assert one(events, Fill, account=1).fee == 3_001
    assert one(events, Fill, account=2).fee == 1_201


def test_meme_fee_rounding(v):
    """MEME-PERP: 0.00001 USDT × 1 MEME = 10 µUSDT per tick×lot. 21 lots @
    25_001 ticks: notional 21 × 25_001 × 10 = 5_250_210 µUSDT; taker
    ⌈2_625.105⌉ = 2_626; maker ⌈1_050.042⌉ = 1_051."""
    events = trade(v, 1, 2, 21, 25_001, symbol=MEME)
    assert one(events, Fill, account=1).fee == 2_626
    assert one(events, Fill, account=2).fee == 1_051


def test_fees_paid_without_usdt_make_the_balance_negative(venue):
    """An account holding only BTC pays the taker fee in USDT it does not
    have: 10 lots @ 600_000 → fee 300_000 µUSDT → balance −0.3 USDT."""
    fund(venue, 1, BTC=1)
    fund(venue, MAKER, USDT=1_000_000)
    trade(venue, 1, MAKER, 10, P)
    assert venue.accounts[1].balances == {"BTC": 10**8, "USDT": -300_000}
    venue._check()


# ============================================================ realized PnL


def test_realized_pnl_on_a_full_close(v):
    """Long 10 @ 600_000, sold 10 @ 600_500: realized 10 × 500 × 100 =
    500_000 µUSDT (0.5 USDT). Fees: open taker 300_000; close taker
    ⌈10 × 600_500 × 100 × 5/10_000⌉ = 300_250."""
    trade(v, 1, 2, 10, P)
    events = trade(v, 3, 1, 10, P + 500, taker="seller")
    close = one(events, Fill, account=1)
    assert (close.realized_pnl, close.fee, close.position) == (500_000, 300_250, 0)
    assert position(v, 1) is None
    assert usdt(v, 1) == START - 300_000 + 500_000 - 300_250
    v._check()


def test_realized_loss_on_a_short(v):
    """Short 10 @ 600_000 bought back @ 600_200: realized 10 × (600_000 −
    600_200) × 100 = −200_000 µUSDT."""
    trade(v, 2, 1, 10, P, taker="seller")
    events = trade(v, 1, 3, 10, P + 200)
    assert one(events, Fill, account=1).realized_pnl == -200_000
    v._check()


def test_partial_close_rounds_against_the_account_and_the_rest_catches_up(v):
    """Long 3 lots: 1 @ 600_000 + 2 @ 600_001, cost 1_800_002 ticks×lots
    (entry 600_000.67). Sell 1 @ 600_100: the cost share removed is
    ⌈1_800_002 / 3⌉ = 600_001, realized (600_100 − 600_001) × 100 = 9_900
    µUSDT (exactly: 9_933.3, rounded down). The 2 lots left carry cost
    1_200_001 (entry 600_000.5); selling them @ 600_100 realizes
    (1_200_200 − 1_200_001) × 100 = 19_900. Total 29_800 = 3 × 600_100 −
    1_800_002 = 298 × 100, exact: nothing is lost, only deferred."""
    trade(v, 1, 2, 1, P)
    trade(v, 1, 2, 2, P + 1)
    assert position(v, 1).entry_price == pytest.approx(1_800_002 / 3)
    first = one(trade(v, 3, 1, 1, P + 100, taker="seller"), Fill, account=1)
    assert first.realized_pnl == 9_900
    assert position(v, 1).entry_price == 600_000.5
    second = one(trade(v, 3, 1, 2, P + 100, taker="seller"), Fill, account=1)
    assert second.realized_pnl == 19_900
    assert first.realized_pnl + second.realized_pnl == (3 * (P + 100) - 1_800_002) * 100
    v._check()


def test_partial_close_of_a_short_rounds_against_the_account(v):
    """Short 3: 1 @ 600_000 + 2 @ 600_001, cost −1_800_002. Buy 1 back @
    599_900: cost share ⌈−1_800_002 / 3⌉ = −600_000, realized
    (−599_900 + 600_000) × 100 = 10_000 µUSDT (exactly 10_066.7)."""
    trade(v, 2, 1, 1, P, taker="seller")
    trade(v, 2, 1, 2, P + 1, taker="seller")
    assert one(trade(v, 1, 3, 1, P - 100), Fill, account=1).realized_pnl == 10_000


def test_position_flip_realizes_the_closed_part_and_reopens_at_the_fill(v):
    """Long 10 @ 600_000, sell 15 @ 600_200 (one fill): realized on the 10
    closed = 10 × 200 × 100 = 200_000; the new position is short 5 with
    entry 600_200. The taker fee is on all 15 lots: ⌈15 × 600_200 × 100 ×
    5/10_000⌉ = 450_150."""
    trade(v, 1, 2, 10, P)
    rest(v, 3, "buy", 15, P + 200)
    fill = one(place(v, 1, "sell", 15, P + 200), Fill, account=1)
    assert (fill.realized_pnl, fill.position, fill.fee) == (200_000, -5, 450_150)
    pos = position(v, 1)
    assert (pos.qty, pos.entry_price) == (-5, 600_200.0)
    v._check()


def test_maker_realizes_pnl_too(v):
    """Account 2 is short 10 @ 600_000 (it sold as taker); its resting bid
    10 @ 599_000 is hit: realized 10 × 1_000 × 100 = 1_000_000 µUSDT, maker
    fee 10 × 599_000 × 100 × 2/10_000 = 119_800."""
    trade(v, 1, 2, 10, P, taker="seller")
    rest(v, 2, "buy", 10, 599_000)
    fill = one(place(v, 3, "sell", 10, 599_000), Fill, account=2)
    assert (fill.realized_pnl, fill.fee, fill.liquidity, fill.position) == (1_000_000, 119_800, Liquidity.MAKER, 0)


# ========================================================== average entry


def test_average_entry_price_weights_each_fill(v):
    """Buy 10 @ 600_000 then 30 @ 600_100: entry (6_000_000 + 18_003_000) /
    40 = 600_075 ticks; uPnL at mark 600_000 = 40 × 600_000 − 24_003_000 =
    −3_000 ticks×lots = −300_000 µUSDT."""
    trade(v, 1, 2, 10, P)
    trade(v, 1, 2, 30, P + 100)
    pos = position(v, 1)
    assert (pos.qty, pos.entry_price, pos.upnl) == (40, 600_075.0, -300_000)
    assert pos.notional == 40 * P * 100


def test_unrealized_pnl_follows_the_mark(v):
    """1.2 BTC long (1200 lots) at 600_010 with mark 600_000: uPnL = 1200 ×
    (600_000 − 600_010) × 100 µUSDT = −1.2 USDT. Index to $60,100 (mark
    601_000): uPnL = 1200 × 990 × 100 = 118.8 USDT; balances do not move."""
    trade(v, 1, 2, 1200, P + 10)
    assert position(v, 1).upnl == -1_200_000
    bal = usdt(v, 1)
    set_index(v, "BTC", 60_100)
    assert position(v, 1).upnl == 118_800_000
    assert position(v, 2).upnl == -118_800_000
    assert usdt(v, 1) == bal
    view = account_view(v, 1)
    assert view.equity == pytest.approx(bal / U + 118.8, abs=1e-6)
    v._check()


def test_fill_events_report_position_and_remaining(v):
    rest(v, 2, "sell", 3, P)
    rest(v, 3, "sell", 4, P + 1)
    fills = of(place(v, 1, "buy", 10, P + 1), Fill, account=1)
    assert [(f.qty, f.remaining, f.position) for f in fills] == [(3, 7, 3), (4, 3, 7)]


def test_trade_ids_increase_and_both_sides_share_one(v):
    rest(v, 2, "sell", 3, P)
    rest(v, 3, "sell", 4, P + 1)
    events = place(v, 1, "buy", 7, P + 1)
    trades = of(events, Trade)
    assert [(t.price, t.qty, t.taker_side) for t in trades] == [(P, 3, Side.BUY), (P + 1, 4, Side.BUY)]
    assert trades[1].trade_id == trades[0].trade_id + 1
    for t in trades:
        assert {f.account for f in of(events, Fill, trade_id=t.trade_id)} == {1, 2 if t.price == P else 3}


def test_fills_send_an_account_update_to_each_side(v):
    events = trade(v, 1, 2, 10, P)
    updates = of(events, AccountUpdate)
    assert sorted(u.account for u in updates) == [1, 2]
    assert one(events, AccountUpdate, account=1).balances == {"USDT": START - 300_000}


# ===================================================== money conservation


def test_money_is_conserved_through_trading_fees_and_withdrawals(v):
    """Σ balances + Σ uPnL + fees collected = Σ deposits − Σ withdrawals,
    per asset, written out by hand here and checked by ``_check``."""
    trade(v, 1, 2, 10, P)
    trade(v, 3, 1, 4, P + 300, taker="seller")
    trade(v, 2, 3, 7, P - 50)
    set_index(v, "BTC", 60_321)
    v.apply(Withdraw(account=3, asset="USDT", amount=12_345))
    total = sum(a.balances.get("USDT", 0) for a in v.accounts.values())
    ins = v.instruments[BTC]
    total += sum((p.qty * ins.mark - p.cost) * ins.value for a in v.accounts.values() for p in a.positions.values())
    total += v.fees_collected["USDT"]
    assert total == v.deposits["USDT"] - 12_345
    v._check()


def test_the_conservation_check_catches_a_lost_micro_unit(v):
    trade(v, 1, 2, 10, P)
    v._check()
    v.accounts[1].balances["USDT"] += 1  # money out of thin air
    with pytest.raises(AssertionError, match="USDT"):
        v._check()


def test_the_check_catches_positions_that_do_not_net_to_zero(v):
    trade(v, 1, 2, 10, P)
    v.accounts[2].positions[BTC].qty += 1
    v.accounts[2].positions[BTC].cost += P  # keep money balanced at mark
    with pytest.raises(AssertionError, match="net"):
        v._check()
