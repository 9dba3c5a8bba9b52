"""Human units at the edge: Decimal in, Decimal out.

The wire speaks integers (ticks, lots, minor units, 1e-8 USD; see
:mod:`protocol.messages`). :class:`Markets` holds the instrument and asset
metadata a client loads at login (``QueryInstruments``) and converts both
ways *exactly*: a price that is not a whole number of ticks is refused
client-side with :class:`~clients.errors.InvalidOrder` (``BAD_TICK``) rather
than rounded, because silently moving a bot's price is worse than failing.

Worked example, BTC-PERP (tick 0.1, lot 0.001)::

    price Decimal("60000.5") -> 600005 ticks     qty Decimal("0.25") -> 250 lots
    Fill(price=600005, qty=250, fee=7501) -> price 60000.5, qty 0.250, fee 7.501 USDT

Risk figures (equity, IM, MM) are float estimates on the wire; they are
given here as Decimals rounded to the settlement asset's decimals.

The dataclasses below are what the clients return. Events without a model
here (margin calls, funding payments, explain, ...) are passed through as
the protocol's own structs, in venue units.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from decimal import Decimal

from clients.errors import InvalidOrder
from protocol import messages as m
from protocol.messages import PRICE_SCALE, RejectReason

_E8 = Decimal(PRICE_SCALE)


def _dec(value) -> Decimal:
    if isinstance(value, Decimal):
        return value
    if isinstance(value, float):
        return Decimal(repr(value))
    return Decimal(value)


@dataclass(frozen=True, slots=True)
class InstrumentMeta:
    symbol: str
    underlying: str
    settlement: str
    tick_size: Decimal
    lot_size: Decimal
    min_notional: Decimal
    max_qty: Decimal
    maker_fee: Decimal
    taker_fee: Decimal
    # --- dated futures (issue 16)
    kind: str = "perpetual"  # or "future": dated, cash-settled at expiry
    expiry_ns: int | None = None  # a future's expiry, ns since the epoch (UTC)
    state: str = "trading"  # a future: "pending" (not listed yet), "trading" or "settled"
    settlement_price: Decimal | None = None  # a settled future's price, USD

    def ticks(self, price) -> int:
        """Price -> ticks, exactly. Raises InvalidOrder(BAD_TICK)."""
        p = _dec(price)
        q, r = divmod(p, self.tick_size)
        if r or p <= 0:
            raise InvalidOrder(f"{self.symbol}: price {p} is not a positive multiple of the tick {self.tick_size}",
                               RejectReason.BAD_TICK)
        return int(q)

    def lots(self, qty) -> int:
        """Quantity -> lots, exactly. Raises InvalidOrder(BAD_LOT)."""
        x = _dec(qty)
        q, r = divmod(x, self.lot_size)
        if r or x <= 0:
            raise InvalidOrder(f"{self.symbol}: quantity {x} is not a positive multiple of the lot {self.lot_size}",
                               RejectReason.BAD_LOT)
        return int(q)

    def price(self, ticks: int | float | None) -> Decimal | None:
        if ticks is None:
            return None
        if isinstance(ticks, float):
            if ticks.is_integer():
                return int(ticks) * self.tick_size
            # an average (entry price): 4 more digits than the tick
            return (Decimal(repr(ticks)) * self.tick_size).quantize(self.tick_size.scaleb(-4))
        return ticks * self.tick_size

    def qty(self, lots: int) -> Decimal:
        return lots * self.lot_size


class Markets:
    """Instrument and asset metadata from an ``Instruments`` reply."""

    def __init__(self, info: m.Instruments):
        self.protocol_version = info.protocol_version
        self.instruments: dict[str, InstrumentMeta] = {
            i.symbol: InstrumentMeta(
                symbol=i.symbol, underlying=i.underlying, settlement=i.settlement,
                tick_size=Decimal(i.tick_size), lot_size=Decimal(i.lot_size),
                min_notional=Decimal(i.min_notional), max_qty=i.max_qty * Decimal(i.lot_size),
                maker_fee=Decimal(i.maker_fee), taker_fee=Decimal(i.taker_fee),
                # --- dated futures (issue 16)
                kind=i.kind, expiry_ns=i.expiry, state=i.state,
                settlement_price=self.index_usd(i.settlement_price),
            )
            for i in info.instruments
        }
        self.decimals: dict[str, int] = {a.name: a.decimals for a in info.assets}
        self.settlement = next(iter(self.instruments.values())).settlement if self.instruments else "USDT"

    def __getitem__(self, symbol: str) -> InstrumentMeta:
        try:
            return self.instruments[symbol]
        except KeyError:
            raise InvalidOrder(f"unknown symbol {symbol!r}", RejectReason.UNKNOWN_SYMBOL) from None

    def minor(self, asset: str, amount) -> int:
        """Asset amount -> minor units, exactly. Raises InvalidOrder."""
        d = self.decimals.get(asset)
        if d is None:
            raise InvalidOrder(f"unknown asset {asset!r}", RejectReason.UNKNOWN_ASSET)
        x = _dec(amount).scaleb(d)
        if x != x.to_integral_value():
            raise InvalidOrder(f"{amount} {asset} has more than {d} decimals", RejectReason.INVALID_FIELD)
        return int(x)

    def amount(self, asset: str, minor: int) -> Decimal:
        return Decimal(minor).scaleb(-self.decimals.get(asset, 0))

    def settle(self, minor: int) -> Decimal:
        return self.amount(self.settlement, minor)

    def risk(self, value: float | None) -> Decimal | None:
        """A float risk figure in settlement units, rounded to its decimals."""
        if value is None:
            return None
        if value != value or value in (float("inf"), float("-inf")):
            return Decimal(repr(value))
        return Decimal(repr(value)).quantize(Decimal(1).scaleb(-self.decimals.get(self.settlement, 6)))

    @staticmethod
    def index_e8(price) -> int:
        return int((_dec(price) * _E8).to_integral_value())

    @staticmethod
    def index_usd(e8: int | None) -> Decimal | None:
        return None if e8 is None else Decimal(e8) / _E8


# ----------------------------------------------------------------- models


@dataclass(frozen=True, slots=True)
class Fill:
    order_id: int
    client_order_id: str | None
    symbol: str
    side: str
    price: Decimal
    qty: Decimal
    fee: Decimal
    liquidity: str
    trade_id: int
    remaining: Decimal
    realized_pnl: Decimal
    position: Decimal
    liquidation: bool = False
    ts: int = 0  # venue time of the fill (ns since the epoch; 0 = an untimed venue)


@dataclass(frozen=True, slots=True)
class OrderUpdate:
    """An order's life event: ``kind`` is accepted, triggered, amended or cancelled."""

    kind: str
    order_id: int
    client_order_id: str | None
    symbol: str
    side: str | None = None
    price: Decimal | None = None
    qty: Decimal | None = None  # accepted: size; amended: new remaining; cancelled: what was left
    stop_price: Decimal | None = None
    cause: str | None = None  # cancelled: user, ioc, cancel_all, disconnect, ...
    priority_kept: bool | None = None
    # --- protective orders
    parent_order_id: int | None = None  # accepted: the entry an attached take-profit / stop-loss protects
    type: str | None = None  # accepted: the order type
    ts: int = 0  # venue time of the event (ns)


