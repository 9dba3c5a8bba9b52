"""Dated futures (issue 16): the calendar, the mark (index + basis), expiry
and cash settlement, the rolling listing, margin with the basis charge,
snapshots and replay. Config: the default one plus ``docs/examples/futures.toml``
(BTC and ETH quarterlies, SOL monthlies; calendar from 2026-12-01), trading
fees off so balances show the settlement arithmetic alone.

Units: BTC futures like BTC-PERP: tick $0.1 (1e7 in 1e-8 USD), lot 0.001
BTC, 100 µUSDT per tick × lot.
"""

from __future__ import annotations

import copy
from pathlib import Path

import msgspec
import pytest

from liq_helpers import HOUSE, U, of, one, replace
from exchange_sim import config as config_mod
from exchange_sim import snapshot
from exchange_sim.products.dated_future import NS, date_ns, expiries, expiry_label, last_friday
from exchange_sim.venue import Venue
from protocol.messages import (
    PRICE_SCALE,
    BalanceChanged,
    CancelCause,
    Deposit,
    FundingRate,
    FutureListed,
    FutureSettled,
    MarkPrice,
    NewOrder,
    OrderCancelled,
    QueryExplain,
    QueryInstruments,
    Rejected,
    RejectReason,
    SetIndexPrice,
    SetMarginMode,
    SettleFunding,
    ShockBasis,
    Side,
    Tick,
)

EXAMPLE = Path(__file__).resolve().parent.parent / "docs" / "examples" / "futures.toml"
DEC = "BTC-25DEC26"
MAR = "BTC-26MAR27"
E_DEC = date_ns("2026-12-25T08:00:00Z")
MIN = 60 * NS
A, B, C, MAKER = 1, 2, 3, 9


def futures_config(fees: bool = False):
    cfg = config_mod.load(EXAMPLE)
    if not fees:
        cfg = replace(cfg, instruments=[replace(i, maker_fee="0", taker_fee="0") for i in cfg.instruments],
                      futures=[replace(f, maker_fee="0", taker_fee="0") for f in cfg.futures])
    return cfg


def usd_e8(usd) -> int:
    return round(usd * PRICE_SCALE)


def venue(t0: int = E_DEC - 60 * MIN) -> Venue:
    v = Venue(futures_config())
    v.apply(Deposit(account=HOUSE, asset="USDT", amount=10**9 * U), ts=t0)
    for a in (A, B, C, MAKER):
        v.apply(Deposit(account=a, asset="USDT", amount=100_000 * U), ts=t0)
    return v


def trade(v, buyer, seller, symbol, lots, price, ts):
    ev = v.apply(NewOrder(account=seller, symbol=symbol, side=Side.SELL, qty=lots, price=price, tif="post_only"),
                 ts=ts)
    assert not isinstance(ev[0], Rejected), ev
    ev = v.apply(NewOrder(account=buyer, symbol=symbol, side=Side.BUY, qty=lots, price=price, tif="ioc"), ts=ts)
    assert not isinstance(ev[0], Rejected), ev
    return ev


# ------------------------------------------------------------------ calendar


def test_calendar_last_friday_0800_utc_and_symbols():
    """Quarterly: the last Fridays of Dec 2026 (the 25th), Mar 2027 (26th),
    Jun (25th), Sep (24th), Dec (31st), Mar 2028 (31st), each 08:00 UTC;
    monthly SOL: Dec 25, Jan 29, Feb 26, …; two of each trade, the rest wait."""
    assert last_friday(2027, 3) == 26 and last_friday(2027, 12) == 31
    q = expiries(date_ns("2026-12-01"), "quarterly", 6)
    assert [expiry_label(t) for t in q] == ["25DEC26", "26MAR27", "25JUN27", "24SEP27", "31DEC27", "31MAR28"]
    assert q[1] == date_ns("2027-03-26T08:00:00Z")
    v = Venue(futures_config())
    states = {f.symbol: f.state for f in v.state.futures}
    assert states[DEC] == states[MAR] == "trading" and states["BTC-25JUN27"] == "pending"
    assert [s for s in states if s.startswith("SOL")][:3] == ["SOL-25DEC26", "SOL-29JAN27", "SOL-26FEB27"]
    (info,) = v.apply(QueryInstruments())
    by = {i.symbol: i for i in info.instruments}
    assert (by[MAR].kind, by[MAR].expiry, by[MAR].state) == ("future", q[1], "trading")
    assert by["BTC-PERP"].kind == "perpetual" and by["BTC-PERP"].expiry is None


