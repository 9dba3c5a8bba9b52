"""Every message exchange-sim speaks, in one place.

The venue core and every client share these definitions. Each message is a
``msgspec.Struct`` tagged with its class name in the ``msg`` field, so one
typed decoder turns a frame into the right class and a ``match`` statement
dispatches on it (the msgspec key-value-store example's habit).

Units on the wire (integers only; the Python clients convert at the edge):

- prices of an instrument: integer **ticks** of that instrument
  (``price_ticks * tick_size`` is the human price);
- quantities: integer **lots** of that instrument;
- balances, fees, PnL: integers of the asset's **minor unit**
  (USDT has 6 decimals: 1_000_000 = 1 USDT);
- index prices of assets: integers of ``1e-8`` USD per whole unit
  (:data:`PRICE_SCALE`): BTC at $60,000 is ``6_000_000_000_000``;
- risk figures (equity, IM, MM, ratio) are floats in USDT: they are
  estimates, never balances.

Evolution rules (from msgspec's schema-evolution notes): new fields are only
ever added with a default; no field changes type; :data:`PROTOCOL_VERSION`
goes up when a client must know about a change.
"""

from __future__ import annotations

import enum
from typing import Annotated, Union

import msgspec
from msgspec import Meta

PROTOCOL_VERSION = 1
PRICE_SCALE = 10**8  # index prices: integer 1e-8 USD per whole asset unit

# Bounds that keep numbers sane on the wire; the venue checks them again for
# in-process callers (msgspec validates on decode, not on construction).
MAX_QTY = 10**12
MAX_PRICE = 10**15
MAX_AMOUNT = 10**18

Qty = Annotated[int, Meta(gt=0, le=MAX_QTY)]
# --- history: the time an event happened at (issue 14)
VenueTime = Annotated[int, Meta(description="venue time the event happened at (ns since the Unix epoch; "
                                            "0 = before any timed command)")]
Price = Annotated[int, Meta(gt=0, le=MAX_PRICE)]
Amount = Annotated[int, Meta(gt=0, le=MAX_AMOUNT)]
AccountId = Annotated[int, Meta(ge=0, le=2**53)]
OrderId = Annotated[int, Meta(ge=0, le=2**63 - 1)]
Symbol = Annotated[str, Meta(min_length=1, max_length=32)]
AssetName = Annotated[str, Meta(min_length=1, max_length=16)]
# Binance's rule for newClientOrderId: ^[.A-Z:/a-z0-9_-]{1,36}$
ClientOrderId = Annotated[str, Meta(pattern=r"^[.A-Z:/a-z0-9_-]{1,36}$")]


class Side(enum.StrEnum):
    BUY = "buy"
    SELL = "sell"


class OrderType(enum.StrEnum):
    LIMIT = "limit"
    MARKET = "market"
    STOP_MARKET = "stop_market"  # becomes a market order when mark crosses stop_price
    STOP_LIMIT = "stop_limit"  # becomes a limit order when mark crosses stop_price


class TimeInForce(enum.StrEnum):
    GTC = "gtc"  # good till cancelled
    IOC = "ioc"  # immediate or cancel: the unfilled rest expires
    FOK = "fok"  # fill or kill: all at once or nothing
    POST_ONLY = "post_only"  # maker only: rejected if it would take (Binance GTX)


class StpMode(enum.StrEnum):
    """Self-trade prevention, per order; the taker's mode decides (Binance)."""

    NONE = "none"
    EXPIRE_TAKER = "expire_taker"
    EXPIRE_MAKER = "expire_maker"
    EXPIRE_BOTH = "expire_both"


class Liquidity(enum.StrEnum):
    MAKER = "maker"
    TAKER = "taker"


class MarginMode(enum.StrEnum):
    ISOLATED = "isolated"
    CROSS = "cross"
    PORTFOLIO = "portfolio"


