"""Build an account from a small scenario file, for ``explain`` and lessons.

A scenario (TOML) gives index prices, wallet holdings and positions in human
units, and optionally a margin mode and entry prices::

    mode = "portfolio"
    [prices]                 BTC = 50000       SOL = "190.5"
    [holdings]               BTC = "0.2"
    [[positions]]            symbol = "SOL-PERP"   qty = 250   entry = "190"

Numbers may be TOML strings, integers or floats. A float is read through its
shortest decimal text (``repr``: ``0.1`` is 0.1, not the binary double
0.1000000000000000055...); write a string when every digit matters.

Every asset the account holds or trades (other than the settlement asset,
always $1) needs a price under ``[prices]``: a missing one is an error
naming the asset, never the config's start-up price.

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

from exchange_sim.config import MARGIN_MODES, Config, not_valid
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


#: a number in a scenario file: TOML string, integer or float
Number = str | int | float


class Position(msgspec.Struct, forbid_unknown_fields=True):
    symbol: str
    qty: Number
    entry: Number | None = None


class Scenario(msgspec.Struct, forbid_unknown_fields=True):
    prices: dict[str, Number] = {}
    holdings: dict[str, Number] = {}
    positions: list[Position] = []
    mode: str = "cross"


def builtin_article() -> str:
    return resources.files("exchange_sim").joinpath("lessons/article.toml").read_text(encoding="utf-8")


def decimal(value: Number, where: str) -> Decimal:
    """A scenario number as a finite Decimal (a float via its ``repr``).

    Raises ``ValueError`` naming ``where`` (e.g. ``[prices] BTC``).
    """
    if isinstance(value, bool) or not isinstance(value, (str, int, float)):
        raise ValueError(f"bad scenario file: {where} = {value!r} is not a number")
    try:
        out = Decimal(repr(value) if isinstance(value, float) else value)
    except InvalidOperation:
        out = None
    if out is None or not out.is_finite():
        raise ValueError(f"bad scenario file: {where} = {value!r} is not a decimal number")
    return out


def load(path: str | Path | None) -> Scenario:
    text = builtin_article() if path is None else Path(path).read_text(encoding="utf-8")
    try:
        raw = tomllib.loads(text)
        for table in ("prices", "holdings"):  # first: msgspec's own error would not name the asset
            if isinstance(raw.get(table), dict):
                for name, value in raw[table].items():
                    decimal(value, f"[{table}] {name}")
        sc = msgspec.convert(raw, Scenario)
    except (tomllib.TOMLDecodeError, msgspec.ValidationError) as exc:
        raise ValueError(f"bad scenario file: {exc}") from None
    check(sc)
    return sc


def check(sc: Scenario) -> None:
    """Every number and the mode of ``sc`` well formed, or ``ValueError``."""
    for table in ("prices", "holdings"):
        for name, value in getattr(sc, table).items():
            decimal(value, f"[{table}] {name}")
    for p in sc.positions:
        decimal(p.qty, f"{p.symbol} qty")
        if p.entry is not None:
            decimal(p.entry, f"{p.symbol} entry")
    if sc.mode not in MARGIN_MODES:
        raise ValueError(not_valid("bad scenario file: mode", sc.mode, "margin mode", MARGIN_MODES))


def build(config: Config, sc: Scenario) -> Venue:
    """A venue in which account 1 holds the scenario. Raises ``ValueError``."""
    free = [msgspec.structs.replace(i, maker_fee="0", taker_fee="0") for i in config.instruments]
    venue = Venue(msgspec.structs.replace(config, instruments=free))

    def must(cmd):
        for ev in venue.apply(cmd):
            if isinstance(ev, Rejected):
                raise ValueError(f"scenario step {type(cmd).__name__} refused: {ev.reason}: {ev.message}")

    check(sc)
    for name, price in sc.prices.items():
        if name not in venue.assets:
            raise ValueError(f"unknown asset {name!r} in [prices]")
        if name != venue.settle_name:
            must(SetIndexPrice(asset=name, price=price_to_e8(decimal(price, f"[prices] {name}"))))
    for name in sc.holdings:
        if name not in venue.assets:
            raise ValueError(f"unknown asset {name!r} in [holdings]")
    for p in sc.positions:
        if p.symbol not in venue.instruments:
            raise ValueError(f"unknown symbol {p.symbol!r}")
    held = [*sc.holdings, *(venue.instruments[p.symbol].underlying for p in sc.positions)]
    for name in dict.fromkeys(held):
        if name != venue.settle_name and name not in sc.prices:
            raise ValueError(f"bad scenario file: no price for {name}, which the account holds or trades: "
                             f"give it under [prices], e.g. {name} = \"100\"")
    must(Deposit(account=HOUSE, asset=venue.settle_name, amount=10**15))
    for name, amount in sc.holdings.items():
        asset = venue.assets[name]
        units = decimal(amount, f"[holdings] {name}") * asset.unit
        if units != units.to_integral_value():
            raise ValueError(f"bad scenario file: [holdings] {name} = {amount!r} has more decimals than {name} "
                             f"has ({asset.decimals})")
        must(Deposit(account=ACCOUNT, asset=name, amount=int(units)))
    mode = MarginMode(sc.mode)  # check() made sure it is one
    if mode is not MarginMode.CROSS:
        must(SetMarginMode(account=ACCOUNT, mode=mode))
    for p in sc.positions:
        ins = venue.instruments[p.symbol]
        final = venue.assets[ins.underlying].index
        if p.entry is not None:
            must(SetIndexPrice(asset=ins.underlying, price=price_to_e8(decimal(p.entry, f"{p.symbol} entry"))))
        qty = decimal(p.qty, f"{p.symbol} qty")
        lots = qty / ins.lot_size
        if lots != lots.to_integral_value() or lots == 0:
            raise ValueError(f"{p.symbol}: qty {qty} is not a whole non-zero number of lots of {ins.lot_size}")
        lots = int(lots)
        side, house_side = (Side.BUY, Side.SELL) if lots > 0 else (Side.SELL, Side.BUY)
        must(NewOrder(account=HOUSE, symbol=p.symbol, side=house_side, qty=abs(lots), price=ins.mark))
        must(NewOrder(account=ACCOUNT, symbol=p.symbol, side=side, qty=abs(lots), price=ins.mark))
        if p.entry is not None:
            must(SetIndexPrice(asset=ins.underlying, price=final))
    return venue
