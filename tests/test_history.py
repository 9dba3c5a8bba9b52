"""Market and account history (core/history.py, docs/history.md): time on
events, candles, the 24-hour ticker, trades, funding, premium index, ended
orders, own trades, one order; bounded, in snapshots, rebuilt by replay,
and never part of the sequence.

Units (tests/units.py): BTC-PERP ticks of $0.1, lots of 0.001 BTC, 100 µUSDT
per tick×lot; the mark starts at 600_000 ticks ($60,000).
"""

from __future__ import annotations

import msgspec
import pytest
from venue_helpers import BTC, BTC_MARK, ETH, ETH_MARK, U, fund, one, place, rest, trade

from exchange_sim import config as config_mod
from exchange_sim import journal, replay, snapshot
from exchange_sim.core.history import MINUTE
from exchange_sim.venue import Venue
from protocol import messages as M
from protocol.messages import (
    PRICE_SCALE,
    CancelCause,
    CancelOrder,
    Fill,
    OrderStatus,
    RejectReason,
    SetIndexPrice,
    Side,
    Tick,
)

T0 = 1_780_012_800 * 10**9  # a venue time (ns): 2026-05-29 00:00 UTC, a day boundary
assert T0 % (1440 * MINUTE) == 0


def at(v: Venue, ts: int, cmd) -> list:
    return v.apply(cmd, ts)


def timed_trade(v: Venue, ts: int, qty: int, price: int, buyer: int = 1, seller: int = 2, symbol: str = BTC) -> list:
    """A maker sell rested and a taker buy crossing it, both at ``ts``."""
    at(v, ts, M.NewOrder(account=seller, symbol=symbol, side=Side.SELL, qty=qty, price=price, tif="post_only"))
    return at(v, ts, M.NewOrder(account=buyer, symbol=symbol, side=Side.BUY, qty=qty, price=price, tif="ioc"))


def venue(**history) -> Venue:
    cfg = config_mod.default()
    if history:
        cfg = msgspec.structs.replace(cfg, history=msgspec.structs.replace(cfg.history, **history))
    v = Venue(cfg)
    for a in (1, 2, 3):
        fund(v, a, USDT=1_000_000)
    return v


def q(v: Venue, cmd):
    (ans,) = v.query(cmd)
    return ans


# ------------------------------------------------------------------ time