class RejectReason(enum.StrEnum):
    """Why a command was refused. A reject never changes venue state, except
    ``INTERNAL``: the venue failed while applying the command (a server bug,
    not the sender's), so its effect is unknown; it may be partly applied."""

    MALFORMED = "malformed"  # undecodable frame or wrong field types
    UNKNOWN_MESSAGE = "unknown_message"
    INVALID_FIELD = "invalid_field"  # a value out of range or inconsistent
    NOT_LOGGED_IN = "not_logged_in"
    AUTH_FAILED = "auth_failed"
    NOT_ALLOWED = "not_allowed"  # admin only, or another account's order
    RATE_LIMITED = "rate_limited"
    UNKNOWN_ACCOUNT = "unknown_account"
    UNKNOWN_ASSET = "unknown_asset"
    UNKNOWN_SYMBOL = "unknown_symbol"
    SYMBOL_PAUSED = "symbol_paused"
    BAD_TICK = "bad_tick"  # price not a whole number of ticks (human units)
    BAD_LOT = "bad_lot"  # quantity not a whole number of lots, or not positive
    BELOW_MIN_NOTIONAL = "below_min_notional"
    ABOVE_MAX_QTY = "above_max_qty"
    OUTSIDE_PRICE_BAND = "outside_price_band"
    NO_MARK_PRICE = "no_mark_price"  # the instrument has no index price yet
    MISSING_PRICE = "missing_price"
    MISSING_STOP_PRICE = "missing_stop_price"
    INSUFFICIENT_MARGIN = "insufficient_margin"
    INSUFFICIENT_BALANCE = "insufficient_balance"
    POST_ONLY_WOULD_CROSS = "post_only_would_cross"
    FOK_NOT_FILLABLE = "fok_not_fillable"
    REDUCE_ONLY_WOULD_INCREASE = "reduce_only_would_increase"
    NO_LIQUIDITY = "no_liquidity"  # a market order found nothing to take
    UNKNOWN_ORDER = "unknown_order"
    DUPLICATE_CLIENT_ORDER_ID = "duplicate_client_order_id"
    TOO_MANY_OPEN_ORDERS = "too_many_open_orders"
    SELF_TRADE_PREVENTED = "self_trade_prevented"
    NOTHING_TO_AMEND = "nothing_to_amend"
    REDUCE_ONLY_MODE = "reduce_only_mode"  # the account may only reduce risk
    MARGIN_MODE_CHANGE_DENIED = "margin_mode_change_denied"
    ACCOUNT_EXISTS = "account_exists"
    INTERNAL = "internal"  # the server failed on the command: its effect is unknown


#: what each reject reason means, for people (docs, logs, client errors)
REJECT_HELP = {
    RejectReason.MALFORMED: "the frame is not valid msgpack, or a field has the wrong type",
    RejectReason.UNKNOWN_MESSAGE: "the `msg` tag names no message this server accepts",
    RejectReason.INVALID_FIELD: "a value is out of range or inconsistent with the others",
    RejectReason.NOT_LOGGED_IN: "log in before sending account commands",
    RejectReason.AUTH_FAILED: "unknown account or wrong API key",
    RejectReason.NOT_ALLOWED: "admin only, another account's resource, or not possible in this state",
    RejectReason.RATE_LIMITED: "the session sent faster than its rate limit; back off and retry",
    RejectReason.UNKNOWN_ACCOUNT: "no such account (a deposit or OpenAccount creates one)",
    RejectReason.UNKNOWN_ASSET: "no such asset in the venue's config",
    RejectReason.UNKNOWN_SYMBOL: "no such instrument",
    RejectReason.SYMBOL_PAUSED: "the instrument is paused: no new orders or amends, cancels still work",
    RejectReason.BAD_TICK: "price is not a positive whole number of ticks",
    RejectReason.BAD_LOT: "quantity is not a positive whole number of lots",
    RejectReason.BELOW_MIN_NOTIONAL: "price x quantity is below the instrument's minimum notional",
    RejectReason.ABOVE_MAX_QTY: "quantity is above the instrument's maximum order size",
    RejectReason.OUTSIDE_PRICE_BAND: "limit price too far from mark (the limit price band)",
    RejectReason.NO_MARK_PRICE: "the instrument has no index price yet",
    RejectReason.MISSING_PRICE: "a limit or stop-limit order needs a price",
    RejectReason.MISSING_STOP_PRICE: "a stop order needs a stop price",
    RejectReason.INSUFFICIENT_MARGIN: "initial margin with this order would exceed equity",
    RejectReason.INSUFFICIENT_BALANCE: "the wallet holds less of the asset than asked",
    RejectReason.POST_ONLY_WOULD_CROSS: "a post-only order would have taken liquidity",
    RejectReason.FOK_NOT_FILLABLE: "a fill-or-kill order could not fill completely at once",
    RejectReason.REDUCE_ONLY_WOULD_INCREASE: "a reduce-only order would open or grow a position",
    RejectReason.NO_LIQUIDITY: "a market order found nothing to take within the market price band",
    RejectReason.UNKNOWN_ORDER: "no open order with that id on this account",
    RejectReason.DUPLICATE_CLIENT_ORDER_ID: "the client order id is taken by an open or a recent order of the account",
    RejectReason.TOO_MANY_OPEN_ORDERS: "the account has the maximum number of open orders",
    RejectReason.SELF_TRADE_PREVENTED: "self-trade prevention refused the order",
    RejectReason.NOTHING_TO_AMEND: "the amend changes nothing",
    RejectReason.REDUCE_ONLY_MODE: "the margin ratio is below the reduce-only threshold: only risk-reducing orders",
    RejectReason.MARGIN_MODE_CHANGE_DENIED: "the new margin mode would not meet IM, or positions/orders are open",
    RejectReason.ACCOUNT_EXISTS: "that account id is already open",
    RejectReason.INTERNAL: ("the server failed while handling the command (its bug, not yours; logged there "
                            "with a traceback): the command's effect is unknown, it may be partly applied. "
                            "Do not resend blindly: query your orders and account to see what happened"),
}


