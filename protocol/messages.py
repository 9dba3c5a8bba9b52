"""Every message exchange-sim speaks, in one place.

The venue core and every client share these definitions. Each message is a
``msgspec.Struct`` tagged with its class name in the ``msg`` field, so one
typed decoder turns a frame into the right class and a ``match`` statement
dispatches on it (the msgspec key-value-store example's habit).

Units on the wire: one rule, and every field's ``description`` in the JSON
Schema says its unit. **Money, prices and quantities are integers**; the
Python clients convert at the edge:

- prices of an instrument: integer **ticks** of that instrument
  (``price_ticks * tick_size`` is the human price);
- quantities: integer **lots** of that instrument;
- balances, fees, PnL, notional: integers of the asset's **minor unit**
  (USDT has 6 decimals: 1_000_000 = 1 USDT);
- index prices of assets: integers of ``1e-8`` USD per whole unit
  (:data:`PRICE_SCALE`): BTC at $60,000 is ``6_000_000_000_000``;
- timestamps: integer nanoseconds since the Unix epoch (beyond 2**53).

**Floats only for risk estimates**, never balances: equity, collateral, IM,
MM, margin ratios, ADL rank, premium (USDT or plain ratios), the Explain
view's USD figures, and two documented exceptions a client must not misread:
``entry_price`` (an average, so a *fractional number of ticks*) and
``CollateralConversion.price`` (USD per whole unit).

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
    # --- protective orders (docs/adr/0011-protective-orders.md)
    TAKE_PROFIT_MARKET = "take_profit_market"  # market order when the price reaches stop_price in the order's favour
    TAKE_PROFIT_LIMIT = "take_profit_limit"  # limit order when the price reaches stop_price in the order's favour
    TRAILING_STOP_MARKET = "trailing_stop_market"  # market order when the price retraces callback_bps from its best


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
    # --- leverage
    LEVERAGE_ABOVE_MAX = "leverage_above_max"  # above what the notional tier allows
    LEVERAGE_INSUFFICIENT_MARGIN = "leverage_insufficient_margin"  # lowering it would need more IM than is free
    # --- dated futures (issue 16)
    NOT_TRADING = "not_trading"  # a dated future not listed yet, or expired


#: what each reject reason means, for people (docs, logs, client errors)
REJECT_HELP = {
    RejectReason.MALFORMED: "the frame is not valid msgpack, or a field has the wrong type (a float for an integer)",
    RejectReason.UNKNOWN_MESSAGE: "the `msg` tag names no message this server accepts",
    RejectReason.INVALID_FIELD: ("a value is out of range or inconsistent with the others, or a field the message "
                                 "does not have (refused, never ignored)"),
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
    # --- leverage
    RejectReason.LEVERAGE_ABOVE_MAX: ("the leverage is above the maximum of the notional tier the symbol's position "
                                      "and open orders fall in (QueryLeverageTiers)"),
    RejectReason.LEVERAGE_INSUFFICIENT_MARGIN: ("lowering the leverage would need more initial margin for the open "
                                                "position and orders than the account has free"),
    # --- dated futures (issue 16)
    RejectReason.NOT_TRADING: "the dated future is not trading: not listed yet, or expired and settled",
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
    # --- protective orders
    OCO = "oco"  # the other half of an attached take-profit / stop-loss pair triggered
    EXPIRED = "expired"  # dated futures (issue 16): the instrument expired


# --- protective orders
class WorkingType(enum.StrEnum):
    """Which price a conditional order watches (Binance ``workingType``)."""

    MARK_PRICE = "mark_price"  # the mark (the default)
    CONTRACT_PRICE = "contract_price"  # the last trade price in the book


class _Msg(msgspec.Struct, tag_field="msg", tag=True, kw_only=True, omit_defaults=True):
    """Base of every message: tagged by class name in the ``msg`` field.
    A field equal to its default is omitted from the frame (``omit_defaults``):
    a decoder reads an absent field as its default.

    Events the venue's history keeps by the thousand (``OrderAccepted``,
    ``Fill``, ``Trade``, ``FundingRate``) are declared ``gc=False``: they hold
    only scalars (and small structs of scalars), so they can never be in a
    reference cycle, and untracked they cost the garbage collector nothing
    (msgspec's "disabling garbage collection" notes)."""


class _Command(_Msg, forbid_unknown_fields=True):
    """Base of every message a client sends. An unknown field is refused
    (``INVALID_FIELD`` naming it), never dropped: a misspelled ``reduceOnly``
    must not place an order without it. Events sent to clients stay lenient
    so an older client can read a newer venue's events."""


# Field types with their description, for fields that mean the same in many
# messages (a field's own description, where it says more, is written inline).
AccountField = Annotated[AccountId, Meta(description="account id")]
SymbolField = Annotated[Symbol, Meta(description="instrument symbol, e.g. `BTC-PERP`")]
AssetField = Annotated[AssetName, Meta(description="asset name, e.g. `USDT`")]
OrderIdField = Annotated[OrderId | None, Meta(description="the venue's order id (from OrderAccepted)")]
ClientIdField = Annotated[ClientOrderId | None, Meta(
    description="the client's own order id, 1-36 of `.A-Za-z0-9:/_-` (Binance's rule); unique per account "
                "within the idempotency window")]
EvAccount = Annotated[int, Meta(description="account id")]
EvSymbol = Annotated[str, Meta(description="instrument symbol")]
EvOrderId = Annotated[int, Meta(description="the venue's order id")]
EvClientId = Annotated[str | None, Meta(description="the client order id the order was placed with, if any")]
EvSide = Annotated[Side, Meta(description="`buy` or `sell`")]
EvOrderType = Annotated[OrderType, Meta(description="order type")]
EvTif = Annotated[TimeInForce, Meta(description="time in force")]
EvReduceOnly = Annotated[bool, Meta(description="the order only reduces the position")]
EvTs = Annotated[int, Meta(description="venue time (ns since the Unix epoch; beyond 2^53: decode as a 64-bit integer)")]
RiskUsdt = Annotated[float, Meta(description="risk estimate (USDT, float)")]
RatioField = Annotated[float | None, Meta(
    description="margin ratio = equity / maintenance margin (1.0 = at MM; float); null when MM is 0 (no risk)")]
Levels = Annotated[list[tuple[int, int]], Meta(description="[price (ticks), qty (lots)] pairs, best first")]

# ---------------------------------------------------------------- commands


class Deposit(_Command):
    """Admin faucet: credit ``amount`` minor units of ``asset``."""

    account: AccountField
    asset: AssetField
    amount: Annotated[Amount, Meta(description="amount to credit (minor units of `asset`)")]


class Withdraw(_Command):
    """Debit ``amount``; refused if it would leave the account below IM."""

    account: AccountField
    asset: AssetField
    amount: Annotated[Amount, Meta(description="amount to debit (minor units of `asset`)")]


class SetIndexPrice(_Command):
    """Admin: set an asset's USD index price (``PRICE_SCALE`` units)."""

    asset: AssetField
    price: Annotated[Price, Meta(description="index price (1e-8 USD per whole unit of the asset)")]


# --- protective orders
class AttachedOrder(_Command):
    """A take-profit or stop-loss attached to an entry ``NewOrder`` (Bybit's
    ``takeProfit``/``stopLoss`` on an order): placed as a reduce-only
    conditional order of the opposite side when, and as far as, the entry
    fills; the two cancel each other when one triggers."""

    trigger_price: Annotated[Price, Meta(description="price that triggers it (ticks)")]
    price: Annotated[Price | None, Meta(
        description="limit price once triggered (ticks); none: a market order")] = None
    working_type: Annotated[WorkingType, Meta(description="price it triggers on")] = WorkingType.MARK_PRICE


class NewOrder(_Command):
    """Place an order. Answered (in the Reply) by OrderAccepted and then
    whatever it caused (Fill, OrderCancelled for an IOC rest, AccountUpdate),
    or by a single Rejected."""

    account: AccountField
    symbol: SymbolField
    side: Annotated[Side, Meta(description="`buy` or `sell`")]
    qty: Annotated[Qty | None, Meta(description="quantity (lots of the instrument); omitted only with close_position")] = None
    price: Annotated[Price | None, Meta(description="limit price (ticks); required for limit and stop-limit")] = None
    type: Annotated[OrderType, Meta(description="order type")] = OrderType.LIMIT
    tif: Annotated[TimeInForce, Meta(description="time in force")] = TimeInForce.GTC
    reduce_only: Annotated[bool, Meta(description="only ever reduce the position (never open or grow it)")] = False
    stop_price: Annotated[Price | None, Meta(
        description="stop orders: the mark price (ticks) that triggers the order")] = None
    stp: Annotated[StpMode, Meta(description="self-trade prevention mode (the taker's decides)")] = \
        StpMode.EXPIRE_TAKER
    client_order_id: ClientIdField = None
    # --- protective orders (docs/adr/0011-protective-orders.md)
    working_type: Annotated[WorkingType, Meta(
        description="price a conditional order (stop, take-profit, trailing) triggers on: mark or last trade")
    ] = WorkingType.MARK_PRICE
    close_position: Annotated[bool, Meta(
        description="stop_market / take_profit_market only, with no qty: at trigger close the whole position "
                    "(reduce-only)")] = False
    callback_bps: Annotated[int | None, Meta(
        description="trailing_stop_market: retrace from the best price that triggers it (basis points, 10-1000)")
    ] = None
    activation_price: Annotated[Price | None, Meta(
        description="trailing_stop_market: the trailing starts when the price reaches this (ticks); "
                    "default: at once, from the price now")] = None
    take_profit: Annotated[AttachedOrder | None, Meta(
        description="attached take-profit: a reduce-only conditional order placed as the entry fills, "
                    "sized to the filled lots")] = None
    stop_loss: Annotated[AttachedOrder | None, Meta(
        description="attached stop-loss: a reduce-only conditional order placed as the entry fills, "
                    "sized to the filled lots")] = None


class CancelOrder(_Command):
    """Cancel by venue ``order_id`` or by ``client_order_id``."""

    account: AccountField
    order_id: OrderIdField = None
    client_order_id: ClientIdField = None


class AmendOrder(_Command):
    """Change price and/or remaining quantity of a resting order.

    ``qty`` is the new *remaining* quantity. Lowering it keeps time priority;
    a new price or a larger quantity sends the order to the back of its
    level (as on Binance and CME).
    """

    account: AccountField
    order_id: OrderIdField = None
    client_order_id: ClientIdField = None
    qty: Annotated[Qty | None, Meta(description="new remaining quantity (lots); absent = unchanged")] = None
    price: Annotated[Price | None, Meta(description="new limit price (ticks); absent = unchanged")] = None


class CancelAll(_Command):
    """Cancel every open order of the account (of one symbol, if given)."""

    account: AccountField
    symbol: Annotated[Symbol | None, Meta(description="only this instrument's orders; absent = all")] = None


class CancelOnDisconnect(_Command):
    """Admin (the server sends it): cancel every open order of ``account``, as
    ``CancelAll`` does, because a session that logged in with
    ``cancel_on_disconnect`` ended; the cancels carry cause ``disconnect``."""

    account: AccountField


class ShockPrice(_Command):
    """Admin: move an asset's index by ``change_bps`` basis points
    (-3000 = a 30% crash) in one step."""

    asset: AssetField
    change_bps: Annotated[int, Meta(gt=-10_000, le=1_000_000, description="index move (basis points, -3000 = -30%)")]


class PauseSymbol(_Command):
    """Admin: pause (no new orders or amends; cancels still work) or resume."""

    symbol: SymbolField
    paused: Annotated[bool, Meta(description="true = pause, false = resume")] = True


class OpenAccount(_Command):
    """Admin: create an empty account (a deposit also creates one)."""

    account: AccountField


class CloseAccount(_Command):
    """Admin: remove an account. Refused while it holds a position or a
    non-zero balance; its open orders are cancelled."""

    account: AccountField


class SetMarginMode(_Command):
    """Switch the account's margin mode. Refused (MARGIN_MODE_CHANGE_DENIED)
    if the account would not meet initial margin under the new mode, or, to or
    from isolated, while it has open positions or orders (as on Binance)."""

    account: AccountField
    mode: Annotated[MarginMode, Meta(description="the new margin mode")]


class AdjustIsolatedMargin(_Command):
    """Move USDT into (``delta`` > 0) or out of (< 0) an isolated position's
    allocated margin. Never below the position's initial margin."""

    account: AccountField
    symbol: SymbolField
    delta: Annotated[int, Meta(ge=-MAX_AMOUNT, le=MAX_AMOUNT,
                               description="margin to add (> 0) or remove (< 0) (settlement minor units)")]


class SettleFunding(_Command):
    """Admin: settle perpetual funding now (it also settles by itself at each
    funding interval of venue time)."""

    symbol: Annotated[Symbol | None, Meta(description="only this perpetual; absent = all")] = None
    # --- replay: a recorded rate instead of the book's premium
    rate_e8: Annotated[int | None, Meta(
        description="settle at this rate instead of the one from the book's premium, as a replay of recorded "
                    "funding does (1e-8 units; + longs pay shorts; at most +-10,000,000 = 10%)")] = None


class Tick(_Command):
    """Timer: advances venue time only (the server sends it so time-driven
    work such as funding happens while nobody trades)."""


class QueryExplain(_Command):
    """The whole margin breakdown of an account (the teaching view)."""

    account: AccountField


class QueryAccount(_Command):
    """The account's state now: answered by one AccountUpdate."""

    account: AccountField


class QueryOpenOrders(_Command):
    """The account's open orders (resting and untriggered stops): answered by OpenOrders."""

    account: AccountField
    symbol: Annotated[Symbol | None, Meta(description="only this instrument's orders; absent = all")] = None


class QueryBook(_Command):
    """An L2 snapshot of one book (works before login): answered by BookSnapshot."""

    symbol: SymbolField
    depth: Annotated[Annotated[int, Meta(gt=0, le=10_000)] | None, Meta(
        description="levels per side (count); absent = the whole book")] = None


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
HistoryLimit = Annotated[int, Meta(gt=0, le=1000, description="at most this number of rows (1..1000)")]


class QueryTrades(_Command):
    """Recent public trades of a symbol, oldest first (Binance GET /fapi/v1/trades). Reply: ``Trades``."""

    symbol: SymbolField
    limit: HistoryLimit = 500


class QueryCandles(_Command):
    """OHLCV candles of a symbol, oldest first (Binance GET /fapi/v1/klines,
    markPriceKlines, indexPriceKlines). With ``start``, the first ``limit``
    candles opening at or after it; else the last ``limit`` opening at or
    before ``end`` (or now). An interval with no trade (no price) has no
    candle. Reply: ``Candles``."""

    symbol: SymbolField
    interval: Annotated[CandleInterval, Meta(description="candle width")] = CandleInterval.M1
    source: Annotated[PriceSource, Meta(description="trades, mark price or index price")] = PriceSource.LAST
    start: Annotated[Ns | None, Meta(description="earliest candle open time (ns), inclusive")] = None
    end: Annotated[Ns | None, Meta(description="latest candle open time (ns), inclusive")] = None
    limit: Annotated[int, Meta(gt=0, le=1500, description="at most this number of candles (1..1500)")] = 500


class QueryTicker(_Command):
    """Rolling 24-hour statistics (Binance GET /fapi/v1/ticker/24hr). Reply:
    ``Ticker`` for one symbol, ``Tickers`` for all (``symbol`` omitted)."""

    symbol: Annotated[Symbol | None, Meta(description="one symbol; none = every symbol")] = None


class QueryFundingHistory(_Command):
    """Settled funding rates, oldest first (Binance GET /fapi/v1/fundingRate).
    Reply: ``FundingHistory``."""

    symbol: Annotated[Symbol | None, Meta(description="one symbol; none = every symbol")] = None
    start: Annotated[Ns | None, Meta(description="earliest settlement time (ns), inclusive")] = None
    end: Annotated[Ns | None, Meta(description="latest settlement time (ns), inclusive")] = None
    limit: HistoryLimit = 100


class QueryPremiumIndex(_Command):
    """Mark, index, last and predicted funding rate and the next funding time
    (Binance GET /fapi/v1/premiumIndex). Reply: ``PremiumIndex`` for one
    symbol, ``PremiumIndexes`` for all funded ones (``symbol`` omitted)."""

    symbol: Annotated[Symbol | None, Meta(description="one symbol; none = every symbol")] = None


class QueryOrderHistory(_Command):
    """The account's ended orders (filled, cancelled, expired, rejected after
    acceptance), oldest first, by the time they ended (Binance GET
    /fapi/v1/allOrders). Reply: ``OrderHistory``."""

    account: AccountField
    symbol: Annotated[Symbol | None, Meta(description="one symbol; none = every symbol")] = None
    start: Annotated[Ns | None, Meta(description="earliest end time (ns), inclusive")] = None
    end: Annotated[Ns | None, Meta(description="latest end time (ns), inclusive")] = None
    limit: HistoryLimit = 500


class QueryMyTrades(_Command):
    """The account's own fills, oldest first, with fee, realized PnL and
    liquidity (Binance GET /fapi/v1/userTrades). Reply: ``MyTrades``."""

    account: AccountField
    symbol: Annotated[Symbol | None, Meta(description="one symbol; none = every symbol")] = None
    start: Annotated[Ns | None, Meta(description="earliest fill time (ns), inclusive")] = None
    end: Annotated[Ns | None, Meta(description="latest fill time (ns), inclusive")] = None
    limit: HistoryLimit = 500


class QueryOrder(_Command):
    """One order of the account, open or ended, by ``order_id`` or
    ``client_order_id`` (Binance GET /fapi/v1/order). Reply: ``OrderRecord``."""

    account: AccountField
    order_id: Annotated[OrderId | None, Meta(description="the venue's order id (or give client_order_id)")] = None
    client_order_id: Annotated[ClientOrderId | None, Meta(description="the client order id it was placed with")] = None


# --- leverage
LeverageX = Annotated[int, Meta(ge=1, le=1_000, description="leverage, a whole number (1 = 1x, 20 = 20x)")]


class SetLeverage(_Command):
    """Set the account's leverage on one symbol (Binance ``POST
    /fapi/v1/leverage``): its initial-margin rate becomes 1/leverage, never
    below the notional tier's own. Refused above the maximum of the tier the
    position and open orders fall in (``leverage_above_max``), and when a
    lower leverage would need more initial margin than the account has free
    (``leverage_insufficient_margin``). Answered with ``LeverageChanged``."""

    account: AccountField
    symbol: SymbolField
    leverage: LeverageX


class QueryLeverage(_Command):
    """The account's leverage per symbol (every symbol, or one): answered with ``Leverage``."""

    account: AccountField
    symbol: Annotated[Symbol | None, Meta(description="one symbol; none = every symbol")] = None


class QueryLeverageTiers(_Command):
    """The notional tiers of every symbol (or one), with their maximum
    leverage and maintenance rate and amount, like Binance ``GET
    /fapi/v1/leverageBracket``: answered with ``LeverageTiers``. Public."""

    symbol: Annotated[Symbol | None, Meta(description="one symbol; none = every symbol")] = None


class QueryLedger(_Command):
    """Admin: the venue's money ledger per asset (deposits, withdrawals, fees,
    the funding rounding residue, liquidation fees, the insurance fund), so an
    auditor can check conservation from queries alone: answered with ``Ledger``."""
# --- dated futures (issue 16)


class ShockBasis(_Command):
    """Admin: move one dated future's basis (mark − index) by ``change_bps``
    of its index in one step; the basis stays within the family's
    ``basis_bound`` and then moves with the book again (its EMA)."""

    symbol: SymbolField
    change_bps: Annotated[int, Meta(gt=-10_000, lt=10_000,
                                    description="change of the basis, basis points of the index (bps)")]


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
    # --- leverage
    SetLeverage,
    QueryLeverage,
    QueryLeverageTiers,
    QueryLedger,
    ShockBasis,
]

