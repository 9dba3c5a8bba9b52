"""Factories for the risk-engine tests: test configs built from the default
one with ``msgspec.structs.replace``, venues with a deep-pocketed house
account, positions opened at an exact price, and tolerant float compares.

Units (ticks, lots, µUSDT per tick×lot, start marks): the one table in
``units.py``, re-exported here (``U``, ``COIN``).

Default margin tiers, marginal like tax brackets (IM rate, MM rate):
BTC/ETH: ≤$250k 1%/0.5%, ≤$1M 2%/1%, ≤$10M 5%/2.5%, above 10%/5%;
SOL/BNB: ≤$100k 2%/1%, ≤$1M 5%/2.5%, above 10%/5%;
MEME: ≤$50k 5%/2.5%, above 20%/10%.
"""

from __future__ import annotations

import math
from decimal import Decimal

import msgspec

from units import COIN, U  # noqa: F401  (re-exported)

from exchange_sim import config as config_mod
from exchange_sim.config import Config
from exchange_sim.venue import Venue
from protocol.messages import (
    PRICE_SCALE,
    Deposit,
    Fill,
    NewOrder,
    QueryAccount,
    QueryBook,
    QueryOpenOrders,
    Rejected,
    SetIndexPrice,
    SetMarginMode,
    Side,
)

HOUSE = 0  # counterparty with (practically) unlimited USDT
HOUSE_USDT = 10**12  # whole USDT


# ------------------------------------------------------------------ configs


def default_config() -> Config:
    return config_mod.default()


def replace(obj, **kw):
    return msgspec.structs.replace(obj, **kw)


def no_fees(cfg: Config) -> Config:
    """Maker and taker fees 0, so wallets hold exactly what tests deposit."""
    return replace(cfg, instruments=[replace(i, maker_fee="0", taker_fee="0") for i in cfg.instruments])


def no_haircuts(cfg: Config) -> Config:
    """Every asset counts at 100 % of its index value."""
    return replace(cfg, assets=[replace(a, haircut=[(math.inf, 0.0)]) for a in cfg.assets])


def with_haircut(cfg: Config, asset: str, brackets) -> Config:
    return replace(cfg, assets=[replace(a, haircut=brackets) if a.name == asset else a for a in cfg.assets])


def with_tiers(cfg: Config, symbol: str, tiers) -> Config:
    """Replace one instrument's margin tiers [(upper, imr, mmr), ...]."""
    return replace(cfg, instruments=[replace(i, margin_tiers=tiers) if i.symbol == symbol else i for i in cfg.instruments])


def with_risk(cfg: Config, **kw) -> Config:
    return replace(cfg, risk=replace(cfg.risk, **kw))


def with_profile(cfg: Config, name: str) -> Config:
    return with_risk(cfg, profile=name)


def with_models(cfg: Config, **kw) -> Config:
    return with_risk(cfg, models=replace(cfg.risk.models, **kw))


def with_prices(cfg: Config, **usd) -> Config:
    """Start-up index prices in USD (decimal strings)."""
    return replace(cfg, assets=[replace(a, index_price=str(usd[a.name])) if a.name in usd else a for a in cfg.assets])


BTC2 = "BTC-QPERP"  # a second BTC instrument (the same underlying, other symbol)


def with_second_btc(cfg: Config) -> Config:
    """Add ``BTC-QPERP``: a copy of BTC-PERP under another symbol, so a long on
    one and a short on the other hedge the same underlying."""
    btc = next(i for i in cfg.instruments if i.symbol == "BTC-PERP")
    return replace(cfg, instruments=[*cfg.instruments, replace(btc, symbol=BTC2)])


def extra_instruments(cfg: Config, n_total: int) -> Config:
    """Pad the config to ``n_total`` instruments with copies of the default
    ones (``BTC-PERP-2``, ``ETH-PERP-2``, ...) over the same underlyings."""
    base = list(cfg.instruments)
    out = list(base)
    k = 2
    while len(out) < n_total:
        for ins in base:
            if len(out) == n_total:
                break
            out.append(replace(ins, symbol=f"{ins.symbol}-{k}"))
        k += 1
    return replace(cfg, instruments=out)


# ------------------------------------------------------------------ venues


def new_venue(cfg: Config | None = None) -> Venue:
    """A venue with the house account funded with HOUSE_USDT."""
    v = Venue(cfg if cfg is not None else no_fees(default_config()))
    v.apply(Deposit(account=HOUSE, asset="USDT", amount=HOUSE_USDT * U))
    return v