def test_pending_future_takes_no_orders_and_futures_pay_no_funding():
    v = venue()
    (r,) = v.apply(NewOrder(account=A, symbol="BTC-25JUN27", side=Side.BUY, qty=1, price=600_000))
    assert isinstance(r, Rejected) and r.reason == RejectReason.NOT_TRADING and "pending" in r.message
    ev = v.apply(SettleFunding())
    assert {e.symbol for e in of(ev, FundingRate)} == {"BTC-PERP", "ETH-PERP", "SOL-PERP", "BNB-PERP", "MEME-PERP"}


# ------------------------------------------------------------ settlement


def test_settlement_price_is_the_30_minute_twap_of_the_index():
    """Index $60,000 until 07:40 (and in force from the window's start at
    07:30), $60,300 from 07:40, $59,700 from 07:55, expiry at 08:00:
    TWAP = (60,000 × 10 + 60,300 × 15 + 59,700 × 5) / 30 = $60,100."""
    v = venue()
    v.apply(SetIndexPrice(asset="BTC", price=usd_e8(60_300)), ts=E_DEC - 20 * MIN)
    v.apply(SetIndexPrice(asset="BTC", price=usd_e8(59_700)), ts=E_DEC - 5 * MIN)
    ev = v.apply(Tick(), ts=E_DEC + NS)
    st = one(ev, FutureSettled, symbol=DEC)
    assert st.price == usd_e8(60_100) and st.expiry == E_DEC
    v._check()


def test_futures_expire_when_the_venue_settles_no_funding_of_its_own():
    """A replay turns the venue's own funding off (``funding.automatic``):
    its dated futures still settle at expiry."""
    cfg = futures_config()
    v = Venue(replace(cfg, funding=replace(cfg.funding, automatic=False)))
    v.apply(Tick(), ts=E_DEC - 60 * MIN)
    ev = v.apply(Tick(), ts=E_DEC + NS)
    assert one(ev, FutureSettled, symbol=DEC).expiry == E_DEC
    assert not of(ev, FundingRate)