# ------------------------------------------------------------------ events


class Rejected(_Msg):
    """A command was refused; nothing changed (except for reason ``internal``,
    a server fault: the effect is unknown). ``reason`` is machine-readable,
    ``message`` is for the person reading the log."""

    reason: Annotated[RejectReason, Meta(description="why, machine-readable (see Reject reasons)")]
    message: Annotated[str, Meta(description="why, for a person (figures in human units)")]
    command: Annotated[str, Meta(description="the refused command's tag, e.g. `NewOrder`")] = ""
    account: Annotated[int | None, Meta(description="the command's account id, when the venue read one")] = None
    order_id: Annotated[int | None, Meta(description="the venue order id concerned, when there is one")] = None
    client_order_id: Annotated[str | None, Meta(description="the client order id concerned, when there is one")] = None


class OrderAccepted(_Msg, gc=False):
    """A new order was accepted (resting, working or about to fill)."""

    account: EvAccount
    order_id: EvOrderId
    symbol: EvSymbol
    side: EvSide
    type: EvOrderType
    tif: EvTif
    qty: Annotated[int, Meta(description="ordered quantity (lots)")]
    price: Annotated[int | None, Meta(description="limit price (ticks); null for market and stop-market")] = None
    stop_price: Annotated[int | None, Meta(description="trigger mark price of a stop order (ticks)")] = None
    reduce_only: EvReduceOnly = False
    client_order_id: EvClientId = None
    # --- protective orders
    working_type: Annotated[WorkingType, Meta(description="price a conditional order triggers on")] = (
        WorkingType.MARK_PRICE)
    close_position: Annotated[bool, Meta(description="closes the whole position at trigger (qty is 0)")] = False
    callback_bps: Annotated[int | None, Meta(description="trailing stop's callback (basis points)")] = None
    activation_price: Annotated[int | None, Meta(description="trailing stop's activation price (ticks)")] = None
    parent_order_id: Annotated[int | None, Meta(
        description="the order id of the entry an attached take-profit / stop-loss protects")] = None
    take_profit: Annotated[AttachedOrder | None, Meta(description="take-profit attached to this entry")] = None
    stop_loss: Annotated[AttachedOrder | None, Meta(description="stop-loss attached to this entry")] = None
    ts: VenueTime = 0


