"""Factories for the venue tests (core: matching, accounts, settlement,
cross-margin pre-trade checks): a venue in a line, funded accounts, orders
that return their events, and a snapshot of everything a user can observe
(for "a reject changes nothing" assertions). The fixtures that use them live
in ``conftest.py``; this is a plain module (``from venue_helpers import
...``) so its name cannot clash with another directory's ``conftest``.

Units (ticks, lots, µUSDT per tick×lot, start marks): the one table in
``units.py``, re-exported here (``U``, the symbols, ``BTC_MARK``, ``ETH_MARK``).

Fees: maker 0.02 %, taker 0.05 %, rounded up to the µUSDT. Limit prices must
lie within 20 % of mark; market orders fill no further than 5 % from mark.
"""

from __future__ import annotations

from decimal import Decimal

import msgspec

from units import BNB, BTC, BTC_MARK, ETH, ETH_MARK, MEME, SOL, U  # noqa: F401  (re-exported)

from exchange_sim import config as config_mod
from exchange_sim.book import BUY, SELL
from exchange_sim.venue import Venue
from protocol.messages import (
    PRICE_SCALE,
    AccountUpdate,
    BookSnapshot,
    Deposit,
    Fill,
    Instruments,
    NewOrder,
    OpenOrders,
    OrderAccepted,
    QueryAccount,
    QueryBook,
    QueryInstruments,
    QueryOpenOrders,
    Rejected,
    SetIndexPrice,
    Side,
)

MAKER = 100  # a deep-pocketed counterparty account used by many tests

_SIDES = {"buy": Side.BUY, "sell": Side.SELL, Side.BUY: Side.BUY, Side.SELL: Side.SELL}


# ------------------------------------------------------------------ venues


def make_venue(**venue_params) -> Venue:
    """A venue with the embedded default config; keyword arguments override
    ``[venue]`` parameters, e.g. ``make_venue(max_open_orders=3)``."""
    cfg = config_mod.default()
    if venue_params:
        cfg = msgspec.structs.replace(cfg, venue=msgspec.structs.replace(cfg.venue, **venue_params))
    return Venue(cfg)


def fund(venue: Venue, account: int, **amounts) -> None:
    """Deposit whole units per asset: ``fund(v, 1, USDT=1000, BTC="0.5")``."""
    for asset, whole in amounts.items():
        unit = venue.assets[asset].unit
        minor = Decimal(str(whole)) * unit
        assert minor == minor.to_integral_value(), f"{whole} {asset} is not a whole number of minor units"
        (ev, *_) = venue.apply(Deposit(account=account, asset=asset, amount=int(minor)))
        assert not isinstance(ev, Rejected), ev


def set_index(venue: Venue, asset: str, usd: str | int) -> list:
    """Set an asset's USD index price (human units) and return the events."""
    return venue.apply(SetIndexPrice(asset=asset, price=int(Decimal(str(usd)) * PRICE_SCALE)))


# ------------------------------------------------------------------ orders


def place(venue: Venue, account: int, side, qty: int, price: int | None = None, symbol: str = BTC, **kw) -> list:
    """Apply a NewOrder and return its events (``side`` may be "buy"/"sell")."""
    return venue.apply(NewOrder(account=account, symbol=symbol, side=_SIDES.get(side, side), qty=qty, price=price, **kw))


def rest(venue: Venue, account: int, side, qty: int, price: int, symbol: str = BTC, **kw) -> int:
    """Place an order that must be accepted and return its order id."""
    events = place(venue, account, side, qty, price, symbol, **kw)
    return accepted_id(events)


def accepted_id(events: list) -> int:
    acc = [e for e in events if isinstance(e, OrderAccepted)]
    assert len(acc) == 1, f"expected one OrderAccepted, got {events}"
    return acc[0].order_id


def trade(venue: Venue, buyer: int, seller: int, qty: int, price: int, symbol: str = BTC, taker: str = "buyer") -> list:
    """Make ``buyer`` buy ``qty`` lots from ``seller`` at ``price``: the maker
    rests a post-only order, the taker crosses it. Returns the taker's events."""
    if taker == "buyer":
        rest(venue, seller, "sell", qty, price, symbol, tif="post_only")
        events = place(venue, buyer, "buy", qty, price, symbol, tif="ioc")
    else:
        rest(venue, buyer, "buy", qty, price, symbol, tif="post_only")
        events = place(venue, seller, "sell", qty, price, symbol, tif="ioc")
    filled = sum(e.qty for e in events if isinstance(e, Fill) and e.liquidity == "taker")
    assert filled == qty, f"trade did not fill: {events}"
    return events