class CancelCause(enum.StrEnum):
    USER = "user"
    CANCEL_ALL = "cancel_all"
    IOC = "ioc"  # the unfilled rest of an IOC, market or triggered order
    FOK = "fok"
    PRICE_BAND = "price_band"  # a market order stopped at the band edge
    SELF_TRADE = "self_trade"
    REDUCE_ONLY = "reduce_only"  # nothing left to reduce
    LIQUIDATION = "liquidation"
    DISCONNECT = "disconnect"  # cancel-on-disconnect
    ADMIN = "admin"


class _Msg(msgspec.Struct, tag_field="msg", tag=True, kw_only=True, omit_defaults=True):
    """Base of every message: tagged by class name in the ``msg`` field.

    Events the venue's history keeps by the thousand (``OrderAccepted``,
    ``Fill``, ``Trade``, ``FundingRate``) are declared ``gc=False``: they hold
    only scalars, so they can never be in a reference cycle, and untracked
    they cost the garbage collector nothing (msgspec's "disabling garbage
    collection" notes)."""


class _Command(_Msg, forbid_unknown_fields=True):
    """Base of every message a client sends. An unknown field is refused
    (``INVALID_FIELD`` naming it), never dropped: a misspelled ``reduceOnly``
    must not place an order without it. Events sent to clients stay lenient
    so an older client can read a newer venue's events."""


# ---------------------------------------------------------------- commands


class Deposit(_Command):
    """Admin faucet: credit ``amount`` minor units of ``asset``."""

    account: AccountId
    asset: AssetName
    amount: Amount


class Withdraw(_Command):
    """Debit ``amount``; refused if it would leave the account below IM."""

    account: AccountId
    asset: AssetName
    amount: Amount


class SetIndexPrice(_Command):
    """Admin: set an asset's USD index price (``PRICE_SCALE`` units)."""

    asset: AssetName
    price: Price


class NewOrder(_Command):
    account: AccountId
    symbol: Symbol
    side: Side
    qty: Qty
    price: Price | None = None  # required for limit and stop-limit
    type: OrderType = OrderType.LIMIT
    tif: TimeInForce = TimeInForce.GTC
    reduce_only: bool = False
    stop_price: Price | None = None  # mark price that triggers a stop order
    stp: StpMode = StpMode.EXPIRE_TAKER
    client_order_id: ClientOrderId | None = None


class CancelOrder(_Command):
    """Cancel by venue ``order_id`` or by ``client_order_id``."""

    account: AccountId
    order_id: OrderId | None = None
    client_order_id: ClientOrderId | None = None


class AmendOrder(_Command):
    """Change price and/or remaining quantity of a resting order.

    ``qty`` is the new *remaining* quantity. Lowering it keeps time priority;
    a new price or a larger quantity sends the order to the back of its
    level (as on Binance and CME).
    """

    account: AccountId
    order_id: OrderId | None = None
    client_order_id: ClientOrderId | None = None
    qty: Qty | None = None
    price: Price | None = None


class CancelAll(_Command):
    account: AccountId
    symbol: Symbol | None = None


class CancelOnDisconnect(_Command):
    """Admin (the server sends it): cancel every open order of ``account``, as
    ``CancelAll`` does, because a session that logged in with
    ``cancel_on_disconnect`` ended; the cancels carry cause ``disconnect``."""

    account: AccountId


class ShockPrice(_Command):
    """Admin: move an asset's index by ``change_bps`` basis points
    (-3000 = a 30% crash) in one step."""

    asset: AssetName
    change_bps: Annotated[int, Meta(gt=-10_000, le=1_000_000)]


class PauseSymbol(_Command):
    """Admin: pause (no new orders or amends; cancels still work) or resume."""

    symbol: Symbol
    paused: bool = True


class OpenAccount(_Command):
    """Admin: create an empty account (a deposit also creates one)."""

    account: AccountId


class CloseAccount(_Command):
    """Admin: remove an account. Refused while it holds a position or a
    non-zero balance; its open orders are cancelled."""

    account: AccountId


class SetMarginMode(_Command):
    """Switch the account's margin mode. Refused (MARGIN_MODE_CHANGE_DENIED)
    if the account would not meet initial margin under the new mode, or, to or
    from isolated, while it has open positions or orders (as on Binance)."""

    account: AccountId
    mode: MarginMode


class AdjustIsolatedMargin(_Command):
    """Move USDT into (``delta`` > 0) or out of (< 0) an isolated position's
    allocated margin. Never below the position's initial margin."""

    account: AccountId
    symbol: Symbol
    delta: Annotated[int, Meta(ge=-MAX_AMOUNT, le=MAX_AMOUNT)]