class OrderTriggered(_Msg):
    """A conditional order's trigger was reached (by the mark, or the last
    trade price for ``working_type`` contract_price); it now works."""

    account: EvAccount
    order_id: EvOrderId
    symbol: EvSymbol
    mark: Annotated[int, Meta(description="the mark price that triggered it (ticks)")]
    client_order_id: EvClientId = None
    # --- protective orders
    price: Annotated[int, Meta(
        description="the price that triggered it (ticks): the mark, or the last trade for contract_price")] = 0
    working_type: Annotated[WorkingType, Meta(description="price it triggered on")] = WorkingType.MARK_PRICE
    ts: VenueTime = 0


class Fill(_Msg, gc=False):
    """One side of one trade, sent privately to the account that traded."""

    account: EvAccount
    order_id: EvOrderId
    symbol: EvSymbol
    side: EvSide
    price: Annotated[int, Meta(description="trade price (ticks)")]
    qty: Annotated[int, Meta(description="filled quantity (lots)")]
    fee: Annotated[int, Meta(description="fee paid, rounded up against the account; negative = rebate "
                                         "(settlement-asset minor units)")]
    liquidity: Annotated[Liquidity, Meta(description="`maker` or `taker`")]
    trade_id: Annotated[int, Meta(description="public trade id (as in Trade)")]
    remaining: Annotated[int, Meta(description="the order's open quantity after this fill (lots)")]
    realized_pnl: Annotated[int, Meta(description="PnL realized by this fill (settlement minor units)")] = 0
    position: Annotated[int, Meta(description="the account's net position after this fill (lots, + long / - short)")] = 0
    client_order_id: EvClientId = None
    liquidation: Annotated[bool, Meta(description="the fill closed part of a liquidated position")] = False
    ts: VenueTime = 0


