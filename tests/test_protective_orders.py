"""Protective orders through ``Venue.apply`` (docs/adr/0011-protective-orders.md):
take-profit (market and limit), trailing stops, mark- or last-price
triggers, close-position orders and take-profit / stop-loss attached to an
entry, with every reject they can give shown to change nothing.

Prices are BTC-PERP ticks (0.1 USDT; mark 600_000 = $60,000), quantities
lots (0.001 BTC).
"""

from __future__ import annotations

import random

import pytest
from venue_helpers import (
    BTC,
    BTC_MARK,
    MAKER,
    accepted_id,
    assert_rejected,
    fund,
    make_venue,
    of,
    one,
    open_orders,
    place,
    position,
    rest,
    set_index,
    trade,
)
from venue_helpers import snapshot as observable

from exchange_sim import snapshot
from protocol.messages import (
    AttachedOrder,
    CancelCause,
    Fill,
    NewOrder,
    OrderAccepted,
    OrderAmended,
    OrderCancelled,
    OrderTriggered,
    OrderType,
    Deposit,
    Rejected,
    SetIndexPrice,
    ShockPrice,
    WorkingType,
)
from protocol.messages import RejectReason as R

P = BTC_MARK
LAST = WorkingType.CONTRACT_PRICE


def N(**kw) -> NewOrder:
    base = dict(account=1, symbol=BTC, side="sell", qty=10)
    base.update(kw)
    return NewOrder(**base)


def long_10(v) -> None:
    """Account 1 long 10 lots at P (account 2 short)."""
    trade(v, 1, 2, 10, P)
    assert position(v, 1).qty == 10


def mark(v, ticks: int) -> list:
    """Move BTC's mark to ``ticks`` (the mark follows the index, 1 tick = $0.1)."""
    return set_index(v, "BTC", f"{ticks / 10:.1f}")


# ============================================================ take-profit


def test_sell_take_profit_waits_for_the_price_to_rise_then_sells_at_market(v):
    long_10(v)
    rest(v, MAKER, "buy", 10, P + 400)
    tp = accepted_id(place(v, 1, "sell", 10, type="take_profit_market", stop_price=P + 500, reduce_only=True))
    (view,) = open_orders(v, 1)
    assert (view.type, view.stop_price, view.working_type) == (OrderType.TAKE_PROFIT_MARKET, P + 500, WorkingType.MARK_PRICE)
    assert of(mark(v, P - 3000), OrderTriggered) == []  # a fall never triggers a sell take-profit
    assert of(mark(v, P + 499), OrderTriggered) == []
    events = mark(v, P + 500)
    assert (one(events, OrderTriggered).order_id, one(events, OrderTriggered).price) == (tp, P + 500)
    assert one(events, Fill, account=1).price == P + 400
    assert position(v, 1) is None
    v._check()


def test_buy_take_profit_triggers_when_the_price_falls_to_it(v):
    trade(v, 2, 1, 10, P)  # account 1 short 10
    rest(v, MAKER, "sell", 10, P - 400)
    tp = accepted_id(place(v, 1, "buy", 10, type="take_profit_market", stop_price=P - 500, reduce_only=True))
    assert of(mark(v, P + 3000), OrderTriggered) == []
    events = mark(v, P - 500)
    assert one(events, OrderTriggered).order_id == tp
    assert position(v, 1) is None


def test_take_profit_limit_becomes_a_resting_limit_order(v):
    long_10(v)
    tp = accepted_id(place(v, 1, "sell", 10, P + 900, type="take_profit_limit", stop_price=P + 500))
    events = mark(v, P + 600)
    assert one(events, OrderTriggered).order_id == tp
    (view,) = open_orders(v, 1)
    assert (view.order_id, view.type, view.price) == (tp, OrderType.LIMIT, P + 900)


@pytest.mark.parametrize("otype, side, trigger", [
    ("take_profit_market", "sell", P), ("take_profit_market", "sell", P - 1),
    ("take_profit_market", "buy", P), ("take_profit_market", "buy", P + 1),
    ("stop_market", "sell", P + 1), ("stop_market", "buy", P - 1),
])
def test_a_trigger_on_the_wrong_side_of_the_market_is_refused(v, otype, side, trigger):
    rej = assert_rejected(v, N(side=side, type=otype, stop_price=trigger), R.INVALID_FIELD)
    assert "would trigger immediately at mark 60,000.0 USDT" in rej.message


