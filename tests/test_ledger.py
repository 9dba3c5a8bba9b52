"""What an account and an auditor can see: ``free`` (withdrawable settlement
collateral) in AccountUpdate, consistent with Withdraw; the admin's
``QueryLedger``, from which conservation checks out by queries alone."""

from __future__ import annotations

import pytest
from liq_helpers import FUND, HOUSE, MEME, liq_config, new_venue, open_pos, set_price, slices, trader
from venue_helpers import BTC, MAKER, U, account_view, fund, make_venue, rest, trade

from exchange_sim.venue import Venue
from protocol.messages import (
    AccountUpdate,
    Ledger,
    NewOrder,
    QueryAccount,
    QueryLedger,
    Rejected,
    RejectReason,
    SetLeverage,
    SetMarginMode,
    SettleFunding,
    Side,
    Withdraw,
)


def withdraw(v: Venue, account: int, amount: int, asset: str = "USDT"):
    return v.apply(Withdraw(account=account, asset=asset, amount=amount))[0]


def assert_free_is_the_edge(v: Venue, account: int) -> int:
    """Withdrawing ``free + 1`` is refused and exactly ``free`` succeeds."""
    free = account_view(v, account).free
    bal = account_view(v, account).balances["USDT"]
    assert 0 < free < bal
    rej = withdraw(v, account, free + 1)
    assert isinstance(rej, Rejected) and rej.reason == RejectReason.INSUFFICIENT_MARGIN, rej
    ok = withdraw(v, account, free)
    assert not isinstance(ok, Rejected), ok
    assert account_view(v, account).balances["USDT"] == bal - free
    return free


def test_free_without_margin_is_the_balance():
    v = make_venue()
    fund(v, 1, USDT=250, BTC="0.1")
    assert account_view(v, 1).free == 250 * U


def test_free_in_cross_is_what_withdraw_accepts():
    """$1,000 at 10x, long 100 lots ($6,000) as taker (fee $3): IM $600,
    equity $997, so about $397 is free; the venue's own test decides the
    last unit, and after withdrawing it nothing more is free."""
    v = make_venue()
    fund(v, MAKER, USDT=10_000_000)
    fund(v, 1, USDT=1_000)
    v.apply(SetLeverage(account=1, symbol=BTC, leverage=10))
    trade(v, 1, MAKER, 100, 600_000)
    free = assert_free_is_the_edge(v, 1)
    assert free == pytest.approx(397 * U, abs=2)
    assert account_view(v, 1).free == 0


def test_free_in_cross_with_haircut_collateral():
    """0.1 BTC (about $6,000 less its haircut) backs the IM too; at 2x, bids
    of 200 lots at $59,000 ($11,800) need $5,900, a little more than the
    BTC counts for, so only part of the $500 USDT is free. The edge is exact
    through the haircut arithmetic."""
    v = make_venue()
    fund(v, 1, USDT=500, BTC="0.1")
    v.apply(SetLeverage(account=1, symbol=BTC, leverage=2))
    rest(v, 1, "buy", 200, 590_000)
    upd = account_view(v, 1)
    assert upd.free == pytest.approx((upd.equity - upd.im) * U, abs=2)
    assert_free_is_the_edge(v, 1)


def test_free_in_isolated_counts_the_open_orders_need():
    """Isolated, $1,000, a resting buy of 100 lots at $59,000 ($5,900 at 1 %
    = $59 of IM beyond allocations): free = $941."""
    v = make_venue()
    fund(v, 1, USDT=1_000)
    v.apply(SetMarginMode(account=1, mode="isolated"))
    rest(v, 1, "buy", 100, 590_000)
    assert account_view(v, 1).free == pytest.approx(941 * U, abs=2)
    assert_free_is_the_edge(v, 1)


def test_free_is_zero_with_a_debt():
    v = make_venue()
    fund(v, 1, USDT=10)
    v.accounts[1].credit("USDT", -20 * U)  # a debt, as a loss leaves one
    v.deposits["USDT"] -= 20 * U  # keep the ledger whole for _check
    assert account_view(v, 1).free == 0


def ledger(v: Venue) -> Ledger:
    (ev,) = v.query(QueryLedger())
    assert isinstance(ev, Ledger), ev
    return ev