class OrderCancelled(_Msg):
    """An order left the book without filling completely (also: expired)."""

    account: EvAccount
    order_id: EvOrderId
    symbol: EvSymbol
    remaining: Annotated[int, Meta(description="unfilled quantity that left the book (lots)")]
    cause: Annotated[CancelCause, Meta(description="why it was cancelled (see Cancel causes)")]
    client_order_id: EvClientId = None
    ts: VenueTime = 0


class OrderAmended(_Msg):
    """A resting order's price or quantity changed."""

    account: EvAccount
    order_id: EvOrderId
    symbol: EvSymbol
    price: Annotated[int | None, Meta(description="limit price now (ticks)")]
    qty: Annotated[int, Meta(description="remaining quantity now (lots)")]
    priority_kept: Annotated[bool, Meta(description="true: kept its place in the queue; false: sent to the back")]
    client_order_id: EvClientId = None
    ts: VenueTime = 0


class Trade(_Msg, gc=False):
    """Public trade print."""

    symbol: EvSymbol
    trade_id: Annotated[int, Meta(description="trade id, increasing per venue")]
    price: Annotated[int, Meta(description="trade price (ticks)")]
    qty: Annotated[int, Meta(description="traded quantity (lots)")]
    taker_side: Annotated[Side, Meta(description="the taker's side")]
    liquidation: Annotated[bool, Meta(description="the taker was a liquidation order")] = False
    ts: VenueTime = 0


class BookDelta(_Msg):
    """Changed L2 levels: absolute lots per price, 0 = level removed.

    ``seq`` increases by exactly one per delta of this symbol; a gap means a
    message was lost and the book must be re-synced from a snapshot.
    """

    symbol: EvSymbol
    seq: Annotated[int, Meta(description="delta sequence number of this symbol (count; +1 per delta)")]
    bids: Annotated[list[tuple[int, int]], Meta(description="changed bid levels: [price (ticks), qty (lots)], "
                                                            "qty = new absolute size, 0 = level removed")]
    asks: Annotated[list[tuple[int, int]], Meta(description="changed ask levels: [price (ticks), qty (lots)], "
                                                            "qty = new absolute size, 0 = level removed")]


class BookSnapshot(_Msg):
    """L2 levels best-first and the delta ``seq`` they reflect."""

    symbol: EvSymbol
    seq: Annotated[int, Meta(description="the last BookDelta seq these levels include")]
    bids: Levels
    asks: Levels


class MarkPrice(_Msg):
    """Public: a new mark price of one instrument."""

    symbol: EvSymbol
    mark: Annotated[int, Meta(description="mark price (ticks)")]
    index: Annotated[int, Meta(description="index price of the underlying (1e-8 USD per whole unit)")]


class PositionView(_Msg):
    """One position of an account, in AccountUpdate."""

    symbol: EvSymbol
    qty: Annotated[int, Meta(description="position (lots, + long / - short)")]
    entry_price: Annotated[float, Meta(
        description="average entry price (ticks, a FLOAT: an average of tick prices is fractional; "
                    "human price = entry_price * tick_size)")]
    mark: Annotated[int, Meta(description="mark price (ticks)")]
    notional: Annotated[int, Meta(description="|qty| x mark (settlement minor units, integer)")]
    upnl: Annotated[int, Meta(description="unrealized PnL at mark (settlement minor units, integer)")]
    im: Annotated[float, Meta(description="initial margin of the position (USDT, float risk estimate)")]
    mm: Annotated[float, Meta(description="maintenance margin of the position (USDT, float risk estimate)")]


