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
    #: client order ids of accepted orders remembered per account (the most
    #: recent ones): a new order reusing one is refused even after its order
    #: filled or was cancelled, and after a restart (snapshots keep them);
    #: 0 = only ids of open orders are refused
    client_id_memory: Annotated[int, Meta(ge=0)] = 1000


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


class RiskProfile(_Frozen, kw_only=True):
    """Portfolio-margin calibration (see docs/adr/0004-portfolio-margin-calibration.md).

    Scenarios: for each underlying u, u moves ±r_u while every other
    underlying v moves ±correlation·r_v in the same direction; plus the whole
    market moving ±r. MM = max(worst scenario loss, floor_rate × gross
    notional); IM = im_factor × MM.
    """

    correlation: Rate = 0.7
    floor_rate: Rate = 0.001
    im_factor: Annotated[float, Meta(ge=1.0, le=100.0)] = 2.0
    #: fixed scanning range per underlying; an underlying not listed uses
    #: ``default_scan_range``, or, when that is None, the sum of its
    #: instruments' signed tiered maintenance margins (the cross calibration:
    #: E_u = Σ sign(n_i) · mm_tiers_i(|n_i|))
    scan_ranges: dict[str, Rate] = {}
    default_scan_range: Rate | None = None


class RiskModels(_Frozen, kw_only=True):
    """Margin model per mode, by import path ``module:Class`` (pluggable)."""

    cross: str = "exchange_sim.risk.models:CrossMargin"
    portfolio: str = "exchange_sim.risk.models:PortfolioMargin"


class RiskParams(_Frozen, kw_only=True):
    #: a private margin-call event fires when the ratio falls below this
    warning_ratio: Annotated[float, Meta(ge=1.0)] = 1.5
    #: below this only risk-reducing orders are accepted (Binance PM: 1.05-1.2)
    reduce_only_ratio: Annotated[float, Meta(ge=1.0)] = 1.2
    #: liquidation starts below this margin ratio
    liquidation_ratio: Annotated[float, Meta(ge=0.0)] = 1.0
    #: margin mode of new accounts
    default_mode: str = "cross"
    #: portfolio calibration in force: a key of ``profiles``
    profile: str = "default"
    models: RiskModels = RiskModels()
    profiles: dict[str, RiskProfile] = {}


class FundingParams(_Frozen, kw_only=True):
    """Perpetual funding, Binance's formula with the top of book as impact price:
    rate = premium + clamp(interest − premium, ±0.05%), clamped to ±cap."""

    interval_s: Annotated[int, Meta(gt=0)] = 28_800  # 8 hours
    interest_rate: DecimalStr = "0.0001"  # per interval
    clamp: DecimalStr = "0.0005"
    cap: DecimalStr = "0.0075"


class DemoAccount(_Frozen, kw_only=True):
    """An account the server knows an API key for (``[[server.accounts]]``)."""

    account: Annotated[int, Meta(ge=0, le=2**53)]
    api_key: Annotated[str, Meta(min_length=8, max_length=256)]
    name: str = ""
    #: faucet deposits made at server start, human units: {USDT = "1000000"}
    deposits: dict[str, DecimalStr] = {}

    def __repr__(self) -> str:  # never print a secret by accident
        return f"DemoAccount(account={self.account}, name={self.name!r}, api_key='***')"


class FeedParams(_Frozen, kw_only=True):
    """Index prices the server drives by itself (``exchange_sim.feed``)."""

    #: "none", "random_walk" or "csv"
    kind: str = "none"
    #: wall-clock milliseconds between random-walk ticks
    interval_ms: Annotated[int, Meta(ge=10)] = 1000
    #: random-walk seed: the same seed gives the same price path
    seed: int = 1
    #: simulated seconds per wall second (60 = a minute of market per second)
    speed: Annotated[float, Meta(gt=0.0, le=1e6)] = 1.0
    #: annualized volatility per asset; assets not listed do not move
    volatility: dict[str, Annotated[float, Meta(ge=0.0, le=100.0)]] = {}
    #: csv feed: rows ``time,asset,price`` (seconds from start, USD)
    csv_path: str | None = None
    #: csv feed: start again from the top when the file ends
    csv_loop: bool = False