# ------------------------------------------------------------------ events


def of(events: list, cls, **match) -> list:
    """Events of type ``cls`` whose fields equal ``match``."""
    return [e for e in events if isinstance(e, cls) and all(getattr(e, k) == v for k, v in match.items())]


def one(events: list, cls, **match):
    found = of(events, cls, **match)
    assert len(found) == 1, f"expected one {cls.__name__} {match}, got {events}"
    return found[0]


def account_view(venue: Venue, account: int) -> AccountUpdate:
    (ev,) = venue.apply(QueryAccount(account=account))
    assert isinstance(ev, AccountUpdate), ev
    return ev


def position(venue: Venue, account: int, symbol: str = BTC):
    """The account's PositionView for ``symbol`` or None when flat."""
    views = [p for p in account_view(venue, account).positions if p.symbol == symbol]
    return views[0] if views else None


def open_orders(venue: Venue, account: int, symbol: str | None = None) -> list:
    (ev,) = venue.apply(QueryOpenOrders(account=account, symbol=symbol))
    assert isinstance(ev, OpenOrders), ev
    return ev.orders


def book_of(venue: Venue, symbol: str = BTC) -> BookSnapshot:
    (ev,) = venue.apply(QueryBook(symbol=symbol))
    assert isinstance(ev, BookSnapshot), ev
    return ev


def queue(venue: Venue, symbol: str, side: str) -> list[tuple[int, int, int]]:
    """(order id, price, qty) of resting orders in priority order."""
    s = BUY if side == "buy" else SELL
    return [(o.order_id, o.price, o.qty) for o in venue.instruments[symbol].book.iter_orders(s)]


# ---------------------------------------------------------------- snapshot


def snapshot(venue: Venue) -> bytes:
    """Everything a user can observe, msgpack-encoded: every account's
    QueryAccount and QueryOpenOrders replies and the client order ids it may
    not reuse, every book's full depth and the
    FIFO order inside each level, instruments and index prices, paused flags,
    untriggered stops, the next order/trade ids and the money ledger.

    Two equal snapshots mean no command in between changed observable state.
    (``venue.seq``, the count of commands applied, is excluded on purpose: a
    sequencer counts rejected commands too.)
    """
    parts: list = []
    for acct_id in sorted(venue.accounts):
        parts.append(venue.apply(QueryAccount(account=acct_id)))
        parts.append(venue.apply(QueryOpenOrders(account=acct_id)))
        acct = venue.accounts[acct_id]
        parts.append(sorted((s, p.qty, p.cost) for s, p in acct.positions.items()))
        parts.append(list((acct.client_ids or {}).items()))  # in order: the oldest is forgotten first
    for sym in sorted(venue.instruments):
        ins = venue.instruments[sym]
        parts.append(venue.apply(QueryBook(symbol=sym)))
        parts.append([queue(venue, sym, "buy"), queue(venue, sym, "sell")])
        parts.append([ins.mark, ins.paused, ins.book_seq, sorted(venue.stops[sym])])
    (instruments,) = venue.apply(QueryInstruments())
    assert isinstance(instruments, Instruments)
    parts.append(instruments)
    parts.append([venue.next_order_id, venue.next_trade_id])
    parts.append([sorted(venue.deposits.items()), sorted(venue.withdrawals.items()), sorted(venue.fees_collected.items())])
    return msgspec.msgpack.encode(parts)


def assert_rejected(venue: Venue, command, reason) -> Rejected:
    """Apply ``command``: it must give exactly one Rejected event with
    ``reason`` and leave every observable part of the venue unchanged."""
    before = snapshot(venue)
    events = venue.apply(command)
    assert len(events) == 1 and isinstance(events[0], Rejected), f"expected a reject, got {events}"
    assert events[0].reason == reason, f"expected {reason}, got {events[0]}"
    assert snapshot(venue) == before, f"state changed by a rejected {type(command).__name__}"
    venue._check()
    return events[0]
