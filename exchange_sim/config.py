"""Venue configuration: frozen msgspec Structs loaded from TOML.

The default configuration is ``default.toml`` shipped inside the package, so
``Venue()`` works on a fresh install with no files around. ``load(path)``
reads another TOML file and merges it onto that default, so a file needs to
say only what it changes. ``exchange-sim config [--config FILE]`` prints the
result (:func:`dumps`) as TOML to copy and edit.

Merge rules (:func:`loads`, by way of :func:`merge`):

- tables merge key by key, recursively: ``[risk]\nwarning_ratio = 2.0`` is a
  whole config (every other key keeps its default). This holds for every
  table, including ``risk.profiles``, ``scan_ranges``, ``volatility`` and an
  account's ``deposits``: a key given replaces that key, keys not given stay;
- the arrays of named things merge by their name: ``[[assets]]`` by
  ``name``, ``[[instruments]]`` by ``symbol``, ``[[server.accounts]]`` by
  ``account``. An entry whose name is in the default overrides only the
  fields it gives; a new name adds an entry, which must then be complete;
  ``remove = true`` (with only the name) removes a default entry (an
  asset's removal also drops the default's scan ranges, feed volatility and
  demo deposits of it; its instruments must be removed by the file too);
- every other value (numbers, strings, bracket lists such as ``haircut`` or
  ``margin_tiers``) replaces the default's value whole.

Unknown keys are refused, naming the key and its table, so a typo never
silently falls back to a default; types and ranges are checked by msgspec,
cross-field rules by ``_validate``. Errors are ``ValueError`` naming the
place in TOML terms (``instruments[SOL-PERP].tick_size``).

Exact values (tick sizes, fees, prices) are decimal strings in the file and
stay ``str`` here; ``instruments.py`` turns them into integers once.
"""

from __future__ import annotations

import math
import re
import tomllib
from decimal import Decimal, InvalidOperation
from importlib import resources
from pathlib import Path
from typing import Annotated

import msgspec
from msgspec import Meta

#: the string choices of the config (protocol.messages.MarginMode's values)
MARGIN_MODES = ("isolated", "cross", "portfolio")
FEED_KINDS = ("none", "random_walk", "csv")
JOURNAL_POLICIES = ("group", "fsync")


def not_valid(where: str, value: object, what: str, valid) -> str:
    """The error text for a string that is not one of its choices.

    >>> not_valid("risk.default_mode", "crossed", "margin mode", MARGIN_MODES)
    "risk.default_mode: 'crossed' is not a valid margin mode; valid: isolated, cross, portfolio"
    """
    prefix = f"{where}: " if where else ""
    return f"{prefix}{value!r} is not a valid {what}; valid: {', '.join(str(v) for v in valid)}"


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
    #: the idempotency window, the only one (ADR 0008): client order ids of
    #: the account's last N accepted orders (plus its open orders') are taken;
    #: a new order reusing one is refused even after its order filled or was
    #: cancelled, and after a restart (snapshots and journal replay keep
    #: them); the server answers an identical resend from the same window.
    #: 0 = only ids of open orders are refused
    client_id_memory: Annotated[int, Meta(ge=0)] = 10_000


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


# --- dated futures (issue 16)
FUTURE_CYCLES = ("quarterly", "monthly")