@dataclass(frozen=True, slots=True)
class OrderResult:
    """What ``place`` returns: the order's immediate outcome."""

    order_id: int
    client_order_id: str | None
    symbol: str
    side: str
    type: str
    status: str  # new, partially_filled, filled, cancelled, untriggered
    price: Decimal | None
    qty: Decimal
    filled: Decimal
    avg_price: Decimal | None
    fee: Decimal
    fills: tuple[Fill, ...] = ()
    duplicate: bool = False  # a resend answered from the idempotency store
    cancel_cause: str | None = None
    # --- protective orders: the take-profit / stop-loss placed by this reply's fills
    attached: tuple[OrderUpdate, ...] = ()

    @property
    def remaining(self) -> Decimal:
        return self.qty - self.filled if self.status in ("new", "partially_filled", "untriggered") else Decimal(0)


@dataclass(frozen=True, slots=True)
class Position:
    symbol: str
    qty: Decimal
    entry_price: Decimal
    mark: Decimal
    notional: Decimal
    upnl: Decimal
    im: Decimal
    mm: Decimal


@dataclass(frozen=True, slots=True)
class AccountState:
    account: int
    balances: dict[str, Decimal]
    positions: tuple[Position, ...]
    collateral: Decimal
    equity: Decimal
    im: Decimal
    mm: Decimal
    margin_ratio: Decimal | None
    margin_mode: str
    # --- leverage
    free: Decimal = Decimal(0)  # withdrawable settlement asset now (what Withdraw accepts)
    allocated: Decimal = Decimal(0)  # isolated: settlement asset allocated to positions