def test_expiry_three_accounts_zero_sum_to_the_unit():
    """A buys 20 lots from B and 10 from C at $60,000.0 (cost 30 × 600,000
    ticks); the index is $60,000 until 07:50 and $60,000.01 after, so the
    TWAP is (60,000 × 20 + 60,000.01 × 10) / 30 = $60,000.00333…, in 1e-8
    USD 6,000,000,333,333 (half up). Payout = (qty × P − cost × 1e7) × 100 /
    1e7 µUSDT, floored:
    A: 9,999,990 × 100 / 1e7 = 99.9999 → 99; B: −66.6666 → −67; C: −33.3333
    → −34. Σ = −2 µUSDT: the 2 µUSDT floored away go to the fee ledger, so
    accounts + fees are zero-sum to the unit. A's resting bid is cancelled
    (cause ``expired``); the instrument is ``settled`` and still queryable;
    BTC-25JUN27 lists; a new order on the settled future is refused."""
    v = venue()
    t = E_DEC - 40 * MIN
    trade(v, A, B, DEC, 20, 600_000, t)
    trade(v, A, C, DEC, 10, 600_000, t)
    v.apply(NewOrder(account=A, symbol=DEC, side=Side.BUY, qty=5, price=590_000), ts=t)
    fees0 = v.fees_collected.get("USDT", 0)
    bal0 = {a: v.accounts[a].balances["USDT"] for a in (A, B, C)}
    v.apply(SetIndexPrice(asset="BTC", price=usd_e8(60_000.01)), ts=E_DEC - 10 * MIN)
    ev = v.apply(Tick(), ts=E_DEC)
    v._check()
    st = one(ev, FutureSettled, symbol=DEC)
    assert st.price == 6_000_000_333_333 and st.positions == 3 and st.rounding == 2
    paid = {e.account: e.delta for e in of(ev, BalanceChanged, reason="settlement")}
    assert paid == {A: 99, B: -67, C: -34}
    assert {a: v.accounts[a].balances["USDT"] - bal0[a] for a in (A, B, C)} == paid
    assert sum(paid.values()) + (v.fees_collected["USDT"] - fees0) == 0
    (cancel,) = of(ev, OrderCancelled, account=A)
    assert cancel.cause == CancelCause.EXPIRED and cancel.symbol == DEC
    assert all(v.accounts[a].position_qty(DEC) == 0 for a in (A, B, C))
    # every family's first expiry was the same Friday: each lists its next
    assert {e.symbol for e in of(ev, FutureListed)} == {"BTC-25JUN27", "ETH-25JUN27", "SOL-26FEB27"}
    (info,) = v.apply(QueryInstruments())
    dec = next(i for i in info.instruments if i.symbol == DEC)
    assert (dec.state, dec.settlement_price) == ("settled", 6_000_000_333_333)
    (r,) = v.apply(NewOrder(account=A, symbol=DEC, side=Side.BUY, qty=1, price=600_000), ts=E_DEC + NS)
    assert r.reason == RejectReason.NOT_TRADING and "settled" in r.message
    r = v.apply(NewOrder(account=A, symbol="BTC-25JUN27", side=Side.BUY, qty=1, price=600_000,
                         tif="post_only"), ts=E_DEC + NS)[0]
    assert not isinstance(r, Rejected), r


# ------------------------------------------------------------------- mark


def test_mark_is_index_plus_a_bounded_ema_of_the_mid_premium_and_can_be_shocked():
    """A maker quotes BTC-26MAR27 at $60,090 / $60,110: mid $60,100, premium
    $100 over the $60,000 index. One index update (to the same $60,000):
    basis = 0 + (100 − 0) × 2 / 31 = $6.45161290 (floored in 1e-8 USD) →
    mark $60,006.45… → 600,065 ticks (half up). The perpetual's mark stays
    the index. ShockBasis +900 bps: basis 6.45 + 5,400 → bounded at 5 % of
    the index, $3,000 → mark $63,000."""
    v = venue()
    t = E_DEC - 50 * MIN
    v.apply(NewOrder(account=MAKER, symbol=MAR, side=Side.BUY, qty=10, price=600_900, tif="post_only"), ts=t)
    v.apply(NewOrder(account=MAKER, symbol=MAR, side=Side.SELL, qty=10, price=601_100, tif="post_only"), ts=t)
    ev = v.apply(SetIndexPrice(asset="BTC", price=usd_e8(60_000)), ts=t)
    mar = v.instruments[MAR]
    assert mar.basis == 10_000_000_000 * 2 // 31 == 645_161_290
    assert one(ev, MarkPrice, symbol=MAR).mark == 600_065
    assert one(ev, MarkPrice, symbol="BTC-PERP").mark == 600_000
    ev = v.apply(ShockBasis(symbol=MAR, change_bps=900), ts=t)
    assert mar.basis == usd_e8(3_000) and one(ev, MarkPrice, symbol=MAR).mark == 630_000
    (r,) = v.apply(ShockBasis(symbol="BTC-PERP", change_bps=10), ts=t)
    assert r.reason == RejectReason.INVALID_FIELD and "perpetual" in r.message


# ----------------------------------------------------------------- margin