class FutureConfig(_Frozen, kw_only=True):
    """A family of linear USDT dated futures on one underlying, listed on a
    rolling calendar (exchange_sim/products/dated_future.py,
    docs/adr/0012-dated-futures.md): the first ``listed`` expiries of
    ``cycle`` after ``calendar_start`` trade from the start; each time one
    settles, the next of the calendar lists, up to ``horizon`` expiries in
    all (every one of them exists from the start, in state ``pending``, so
    the instrument set never changes while the venue runs)."""

    name: str  # the family's key, e.g. "BTC-quarterly"
    underlying: str
    cycle: str = "quarterly"
    calendar_start: str = "2026-12-01"  # UTC date (or YYYY-MM-DDTHH:MM:SSZ)
    listed: Annotated[int, Meta(ge=1, le=12)] = 2
    horizon: Annotated[int, Meta(ge=1, le=48)] = 6
    tick_size: DecimalStr
    lot_size: DecimalStr
    min_notional: DecimalStr = "0"
    max_qty: Annotated[int, Meta(gt=0)]
    maker_fee: DecimalStr = "0"
    taker_fee: DecimalStr = "0"
    margin_tiers: list[tuple[float, Rate, Rate]]
    #: the basis EMA's length in samples (index updates): alpha = 2 / (N + 1)
    basis_samples: Annotated[int, Meta(ge=1, le=100_000)] = 30
    #: the basis stays within this fraction of the index (either way)
    basis_bound: DecimalStr = "0.05"


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
    #: dated futures (issue 16): the basis / calendar charge, this rate times
    #: the offset notional of an underlying's opposite legs on different
    #: instruments (a perpetual and a future, two expiries), added to MM
    basis_rate: Rate = 0.0005
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
    # --- replay: settle by itself at each interval of venue time; ``serve --replay`` of data
    # with recorded funding turns it off and settles the recorded rates instead
    automatic: bool = True


class DemoAccount(_Frozen, kw_only=True):
    """An account the server knows an API key for (``[[server.accounts]]``)."""

    account: Annotated[int, Meta(ge=0, le=2**53)]
    api_key: Annotated[str, Meta(min_length=8, max_length=256)]
    name: str = ""
    #: faucet deposits made at server start, human units: {USDT = "1000000"}
    deposits: dict[str, DecimalStr] = {}
    # --- latency: the profile (a key of server.latency.profiles) this key's sessions get ("" = the default)
    latency: str = ""
    # --- gateway: the HMAC-SHA256 secret of this key for `exchange-sim gateway`'s signed
    # Binance endpoints ("" = the key cannot sign there); the venue itself never reads it
    secret: Annotated[str, Meta(max_length=256)] = ""

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


# --- latency (exchange_sim/server/latency.py)
LATENCY_KINDS = ("constant", "uniform", "lognormal")


class LatencyDist(_Frozen, kw_only=True):
    """One delay distribution, milliseconds: ``constant`` (always ``ms``),
    ``uniform`` (between ``ms`` and ``high_ms``) or ``lognormal`` (median ``ms``,
    shape ``sigma``: the log of the delay has that standard deviation)."""

    kind: str = "constant"
    ms: Annotated[float, Meta(ge=0.0, le=10_000.0)] = 0.0
    high_ms: Annotated[float, Meta(ge=0.0, le=10_000.0)] = 0.0
    sigma: Annotated[float, Meta(ge=0.0, le=3.0)] = 0.0

    def __post_init__(self) -> None:
        if self.kind not in LATENCY_KINDS:
            raise ValueError(not_valid("latency kind", self.kind, "distribution", LATENCY_KINDS))
        if self.kind == "uniform" and self.high_ms < self.ms:
            raise ValueError("a uniform latency needs high_ms >= ms")


class LatencyProfile(_Frozen, kw_only=True):
    """A session's latency: ``entry`` delays what it sends before the sequencer
    sees it; ``market_data`` delays everything the server sends it (replies,
    pushes, snapshots), after the venue."""

    entry: LatencyDist = LatencyDist()
    market_data: LatencyDist = LatencyDist()