class AccountUpdate(_Msg):
    """An account's whole state: sent on change and as the query reply.
    Mind the units: ``balances`` are integer minor units, the risk figures
    (``collateral``, ``equity``, ``im``, ``mm``) are USDT floats."""

    account: EvAccount
    balances: Annotated[dict[str, int], Meta(description="asset -> wallet balance (minor units of that asset, integer)")]
    positions: Annotated[list[PositionView], Meta(description="open positions")]
    collateral: Annotated[float, Meta(description="wallet value after haircuts (USDT, float risk estimate)")]
    equity: Annotated[float, Meta(description="collateral + unrealized PnL (USDT, float risk estimate)")]
    im: Annotated[float, Meta(description="initial margin incl. open orders (USDT, float risk estimate)")]
    mm: Annotated[float, Meta(description="maintenance margin (USDT, float risk estimate)")]
    margin_ratio: RatioField
    margin_mode: Annotated[MarginMode, Meta(description="the account's margin mode")] = MarginMode.CROSS
    # --- leverage
    free: Annotated[int, Meta(description=(
        "withdrawable settlement asset now: the largest Withdraw of it the venue accepts "
        "(settlement minor units)"))] = 0
    allocated: Annotated[int, Meta(description=(
        "isolated mode: the settlement asset allocated to positions, outside balances (settlement minor units)"))] = 0


class SymbolStatus(_Msg):
    """Public: an instrument was paused or resumed."""

    symbol: EvSymbol
    paused: Annotated[bool, Meta(description="true = paused (no new orders or amends)")]


class AccountOpened(_Msg):
    """An account was created."""

    account: EvAccount


class AccountClosed(_Msg):
    """An account was removed."""

    account: EvAccount


class MarginCall(_Msg):
    """Private: the account's margin ratio fell below a threshold.

    ``level`` is "warning" (below the warning ratio), "reduce_only" (only
    risk-reducing orders are accepted) or "liquidation" (below 1.0)."""

    account: EvAccount
    level: Annotated[str, Meta(description="`warning`, `reduce_only` or `liquidation`")]
    margin_ratio: Annotated[float, Meta(description="margin ratio now (equity / MM, float)")]
    equity: RiskUsdt
    mm: Annotated[float, Meta(description="maintenance margin (USDT, float risk estimate)")]
    symbol: Annotated[str | None, Meta(description="set for an isolated position")] = None


class LiquidationStarted(_Msg):
    """Private: the account (or, isolated, one position) fell below MM."""

    account: EvAccount
    margin_ratio: Annotated[float, Meta(description="margin ratio when it started (equity / MM, float)")]
    equity: RiskUsdt
    mm: Annotated[float, Meta(description="maintenance margin (USDT, float risk estimate)")]
    symbol: Annotated[str | None, Meta(description="isolated: the position being liquidated")] = None


class LiquidationSlice(_Msg):
    """Private: one slice of a position closed by the liquidation engine.

    ``impact`` is the margin impact it was ranked by (MM with the position −
    MM without it); ``book_qty`` filled in the book at prices no worse than
    ``bankruptcy_price``; ``takeover_qty`` went to the insurance fund or ADL
    there."""

    account: EvAccount
    symbol: EvSymbol
    side: Annotated[Side, Meta(description="the side of the closing order")]
    qty: Annotated[int, Meta(description="quantity closed by this slice (lots)")]
    book_qty: Annotated[int, Meta(description="part filled in the order book (lots)")]
    takeover_qty: Annotated[int, Meta(description="part taken over by the insurance fund or ADL (lots)")]
    bankruptcy_price: Annotated[int, Meta(description="the position's bankruptcy price (ticks)")]
    impact: Annotated[float, Meta(description="MM with the position - MM without it (USDT, float risk estimate)")]
    fee: Annotated[int, Meta(description="liquidation fee (settlement minor units)")]
    margin_ratio_after: RatioField


class InsuranceTakeover(_Msg):
    """The insurance fund took over what the book could not absorb."""

    account: EvAccount
    fund: Annotated[int, Meta(description="the insurance fund's account id")]
    symbol: EvSymbol
    side: Annotated[Side, Meta(description="the liquidated account's side (the fund takes the other)")]
    qty: Annotated[int, Meta(description="quantity taken over (lots)")]
    price: Annotated[int, Meta(description="the position's bankruptcy price (ticks)")]


class AutoDeleverage(_Msg):
    """A profitable opposite position was closed against a bankrupt one at
    the bankrupt account's bankruptcy price. ``rank`` = PnL% × effective
    leverage (BitMEX/Binance): highest goes first."""

    account: Annotated[int, Meta(description="the bankrupt account's id")]
    counterparty: Annotated[int, Meta(description="the deleveraged (profitable) account's id")]
    symbol: EvSymbol
    qty: Annotated[int, Meta(description="quantity closed on each side (lots)")]
    price: Annotated[int, Meta(description="the bankruptcy price it closed at (ticks)")]
    rank: Annotated[float, Meta(description="the counterparty's ADL rank: PnL fraction x effective leverage (float)")]


class CollateralConversion(_Msg):
    """Collateral sold to the insurance fund at index minus a penalty to repay
    a negative settlement balance."""

    account: EvAccount
    asset: Annotated[str, Meta(description="the collateral asset sold")]
    amount: Annotated[int, Meta(description="quantity sold (minor units of `asset`)")]
    proceeds: Annotated[int, Meta(description="received (settlement minor units)")]
    price: Annotated[float, Meta(
        description="USD per WHOLE unit of `asset` after the penalty (a float human price, not ticks nor 1e-8 units)")]


class BankruptcyCovered(_Msg):
    """The insurance fund paid the deficit left after everything was closed."""

    account: EvAccount
    amount: Annotated[int, Meta(description="deficit paid by the fund (settlement minor units)")]


class LiquidationFinished(_Msg):
    """Private: the liquidation of the account (or isolated position) ended."""

    account: EvAccount
    margin_ratio: RatioField
    equity: RiskUsdt
    mm: Annotated[float, Meta(description="maintenance margin (USDT, float risk estimate)")]
    symbol: Annotated[str | None, Meta(description="isolated: the liquidated position")] = None


class CascadeBoundHit(_Msg):
    """The cascade stopped at ``liquidation.max_rounds`` with accounts still
    below maintenance margin; they are processed on the next command."""

    rounds: Annotated[int, Meta(description="liquidation rounds run (count)")]
    pending: Annotated[list[int], Meta(description="account ids still below MM")]


class LiquidationNotice(_Msg):
    """Public: a liquidation order traded (Binance's forceOrder stream)."""

    symbol: EvSymbol
    side: Annotated[Side, Meta(description="the liquidation order's side")]
    qty: Annotated[int, Meta(description="quantity traded (lots)")]
    price: Annotated[int, Meta(description="price (ticks)")]


