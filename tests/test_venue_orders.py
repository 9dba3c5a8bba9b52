"""Orders through ``Venue.apply``: every order type, time in force,
reduce-only, amend, self-trade prevention, cancels, client order ids, open
order limits, pausing and accounts — and every reject reason the core can
give, each shown to leave the venue exactly as it was.

Prices are BTC-PERP ticks (0.1 USDT; mark 600_000 = $60,000) and
quantities lots (0.001 BTC) unless a test says otherwise.
"""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from venue_helpers import (
    BTC,
    BTC_MARK,
    ETH,
    ETH_MARK,
    U,
    account_view,
    accepted_id,
    assert_rejected,
    book_of,
    fund,
    make_venue,
    of,
    one,
    open_orders,
    place,
    position,
    queue,
    rest,
    set_index,
    snapshot,
    trade,
)
from exchange_sim.venue import Venue
from protocol.messages import SetLeverage  # --- leverage
from protocol.messages import (
    AccountClosed,
    AccountOpened,
    AmendOrder,
    BookDelta,
    CancelAll,
    CancelCause,
    CancelOnDisconnect,
    CancelOrder,
    CloseAccount,
    Deposit,
    Fill,
    Liquidity,
    MarkPrice,
    NewOrder,
    OpenAccount,
    OrderAccepted,
    OrderAmended,
    OrderCancelled,
    OrderTriggered,
    OrderType,
    PauseSymbol,
    QueryAccount,
    QueryBook,
    QueryOpenOrders,
    Rejected,
    RejectReason,
    SetIndexPrice,
    ShockPrice,
    Side,
    SymbolStatus,
    TimeInForce,
    Trade,
    Withdraw,
)

R = RejectReason
P = BTC_MARK


# ================================================================== limit


def test_limit_order_rests_and_is_visible(v):
    events = place(v, 1, "buy", 10, P - 10, client_order_id="bid-1")
    acc = one(events, OrderAccepted)
    assert (acc.account, acc.symbol, acc.side, acc.type, acc.tif, acc.qty, acc.price, acc.client_order_id) == (
        1, BTC, Side.BUY, OrderType.LIMIT, TimeInForce.GTC, 10, P - 10, "bid-1",
    )
    delta = one(events, BookDelta)
    assert (delta.seq, delta.bids, delta.asks) == (1, [(P - 10, 10)], [])
    assert of(events, Fill) == []
    snap = book_of(v)
    assert (snap.seq, snap.bids, snap.asks) == (1, [(P - 10, 10)], [])
    (view,) = open_orders(v, 1)
    assert (view.order_id, view.qty, view.filled, view.price, view.client_order_id) == (acc.order_id, 10, 0, P - 10, "bid-1")
    v._check()


def test_limit_order_fills_at_the_makers_price(v):
    """A buy limited at P+50 meets an ask at P+10: it trades at P+10 (price
    improvement goes to the taker)."""
    ask = rest(v, 2, "sell", 10, P + 10)
    events = place(v, 1, "buy", 10, P + 50)
    maker = one(events, Fill, account=2)
    taker = one(events, Fill, account=1)
    assert (maker.order_id, maker.price, maker.qty, maker.liquidity, maker.remaining) == (ask, P + 10, 10, Liquidity.MAKER, 0)
    assert (taker.price, taker.qty, taker.liquidity, taker.remaining) == (P + 10, 10, Liquidity.TAKER, 0)
    assert maker.trade_id == taker.trade_id
    tr = one(events, Trade)
    assert (tr.price, tr.qty, tr.taker_side, tr.trade_id) == (P + 10, 10, Side.BUY, taker.trade_id)
    assert book_of(v).asks == [] and book_of(v).bids == []
    assert open_orders(v, 1) == [] and open_orders(v, 2) == []
    v._check()


def test_price_then_time_priority(v):
    """Asks: #a 5 @ P+2 (first), #b 5 @ P+1, #c 5 @ P+1 (later). A buy of 12
    takes the better price first (#b then #c, in arrival order), then #a."""
    a = rest(v, 2, "sell", 5, P + 2)
    b = rest(v, 2, "sell", 5, P + 1)
    c = rest(v, 3, "sell", 5, P + 1)
    events = place(v, 1, "buy", 12, P + 2)
    makers = [(f.order_id, f.qty, f.price) for f in of(events, Fill, liquidity=Liquidity.MAKER)]
    assert makers == [(b, 5, P + 1), (c, 5, P + 1), (a, 2, P + 2)]
    assert book_of(v).asks == [(P + 2, 3)]
    v._check()


def test_gtc_remainder_rests_at_the_limit(v):
    rest(v, 2, "sell", 4, P)
    events = place(v, 1, "buy", 10, P + 5)
    assert one(events, Fill, account=1).remaining == 6
    assert book_of(v).bids == [(P + 5, 6)]
    (view,) = open_orders(v, 1)
    assert (view.qty, view.filled) == (6, 4)
    v._check()


def test_book_delta_sequence_numbers_are_per_symbol_and_gapless(v):
    seqs = {BTC: [], ETH: []}
    for i in range(3):
        for sym, mark in ((BTC, P), (ETH, ETH_MARK)):
            for e in place(v, 1, "buy", 10, mark - 1 - i, symbol=sym):
                if isinstance(e, BookDelta):
                    seqs[e.symbol].append(e.seq)
    assert seqs == {BTC: [1, 2, 3], ETH: [1, 2, 3]}
    assert book_of(v, BTC).seq == 3


# ================================================================= market


def test_market_order_sweeps_within_the_band_and_stops_at_its_edge(v):
    """Market band 5 %: a buy may pay up to 600_000 × 1.05 = 630_000 ticks.
    Asks 5 @ P+100 and 5 @ 630_000 fill; 5 @ 630_001 is beyond the band, so
    the last 5 lots of a 15-lot market buy are cancelled (cause price_band)."""
    rest(v, 2, "sell", 5, P + 100)
    rest(v, 2, "sell", 5, 630_000)
    rest(v, 2, "sell", 5, 630_001)
    events = place(v, 1, "buy", 15, type="market")
    assert [(f.price, f.qty) for f in of(events, Fill, account=1)] == [(P + 100, 5), (630_000, 5)]
    cancel = one(events, OrderCancelled, account=1)
    assert (cancel.remaining, cancel.cause) == (5, CancelCause.PRICE_BAND)
    assert book_of(v).asks == [(630_001, 5)]
    assert book_of(v).bids == []  # a market order never rests
    assert position(v, 1).qty == 10
    v._check()


def test_market_sell_band_is_below_mark(v):
    """A market sell may go down to 600_000 × 0.95 = 570_000 ticks."""
    rest(v, 2, "buy", 5, 570_000)
    events = place(v, 1, "sell", 5, type="market")
    assert one(events, Fill, account=1).price == 570_000


def test_market_order_that_empties_the_book_expires_as_ioc(v):
    """The rest of a market order that found no more liquidity at all was not
    stopped by the band: its cause is ``ioc`` (CancelCause docs)."""
    rest(v, 2, "sell", 5, P + 1)
    events = place(v, 1, "buy", 8, type="market")
    cancel = one(events, OrderCancelled, account=1)
    assert (cancel.remaining, cancel.cause) == (3, CancelCause.IOC)


def test_market_order_with_nothing_inside_the_band_is_rejected(v):
    rest(v, 2, "sell", 5, 630_001)
    assert_rejected(v, NewOrder(account=1, symbol=BTC, side=Side.BUY, qty=5, type=OrderType.MARKET), R.NO_LIQUIDITY)


def test_market_order_on_an_empty_book_is_rejected(v):
    assert_rejected(v, NewOrder(account=1, symbol=BTC, side=Side.SELL, qty=5, type=OrderType.MARKET), R.NO_LIQUIDITY)


def test_market_order_band_follows_the_mark(v):
    """After the index moves to $62,000 (mark 620_000), the buy band edge is
    620_000 × 1.05 = 651_000: the ask at 630_001 is now reachable."""
    rest(v, 2, "sell", 5, 630_001)
    set_index(v, "BTC", 62_000)
    events = place(v, 1, "buy", 5, type="market")
    assert one(events, Fill, account=1).price == 630_001


# ================================================================== stops


def test_stop_market_waits_off_book_then_triggers_on_mark(v):
    rest(v, 2, "sell", 10, P + 600)
    stop = accepted_id(place(v, 1, "buy", 10, type="stop_market", stop_price=P + 500))
    assert book_of(v).bids == []  # not in the book
    (view,) = open_orders(v, 1)
    assert (view.order_id, view.type, view.stop_price, view.price) == (stop, OrderType.STOP_MARKET, P + 500, None)
    # mark 600_499: not yet
    events = set_index(v, "BTC", "60049.9")
    assert of(events, OrderTriggered) == [] and of(events, Fill) == []
    # mark 600_500 = stop price: triggers, buys as a market order
    events = set_index(v, "BTC", 60_050)
    trig = one(events, OrderTriggered)
    assert (trig.order_id, trig.mark) == (stop, P + 500)
    fill = one(events, Fill, account=1)
    assert (fill.order_id, fill.price, fill.qty, fill.liquidity) == (stop, P + 600, 10, Liquidity.TAKER)
    assert open_orders(v, 1) == []
    assert events.index(trig) > events.index(one(events, MarkPrice))
    v._check()