class LatencyParams(_Frozen, kw_only=True):
    """Per-session latency (docs/live-market.md): profiles by name, chosen per
    API key (``[[server.accounts]] latency``) or per ``Login(latency=...)``."""

    #: the delays are drawn from random.Random(seed, session number): the same seed, the same delays
    seed: int = 1
    #: the profile of sessions whose key and Login name none ("" = no delay)
    default: str = ""
    profiles: dict[str, LatencyProfile] = {}


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
    # --- latency
    latency: LatencyParams = LatencyParams()

    def __post_init__(self) -> None:
        if (self.curve_public_key is None) != (self.curve_secret_key is None):
            raise ValueError("server.curve_public_key and curve_secret_key go together")
        if self.heartbeat_timeout_ms <= self.heartbeat_interval_ms:
            raise ValueError("server.heartbeat_timeout_ms must exceed heartbeat_interval_ms")
        ids = [a.account for a in self.accounts]
        if len(set(ids)) != len(ids):
            raise ValueError("server.accounts: account numbers must be unique")
        if self.feed.kind not in FEED_KINDS:
            raise ValueError(not_valid("server.feed.kind", self.feed.kind, "feed kind", FEED_KINDS))
        # --- latency: every profile named exists
        names = sorted(self.latency.profiles)
        for where, name in [("server.latency.default", self.latency.default),
                            *((f"server.accounts[{a.account}].latency", a.latency) for a in self.accounts)]:
            if name and name not in self.latency.profiles:
                raise ValueError(not_valid(where, name, "latency profile", names))

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
    #: ...but at least this notional (USD) (and never more than the position)
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
    # --- house liquidity (docs/adr/0013-house-liquidity.md)
    #: venue milliseconds a flagged account waits before the engine acts, so the
    #: book can re-form after a jump (0: liquidate inside the flagging command);
    #: ``serve --liquidity`` raises it to the profile's ``reform_ms``
    grace_ms: Annotated[int, Meta(ge=0, le=3_600_000)] = 0


class JournalParams(_Frozen, kw_only=True):
    """Durability of ``exchange-sim serve --data-dir`` (docs/adr/0006-journal-format.md)."""

    #: "group": records are synced together before each loop turn's replies go
    #: out; "fsync": every record is synced on its own (slower, same guarantee)
    policy: str = "group"
    #: a journal segment rotates past this size
    segment_bytes: Annotated[int, Meta(ge=4096)] = 64 * 1024 * 1024
    #: a snapshot every this many commands (0 = only on request and at shutdown)
    snapshot_every: Annotated[int, Meta(ge=0)] = 100_000


# --- house liquidity (exchange_sim/liquidity/, docs/adr/0013-house-liquidity.md)


class MakerParams(_Frozen, kw_only=True):
    """The house market maker: a depth profile around the index, per symbol."""

    #: price levels per side
    levels: Annotated[int, Meta(ge=1, le=50)] = 5
    #: distance of the first level from the centre, basis points, in a calm market
    spread_bps: Annotated[float, Meta(gt=0.0, le=1000.0)] = 2.0
    #: distance between consecutive levels, basis points
    step_bps: Annotated[float, Meta(gt=0.0, le=1000.0)] = 2.0
    #: USD size of the first level...
    size_usd: Annotated[float, Meta(gt=0.0)] = 50_000.0
    #: ...and each deeper level is this many times the one before
    size_growth: Annotated[float, Meta(ge=1.0, le=10.0)] = 1.5
    #: the half-spread grows by this many times the recent volatility (bps of index moves)
    vol_mult: Annotated[float, Meta(ge=0.0, le=100.0)] = 0.1
    #: half-life of that volatility estimate, milliseconds
    vol_halflife_ms: Annotated[int, Meta(gt=0)] = 30_000
    #: a single index move beyond this many bps is a shock...
    shock_bps: Annotated[float, Meta(gt=0.0)] = 200.0
    #: ...after which the half-spread is this many bps wider, halving every shock_halflife_ms
    shock_spread_bps: Annotated[float, Meta(ge=0.0, le=5000.0)] = 20.0
    shock_halflife_ms: Annotated[int, Meta(gt=0)] = 2_000
    #: inventory (USD of position) at which the maker quotes only the side that reduces it
    max_inventory_usd: Annotated[float, Meta(gt=0.0)] = 5_000_000.0
    #: the quotes' centre moves against the inventory by up to this many bps (at max_inventory_usd)
    skew_bps: Annotated[float, Meta(ge=0.0, le=1000.0)] = 10.0
    #: re-quote at least this often (the spread relaxes after a shock), milliseconds
    requote_ms: Annotated[int, Meta(ge=10)] = 500