def test_ledger_and_queries_alone_show_conservation_after_trades_funding_and_a_liquidation():
    """Fees on; MEME at $1. Account 1 is short 500 MEME with $100, 2 and 3
    hold the longs, 6 rests an ask at $1.18; BTC trades between 7 and the
    house; funding is settled (the floor of each payment leaves a residue);
    MEME moves to $1.18 and account 1 is liquidated (its fee goes to the
    fund). An auditor who sees only query answers sums every account's
    balances, isolated allocations and uPnL, adds the venue's fees and finds
    deposits − withdrawals, to the minor unit, per asset."""
    v = new_venue(liq_config(fees=True, prices={"MEME": "1"}))
    for acct, usdt in ((1, 100), (2, 1_000), (3, 100), (6, 10_000), (7, 5_000)):
        trader(v, acct, USDT=usdt)
    trader(v, 8, "isolated", USDT=2_000)
    open_pos(v, 1, MEME, -300, counterparty=2)
    open_pos(v, 1, MEME, -200, counterparty=3)
    open_pos(v, 7, BTC, 37, counterparty=HOUSE)
    open_pos(v, 8, BTC, -11, counterparty=7)
    assert not isinstance(v.apply(Withdraw(account=7, asset="USDT", amount=123_456_789))[0], Rejected)
    # an odd mark (600,003 ticks): 37 × 600,003 × 100 × rate is no whole µUSDT, the floors leave a residue
    set_price(v, "BTC", "60000.3")
    funding = v.apply(SettleFunding())
    v.apply(NewOrder(account=6, symbol=MEME, side=Side.SELL, qty=500, price=118_000, tif="post_only"))
    assert slices(set_price(v, "MEME", "1.18"), 1), "account 1 should have been liquidated"
    v._check()

    led = ledger(v)
    rows = {r.asset: r for r in led.assets}
    usdt = rows["USDT"]
    assert usdt.funding_residue > 0 and usdt.liquidation_fees > 0 and usdt.fees_collected > usdt.funding_residue
    assert usdt.withdrawals == 123_456_789
    residue = -sum(p.amount for p in funding if type(p).__name__ == "FundingPayment")
    assert usdt.funding_residue == residue
    accounts = [HOUSE, 1, 2, 3, 6, 7, 8, led.insurance_account]
    assert led.insurance_account == FUND
    views = {}
    for a in accounts:
        (upd,) = v.query(QueryAccount(account=a))
        assert isinstance(upd, AccountUpdate)
        views[a] = upd
    assert views[FUND].balances["USDT"] == usdt.insurance_fund
    for asset, row in rows.items():
        held = sum(u.balances.get(asset, 0) for u in views.values())
        if asset == "USDT":
            held += sum(u.allocated + sum(p.upnl for p in u.positions) for u in views.values())
        assert held + row.fees_collected == row.deposits - row.withdrawals, asset
    assert views[8].allocated > 0  # the isolated account's allocation is counted


def test_ledger_is_admin_only_over_the_server_policy():
    """QueryLedger has no account field: the server's policy makes it an
    admin command, like ShockPrice; QueryLeverageTiers is public."""
    from exchange_sim.server.sessions import ADMIN, PUBLIC, policy
    from protocol.messages import QueryLeverageTiers, ShockPrice

    assert policy(QueryLedger) == ADMIN == policy(ShockPrice)
    assert policy(QueryLeverageTiers) == PUBLIC


@pytest.mark.parametrize("seed", range(12))
def test_free_is_the_withdraw_edge_in_random_states(seed):
    """Seeded random accounts (mode, collateral, leverage, resting orders, a
    position, a price move): on a copy of the venue, withdrawing ``free + 1``
    is refused and exactly ``free`` is accepted, whichever path computed it."""
    import random

    from exchange_sim import snapshot

    rng = random.Random(seed)
    v = make_venue()
    fund(v, MAKER, USDT=100_000_000)
    mode = rng.choice(["cross", "portfolio", "isolated"])
    fund(v, 1, USDT=rng.randrange(200, 5_000), **({"BTC": "0.05"} if mode != "isolated" and rng.random() < 0.5 else {}))
    if mode != "cross":
        v.apply(SetMarginMode(account=1, mode=mode))
    v.apply(SetLeverage(account=1, symbol=BTC, leverage=rng.choice([2, 5, 10, 20, 50])))
    trade(v, 1, MAKER, rng.randrange(5, 30), 600_000)
    for _ in range(rng.randrange(0, 3)):
        v.apply(NewOrder(account=1, symbol=BTC, side=Side.BUY, qty=rng.randrange(1, 20), price=590_000 - rng.randrange(0, 500)))
    set_price(v, "BTC", str(60_000 + rng.randrange(-900, 900)))
    free = account_view(v, 1).free
    bal = account_view(v, 1).balances["USDT"]
    assert 0 <= free <= bal
    copy = lambda: snapshot.restore(v.config, snapshot.capture(v))  # noqa: E731
    if free < bal:
        rej = withdraw(copy(), 1, free + 1)
        assert isinstance(rej, Rejected) and rej.reason == RejectReason.INSUFFICIENT_MARGIN, (mode, free, rej)
    if free:
        assert not isinstance(withdraw(copy(), 1, free), Rejected)