def test_stop_market_sell_triggered_by_a_shock(v):
    """ShockPrice −100 bps: index $60,000 → $59,400, mark 594_000 ≤ stop 595_000."""
    rest(v, 2, "buy", 10, 590_000)
    stop = accepted_id(place(v, 1, "sell", 10, type="stop_market", stop_price=595_000))
    events = v.apply(ShockPrice(asset="BTC", change_bps=-100))
    assert one(events, MarkPrice).mark == 594_000
    assert one(events, OrderTriggered).order_id == stop
    assert one(events, Fill, account=1).price == 590_000
    assert position(v, 1).qty == -10


def test_stop_limit_becomes_a_resting_limit_order(v):
    stop = accepted_id(place(v, 1, "buy", 10, P + 900, type="stop_limit", stop_price=P + 500))
    events = set_index(v, "BTC", 60_060)
    assert one(events, OrderTriggered).order_id == stop
    assert of(events, OrderAccepted) == []  # accepted once, at placement
    assert book_of(v).bids == [(P + 900, 10)]
    (view,) = open_orders(v, 1)
    assert (view.order_id, view.type, view.price) == (stop, OrderType.LIMIT, P + 900)
    v._check()


def test_stops_fire_oldest_first(v):
    rest(v, 2, "sell", 20, P + 600)
    first = accepted_id(place(v, 3, "buy", 10, type="stop_market", stop_price=P + 400))
    second = accepted_id(place(v, 1, "buy", 10, type="stop_market", stop_price=P + 300))
    events = set_index(v, "BTC", 60_050)
    assert [e.order_id for e in of(events, OrderTriggered)] == [first, second]
    assert [f.order_id for f in of(events, Fill, liquidity=Liquidity.TAKER)] == [first, second]


def test_triggered_stop_without_liquidity_is_reported_and_gone(v):
    stop = accepted_id(place(v, 1, "buy", 10, type="stop_market", stop_price=P + 500))
    events = set_index(v, "BTC", 60_050)
    assert one(events, OrderTriggered).order_id == stop
    rej = one(events, Rejected)
    assert (rej.reason, rej.order_id) == (R.NO_LIQUIDITY, stop)
    assert open_orders(v, 1) == []
    v._check()


def test_stop_with_plain_string_enums_triggers_like_the_enum_one(v):
    """In-process callers may pass ``type="stop_market"``: the stop must
    still trigger as a market order (it used to crash SetIndexPrice)."""
    rest(v, 2, "sell", 10, P + 600)
    v.apply(NewOrder(account=1, symbol=BTC, side="buy", qty=10, type="stop_market", stop_price=P + 500, tif="gtc"))
    events = set_index(v, "BTC", 60_050)
    assert one(events, Fill, account=1).price == P + 600
    v._check()


@pytest.mark.parametrize(
    "kw, reason",
    [
        (dict(type="stop_market"), R.MISSING_STOP_PRICE),
        (dict(type="stop_limit", stop_price=P + 500), R.MISSING_PRICE),
        (dict(type="stop_market", stop_price=P + 500, price=P + 600), R.INVALID_FIELD),
        (dict(type="stop_limit", stop_price=P + 500, price=P + 600, tif="post_only"), R.INVALID_FIELD),
        (dict(type="stop_market", stop_price=P + 500, tif="fok"), R.INVALID_FIELD),
        (dict(type="stop_market", stop_price=P), R.INVALID_FIELD),  # would trigger at once
        (dict(type="stop_market", stop_price=P - 1), R.INVALID_FIELD),
        (dict(type="stop_market", stop_price=0), R.BAD_TICK),
        (dict(type="stop_market", stop_price=600_500.0), R.BAD_TICK),
        (dict(type="stop_limit", stop_price=P + 500, price=-1), R.BAD_TICK),
        (dict(type="stop_market", stop_price=P + 500, reduce_only=True), R.REDUCE_ONLY_WOULD_INCREASE),
    ],
)
def test_bad_stop_orders_are_rejected(v, kw, reason):
    kw.setdefault("price", None)
    assert_rejected(v, NewOrder(account=1, symbol=BTC, side=Side.BUY, qty=10, **kw), reason)


def test_stops_cannot_be_amended_but_can_be_cancelled(v):
    stop = accepted_id(place(v, 1, "sell", 10, type="stop_market", stop_price=P - 500, client_order_id="sl"))
    assert_rejected(v, AmendOrder(account=1, order_id=stop, qty=5), R.NOT_ALLOWED)
    events = v.apply(CancelOrder(account=1, client_order_id="sl"))
    c = one(events, OrderCancelled)
    assert (c.order_id, c.remaining, c.cause) == (stop, 10, CancelCause.USER)
    assert of(events, BookDelta) == []  # a stop was never in the book
    assert open_orders(v, 1) == []
    assert of(set_index(v, "BTC", 59_000), OrderTriggered) == []


# ========================================================= time in force


def test_ioc_fills_what_it_can_and_cancels_the_rest(v):
    rest(v, 2, "sell", 4, P)
    events = place(v, 1, "buy", 10, P, tif="ioc")
    assert one(events, Fill, account=1).qty == 4
    c = one(events, OrderCancelled, account=1)
    assert (c.remaining, c.cause) == (6, CancelCause.IOC)
    assert book_of(v).bids == [] and open_orders(v, 1) == []


def test_ioc_with_nothing_to_take_is_accepted_then_cancelled_whole(v):
    events = place(v, 1, "buy", 10, P, tif="ioc")
    assert [type(e) for e in events] == [OrderAccepted, OrderCancelled]
    assert (events[1].remaining, events[1].cause) == (10, CancelCause.IOC)
    assert book_of(v).bids == []


def test_fok_fills_completely_across_levels(v):
    rest(v, 2, "sell", 4, P)
    rest(v, 3, "sell", 6, P + 1)
    events = place(v, 1, "buy", 10, P + 1, tif="fok")
    assert sum(f.qty for f in of(events, Fill, account=1)) == 10
    assert of(events, OrderCancelled) == []


def test_fok_not_fillable_is_rejected(v):
    """9 lots within the limit P+1; the 10th lot at P+2 is beyond it."""
    rest(v, 2, "sell", 4, P)
    rest(v, 3, "sell", 5, P + 1)
    rest(v, 3, "sell", 5, P + 2)
    assert_rejected(v, NewOrder(account=1, symbol=BTC, side=Side.BUY, qty=10, price=P + 1, tif=TimeInForce.FOK), R.FOK_NOT_FILLABLE)


def test_fok_does_not_count_own_orders_under_expire_taker(v):
    rest(v, 1, "sell", 5, P)
    rest(v, 2, "sell", 5, P + 1)
    assert_rejected(v, NewOrder(account=1, symbol=BTC, side=Side.BUY, qty=5, price=P + 1, tif=TimeInForce.FOK), R.FOK_NOT_FILLABLE)


def test_post_only_rests_when_it_does_not_cross(v):
    rest(v, 2, "sell", 5, P + 1)
    oid = rest(v, 1, "buy", 5, P, tif="post_only")
    assert queue(v, BTC, "buy") == [(oid, P, 5)]


@pytest.mark.parametrize("price", [P + 1, P + 2])
def test_post_only_that_would_take_is_rejected(v, price):
    rest(v, 2, "sell", 5, P + 1)
    assert_rejected(v, NewOrder(account=1, symbol=BTC, side=Side.BUY, qty=5, price=price, tif=TimeInForce.POST_ONLY), R.POST_ONLY_WOULD_CROSS)


def test_market_post_only_is_invalid(v):
    rest(v, 2, "sell", 5, P + 1)
    assert_rejected(v, NewOrder(account=1, symbol=BTC, side=Side.BUY, qty=5, type=OrderType.MARKET, tif=TimeInForce.POST_ONLY), R.INVALID_FIELD)


def test_market_with_a_price_is_invalid(v):
    rest(v, 2, "sell", 5, P + 1)
    assert_rejected(v, NewOrder(account=1, symbol=BTC, side=Side.BUY, qty=5, price=P + 1, type=OrderType.MARKET), R.INVALID_FIELD)


# ============================================================ reduce-only


def _long(v: Venue, account: int = 1, qty: int = 10, price: int = P) -> None:
    """Give ``account`` a long of ``qty`` lots bought from account 3."""
    trade(v, account, 3, qty, price)


def test_reduce_only_without_a_position_is_rejected(v):
    assert_rejected(v, NewOrder(account=1, symbol=BTC, side=Side.SELL, qty=5, price=P, reduce_only=True), R.REDUCE_ONLY_WOULD_INCREASE)


def test_reduce_only_on_the_same_side_as_the_position_is_rejected(v):
    _long(v)
    assert_rejected(v, NewOrder(account=1, symbol=BTC, side=Side.BUY, qty=5, price=P, reduce_only=True), R.REDUCE_ONLY_WOULD_INCREASE)


def test_reduce_only_is_trimmed_to_the_position(v):
    """Long 10; reduce-only sell 25 is accepted for 10 and closes the position
    without flipping it, even with 25 lots of bids to hit."""
    _long(v)
    rest(v, 2, "buy", 25, P)
    events = place(v, 1, "sell", 25, P, reduce_only=True)
    assert one(events, OrderAccepted).qty == 10
    assert one(events, Fill, account=1).qty == 10
    assert position(v, 1) is None
    assert book_of(v).bids == [(P, 15)]
    v._check()