def test_take_profit_fields_are_checked(v):
    assert_rejected(v, N(type="take_profit_market"), R.MISSING_STOP_PRICE)
    assert_rejected(v, N(type="take_profit_limit", stop_price=P + 500), R.MISSING_PRICE)
    assert_rejected(v, N(type="take_profit_market", stop_price=P + 500, price=P), R.INVALID_FIELD)
    assert_rejected(v, N(type="take_profit_market", stop_price=P + 500, callback_bps=100), R.INVALID_FIELD)
    assert_rejected(v, N(type="take_profit_market", stop_price=P + 500, working_type="bogus"), R.INVALID_FIELD)
    assert_rejected(v, N(type="limit", price=P, working_type=LAST), R.INVALID_FIELD)


# ========================================================== working type


def test_contract_price_stop_triggers_on_the_last_trade_not_the_mark(v):
    long_10(v)  # last trade P
    stop = accepted_id(place(v, 1, "sell", 10, type="stop_market", stop_price=P - 100, working_type=LAST,
                             reduce_only=True))
    assert open_orders(v, 1)[0].working_type == LAST
    # the mark falls far below the stop: a last-price stop does not care
    assert of(mark(v, P - 2000), OrderTriggered) == []
    mark(v, P)
    rest(v, MAKER, "buy", 10, P - 200)
    # a trade at P - 150 moves the last price through the stop: it fires after that trade
    rest(v, 3, "buy", 1, P - 150)
    events = place(v, 2, "sell", 1, P - 150, tif="ioc")
    trig = one(events, OrderTriggered)
    assert (trig.order_id, trig.price, trig.working_type, trig.mark) == (stop, P - 150, LAST, P)
    assert events.index(trig) > events.index(one(events, Fill, account=2))
    assert one(events, Fill, account=1).price == P - 200
    assert position(v, 1) is None
    v._check()


def test_mark_price_stop_ignores_trades(v):
    long_10(v)
    place(v, 1, "sell", 10, type="stop_market", stop_price=P - 100, reduce_only=True)
    rest(v, 3, "buy", 1, P - 500)
    events = place(v, 2, "sell", 1, P - 500, tif="ioc")
    assert of(events, OrderTriggered) == []
    assert of(mark(v, P - 100), OrderTriggered) != []


def test_contract_price_needs_a_trade_first(v):
    rej = assert_rejected(v, N(type="stop_market", stop_price=P - 100, working_type=LAST), R.NO_MARK_PRICE)
    assert "no trade yet" in rej.message


def test_contract_price_take_profit_wrong_side_uses_the_last_price(v):
    long_10(v)
    mark(v, P + 1000)  # mark above the trigger, last still P: the order is valid
    accepted_id(place(v, 1, "sell", 10, type="take_profit_market", stop_price=P + 500, working_type=LAST))
    rej = assert_rejected(v, N(type="take_profit_market", stop_price=P, working_type=LAST), R.INVALID_FIELD)
    assert "at last price 60,000.0 USDT" in rej.message


# ========================================================= trailing stop


def test_trailing_stop_follows_the_high_and_fires_on_the_retrace(v):
    long_10(v)
    rest(v, MAKER, "buy", 10, P - 5000)
    ts = accepted_id(place(v, 1, "sell", 10, type="trailing_stop_market", callback_bps=100, reduce_only=True))
    assert open_orders(v, 1)[0].trail_best == P  # trails from now
    mark(v, P + 6000)  # new high 606_000: trigger 599_940
    assert open_orders(v, 1)[0].trail_best == P + 6000
    assert of(mark(v, 599_941), OrderTriggered) == []  # retraced 0.99 %: not yet
    assert of(mark(v, P + 3000), OrderTriggered) == []  # the best stays the high
    events = mark(v, 599_940)  # 1 % below 606_000
    assert one(events, OrderTriggered).order_id == ts
    assert position(v, 1) is None
    v._check()