class SettleFunding(_Command):
    """Admin: settle perpetual funding now (it also settles by itself at each
    funding interval of venue time)."""

    symbol: Symbol | None = None


class Tick(_Command):
    """Timer: advances venue time only (the server sends it so time-driven
    work such as funding happens while nobody trades)."""


class QueryExplain(_Command):
    """The whole margin breakdown of an account (the teaching view)."""

    account: AccountId


class QueryAccount(_Command):
    account: AccountId


class QueryOpenOrders(_Command):
    account: AccountId
    symbol: Symbol | None = None


class QueryBook(_Command):
    symbol: Symbol
    depth: Annotated[int, Meta(gt=0, le=10_000)] | None = None


class QueryInstruments(_Command):
    """Instrument and asset metadata a client needs to convert units."""


# --- history (issue 14): market and account history, read from the venue's
# history stage (exchange_sim/core/history.py) by the views, unsequenced.
# Shapes follow Binance USD-M futures (docs/adr/0009-history.md).


class CandleInterval(enum.StrEnum):
    """Candle widths (Binance kline intervals); candles open at multiples of
    the width in venue time (UTC days for ``1d``)."""

    M1 = "1m"
    M5 = "5m"
    M15 = "15m"
    H1 = "1h"
    H4 = "4h"
    D1 = "1d"


class PriceSource(enum.StrEnum):
    """What a candle is made of: trades (``last``, Binance klines), the mark
    price (markPriceKlines) or the index price (indexPriceKlines)."""

    LAST = "last"
    MARK = "mark"
    INDEX = "index"


class OrderStatus(enum.StrEnum):
    """An order's state in the history (Binance order status)."""

    NEW = "new"  # open, nothing filled (an untriggered stop too)
    PARTIALLY_FILLED = "partially_filled"  # open, some filled
    FILLED = "filled"
    CANCELLED = "cancelled"  # by its owner, cancel-all, disconnect, liquidation, reduce-only upkeep, admin
    EXPIRED = "expired"  # the rest of an IOC/FOK/market order, the band, self-trade prevention
    REJECTED = "rejected"  # refused after it was accepted (a stop that triggered and failed the checks)


Ns = Annotated[int, Meta(ge=0, le=2**63 - 1, description="venue time (ns since the Unix epoch)")]
HistoryLimit = Annotated[int, Meta(gt=0, le=1000, description="at most this many rows, the newest (1..1000)")]


class QueryTrades(_Command):
    """Recent public trades of a symbol, oldest first (Binance GET /fapi/v1/trades). Reply: ``Trades``."""

    symbol: Symbol
    limit: HistoryLimit = 500


class QueryCandles(_Command):
    """OHLCV candles of a symbol, oldest first (Binance GET /fapi/v1/klines,
    markPriceKlines, indexPriceKlines). With ``start``, the first ``limit``
    candles opening at or after it; else the last ``limit`` opening at or
    before ``end`` (or now). An interval with no trade (no price) has no
    candle. Reply: ``Candles``."""

    symbol: Symbol
    interval: Annotated[CandleInterval, Meta(description="candle width")] = CandleInterval.M1
    source: Annotated[PriceSource, Meta(description="trades, mark price or index price")] = PriceSource.LAST
    start: Annotated[Ns | None, Meta(description="earliest candle open time (ns), inclusive")] = None
    end: Annotated[Ns | None, Meta(description="latest candle open time (ns), inclusive")] = None
    limit: Annotated[int, Meta(gt=0, le=1500, description="at most this many candles (1..1500)")] = 500


class QueryTicker(_Command):
    """Rolling 24-hour statistics (Binance GET /fapi/v1/ticker/24hr). Reply:
    ``Ticker`` for one symbol, ``Tickers`` for all (``symbol`` omitted)."""

    symbol: Symbol | None = None


class QueryFundingHistory(_Command):
    """Settled funding rates, oldest first (Binance GET /fapi/v1/fundingRate).
    Reply: ``FundingHistory``."""

    symbol: Symbol | None = None
    start: Annotated[Ns | None, Meta(description="earliest settlement time (ns), inclusive")] = None
    end: Annotated[Ns | None, Meta(description="latest settlement time (ns), inclusive")] = None
    limit: HistoryLimit = 100


class QueryPremiumIndex(_Command):
    """Mark, index, last and predicted funding rate and the next funding time
    (Binance GET /fapi/v1/premiumIndex). Reply: ``PremiumIndex`` for one
    symbol, ``PremiumIndexes`` for all funded ones (``symbol`` omitted)."""

    symbol: Symbol | None = None


class QueryOrderHistory(_Command):
    """The account's ended orders (filled, cancelled, expired, rejected after
    acceptance), oldest first, by the time they ended (Binance GET
    /fapi/v1/allOrders). Reply: ``OrderHistory``."""

    account: AccountId
    symbol: Symbol | None = None
    start: Annotated[Ns | None, Meta(description="earliest end time (ns), inclusive")] = None
    end: Annotated[Ns | None, Meta(description="latest end time (ns), inclusive")] = None
    limit: HistoryLimit = 500