class ArbParams(_Frozen, kw_only=True):
    """The house arbitrageur: takes resting orders that are too far from the index."""

    #: orders priced beyond index +- this many bps are taken (bids above, asks below)
    band_bps: Annotated[float, Meta(gt=0.0, le=5000.0)] = 15.0
    #: USD taken per symbol per step at most
    max_usd: Annotated[float, Meta(gt=0.0)] = 2_000_000.0


class NoiseParams(_Frozen, kw_only=True):
    """The house noise flow: random marketable orders (seeded)."""

    #: orders per second over all symbols, a Poisson process (0 = none)
    rate_per_s: Annotated[float, Meta(ge=0.0, le=10_000.0)] = 2.0
    #: mean USD size of an order (exponentially distributed)
    size_usd: Annotated[float, Meta(gt=0.0)] = 2_000.0
    #: an order is IOC at index +- this many bps (a marketable limit)
    slip_bps: Annotated[float, Meta(gt=0.0, le=1000.0)] = 20.0
    #: past this USD of position the flow only trades to reduce it
    max_position_usd: Annotated[float, Meta(gt=0.0)] = 200_000.0


class LiquidityParams(_Frozen, kw_only=True):
    """``exchange-sim serve --liquidity DEFAULT|PROFILE.toml``: house liquidity
    agents, accounts of the venue whose orders are ordinary orders."""

    #: seed of the agents' random choices (noise flow)
    seed: int = 7
    #: after a flag the liquidation engine waits this long (venue ms) so the book
    #: re-forms first; serve --liquidity sets liquidation.grace_ms to at least this
    reform_ms: Annotated[int, Meta(ge=0, le=60_000)] = 250
    #: symbols served (empty: every instrument)
    symbols: list[str] = []
    #: the agents' account numbers and their start-up USDT deposit (human units)
    maker_account: Annotated[int, Meta(ge=0, le=2**53)] = 900
    arb_account: Annotated[int, Meta(ge=0, le=2**53)] = 901
    noise_account: Annotated[int, Meta(ge=0, le=2**53)] = 902
    deposit_usdt: DecimalStr = "100000000"
    maker: MakerParams = MakerParams()
    arb: ArbParams = ArbParams()
    noise: NoiseParams = NoiseParams()

    def __post_init__(self) -> None:
        ids = (self.maker_account, self.arb_account, self.noise_account)
        if len(set(ids)) != 3:
            raise ValueError("liquidity: maker_account, arb_account and noise_account must differ")


# --- history (issue 14)
class HistoryParams(_Frozen, kw_only=True):
    """What the history stage keeps (exchange_sim/core/history.py): bounded,
    oldest dropped first, in snapshots, rebuilt by journal replay. Sizes are
    rows; memory is about 370 bytes per trade or fill, 410 per order and
    330 per candle (docs/history.md, "Limits")."""

    #: public trades kept per symbol (QueryTrades)
    trades_per_symbol: Annotated[int, Meta(gt=0)] = 1000
    #: finished candles kept per symbol, source and interval (QueryCandles);
    #: at least 1440, so the 24-hour ticker has every minute of its window
    candles_per_interval: Annotated[int, Meta(ge=1440)] = 1500
    #: settled funding rates kept per symbol (QueryFundingHistory)
    funding_per_symbol: Annotated[int, Meta(gt=0)] = 1000
    #: ended orders kept per account (QueryOrderHistory, QueryOrder)
    orders_per_account: Annotated[int, Meta(gt=0)] = 1000
    #: own fills kept per account (QueryMyTrades)
    trades_per_account: Annotated[int, Meta(gt=0)] = 1000
    #: false: keep nothing and refuse the history queries (a load test that
    #: wants the last few percent of ``Venue.apply``; benchmarks/RESULTS.md)
    enabled: bool = True


