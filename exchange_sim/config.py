"""Venue configuration: frozen msgspec Structs loaded from TOML.

The default configuration is ``default.toml`` shipped inside the package, so
``Venue()`` works on a fresh install with no files around. ``load(path)``
reads another TOML file with the same shape; unknown keys are refused so a
typo never silently falls back to a default.

Exact values (tick sizes, fees, prices) are decimal strings in the file and
stay ``str`` here; ``instruments.py`` turns them into integers once.
"""

from __future__ import annotations

import tomllib
from decimal import Decimal, InvalidOperation
from importlib import resources
from pathlib import Path
from typing import Annotated

import msgspec
from msgspec import Meta

DecimalStr = Annotated[str, Meta(pattern=r"^[0-9]+(\.[0-9]+)?$")]
Rate = Annotated[float, Meta(ge=0.0, le=1.0)]


class _Frozen(msgspec.Struct, frozen=True, kw_only=True, forbid_unknown_fields=True):
    pass


class VenueParams(_Frozen, kw_only=True):
    settlement_asset: str = "USDT"
    #: market orders never fill further than this fraction from mark
    market_price_band: DecimalStr = "0.05"
    #: limit prices must lie within this fraction of mark
    limit_price_band: DecimalStr = "0.20"
    #: open orders (resting + untriggered stops) per account
    max_open_orders: Annotated[int, Meta(gt=0)] = 200


class AssetConfig(_Frozen, kw_only=True):
    name: str
    decimals: Annotated[int, Meta(ge=0, le=18)]
    #: USD price at start-up; None = no price until the feed sets one
    index_price: DecimalStr | None = None
    #: haircut brackets [(USD value up to, haircut rate)], applied marginally
    haircut: list[tuple[float, Rate]] = msgspec.field(default_factory=lambda: [(float("inf"), 0.0)])


class InstrumentConfig(_Frozen, kw_only=True):
    symbol: str
    underlying: str
    settlement: str = "USDT"
    tick_size: DecimalStr
    lot_size: DecimalStr
    min_notional: DecimalStr = "0"
    max_qty: Annotated[int, Meta(gt=0)]
    maker_fee: DecimalStr = "0"
    taker_fee: DecimalStr = "0"
    #: [(notional USD up to, initial margin rate, maintenance rate)], marginal
    margin_tiers: list[tuple[float, Rate, Rate]]


class Config(_Frozen, kw_only=True):
    venue: VenueParams = VenueParams()
    assets: list[AssetConfig]
    instruments: list[InstrumentConfig]


def _validate(cfg: Config) -> Config:
    names = [a.name for a in cfg.assets]
    if len(set(names)) != len(names):
        raise ValueError("asset names must be unique")
    if cfg.venue.settlement_asset not in names:
        raise ValueError(f"settlement asset {cfg.venue.settlement_asset!r} is not an asset")
    symbols = [i.symbol for i in cfg.instruments]
    if len(set(symbols)) != len(symbols):
        raise ValueError("instrument symbols must be unique")
    for ins in cfg.instruments:
        if ins.underlying not in names:
            raise ValueError(f"{ins.symbol}: underlying {ins.underlying!r} is not an asset")
        if ins.settlement != cfg.venue.settlement_asset:
            raise ValueError(f"{ins.symbol}: only {cfg.venue.settlement_asset}-settled instruments")
        for field in ("tick_size", "lot_size"):
            if Decimal(getattr(ins, field)) <= 0:
                raise ValueError(f"{ins.symbol}: {field} must be positive")
        _check_brackets(ins.symbol, [t[0] for t in ins.margin_tiers])
    for a in cfg.assets:
        _check_brackets(a.name, [b[0] for b in a.haircut])
    return cfg


def _check_brackets(owner: str, bounds: list[float]) -> None:
    if not bounds or bounds[-1] != float("inf"):
        raise ValueError(f"{owner}: the last bracket must go up to inf")
    if any(b <= a for a, b in zip(bounds, bounds[1:])) or bounds[0] <= 0:
        raise ValueError(f"{owner}: bracket bounds must be positive and increasing")


def loads(text: str) -> Config:
    """Parse TOML text into a validated :class:`Config`.

    Raises ``ValueError`` (``msgspec.ValidationError`` is one) naming the bad key.
    """
    try:
        raw = tomllib.loads(text)
    except tomllib.TOMLDecodeError as exc:
        raise ValueError(f"config is not valid TOML: {exc}") from None
    try:
        return _validate(msgspec.convert(raw, Config))
    except InvalidOperation:
        raise ValueError("config holds a malformed decimal") from None


def load(path: str | Path) -> Config:
    """Load a TOML config file."""
    return loads(Path(path).read_text(encoding="utf-8"))


def default_text() -> str:
    """The embedded default config, as TOML text."""
    return resources.files("exchange_sim").joinpath("default.toml").read_text(encoding="utf-8")


def default() -> Config:
    """The embedded default config."""
    return loads(default_text())