def test_reduce_only_room_counts_other_resting_reduce_only_orders(v):
    """Long 10 with a resting reduce-only sell of 6: a new one gets 4; a
    third has no room left."""
    _long(v)
    rest(v, 1, "sell", 6, P + 10, reduce_only=True)
    assert one(place(v, 1, "sell", 10, P + 20, reduce_only=True), OrderAccepted).qty == 4
    assert_rejected(v, NewOrder(account=1, symbol=BTC, side=Side.SELL, qty=1, price=P + 30, reduce_only=True), R.REDUCE_ONLY_WOULD_INCREASE)


def test_resting_reduce_only_is_trimmed_when_the_position_shrinks(v):
    """Long 10 with a reduce-only sell 10 resting at P+50. A plain sell of 6
    fills: the position is 4, so the reduce-only order is cut to 4 lots (it
    keeps its place)."""
    _long(v)
    ro = rest(v, 1, "sell", 10, P + 50, reduce_only=True)
    rest(v, 2, "buy", 6, P)
    events = place(v, 1, "sell", 6, P)
    amended = one(events, OrderAmended, order_id=ro)
    assert (amended.qty, amended.priority_kept) == (4, True)
    assert book_of(v).asks == [(P + 50, 4)]
    assert open_orders(v, 1)[0].qty == 4
    v._check()


def test_resting_reduce_only_is_cancelled_when_the_position_closes(v):
    _long(v)
    ro = rest(v, 1, "sell", 10, P + 50, reduce_only=True)
    rest(v, 2, "buy", 10, P)
    events = place(v, 1, "sell", 10, P)
    c = one(events, OrderCancelled, order_id=ro)
    assert (c.cause, c.remaining) == (CancelCause.REDUCE_ONLY, 10)
    assert book_of(v).asks == [] and open_orders(v, 1) == []
    v._check()


def test_resting_reduce_only_is_cancelled_when_the_position_flips(v):
    """Long 10 with a reduce-only sell 10 @ P+50; a plain sell of 15 fills:
    the account is short 5, so a sell can no longer reduce: cancelled."""
    _long(v)
    ro = rest(v, 1, "sell", 10, P + 50, reduce_only=True)
    rest(v, 2, "buy", 15, P)
    events = place(v, 1, "sell", 15, P)
    assert position(v, 1).qty == -5
    assert one(events, OrderCancelled, order_id=ro).cause == CancelCause.REDUCE_ONLY
    v._check()


def test_resting_reduce_only_is_trimmed_when_the_account_is_the_maker(v):
    """Long 10 with a plain sell 6 @ P+40 and a reduce-only sell 10 @ P+50.
    Another account lifts the 6 lots at P+40: the position is 4, so the
    reduce-only order is cut to 4."""
    _long(v)
    rest(v, 1, "sell", 6, P + 40)
    ro = rest(v, 1, "sell", 10, P + 50, reduce_only=True)
    events = place(v, 2, "buy", 6, P + 40)
    assert position(v, 1).qty == 4
    assert one(events, OrderAmended, order_id=ro).qty == 4
    assert [(o.order_id, o.qty) for o in open_orders(v, 1)] == [(ro, 4)]
    v._check()


def test_reduce_only_stop_is_cancelled_when_the_position_closes(v):
    """Long 10 with a reduce-only stop-market sell 10 @ P−500 (a stop loss).
    A plain sell of 4 leaves it alone (the position can still be reduced);
    a plain sell of the other 6 closes the position: the stop is cancelled
    (cause ``reduce_only``), as a resting reduce-only order would be, and no
    longer waits to trigger into a reject."""
    _long(v)
    stop = accepted_id(place(v, 1, "sell", 10, type="stop_market", stop_price=P - 500, reduce_only=True))
    rest(v, 2, "buy", 10, P)
    events = place(v, 1, "sell", 4, P)
    assert of(events, OrderCancelled, order_id=stop) == []
    assert [o.order_id for o in open_orders(v, 1)] == [stop]
    events = place(v, 1, "sell", 6, P)
    assert position(v, 1) is None
    c = one(events, OrderCancelled, order_id=stop)
    assert (c.cause, c.remaining) == (CancelCause.REDUCE_ONLY, 10)
    assert open_orders(v, 1) == [] and v.stops[BTC] == {}
    assert of(set_index(v, "BTC", "59940"), OrderTriggered) == []
    v._check()


def test_second_reduce_only_stop_firing_with_the_first_is_cancelled_not_triggered(v):
    """Long 10 with two reduce-only stop-market sells of 10 (stops P−500 and
    P−400). The mark falls through both at once: the older triggers and
    closes the position, which cancels the other (cause ``reduce_only``)
    before its turn: it never triggers."""
    _long(v)
    first = accepted_id(place(v, 1, "sell", 10, type="stop_market", stop_price=P - 500, reduce_only=True))
    second = accepted_id(place(v, 1, "sell", 10, type="stop_market", stop_price=P - 400, reduce_only=True))
    rest(v, 2, "buy", 20, P - 600)
    events = set_index(v, "BTC", "59940")
    assert [e.order_id for e in of(events, OrderTriggered)] == [first]
    assert one(events, OrderCancelled, order_id=second).cause == CancelCause.REDUCE_ONLY
    assert position(v, 1) is None and open_orders(v, 1) == [] and v.stops[BTC] == {}
    v._check()


def test_reduce_only_stop_is_cancelled_when_the_account_is_the_maker_and_flips(v):
    """Long 10 with a reduce-only stop-market sell @ P−500 and a plain sell
    15 @ P+40 resting; another account lifts it: the account is short 5, a
    sell can no longer reduce: the stop is cancelled. A plain stop stays."""
    _long(v)
    stop = accepted_id(place(v, 1, "sell", 10, type="stop_market", stop_price=P - 500, reduce_only=True))
    plain = accepted_id(place(v, 1, "sell", 10, type="stop_market", stop_price=P - 600))
    rest(v, 1, "sell", 15, P + 40)
    events = place(v, 2, "buy", 15, P + 40)
    assert position(v, 1).qty == -5
    assert one(events, OrderCancelled, order_id=stop).cause == CancelCause.REDUCE_ONLY
    assert [o.order_id for o in open_orders(v, 1)] == [plain]
    v._check()


# ================================================================== amend


def test_qty_decrease_keeps_priority(v):
    """Bids #a 10 then #b 10 at P. #a amended down to 5 keeps its place: a
    sell of 5 fills #a, not #b."""
    a = rest(v, 1, "buy", 10, P)
    b = rest(v, 2, "buy", 10, P)
    am = one(v.apply(AmendOrder(account=1, order_id=a, qty=5)), OrderAmended)
    assert (am.qty, am.price, am.priority_kept) == (5, P, True)
    assert queue(v, BTC, "buy") == [(a, P, 5), (b, P, 10)]
    events = place(v, 3, "sell", 5, P)
    assert one(events, Fill, liquidity=Liquidity.MAKER).order_id == a
    v._check()


def test_qty_increase_loses_priority(v):
    a = rest(v, 1, "buy", 10, P)
    b = rest(v, 2, "buy", 10, P)
    am = one(v.apply(AmendOrder(account=1, order_id=a, qty=15)), OrderAmended)
    assert (am.qty, am.priority_kept) == (15, False)
    events = place(v, 3, "sell", 5, P)
    assert one(events, Fill, liquidity=Liquidity.MAKER).order_id == b
    assert queue(v, BTC, "buy") == [(b, P, 5), (a, P, 15)]
    v._check()


def test_price_change_loses_priority_even_back_to_the_same_price(v):
    a = rest(v, 1, "buy", 10, P)
    b = rest(v, 2, "buy", 10, P)
    assert one(v.apply(AmendOrder(account=1, order_id=a, price=P - 1)), OrderAmended).priority_kept is False
    assert one(v.apply(AmendOrder(account=1, order_id=a, price=P)), OrderAmended).priority_kept is False
    events = place(v, 3, "sell", 12, P)
    assert [(f.order_id, f.qty) for f in of(events, Fill, liquidity=Liquidity.MAKER)] == [(b, 10), (a, 2)]


def test_amend_keeps_order_id_and_client_order_id(v):
    a = rest(v, 1, "buy", 10, P - 5, client_order_id="q1")
    v.apply(AmendOrder(account=1, client_order_id="q1", price=P - 6, qty=12))
    (view,) = open_orders(v, 1)
    assert (view.order_id, view.client_order_id, view.price, view.qty) == (a, "q1", P - 6, 12)
    assert book_of(v).bids == [(P - 6, 12)]


def test_amend_that_crosses_executes_as_taker(v):
    """Bid 10 @ P−10 amended to P+10 meets the ask 4 @ P+5: it takes 4 lots
    at P+5 as taker and 6 lots rest at P+10."""
    bid = rest(v, 1, "buy", 10, P - 10)
    rest(v, 2, "sell", 4, P + 5)
    events = v.apply(AmendOrder(account=1, order_id=bid, price=P + 10))
    assert one(events, OrderAmended).priority_kept is False
    fill = one(events, Fill, account=1)
    assert (fill.order_id, fill.liquidity, fill.price, fill.qty, fill.remaining) == (bid, Liquidity.TAKER, P + 5, 4, 6)
    # notional 4 × 600_005 × 100 = 240_002_000 µUSDT; taker 0.05 % = 120_001
    assert fill.fee == 120_001
    assert book_of(v).bids == [(P + 10, 6)] and book_of(v).asks == []
    (view,) = open_orders(v, 1)
    assert (view.qty, view.filled) == (6, 4)
    v._check()