def test_calendar_spread_portfolio_mm_below_either_leg_and_above_the_floor():
    """Long 1 BTC on BTC-PERP, short 1 BTC on BTC-26MAR27, both at $60,000.
    Cross: each leg's MM 0.5 % × $60,000 = $300, $600 for the pair. Portfolio:
    the scenarios net the legs (E_BTC = 300 − 300 = 0), the floor is 0.1 % ×
    $120,000 = $120, and the basis / calendar charge 0.05 % × min($60,000,
    $60,000) = $30: MM = $150, below either leg's $300, above the $120
    floor; explain shows the $30 basis term."""
    v = venue()
    v.apply(SetMarginMode(account=A, mode="portfolio"))
    trade(v, A, HOUSE, "BTC-PERP", 1_000, 600_000, E_DEC - 50 * MIN)
    trade(v, HOUSE, A, MAR, 1_000, 600_000, E_DEC - 50 * MIN)
    acct = v.margin.fresh(v.accounts[A])
    assert acct.mm == pytest.approx(150.0)
    assert acct.mm < 300.0 and acct.mm > 120.0
    (ex,) = v.apply(QueryExplain(account=A))
    assert ex.basis_charges == pytest.approx({"BTC": 30.0})
    assert ex.floor == pytest.approx(120.0)
    cross = next(c for c in ex.compare if c.mode == "cross")
    assert cross.mm == pytest.approx(600.0)
    res = v.risk_sweep()  # the vectorized sweep adds the same charge
    assert res.mm[list(res.ids).index(A)] == pytest.approx(150.0)


# ----------------------------------------------------- snapshots and replay


def test_snapshot_mid_window_then_expiry_equals_the_run_without_it():
    """A snapshot taken inside the TWAP window (after a basis shock, with
    positions) restores the futures' state; both venues then settle at the
    same price with the same events, bit for bit."""
    v = venue()
    t = E_DEC - 40 * MIN
    trade(v, A, B, DEC, 20, 600_000, t)
    v.apply(ShockBasis(symbol=MAR, change_bps=30), ts=t)
    v.apply(SetIndexPrice(asset="BTC", price=usd_e8(60_450)), ts=E_DEC - 25 * MIN)
    v.apply(Tick(), ts=E_DEC - 15 * MIN)
    data = snapshot.encode(snapshot.capture(v))
    w = snapshot.restore(futures_config(), snapshot.decode(data))
    assert snapshot.state_hash(w) == snapshot.state_hash(v)
    cmds = [(SetIndexPrice(asset="BTC", price=usd_e8(59_900)), E_DEC - 6 * MIN), (Tick(), E_DEC + 2 * NS)]
    out_v = [v.apply(c, ts=ts) for c, ts in cmds]
    out_w = [w.apply(c, ts=ts) for c, ts in cmds]
    assert msgspec.msgpack.encode(out_v) == msgspec.msgpack.encode(out_w)
    assert one(out_v[-1], FutureSettled, symbol=DEC).price == usd_e8(
        (60_000 * 5 + 60_450 * 19 + 59_900 * 6) / 30)
    assert snapshot.state_hash(w) == snapshot.state_hash(v)
    v._check()


def test_default_config_has_no_futures():
    """The default config's perpetual figures stay as they were: futures come
    from a config that lists them (docs/examples/futures.toml)."""
    v = Venue()
    assert v.state.futures == [] and all(i.kind == "perpetual" for i in v.instruments.values())
    assert copy.deepcopy(v.state.futures) == []


def test_journal_replay_reproduces_expiry_and_settlement(tmp_path):
    """Journal every command with its ``ts`` (as the server does), replay the
    journal offline with the same config: the same events, settlement and
    listing included, and the same final state."""
    from exchange_sim import journal, replay  # noqa: PLC0415

    jr = journal.Journal(tmp_path)
    v = Venue(futures_config())
    live = []

    def do(cmd, ts):
        jr.append(v.seq + 1, ts, cmd)
        live.append(v.apply(cmd, ts=ts))

    t = E_DEC - 45 * MIN
    for a in (HOUSE, A, B):
        do(Deposit(account=a, asset="USDT", amount=100_000 * U), t)
    do(NewOrder(account=B, symbol=DEC, side=Side.SELL, qty=7, price=600_000, tif="post_only"), t)
    do(NewOrder(account=A, symbol=DEC, side=Side.BUY, qty=7, price=600_000, tif="ioc"), t)
    do(NewOrder(account=A, symbol=DEC, side=Side.BUY, qty=3, price=599_000, tif="post_only"), t)
    do(SetIndexPrice(asset="BTC", price=usd_e8(60_123.45)), E_DEC - 12 * MIN)
    do(ShockBasis(symbol=MAR, change_bps=-25), E_DEC - 11 * MIN)
    do(Tick(), E_DEC + NS)
    jr.close()
    assert of(live[-1], FutureSettled) and of(live[-1], FutureListed)
    replayed = list(replay.replay(tmp_path, from_start=True, cfg=futures_config()))
    assert msgspec.msgpack.encode([evs for _, evs, _ in replayed]) == msgspec.msgpack.encode(live)
    assert snapshot.state_hash(replayed[-1][2]) == snapshot.state_hash(v)