class Config(_Frozen, kw_only=True):
    venue: VenueParams = VenueParams()
    risk: RiskParams = RiskParams()
    liquidation: LiquidationParams = LiquidationParams()
    funding: FundingParams = FundingParams()
    server: ServerParams = ServerParams()
    journal: JournalParams = JournalParams()
    history: HistoryParams = HistoryParams()  # --- history (issue 14)
    assets: list[AssetConfig]
    instruments: list[InstrumentConfig]
    # --- house liquidity
    liquidity: LiquidityParams = LiquidityParams()
    futures: list[FutureConfig] = []  # dated futures (issue 16); none by default


def _validate(cfg: Config) -> Config:
    names = [a.name for a in cfg.assets]
    if len(set(names)) != len(names):
        raise ValueError("asset names must be unique")
    if cfg.venue.settlement_asset not in names:
        raise ValueError(f"venue.settlement_asset {cfg.venue.settlement_asset!r} is not an asset; valid: {', '.join(names)}")
    symbols = [i.symbol for i in cfg.instruments]
    if len(set(symbols)) != len(symbols):
        raise ValueError("instrument symbols must be unique")
    for ins in cfg.instruments:
        if ins.underlying not in names:
            raise ValueError(f"{ins.symbol}: underlying {ins.underlying!r} is not an asset; valid: {', '.join(names)}")
        if ins.settlement != cfg.venue.settlement_asset:
            raise ValueError(f"{ins.symbol}: only {cfg.venue.settlement_asset}-settled instruments")
        for field in ("tick_size", "lot_size"):
            if Decimal(getattr(ins, field)) <= 0:
                raise ValueError(f"{ins.symbol}: {field} must be positive")
        _check_brackets(ins.symbol, [t[0] for t in ins.margin_tiers])
    _validate_futures(cfg, names, symbols)
    for a in cfg.assets:
        _check_brackets(a.name, [b[0] for b in a.haircut])
    if cfg.journal.policy not in JOURNAL_POLICIES:
        raise ValueError(not_valid("journal.policy", cfg.journal.policy, "journal policy", JOURNAL_POLICIES))
    risk = cfg.risk
    if risk.profile not in risk.profiles and risk.profile != "default":
        valid = sorted({"default", *risk.profiles})
        raise ValueError(not_valid("risk.profile", risk.profile, "profile (a key of risk.profiles)", valid))
    if risk.default_mode not in MARGIN_MODES:
        raise ValueError(not_valid("risk.default_mode", risk.default_mode, "margin mode", MARGIN_MODES))
    if not risk.liquidation_ratio <= risk.reduce_only_ratio <= risk.warning_ratio:
        raise ValueError("need liquidation_ratio <= reduce_only_ratio <= warning_ratio")
    for name, prof in risk.profiles.items():
        unknown = set(prof.scan_ranges) - set(names)
        if unknown:
            raise ValueError(f"risk.profiles.{name}: unknown underlyings {sorted(unknown)}; valid: {', '.join(names)}")
    # --- house liquidity
    for sym in cfg.liquidity.symbols:
        if sym not in symbols:
            raise ValueError(not_valid("liquidity.symbols", sym, "symbol", symbols))
    return cfg