class QueryMyTrades(_Command):
    """The account's own fills, oldest first, with fee, realized PnL and
    liquidity (Binance GET /fapi/v1/userTrades). Reply: ``MyTrades``."""

    account: AccountId
    symbol: Symbol | None = None
    start: Annotated[Ns | None, Meta(description="earliest fill time (ns), inclusive")] = None
    end: Annotated[Ns | None, Meta(description="latest fill time (ns), inclusive")] = None
    limit: HistoryLimit = 500


class QueryOrder(_Command):
    """One order of the account, open or ended, by ``order_id`` or
    ``client_order_id`` (Binance GET /fapi/v1/order). Reply: ``OrderRecord``."""

    account: AccountId
    order_id: OrderId | None = None
    client_order_id: ClientOrderId | None = None


Command = Union[
    Deposit,
    Withdraw,
    SetIndexPrice,
    ShockPrice,
    PauseSymbol,
    OpenAccount,
    CloseAccount,
    SetMarginMode,
    AdjustIsolatedMargin,
    SettleFunding,
    Tick,
    NewOrder,
    CancelOrder,
    AmendOrder,
    CancelAll,
    CancelOnDisconnect,
    QueryAccount,
    QueryOpenOrders,
    QueryBook,
    QueryInstruments,
    QueryExplain,
    # --- history
    QueryTrades,
    QueryCandles,
    QueryTicker,
    QueryFundingHistory,
    QueryPremiumIndex,
    QueryOrderHistory,
    QueryMyTrades,
    QueryOrder,
]

# ------------------------------------------------------------------ events


class Rejected(_Msg):
    """A command was refused; nothing changed (except for reason ``internal``,
    a server fault: the effect is unknown). ``reason`` is machine-readable,
    ``message`` is for the person reading the log."""

    reason: RejectReason
    message: str
    command: str = ""  # the refused command's tag, e.g. "NewOrder"
    account: int | None = None
    order_id: int | None = None
    client_order_id: str | None = None


class OrderAccepted(_Msg, gc=False):
    account: int
    order_id: int
    symbol: str
    side: Side
    type: OrderType
    tif: TimeInForce
    qty: int
    price: int | None = None
    stop_price: int | None = None
    reduce_only: bool = False
    client_order_id: str | None = None
    ts: VenueTime = 0


class OrderTriggered(_Msg):
    """A stop order's stop price was crossed by the mark; it now works."""

    account: int
    order_id: int
    symbol: str
    mark: int
    client_order_id: str | None = None
    ts: VenueTime = 0


class Fill(_Msg, gc=False):
    """One side of one trade, sent privately to the account that traded."""

    account: int
    order_id: int
    symbol: str
    side: Side
    price: int
    qty: int
    fee: int  # settlement-asset minor units, rounded up (against the account)
    liquidity: Liquidity
    trade_id: int
    remaining: int  # the order's open quantity after this fill
    realized_pnl: int = 0  # settlement minor units credited by this fill
    position: int = 0  # the account's net position after this fill, lots
    client_order_id: str | None = None
    liquidation: bool = False
    ts: VenueTime = 0


class OrderCancelled(_Msg):
    """An order left the book without filling completely (also: expired)."""

    account: int
    order_id: int
    symbol: str
    remaining: int
    cause: CancelCause
    client_order_id: str | None = None
    ts: VenueTime = 0


class OrderAmended(_Msg):
    account: int
    order_id: int
    symbol: str
    price: int | None
    qty: int
    priority_kept: bool
    client_order_id: str | None = None
    ts: VenueTime = 0


class Trade(_Msg, gc=False):
    """Public trade print."""

    symbol: str
    trade_id: int
    price: int
    qty: int
    taker_side: Side
    liquidation: bool = False
    ts: VenueTime = 0


class BookDelta(_Msg):
    """Changed L2 levels: absolute lots per price, 0 = level removed.

    ``seq`` increases by exactly one per delta of this symbol; a gap means a
    message was lost and the book must be re-synced from a snapshot.
    """

    symbol: str
    seq: int
    bids: list[tuple[int, int]]
    asks: list[tuple[int, int]]


class BookSnapshot(_Msg):
    """L2 levels best-first and the delta ``seq`` they reflect."""

    symbol: str
    seq: int
    bids: list[tuple[int, int]]
    asks: list[tuple[int, int]]


class MarkPrice(_Msg):
    symbol: str
    mark: int  # ticks
    index: int  # PRICE_SCALE units


class PositionView(_Msg):
    symbol: str
    qty: int  # lots, + long / - short
    entry_price: float  # average entry, ticks
    mark: int  # ticks
    notional: int  # |qty| * mark, settlement minor units
    upnl: int  # settlement minor units
    im: float
    mm: float