def test_post_only_amend_that_would_cross_is_rejected(v):
    bid = rest(v, 1, "buy", 10, P - 10, tif="post_only")
    rest(v, 2, "sell", 4, P + 5)
    assert_rejected(v, AmendOrder(account=1, order_id=bid, price=P + 5), R.POST_ONLY_WOULD_CROSS)


def test_amend_rejects(v):
    bid = rest(v, 1, "buy", 10, P - 10)
    assert_rejected(v, AmendOrder(account=1, order_id=bid), R.NOTHING_TO_AMEND)
    assert_rejected(v, AmendOrder(account=1, order_id=bid, qty=10, price=P - 10), R.NOTHING_TO_AMEND)
    assert_rejected(v, AmendOrder(account=1, order_id=bid, price=int(P * 1.21)), R.OUTSIDE_PRICE_BAND)
    assert_rejected(v, AmendOrder(account=1, order_id=bid, qty=0), R.BAD_LOT)
    assert_rejected(v, AmendOrder(account=1, order_id=bid, qty=1_000_001), R.BAD_LOT)
    assert_rejected(v, AmendOrder(account=1, order_id=bid, price=0), R.BAD_TICK)
    assert_rejected(v, AmendOrder(account=1, order_id=bid, price=1.5), R.BAD_TICK)


def test_amend_below_min_notional_is_rejected(v):
    """ETH-PERP: 2 lots × 300_000 ticks × 10 µUSDT = $6 ≥ $5 min notional;
    amended to 1 lot = $3 < $5."""
    oid = rest(v, 1, "buy", 2, ETH_MARK, symbol=ETH)
    assert_rejected(v, AmendOrder(account=1, order_id=oid, qty=1), R.BELOW_MIN_NOTIONAL)


def test_amend_of_another_accounts_order_is_unknown(v):
    bid = rest(v, 1, "buy", 10, P - 10)
    assert_rejected(v, AmendOrder(account=2, order_id=bid, qty=5), R.UNKNOWN_ORDER)
    assert_rejected(v, CancelOrder(account=2, order_id=bid), R.UNKNOWN_ORDER)


def test_reduce_only_amend_may_not_exceed_the_position(v):
    _long(v)
    ro = rest(v, 1, "sell", 6, P + 50, reduce_only=True)
    assert_rejected(v, AmendOrder(account=1, order_id=ro, qty=11), R.REDUCE_ONLY_WOULD_INCREASE)
    assert one(v.apply(AmendOrder(account=1, order_id=ro, qty=10)), OrderAmended).qty == 10


# ==================================================== self-trade prevention


def _stp_book(v: Venue) -> tuple[int, int]:
    """Account 1's own ask 5 @ P is first in line; account 2's ask 5 @ P
    is behind it."""
    own = rest(v, 1, "sell", 5, P)
    other = rest(v, 2, "sell", 5, P)
    return own, other


def test_stp_expire_taker_is_the_default(v):
    own, other = _stp_book(v)
    events = place(v, 1, "buy", 8, P)
    c = one(events, OrderCancelled)
    assert (c.account, c.cause, c.remaining) == (1, CancelCause.SELF_TRADE, 8)
    assert of(events, Fill) == []
    assert queue(v, BTC, "sell") == [(own, P, 5), (other, P, 5)]
    assert book_of(v).bids == []


def test_stp_expire_taker_after_trading_with_others_ahead(v):
    other = rest(v, 2, "sell", 5, P)
    own = rest(v, 1, "sell", 5, P)
    events = place(v, 1, "buy", 8, P, stp="expire_taker")
    assert [(f.order_id, f.qty) for f in of(events, Fill, liquidity=Liquidity.MAKER)] == [(other, 5)]
    c = one(events, OrderCancelled)
    assert (c.order_id != own, c.cause, c.remaining) == (True, CancelCause.SELF_TRADE, 3)
    assert queue(v, BTC, "sell") == [(own, P, 5)]


def test_stp_expire_maker_cancels_own_order_and_trades_on(v):
    own, other = _stp_book(v)
    events = place(v, 1, "buy", 8, P, stp="expire_maker")
    c = one(events, OrderCancelled)
    assert (c.order_id, c.cause, c.remaining) == (own, CancelCause.SELF_TRADE, 5)
    assert [(f.order_id, f.qty) for f in of(events, Fill, liquidity=Liquidity.MAKER)] == [(other, 5)]
    assert book_of(v).bids == [(P, 3)] and book_of(v).asks == []
    assert [o.order_id for o in open_orders(v, 1)] == [one(events, OrderAccepted).order_id]
    v._check()


def test_stp_expire_both_cancels_maker_and_taker(v):
    own, other = _stp_book(v)
    events = place(v, 1, "buy", 8, P, stp="expire_both")
    taker = one(events, OrderAccepted).order_id
    cancels = sorted((c.order_id, c.remaining, c.cause) for c in of(events, OrderCancelled))
    assert cancels == sorted([(own, 5, CancelCause.SELF_TRADE), (taker, 8, CancelCause.SELF_TRADE)])
    assert of(events, Fill) == []
    assert queue(v, BTC, "sell") == [(other, P, 5)]
    assert open_orders(v, 1) == []
    v._check()


def test_stp_none_trades_with_itself(v):
    """Both sides of the trade are account 1: its position stays flat and it
    pays both fees: 5 × 600_000 × 100 = 300_000_000 µUSDT notional, maker
    0.02 % = 60_000 plus taker 0.05 % = 150_000."""
    own, _ = _stp_book(v)
    before = v.accounts[1].balances["USDT"]
    events = place(v, 1, "buy", 5, P, stp="none")
    fills = of(events, Fill)
    assert [(f.account, f.liquidity, f.fee) for f in fills] == [(1, Liquidity.MAKER, 60_000), (1, Liquidity.TAKER, 150_000)]
    assert fills[0].order_id == own
    assert position(v, 1) is None
    assert v.accounts[1].balances["USDT"] == before - 210_000
    v._check()


def test_stp_mode_of_the_maker_does_not_matter(v):
    own = rest(v, 1, "sell", 5, P, stp="none")
    events = place(v, 1, "buy", 5, P, stp="expire_taker")
    assert of(events, Fill) == []
    assert queue(v, BTC, "sell") == [(own, P, 5)]


# ================================================================ cancels


def test_cancel_by_order_id(v):
    oid = rest(v, 1, "buy", 10, P - 1)
    events = v.apply(CancelOrder(account=1, order_id=oid))
    c = one(events, OrderCancelled)
    assert (c.order_id, c.remaining, c.cause) == (oid, 10, CancelCause.USER)
    d = one(events, BookDelta)
    assert (d.seq, d.bids) == (2, [(P - 1, 0)])
    assert book_of(v).bids == [] and open_orders(v, 1) == []
    assert_rejected(v, CancelOrder(account=1, order_id=oid), R.UNKNOWN_ORDER)


def test_cancel_by_client_order_id_and_reuse_it(v):
    oid = rest(v, 1, "buy", 10, P - 1, client_order_id="abc")
    assert_rejected(v, NewOrder(account=1, symbol=BTC, side=Side.BUY, qty=1, price=P - 2, client_order_id="abc"), R.DUPLICATE_CLIENT_ORDER_ID)
    assert one(v.apply(CancelOrder(account=1, client_order_id="abc")), OrderCancelled).order_id == oid
    assert_rejected(v, CancelOrder(account=1, client_order_id="abc"), R.UNKNOWN_ORDER)
    # cancelled, but still remembered: the id is not free again (Binance/Bybit)
    rej = assert_rejected(v, NewOrder(account=1, symbol=BTC, side=Side.BUY, qty=10, price=P - 1, client_order_id="abc"),
                          R.DUPLICATE_CLIENT_ORDER_ID)
    assert f"order {oid}" in rej.message and "no longer open" in rej.message
    new = rest(v, 1, "buy", 10, P - 1, client_order_id="abc-2")  # a fresh id is
    assert new != oid


def test_client_order_ids_are_per_account(v):
    rest(v, 1, "buy", 10, P - 1, client_order_id="same")
    rest(v, 2, "buy", 10, P - 1, client_order_id="same")
    assert [o.client_order_id for o in open_orders(v, 2)] == ["same"]


def test_client_order_id_is_not_free_again_once_the_order_filled(v):
    """A resend of an order that already filled must not fill again: the id
    stays taken after the order left the book (the reject names the original
    order), and it changes nothing."""
    first = rest(v, 1, "buy", 10, P, client_order_id="x")
    place(v, 2, "sell", 10, P)
    assert open_orders(v, 1) == [] and position(v, 1).qty == 10
    rej = assert_rejected(v, NewOrder(account=1, symbol=BTC, side=Side.BUY, qty=10, price=P, client_order_id="x"),
                          R.DUPLICATE_CLIENT_ORDER_ID)
    assert rej.message == f"client order id 'x' was already used by order {first}, no longer open"
    assert rej.client_order_id == "x" and position(v, 1).qty == 10


