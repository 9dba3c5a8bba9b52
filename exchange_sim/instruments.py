"""Assets and instruments in venue units, built once from the config.

Every exact quantity becomes an integer here, so nothing downstream touches
``Decimal``:

- ``Instrument.tick_e8``: one tick in index-price units (1e-8 USD);
- ``Instrument.value``: settlement minor units per (1 tick × 1 lot), so a
  notional is ``price_ticks * qty_lots * value`` exactly. The config is
  refused if a tick times a lot is not a whole number of minor units.
- fees and price bands as integer fractions (numerator, denominator).
"""

from __future__ import annotations

from decimal import Decimal
from fractions import Fraction

from exchange_sim.book import OrderBook
from exchange_sim.config import AssetConfig, Config, FutureConfig, InstrumentConfig
from exchange_sim.products.dated_future import PENDING, TRADING, DatedFuture, date_ns, expiries, future_symbol
from exchange_sim.products.perpetual import LinearPerpetual
from exchange_sim.risk.brackets import Brackets
from protocol.messages import PRICE_SCALE


def _whole(value: Decimal, what: str) -> int:
    if value != value.to_integral_value():
        raise ValueError(f"{what} must be a whole number, got {value}")
    return int(value)


def fraction(text: str) -> tuple[int, int]:
    f = Fraction(Decimal(text))
    return f.numerator, f.denominator


class Asset:
    __slots__ = ("name", "decimals", "unit", "index", "haircut")

    def __init__(self, cfg: AssetConfig):
        self.name = cfg.name
        self.decimals = cfg.decimals
        self.unit = 10**cfg.decimals  # minor units per whole unit
        #: USD index price in PRICE_SCALE units; 0 = not known yet
        self.index = 0 if cfg.index_price is None else price_to_e8(cfg.index_price)
        self.haircut = Brackets(cfg.haircut)

    def usd(self, minor: int) -> float:
        """USD value of ``minor`` units at index (a float: a risk estimate)."""
        return minor * self.index / (self.unit * PRICE_SCALE)


def price_to_e8(text: str) -> int:
    return _whole(Decimal(text) * PRICE_SCALE, f"price {text} in 1e-8 units")


class Instrument(LinearPerpetual):
    """An instrument in venue units and its order book; its contract
    arithmetic (value, uPnL, notional, fees, isolated margin) comes from its
    contract kind (:mod:`exchange_sim.products`): the linear perpetual;
    :class:`FutureInstrument` is the dated future."""

    __slots__ = (
        "symbol", "underlying", "settlement", "tick_size", "lot_size", "tick_e8",
        "value", "min_notional", "max_qty", "maker_fee", "taker_fee",
        "maker_fee_str", "taker_fee_str", "im_tiers", "mm_tiers",
        "market_band", "limit_band", "mark", "book", "book_seq", "paused",
        "settle_unit", "min_notional_str",
    )

    def __init__(self, cfg: InstrumentConfig, config: Config, settle: Asset):
        self.symbol = cfg.symbol
        self.underlying = cfg.underlying
        self.settlement = cfg.settlement
        self.tick_size = Decimal(cfg.tick_size)
        self.lot_size = Decimal(cfg.lot_size)
        self.tick_e8 = _whole(self.tick_size * PRICE_SCALE, f"{cfg.symbol} tick in 1e-8 USD")
        self.value = _whole(
            self.tick_size * self.lot_size * settle.unit,
            f"{cfg.symbol} tick x lot in {settle.name} minor units",
        )
        self.settle_unit = settle.unit
        self.min_notional_str = cfg.min_notional
        self.min_notional = int(Decimal(cfg.min_notional) * settle.unit)
        self.max_qty = cfg.max_qty
        self.maker_fee = fraction(cfg.maker_fee)
        self.taker_fee = fraction(cfg.taker_fee)
        self.maker_fee_str = cfg.maker_fee
        self.taker_fee_str = cfg.taker_fee
        self.im_tiers = Brackets([(t[0], t[1]) for t in cfg.margin_tiers])
        self.mm_tiers = Brackets([(t[0], t[2]) for t in cfg.margin_tiers])
        self.market_band = fraction(config.venue.market_price_band)
        self.limit_band = fraction(config.venue.limit_price_band)
        self.mark = 0  # ticks; 0 = no index price yet
        self.book = OrderBook(cfg.symbol)
        self.book_seq = 0  # last BookDelta sequence number of this symbol
        self.paused = False

    def mark_from_index(self, index_e8: int) -> int:
        """Mark = index rounded to the nearest tick (half up), at least 1 tick."""
        return max(1, (index_e8 + self.tick_e8 // 2) // self.tick_e8)

    def within_limit_band(self, price: int) -> bool:
        num, den = self.limit_band
        return abs(price - self.mark) * den <= num * self.mark

    def market_limit(self, buy: bool) -> int:
        """The worst price a market order may reach: mark ± the market band."""
        num, den = self.market_band
        step = self.mark * num // den
        return self.mark + step if buy else max(1, self.mark - step)


# --- dated futures (issue 16)


class FutureInstrument(DatedFuture, Instrument):
    """A dated future of a :class:`~exchange_sim.config.FutureConfig` family:
    an instrument like the perpetuals (tick, lot, tiers, fees, its own
    book), its arithmetic from :class:`~exchange_sim.products.dated_future.DatedFuture`
    (mark = index + basis, no funding, cash settlement at expiry)."""

    __slots__ = (
        "family", "expiry", "state", "basis", "basis_bound", "basis_samples",
        "twap_acc", "twap_ns", "settlement_price",
    )

    def __init__(self, fam: FutureConfig, expiry_ns: int, config: Config, settle: Asset):
        cfg = InstrumentConfig(
            symbol=future_symbol(fam.underlying, expiry_ns), underlying=fam.underlying, tick_size=fam.tick_size,
            lot_size=fam.lot_size, min_notional=fam.min_notional, max_qty=fam.max_qty, maker_fee=fam.maker_fee,
            taker_fee=fam.taker_fee, margin_tiers=fam.margin_tiers,
        )
        super().__init__(cfg, config, settle)
        self.family = fam.name
        self.expiry = expiry_ns  # ns since the epoch, a Friday 08:00 UTC
        self.state = PENDING
        self.basis = 0  # 1e-8 USD: mark = index + basis
        self.basis_bound = fraction(fam.basis_bound)
        self.basis_samples = fam.basis_samples
        self.twap_acc = 0  # Σ index_e8 × ns inside the settlement window
        self.twap_ns = 0  # ns of the window accumulated
        self.settlement_price = 0  # 1e-8 USD, once settled


def future_instruments(config: Config, settle: Asset) -> list[FutureInstrument]:
    """Every dated future of the config's families, in family order then
    expiry order; the first ``listed`` of each family trading."""
    out = []
    for fam in config.futures:
        for k, t in enumerate(expiries(date_ns(fam.calendar_start), fam.cycle, fam.horizon)):
            ins = FutureInstrument(fam, t, config, settle)
            if k < fam.listed:
                ins.state = TRADING
            out.append(ins)
    return out