class AccountUpdate(_Msg):
    """An account's whole state: sent on change and as the query reply."""

    account: int
    balances: dict[str, int]
    positions: list[PositionView]
    collateral: float  # wallet value after haircuts, USDT
    equity: float  # collateral + unrealized PnL, USDT
    im: float  # initial margin incl. open orders, USDT
    mm: float  # maintenance margin, USDT
    margin_ratio: float | None  # equity / mm; None when mm is 0 (no risk)
    margin_mode: MarginMode = MarginMode.CROSS


class SymbolStatus(_Msg):
    symbol: str
    paused: bool


class AccountOpened(_Msg):
    account: int


class AccountClosed(_Msg):
    account: int


class MarginCall(_Msg):
    """Private: the account's margin ratio fell below a threshold.

    ``level`` is "warning" (below the warning ratio), "reduce_only" (only
    risk-reducing orders are accepted) or "liquidation" (below 1.0)."""

    account: int
    level: str
    margin_ratio: float
    equity: float
    mm: float
    symbol: str | None = None  # set for an isolated position


class LiquidationStarted(_Msg):
    """Private: the account (or, isolated, one position) fell below MM."""

    account: int
    margin_ratio: float
    equity: float
    mm: float
    symbol: str | None = None  # isolated: the position being liquidated


class LiquidationSlice(_Msg):
    """Private: one slice of a position closed by the liquidation engine.

    ``impact`` is the margin impact it was ranked by (MM with the position −
    MM without it); ``book_qty`` filled in the book at prices no worse than
    ``bankruptcy_price``; ``takeover_qty`` went to the insurance fund or ADL
    there."""

    account: int
    symbol: str
    side: Side
    qty: int
    book_qty: int
    takeover_qty: int
    bankruptcy_price: int
    impact: float
    fee: int
    margin_ratio_after: float | None


class InsuranceTakeover(_Msg):
    """The insurance fund took over what the book could not absorb."""

    account: int
    fund: int
    symbol: str
    side: Side  # the liquidated account's side (the fund takes the other)
    qty: int
    price: int  # the position's bankruptcy price, ticks


class AutoDeleverage(_Msg):
    """A profitable opposite position was closed against a bankrupt one at
    the bankrupt account's bankruptcy price. ``rank`` = PnL% × effective
    leverage (BitMEX/Binance): highest goes first."""

    account: int  # the bankrupt account
    counterparty: int
    symbol: str
    qty: int  # lots closed on each side
    price: int
    rank: float


class CollateralConversion(_Msg):
    """Collateral sold to the insurance fund at index minus a penalty to repay
    a negative settlement balance."""

    account: int
    asset: str
    amount: int  # minor units of ``asset`` sold
    proceeds: int  # settlement minor units received
    price: float  # USD per unit after the penalty


class BankruptcyCovered(_Msg):
    """The insurance fund paid the deficit left after everything was closed."""

    account: int
    amount: int  # settlement minor units


class LiquidationFinished(_Msg):
    account: int
    margin_ratio: float | None
    equity: float
    mm: float
    symbol: str | None = None


class CascadeBoundHit(_Msg):
    """The cascade stopped at ``liquidation.max_rounds`` with accounts still
    below maintenance margin; they are processed on the next command."""

    rounds: int
    pending: list[int]


class LiquidationNotice(_Msg):
    """Public: a liquidation order traded (Binance's forceOrder stream)."""

    symbol: str
    side: Side
    qty: int
    price: int


class MarginModeChanged(_Msg):
    account: int
    mode: MarginMode


class IsolatedMarginChanged(_Msg):
    account: int
    symbol: str
    delta: int
    allocated: int  # settlement minor units now allocated to the position


class FundingRate(_Msg, gc=False):
    """Public: the funding rate applied at this settlement (1e-8 units)."""

    symbol: str
    rate_e8: int  # + longs pay shorts, - shorts pay longs
    mark: int
    premium: float
    ts: VenueTime = 0


class FundingPayment(_Msg):
    """Private: funding paid (amount < 0) or received (> 0)."""

    account: int
    symbol: str
    position: int
    rate_e8: int
    amount: int
    ts: VenueTime = 0


class HaircutSlice(_Msg):
    up_to: float | None  # USD bracket upper bound; None = unbounded (JSON has no inf)
    rate: float
    value_in_bracket: float
    haircut: float


class ExplainAsset(_Msg):
    asset: str
    balance: int  # minor units
    index_price: float  # USD
    value: float  # USD before haircut
    haircut: float  # USD taken off
    counted: float  # USD counted as collateral
    brackets: list[HaircutSlice]


class ExplainPosition(_Msg):
    symbol: str
    underlying: str
    qty: int
    entry_price: float  # ticks
    mark: int  # ticks
    notional: float  # signed USD at mark
    upnl: float  # USD
    cross_im: float
    cross_mm: float
    impact: float  # MM(portfolio) - MM(portfolio without it), account's mode
    isolated_margin: float = 0.0  # USD allocated (isolated mode)