def test_client_order_id_memory_is_bounded_per_account_and_kept_by_snapshots():
    """``venue.client_id_memory`` ids per account, oldest forgotten first; IOC,
    stop and rejected orders: accepted ones count, rejected ones do not. The
    memory is venue state: a snapshot keeps it, so a restored venue refuses
    the same resends (and hashes the same)."""
    from exchange_sim import snapshot as snap_mod

    ven = make_venue(client_id_memory=3)
    for acct in (1, 2):
        fund(ven, acct, USDT=1_000_000)
    rest(ven, 2, "sell", 5, P)
    a = accepted_id(place(ven, 1, "buy", 5, P, tif="ioc", client_order_id="a"))  # fills at once
    assert_rejected(ven, NewOrder(account=1, symbol=BTC, side=Side.BUY, qty=1, price=2 * P, client_order_id="r"),
                    R.OUTSIDE_PRICE_BAND)
    b = rest(ven, 1, "buy", 1, P - 10, client_order_id="b")
    c = accepted_id(place(ven, 1, "sell", 1, type="stop_market", stop_price=P - 500, client_order_id="c"))
    assert list(ven.accounts[1].client_ids.items()) == [("a", a), ("b", b), ("c", c)]
    rest(ven, 1, "buy", 1, P - 11, client_order_id="r")  # the rejected "r" was never taken
    assert list(ven.accounts[1].client_ids) == ["b", "c", "r"]  # "a" forgotten: the oldest
    assert ven.accounts[2].client_ids is None  # per account; none used there
    rest(ven, 2, "buy", 1, P - 12, client_order_id="b")
    ven._check()

    restored = snap_mod.restore(ven.config, snap_mod.decode(snap_mod.encode(snap_mod.capture(ven))))
    assert snap_mod.state_hash(restored) == snap_mod.state_hash(ven)
    for w in (ven, restored):
        events = w.apply(CancelAll(account=1))
        assert len(of(events, OrderCancelled)) == 3  # b, c and r are not open any more...
        for cid in ("b", "c", "r"):  # ...but not from the memory
            assert_rejected(w, NewOrder(account=1, symbol=BTC, side=Side.BUY, qty=1, price=P - 20, client_order_id=cid),
                            R.DUPLICATE_CLIENT_ORDER_ID)
        rest(w, 1, "buy", 1, P - 20, client_order_id="a")  # forgotten: accepted again
    assert snap_mod.state_hash(restored) == snap_mod.state_hash(ven)

    off = make_venue(client_id_memory=0)  # 0: only open orders' ids are refused
    fund(off, 1, USDT=1_000_000)
    rest(off, 1, "buy", 1, P - 10, client_order_id="z")
    assert_rejected(off, NewOrder(account=1, symbol=BTC, side=Side.BUY, qty=1, price=P - 11, client_order_id="z"),
                    R.DUPLICATE_CLIENT_ORDER_ID)
    off.apply(CancelAll(account=1))
    rest(off, 1, "buy", 1, P - 10, client_order_id="z")
    assert off.accounts[1].client_ids is None


def test_cancel_needs_an_id(v):
    assert_rejected(v, CancelOrder(account=1), R.INVALID_FIELD)


def test_cancel_all_of_an_account_spans_symbols_and_stops(v):
    a = rest(v, 1, "buy", 10, P - 1)
    b = rest(v, 1, "sell", 10, ETH_MARK + 1, symbol=ETH)
    s = accepted_id(place(v, 1, "buy", 10, type="stop_market", stop_price=P + 500))
    keep = rest(v, 2, "buy", 10, P - 2)
    events = v.apply(CancelAll(account=1))
    assert [(c.order_id, c.cause) for c in of(events, OrderCancelled)] == [
        (a, CancelCause.CANCEL_ALL), (b, CancelCause.CANCEL_ALL), (s, CancelCause.CANCEL_ALL),
    ]
    assert sorted(d.symbol for d in of(events, BookDelta)) == [BTC, ETH]
    assert open_orders(v, 1) == []
    assert queue(v, BTC, "buy") == [(keep, P - 2, 10)]
    v._check()


def test_cancel_all_of_one_symbol(v):
    rest(v, 1, "buy", 10, P - 1)
    eth = rest(v, 1, "sell", 10, ETH_MARK + 1, symbol=ETH)
    events = v.apply(CancelAll(account=1, symbol=BTC))
    assert len(of(events, OrderCancelled)) == 1
    assert [o.order_id for o in open_orders(v, 1)] == [eth]
    assert v.apply(CancelAll(account=1, symbol=BTC)) == []  # nothing left: not an error
    assert_rejected(v, CancelAll(account=1, symbol="DOGE-PERP"), R.UNKNOWN_SYMBOL)
    assert_rejected(v, CancelAll(account=99), R.UNKNOWN_ACCOUNT)


def test_cancel_on_disconnect_cancels_everything_with_cause_disconnect(v):
    """What the server sends when a cancel-on-disconnect session ends: a
    CancelAll of every symbol and the stops, whose cancels say why."""
    a = rest(v, 1, "buy", 10, P - 1)
    b = rest(v, 1, "sell", 10, ETH_MARK + 1, symbol=ETH)
    s = accepted_id(place(v, 1, "buy", 10, type="stop_market", stop_price=P + 500))
    keep = rest(v, 2, "buy", 10, P - 2)
    events = v.apply(CancelOnDisconnect(account=1))
    assert [(c.order_id, c.cause) for c in of(events, OrderCancelled)] == [
        (a, CancelCause.DISCONNECT), (b, CancelCause.DISCONNECT), (s, CancelCause.DISCONNECT),
    ]
    assert sorted(d.symbol for d in of(events, BookDelta)) == [BTC, ETH]
    assert open_orders(v, 1) == [] and [o.order_id for o in open_orders(v, 2)] == [keep]
    assert v.apply(CancelOnDisconnect(account=1)) == []  # nothing left: not an error
    rej = assert_rejected(v, CancelOnDisconnect(account=99), R.UNKNOWN_ACCOUNT)
    assert rej.command == "CancelOnDisconnect"
    v._check()


# ======================================================= open-order limits


def test_too_many_open_orders_counts_resting_and_stop_orders():
    ven = make_venue(max_open_orders=3)
    fund(ven, 1, USDT=100_000)
    rest(ven, 1, "buy", 1, P - 1)
    rest(ven, 1, "buy", 1, P - 2)
    stop = accepted_id(place(ven, 1, "buy", 1, type="stop_market", stop_price=P + 500))
    assert_rejected(ven, NewOrder(account=1, symbol=BTC, side=Side.BUY, qty=1, price=P - 3), R.TOO_MANY_OPEN_ORDERS)
    ven.apply(CancelOrder(account=1, order_id=stop))
    rest(ven, 1, "buy", 1, P - 3)


# ================================================================= pause


def test_pause_blocks_new_orders_and_amends_but_not_cancels(v):
    oid = rest(v, 1, "buy", 10, P - 1)
    assert v.apply(PauseSymbol(symbol=BTC)) == [SymbolStatus(symbol=BTC, paused=True)]
    assert_rejected(v, NewOrder(account=1, symbol=BTC, side=Side.BUY, qty=1, price=P - 2), R.SYMBOL_PAUSED)
    assert_rejected(v, AmendOrder(account=1, order_id=oid, qty=5), R.SYMBOL_PAUSED)
    rest(v, 1, "buy", 10, ETH_MARK - 1, symbol=ETH)  # other symbols trade on
    assert one(v.apply(CancelOrder(account=1, order_id=oid)), OrderCancelled).cause == CancelCause.USER
    assert v.apply(PauseSymbol(symbol=BTC, paused=False)) == [SymbolStatus(symbol=BTC, paused=False)]
    rest(v, 1, "buy", 1, P - 2)


# =============================================================== accounts


def test_open_and_close_an_account(venue):
    assert venue.apply(OpenAccount(account=7)) == [AccountOpened(account=7)]
    assert_rejected(venue, OpenAccount(account=7), R.ACCOUNT_EXISTS)
    view = account_view(venue, 7)
    assert (view.balances, view.positions, view.equity, view.margin_ratio) == ({}, [], 0.0, None)
    # an empty account may hold a stop order (no margin is reserved for it)
    stop = accepted_id(place(venue, 7, "buy", 1, type="stop_market", stop_price=P + 500))
    events = venue.apply(CloseAccount(account=7))
    assert [type(e) for e in events] == [OrderCancelled, AccountClosed]
    assert events[0].order_id == stop
    assert_rejected(venue, QueryAccount(account=7), R.UNKNOWN_ACCOUNT)
    assert_rejected(venue, CloseAccount(account=7), R.UNKNOWN_ACCOUNT)
    venue._check()


def test_close_refused_while_holding_a_balance_or_a_position(v):
    assert_rejected(v, CloseAccount(account=1), R.NOT_ALLOWED)  # 1,000,000 USDT
    trade(v, 1, 2, 10, P)
    assert_rejected(v, CloseAccount(account=1), R.NOT_ALLOWED)  # and long 10 lots


def test_deposit_creates_the_account(venue):
    events = venue.apply(Deposit(account=9, asset="BTC", amount=5 * 10**7))
    assert events[0].balance == 5 * 10**7 and events[0].reason == "deposit"
    assert account_view(venue, 9).balances == {"BTC": 5 * 10**7}


# ====================================================== the reject catalogue
#
# Every reason the core can give, each from a command a user (or a buggy
# in-process caller) could send; each must leave the venue exactly as it was.


def busy_venue(**params) -> Venue:
    """Accounts 1-3 with 1,000,000 USDT, account 4 with 100 USDT; account 1
    has a bid 10 @ P−10 ("bid"), a sell stop @ P−500 ("stop") and is long 10
    ETH-PERP lots; account 2 has an ask 10 @ P+10."""
    ven = make_venue(**params)
    for acct in (1, 2, 3):
        fund(ven, acct, USDT=1_000_000)
    fund(ven, 4, USDT=100)
    rest(ven, 1, "buy", 10, P - 10, client_order_id="bid")
    rest(ven, 2, "sell", 10, P + 10)
    rest(ven, 1, "sell", 10, None, type="stop_market", stop_price=P - 500, client_order_id="stop")
    trade(ven, 1, 3, 10, ETH_MARK, symbol=ETH)
    ven._check()
    return ven