def test_buy_trailing_stop_follows_the_low(v):
    trade(v, 2, 1, 10, P)  # short 10
    rest(v, MAKER, "sell", 10, P + 5000)
    ts = accepted_id(place(v, 1, "buy", 10, type="trailing_stop_market", callback_bps=200))
    mark(v, 590_000)  # low: trigger 601_800
    assert of(mark(v, 601_799), OrderTriggered) == []
    assert one(mark(v, 601_800), OrderTriggered).order_id == ts


def test_trailing_stop_waits_for_its_activation_price(v):
    long_10(v)
    rest(v, MAKER, "buy", 10, P - 5000)
    ts = accepted_id(place(v, 1, "sell", 10, type="trailing_stop_market", callback_bps=100, activation_price=P + 1000))
    assert open_orders(v, 1)[0].trail_best is None  # not active
    # a 1 % fall before activation does nothing
    assert of(mark(v, P - 1000), OrderTriggered) == []
    mark(v, P + 1000)  # activates, best 601_000
    assert open_orders(v, 1)[0].trail_best == P + 1000
    assert of(mark(v, 594_991), OrderTriggered) == []
    assert one(mark(v, 594_990), OrderTriggered).order_id == ts


def test_trailing_stop_on_the_last_price(v):
    long_10(v)
    ts = accepted_id(place(v, 1, "sell", 5, type="trailing_stop_market", callback_bps=10, working_type=LAST))
    assert open_orders(v, 1)[0].trail_best == P
    mark(v, P - 3000)  # the mark is not watched
    assert [o.order_id for o in open_orders(v, 1)] == [ts]
    rest(v, MAKER, "buy", 10, P - 1000)
    rest(v, 3, "buy", 1, P - 599)
    events = place(v, 2, "sell", 1, P - 599, tif="ioc")  # last 599_401: retraced less than 0.1 %
    assert one(events, Fill, account=2).price == P - 599 and of(events, OrderTriggered) == []
    rest(v, 3, "buy", 1, P - 600)
    events = place(v, 2, "sell", 1, P - 600, tif="ioc")  # last 599_400: 0.1 % below 600_000
    assert one(events, OrderTriggered).order_id == ts
    assert position(v, 1).qty == 5


@pytest.mark.parametrize("kw, reason", [
    (dict(callback_bps=9), R.INVALID_FIELD),
    (dict(callback_bps=1001), R.INVALID_FIELD),
    (dict(), R.INVALID_FIELD),
    (dict(callback_bps=100, stop_price=P - 100), R.INVALID_FIELD),
    (dict(callback_bps=100, activation_price=P), R.INVALID_FIELD),  # would activate at once
    (dict(callback_bps=100, activation_price=P - 100), R.INVALID_FIELD),
    (dict(callback_bps=100, price=P), R.INVALID_FIELD),
])
def test_trailing_stop_fields_are_checked(v, kw, reason):
    rej = assert_rejected(v, N(type="trailing_stop_market", **kw), reason)
    if "callback_bps" not in kw or kw["callback_bps"] in (9, 1001):
        assert "10..1000" in rej.message


# ========================================================= close position


def test_close_position_closes_the_whole_position_at_trigger(v):
    long_10(v)
    stop = accepted_id(place(v, 1, "sell", None, type="stop_market", stop_price=P - 500, close_position=True))
    (view,) = open_orders(v, 1)
    assert (view.close_position, view.qty, view.reduce_only) == (True, 0, True)
    trade(v, 1, 2, 5, P)  # the position grows to 15 after the order was placed
    rest(v, MAKER, "buy", 100, P - 600)
    events = mark(v, P - 500)
    assert one(events, OrderTriggered).order_id == stop
    assert one(events, Fill, account=1).qty == 15
    assert position(v, 1) is None
    v._check()


def test_close_position_is_cancelled_when_the_position_is_closed_otherwise(v):
    long_10(v)
    stop = accepted_id(place(v, 1, "sell", None, type="take_profit_market", stop_price=P + 500, close_position=True))
    events = trade(v, 2, 1, 10, P)  # account 1 sells its 10: flat
    assert one(events, OrderCancelled, order_id=stop).cause == CancelCause.REDUCE_ONLY
    assert open_orders(v, 1) == []