class ExplainScenario(_Msg):
    name: str  # e.g. "BTC +", "market -"
    moves: dict[str, float]  # underlying -> relative price move
    loss: float  # USD, + = loss
    worst: bool = False


class ModeRequirement(_Msg):
    """What the same holdings need under one margin mode."""

    mode: MarginMode
    im: float
    mm: float
    usable_collateral: float  # what may back it under this mode
    free: float  # usable collateral + uPnL - IM: idle capital available for new trades
    margin_ratio: float | None


class Explain(_Msg):
    account: int
    mode: MarginMode
    assets: list[ExplainAsset]
    positions: list[ExplainPosition]
    scenarios: list[ExplainScenario]
    collateral: float
    upnl: float
    equity: float
    im: float
    mm: float
    margin_ratio: float | None
    floor: float  # portfolio floor = floor rate x gross notional
    compare: list[ModeRequirement]
    profile: str = "default"


class BalanceChanged(_Msg):
    account: int
    asset: str
    delta: int
    balance: int
    reason: str  # "deposit", "withdraw", "funding", ...


class OrderView(_Msg):
    order_id: int
    symbol: str
    side: Side
    type: OrderType
    tif: TimeInForce
    qty: int  # remaining
    filled: int
    price: int | None = None
    stop_price: int | None = None
    reduce_only: bool = False
    client_order_id: str | None = None


class OpenOrders(_Msg):
    account: int
    orders: list[OrderView]


class InstrumentInfo(_Msg):
    symbol: str
    underlying: str
    settlement: str
    tick_size: str  # decimal string, human units
    lot_size: str
    min_notional: str
    max_qty: int  # lots
    maker_fee: str  # rate, decimal string
    taker_fee: str


class AssetInfo(_Msg):
    name: str
    decimals: int
    index_price: int | None  # PRICE_SCALE units


class Instruments(_Msg):
    protocol_version: int
    instruments: list[InstrumentInfo]
    assets: list[AssetInfo]


# --- history (issue 14): the replies to the history queries


class Trades(_Msg):
    """Reply to ``QueryTrades``: public trades, oldest first."""

    symbol: str
    trades: list[Trade]


class Candle(_Msg):
    """One OHLCV candle (a Binance kline row). Prices are ticks of the
    instrument for sources ``last`` and ``mark``, ``PRICE_SCALE`` units
    (1e-8 USD) for ``index``."""

    open_time: Annotated[int, Meta(description="the candle opens at this venue time (ns), inclusive")]
    close_time: Annotated[int, Meta(description="and closes before this one (ns), exclusive")]
    open: Annotated[int, Meta(description="first price (ticks; index: PRICE_SCALE units)")]
    high: Annotated[int, Meta(description="highest price (ticks; index: PRICE_SCALE units)")]
    low: Annotated[int, Meta(description="lowest price (ticks; index: PRICE_SCALE units)")]
    close: Annotated[int, Meta(description="last price (ticks; index: PRICE_SCALE units)")]
    volume: Annotated[int, Meta(description="traded quantity (lots); 0 for mark and index")] = 0
    quote_volume: Annotated[int, Meta(description="traded notional (settlement minor units); 0 for mark and index")] = 0
    trades: Annotated[int, Meta(description="number of trades; 0 for mark and index")] = 0


class Candles(_Msg):
    """Reply to ``QueryCandles``: candles oldest first."""

    symbol: str
    interval: CandleInterval
    source: PriceSource
    candles: list[Candle]


class Ticker(_Msg):
    """Rolling 24-hour statistics of one symbol (Binance ticker/24hr),
    from the 1-minute candles of the window: ``open`` is the first trade
    price of the oldest minute in it. Price fields are 0 when nothing traded
    in the window (``last`` then keeps the last trade ever, if any)."""

    symbol: str
    open: Annotated[int, Meta(description="first trade price in the window (ticks)")] = 0
    high: Annotated[int, Meta(description="highest trade price in the window (ticks)")] = 0
    low: Annotated[int, Meta(description="lowest trade price in the window (ticks)")] = 0
    last: Annotated[int, Meta(description="last trade price (ticks); not the mark")] = 0
    last_qty: Annotated[int, Meta(description="quantity of the last trade (lots)")] = 0
    volume: Annotated[int, Meta(description="traded quantity in the window (lots)")] = 0
    quote_volume: Annotated[int, Meta(description="traded notional in the window (settlement minor units)")] = 0
    change: Annotated[int, Meta(description="last - open (ticks)")] = 0
    change_bps: Annotated[int, Meta(description="(last - open) / open in basis points, rounded toward zero")] = 0
    vwap: Annotated[float, Meta(description="quote_volume / volume as a price (fractional ticks); 0 if no volume")] = 0.0
    trades: Annotated[int, Meta(description="number of trades in the window")] = 0
    open_time: Annotated[int, Meta(description="start of the window (ns)")] = 0
    close_time: Annotated[int, Meta(description="end of the window: the venue time now (ns)")] = 0
    mark: Annotated[int, Meta(description="mark price now (ticks)")] = 0
    index: Annotated[int, Meta(description="index price of the underlying now (PRICE_SCALE units)")] = 0
    best_bid: Annotated[int | None, Meta(description="best bid (ticks); None if the side is empty")] = None
    best_bid_qty: Annotated[int, Meta(description="lots at the best bid")] = 0
    best_ask: Annotated[int | None, Meta(description="best ask (ticks); None if the side is empty")] = None
    best_ask_qty: Annotated[int, Meta(description="lots at the best ask")] = 0