@dataclass(frozen=True, slots=True)
class BalanceUpdate:
    account: int
    asset: str
    delta: Decimal
    balance: Decimal
    reason: str


@dataclass(frozen=True, slots=True)
class OpenOrder:
    order_id: int
    client_order_id: str | None
    symbol: str
    side: str
    type: str
    tif: str
    price: Decimal | None
    stop_price: Decimal | None
    qty: Decimal  # remaining
    filled: Decimal
    reduce_only: bool
    # --- protective orders
    working_type: str = "mark_price"  # or contract_price (last trade)
    close_position: bool = False
    callback_rate: Decimal | None = None  # trailing stop, percent (Binance callbackRate)
    activation_price: Decimal | None = None
    trail_best: Decimal | None = None  # active trailing stop: best price since activation
    parent_order_id: int | None = None


@dataclass(frozen=True, slots=True)
class Book:
    symbol: str
    seq: int
    bids: list[tuple[Decimal, Decimal]] = field(default_factory=list)  # best first
    asks: list[tuple[Decimal, Decimal]] = field(default_factory=list)

    @property
    def best_bid(self) -> tuple[Decimal, Decimal] | None:
        return self.bids[0] if self.bids else None

    @property
    def best_ask(self) -> tuple[Decimal, Decimal] | None:
        return self.asks[0] if self.asks else None


# ------------------------------------------------------------- conversion


def convert(mk: Markets, ev):
    """A protocol event in human units (a model above), or the event itself."""
    t = type(ev)
    if t is m.Fill:
        ins = mk[ev.symbol]
        return Fill(
            order_id=ev.order_id, client_order_id=ev.client_order_id, symbol=ev.symbol, side=ev.side.value,
            price=ins.price(ev.price), qty=ins.qty(ev.qty), fee=mk.settle(ev.fee), liquidity=ev.liquidity.value,
            trade_id=ev.trade_id, remaining=ins.qty(ev.remaining), realized_pnl=mk.settle(ev.realized_pnl),
            position=ins.qty(ev.position), liquidation=ev.liquidation, ts=ev.ts,
        )
    if t is m.OrderAccepted:
        ins = mk[ev.symbol]
        return OrderUpdate("accepted", ev.order_id, ev.client_order_id, ev.symbol, side=ev.side.value,
                           price=ins.price(ev.price), qty=ins.qty(ev.qty), stop_price=ins.price(ev.stop_price),
                           parent_order_id=ev.parent_order_id, type=ev.type.value, ts=ev.ts)
    if t is m.OrderCancelled:
        ins = mk[ev.symbol]
        return OrderUpdate("cancelled", ev.order_id, ev.client_order_id, ev.symbol, qty=ins.qty(ev.remaining),
                           cause=ev.cause.value, ts=ev.ts)
    if t is m.OrderAmended:
        ins = mk[ev.symbol]
        return OrderUpdate("amended", ev.order_id, ev.client_order_id, ev.symbol, price=ins.price(ev.price),
                           qty=ins.qty(ev.qty), priority_kept=ev.priority_kept, ts=ev.ts)
    if t is m.OrderTriggered:
        ins = mk[ev.symbol]
        return OrderUpdate("triggered", ev.order_id, ev.client_order_id, ev.symbol, price=ins.price(ev.price or ev.mark),
                           ts=ev.ts)
    if t is m.AccountUpdate:
        return account_state(mk, ev)
    if t is m.BalanceChanged:
        return BalanceUpdate(ev.account, ev.asset, mk.amount(ev.asset, ev.delta), mk.amount(ev.asset, ev.balance),
                             ev.reason)
    return ev


def account_state(mk: Markets, ev: m.AccountUpdate) -> AccountState:
    positions = []
    for p in ev.positions:
        ins = mk[p.symbol]
        positions.append(Position(
            symbol=p.symbol, qty=ins.qty(p.qty), entry_price=ins.price(p.entry_price), mark=ins.price(p.mark),
            notional=mk.settle(p.notional), upnl=mk.settle(p.upnl), im=mk.risk(p.im), mm=mk.risk(p.mm),
        ))
    return AccountState(
        account=ev.account, balances={a: mk.amount(a, v) for a, v in ev.balances.items()},
        positions=tuple(positions), collateral=mk.risk(ev.collateral), equity=mk.risk(ev.equity),
        im=mk.risk(ev.im), mm=mk.risk(ev.mm), margin_ratio=None if ev.margin_ratio is None else Decimal(repr(ev.margin_ratio)),
        margin_mode=str(getattr(ev.margin_mode, "value", ev.margin_mode)),
        free=mk.settle(ev.free), allocated=mk.settle(ev.allocated),
    )