@pytest.mark.parametrize("kw, reason, text", [
    (dict(side="sell"), R.REDUCE_ONLY_WOULD_INCREASE, "no long BTC-PERP position to close"),
    (dict(side="buy", stop_price=P + 500), R.REDUCE_ONLY_WOULD_INCREASE, "no short"),
    (dict(qty=10), R.INVALID_FIELD, "takes no qty"),
    (dict(reduce_only=True), R.INVALID_FIELD, "implies reduce_only"),
    (dict(type="stop_limit", price=P - 600), R.INVALID_FIELD, "not stop_limit"),
])
def test_close_position_rejects(v, kw, reason, text):
    trade(v, 2, 3, 10, P)  # someone else's position only
    base = dict(side="sell", qty=None, type="stop_market", stop_price=P - 500, close_position=True)
    base.update(kw)
    assert text in assert_rejected(v, N(**base), reason).message


def test_a_missing_qty_is_refused_without_close_position(v):
    assert_rejected(v, N(qty=None, price=P), R.BAD_LOT)
    assert_rejected(v, N(qty=None, type="stop_market", stop_price=P - 500), R.BAD_LOT)


# ==================================================== attached TP / SL


def _entry(v, qty=10, price=P, **kw):
    return place(v, 1, "buy", qty, price, take_profit=AttachedOrder(trigger_price=P + 1000),
                 stop_loss=AttachedOrder(trigger_price=P - 1000), **kw)


def test_attached_orders_are_placed_as_the_entry_fills_and_grow_with_it(v):
    events = _entry(v)
    entry = accepted_id(events)
    acc = one(events, OrderAccepted)
    assert (acc.take_profit.trigger_price, acc.stop_loss.trigger_price) == (P + 1000, P - 1000)
    assert [o.order_id for o in open_orders(v, 1)] == [entry]  # nothing attached before a fill
    events = place(v, 2, "sell", 4, P, tif="ioc")  # entry fills 4 as maker
    tp, sl = of(events, OrderAccepted, account=1)
    assert (tp.type, tp.side, tp.qty, tp.stop_price, tp.reduce_only, tp.parent_order_id) == (
        OrderType.TAKE_PROFIT_MARKET, "sell", 4, P + 1000, True, entry)
    assert (sl.type, sl.qty, sl.stop_price, sl.parent_order_id) == (OrderType.STOP_MARKET, 4, P - 1000, entry)
    events = place(v, 2, "sell", 6, P, tif="ioc")  # the rest fills: both grow to 10
    assert {(e.order_id, e.qty) for e in of(events, OrderAmended)} == {(tp.order_id, 10), (sl.order_id, 10)}
    views = {o.order_id: o for o in open_orders(v, 1)}
    assert (views[tp.order_id].qty, views[sl.order_id].qty, views[sl.order_id].parent_order_id) == (10, 10, entry)
    assert v.engines[BTC].brackets == {}  # the entry is filled: nothing more to attach
    v._check()


def test_stop_loss_fires_and_cancels_the_take_profit(v):
    _entry(v, tif="gtc")
    place(v, 2, "sell", 10, P, tif="ioc")
    tp, sl = (o.order_id for o in open_orders(v, 1))
    rest(v, MAKER, "buy", 100, P - 1200)
    events = v.apply(ShockPrice(asset="BTC", change_bps=-200))
    assert one(events, OrderTriggered).order_id == sl
    oco = one(events, OrderCancelled, order_id=tp)
    assert oco.cause == CancelCause.OCO
    assert events.index(oco) < events.index(one(events, Fill, account=1))
    assert position(v, 1) is None and open_orders(v, 1) == []
    v._check()


def test_take_profit_fires_and_cancels_the_stop_loss(v):
    _entry(v)
    place(v, 2, "sell", 10, P, tif="ioc")
    tp, sl = (o.order_id for o in open_orders(v, 1))
    rest(v, MAKER, "sell", 1, P + 2000)  # keeps the band open
    rest(v, MAKER, "buy", 100, P + 900)
    events = mark(v, P + 1000)
    assert one(events, OrderTriggered).order_id == tp
    assert one(events, OrderCancelled, order_id=sl).cause == CancelCause.OCO
    assert position(v, 1) is None