def _validate_futures(cfg: Config, assets: list[str], symbols: list[str]) -> None:
    """Dated futures: known underlying and cycle, a readable calendar start,
    no symbol twice (with the perpetuals or across families)."""
    from exchange_sim.products.dated_future import date_ns, expiries, future_symbol  # noqa: PLC0415

    seen = set(symbols)
    names = [f.name for f in cfg.futures]
    if len(set(names)) != len(names):
        raise ValueError("futures names must be unique")
    for f in cfg.futures:
        where = f"futures.{f.name}"
        if f.underlying not in assets:
            raise ValueError(f"{where}: underlying {f.underlying!r} is not an asset; valid: {', '.join(assets)}")
        if f.cycle not in FUTURE_CYCLES:
            raise ValueError(not_valid(f"{where}.cycle", f.cycle, "cycle", FUTURE_CYCLES))
        if f.listed > f.horizon:
            raise ValueError(f"{where}: listed ({f.listed}) must not exceed horizon ({f.horizon})")
        for field in ("tick_size", "lot_size"):
            if Decimal(getattr(f, field)) <= 0:
                raise ValueError(f"{where}: {field} must be positive")
        if not Decimal(f.basis_bound) < 1:
            raise ValueError(f"{where}: basis_bound must be below 1")
        try:
            start = date_ns(f.calendar_start)
        except ValueError:
            raise ValueError(f"{where}: calendar_start {f.calendar_start!r} is not a date like 2026-12-01") from None
        _check_brackets(where, [t[0] for t in f.margin_tiers])
        for t in expiries(start, f.cycle, f.horizon):
            sym = future_symbol(f.underlying, t)
            if sym in seen:
                raise ValueError(f"{where}: symbol {sym} is listed twice")
            seen.add(sym)


def _check_brackets(owner: str, bounds: list[float]) -> None:
    if not bounds or bounds[-1] != float("inf"):
        raise ValueError(f"{owner}: the last bracket must go up to inf")
    if any(b <= a for a, b in zip(bounds, bounds[1:])) or bounds[0] <= 0:
        raise ValueError(f"{owner}: bracket bounds must be positive and increasing")


#: the merge rules in a few lines, for ``exchange-sim config --help``
MERGE_RULES = """\
A config file is merged onto the embedded default, so it needs only what it
changes: a file holding just
    [risk]
    warning_ratio = 2.0
is a whole config.
- Tables merge key by key, recursively (also risk.profiles, scan_ranges,
  volatility, deposits): a key given replaces that key; keys not given keep
  their default.
- [[assets]] merge by name, [[instruments]] by symbol, [[server.accounts]]
  by account: an entry with a known name overrides only the fields it
  gives; a new name adds an entry, which must then be complete; an entry
  holding only its name and `remove = true` removes that default entry
  (removing an asset also drops the default's scan ranges, feed volatility
  and demo deposits of it; its instruments must be removed too).
- Any other value (numbers, strings, lists such as haircut or margin_tiers)
  replaces the default's value whole.
- Unknown keys are refused, naming the key and its table; types and ranges
  are checked, and the error names the place (instruments[SOL-PERP].lot_size).
"""

#: arrays of tables holding named things: merged entry by entry on this key
NAMED_ARRAYS: dict[tuple[str, ...], str] = {
    ("assets",): "name",
    ("instruments",): "symbol",
    ("server", "accounts"): "account",
    ("futures",): "name",
}
REMOVE = "remove"


def merge(base: dict, override: dict, path: tuple[str, ...] = ()) -> dict:
    """``override`` (parsed TOML) merged onto ``base`` by the module's rules.

    Neither argument is changed. Raises ``ValueError`` for an entry of a
    named array without its name, a name given twice, or a bad removal.
    """
    out = dict(base)
    for key, value in override.items():
        here = (*path, key)
        old = out.get(key)
        if here in NAMED_ARRAYS and isinstance(value, list):
            out[key] = _merge_named(old if isinstance(old, list) else [], value, here, NAMED_ARRAYS[here])
        elif isinstance(value, dict) and isinstance(old, dict):
            out[key] = merge(old, value, here)
        else:
            out[key] = value
    return out


def _merge_named(base: list, override: list, path: tuple[str, ...], key: str) -> list:
    where = ".".join(path)
    merged = {entry[key]: entry for entry in base}
    seen = set()
    for entry in override:
        if not isinstance(entry, dict) or key not in entry:
            raise ValueError(f"config: every [[{where}]] entry needs its {key}")
        name = entry[key]
        if name in seen:
            raise ValueError(f"config: [[{where}]] {key} = {name!r} is given twice")
        seen.add(name)
        if REMOVE in entry:
            if entry[REMOVE] is not True or len(entry) != 2:
                raise ValueError(f"config: [[{where}]] {key} = {name!r}: remove = true goes alone with the {key}")
            if name not in merged:
                raise ValueError(f"config: [[{where}]] {key} = {name!r}: no such entry to remove")
            del merged[name]
        elif name in merged:
            merged[name] = merge(merged[name], entry, path)
        else:
            merged[name] = entry
    return list(merged.values())