def test_events_carry_the_venue_time_they_happened_at():
    v = venue()
    t1, t2, t3 = T0, T0 + 5 * 10**9, T0 + 9 * 10**9
    oid = one(at(v, t1, M.NewOrder(account=2, symbol=BTC, side=Side.SELL, qty=10, price=BTC_MARK)),
              M.OrderAccepted).order_id
    amended = one(at(v, t2, M.AmendOrder(account=2, order_id=oid, qty=5)), M.OrderAmended)
    evs = at(v, t3, M.NewOrder(account=1, symbol=BTC, side=Side.BUY, qty=8, price=BTC_MARK, tif="ioc"))
    assert one(evs, M.OrderAccepted).ts == t3 and amended.ts == t2
    assert {f.ts for f in evs if type(f) is Fill} == {t3} and one(evs, M.Trade).ts == t3
    assert one(evs, M.OrderCancelled).ts == t3  # the IOC's unfilled 3 lots
    # a stop triggered by the mark, and funding at the next 8-hour boundary
    at(v, t3, M.NewOrder(account=1, symbol=BTC, side=Side.SELL, qty=5, type="stop_market",
                         stop_price=BTC_MARK - 100, reduce_only=True))
    rest(v, 3, "buy", 100, BTC_MARK - 500)
    t4 = t3 + 10**9
    evs = at(v, t4, SetIndexPrice(asset="BTC", price=(BTC_MARK - 200) * PRICE_SCALE // 10))
    assert one(evs, M.OrderTriggered).ts == t4
    boundary = (t4 // (8 * 3600 * 10**9) + 1) * 8 * 3600 * 10**9
    evs = at(v, boundary, Tick())
    assert {e.ts for e in evs if type(e) in (M.FundingPayment, M.FundingRate)} == {boundary}


def test_untimed_commands_leave_ts_at_zero_and_off_the_wire():
    v = venue()
    evs = trade(v, 1, 2, 5, BTC_MARK)
    assert all(e.ts == 0 for e in evs if type(e) in (Fill, M.Trade, M.OrderAccepted))
    assert b"ts" not in msgspec.msgpack.encode(one(evs, M.Trade))  # a default is omitted


# --------------------------------------------------------------- candles


def test_one_minute_candles_are_ohlcv_of_the_trades_in_each_minute():
    """Minute 0: trades at 600_000 (2 lots), 600_050 (3), 599_900 (1);
    minute 1: one at 600_010 (4). Quote volume = Σ price × lots × 100 µUSDT."""
    v = venue()
    timed_trade(v, T0 + 1, 2, BTC_MARK)
    timed_trade(v, T0 + 20 * 10**9, 3, BTC_MARK + 50)
    timed_trade(v, T0 + 59 * 10**9, 1, BTC_MARK - 100)
    timed_trade(v, T0 + MINUTE, 4, BTC_MARK + 10)
    c0, c1 = q(v, M.QueryCandles(symbol=BTC)).candles
    assert (c0.open_time, c0.close_time) == (T0, T0 + MINUTE)
    assert (c0.open, c0.high, c0.low, c0.close, c0.volume, c0.trades) == (600_000, 600_050, 599_900, 599_900, 6, 3)
    assert c0.quote_volume == (600_000 * 2 + 600_050 * 3 + 599_900 * 1) * 100
    assert (c1.open_time, c1.open, c1.close, c1.volume) == (T0 + MINUTE, 600_010, 600_010, 4)
    # the 5-minute candle is both minutes together
    (c5,) = q(v, M.QueryCandles(symbol=BTC, interval="5m")).candles
    assert (c5.open, c5.high, c5.low, c5.close, c5.volume, c5.trades) == (600_000, 600_050, 599_900, 600_010, 10, 4)
    assert c5.open_time == T0 - T0 % (5 * MINUTE)


def test_wider_candles_roll_over_and_start_end_limit_select_like_binance():
    v = venue()
    for i in range(12):  # one trade a minute for 12 minutes, price rising 10 ticks a minute
        timed_trade(v, T0 + i * MINUTE, 1, BTC_MARK + 10 * i)
    five = q(v, M.QueryCandles(symbol=BTC, interval="5m")).candles
    base = T0 - T0 % (5 * MINUTE)
    assert [c.open_time for c in five] == sorted({base + ((T0 + i * MINUTE - base) // (5 * MINUTE)) * 5 * MINUTE
                                                  for i in range(12)})
    assert sum(c.volume for c in five) == 12 and five[-1].close == BTC_MARK + 110
    ones = q(v, M.QueryCandles(symbol=BTC, limit=3)).candles
    assert [c.open for c in ones] == [BTC_MARK + 90, BTC_MARK + 100, BTC_MARK + 110]  # the last 3
    ones = q(v, M.QueryCandles(symbol=BTC, start=T0 + 2 * MINUTE, limit=2)).candles
    assert [c.open_time for c in ones] == [T0 + 2 * MINUTE, T0 + 3 * MINUTE]  # the first 2 from start
    ones = q(v, M.QueryCandles(symbol=BTC, end=T0 + MINUTE)).candles
    assert [c.open_time for c in ones] == [T0, T0 + MINUTE]
    (rej,) = v.query(M.QueryCandles(symbol=BTC, start=T0 + MINUTE, end=T0))
    assert rej.reason is RejectReason.INVALID_FIELD and "after" in rej.message


def test_mark_and_index_candles_follow_the_index_price():
    v = venue()
    at(v, T0, SetIndexPrice(asset="BTC", price=61_000 * PRICE_SCALE))
    at(v, T0 + 10**9, SetIndexPrice(asset="BTC", price=59_000 * PRICE_SCALE))
    at(v, T0 + 2 * 10**9, SetIndexPrice(asset="BTC", price=60_500 * PRICE_SCALE))
    (mark,) = q(v, M.QueryCandles(symbol=BTC, source="mark")).candles
    assert (mark.open, mark.high, mark.low, mark.close, mark.volume) == (610_000, 610_000, 590_000, 605_000, 0)
    (index,) = q(v, M.QueryCandles(symbol=BTC, source="index")).candles
    assert (index.open, index.low, index.close) == (61_000 * PRICE_SCALE, 59_000 * PRICE_SCALE, 60_500 * PRICE_SCALE)
    assert q(v, M.QueryCandles(symbol=BTC)).candles == []  # no trade, no trade candle


# ---------------------------------------------------------------- ticker


def test_ticker_is_a_rolling_24_hours_and_last_is_the_last_trade_not_the_mark():
    """A trade at 59,000 more than a day ago falls out of the window; then
    60,000 (2 lots) and 60,300 (1 lot) in it: open 600_000, last 603_000,
    change +3_000 ticks = +50 bps, VWAP = (600_000×2 + 603_000) / 3 = 601_000."""
    v = venue()
    timed_trade(v, T0, 1, 590_000)
    later = T0 + 1440 * MINUTE + 30 * 10**9
    timed_trade(v, later, 2, 600_000)
    timed_trade(v, later + 10**9, 1, 603_000)
    at(v, later + 2 * 10**9, SetIndexPrice(asset="BTC", price=62_000 * PRICE_SCALE))  # mark 620_000
    rest(v, 3, "buy", 7, 599_000)
    t = q(v, M.QueryTicker(symbol=BTC))
    assert (t.open, t.high, t.low, t.last, t.volume, t.trades) == (600_000, 603_000, 600_000, 603_000, 3, 2)
    assert (t.change, t.change_bps, t.vwap) == (3_000, 50, 601_000.0)
    assert t.quote_volume == (600_000 * 2 + 603_000) * 100
    assert (t.mark, t.index, t.best_bid, t.best_bid_qty, t.best_ask) == (620_000, 62_000 * PRICE_SCALE, 599_000, 7, None)
    assert t.close_time == later + 2 * 10**9
    tickers = q(v, M.QueryTicker())
    assert [x.symbol for x in tickers.tickers] == list(v.instruments) and tickers.tickers[0] == t


# ---------------------------------------------------------------- trades


def test_recent_trades_newest_last_and_bounded_by_config():
    v = venue(trades_per_symbol=3)
    for i in range(5):
        timed_trade(v, T0 + i, 1, BTC_MARK + i)
    trades = q(v, M.QueryTrades(symbol=BTC)).trades
    assert [t.price for t in trades] == [BTC_MARK + 2, BTC_MARK + 3, BTC_MARK + 4]
    assert [t.ts for t in trades] == [T0 + 2, T0 + 3, T0 + 4]
    assert [t.price for t in q(v, M.QueryTrades(symbol=BTC, limit=1)).trades] == [BTC_MARK + 4]
    assert q(v, M.QueryTrades(symbol=ETH)).trades == []
    (rej,) = v.query(M.QueryTrades(symbol="NOPE-PERP"))
    assert rej.reason is RejectReason.UNKNOWN_SYMBOL


# ------------------------------------------------------- funding, premium


def test_funding_history_and_premium_index():
    """A bid 300 ticks over the mark: premium = 300 / 600_000 = 0.05%, so
    the rate is 0.05% + clamp(0.01% − 0.05%, ±0.05%) = 0.01% = 10_000 e-8."""
    v = venue()
    interval = 8 * 3600 * 10**9
    at(v, T0, Tick())
    rest(v, 3, "buy", 1, BTC_MARK + 300)
    p = q(v, M.QueryPremiumIndex(symbol=BTC))
    assert (p.mark, p.index, p.last_funding_rate_e8, p.predicted_funding_rate_e8) == (
        BTC_MARK, 60_000 * PRICE_SCALE, 0, 10_000)
    first = (T0 // interval + 1) * interval
    assert p.next_funding_time == first and p.interest_rate_e8 == 10_000 and p.ts == T0
    at(v, first, Tick())
    at(v, first + interval, Tick())
    rates = q(v, M.QueryFundingHistory(symbol=BTC)).rates
    assert [(r.ts, r.rate_e8) for r in rates] == [(first, 10_000), (first + interval, 10_000)]
    assert [r.ts for r in q(v, M.QueryFundingHistory(symbol=BTC, start=first + 1)).rates] == [first + interval]
    p = q(v, M.QueryPremiumIndex(symbol=BTC))
    assert p.last_funding_rate_e8 == 10_000 and p.next_funding_time == first + 2 * interval
    everyone = q(v, M.QueryFundingHistory())
    assert {r.symbol for r in everyone.rates} == {s for s, i in v.instruments.items() if i.funded}
    assert [r.ts for r in everyone.rates] == sorted(r.ts for r in everyone.rates)
    assert {x.symbol for x in q(v, M.QueryPremiumIndex()).items} == {s for s, i in v.instruments.items() if i.funded}


# ----------------------------------------------------------- order history


def test_ended_orders_with_their_final_state():
    v = venue()
    filled = one(timed_trade(v, T0, 4, BTC_MARK), M.OrderAccepted).order_id
    maker = filled - 1
    # partly filled then cancelled by its owner
    part = rest(v, 2, "sell", 10, BTC_MARK + 10)
    at(v, T0 + 1, M.NewOrder(account=1, symbol=BTC, side=Side.BUY, qty=3, price=BTC_MARK + 10, tif="ioc"))
    at(v, T0 + 2, CancelOrder(account=2, order_id=part))
    # an IOC whose rest expires, with a client id
    ioc = one(at(v, T0 + 3, M.NewOrder(account=1, symbol=BTC, side=Side.BUY, qty=5, price=BTC_MARK - 1000,
                                       tif="ioc", client_order_id="ioc-1")), M.OrderAccepted).order_id
    history = q(v, M.QueryOrderHistory(account=1)).orders
    by_id = {o.order_id: o for o in history}
    f = by_id[filled]
    assert (f.status, f.qty, f.filled, f.avg_price, f.time, f.update_time) == (OrderStatus.FILLED, 4, 4,
                                                                               BTC_MARK, T0, T0)
    e = by_id[ioc]
    assert (e.status, e.cause, e.filled, e.client_order_id) == (OrderStatus.EXPIRED, CancelCause.IOC, 0, "ioc-1")
    c = {o.order_id: o for o in q(v, M.QueryOrderHistory(account=2)).orders}
    assert (c[part].status, c[part].cause, c[part].filled, c[part].qty, c[part].update_time) == (
        OrderStatus.CANCELLED, CancelCause.USER, 3, 10, T0 + 2)
    assert c[maker].status is OrderStatus.FILLED
    # symbol, time and limit filters (by end time)
    assert [o.order_id for o in q(v, M.QueryOrderHistory(account=1, start=T0 + 1)).orders] == [part + 1, ioc]
    assert [o.order_id for o in q(v, M.QueryOrderHistory(account=1, limit=1)).orders] == [ioc]
    assert q(v, M.QueryOrderHistory(account=1, symbol=ETH)).orders == []
    v._check()


def test_a_stop_rejected_after_acceptance_is_in_the_history_as_rejected():
    """A stop-market buy accepted with little collateral, the balance then
    withdrawn: when the mark triggers it, the pre-trade check refuses it."""
    v = venue()
    fund(v, 9, USDT=100)
    stop = one(place(v, 9, "buy", 30, None, type="stop_market", stop_price=BTC_MARK + 100), M.OrderAccepted).order_id
    v.apply(M.Withdraw(account=9, asset="USDT", amount=99 * U))
    rest(v, 2, "sell", 50, BTC_MARK + 300)
    evs = at(v, T0, SetIndexPrice(asset="BTC", price=(BTC_MARK + 200) * PRICE_SCALE // 10))
    assert one(evs, M.Rejected).order_id == stop
    (o,) = q(v, M.QueryOrderHistory(account=9)).orders
    assert (o.order_id, o.status, o.triggered, o.update_time) == (stop, OrderStatus.REJECTED, True, T0)
    assert "triggered but" in o.reject_reason
    v._check()


def test_query_order_open_or_ended_by_id_or_client_id():
    v = venue()
    oid = rest(v, 2, "sell", 10, BTC_MARK, client_order_id="maker-1")
    at(v, T0, M.NewOrder(account=1, symbol=BTC, side=Side.BUY, qty=4, price=BTC_MARK, tif="ioc"))
    o = q(v, M.QueryOrder(account=2, client_order_id="maker-1"))
    assert (o.order_id, o.status, o.filled, o.qty, o.update_time) == (oid, OrderStatus.PARTIALLY_FILLED, 4, 10, T0)
    at(v, T0 + 1, M.AmendOrder(account=2, order_id=oid, qty=2))
    assert q(v, M.QueryOrder(account=2, order_id=oid)).qty == 6  # 4 filled + 2 remaining
    at(v, T0 + 2, CancelOrder(account=2, order_id=oid))
    o = q(v, M.QueryOrder(account=2, client_order_id="maker-1"))
    assert (o.status, o.cause, o.filled, o.qty) == (OrderStatus.CANCELLED, CancelCause.USER, 4, 6)
    (rej,) = v.query(M.QueryOrder(account=1, order_id=oid))  # not account 1's
    assert rej.reason is RejectReason.UNKNOWN_ORDER
    (rej,) = v.query(M.QueryOrder(account=2))
    assert rej.reason is RejectReason.INVALID_FIELD


def test_order_and_trade_history_are_bounded_per_account():
    v = venue(orders_per_account=3, trades_per_account=2)
    for i in range(5):
        timed_trade(v, T0 + i, 1, BTC_MARK)
    assert len(q(v, M.QueryOrderHistory(account=1)).orders) == 3
    assert [f.ts for f in q(v, M.QueryMyTrades(account=1)).trades] == [T0 + 3, T0 + 4]
    first = q(v, M.QueryOrderHistory(account=1)).orders[0].order_id
    (rej,) = v.query(M.QueryOrder(account=1, order_id=first - 4))  # ended, and dropped
    assert rej.reason is RejectReason.UNKNOWN_ORDER and "last 3 ended orders" in rej.message


def test_my_trades_carry_fee_realized_pnl_and_liquidity():
    """Buy 10 lots at 600_000 then sell them at 600_100 as taker: realized
    PnL = 10 × 100 ticks × 100 µUSDT = 100_000 µUSDT; taker fee 0.05% of
    600_100 × 10 × 100 µUSDT = 300_050."""
    v = venue()
    timed_trade(v, T0, 10, BTC_MARK, buyer=1, seller=2)
    at(v, T0 + 1, M.NewOrder(account=3, symbol=BTC, side=Side.BUY, qty=10, price=BTC_MARK + 100, tif="post_only"))
    at(v, T0 + 2, M.NewOrder(account=1, symbol=BTC, side=Side.SELL, qty=10, price=BTC_MARK + 100, tif="ioc"))
    buy, sell = q(v, M.QueryMyTrades(account=1)).trades
    assert (buy.liquidity, buy.realized_pnl, sell.liquidity, sell.realized_pnl, sell.fee) == (
        "taker", 0, "taker", 100_000, 300_050)
    assert q(v, M.QueryMyTrades(account=3)).trades[0].liquidity == "maker"
    assert [f.ts for f in q(v, M.QueryMyTrades(account=1, start=T0 + 1)).trades] == [T0 + 2]
    (rej,) = v.query(M.QueryMyTrades(account=77))
    assert rej.reason is RejectReason.UNKNOWN_ACCOUNT


# ------------------------------------------------ durability, determinism


def _busy() -> Venue:
    v = venue()
    for i in range(30):
        timed_trade(v, T0 + i * 17 * 10**9, 1 + i % 4, BTC_MARK + (i % 7) * 10)
        timed_trade(v, T0 + i * 17 * 10**9, 2, ETH_MARK - i, buyer=2, seller=3, symbol=ETH)
        if i % 9 == 0:
            at(v, T0 + i * 17 * 10**9, SetIndexPrice(asset="BTC", price=(60_000 + i) * PRICE_SCALE))
    rest(v, 3, "buy", 5, BTC_MARK - 900, client_order_id="still-open")
    at(v, T0 + 10 * 3600 * 10**9, Tick())  # a funding settlement
    return v


ALL_QUERIES = (
    M.QueryTrades(symbol=BTC), M.QueryCandles(symbol=BTC, interval="1h"), M.QueryCandles(symbol=BTC, source="mark"),
    M.QueryTicker(), M.QueryFundingHistory(), M.QueryPremiumIndex(), M.QueryOrderHistory(account=2),
    M.QueryMyTrades(account=3), M.QueryOrder(account=3, client_order_id="still-open"),
)


def test_history_survives_a_snapshot_and_queries_change_nothing():
    v = _busy()
    seq, digest = v.seq, snapshot.state_hash(v)
    answers = [v.query(c) for c in ALL_QUERIES]
    assert (v.seq, snapshot.state_hash(v)) == (seq, digest)
    assert all(type(a[0]) is not M.Rejected for a in answers), answers
    restored = snapshot.restore(v.state.config, snapshot.decode(snapshot.encode(snapshot.capture(v))))
    assert snapshot.state_hash(restored) == digest
    assert [restored.query(c) for c in ALL_QUERIES] == answers
    restored._check()
    # and it goes on recording in step with the original
    for x in (v, restored):
        timed_trade(x, T0 + 11 * 3600 * 10**9, 3, BTC_MARK)
    assert snapshot.state_hash(restored) == snapshot.state_hash(v)


def test_an_old_snapshot_without_history_still_loads_and_its_open_orders_end_in_the_history():
    v = _busy()
    state = msgspec.structs.replace(snapshot.capture(v), history=None)
    restored = snapshot.restore(v.state.config, snapshot.decode(snapshot.encode(state)))
    assert q(restored, M.QueryTrades(symbol=BTC)).trades == []
    restored._check()  # every open order has its row
    (oid,) = [o for o in restored.accounts[3].orders]
    restored.apply(CancelOrder(account=3, client_order_id="still-open"))
    o = q(restored, M.QueryOrder(account=3, order_id=oid))
    assert (o.status, o.qty, o.price, o.client_order_id) == (OrderStatus.CANCELLED, 5, BTC_MARK - 900, "still-open")


class _Clocked(Venue):
    """Journals each command with its venue time first, as the server does."""

    def __init__(self, directory):
        super().__init__()
        self.journal = journal.Journal(directory)

    def apply(self, command, ts=None):
        ts = max(ts or 0, self.now)
        self.journal.append(self.seq + 1, ts, command)
        return super().apply(command, ts)


def test_journal_replay_rebuilds_the_same_history(tmp_path):
    v = _Clocked(tmp_path)
    for a in (1, 2, 3):
        fund(v, a, USDT=1_000_000)
    for i in range(20):
        timed_trade(v, T0 + i * 31 * 10**9, 1 + i % 3, BTC_MARK + i)
    rest(v, 3, "buy", 5, BTC_MARK - 900, client_order_id="still-open")
    at(v, T0 + 9 * 3600 * 10**9, Tick())
    v.journal.close()
    recovered, _, replayed = replay.recover(tmp_path)
    assert replayed == v.seq and snapshot.state_hash(recovered) == snapshot.state_hash(v)
    for c in ALL_QUERIES:
        assert recovered.query(c) == v.query(c), c


def test_apply_of_a_history_query_answers_as_query_does():
    v = _busy()
    for c in ALL_QUERIES:
        assert v.apply(c) == v.query(c)


def test_history_can_be_switched_off_and_its_queries_say_so():
    v = venue(enabled=False)
    timed_trade(v, T0, 2, BTC_MARK)
    rest(v, 3, "buy", 5, BTC_MARK - 900)
    for c in ALL_QUERIES[:-1]:
        (rej,) = v.query(c)
        assert rej.reason is RejectReason.NOT_ALLOWED and "enabled = false" in rej.message, c
    assert v.history.live == {} and not v.history.my_trades
    v._check()