def N(**kw) -> NewOrder:
    """A NewOrder of account 1 (buy 10 BTC-PERP @ P−20) with fields replaced."""
    base = dict(account=1, symbol=BTC, side=Side.BUY, qty=10, price=P - 20)
    base.update(kw)
    return NewOrder(**base)


def _bid(v: Venue) -> int:
    return v.accounts[1].by_cid["bid"].order_id


def _stop(v: Venue) -> int:
    return v.accounts[1].by_cid["stop"].order_id


def _pause(v: Venue) -> None:
    v.apply(PauseSymbol(symbol=BTC))


CATALOGUE = [
    # --- not a command at all
    ("object", lambda v: object(), R.UNKNOWN_MESSAGE),
    ("none", lambda v: None, R.UNKNOWN_MESSAGE),
    ("dict", lambda v: {"msg": "NewOrder"}, R.UNKNOWN_MESSAGE),
    ("an event", lambda v: Trade(symbol=BTC, trade_id=1, price=P, qty=1, taker_side=Side.BUY), R.UNKNOWN_MESSAGE),
    # --- unknown ids and names
    ("order unknown account", lambda v: N(account=999), R.UNKNOWN_ACCOUNT),
    ("order account str", lambda v: N(account="1"), R.UNKNOWN_ACCOUNT),
    ("order account float", lambda v: N(account=1.0), R.UNKNOWN_ACCOUNT),
    ("order account none", lambda v: N(account=None), R.UNKNOWN_ACCOUNT),
    ("order account list", lambda v: N(account=[1]), R.UNKNOWN_ACCOUNT),
    ("cancel unknown account", lambda v: CancelOrder(account=999, order_id=1), R.UNKNOWN_ACCOUNT),
    ("amend unknown account", lambda v: AmendOrder(account=999, order_id=1, qty=1), R.UNKNOWN_ACCOUNT),
    ("cancel-all unknown account", lambda v: CancelAll(account=999), R.UNKNOWN_ACCOUNT),
    ("withdraw unknown account", lambda v: Withdraw(account=999, asset="USDT", amount=1), R.UNKNOWN_ACCOUNT),
    ("query unknown account", lambda v: QueryAccount(account=999), R.UNKNOWN_ACCOUNT),
    ("open orders unknown account", lambda v: QueryOpenOrders(account=999), R.UNKNOWN_ACCOUNT),
    ("close unknown account", lambda v: CloseAccount(account=999), R.UNKNOWN_ACCOUNT),
    ("order unknown symbol", lambda v: N(symbol="DOGE-PERP"), R.UNKNOWN_SYMBOL),
    ("order symbol lowercase", lambda v: N(symbol="btc-perp"), R.UNKNOWN_SYMBOL),
    ("order symbol none", lambda v: N(symbol=None), R.UNKNOWN_SYMBOL),
    ("order symbol list", lambda v: N(symbol=[BTC]), R.UNKNOWN_SYMBOL),
    ("book unknown symbol", lambda v: QueryBook(symbol="DOGE-PERP"), R.UNKNOWN_SYMBOL),
    ("open orders unknown symbol", lambda v: QueryOpenOrders(account=1, symbol="X"), R.UNKNOWN_SYMBOL),
    ("pause unknown symbol", lambda v: PauseSymbol(symbol="X"), R.UNKNOWN_SYMBOL),
    ("cancel-all unknown symbol", lambda v: CancelAll(account=1, symbol="X"), R.UNKNOWN_SYMBOL),
    ("deposit unknown asset", lambda v: Deposit(account=1, asset="DOGE", amount=1), R.UNKNOWN_ASSET),
    ("deposit asset none", lambda v: Deposit(account=1, asset=None, amount=1), R.UNKNOWN_ASSET),
    ("withdraw unknown asset", lambda v: Withdraw(account=1, asset="DOGE", amount=1), R.UNKNOWN_ASSET),
    ("index unknown asset", lambda v: SetIndexPrice(asset="DOGE", price=1), R.UNKNOWN_ASSET),
    ("shock lowercase asset", lambda v: ShockPrice(asset="btc", change_bps=10), R.UNKNOWN_ASSET),
    ("cancel unknown order", lambda v: CancelOrder(account=1, order_id=999), R.UNKNOWN_ORDER),
    ("cancel order id str", lambda v: CancelOrder(account=1, order_id="1"), R.INVALID_FIELD),
    ("cancel unknown cid", lambda v: CancelOrder(account=1, client_order_id="nope"), R.UNKNOWN_ORDER),
    ("cancel other's order", lambda v: CancelOrder(account=2, order_id=_bid(v)), R.UNKNOWN_ORDER),
    ("amend unknown order", lambda v: AmendOrder(account=1, order_id=999, qty=1), R.UNKNOWN_ORDER),
    ("amend other's order", lambda v: AmendOrder(account=3, order_id=_bid(v), qty=1), R.UNKNOWN_ORDER),
    # --- malformed fields of an order
    ("side unknown", lambda v: N(side="long"), R.INVALID_FIELD),
    ("side uppercase", lambda v: N(side="BUY"), R.INVALID_FIELD),
    ("side none", lambda v: N(side=None), R.INVALID_FIELD),
    ("side int", lambda v: N(side=1), R.INVALID_FIELD),
    ("side list", lambda v: N(side=["buy"]), R.INVALID_FIELD),
    ("tif unknown", lambda v: N(tif="day"), R.INVALID_FIELD),
    ("type unknown", lambda v: N(type="iceberg"), R.INVALID_FIELD),
    ("type dict", lambda v: N(type={}), R.INVALID_FIELD),
    ("stp unknown", lambda v: N(stp="cancel_newest"), R.INVALID_FIELD),
    ("reduce_only int", lambda v: N(reduce_only=1), R.INVALID_FIELD),
    ("reduce_only str", lambda v: N(reduce_only="yes"), R.INVALID_FIELD),
    ("cid int", lambda v: N(client_order_id=123), R.INVALID_FIELD),
    ("cid empty", lambda v: N(client_order_id=""), R.INVALID_FIELD),
    ("cid too long", lambda v: N(client_order_id="x" * 37), R.INVALID_FIELD),
    ("market with price", lambda v: N(type=OrderType.MARKET, price=P), R.INVALID_FIELD),
    ("market post-only", lambda v: N(type=OrderType.MARKET, price=None, tif=TimeInForce.POST_ONLY), R.INVALID_FIELD),
    ("stop market with price", lambda v: N(type=OrderType.STOP_MARKET, stop_price=P + 500, price=P), R.INVALID_FIELD),
    ("stop post-only", lambda v: N(type=OrderType.STOP_LIMIT, stop_price=P + 500, tif=TimeInForce.POST_ONLY), R.INVALID_FIELD),
    ("stop triggers at once", lambda v: N(type=OrderType.STOP_MARKET, price=None, stop_price=P), R.INVALID_FIELD),
    ("qty zero", lambda v: N(qty=0), R.BAD_LOT),
    ("qty negative", lambda v: N(qty=-10), R.BAD_LOT),
    ("qty float", lambda v: N(qty=1.5), R.BAD_LOT),
    ("qty whole float", lambda v: N(qty=10.0), R.BAD_LOT),
    ("qty str", lambda v: N(qty="10"), R.BAD_LOT),
    ("qty none", lambda v: N(qty=None), R.BAD_LOT),
    ("qty bool", lambda v: N(qty=True), R.BAD_LOT),
    ("qty above max", lambda v: N(qty=1_000_001), R.ABOVE_MAX_QTY),
    ("qty huge", lambda v: N(qty=10**30), R.ABOVE_MAX_QTY),
    ("price zero", lambda v: N(price=0), R.BAD_TICK),
    ("price negative", lambda v: N(price=-P), R.BAD_TICK),
    ("price float", lambda v: N(price=599_980.5), R.BAD_TICK),
    ("price whole float", lambda v: N(price=599_980.0), R.BAD_TICK),
    ("price nan", lambda v: N(price=float("nan")), R.BAD_TICK),
    ("price str", lambda v: N(price="599980"), R.BAD_TICK),
    ("price bool", lambda v: N(price=True), R.BAD_TICK),
    ("price huge", lambda v: N(price=10**16), R.BAD_TICK),
    ("stop price float", lambda v: N(type=OrderType.STOP_MARKET, price=None, stop_price=600_500.0), R.BAD_TICK),
    ("missing price", lambda v: N(price=None), R.MISSING_PRICE),
    ("stop-limit missing price", lambda v: N(type=OrderType.STOP_LIMIT, price=None, stop_price=P + 500), R.MISSING_PRICE),
    ("missing stop price", lambda v: N(type=OrderType.STOP_MARKET, price=None), R.MISSING_STOP_PRICE),
    # --- instrument rules
    ("above price band", lambda v: N(price=720_001), R.OUTSIDE_PRICE_BAND),
    ("below price band", lambda v: N(price=479_999), R.OUTSIDE_PRICE_BAND),
    ("below min notional", lambda v: N(symbol=ETH, qty=1, price=ETH_MARK), R.BELOW_MIN_NOTIONAL),
    ("market no liquidity", lambda v: N(symbol="SOL-PERP", qty=100, price=None, type=OrderType.MARKET), R.NO_LIQUIDITY),
    ("post-only crosses", lambda v: N(price=P + 10, tif=TimeInForce.POST_ONLY), R.POST_ONLY_WOULD_CROSS),
    ("fok not fillable", lambda v: N(price=P + 10, qty=11, tif=TimeInForce.FOK), R.FOK_NOT_FILLABLE),
    ("reduce-only flat", lambda v: N(reduce_only=True), R.REDUCE_ONLY_WOULD_INCREASE),
    ("reduce-only same side", lambda v: N(symbol=ETH, price=ETH_MARK, reduce_only=True), R.REDUCE_ONLY_WOULD_INCREASE),
    ("duplicate cid", lambda v: N(client_order_id="bid"), R.DUPLICATE_CLIENT_ORDER_ID),
    ("duplicate cid of a stop", lambda v: N(client_order_id="stop"), R.DUPLICATE_CLIENT_ORDER_ID),
    ("insufficient margin", lambda v: N(account=4, qty=1_000, price=P - 20), R.INSUFFICIENT_MARGIN),
    # --- amend
    ("amend nothing", lambda v: AmendOrder(account=1, order_id=_bid(v)), R.NOTHING_TO_AMEND),
    ("amend same values", lambda v: AmendOrder(account=1, order_id=_bid(v), qty=10, price=P - 10), R.NOTHING_TO_AMEND),
    ("amend qty zero", lambda v: AmendOrder(account=1, order_id=_bid(v), qty=0), R.BAD_LOT),
    ("amend qty float", lambda v: AmendOrder(account=1, order_id=_bid(v), qty=5.0), R.BAD_LOT),
    ("amend price negative", lambda v: AmendOrder(account=1, order_id=_bid(v), price=-1), R.BAD_TICK),
    ("amend outside band", lambda v: AmendOrder(account=1, order_id=_bid(v), price=479_999), R.OUTSIDE_PRICE_BAND),
    ("amend a stop", lambda v: AmendOrder(account=1, client_order_id="stop", qty=5), R.NOT_ALLOWED),
    ("amend no id", lambda v: AmendOrder(account=1, qty=5), R.INVALID_FIELD),
    ("amend beyond margin", lambda v: AmendOrder(account=1, order_id=_bid(v), qty=999_999), R.INSUFFICIENT_MARGIN),
    ("cancel no id", lambda v: CancelOrder(account=1), R.INVALID_FIELD),
    ("cancel order id list", lambda v: CancelOrder(account=1, order_id=[1]), R.INVALID_FIELD),
    ("cancel cid list", lambda v: CancelOrder(account=1, client_order_id=["bid"]), R.INVALID_FIELD),
    ("amend order id dict", lambda v: AmendOrder(account=1, order_id={}, qty=1), R.INVALID_FIELD),
    # --- wallet
    ("deposit zero", lambda v: Deposit(account=1, asset="USDT", amount=0), R.INVALID_FIELD),
    ("deposit negative", lambda v: Deposit(account=1, asset="USDT", amount=-5), R.INVALID_FIELD),
    ("deposit float", lambda v: Deposit(account=1, asset="USDT", amount=1.5), R.INVALID_FIELD),
    ("deposit bool", lambda v: Deposit(account=1, asset="USDT", amount=True), R.INVALID_FIELD),
    ("deposit huge", lambda v: Deposit(account=1, asset="USDT", amount=10**19), R.INVALID_FIELD),
    ("deposit account negative", lambda v: Deposit(account=-1, asset="USDT", amount=1), R.INVALID_FIELD),
    ("deposit account str", lambda v: Deposit(account="5", asset="USDT", amount=1), R.INVALID_FIELD),
    ("deposit account huge", lambda v: Deposit(account=2**60, asset="USDT", amount=1), R.INVALID_FIELD),
    ("withdraw zero", lambda v: Withdraw(account=1, asset="USDT", amount=0), R.INVALID_FIELD),
    ("withdraw float", lambda v: Withdraw(account=1, asset="USDT", amount=1.0), R.INVALID_FIELD),
    ("withdraw above balance", lambda v: Withdraw(account=2, asset="USDT", amount=1_000_000 * U + 1), R.INSUFFICIENT_BALANCE),
    ("withdraw asset not held", lambda v: Withdraw(account=1, asset="BTC", amount=1), R.INSUFFICIENT_BALANCE),
    # account 1: 999,999.985 USDT after a 0.015 fee; IM = $5.9999 (bid of
    # 0.01 BTC at $59,999) + $0.30 (0.01 ETH long at $3,000) = $6.2999
    ("withdraw below IM", lambda v: Withdraw(account=1, asset="USDT", amount=999_994 * U), R.INSUFFICIENT_MARGIN),
    # --- admin
    ("index of USDT", lambda v: SetIndexPrice(asset="USDT", price=10**8), R.NOT_ALLOWED),
    ("shock USDT", lambda v: ShockPrice(asset="USDT", change_bps=100), R.NOT_ALLOWED),
    ("index zero", lambda v: SetIndexPrice(asset="BTC", price=0), R.INVALID_FIELD),
    ("index float", lambda v: SetIndexPrice(asset="BTC", price=6.0e12), R.INVALID_FIELD),
    ("index none", lambda v: SetIndexPrice(asset="BTC", price=None), R.INVALID_FIELD),
    ("index huge", lambda v: SetIndexPrice(asset="BTC", price=10**16), R.INVALID_FIELD),
    ("shock -100%", lambda v: ShockPrice(asset="BTC", change_bps=-10_000), R.INVALID_FIELD),
    ("shock too big", lambda v: ShockPrice(asset="BTC", change_bps=1_000_001), R.INVALID_FIELD),
    ("shock float", lambda v: ShockPrice(asset="BTC", change_bps=1.5), R.INVALID_FIELD),
    ("pause not bool", lambda v: PauseSymbol(symbol=BTC, paused="yes"), R.INVALID_FIELD),
    ("open account negative", lambda v: OpenAccount(account=-1), R.INVALID_FIELD),
    ("open account float", lambda v: OpenAccount(account=7.0), R.INVALID_FIELD),
    ("open existing account", lambda v: OpenAccount(account=2), R.ACCOUNT_EXISTS),
    ("close with balance", lambda v: CloseAccount(account=3), R.NOT_ALLOWED),
    ("book depth zero", lambda v: QueryBook(symbol=BTC, depth=0), R.INVALID_FIELD),
    ("book depth float", lambda v: QueryBook(symbol=BTC, depth=1.5), R.INVALID_FIELD),
    ("book depth huge", lambda v: QueryBook(symbol=BTC, depth=10_001), R.INVALID_FIELD),
]