def test_liquidation_closes_the_naked_leg_and_keeps_the_calendar_spread():
    """Portfolio, $6,456: the calendar spread of the margin test (long 1 BTC
    perpetual, short 1 BTC March future) and a naked long of 4,000 SOL lots
    (400 SOL at $150). SOL −10 % ($135): equity 6,456 − 6,000 = $456;
    E_SOL = 1 % × 54,000 = 540 beats every scenario and the floor, so MM =
    540 + the $30 basis charge = $570, ratio 0.80. Impacts: SOL 570 −
    (floor 120 + 30) = 420; the perpetual leg 570 − 330 = 240 (without it
    the short future is naked but hedges SOL: 0.3 × 540 + 0.7 × 240 = 330);
    the future leg less. SOL goes first, is re-ranked after each slice and
    stays first until the ratio is back at 1.05: the spread is not split
    (its legs' impacts, below SOL's, show why)."""
    from protocol.messages import LiquidationSlice, ShockPrice  # noqa: PLC0415

    v = venue()
    v.apply(Deposit(account=5, asset="USDT", amount=6_456 * U))
    v.apply(SetMarginMode(account=5, mode="portfolio"))
    t = E_DEC - 50 * MIN
    trade(v, 5, HOUSE, "BTC-PERP", 1_000, 600_000, t)
    trade(v, HOUSE, 5, MAR, 1_000, 600_000, t)
    trade(v, 5, HOUSE, "SOL-PERP", 4_000, 150_000, t)
    for k in range(1, 11):  # bids under the post-shock SOL mark, $0.01 apart
        v.apply(NewOrder(account=HOUSE, symbol="SOL-PERP", side=Side.BUY, qty=2_000, price=135_000 - 10 * k,
                         tif="post_only"), ts=t)
    ev = v.apply(ShockPrice(asset="SOL", change_bps=-1000), ts=t)
    v._check()
    sl = of(ev, LiquidationSlice, account=5)
    assert sl[0].impact == pytest.approx(420.0)
    assert sl and {s.symbol for s in sl} == {"SOL-PERP"}
    assert sl[-1].margin_ratio_after >= 1.05
    assert (v.accounts[5].position_qty("BTC-PERP"), v.accounts[5].position_qty(MAR)) == (1_000, -1_000)
    m = v.margin
    acct = m.fresh(v.accounts[5])
    impacts = dict(zip([i.symbol for i, _ in m.exposures(acct)], m.model(acct).impacts(m.exposures(acct))))
    assert impacts["SOL-PERP"] > impacts["BTC-PERP"] > impacts[MAR]


# ------------------------------------------------------------------ property

from hypothesis import given, settings  # noqa: E402
from hypothesis import strategies as st  # noqa: E402