def deposit(v: Venue, account: int, **amounts) -> None:
    """Deposit whole units (decimal strings or numbers) per asset; zeros are skipped."""
    for asset, whole in amounts.items():
        minor = Decimal(str(whole)) * v.assets[asset].unit
        if not minor:
            continue
        assert minor == minor.to_integral_value(), f"{whole} {asset} is not whole minor units"
        ev = v.apply(Deposit(account=account, asset=asset, amount=int(minor)))
        assert not isinstance(ev[0], Rejected), ev


def set_price(v: Venue, asset: str, usd) -> list:
    return v.apply(SetIndexPrice(asset=asset, price=int(Decimal(str(usd)) * PRICE_SCALE)))


def set_mode(v: Venue, account: int, mode: str) -> list:
    ev = v.apply(SetMarginMode(account=account, mode=mode))
    assert not isinstance(ev[0], Rejected), ev
    return ev


def open_position(v: Venue, account: int, symbol: str, lots: int, price: int | None = None,
                  house: int = HOUSE) -> list:
    """Make ``account`` trade ``lots`` (signed) of ``symbol`` against the house
    at ``price`` ticks (default: mark). The house rests a post-only order, the
    account takes it with an IOC. Returns the account's events; asserts the
    whole quantity filled."""
    ins = v.instruments[symbol]
    price = ins.mark if price is None else price
    buy = lots > 0
    qty = abs(lots)
    ev = v.apply(NewOrder(account=house, symbol=symbol, side=Side.SELL if buy else Side.BUY, qty=qty,
                          price=price, tif="post_only"))
    assert not isinstance(ev[0], Rejected), ev
    events = v.apply(NewOrder(account=account, symbol=symbol, side=Side.BUY if buy else Side.SELL, qty=qty,
                              price=price, tif="ioc"))
    filled = sum(e.qty for e in events if isinstance(e, Fill) and e.account == account)
    assert filled == qty, f"not filled: {events}"
    return events


def order(v: Venue, account: int, symbol: str, side: str, qty: int, price: int | None = None, **kw) -> list:
    return v.apply(NewOrder(account=account, symbol=symbol, side=Side(side), qty=qty, price=price, **kw))


# ------------------------------------------------------------------ compare


def close(a: float | None, b: float | None, rel: float = 1e-9, abs_: float = 1e-9) -> bool:
    """Float compare with None / inf meaning "no requirement"."""
    if a is None or b is None or math.isinf(a) or math.isinf(b):
        norm = lambda x: math.inf if x is None else x  # noqa: E731
        return norm(a) == norm(b)
    return math.isclose(a, b, rel_tol=rel, abs_tol=abs_)


# ------------------------------------------------------------------ rejects


def snapshot(v: Venue) -> bytes:
    """What a user can observe, msgpack-encoded: every account's update (wallet,
    positions, mode, margin figures), open orders, isolated allocations and
    positions' cost, every book, marks and the money ledger."""
    parts: list = []
    for acct_id in sorted(v.accounts):
        acct = v.accounts[acct_id]
        parts.append(v.apply(QueryAccount(account=acct_id)))
        parts.append(v.apply(QueryOpenOrders(account=acct_id)))
        parts.append(sorted((s, p.qty, p.cost) for s, p in acct.positions.items()))
        parts.append(sorted(acct.isolated.items()))
    for sym in sorted(v.instruments):
        parts.append(v.apply(QueryBook(symbol=sym)))
        parts.append(v.instruments[sym].mark)
    parts.append([v.next_order_id, v.next_trade_id])
    parts.append([sorted(v.deposits.items()), sorted(v.withdrawals.items()), sorted(v.fees_collected.items())])
    return msgspec.msgpack.encode(parts)


def assert_rejected(v: Venue, command, reason) -> Rejected:
    """``command`` gives exactly one Rejected with ``reason`` and changes nothing."""
    before = snapshot(v)
    events = v.apply(command)
    assert len(events) == 1 and isinstance(events[0], Rejected), f"expected a reject, got {events}"
    assert events[0].reason == reason, f"expected {reason}, got {events[0]}"
    assert snapshot(v) == before, f"state changed by a rejected {type(command).__name__}"
    v._check()
    return events[0]