@pytest.mark.parametrize("make, reason", [c[1:] for c in CATALOGUE], ids=[c[0] for c in CATALOGUE])
def test_reject_catalogue(make, reason):
    ven = busy_venue()
    rej = assert_rejected(ven, make(ven), reason)
    assert rej.message  # a person reading the log learns why


def test_rejects_name_the_command_and_echo_its_ids():
    ven = busy_venue()
    rej = assert_rejected(ven, AmendOrder(account=1, order_id=_bid(ven), price=479_999), R.OUTSIDE_PRICE_BAND)
    assert (rej.command, rej.account, rej.order_id) == ("AmendOrder", 1, _bid(ven))
    rej = assert_rejected(ven, N(client_order_id="bid"), R.DUPLICATE_CLIENT_ORDER_ID)
    assert (rej.command, rej.account, rej.client_order_id) == ("NewOrder", 1, "bid")
    rej = assert_rejected(ven, N(account="1"), R.UNKNOWN_ACCOUNT)
    assert rej.account is None  # a non-integer is not echoed as an account id


SETUP_CATALOGUE = [
    ("symbol paused", _pause, lambda v: N(), R.SYMBOL_PAUSED),
    ("amend while paused", _pause, lambda v: AmendOrder(account=1, order_id=_bid(v), qty=5), R.SYMBOL_PAUSED),
    ("too many open orders", lambda v: setattr(v, "max_open_orders", 2), lambda v: N(), R.TOO_MANY_OPEN_ORDERS),
    ("close with a position", lambda v: v.apply(Withdraw(account=3, asset="USDT", amount=1)), lambda v: CloseAccount(account=1), R.NOT_ALLOWED),
    ("reduce-only amend grows", lambda v: rest(v, 1, "sell", 4, ETH_MARK + 5, symbol=ETH, reduce_only=True),
     lambda v: AmendOrder(account=1, order_id=v.next_order_id - 1, qty=11), R.REDUCE_ONLY_WOULD_INCREASE),
    ("post-only amend crosses", lambda v: rest(v, 3, "buy", 5, P - 30, tif="post_only", client_order_id="po"),
     lambda v: AmendOrder(account=3, client_order_id="po", price=P + 10), R.POST_ONLY_WOULD_CROSS),
    ("market below min notional", lambda v: rest(v, 2, "buy", 10, ETH_MARK, symbol=ETH),
     lambda v: N(symbol=ETH, side=Side.SELL, qty=1, price=None, type=OrderType.MARKET), R.BELOW_MIN_NOTIONAL),
    ("shock past max price", lambda v: set_index(v, "BTC", 1_000_000),
     lambda v: ShockPrice(asset="BTC", change_bps=1_000_000), R.INVALID_FIELD),
    ("reduce-only stop flat", lambda v: None, lambda v: N(account=3, symbol=BTC, type=OrderType.STOP_MARKET, price=None, stop_price=P + 500, reduce_only=True), R.REDUCE_ONLY_WOULD_INCREASE),
    # --- leverage: account 4 ($100) bids $600; at 1x that needs $600 of IM
    ("leverage 1x needs more IM than equity", lambda v: rest(v, 4, "buy", 10, P - 20),
     lambda v: SetLeverage(account=4, symbol=BTC, leverage=1), R.LEVERAGE_INSUFFICIENT_MARGIN),
    ("leverage above the tier maximum", lambda v: None,
     lambda v: SetLeverage(account=1, symbol=BTC, leverage=101), R.LEVERAGE_ABOVE_MAX),
]