def test_a_stop_loss_firing_while_its_entry_is_open_cancels_the_rest_of_the_entry(v):
    """Else the closing market sell would meet the account's own resting
    entry first, and self-trade prevention would kill the stop-loss."""
    entry = accepted_id(place(v, 1, "buy", 10, P - 2000, take_profit=AttachedOrder(trigger_price=P - 1000),
                              stop_loss=AttachedOrder(trigger_price=P - 2500)))  # rests below the market
    mark(v, P - 2000)
    place(v, 2, "sell", 4, P - 2000, tif="ioc")  # 4 of 10 fill
    sl, tp = (next(o.order_id for o in open_orders(v, 1) if o.type == t)
              for t in (OrderType.STOP_MARKET, OrderType.TAKE_PROFIT_MARKET))
    rest(v, MAKER, "buy", 100, P - 2700)
    events = mark(v, P - 2600)
    assert one(events, OrderTriggered).order_id == sl
    assert {(e.order_id, e.cause, e.remaining) for e in of(events, OrderCancelled)} == {
        (tp, CancelCause.OCO, 4), (entry, CancelCause.OCO, 6)}
    assert one(events, Fill, account=1).qty == 4 and position(v, 1) is None
    assert open_orders(v, 1) == [] and v.engines[BTC].brackets == {}
    v._check()


def test_market_entry_takes_its_attachments_at_once(v):
    trade(v, 2, 3, 1, P)  # a last price to compare the contract-price stop-loss with
    rest(v, MAKER, "sell", 10, P + 10)
    events = place(v, 1, "buy", 10, type="market", stop_loss=AttachedOrder(trigger_price=P - 1000, price=P - 1100,
                                                                             working_type=LAST))
    (sl,) = of(events, OrderAccepted, parent_order_id=accepted_id([events[0]]))
    assert (sl.type, sl.price, sl.working_type, sl.qty) == (OrderType.STOP_LIMIT, P - 1100, LAST, 10)
    assert v.engines[BTC].brackets == {}


def test_attached_orders_are_cancelled_when_the_position_is_closed_by_hand(v):
    _entry(v)
    place(v, 2, "sell", 10, P, tif="ioc")
    children = {o.order_id for o in open_orders(v, 1)}
    events = trade(v, 3, 1, 10, P)  # account 1 sells its 10 by hand
    assert {e.order_id for e in of(events, OrderCancelled, cause=CancelCause.REDUCE_ONLY)} == children


def test_a_cancelled_entry_attaches_nothing(v):
    entry = accepted_id(_entry(v))
    v.apply(NewOrder(account=1, symbol=BTC, side="buy", qty=1, price=P - 10))  # unrelated
    from protocol.messages import CancelOrder
    v.apply(CancelOrder(account=1, order_id=entry))
    assert v.engines[BTC].brackets == {}
    events = place(v, 2, "sell", 1, P - 10, tif="ioc")
    assert of(events, OrderAccepted, account=1) == []


@pytest.mark.parametrize("kw, text", [
    (dict(take_profit=AttachedOrder(trigger_price=P)), "take_profit trigger 60,000.0 USDT [600000 ticks] of a buy entry must be above"),
    (dict(stop_loss=AttachedOrder(trigger_price=P + 1)), "must be below"),
    (dict(side="sell", take_profit=AttachedOrder(trigger_price=P + 1)), "of a sell entry must be below"),
    (dict(side="sell", stop_loss=AttachedOrder(trigger_price=P - 1)), "must be above"),
    (dict(stop_loss=AttachedOrder(trigger_price=P - 1000), reduce_only=True), "not on a reduce-only order"),
    (dict(type="stop_market", price=None, stop_price=P + 10, stop_loss=AttachedOrder(trigger_price=P - 1000)),
     "limit or market entry"),
    (dict(stop_loss=AttachedOrder(trigger_price=P - 1000, working_type="x")), "working_type"),
])
def test_attached_order_rejects(v, kw, text):
    base = dict(side="buy", price=P)
    base.update(kw)
    assert text in assert_rejected(v, N(**base), R.INVALID_FIELD).message


# ================================================ snapshots and replay