class MarginModeChanged(_Msg):
    """The account's margin mode changed."""

    account: EvAccount
    mode: Annotated[MarginMode, Meta(description="the new margin mode")]


class IsolatedMarginChanged(_Msg):
    """Margin was moved into or out of an isolated position."""

    account: EvAccount
    symbol: EvSymbol
    delta: Annotated[int, Meta(description="added (> 0) or removed (< 0) (settlement minor units)")]
    allocated: Annotated[int, Meta(description="now allocated to the position (settlement minor units)")]


class FundingRate(_Msg, gc=False):
    """Public: the funding rate applied at this settlement (1e-8 units)."""

    symbol: EvSymbol
    rate_e8: Annotated[int, Meta(description="funding rate (1e-8 units: 10_000 = 0.01%); + longs pay shorts")]
    mark: Annotated[int, Meta(description="mark price at settlement (ticks)")]
    premium: Annotated[float, Meta(description="premium index (a fraction of mark, float)")]
    ts: VenueTime = 0


class FundingPayment(_Msg):
    """Private: funding paid (amount < 0) or received (> 0)."""

    account: EvAccount
    symbol: EvSymbol
    position: Annotated[int, Meta(description="the position funded (lots, + long / - short)")]
    rate_e8: Annotated[int, Meta(description="funding rate applied (1e-8 units)")]
    amount: Annotated[int, Meta(description="received (> 0) or paid (< 0) (settlement minor units)")]
    ts: VenueTime = 0


class HaircutSlice(_Msg):
    """One bracket of a collateral haircut (Explain)."""

    up_to: Annotated[float | None, Meta(description="bracket upper bound (USD, float); null = unbounded")]
    rate: Annotated[float, Meta(description="haircut rate in the bracket (fraction, float)")]
    value_in_bracket: Annotated[float, Meta(description="value inside the bracket (USD, float)")]
    haircut: Annotated[float, Meta(description="taken off in the bracket (USD, float)")]


class ExplainAsset(_Msg):
    """One collateral asset of an account (Explain)."""

    asset: Annotated[str, Meta(description="asset name")]
    balance: Annotated[int, Meta(description="wallet balance (minor units of the asset)")]
    index_price: Annotated[float, Meta(description="index price (USD per whole unit, float)")]
    value: Annotated[float, Meta(description="value before haircut (USD, float)")]
    haircut: Annotated[float, Meta(description="taken off (USD, float)")]
    counted: Annotated[float, Meta(description="counted as collateral (USD, float)")]
    brackets: Annotated[list[HaircutSlice], Meta(description="the haircut brackets")]


class ExplainPosition(_Msg):
    """One position of an account (Explain)."""

    symbol: EvSymbol
    underlying: Annotated[str, Meta(description="underlying asset")]
    qty: Annotated[int, Meta(description="position (lots, + long / - short)")]
    entry_price: Annotated[float, Meta(description="average entry price (ticks, float)")]
    mark: Annotated[int, Meta(description="mark price (ticks)")]
    notional: Annotated[float, Meta(description="signed notional at mark (USD, float)")]
    upnl: Annotated[float, Meta(description="unrealized PnL (USD, float)")]
    cross_im: Annotated[float, Meta(description="initial margin under cross rules (USD, float)")]
    cross_mm: Annotated[float, Meta(description="maintenance margin under cross rules (USD, float)")]
    impact: Annotated[float, Meta(description="MM(portfolio) - MM(portfolio without it), account's mode (USD, float)")]
    isolated_margin: Annotated[float, Meta(description="allocated in isolated mode (USD, float)")] = 0.0
    # --- leverage
    leverage: Annotated[int | None, Meta(description=(
        "the leverage set on the symbol (number: 20 = 20x); none = never set, IM from the notional tiers"))] = None
    im: Annotated[float, Meta(description="the position's IM alone at its leverage, in the account's mode (USD)")] = 0.0


class ExplainScenario(_Msg):
    """One stress scenario of the portfolio margin (Explain)."""

    name: Annotated[str, Meta(description="scenario name, e.g. `BTC +`, `market -`")]
    moves: Annotated[dict[str, float], Meta(description="underlying -> relative price move (fraction, float)")]
    loss: Annotated[float, Meta(description="loss under the scenario, + = loss (USD, float)")]
    worst: Annotated[bool, Meta(description="the worst scenario (it sets the requirement)")] = False


class ModeRequirement(_Msg):
    """What the same holdings need under one margin mode."""

    mode: Annotated[MarginMode, Meta(description="the margin mode compared")]
    im: Annotated[float, Meta(description="initial margin (USD, float)")]
    mm: Annotated[float, Meta(description="maintenance margin (USD, float)")]
    usable_collateral: Annotated[float, Meta(description="collateral that may back it under this mode (USD, float)")]
    free: Annotated[float, Meta(description="usable collateral + uPnL - IM: idle capital for new trades (USD, float)")]
    margin_ratio: RatioField


class Explain(_Msg):
    """The whole margin breakdown of an account (answer to QueryExplain)."""

    account: EvAccount
    mode: Annotated[MarginMode, Meta(description="the account's margin mode")]
    assets: Annotated[list[ExplainAsset], Meta(description="collateral assets")]
    positions: Annotated[list[ExplainPosition], Meta(description="positions")]
    scenarios: Annotated[list[ExplainScenario], Meta(description="portfolio-margin scenarios")]
    collateral: Annotated[float, Meta(description="collateral after haircuts (USD, float)")]
    upnl: Annotated[float, Meta(description="unrealized PnL (USD, float)")]
    equity: Annotated[float, Meta(description="collateral + uPnL (USD, float)")]
    im: Annotated[float, Meta(description="initial margin (USD, float)")]
    mm: Annotated[float, Meta(description="maintenance margin (USD, float)")]
    margin_ratio: RatioField
    floor: Annotated[float, Meta(description="portfolio floor = floor rate x gross notional (USD, float)")]
    compare: Annotated[list[ModeRequirement], Meta(description="the same holdings under each margin mode")]
    profile: Annotated[str, Meta(description="the risk profile name")] = "default"
    # --- dated futures (issue 16)
    basis_charges: Annotated[dict[str, float], Meta(
        description="portfolio basis / calendar charge per underlying held on a perpetual and futures "
                    "(or two expiries), added to the scenario MM (USD)")] = {}


class BalanceChanged(_Msg):
    """Private: a wallet balance changed (deposit, withdraw, funding, ...)."""

    account: EvAccount
    asset: Annotated[str, Meta(description="asset name")]
    delta: Annotated[int, Meta(description="change (minor units of `asset`)")]
    balance: Annotated[int, Meta(description="balance after the change (minor units of `asset`)")]
    reason: Annotated[str, Meta(description="`deposit`, `withdraw`, `funding`, ...")]