class Tickers(_Msg):
    """Reply to ``QueryTicker`` without a symbol: every instrument's ticker."""

    tickers: list[Ticker]


class FundingHistory(_Msg):
    """Reply to ``QueryFundingHistory``: settled rates, oldest first."""

    rates: list[FundingRate]


class PremiumIndex(_Msg):
    """Mark, index and funding of one perpetual (Binance premiumIndex)."""

    symbol: str
    mark: Annotated[int, Meta(description="mark price (ticks)")]
    index: Annotated[int, Meta(description="index price of the underlying (PRICE_SCALE units)")]
    last_funding_rate_e8: Annotated[int, Meta(description="rate of the last settlement (1e-8 units); 0 before the first")] = 0
    predicted_funding_rate_e8: Annotated[int, Meta(description="rate the next settlement would apply at the book and mark now (1e-8 units)")] = 0
    next_funding_time: Annotated[int | None, Meta(description="venue time of the next settlement (ns); None before the first timed command")] = None
    interest_rate_e8: Annotated[int, Meta(description="the interest rate per interval (1e-8 units)")] = 0
    interval_ns: Annotated[int, Meta(description="time between two settlements (ns)")] = 0
    ts: Annotated[int, Meta(description="venue time now (ns)")] = 0


class PremiumIndexes(_Msg):
    """Reply to ``QueryPremiumIndex`` without a symbol: every funded perpetual."""

    items: list[PremiumIndex]


class OrderRecord(_Msg):
    """An order with its final (or, open, current) state (Binance order)."""

    account: int
    order_id: int
    symbol: str
    side: Side
    type: OrderType
    tif: TimeInForce
    status: OrderStatus
    qty: Annotated[int, Meta(description="ordered quantity (lots), after amends")]
    filled: Annotated[int, Meta(description="filled quantity (lots)")] = 0
    filled_quote: Annotated[int, Meta(description="sum of fill price x lots (ticks x lots): avg price = filled_quote / filled")] = 0
    avg_price: Annotated[float, Meta(description="average fill price (fractional ticks); 0 if nothing filled")] = 0.0
    price: Annotated[int | None, Meta(description="limit price (ticks)")] = None
    stop_price: Annotated[int | None, Meta(description="stop price (ticks)")] = None
    reduce_only: bool = False
    client_order_id: str | None = None
    cause: Annotated[CancelCause | None, Meta(description="why it was cancelled or expired")] = None
    reject_reason: Annotated[str | None, Meta(description="why it was rejected after acceptance (readable)")] = None
    triggered: Annotated[bool, Meta(description="a stop whose stop price was crossed")] = False
    time: Annotated[int, Meta(description="venue time it was accepted (ns)")] = 0
    update_time: Annotated[int, Meta(description="venue time of its last change: the end for an ended order (ns)")] = 0


class OrderHistory(_Msg):
    """Reply to ``QueryOrderHistory``: ended orders, oldest end first."""

    account: int
    orders: list[OrderRecord]


class MyTrades(_Msg):
    """Reply to ``QueryMyTrades``: the account's fills, oldest first."""

    account: int
    trades: list[Fill]


Event = Union[
    Rejected,
    OrderAccepted,
    OrderTriggered,
    Fill,
    OrderCancelled,
    OrderAmended,
    Trade,
    BookDelta,
    BookSnapshot,
    MarkPrice,
    AccountUpdate,
    BalanceChanged,
    OpenOrders,
    Instruments,
    SymbolStatus,
    AccountOpened,
    AccountClosed,
    MarginCall,
    LiquidationStarted,
    LiquidationSlice,
    InsuranceTakeover,
    AutoDeleverage,
    CollateralConversion,
    BankruptcyCovered,
    LiquidationFinished,
    CascadeBoundHit,
    LiquidationNotice,
    MarginModeChanged,
    IsolatedMarginChanged,
    FundingRate,
    FundingPayment,
    Explain,
    # --- history
    Trades,
    Candles,
    Ticker,
    Tickers,
    FundingHistory,
    PremiumIndex,
    PremiumIndexes,
    OrderRecord,
    OrderHistory,
    MyTrades,
]