def _busy_venue():
    v = make_venue()
    for acct in (1, 2, 3):
        fund(v, acct, USDT=1_000_000)
    fund(v, MAKER, USDT=100_000_000)
    commands = [
        NewOrder(account=1, symbol=BTC, side="buy", qty=10, price=P, take_profit=AttachedOrder(trigger_price=P + 900),
                 stop_loss=AttachedOrder(trigger_price=P - 900, working_type=LAST)),
        NewOrder(account=2, symbol=BTC, side="sell", qty=4, price=P, tif="ioc"),
        NewOrder(account=1, symbol=BTC, side="sell", qty=2, type="trailing_stop_market", callback_bps=100),
        NewOrder(account=1, symbol=BTC, side="sell", qty=2, type="trailing_stop_market", callback_bps=30,
                 activation_price=P + 200, working_type=LAST),
        NewOrder(account=1, symbol=BTC, side="sell", type="stop_market", stop_price=P - 2000, close_position=True),
    ]
    for c in commands:
        assert not of(v.apply(c), Rejected)
    mark(v, P + 500)
    return v


def _later(v) -> list:
    out = []
    for c in [NewOrder(account=MAKER, symbol=BTC, side="buy", qty=50, price=P - 1200),
              NewOrder(account=2, symbol=BTC, side="sell", qty=6, price=P, tif="ioc"),
              ShockPrice(asset="BTC", change_bps=-150),
              NewOrder(account=3, symbol=BTC, side="sell", qty=1, price=P - 1200, tif="ioc")]:
        out.append(v.apply(c))
    return out


def test_a_restored_venue_keeps_trailing_state_and_brackets_and_gives_the_same_events():
    live = _busy_venue()
    assert live.engines[BTC].brackets and any(s.best for s in live.engines[BTC].stops.values())
    restored = snapshot.restore(live.config, snapshot.decode(snapshot.encode(snapshot.capture(live))))
    assert snapshot.state_hash(restored) == snapshot.state_hash(live)
    assert open_orders(restored, 1) == open_orders(live, 1)
    restored._check()
    a, b = _later(live), _later(restored)
    assert a == b
    assert any(of(evs, OrderTriggered) for evs in a) and any(of(evs, OrderAmended) for evs in a)
    assert snapshot.state_hash(restored) == snapshot.state_hash(live)


# =========================================================== property


def _random_command(v, rng: random.Random):
    """One random step: a maker quote, an entry with attached TP/SL, a
    protective order of any kind (some on the last price), a market order
    or a mark move (through the index: 1 tick = 10**7 index units)."""
    acct = rng.choice((1, 2, 3))
    side = rng.choice(("buy", "sell"))
    m = v.instruments[BTC].mark
    working = rng.choice((WorkingType.MARK_PRICE, LAST))
    r = rng.random()
    if r < 0.25:
        return NewOrder(account=MAKER, symbol=BTC, side=side, qty=rng.randint(1, 30), price=m + rng.randint(-800, 800))
    if r < 0.45:
        up = 1 if side == "buy" else -1
        return NewOrder(account=acct, symbol=BTC, side=side, qty=rng.randint(1, 15), price=m + up * rng.randint(-100, 300),
                        tif=rng.choice(("gtc", "ioc")),
                        take_profit=AttachedOrder(trigger_price=m + up * rng.randint(400, 1500)),
                        stop_loss=AttachedOrder(trigger_price=m - up * rng.randint(400, 1500), working_type=working))
    if r < 0.65:
        kind = rng.choice(("stop_market", "take_profit_market", "trailing_stop_market", "close"))
        close = kind == "close"
        if close:
            kind = rng.choice(("stop_market", "take_profit_market"))
        up = (side == "buy") != (kind == "take_profit_market")
        trig = m + (1 if up else -1) * rng.randint(50, 1200)
        if close:
            return NewOrder(account=acct, symbol=BTC, side=side, type=kind, close_position=True, stop_price=trig)
        if kind == "trailing_stop_market":
            return NewOrder(account=acct, symbol=BTC, side=side, qty=rng.randint(1, 15), type=kind,
                            callback_bps=rng.randint(10, 300), reduce_only=True, working_type=working)
        return NewOrder(account=acct, symbol=BTC, side=side, qty=rng.randint(1, 15), type=kind, stop_price=trig,
                        reduce_only=True, working_type=working)
    if r < 0.85:
        return NewOrder(account=acct, symbol=BTC, side=side, qty=rng.randint(1, 10), type="market")
    return SetIndexPrice(asset="BTC", price=max(500_000, min(700_000, m + rng.randint(-1500, 1500))) * 10**7)