def open_order(mk: Markets, o: m.OrderView) -> OpenOrder:
    ins = mk[o.symbol]
    return OpenOrder(
        order_id=o.order_id, client_order_id=o.client_order_id, symbol=o.symbol, side=o.side.value,
        type=o.type.value, tif=o.tif.value, price=ins.price(o.price), stop_price=ins.price(o.stop_price),
        qty=ins.qty(o.qty), filled=ins.qty(o.filled), reduce_only=o.reduce_only,
        working_type=str(o.working_type), close_position=o.close_position,
        callback_rate=None if o.callback_bps is None else Decimal(o.callback_bps) / 100,
        activation_price=ins.price(o.activation_price), trail_best=ins.price(o.trail_best),
        parent_order_id=o.parent_order_id,
    )


def book(mk: Markets, snap: m.BookSnapshot) -> Book:
    ins = mk[snap.symbol]
    return Book(
        symbol=snap.symbol, seq=snap.seq,
        bids=[(ins.price(p), ins.qty(q)) for p, q in snap.bids],
        asks=[(ins.price(p), ins.qty(q)) for p, q in snap.asks],
    )


def order_result(mk: Markets, events: list, duplicate: bool = False) -> OrderResult:
    """Summarise a NewOrder's reply events (the first must be OrderAccepted)."""
    acc = events[0]
    ins = mk[acc.symbol]
    fills = []
    filled = 0
    notional = 0
    fee = 0
    cancel_cause = None
    attached: list = []
    for ev in events[1:]:
        t = type(ev)
        if t is m.Fill and ev.order_id == acc.order_id:
            fills.append(convert(mk, ev))
            filled += ev.qty
            notional += ev.qty * ev.price
            fee += ev.fee
        elif t is m.OrderCancelled and ev.order_id == acc.order_id:
            cancel_cause = ev.cause.value
        elif t is m.OrderAccepted and ev.parent_order_id == acc.order_id:
            attached.append(convert(mk, ev))
    if acc.type not in _NOT_CONDITIONAL and not fills and cancel_cause is None:
        status = "untriggered"
    elif cancel_cause is not None:
        status = "cancelled"
    elif filled >= acc.qty:
        status = "filled"
    elif filled:
        status = "partially_filled"
    else:
        status = "new"
    avg = None
    if filled:
        avg = ins.price(notional // filled if notional % filled == 0 else notional / filled)
    return OrderResult(
        order_id=acc.order_id, client_order_id=acc.client_order_id, symbol=acc.symbol, side=acc.side.value,
        type=acc.type.value, status=status, price=ins.price(acc.price), qty=ins.qty(acc.qty),
        filled=ins.qty(filled), avg_price=avg, fee=mk.settle(fee), fills=tuple(fills), duplicate=duplicate,
        cancel_cause=cancel_cause, attached=tuple(attached),
    )


# --- leverage


@dataclass(frozen=True, slots=True)
class LeverageTier:
    """One notional bracket (Binance ``leverageBracket``): inside it
    MM = notional × mm_rate − mm_amount."""

    bracket: int
    notional_floor: Decimal
    notional_cap: Decimal | None  # None: unbounded
    max_leverage: int
    im_rate: Decimal
    mm_rate: Decimal
    mm_amount: Decimal


@dataclass(frozen=True, slots=True)
class SymbolLeverage:
    symbol: str
    leverage: int
    set: bool  # False: never set (the first tier's maximum is reported; IM from the tiers)
    max_leverage: int  # what the tier of the current notional allows
    notional: Decimal  # position and open orders, worse side, USD
    tiers: tuple[LeverageTier, ...]


@dataclass(frozen=True, slots=True)
class LedgerLine:
    """One asset of the venue's ledger, in that asset's units."""

    asset: str
    deposits: Decimal
    withdrawals: Decimal
    fees_collected: Decimal
    funding_residue: Decimal
    liquidation_fees: Decimal
    insurance_fund: Decimal


@dataclass(frozen=True, slots=True)
class Ledger:
    insurance_account: int
    assets: dict[str, LedgerLine]


def _rate(x: float) -> Decimal:
    return Decimal(repr(x))


def leverage_tier(t: m.LeverageTier) -> LeverageTier:
    return LeverageTier(
        bracket=t.bracket, notional_floor=_rate(t.notional_floor),
        notional_cap=None if t.notional_cap is None else _rate(t.notional_cap), max_leverage=t.max_leverage,
        im_rate=_rate(t.im_rate), mm_rate=_rate(t.mm_rate), mm_amount=_rate(t.mm_amount),
    )


def symbol_leverage(mk: Markets, s: m.SymbolLeverage) -> SymbolLeverage:
    return SymbolLeverage(
        symbol=s.symbol, leverage=s.leverage, set=s.set, max_leverage=s.max_leverage, notional=mk.risk(s.notional),
        tiers=tuple(leverage_tier(t) for t in s.tiers),
    )


def ledger(mk: Markets, ev: m.Ledger) -> Ledger:
    lines = {}
    for r in ev.assets:
        a = r.asset
        lines[a] = LedgerLine(
            asset=a, deposits=mk.amount(a, r.deposits), withdrawals=mk.amount(a, r.withdrawals),
            fees_collected=mk.amount(a, r.fees_collected), funding_residue=mk.amount(a, r.funding_residue),
            liquidation_fees=mk.amount(a, r.liquidation_fees), insurance_fund=mk.amount(a, r.insurance_fund),
        )
    return Ledger(insurance_account=ev.insurance_account, assets=lines)


_NOT_CONDITIONAL = (m.OrderType.LIMIT, m.OrderType.MARKET)


# --- history: the venue's market and account history in human units
# (replies to the Query* commands of docs/history.md; times stay venue ns)


@dataclass(frozen=True, slots=True)
class Trade:
    """A public trade."""

    symbol: str
    trade_id: int
    price: Decimal
    qty: Decimal
    taker_side: str
    liquidation: bool
    ts: int


@dataclass(frozen=True, slots=True)
class Candle:
    """One OHLCV candle; ``volume`` in the base asset, ``quote_volume`` in
    the settlement asset (both 0 for mark and index candles)."""

    open_time: int
    close_time: int
    open: Decimal
    high: Decimal
    low: Decimal
    close: Decimal
    volume: Decimal
    quote_volume: Decimal
    trades: int


@dataclass(frozen=True, slots=True)
class Ticker:
    """Rolling 24-hour statistics; prices None when nothing traded in the
    window (``last``: None if nothing ever traded)."""

    symbol: str
    open: Decimal | None
    high: Decimal | None
    low: Decimal | None
    last: Decimal | None
    last_qty: Decimal
    volume: Decimal
    quote_volume: Decimal
    change: Decimal | None
    percentage: Decimal | None  # change / open × 100, to the basis point
    vwap: Decimal | None
    trades: int
    open_time: int
    close_time: int
    mark: Decimal
    index: Decimal | None
    bid: Decimal | None
    bid_qty: Decimal
    ask: Decimal | None
    ask_qty: Decimal


@dataclass(frozen=True, slots=True)
class FundingEntry:
    """One settled funding rate (a fraction: 0.0001 = 0.01%)."""

    symbol: str
    rate: Decimal
    mark: Decimal
    ts: int


@dataclass(frozen=True, slots=True)
class PremiumIndex:
    symbol: str
    mark: Decimal
    index: Decimal | None
    last_funding_rate: Decimal
    predicted_funding_rate: Decimal
    interest_rate: Decimal
    next_funding_time: int | None
    interval_ns: int
    ts: int


@dataclass(frozen=True, slots=True)
class OrderRecord:
    """An order from the venue's history: open (status new or
    partially_filled) or ended (filled, cancelled, expired, rejected)."""

    order_id: int
    client_order_id: str | None
    symbol: str
    side: str
    type: str
    tif: str
    status: str
    price: Decimal | None
    stop_price: Decimal | None
    qty: Decimal
    filled: Decimal
    avg_price: Decimal | None
    reduce_only: bool
    cause: str | None
    reject_reason: str | None
    triggered: bool
    time: int
    update_time: int

    @property
    def remaining(self) -> Decimal:
        return self.qty - self.filled if self.status in ("new", "partially_filled") else Decimal(0)


_RATE = Decimal(10**8)


def _rate_e8(e8: int) -> Decimal:
    return Decimal(e8) / _RATE


def _avg(ins: InstrumentMeta, quote: int, lots: int) -> Decimal | None:
    """An average price in ticks, exact where it is whole, else to 4 digits below the tick."""
    if not lots:
        return None
    return ins.price(quote // lots if quote % lots == 0 else quote / lots)


def history(mk: Markets, ev):
    """The reply to a history query in human units: a list of models, or
    one model (``Ticker``, ``PremiumIndex``, ``OrderRecord``)."""
    t = type(ev)
    if t is m.Trades:
        ins = mk[ev.symbol]
        return [Trade(symbol=x.symbol, trade_id=x.trade_id, price=ins.price(x.price), qty=ins.qty(x.qty),
                      taker_side=x.taker_side.value, liquidation=x.liquidation, ts=x.ts) for x in ev.trades]
    if t is m.Candles:
        ins = mk[ev.symbol]
        price = Markets.index_usd if ev.source == m.PriceSource.INDEX else ins.price
        return [Candle(open_time=c.open_time, close_time=c.close_time, open=price(c.open), high=price(c.high),
                       low=price(c.low), close=price(c.close), volume=ins.qty(c.volume),
                       quote_volume=mk.settle(c.quote_volume), trades=c.trades) for c in ev.candles]
    if t is m.Ticker:
        return _ticker(mk, ev)
    if t is m.Tickers:
        return [_ticker(mk, x) for x in ev.tickers]
    if t is m.FundingHistory:
        return [FundingEntry(symbol=r.symbol, rate=_rate_e8(r.rate_e8), mark=mk[r.symbol].price(r.mark), ts=r.ts)
                for r in ev.rates]
    if t is m.PremiumIndex:
        return _premium(mk, ev)
    if t is m.PremiumIndexes:
        return [_premium(mk, x) for x in ev.items]
    if t is m.OrderRecord:
        return order_record(mk, ev)
    if t is m.OrderHistory:
        return [order_record(mk, o) for o in ev.orders]
    if t is m.MyTrades:
        return [convert(mk, f) for f in ev.trades]
    return ev


def _ticker(mk: Markets, t: m.Ticker) -> Ticker:
    ins = mk[t.symbol]
    traded = t.trades > 0
    return Ticker(
        symbol=t.symbol, open=ins.price(t.open) if traded else None, high=ins.price(t.high) if traded else None,
        low=ins.price(t.low) if traded else None, last=ins.price(t.last) if t.last else None,
        last_qty=ins.qty(t.last_qty), volume=ins.qty(t.volume), quote_volume=mk.settle(t.quote_volume),
        change=ins.price(t.change) if traded else None,
        percentage=Decimal(t.change_bps) / 100 if traded else None,
        vwap=ins.price(t.vwap) if t.volume else None,
        trades=t.trades, open_time=t.open_time, close_time=t.close_time, mark=ins.price(t.mark),
        index=Markets.index_usd(t.index) if t.index else None, bid=ins.price(t.best_bid),
        bid_qty=ins.qty(t.best_bid_qty), ask=ins.price(t.best_ask), ask_qty=ins.qty(t.best_ask_qty),
    )


def _premium(mk: Markets, p: m.PremiumIndex) -> PremiumIndex:
    return PremiumIndex(
        symbol=p.symbol, mark=mk[p.symbol].price(p.mark), index=Markets.index_usd(p.index) if p.index else None,
        last_funding_rate=_rate_e8(p.last_funding_rate_e8), predicted_funding_rate=_rate_e8(p.predicted_funding_rate_e8),
        interest_rate=_rate_e8(p.interest_rate_e8), next_funding_time=p.next_funding_time, interval_ns=p.interval_ns,
        ts=p.ts,
    )


def order_record(mk: Markets, o: m.OrderRecord) -> OrderRecord:
    ins = mk[o.symbol]
    return OrderRecord(
        order_id=o.order_id, client_order_id=o.client_order_id, symbol=o.symbol, side=o.side.value,
        type=o.type.value, tif=o.tif.value, status=o.status.value, price=ins.price(o.price),
        stop_price=ins.price(o.stop_price), qty=ins.qty(o.qty), filled=ins.qty(o.filled),
        avg_price=_avg(ins, o.filled_quote, o.filled), reduce_only=o.reduce_only,
        cause=None if o.cause is None else o.cause.value, reject_reason=o.reject_reason, triggered=o.triggered,
        time=o.time, update_time=o.update_time,
    )