class OrderView(_Msg):
    """One open order (OpenOrders)."""

    order_id: EvOrderId
    symbol: EvSymbol
    side: EvSide
    type: EvOrderType
    tif: EvTif
    qty: Annotated[int, Meta(description="remaining open quantity (lots)")]
    filled: Annotated[int, Meta(description="quantity filled so far (lots)")]
    price: Annotated[int | None, Meta(description="limit price (ticks); null for stop-market")] = None
    stop_price: Annotated[int | None, Meta(description="untriggered stop: its trigger mark price (ticks)")] = None
    reduce_only: EvReduceOnly = False
    client_order_id: EvClientId = None
    # --- protective orders
    working_type: Annotated[WorkingType, Meta(description="price a conditional order triggers on")] = (
        WorkingType.MARK_PRICE)
    close_position: Annotated[bool, Meta(description="closes the whole position at trigger")] = False
    callback_bps: Annotated[int | None, Meta(description="trailing stop's callback (basis points)")] = None
    activation_price: Annotated[int | None, Meta(description="trailing stop's activation price (ticks)")] = None
    trail_best: Annotated[int | None, Meta(
        description="active trailing stop: the best price since activation (ticks); none: not active yet")] = None
    parent_order_id: Annotated[int | None, Meta(
        description="the order id of the entry an attached take-profit / stop-loss protects")] = None


class OpenOrders(_Msg):
    """Answer to QueryOpenOrders."""

    account: EvAccount
    orders: Annotated[list[OrderView], Meta(description="open orders")]


class InstrumentInfo(_Msg):
    """One instrument's metadata: what converts ticks and lots to human units."""

    symbol: EvSymbol
    underlying: Annotated[str, Meta(description="underlying asset, e.g. `BTC`")]
    settlement: Annotated[str, Meta(description="settlement asset, e.g. `USDT`")]
    tick_size: Annotated[str, Meta(description="price of one tick (decimal string, quote currency)")]
    lot_size: Annotated[str, Meta(description="size of one lot (decimal string, underlying units)")]
    min_notional: Annotated[str, Meta(description="minimum price x qty of an order (decimal string, quote currency)")]
    max_qty: Annotated[int, Meta(description="largest order quantity (lots)")]
    maker_fee: Annotated[str, Meta(description="maker fee rate (decimal string fraction, e.g. `0.0002`)")]
    taker_fee: Annotated[str, Meta(description="taker fee rate (decimal string fraction)")]
    # --- dated futures (issue 16)
    kind: Annotated[str, Meta(description="contract kind: 'perpetual' or 'future' (dated, cash-settled)")] = "perpetual"
    expiry: Annotated[int | None, Meta(description="a dated future's expiry, venue time (ns since the epoch, UTC)")] = None
    state: Annotated[str, Meta(description="'trading', 'pending' (not listed yet) or 'settled' (expired)")] = "trading"
    settlement_price: Annotated[int | None, Meta(
        description="a settled future's settlement price (PRICE_SCALE units: 1e-8 USD)")] = None


class AssetInfo(_Msg):
    """One asset's metadata."""

    name: Annotated[str, Meta(description="asset name")]
    decimals: Annotated[int, Meta(description="minor-unit decimals: 1 whole unit = 10^decimals minor units")]
    index_price: Annotated[int | None, Meta(description="index price (1e-8 USD per whole unit); null = none yet")]


class Instruments(_Msg):
    """Answer to QueryInstruments."""

    protocol_version: Annotated[int, Meta(description="the server's protocol version number (PROTOCOL_VERSION)")]
    instruments: Annotated[list[InstrumentInfo], Meta(description="every instrument")]
    assets: Annotated[list[AssetInfo], Meta(description="every asset")]


# --- leverage
class LeverageChanged(_Msg):
    """An account's leverage on a symbol was set (the answer to ``SetLeverage``)."""

    account: EvAccount
    symbol: EvSymbol
    leverage: Annotated[int, Meta(description="the symbol's leverage now (number: 20 = 20x)")]
    max_leverage: Annotated[int, Meta(description="the most the current notional's tier allows (number: 20 = 20x)")] = 0


class LeverageTier(_Msg):
    """One notional bracket of a symbol (Binance ``leverageBracket`` row);
    inside it ``MM = notional x mm_rate - mm_amount``."""

    bracket: Annotated[int, Meta(description="bracket number, 1 = the smallest notionals")]
    notional_floor: Annotated[float, Meta(description="notional from (USD)")]
    notional_cap: Annotated[float | None, Meta(description="notional up to (USD); none = unbounded")]
    max_leverage: Annotated[int, Meta(description="the highest leverage in this bracket: floor(1 / im_rate) (number: 20 = 20x)")]
    im_rate: Annotated[float, Meta(description="initial-margin rate of the bracket (fraction)")]
    mm_rate: Annotated[float, Meta(description="maintenance rate of the bracket (fraction)")]
    mm_amount: Annotated[float, Meta(description="maintenance amount, Binance's cum (USD)")]


class SymbolLeverageTiers(_Msg):
    """One symbol's notional tiers."""

    symbol: EvSymbol
    tiers: Annotated[list[LeverageTier], Meta(description="the brackets, smallest notional first")]


class LeverageTiers(_Msg):
    """The answer to ``QueryLeverageTiers``."""

    symbols: Annotated[list[SymbolLeverageTiers], Meta(description="one entry per symbol asked for")]


class SymbolLeverage(_Msg):
    """One symbol's leverage for an account."""

    symbol: EvSymbol
    leverage: Annotated[int, Meta(description="the leverage in use (number: 20 = 20x); the first tier's maximum when never set")]
    set: Annotated[bool, Meta(description="false: never set, the IM is the notional tiers' alone")] = False
    max_leverage: Annotated[int, Meta(description="the most the tier of the current notional allows (number: 20 = 20x)")] = 0
    notional: Annotated[float, Meta(description="position and open orders, worse side, at mark (USD)")] = 0.0
    tiers: Annotated[list[LeverageTier], Meta(description="the brackets, smallest notional first")] = []


class Leverage(_Msg):
    """The answer to ``QueryLeverage``: per symbol, the leverage, the maximum
    the current notional allows and the tier brackets."""

    account: EvAccount
    symbols: Annotated[list[SymbolLeverage], Meta(description="one entry per symbol asked for")]


class LedgerAsset(_Msg):
    """One asset's line of the venue ledger. Conservation, exactly:
    Σ accounts (balances + isolated allocations + uPnL) + fees_collected
    = deposits - withdrawals, the insurance fund being one of the accounts."""

    asset: Annotated[str, Meta(description="asset name, e.g. `USDT`")]
    deposits: Annotated[int, Meta(description="every deposit ever, the insurance seed included (minor units)")] = 0
    withdrawals: Annotated[int, Meta(description="every withdrawal ever (minor units)")] = 0
    fees_collected: Annotated[int, Meta(description=(
        "the venue's take: trading fees plus the funding rounding residue (minor units)"))] = 0
    funding_residue: Annotated[int, Meta(description=(
        "of fees_collected, what funding rounding left over (minor units)"))] = 0
    liquidation_fees: Annotated[int, Meta(description="paid to the insurance fund by liquidations (minor units)")] = 0
    insurance_fund: Annotated[int, Meta(description="the insurance fund account's balance (minor units)")] = 0