def _where(path: str, raw: dict) -> str:
    """msgspec's ``$.instruments[2].tick_size`` in TOML terms: ``instruments[SOL-PERP].tick_size``."""
    out: list[str] = []
    node: object = raw
    names: list[str] = []
    for part in re.findall(r"\.([^.\[]+)|\[(\d+)\]", path):
        field, index = part
        if field:
            names.append(field)
            out.append(field)
            node = node.get(field) if isinstance(node, dict) else None
        else:
            key = NAMED_ARRAYS.get(tuple(names))
            entry = node[int(index)] if isinstance(node, list) and int(index) < len(node) else None
            label = entry.get(key) if key and isinstance(entry, dict) else None
            out[-1] += f"[{label}]" if label is not None else f"[{index}]"
            node = entry
    return ".".join(out) or "the top level"


def from_raw(raw: dict) -> Config:
    """A validated :class:`Config` from a complete, merged dict."""
    try:
        return _validate(msgspec.convert(raw, Config))
    except msgspec.ValidationError as exc:
        text = str(exc)
        m = re.search(r" - at `(\$[^`]*)`$", text)
        if m is None:  # msgspec names no place for the top level
            raise ValueError(f"config: {text} - at the top level") from None
        raise ValueError(f"config: {text[:m.start()]} - at {_where(m.group(1)[1:], raw)}") from None
    except InvalidOperation:
        raise ValueError("config holds a malformed decimal") from None


def _parse(text: str) -> dict:
    try:
        return tomllib.loads(text)
    except tomllib.TOMLDecodeError as exc:
        raise ValueError(f"config is not valid TOML: {exc}") from None


def loads(text: str) -> Config:
    """Parse TOML text, merge it onto the embedded default, validate.

    Raises ``ValueError`` (``msgspec.ValidationError`` is one) naming the bad key.
    """
    override = _parse(text)
    return from_raw(merge(_without_removed_assets(_default_raw(), override), override))


def _without_removed_assets(default: dict, override: dict) -> dict:
    """The default without its mentions of the assets ``override`` removes
    (scan ranges, feed volatility, demo deposits): those are not the user's
    to delete key by key, and must not block the removal."""
    entries = override.get("assets")
    gone = {e.get("name") for e in entries if isinstance(e, dict) and e.get(REMOVE) is True} \
        if isinstance(entries, list) else set()
    if not gone:
        return default
    out = dict(default)
    risk = out["risk"] = dict(out["risk"])
    risk["profiles"] = {k: {**p, "scan_ranges": {a: r for a, r in p.get("scan_ranges", {}).items() if a not in gone}}
                        for k, p in risk.get("profiles", {}).items()}
    server = out["server"] = dict(out["server"])
    feed = server["feed"] = dict(server["feed"])
    feed["volatility"] = {a: v for a, v in feed.get("volatility", {}).items() if a not in gone}
    server["accounts"] = [{**acct, "deposits": {a: d for a, d in acct.get("deposits", {}).items() if a not in gone}}
                          for acct in server.get("accounts", [])]
    return out


def load(path: str | Path) -> Config:
    """Load a TOML config file (merged onto the default)."""
    return loads(Path(path).read_text(encoding="utf-8"))


def default_text() -> str:
    """The embedded default config, as TOML text."""
    return resources.files("exchange_sim").joinpath("default.toml").read_text(encoding="utf-8")


def _default_raw() -> dict:
    return _parse(default_text())


def default() -> Config:
    """The embedded default config."""
    return from_raw(_default_raw())