@pytest.mark.parametrize("setup, make, reason", [c[1:] for c in SETUP_CATALOGUE], ids=[c[0] for c in SETUP_CATALOGUE])
def test_reject_catalogue_with_setup(setup, make, reason):
    ven = busy_venue()
    setup(ven)
    assert_rejected(ven, make(ven), reason)


def _no_btc_price_venue() -> Venue:
    import msgspec

    from exchange_sim import config as config_mod

    cfg = config_mod.default()
    assets = [msgspec.structs.replace(a, index_price=None) if a.name == "BTC" else a for a in cfg.assets]
    ven = Venue(msgspec.structs.replace(cfg, assets=assets))
    fund(ven, 1, USDT=1_000)
    return ven


def test_no_mark_price_until_the_index_is_set():
    ven = _no_btc_price_venue()
    assert ven.instruments[BTC].mark == 0
    assert_rejected(ven, N(), R.NO_MARK_PRICE)
    assert_rejected(ven, ShockPrice(asset="BTC", change_bps=100), R.NO_MARK_PRICE)
    set_index(ven, "BTC", 60_000)
    rest(ven, 1, "buy", 10, P - 20)


def test_the_catalogue_covers_every_reason_the_venue_raises():
    """Grep ``R.X`` in the core's stages (exchange_sim/core/*.py): each must appear in a catalogue above.
    (REDUCE_ONLY_MODE and MARGIN_MODE_CHANGE_DENIED belong to the risk
    engine's own tests.)"""
    import exchange_sim.core as core

    files = sorted(Path(core.__file__).parent.glob("*.py"))
    source = "\n".join(f.read_text(encoding="utf-8") for f in files)
    raised = {R[name] for name in re.findall(r"\bR\.([A-Z_]+)\b", source)}
    assert len(raised) > 20, f"only {sorted(raised)} found in {[f.name for f in files]}"
    covered = {c[-1] for c in CATALOGUE} | {c[-1] for c in SETUP_CATALOGUE} | {R.NO_MARK_PRICE}
    risk_engine = {R.REDUCE_ONLY_MODE, R.MARGIN_MODE_CHANGE_DENIED}
    assert raised - risk_engine <= covered, f"untested reject reasons: {sorted(raised - risk_engine - covered)}"


def test_the_snapshot_sees_every_kind_of_change(v):
    """The "unchanged" assertions above are only as good as the snapshot:
    each of these commands changes one observable thing, and it must differ."""
    a = rest(v, 1, "buy", 10, P - 1)
    rest(v, 2, "buy", 10, P - 1)
    changes = [
        Deposit(account=3, asset="BTC", amount=1),
        NewOrder(account=3, symbol=BTC, side=Side.SELL, qty=1, type=OrderType.STOP_MARKET, stop_price=P - 900),
        AmendOrder(account=1, order_id=a, price=P - 2),  # level totals change...
        AmendOrder(account=1, order_id=a, price=P - 1),  # ...and back: only the FIFO order differs now
        PauseSymbol(symbol=ETH),
        SetIndexPrice(asset="SOL", price=151 * 10**8),
        NewOrder(account=3, symbol=BTC, side=Side.SELL, qty=1, price=P - 1),  # a trade
        Withdraw(account=3, asset="USDT", amount=1),
        OpenAccount(account=77),
    ]
    for cmd in changes:
        before = snapshot(v)
        events = v.apply(cmd)
        assert not of(events, Rejected), events
        assert snapshot(v) != before, f"the snapshot missed {cmd}"


def test_queries_filter_by_symbol_and_depth(v):
    for i in range(3):
        rest(v, 1, "buy", 10 + i, P - 1 - i)
        rest(v, 1, "sell", 20 + i, P + 1 + i)
    eth = rest(v, 1, "buy", 10, ETH_MARK - 1, symbol=ETH)
    assert [o.order_id for o in open_orders(v, 1, ETH)] == [eth]
    assert len(open_orders(v, 1, BTC)) == 6
    (snap,) = v.apply(QueryBook(symbol=BTC, depth=2))
    assert (snap.bids, snap.asks) == ([(P - 1, 10), (P - 2, 11)], [(P + 1, 20), (P + 2, 21)])
    assert snap.seq == book_of(v).seq == 6


# ------------------------------------------- reject messages in human units

_BRACKET = re.compile(r"\[-?\d+ (?:ticks|lots?|minor units?)\]")  # a wire integer, as messages bracket it
_HUMAN = re.compile(r"-?\d[\d,]*(?:\.\d+)? [A-Z]+ \[-?\d+ (?:ticks|lots?|minor units?)\]")


def _wire_integers_shown_bare(message: str, raw: set[int]) -> list[int]:
    """The wire integers (ticks, lots, minor units) of ``raw`` that the
    message shows outside a bracket, i.e. without their human value."""
    outside = _BRACKET.sub("", message)
    shown = {int(t.replace(",", "")) for t in re.findall(r"\d[\d,]*(?:\.\d+)?", outside) if "." not in t}
    return sorted(shown & raw)


def _raw_figures(ven: Venue, cmd) -> set[int]:
    """Every tick, lot and minor-unit integer the command carries or the venue
    compares it with (mark, maximum quantity, the account's balances)."""
    raw = {getattr(cmd, f, None) for f in ("price", "qty", "stop_price", "amount", "delta")}
    ins = ven.instruments.get(getattr(cmd, "symbol", None)) if isinstance(getattr(cmd, "symbol", None), str) else None
    if ins is None and hasattr(cmd, "order_id") and isinstance(getattr(cmd, "account", None), int):
        acct = ven.accounts.get(cmd.account)
        order = acct.orders.get(cmd.order_id) if acct is not None and isinstance(cmd.order_id, int) else None
        ins = ven.instruments[order.symbol] if order is not None else None
    if ins is not None:
        raw |= {ins.mark, ins.max_qty}
    acct = ven.accounts.get(cmd.account) if isinstance(getattr(cmd, "account", None), int) else None
    if acct is not None:
        raw |= set(acct.balances.values())
    return {x for x in raw if type(x) is int and x >= 2}


def test_the_human_units_check_catches_bare_ticks():
    old = "outside_price_band: price 599402 is too far from mark 420000"
    assert _wire_integers_shown_bare(old, {599402, 420000}) == [420000, 599402]
    new = "price 59,940.2 USDT [599402 ticks] is too far from mark 42,000.0 USDT [420000 ticks]"
    assert _wire_integers_shown_bare(new, {599402, 420000}) == []
    assert len(_HUMAN.findall(new)) == len(_BRACKET.findall(new)) == 2


@pytest.mark.parametrize("setup, make", [(lambda v: None, c[1]) for c in CATALOGUE] + [c[1:3] for c in SETUP_CATALOGUE],
                         ids=[c[0] for c in CATALOGUE] + [c[0] for c in SETUP_CATALOGUE])
def test_reject_messages_give_prices_quantities_and_amounts_in_human_units(setup, make):
    """Every reject of the catalogue: no tick, lot or minor-unit integer of the
    command or of what it was compared with appears without its human value,
    and every bracketed wire integer follows its value in the quote currency,
    the base asset or the asset itself."""
    ven = busy_venue()
    setup(ven)
    cmd = make(ven)
    raw = _raw_figures(ven, cmd)
    (rej,) = [e for e in ven.apply(cmd) if isinstance(e, Rejected)]
    assert not _wire_integers_shown_bare(rej.message, raw), rej.message
    assert len(_HUMAN.findall(rej.message)) == len(_BRACKET.findall(rej.message)), rej.message


def test_reject_messages_show_the_figures_a_person_reads():
    ven = busy_venue()
    rej = assert_rejected(ven, N(price=720_001), R.OUTSIDE_PRICE_BAND)
    assert rej.message == "price 72,000.1 USDT [720001 ticks] is too far from mark 60,000.0 USDT [600000 ticks]"
    rej = assert_rejected(ven, N(type=OrderType.STOP_MARKET, price=None, stop_price=P), R.INVALID_FIELD)
    assert rej.message == "stop price 60,000.0 USDT [600000 ticks] would trigger immediately at mark 60,000.0 USDT [600000 ticks]"
    rej = assert_rejected(ven, N(qty=1_000_001), R.ABOVE_MAX_QTY)
    assert rej.message == "qty 1,000.001 BTC [1000001 lots] exceeds the maximum 1,000.000 BTC [1000000 lots]"
    rej = assert_rejected(ven, Withdraw(account=1, asset="BTC", amount=1), R.INSUFFICIENT_BALANCE)
    assert rej.message == "balance 0.00000000 BTC [0 minor units] is below 0.00000001 BTC [1 minor unit]"
