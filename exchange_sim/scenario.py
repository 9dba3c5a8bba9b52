"""Build an account from a small scenario file, for ``explain`` and lessons.

A scenario (TOML) gives index prices, wallet holdings and positions in human
units, and optionally a margin mode and entry prices::

    mode = "portfolio"
    [prices]                 BTC = "50000"
    [holdings]               BTC = "0.2"
    [[positions]]            symbol = "SOL-PERP"   qty = "250"   entry = "190"

The account gets its positions the way a real one does: by trading, against
a well-funded "house" account, with fees switched off so the wallet holds
exactly what the file says. Entry prices default to the final prices.
"""

from __future__ import annotations

import tomllib
from decimal import Decimal, InvalidOperation
from importlib import resources
from pathlib import Path

import msgspec

from exchange_sim.config import Config
from exchange_sim.instruments import price_to_e8
from exchange_sim.venue import Venue
from protocol.messages import (
    Deposit,
    MarginMode,
    NewOrder,
    Rejected,
    SetIndexPrice,
    SetMarginMode,
    Side,
)

ACCOUNT, HOUSE = 1, 0


class Position(msgspec.Struct, forbid_unknown_fields=True):
    symbol: str
    qty: str
    entry: str | None = None


class Scenario(msgspec.Struct, forbid_unknown_fields=True):
    prices: dict[str, str] = {}
    holdings: dict[str, str] = {}
    positions: list[Position] = []
    mode: str = "cross"


def builtin_article() -> str:
    return resources.files("exchange_sim").joinpath("lessons/article.toml").read_text(encoding="utf-8")


def load(path: str | Path | None) -> Scenario:
    text = builtin_article() if path is None else Path(path).read_text(encoding="utf-8")
    try:
        sc = msgspec.convert(tomllib.loads(text), Scenario)
    except (tomllib.TOMLDecodeError, msgspec.ValidationError) as exc:
        raise ValueError(f"bad scenario file: {exc}") from None
    numbers = [*sc.prices.values(), *sc.holdings.values()]
    numbers += [x for p in sc.positions for x in (p.qty, p.entry) if x is not None]
    for text in numbers:
        try:
            ok = Decimal(text).is_finite()
        except InvalidOperation:
            ok = False
        if not ok:
            raise ValueError(f"bad scenario file: {text!r} is not a decimal number")
    return sc


def build(config: Config, sc: Scenario) -> Venue:
    """A venue in which account 1 holds the scenario. Raises ``ValueError``."""
    free = [msgspec.structs.replace(i, maker_fee="0", taker_fee="0") for i in config.instruments]
    venue = Venue(msgspec.structs.replace(config, instruments=free))

    def must(cmd):
        for ev in venue.apply(cmd):
            if isinstance(ev, Rejected):
                raise ValueError(f"scenario step {type(cmd).__name__} refused: {ev.reason}: {ev.message}")

    for name, price in sc.prices.items():
        if name not in venue.assets:
            raise ValueError(f"unknown asset {name!r} in [prices]")
        if name != venue.settle_name:
            must(SetIndexPrice(asset=name, price=price_to_e8(price)))
    must(Deposit(account=HOUSE, asset=venue.settle_name, amount=10**15))
    for name, amount in sc.holdings.items():
        asset = venue.assets.get(name)
        if asset is None:
            raise ValueError(f"unknown asset {name!r} in [holdings]")
        must(Deposit(account=ACCOUNT, asset=name, amount=int(Decimal(amount) * asset.unit)))
    mode = MarginMode(sc.mode)
    if mode is not MarginMode.CROSS:
        must(SetMarginMode(account=ACCOUNT, mode=mode))
    for p in sc.positions:
        ins = venue.instruments.get(p.symbol)
        if ins is None:
            raise ValueError(f"unknown symbol {p.symbol!r}")
        final = venue.assets[ins.underlying].index
        if p.entry is not None:
            must(SetIndexPrice(asset=ins.underlying, price=price_to_e8(p.entry)))
        lots = Decimal(p.qty) / ins.lot_size
        if lots != lots.to_integral_value() or lots == 0:
            raise ValueError(f"{p.symbol}: qty {p.qty} is not a whole non-zero number of lots of {ins.lot_size}")
        lots = int(lots)
        side, house_side = (Side.BUY, Side.SELL) if lots > 0 else (Side.SELL, Side.BUY)
        must(NewOrder(account=HOUSE, symbol=p.symbol, side=house_side, qty=abs(lots), price=ins.mark))
        must(NewOrder(account=ACCOUNT, symbol=p.symbol, side=side, qty=abs(lots), price=ins.mark))
        if p.entry is not None:
            must(SetIndexPrice(asset=ins.underlying, price=final))
    return venue