class Ledger(_Msg):
    """The answer to the admin's ``QueryLedger``."""

    insurance_account: Annotated[int, Meta(description="the insurance fund's account id")]
    assets: Annotated[list[LedgerAsset], Meta(description="one line per asset")]


# --- dated futures (issue 16)


class FutureListed(_Msg):
    """A dated future of the rolling calendar starts trading (the one before
    it in its family settled)."""

    symbol: Annotated[str, Meta(description="the future's symbol, e.g. BTC-26MAR27")]
    expiry: Annotated[int, Meta(description="expiry, venue time (ns since the epoch, UTC)")]


class FutureSettled(_Msg):
    """A dated future expired: trading stopped, its open orders were
    cancelled (cause ``expired``), every position was closed in cash at
    ``price`` (each account's ``BalanceChanged`` with reason
    ``settlement``); the instrument is ``settled`` and stays queryable."""

    symbol: Annotated[str, Meta(description="the future's symbol")]
    expiry: Annotated[int, Meta(description="expiry, venue time (ns since the epoch, UTC)")]
    price: Annotated[int, Meta(description="settlement price: the index's 30-minute TWAP before expiry "
                                            "(PRICE_SCALE units: 1e-8 USD)")]
    positions: Annotated[int, Meta(description="accounts whose position was settled (count)")] = 0
    rounding: Annotated[int, Meta(description="what rounding each payout down left over, booked to the fee "
                                               "ledger (settlement minor units)")] = 0
# --- history (issue 14): the replies to the history queries


class Trades(_Msg):
    """Reply to ``QueryTrades``: public trades, oldest first."""

    symbol: EvSymbol
    trades: Annotated[list[Trade], Meta(description="the trades, oldest first")]


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

    symbol: EvSymbol
    interval: Annotated[CandleInterval, Meta(description="candle width")]
    source: Annotated[PriceSource, Meta(description="trades, mark or index")]
    candles: Annotated[list[Candle], Meta(description="the candles, oldest first")]


class Ticker(_Msg):
    """Rolling 24-hour statistics of one symbol (Binance ticker/24hr),
    from the 1-minute candles of the window: ``open`` is the first trade
    price of the oldest minute in it. Price fields are 0 when nothing traded
    in the window (``last`` then keeps the last trade ever, if any)."""

    symbol: EvSymbol
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
    index: Annotated[int, Meta(description="index price of the underlying now (1e-8 USD: PRICE_SCALE units)")] = 0
    best_bid: Annotated[int | None, Meta(description="best bid (ticks); None if the side is empty")] = None
    best_bid_qty: Annotated[int, Meta(description="lots at the best bid")] = 0
    best_ask: Annotated[int | None, Meta(description="best ask (ticks); None if the side is empty")] = None
    best_ask_qty: Annotated[int, Meta(description="lots at the best ask")] = 0


class Tickers(_Msg):
    """Reply to ``QueryTicker`` without a symbol: every instrument's ticker."""

    tickers: Annotated[list[Ticker], Meta(description="one per instrument")]


class FundingHistory(_Msg):
    """Reply to ``QueryFundingHistory``: settled rates, oldest first."""

    rates: Annotated[list[FundingRate], Meta(description="settled rates, oldest first")]


class PremiumIndex(_Msg):
    """Mark, index and funding of one perpetual (Binance premiumIndex)."""

    symbol: EvSymbol
    mark: Annotated[int, Meta(description="mark price (ticks)")]
    index: Annotated[int, Meta(description="index price of the underlying (1e-8 USD: PRICE_SCALE units)")]
    last_funding_rate_e8: Annotated[int, Meta(description="rate of the last settlement (1e-8 units); 0 before the first")] = 0
    predicted_funding_rate_e8: Annotated[int, Meta(description="rate the next settlement would apply at the book and mark now (1e-8 units)")] = 0
    next_funding_time: Annotated[int | None, Meta(description="venue time of the next settlement (ns); None before the first timed command")] = None
    interest_rate_e8: Annotated[int, Meta(description="the interest rate per interval (1e-8 units)")] = 0
    interval_ns: Annotated[int, Meta(description="time between two settlements (ns)")] = 0
    ts: Annotated[int, Meta(description="venue time now (ns)")] = 0


class PremiumIndexes(_Msg):
    """Reply to ``QueryPremiumIndex`` without a symbol: every funded perpetual."""

    items: Annotated[list[PremiumIndex], Meta(description="one per funded perpetual")]


class OrderRecord(_Msg):
    """An order with its final (or, open, current) state (Binance order)."""

    account: EvAccount
    order_id: EvOrderId
    symbol: EvSymbol
    side: EvSide
    type: EvOrderType
    tif: EvTif
    status: Annotated[OrderStatus, Meta(description="open (new, partially_filled) or how it ended")]
    qty: Annotated[int, Meta(description="ordered quantity (lots), after amends")]
    filled: Annotated[int, Meta(description="filled quantity (lots)")] = 0
    filled_quote: Annotated[int, Meta(description="sum of fill price x lots (ticks x lots): avg price = filled_quote / filled")] = 0
    avg_price: Annotated[float, Meta(description="average fill price (fractional ticks); 0 if nothing filled")] = 0.0
    price: Annotated[int | None, Meta(description="limit price (ticks)")] = None
    stop_price: Annotated[int | None, Meta(description="stop price (ticks)")] = None
    reduce_only: EvReduceOnly = False
    client_order_id: EvClientId = None
    cause: Annotated[CancelCause | None, Meta(description="why it was cancelled or expired")] = None
    reject_reason: Annotated[str | None, Meta(description="why it was rejected after acceptance (readable)")] = None
    triggered: Annotated[bool, Meta(description="a stop whose stop price was crossed")] = False
    time: Annotated[int, Meta(description="venue time it was accepted (ns)")] = 0
    update_time: Annotated[int, Meta(description="venue time of its last change: the end for an ended order (ns)")] = 0


class OrderHistory(_Msg):
    """Reply to ``QueryOrderHistory``: ended orders, oldest end first."""

    account: EvAccount
    orders: Annotated[list[OrderRecord], Meta(description="ended orders, oldest end first")]


class MyTrades(_Msg):
    """Reply to ``QueryMyTrades``: the account's fills, oldest first."""

    account: EvAccount
    trades: Annotated[list[Fill], Meta(description="the account's fills, oldest first")]


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
    # --- leverage
    LeverageChanged,
    LeverageTiers,
    Leverage,
    Ledger,
    FutureListed,
    FutureSettled,
]