class ServerParams(_Frozen, kw_only=True):
    """``exchange-sim serve``: sockets, sessions, limits (``exchange_sim.server``)."""

    #: ROUTER for sessions (login, orders, queries, admin); ``:*`` = any free port
    orders_endpoint: str = "tcp://127.0.0.1:7001"
    #: PUB for public market data
    market_data_endpoint: str = "tcp://127.0.0.1:7002"
    #: logs in as admin (any account number); change it for anything shared
    admin_key: Annotated[str, Meta(min_length=8, max_length=256)] = "admin-key-change-me"
    accounts: list[DemoAccount] = []
    #: the server sends a heartbeat this often; clients must send something too
    heartbeat_interval_ms: Annotated[int, Meta(ge=10)] = 1000
    #: a session silent this long is dropped (cancel-on-disconnect applies)
    heartbeat_timeout_ms: Annotated[int, Meta(ge=20)] = 5000
    #: per-session token bucket: commands per second and burst size
    rate_limit_per_s: Annotated[int, Meta(gt=0)] = 100_000
    rate_limit_burst: Annotated[int, Meta(gt=0)] = 200_000
    #: frames above this are rejected unread; 16x this drops the connection
    max_frame_bytes: Annotated[int, Meta(ge=1024)] = 1_048_576
    #: commands per Batch frame
    max_batch: Annotated[int, Meta(gt=0)] = 1000
    #: client order ids remembered per account for idempotent resends
    idempotency_window: Annotated[int, Meta(ge=0)] = 10_000
    #: messages queued per subscriber before PUB drops (the subscriber sees a gap)
    pub_hwm: Annotated[int, Meta(gt=0)] = 100_000
    #: messages queued per session on the ROUTER before replies are dropped
    router_hwm: Annotated[int, Meta(gt=0)] = 100_000
    #: market-data heartbeat (last delta seq per symbol) period
    md_heartbeat_ms: Annotated[int, Meta(ge=10)] = 1000
    #: venue clock Tick (funding and other time-driven work); 0 = never
    tick_interval_ms: Annotated[int, Meta(ge=0)] = 1000
    #: CURVE key pair (Z85, from ``exchange-sim keys``); both or neither
    curve_public_key: str | None = None
    curve_secret_key: str | None = None
    feed: FeedParams = FeedParams()

    def __post_init__(self) -> None:
        if (self.curve_public_key is None) != (self.curve_secret_key is None):
            raise ValueError("server.curve_public_key and curve_secret_key go together")
        if self.heartbeat_timeout_ms <= self.heartbeat_interval_ms:
            raise ValueError("server.heartbeat_timeout_ms must exceed heartbeat_interval_ms")
        ids = [a.account for a in self.accounts]
        if len(set(ids)) != len(ids):
            raise ValueError("server.accounts: account numbers must be unique")
        if self.feed.kind not in ("none", "random_walk", "csv"):
            raise ValueError("server.feed.kind must be none, random_walk or csv")

    def __repr__(self) -> str:  # never print a secret by accident
        return (f"ServerParams(orders_endpoint={self.orders_endpoint!r}, "
                f"market_data_endpoint={self.market_data_endpoint!r}, admin_key='***', "
                f"accounts={len(self.accounts)}, curve={self.curve_public_key is not None})")


class LiquidationParams(_Frozen, kw_only=True):
    """The liquidation engine (docs/adr/0005-liquidation-order.md)."""

    #: liquidation stops once the margin ratio is back at or above this
    target_ratio: Annotated[float, Meta(ge=1.0)] = 1.05
    #: a slice closes at most this fraction of the position...
    slice_fraction: Annotated[float, Meta(gt=0.0, le=1.0)] = 0.25
    #: ...but at least this notional (USD), and never more than the closed form needs
    min_slice_notional: Annotated[float, Meta(ge=0.0)] = 1_000.0
    #: fee on closed notional, paid to the insurance fund; keep it below the
    #: lowest maintenance rate, or a partial liquidation can never restore the ratio
    fee_rate: Rate = 0.001
    #: collateral sold to repay a USDT debt is priced at index x (1 - penalty)
    conversion_penalty: Rate = 0.02
    #: liquidation rounds per command before the cascade is deferred
    max_rounds: Annotated[int, Meta(gt=0)] = 50
    #: the insurance fund's account id and its opening balance (settlement units)
    insurance_account: Annotated[int, Meta(ge=0)] = 1_000_000_000
    insurance_seed: DecimalStr = "1000000"


class JournalParams(_Frozen, kw_only=True):
    """Durability of ``exchange-sim serve --data-dir`` (docs/adr/0006-journal-format.md)."""

    #: "group": records are synced together before each loop turn's replies go
    #: out; "fsync": every record is synced on its own (slower, same guarantee)
    policy: str = "group"
    #: a journal segment rotates past this size
    segment_bytes: Annotated[int, Meta(ge=4096)] = 64 * 1024 * 1024
    #: a snapshot every this many commands (0 = only on request and at shutdown)
    snapshot_every: Annotated[int, Meta(ge=0)] = 100_000


class Config(_Frozen, kw_only=True):
    venue: VenueParams = VenueParams()
    risk: RiskParams = RiskParams()
    liquidation: LiquidationParams = LiquidationParams()
    funding: FundingParams = FundingParams()
    server: ServerParams = ServerParams()
    journal: JournalParams = JournalParams()
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
    if cfg.journal.policy not in ("group", "fsync"):
        raise ValueError("journal.policy must be 'group' or 'fsync'")
    risk = cfg.risk
    if risk.profile not in risk.profiles and risk.profile != "default":
        raise ValueError(f"risk.profile {risk.profile!r} is not in risk.profiles")
    if risk.default_mode not in ("isolated", "cross", "portfolio"):
        raise ValueError("risk.default_mode must be isolated, cross or portfolio")
    if not risk.liquidation_ratio <= risk.reduce_only_ratio <= risk.warning_ratio:
        raise ValueError("need liquidation_ratio <= reduce_only_ratio <= warning_ratio")
    for name, prof in risk.profiles.items():
        unknown = set(prof.scan_ranges) - set(names)
        if unknown:
            raise ValueError(f"risk.profiles.{name}: unknown underlyings {sorted(unknown)}")
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