# ------------------------------------------------------------------ TOML out

_BARE_KEY = re.compile(r"^[A-Za-z0-9_-]+$")


def _key(k: str) -> str:
    return k if _BARE_KEY.match(k) else _string(k)


def _string(s: str) -> str:
    out = ['"']
    for ch in s:
        if ch in '"\\':
            out.append("\\" + ch)
        elif ord(ch) < 0x20 or ord(ch) == 0x7F:
            out.append(f"\\u{ord(ch):04X}")
        else:
            out.append(ch)
    out.append('"')
    return "".join(out)


def toml_value(v: object) -> str:
    """One TOML value (scalars, arrays, inline tables) that ``tomllib`` reads back equal."""
    if isinstance(v, bool):
        return "true" if v else "false"
    if isinstance(v, int):
        return str(v)
    if isinstance(v, float):
        if math.isnan(v):
            return "nan"
        if math.isinf(v):
            return "inf" if v > 0 else "-inf"
        return repr(v)  # shortest text that reads back to the same float
    if isinstance(v, str):
        return _string(v)
    if isinstance(v, (list, tuple)):
        return "[" + ", ".join(toml_value(x) for x in v) + "]"
    if isinstance(v, dict):
        return "{ " + ", ".join(f"{_key(k)} = {toml_value(x)}" for k, x in v.items() if x is not None) + " }" if v else "{}"
    raise TypeError(f"cannot write {type(v).__name__} as TOML")


def _dotted(path: tuple[str, ...]) -> str:
    return ".".join(_key(p) for p in path)


def _emit(out: list[str], path: tuple[str, ...], obj: msgspec.Struct, base: object) -> None:
    """One struct as a table: its plain keys, then its sub-tables (a struct
    field, or a map of structs such as ``risk.profiles``), then its arrays
    of tables. ``base`` is the default's raw dict at this place, for the
    ``remove = true`` entries of named arrays."""
    later = []
    for k in obj.__struct_fields__:
        v = getattr(obj, k)
        here = (*path, k)
        if v is None:
            continue  # TOML has no null: the key's default (None) applies
        if isinstance(v, msgspec.Struct) or here in NAMED_ARRAYS or (
                isinstance(v, dict) and v and all(isinstance(x, msgspec.Struct) for x in v.values())):
            later.append((k, v))
        else:
            out.append(f"{_key(k)} = {toml_value(msgspec.to_builtins(v))}")
    for k, v in later:
        here = (*path, k)
        sub_base = base.get(k) if isinstance(base, dict) else None
        if isinstance(v, msgspec.Struct):
            out.extend(["", f"[{_dotted(here)}]"])
            _emit(out, here, v, sub_base)
        elif isinstance(v, dict):
            for name, item in v.items():
                out.extend(["", f"[{_dotted((*here, name))}]"])
                _emit(out, (*here, name), item, sub_base.get(name) if isinstance(sub_base, dict) else None)
        else:
            key = NAMED_ARRAYS[here]
            for entry in v:
                out.extend(["", f"[[{_dotted(here)}]]"])
                _emit(out, here, entry, None)
            kept = {getattr(entry, key) for entry in v}
            for entry in sub_base or []:  # default entries this config drops
                if entry[key] not in kept:
                    out.extend(["", f"[[{_dotted(here)}]]", f"{_key(key)} = {toml_value(entry[key])}", f"{REMOVE} = true"])


def dumps(cfg: Config, header: str = "") -> str:
    """``cfg`` as a complete TOML config: :func:`loads` reads it back equal.

    Every key is written (``None`` values, which TOML cannot say, are left
    out: they are the defaults of those keys). Default entries of a named
    array that ``cfg`` lacks are written as ``remove = true`` entries, so the
    text means the same when it is merged onto the default again.
    """
    out = [f"# {line}" if line else "#" for line in header.splitlines()]
    _emit(out, (), cfg, _default_raw())
    return "\n".join(out).lstrip("\n") + "\n"