def _funded():
    v = make_venue()
    for acct in (1, 2, 3):
        fund(v, acct, USDT=1_000_000)
    fund(v, MAKER, USDT=100_000_000)
    return v


@pytest.mark.parametrize("seed", range(12))
def test_protective_orders_never_increase_a_position(seed):
    """Random entries, protective orders and price moves: every fill of a
    protective order (attached, close-position, reduce-only conditional)
    leaves |position| smaller and on the same side."""
    rng = random.Random(seed)
    v = _funded()
    protective: set[int] = set()
    pos = {1: 0, 2: 0, 3: 0, MAKER: 0}
    checked = 0
    for _ in range(150):
        for e in v.apply(_random_command(v, rng)):
            if type(e) is OrderAccepted and (e.reduce_only or e.close_position or e.parent_order_id is not None):
                protective.add(e.order_id)
            elif type(e) is Fill:
                before = pos[e.account]
                if e.order_id in protective:
                    assert abs(e.position) < abs(before) and e.position * before >= 0, (seed, e, before)
                    checked += 1
                pos[e.account] = e.position
    v._check()
    assert checked, "no protective order filled: the flow tests nothing"


def test_journal_recovery_with_protective_orders_gives_the_same_events(tmp_path):
    """Journal a random protective flow, snapshot half-way, recover from the
    journal (snapshot + replayed tail): the same state hash, and the next
    commands give the same events on the live and the recovered venue."""
    from exchange_sim import journal, replay

    rng = random.Random(7)
    jr = journal.Journal(tmp_path)
    clock = 1_700_000_000_000_000_000
    live = make_venue()  # funded through the journal, so recovery replays everything
    setup = [Deposit(account=a, asset="USDT", amount=10**12) for a in (1, 2, 3)] + [
        Deposit(account=MAKER, asset="USDT", amount=10**14)]

    def step(cmd):
        nonlocal clock
        clock += 1_000_000_000
        jr.append(live.seq + 1, clock, cmd)
        return live.apply(cmd, clock)

    for c in setup:
        step(c)
    for i in range(300):
        step(_random_command(live, rng))
        if i == 150:
            jr.commit()
            journal.write_snapshot(tmp_path, live.seq, snapshot.state_hash(live),
                                   snapshot.encode(snapshot.capture(live)))
    jr.close()
    recovered, notes, replayed = replay.recover(tmp_path)
    assert notes == [] and replayed == 149
    assert snapshot.state_hash(recovered) == snapshot.state_hash(live)
    assert any(live.engines[BTC].stops.values()), "the flow should leave orders waiting"
    recovered._check()
    for _ in range(100):
        cmd = _random_command(live, rng)
        clock += 1_000_000_000
        assert recovered.apply(cmd, clock) == live.apply(cmd, clock)


@pytest.mark.parametrize("field", ["working_type", "close_position", "callback_bps", "activation_price",
                                   "take_profit", "stop_loss"])
@pytest.mark.parametrize("otype", ["limit", "market", "stop_market", "take_profit_limit", "trailing_stop_market"])
def test_garbage_in_a_protective_field_is_a_typed_reject_never_a_crash(v, field, otype):
    """In-process callers skip msgspec's validation: every wrongly typed
    value must still come back as one Rejected, changing nothing."""
    long_10(v)
    base = dict(side="sell", qty=5, type=otype, reduce_only=otype not in ("limit", "market"))
    if otype in ("limit", "take_profit_limit"):
        base["price"] = P + 100
    if otype in ("stop_market", "take_profit_limit"):
        base["stop_price"] = P - 100 if otype == "stop_market" else P + 100
    if otype == "trailing_stop_market":
        base["callback_bps"] = 100
    for junk in ("x", -1, 1.5, [1], {"a": 1}, 2**70, AttachedOrder(trigger_price="x"),
                 AttachedOrder(trigger_price=P, working_type=["m"]), AttachedOrder(trigger_price=P, price=0)):
        before = observable(v)
        events = v.apply(N(**{**base, field: junk}))
        assert len(events) == 1 and type(events[0]) is Rejected, (field, junk, events)
        assert observable(v) == before, (field, junk)