@settings(max_examples=15, deadline=None)
@given(
    trades=st.lists(st.tuples(st.sampled_from((A, B, C)), st.sampled_from((A, B, C)), st.integers(1, 40),
                              st.integers(-300, 300)), min_size=1, max_size=12),
    path=st.lists(st.tuples(st.integers(1, 44), st.integers(-200, 200)), max_size=6),
)
def test_expiry_conserves_money_and_is_zero_sum_to_the_unit(trades, path):
    """Random trades among three accounts (with partial closes, so cost
    shares are rounded), a random index path through the TWAP window, then
    expiry: ``Venue._check()`` (money conserved per asset) holds at every
    step, the payouts plus the rounding booked to the fee ledger equal the
    positions' uPnL at the settlement price to the unit, and nobody holds
    the future afterwards."""
    v = venue()
    t = E_DEC - 45 * MIN
    for buyer, seller, lots, dticks in trades:
        if buyer == seller:
            continue
        trade(v, buyer, seller, DEC, lots, 600_000 + dticks * 10, t)
    v._check()
    for minute, bps in sorted(path):
        v.apply(SetIndexPrice(asset="BTC", price=v.assets["BTC"].index * (10_000 + bps) // 10_000),
                ts=E_DEC - 45 * MIN + minute * MIN)
        v._check()
    ins = v.instruments[DEC]
    holders = {a: (v.accounts[a].position_qty(DEC), v.accounts[a].positions[DEC].cost)
               for a in (A, B, C) if v.accounts[a].position_qty(DEC)}
    fees0 = v.fees_collected.get("USDT", 0)
    ev = v.apply(Tick(), ts=E_DEC)
    v._check()
    st_ = one(ev, FutureSettled, symbol=DEC)
    paid = {e.account: e.delta for e in of(ev, BalanceChanged, reason="settlement")}
    assert set(paid) == set(holders) and st_.positions == len(holders)
    exact_e8 = sum((q * st_.price - c * ins.tick_e8) * ins.value for q, c in holders.values())
    assert exact_e8 % ins.tick_e8 == 0
    assert sum(paid.values()) + (v.fees_collected.get("USDT", 0) - fees0) == exact_e8 // ins.tick_e8
    assert st_.rounding == v.fees_collected.get("USDT", 0) - fees0 and 0 <= st_.rounding < len(holders) + 1
    assert all(v.accounts[a].position_qty(DEC) == 0 for a in (A, B, C))


def test_client_markets_show_kind_expiry_state_and_settlement_price_in_decimal():
    """The client library's metadata (``clients.models.Markets``, built from
    the ``Instruments`` reply) carries each instrument's kind, expiry and
    state, and a settled future's price as a ``Decimal`` in USD."""
    from decimal import Decimal  # noqa: PLC0415

    from clients.models import Markets  # noqa: PLC0415

    v = venue()
    v.apply(Tick(), ts=E_DEC)
    (info,) = v.apply(QueryInstruments())
    mk = Markets(info)
    assert (mk["BTC-PERP"].kind, mk["BTC-PERP"].expiry_ns, mk["BTC-PERP"].state) == ("perpetual", None, "trading")
    dec = mk[DEC]
    assert (dec.kind, dec.expiry_ns, dec.state, dec.settlement_price) == ("future", E_DEC, "settled", Decimal(60_000))
    assert mk[MAR].state == "trading" and mk[MAR].ticks("60000.1") == 600_001


def test_ccxt_facade_lists_futures_with_ccxt_symbols_and_expiry():
    """The ccxt-style facade (offline, as tests/integration/test_ccxt.py
    does): a dated future is ``type: 'future'`` with the unified symbol
    ``BTC/USDT:USDT-270326`` (settle, then the expiry as YYMMDD), ``expiry``
    in ms, active while trading; the perpetual stays ``BTC/USDT:USDT``
    (and ``BTC/USDT`` still means the swap)."""
    from clients import ccxt  # noqa: PLC0415

    v = venue()
    v.apply(Tick(), ts=E_DEC)  # December settles, June lists
    ex = ccxt.exchangesim({})
    ex._set_markets(v.apply(QueryInstruments())[0])
    mar = ex.market("BTC/USDT:USDT-270326")
    assert (mar["id"], mar["type"], mar["future"], mar["swap"]) == (MAR, "future", True, False)
    assert (mar["expiry"], mar["expiryDatetime"], mar["active"]) == (
        date_ns("2027-03-26T08:00:00Z") // 1_000_000, "2027-03-26T08:00:00.000Z", True)
    assert ex.market(DEC)["active"] is False and ex.market("BTC-25JUN27")["active"] is True
    assert ex.market("BTC/USDT")["id"] == "BTC-PERP" and ex.market("BTC/USDT:USDT")["type"] == "swap"
