"""What the blocking and the asyncio facades share: configuration, markets,
symbols, precision, CCXT structures, the local order/trade cache, and every
unified method written once, without I/O.

Each method is written as a generator (the "sans-I/O" style): it yields a
:class:`Req` (protocol commands to send, pipelined) or :data:`DRAIN` (take
the private events the server pushed), and receives the answers. The
blocking class drives it with :class:`clients.Client`, the asyncio class
with :class:`clients.AsyncClient`, so both behave the same by construction
(the idea of :mod:`clients._core`, one level up).

Units: the wire speaks integers (ticks, lots, minor units), the clients
``Decimal``; CCXT speaks floats, so values become floats only when a CCXT
structure is built, from exact Decimals.

**The params rule (every method that takes ``params``).** A key of
``params`` is either read by the method or refused: never dropped. A method
declares the keys it reads with :func:`params_read`::

    @params_read("clientOrderId", "postOnly")       # the keys this method reads
    def _g_cancel_order(self, id, symbol=None, params=None): ...

(it works on the ``_g_`` generators, on plain methods and on coroutines:
``watch_*``). When the method is called, before anything is sent, a key it
does not declare raises: ``NotSupported`` with the reason if the key is in
:data:`UNSUPPORTED_PARAMS` (a ccxt param the venue cannot honour yet),
``BadRequest`` naming the key and the keys the method reads otherwise
(``reduce_only`` is not ``reduceOnly``); a non-dict ``params`` is
``BadRequest``. A method that supports a new param adds it to its
``params_read(...)`` (and removes it from :data:`UNSUPPORTED_PARAMS` once no
method refuses it for that reason); a method that only forwards ``params``
to another one (the ``create_*_order`` conveniences) needs no declaration:
the method it calls checks them. ``refuse_unknown_params`` is the same
check for code that cannot use the decorator. The declared keys are
introspectable: ``fn.params_read``. A test walks every public method with
``params`` and checks that an unknown key raises
(tests/integration/test_ccxt_base.py).

**``has``** lists every key of ccxt's base ``Exchange.has`` (the test
compares with the installed ccxt) and is true: ``True`` only for what works
against the venue (the test calls each), ``"emulated"`` for what the facade
computes itself, ``False`` for the rest. A method added here flips its key.
"""

from __future__ import annotations

import functools
import inspect
import os
import re
import time
from collections import OrderedDict, deque
from dataclasses import dataclass
from datetime import datetime, timezone
from decimal import ROUND_DOWN, ROUND_HALF_UP, Decimal, InvalidOperation

import msgspec
import zmq

from clients import models
from clients._core import DEFAULT_MARKET_DATA, DEFAULT_ORDERS, Core, raise_for
from clients.ccxt import errors as E
from clients.ccxt import helpers
from clients.errors import ExchangeError as ClientError
from protocol import messages as m
from protocol.session import decode_market


# ccxt's unified params this venue cannot honour, with why: a bot that sends
# one must hear so, never believe its stop-loss is in place when it is not.
UNSUPPORTED_PARAMS = {
    "trailingAmount": "trailing stops take a callback rate: use trailingPercent (0.1-10, as on Binance)",
    "triggerDirection": "the direction is implied: triggerPrice / stopLossPrice orders trigger when the price "
                        "moves against the order side, takeProfitPrice orders when it moves in its favour",
    "marginMode": "the margin mode is per account: call set_margin_mode",
    "leverage": "the leverage is per account and symbol: call set_leverage",
    "hedged": "one net position per instrument (one-way mode)",
    "positionSide": "one net position per instrument (one-way mode)",
}


# --- protective orders (docs/adr/0011-protective-orders.md)
#: the createOrder params the protective orders read (all consumed by protective_params)
PROTECTIVE_PARAMS = ("triggerPrice", "stopPrice", "stopLossPrice", "takeProfitPrice", "stopLoss", "takeProfit",
                     "trailingPercent", "trailingTriggerPrice", "workingType", "triggerType", "closePosition")


def camel(name: str) -> str:
    """``fetch_open_orders`` -> ``fetchOpenOrders`` (ccxt's spelling in messages)."""
    head, *rest = name.split("_")
    return head + "".join(w.title() for w in rest)


def refuse_unknown_params(exchange_id: str, method: str, params, known=()) -> None:
    """Raise unless every key of ``params`` is one ``method`` reads: a
    known-unsupported ccxt param is ``NotSupported`` with the reason, any
    other key ``BadRequest`` naming it and the keys the method does read."""
    if not params:
        return
    if not isinstance(params, dict):
        raise E.BadRequest(f"{exchange_id} {camel(method)}() params must be a dict, not {type(params).__name__}")
    for key in params:
        if key in known:
            continue
        why = UNSUPPORTED_PARAMS.get(key)
        if why is not None:
            raise E.NotSupported(f"{exchange_id} {camel(method)}() params['{key}'] is not supported: {why}")
        reads = ", ".join(known) if known else "no params"
        raise E.BadRequest(f"{exchange_id} {camel(method)}() unknown params['{key}']: it is refused, not ignored "
                           f"({camel(method)} reads {reads})")


def params_read(*known: str):
    """Declare the ``params`` keys a method reads (see the module docstring):
    any other key raises when the method is called, before any I/O. For
    generator and plain methods the check runs at the call; for coroutines
    when awaited."""
    def deco(fn):
        names = list(inspect.signature(fn).parameters)
        at = names.index("params")
        method = fn.__name__.removeprefix("_g_")

        def check(args, kwargs):
            params = kwargs["params"] if "params" in kwargs else (args[at] if len(args) > at else None)
            refuse_unknown_params(args[0].id, method, params, known)

        if inspect.iscoroutinefunction(fn):
            @functools.wraps(fn)
            async def checked(*args, **kwargs):
                check(args, kwargs)
                return await fn(*args, **kwargs)
        else:
            @functools.wraps(fn)
            def checked(*args, **kwargs):
                check(args, kwargs)
                return fn(*args, **kwargs)
        checked.params_read = known
        return checked
    return deco


# CCXT's precision constants (ccxt/base/decimal_to_precision.py)
TRUNCATE, ROUND = 0, 1
DECIMAL_PLACES, SIGNIFICANT_DIGITS, TICK_SIZE = 2, 3, 4
NO_PADDING, PAD_WITH_ZERO = 5, 6

MAX_CACHED_ORDERS = 10_000
MAX_CACHED_TRADES = 10_000

_VENUE_MODES = ("cross", "isolated", "portfolio")
_TIF_IN = {"GTC": "gtc", "IOC": "ioc", "FOK": "fok", "PO": "post_only", "GTX": "post_only"}
_TIF_OUT = {"gtc": "GTC", "ioc": "IOC", "fok": "FOK", "post_only": "PO"}


#: every key of ccxt 4's base ``Exchange.has`` (ccxt 4.5.90; the tests compare
#: with the installed package): the facade's ``has`` starts from all False and
#: sets what works
CCXT_HAS_KEYS = (
    'CORS', 'addMargin', 'borrowCrossMargin', 'borrowIsolatedMargin', 'borrowMargin', 'cancelAllOrders',
    'cancelAllOrdersWs', 'cancelOrder', 'cancelOrderWithClientOrderId', 'cancelOrderWs', 'cancelOrders',
    'cancelOrdersWithClientOrderId', 'cancelOrdersWs', 'closeAllPositions', 'closePosition', 'createDepositAddress',
    'createLimitBuyOrder', 'createLimitBuyOrderWs', 'createLimitOrder', 'createLimitOrderWs',
    'createLimitSellOrder', 'createLimitSellOrderWs', 'createMarketBuyOrder', 'createMarketBuyOrderWithCost',
    'createMarketBuyOrderWithCostWs', 'createMarketBuyOrderWs', 'createMarketOrder', 'createMarketOrderWithCost',
    'createMarketOrderWithCostWs', 'createMarketOrderWs', 'createMarketSellOrder', 'createMarketSellOrderWithCost',
    'createMarketSellOrderWithCostWs', 'createMarketSellOrderWs', 'createOrder',
    'createOrderWithTakeProfitAndStopLoss', 'createOrderWithTakeProfitAndStopLossWs', 'createOrderWs',
    'createOrders', 'createPostOnlyOrder', 'createPostOnlyOrderWs', 'createReduceOnlyOrder',
    'createReduceOnlyOrderWs', 'createStopLimitOrder', 'createStopLimitOrderWs', 'createStopLossOrder',
    'createStopLossOrderWs', 'createStopMarketOrder', 'createStopMarketOrderWs', 'createStopOrder',
    'createStopOrderWs', 'createTakeProfitOrder', 'createTakeProfitOrderWs', 'createTrailingAmountOrder',
    'createTrailingAmountOrderWs', 'createTrailingPercentOrder', 'createTrailingPercentOrderWs',
    'createTriggerOrder', 'createTriggerOrderWs', 'deposit', 'editOrder', 'editOrderWithClientOrderId',
    'editOrderWs', 'editOrders', 'fetchADLRank', 'fetchAccounts', 'fetchBalance', 'fetchBalanceWs', 'fetchBidsAsks',
    'fetchBorrowInterest', 'fetchBorrowRate', 'fetchBorrowRateHistories', 'fetchBorrowRateHistory',
    'fetchBorrowRates', 'fetchBorrowRatesPerSymbol', 'fetchCanceledAndClosedOrders', 'fetchCanceledOrders',
    'fetchClosedOrder', 'fetchClosedOrders', 'fetchClosedOrdersWs', 'fetchConvertCurrencies', 'fetchConvertQuote',
    'fetchConvertTrade', 'fetchConvertTradeHistory', 'fetchCrossBorrowRate', 'fetchCrossBorrowRates',
    'fetchCurrencies', 'fetchCurrenciesWs', 'fetchDeposit', 'fetchDepositAddress', 'fetchDepositAddresses',
    'fetchDepositAddressesByNetwork', 'fetchDepositWithdrawFee', 'fetchDepositWithdrawFees', 'fetchDeposits',
    'fetchDepositsWithdrawals', 'fetchDepositsWs', 'fetchFundingHistory', 'fetchFundingInterval',
    'fetchFundingIntervals', 'fetchFundingRate', 'fetchFundingRateHistory', 'fetchFundingRates', 'fetchGreeks',
    'fetchIndexOHLCV', 'fetchIsolatedBorrowRate', 'fetchIsolatedBorrowRates', 'fetchIsolatedPositions',
    'fetchL2OrderBook', 'fetchL3OrderBook', 'fetchLastPrices', 'fetchLedger', 'fetchLedgerEntry', 'fetchLeverage',
    'fetchLeverageTiers', 'fetchLeverages', 'fetchLiquidations', 'fetchLongShortRatio',
    'fetchLongShortRatioHistory', 'fetchMarginAdjustmentHistory', 'fetchMarginMode', 'fetchMarginModes',
    'fetchMarkOHLCV', 'fetchMarkPrices', 'fetchMarketLeverageTiers', 'fetchMarkets', 'fetchMarketsWs',
    'fetchMyLiquidations', 'fetchMySettlementHistory', 'fetchMyTrades', 'fetchMyTradesWs', 'fetchOHLCV',
    'fetchOHLCVWs', 'fetchOpenInterest', 'fetchOpenInterestHistory', 'fetchOpenInterests', 'fetchOpenOrder',
    'fetchOpenOrders', 'fetchOpenOrdersWs', 'fetchOption', 'fetchOptionChain', 'fetchOrder', 'fetchOrderBook',
    'fetchOrderBookWs', 'fetchOrderBooks', 'fetchOrderTrades', 'fetchOrderWithClientOrderId', 'fetchOrderWs',
    'fetchOrders', 'fetchOrdersByStatus', 'fetchOrdersWs', 'fetchPosition', 'fetchPositionADLRank',
    'fetchPositionHistory', 'fetchPositionMode', 'fetchPositionWs', 'fetchPositions', 'fetchPositionsADLRank',
    'fetchPositionsForSymbol', 'fetchPositionsForSymbolWs', 'fetchPositionsHistory', 'fetchPositionsRisk',
    'fetchPositionsWs', 'fetchPremiumIndexOHLCV', 'fetchSettlementHistory', 'fetchStatus', 'fetchTicker',
    'fetchTickerWs', 'fetchTickers', 'fetchTickersWs', 'fetchTime', 'fetchTrades', 'fetchTradesWs',
    'fetchTradingFee', 'fetchTradingFees', 'fetchTradingFeesWs', 'fetchTradingLimits', 'fetchTransactionFee',
    'fetchTransactionFees', 'fetchTransactions', 'fetchTransfer', 'fetchTransfers', 'fetchUnderlyingAssets',
    'fetchVolatilityHistory', 'fetchWithdrawAddresses', 'fetchWithdrawal', 'fetchWithdrawalWhitelist',
    'fetchWithdrawals', 'fetchWithdrawalsWs', 'future', 'index', 'margin', 'option', 'privateAPI', 'publicAPI',
    'reduceMargin', 'repayCrossMargin', 'repayIsolatedMargin', 'sandbox', 'setLeverage', 'setMargin',
    'setMarginMode', 'setPositionMode', 'signIn', 'spot', 'swap', 'transfer', 'unWatchMyTrades', 'unWatchOHLCV',
    'unWatchOHLCVForSymbols', 'unWatchOrderBook', 'unWatchOrderBookForSymbols', 'unWatchOrders', 'unWatchPositions',
    'unWatchTicker', 'unWatchTickers', 'unWatchTrades', 'unWatchTradesForSymbols', 'watchBalance', 'watchBidsAsks',
    'watchLiquidations', 'watchLiquidationsForSymbols', 'watchMyLiquidations', 'watchMyLiquidationsForSymbols',
    'watchMyTrades', 'watchOHLCV', 'watchOHLCVForSymbols', 'watchOrderBook', 'watchOrderBookForSymbols',
    'watchOrders', 'watchOrdersForSymbols', 'watchPosition', 'watchPositions', 'watchStatus', 'watchTicker',
    'watchTickers', 'watchTrades', 'watchTradesForSymbols', 'withdraw', 'ws',
)


@dataclass(frozen=True, slots=True)
class Req:
    """Send ``cmds`` (pipelined) and answer with their ``Reply`` objects, in
    order. ``auth``: log in first if the session is not logged in."""

    cmds: tuple
    auth: bool = True


DRAIN = object()  # answer with the raw private events pushed since the last drain
_typeof = type  # for the methods whose CCXT signature has a ``type`` argument


# ------------------------------------------------------------------ helpers


def dec(value, what: str = "value") -> Decimal:
    """A number from a bot (float, int, str, Decimal) as an exact Decimal:
    floats by their shortest repr, so 0.1 is 0.1."""
    if isinstance(value, Decimal):
        d = value
    elif isinstance(value, bool) or value is None:
        raise E.BadRequest(f"exchangesim {what} must be a number, not {value!r}")
    elif isinstance(value, float):
        d = Decimal(repr(value))
    else:
        try:
            d = Decimal(str(value).strip())
        except (InvalidOperation, ValueError):
            raise E.BadRequest(f"exchangesim {what} must be a number, not {value!r}") from None
    if not d.is_finite():
        raise E.BadRequest(f"exchangesim {what} must be finite, not {value!r}")
    return d


def fmt(d: Decimal) -> str:
    """A Decimal as CCXT's precision helpers print it: no exponent, no
    trailing zeros (NO_PADDING)."""
    s = format(d.normalize(), "f")
    return "0" if s in ("-0", "0") else s


def fl(d) -> float | None:
    return None if d is None else float(d)


# --- dated futures (issue 16): ccxt's market fields per contract kind
_SWAP_FIELDS = {"type": "swap", "suffix": "", "expiry": None, "active": True}


def _future_fields(meta) -> dict:
    """A dated future as ccxt shows one: ``type`` future, the unified symbol
    ``BTC/USDT:USDT-270326`` (settle, then the expiry as YYMMDD), ``expiry``
    in ms; inactive unless trading."""
    ms = meta.expiry_ns // 1_000_000
    day = datetime.fromtimestamp(ms / 1000, tz=timezone.utc)
    return {"type": "future", "suffix": f"-{day:%y%m%d}", "expiry": ms, "active": meta.state == "trading"}


def iso8601(ms: int | None) -> str | None:
    """CCXT's datetime format: ``2024-01-02T03:04:05.678Z``."""
    if ms is None:
        return None
    t = datetime.fromtimestamp(ms / 1000, tz=timezone.utc)
    return t.strftime("%Y-%m-%dT%H:%M:%S.") + f"{int(ms) % 1000:03d}Z"


def now_ms() -> int:
    return time.time_ns() // 1_000_000


def builtins(obj):
    """A protocol struct as plain dicts/lists (for ``info``)."""
    return msgspec.to_builtins(obj)


def _order_id(value, what: str = "id") -> int:
    try:
        oid = int(str(value).strip())
    except (TypeError, ValueError):
        raise E.BadRequest(f"exchangesim {what} must be an exchangesim order id (digits), not {value!r}") from None
    if oid < 0:
        raise E.BadRequest(f"exchangesim {what} must not be negative: {value!r}")
    return oid


class _Order:
    """One order as the facade knows it: from the reply to its NewOrder, the
    events pushed later, and open-order queries."""

    __slots__ = ("id", "client_id", "symbol", "side", "type", "tif", "reduce_only", "price", "stop_price", "filled",
                 "remaining", "cost", "fee", "status", "cause", "triggered", "trades", "timestamp", "last_trade",
                 "last_update", "protect")

    def __init__(self, oid: int, symbol: str, ts: int | None):
        self.id = oid
        self.client_id: str | None = None
        self.symbol = symbol
        self.side: str | None = None
        self.type: str | None = None  # venue order type
        self.tif: str | None = None
        self.reduce_only = False
        self.price: Decimal | None = None
        self.stop_price: Decimal | None = None
        self.filled = Decimal(0)
        self.remaining = Decimal(0)
        self.cost = Decimal(0)
        self.fee = Decimal(0)
        self.status = "open"
        self.cause: str | None = None
        self.triggered = False
        self.trades: list[dict] = []
        self.timestamp = ts
        self.last_trade: int | None = None
        self.last_update = ts
        #: protective-order terms for ``info`` (working type, close position, trailing, parent entry)
        self.protect: dict = {}


def _take_terms(rec: _Order, ins, src) -> None:
    """Copy an order's terms from an ``OrderAccepted`` or an ``OrderView``
    (both carry the same fields) into the cache record, in human units."""
    rec.client_id = src.client_order_id
    rec.side = src.side.value
    rec.type = src.type.value
    rec.tif = src.tif.value
    rec.reduce_only = src.reduce_only
    rec.price = ins.price(src.price)
    rec.stop_price = ins.price(src.stop_price)
    # --- protective orders
    rec.protect = {
        "working_type": str(src.working_type), "close_position": src.close_position,
        "callback_rate": None if src.callback_bps is None else src.callback_bps / 100,
        "activation_price": fl(ins.price(src.activation_price)), "parent_order_id": src.parent_order_id,
    }


class ExchangeBase:
    """The exchange object as CCXT bots see it, minus the I/O (see module
    docstring). Subclasses: :class:`clients.ccxt.exchangesim` (blocking) and
    :class:`clients.ccxt.async_support.exchangesim` (asyncio)."""

    id = "exchangesim"
    name = "exchange-sim"
    countries: list[str] = []
    version = "1"
    pro = False
    certified = False
    rateLimit = 0  # ms between requests the venue asks for: none (it answers RATE_LIMITED itself)
    precisionMode = TICK_SIZE
    paddingMode = NO_PADDING
    requiredCredentials = {"apiKey": True, "secret": False, "uid": False}
    timeframes: dict = {}
    has: dict = {
        **dict.fromkeys(CCXT_HAS_KEYS, False),
        "CORS": None, "spot": False, "margin": False, "swap": True, "future": False, "option": False,
        "addMargin": True, "cancelAllOrders": True, "cancelOrder": True, "createOrder": True,
        "createLimitOrder": True, "createMarketOrder": True, "createPostOnlyOrder": True,
        "createReduceOnlyOrder": True, "createStopOrder": True, "createStopLimitOrder": True,
        "createStopMarketOrder": True, "createTriggerOrder": True, "createStopLossOrder": False,
        "createTakeProfitOrder": False, "editOrder": True, "fetchBalance": True, "fetchCanceledOrders": "emulated",
        "fetchClosedOrders": "emulated", "fetchCurrencies": True, "fetchFundingRate": False, "fetchLeverage": True,
        "fetchMarginMode": True, "fetchMarkets": True, "fetchMyTrades": "emulated", "fetchOHLCV": False,
        "fetchOpenOrders": True, "fetchOrder": True, "fetchOrderBook": True, "fetchOrders": "emulated",
        "fetchPosition": True, "fetchPositions": True, "fetchTicker": True, "fetchTickers": True,
        "fetchTime": True, "fetchTrades": "emulated", "reduceMargin": True, "setLeverage": True,
        "setMarginMode": True, "setPositionMode": False, "withdraw": False, "deposit": False,
        "watchOrderBook": False, "watchOrders": False, "watchPositions": False, "watchTicker": False,
        "watchTrades": False,
        # --- ccxt facade: the rest of ccxt's keys that work here
        "publicAPI": True, "privateAPI": True, "sandbox": True, "ws": False, "index": False,
        "createLimitBuyOrder": True, "createLimitSellOrder": True, "createMarketBuyOrder": True,
        "createMarketSellOrder": True, "createOrders": True, "fetchL2OrderBook": True, "fetchStatus": True,
        # --- leverage
        "fetchLeverages": True, "fetchLeverageTiers": True, "fetchMarketLeverageTiers": True,
    }
    # --- protective orders: what this task made true
    has = {**has, "createTakeProfitOrder": True, "createTrailingPercentOrder": True, "createTrailingAmountOrder": False,
           "createOrderWithTakeProfitAndStopLoss": True, "createStopLossOrder": True, "closePosition": True}

    def __init__(self, config: dict | None = None):
        config = dict(config or {})
        self.apiKey = config.pop("apiKey", "") or ""
        self.secret = config.pop("secret", "") or ""
        self.uid = config.pop("uid", "") or ""
        self.password = config.pop("password", "") or ""
        self.timeout = config.pop("timeout", 10_000)  # ms, as in CCXT
        self.enableRateLimit = config.pop("enableRateLimit", True)
        self.verbose = config.pop("verbose", False)
        options = config.pop("options", None) or {}
        self.options = {
            "defaultType": "swap",
            "cancelOnDisconnect": False,
            "trackLastTrade": True,  # subscribe to public trades: positions' lastPrice (fetch_trades asks the venue)
            **options,
        }
        urls = config.pop("urls", None) or {}
        for key, value in config.items():  # CCXT sets any other config key as an attribute
            if not callable(getattr(type(self), key, None)):
                setattr(self, key, value)
        api = urls.get("api") if isinstance(urls.get("api"), dict) else {}
        orders = (api.get("orders") or self.options.get("orders") or os.environ.get("EXCHANGESIM_ORDERS")
                  or DEFAULT_ORDERS)
        market_data = (api.get("marketData") or self.options.get("marketData")
                       or os.environ.get("EXCHANGESIM_MARKET_DATA") or DEFAULT_MARKET_DATA)
        self.urls = {**urls, "api": {**api, "orders": orders, "marketData": market_data},
                     "doc": ["docs/ccxt.md"], "www": "https://github.com/"}
        self.server_key = self.options.get("serverKey")

        self.markets: dict[str, dict] | None = None
        self.markets_by_id: dict[str, list[dict]] | None = None
        self.symbols: list[str] | None = None
        self.ids: list[str] | None = None
        self.currencies: dict[str, dict] = {}
        self.currencies_by_id: dict[str, dict] = {}
        self._meta: dict[str, models.InstrumentMeta] = {}
        self._mk: models.Markets | None = None
        self._core = Core()  # command builders of clients._core, over our markets
        self._core.markets = None
        self._core.account_id = None

        self._orders: OrderedDict[int, _Order] = OrderedDict()
        self._trades: deque[dict] = deque(maxlen=MAX_CACHED_TRADES)
        self._trade_keys: set[tuple[int, int]] = set()
        self._trade_key_order: deque[tuple[int, int]] = deque()
        self._last: dict[str, tuple[int, Decimal, int]] = {}  # venue symbol -> (trade id, price, ms)
        self._account_ev: m.AccountUpdate | None = None
        self._trade_sub: zmq.Socket | None = None
        self.session_lost: str | None = None

    # ------------------------------------------------------------ basics

    def __getattr__(self, name: str):
        """CCXT's camelCase spellings (``fetchTicker``, ``createOrder``,
        ``amountToPrecision``...) for the snake_case methods, and CCXT's
        NotSupported for a unified method this venue does not have."""
        if name.startswith("_"):
            raise AttributeError(name)
        snake = _snake(name)
        if snake != name:
            # ccxt's Python spells safeString2 as safe_string_2
            for candidate in (snake, re.sub(r"(?<=[a-z])(\d+)$", r"_\1", snake)):
                try:
                    attr = getattr(type(self), candidate)
                except AttributeError:
                    continue
                if callable(attr):
                    return getattr(self, candidate)
        if snake.startswith(_UNIFIED_PREFIXES):
            def not_supported(*args, **kwargs):
                raise E.NotSupported(f"{self.id} {_camel(snake)}() is not supported")
            return not_supported
        raise AttributeError(f"{type(self).__name__!r} object has no attribute {name!r}")

    def __repr__(self) -> str:
        return f"<{type(self).__module__}.exchangesim orders={self.urls['api']['orders']}>"

    def set_sandbox_mode(self, enabled: bool) -> None:
        """Accepted for compatibility: exchange-sim is always a sandbox."""

    def check_required_credentials(self) -> None:
        self._credentials()

    def _credentials(self) -> tuple[int, str]:
        """(account id, API key). The mapping (docs/ccxt.md):

        - ``uid`` (or ``options['account']``) is the account id and
          ``apiKey`` the API key;
        - or ``apiKey`` alone as ``"ACCOUNT:KEY"``, e.g. ``"2:demo-key-taker-2"``.

        ``secret`` is accepted and unused: the venue authenticates a session
        by its API key at login (no request signing).
        """
        key = str(self.apiKey or "")
        account = self.uid if self.uid not in (None, "") else self.options.get("account")
        if account in (None, "") and ":" in key:
            head, _, rest = key.partition(":")
            if head.strip().isdigit():
                account, key = head.strip(), rest
        if not key:
            raise E.AuthenticationError(f'{self.id} requires "apiKey" credential')
        if account in (None, ""):
            raise E.AuthenticationError(
                f'{self.id} requires the account id: "uid" (or options["account"]), or apiKey as "ACCOUNT:KEY"')
        try:
            acct = int(str(account).strip())
        except ValueError:
            raise E.AuthenticationError(f"{self.id} account id must be an integer, not {account!r}") from None
        return acct, key

    def _account(self) -> int:
        acct = self._credentials()[0]
        self._core.account_id = acct
        return acct

    # ----------------------------------------------------------- markets

    def _parse_markets(self, info: m.Instruments) -> list[dict]:
        mk = models.Markets(info)
        out = []
        for raw in info.instruments:
            meta = mk.instruments[raw.symbol]
            base, settle = meta.underlying, meta.settlement
            lot, tick = meta.lot_size, meta.tick_size
            kind = _future_fields(meta) if meta.kind == "future" else _SWAP_FIELDS
            out.append({
                "id": meta.symbol, "symbol": f"{base}/{settle}:{settle}" + kind["suffix"], "base": base,
                "quote": settle,
                "settle": settle, "baseId": base, "quoteId": settle, "settleId": settle, "lowercaseId": None,
                "type": kind["type"], "spot": False, "margin": False, "swap": kind["type"] == "swap",
                "future": kind["type"] == "future", "option": False,
                "index": None, "active": kind["active"], "contract": True, "linear": True, "inverse": False,
                "subType": "linear", "contractSize": 1.0, "expiry": kind["expiry"],
                "expiryDatetime": iso8601(kind["expiry"]), "strike": None,
                "optionType": None, "taker": float(meta.taker_fee), "maker": float(meta.maker_fee),
                "percentage": True, "tierBased": False, "feeSide": "quote",
                "precision": {"amount": float(lot), "price": float(tick), "cost": None, "base": None,
                              "quote": None},
                "limits": {
                    "amount": {"min": float(lot), "max": float(meta.max_qty)},
                    "price": {"min": float(tick), "max": None},
                    "cost": {"min": float(meta.min_notional), "max": None},
                    "leverage": {"min": None, "max": None},
                    "market": {"min": float(lot), "max": float(meta.max_qty)},
                },
                "marginModes": {"cross": True, "isolated": True},
                "created": None,
                "info": builtins(raw),
            })
        return out

    def _set_markets(self, info: m.Instruments) -> dict[str, dict]:
        markets = self._parse_markets(info)
        self._mk = models.Markets(info)
        self._core.markets = self._mk
        self._meta = dict(self._mk.instruments)
        self.markets = {mkt["symbol"]: mkt for mkt in markets}
        self.symbols = sorted(self.markets)
        self.ids = sorted(mkt["id"] for mkt in markets)
        self.markets_by_id = {}
        for mkt in markets:
            self.markets_by_id.setdefault(mkt["id"], []).append(mkt)
        self.currencies = {
            a.name: {"id": a.name, "code": a.name, "name": a.name, "active": True, "deposit": False,
                     "withdraw": True, "fee": None, "precision": float(Decimal(1).scaleb(-a.decimals)),
                     "limits": {"amount": {"min": None, "max": None}, "withdraw": {"min": None, "max": None}},
                     "networks": {}, "type": "crypto", "info": builtins(a)}
            for a in info.assets
        }
        self.currencies_by_id = dict(self.currencies)
        return self.markets

    def _ensure_markets(self):
        if self.markets is None:
            (rep,) = yield Req((m.QueryInstruments(),), auth=False)
            (info,) = raise_for(rep.events)
            self._set_markets(info)
        return self.markets

    def market(self, symbol: str) -> dict:
        """The market for a unified symbol (``BTC/USDT:USDT``), a venue id
        (``BTC-PERP``) or ``BTC/USDT`` (taken as the USDT swap). Raises
        BadSymbol."""
        if self.markets is None:
            raise E.ExchangeError(f"{self.id} markets not loaded: call load_markets() first")
        if isinstance(symbol, str):
            mkt = self.markets.get(symbol)
            if mkt is not None:
                return mkt
            by_id = self.markets_by_id.get(symbol)
            if by_id:
                return by_id[0]
            if ":" not in symbol and "/" in symbol:
                mkt = self.markets.get(f"{symbol}:{symbol.split('/', 1)[1]}")
                if mkt is not None:
                    return mkt
        raise E.BadSymbol(f"{self.id} does not have market symbol {symbol}")

    def market_id(self, symbol: str) -> str:
        return self.market(symbol)["id"]

    def _sym(self, venue_symbol: str | None) -> str | None:
        """Venue id -> unified symbol."""
        if venue_symbol is None:
            return None
        by_id = (self.markets_by_id or {}).get(venue_symbol)
        return by_id[0]["symbol"] if by_id else venue_symbol

    def _ins(self, symbol: str) -> models.InstrumentMeta:
        return self._meta[self.market(symbol)["id"]]

    # ---------------------------------------------------------- precision

    def amount_to_precision(self, symbol: str, amount) -> str:
        """Amount truncated to the lot size, as a string (CCXT: TRUNCATE,
        TICK_SIZE). Raises InvalidOrder if that leaves nothing."""
        ins = self._ins(symbol)
        q = (dec(amount, "amount") / ins.lot_size).to_integral_value(ROUND_DOWN) * ins.lot_size
        if q == 0:
            raise E.InvalidOrder(f"{self.id} amount of {self.market(symbol)['symbol']} must be greater than minimum "
                                 f"amount precision of {fmt(ins.lot_size)}")
        return fmt(q)

    def price_to_precision(self, symbol: str, price) -> str:
        """Price rounded to the nearest tick (half away from zero), as a
        string (CCXT: ROUND, TICK_SIZE)."""
        ins = self._ins(symbol)
        p = dec(price, "price")
        return fmt((p / ins.tick_size).to_integral_value(ROUND_HALF_UP) * ins.tick_size)

    def cost_to_precision(self, symbol: str, cost) -> str:
        d = self._mk.decimals.get(self._ins(symbol).settlement, 6) if self._mk else 6
        return fmt(dec(cost, "cost").quantize(Decimal(1).scaleb(-d), ROUND_DOWN))

    def currency_to_precision(self, code: str, amount) -> str:
        d = self._mk.decimals.get(code) if self._mk else None
        if d is None:
            raise E.BadRequest(f"{self.id} unknown currency {code}")
        return fmt(dec(amount, "amount").quantize(Decimal(1).scaleb(-d), ROUND_HALF_UP))

    def fee_to_precision(self, symbol: str, fee) -> str:
        return self.cost_to_precision(symbol, fee)

    # ------------------------------------------- CCXT's convenience methods
    # They return what create_order returns: a dict (blocking class) or a
    # coroutine to await (asyncio class).

    def create_limit_order(self, symbol, side, amount, price, params=None):
        return self.create_order(symbol, "limit", side, amount, price, params)

    def create_market_order(self, symbol, side, amount, price=None, params=None):
        return self.create_order(symbol, "market", side, amount, price, params)

    def create_limit_buy_order(self, symbol, amount, price, params=None):
        return self.create_order(symbol, "limit", "buy", amount, price, params)

    def create_limit_sell_order(self, symbol, amount, price, params=None):
        return self.create_order(symbol, "limit", "sell", amount, price, params)

    def create_market_buy_order(self, symbol, amount, params=None):
        return self.create_order(symbol, "market", "buy", amount, None, params)

    def create_market_sell_order(self, symbol, amount, params=None):
        return self.create_order(symbol, "market", "sell", amount, None, params)

    def create_post_only_order(self, symbol, type, side, amount, price=None, params=None):
        return self.create_order(symbol, type, side, amount, price, {**(params or {}), "postOnly": True})

    def create_reduce_only_order(self, symbol, type, side, amount, price=None, params=None):
        return self.create_order(symbol, type, side, amount, price, {**(params or {}), "reduceOnly": True})

    def create_stop_order(self, symbol, type, side, amount, price=None, triggerPrice=None, params=None):
        if triggerPrice is None:
            raise E.ArgumentsRequired(f"{self.id} createStopOrder() requires a triggerPrice argument")
        return self.create_order(symbol, type, side, amount, price, {**(params or {}), "triggerPrice": triggerPrice})

    create_trigger_order = create_stop_order

    def create_stop_limit_order(self, symbol, side, amount, price, triggerPrice, params=None):
        return self.create_stop_order(symbol, "limit", side, amount, price, triggerPrice, params)

    def create_stop_market_order(self, symbol, side, amount, triggerPrice, params=None):
        return self.create_stop_order(symbol, "market", side, amount, None, triggerPrice, params)

    # --- protective orders (ccxt's unified names and signatures)
    def create_stop_loss_order(self, symbol, type, side, amount, price=None, stopLossPrice=None, params=None):
        """A reduce-only stop (``type`` market or limit) triggered when the
        price moves against ``side`` to ``stopLossPrice``."""
        if stopLossPrice is None:
            raise E.ArgumentsRequired(f"{self.id} createStopLossOrder() requires a stopLossPrice argument")
        return self.create_order(symbol, type, side, amount, price, {**(params or {}), "stopLossPrice": stopLossPrice})

    def create_take_profit_order(self, symbol, type, side, amount, price=None, takeProfitPrice=None, params=None):
        """A reduce-only take-profit triggered when the price moves in
        ``side``'s favour to ``takeProfitPrice``."""
        if takeProfitPrice is None:
            raise E.ArgumentsRequired(f"{self.id} createTakeProfitOrder() requires a takeProfitPrice argument")
        return self.create_order(symbol, type, side, amount, price,
                                 {**(params or {}), "takeProfitPrice": takeProfitPrice})

    def create_order_with_take_profit_and_stop_loss(self, symbol, type, side, amount, price=None, takeProfit=None,
                                                    stopLoss=None, params=None):
        """An entry with an attached take-profit and/or stop-loss (trigger
        prices; market orders once triggered), as ``params['takeProfit']`` /
        ``params['stopLoss']``."""
        extra = {}
        if takeProfit is not None:
            extra["takeProfit"] = {"triggerPrice": takeProfit}
        if stopLoss is not None:
            extra["stopLoss"] = {"triggerPrice": stopLoss}
        return self.create_order(symbol, type, side, amount, price, {**(params or {}), **extra})

    def create_trailing_percent_order(self, symbol, type, side, amount, price=None, trailingPercent=None,
                                      trailingTriggerPrice=None, params=None):
        """A trailing stop (market): it follows the best price since
        ``trailingTriggerPrice`` was reached (or since now) and triggers on
        a retrace of ``trailingPercent`` (0.1-10)."""
        if trailingPercent is None:
            raise E.ArgumentsRequired(f"{self.id} createTrailingPercentOrder() requires a trailingPercent argument")
        extra = {"trailingPercent": trailingPercent}
        if trailingTriggerPrice is not None:
            extra["trailingTriggerPrice"] = trailingTriggerPrice
        return self.create_order(symbol, type, side, amount, price, {**(params or {}), **extra})

    def set_position_mode(self, hedged, symbol=None, params=None):
        raise E.NotSupported(f"{self.id} setPositionMode() is not supported: one net position per instrument")

    # ------------------------------------------------------ event handling

    def _stub(self, oid: int, symbol: str, ts: int | None) -> _Order:
        rec = self._orders.get(oid)
        if rec is None:
            rec = self._orders[oid] = _Order(oid, symbol, ts)
            if len(self._orders) > MAX_CACHED_ORDERS:
                for old_id, old in list(self._orders.items()):
                    if len(self._orders) <= MAX_CACHED_ORDERS:
                        break
                    if old.status != "open" or len(self._orders) > 2 * MAX_CACHED_ORDERS:
                        del self._orders[old_id]
        return rec

    def _apply(self, events) -> tuple[set[int], bool]:
        """Fold private events (raw protocol structs) into the order/trade
        cache. Returns (ids of orders that changed, whether an AccountUpdate
        came). Replays (a duplicate reply, a fill seen twice) change nothing."""
        mk = self._mk
        changed: set[int] = set()
        account = False
        ts = now_ms()
        for ev in events:
            t = type(ev)
            if t is m.OrderAccepted:
                ins = mk[ev.symbol]
                known = ev.order_id in self._orders
                rec = self._stub(ev.order_id, ev.symbol, ts)
                if not known:
                    rec.remaining = ins.qty(ev.qty)
                _take_terms(rec, ins, ev)
                changed.add(ev.order_id)
            elif t is m.Fill:
                key = (ev.trade_id, ev.order_id)
                if key in self._trade_keys:
                    continue
                self._remember_trade_key(key)
                ins = mk[ev.symbol]
                rec = self._stub(ev.order_id, ev.symbol, None)
                price, qty, fee = ins.price(ev.price), ins.qty(ev.qty), mk.settle(ev.fee)
                rec.client_id = rec.client_id or ev.client_order_id
                rec.side = rec.side or ev.side.value
                rec.filled += qty
                rec.cost += price * qty
                rec.fee += fee
                rec.remaining = ins.qty(ev.remaining)
                rec.last_trade = rec.last_update = ts
                if ev.remaining == 0 and rec.status == "open":
                    rec.status = "closed"
                trade = self._trade_dict(ev, rec, ts)
                rec.trades.append(trade)
                self._trades.append(trade)
                self._note_trade(ev.symbol, ev.trade_id, price, qty, ev.side.value, ts, ev)
                changed.add(ev.order_id)
            elif t is m.OrderCancelled:
                ins = mk[ev.symbol]
                rec = self._stub(ev.order_id, ev.symbol, None)
                rec.client_id = rec.client_id or ev.client_order_id
                rec.remaining = ins.qty(ev.remaining)
                rec.status = "canceled"
                rec.cause = ev.cause.value
                rec.last_update = ts
                changed.add(ev.order_id)
            elif t is m.OrderAmended:
                ins = mk[ev.symbol]
                rec = self._stub(ev.order_id, ev.symbol, None)
                rec.price = ins.price(ev.price)
                rec.remaining = ins.qty(ev.qty)
                rec.last_update = ts
                changed.add(ev.order_id)
            elif t is m.OrderTriggered:
                rec = self._stub(ev.order_id, ev.symbol, None)
                rec.triggered = True
                rec.last_update = ts
                changed.add(ev.order_id)
            elif t is m.AccountUpdate:
                if self._core.account_id is None or ev.account == self._core.account_id:
                    self._account_ev = ev
                    account = True
        if changed or account:
            self._after_apply(changed, account)
        return changed, account

    def _after_apply(self, changed: set[int], account: bool) -> None:
        """Hook: the asyncio class wakes its watchers here."""

    def _on_pushed(self, events: list) -> None:
        """Pushed private events (from a drain or the asyncio pump)."""
        from protocol.session import LoggedOut

        keep = []
        for ev in events:
            if type(ev) is LoggedOut:
                self.session_lost = ev.reason
            else:
                keep.append(ev)
        self._apply(keep)

    def _remember_trade_key(self, key: tuple[int, int]) -> None:
        self._trade_keys.add(key)
        self._trade_key_order.append(key)
        if len(self._trade_key_order) > 4 * MAX_CACHED_TRADES:
            self._trade_keys.discard(self._trade_key_order.popleft())

    def _note_trade(self, symbol: str, trade_id: int, price: Decimal, qty: Decimal, taker_side: str | None,
                    ts: int, ev=None) -> None:
        last = self._last.get(symbol)
        if last is None or trade_id > last[0]:
            self._last[symbol] = (trade_id, price, ts)

    def _open_trade_feed(self, force: bool = False) -> None:
        """Subscribe to every symbol's public trades (positions' ``lastPrice``;
        the ``watch_*`` of the asyncio class). Trades before this moment are not known.
        ``force``: even with ``options["trackLastTrade"]`` off (a watch needs it)."""
        if self._trade_sub is not None or not (force or self.options.get("trackLastTrade", True)) or not self._meta:
            return
        sub = zmq.Context.instance().socket(zmq.SUB)
        sub.linger = 0
        sub.rcvhwm = 100_000
        if self.server_key is not None:
            from clients._core import curve

            curve(sub, self.server_key)
        for sym in self._meta:
            sub.setsockopt(zmq.SUBSCRIBE, f"{sym}.trade".encode())
        sub.connect(self.urls["api"]["marketData"])
        self._trade_sub = sub

    def _drain_trade_feed(self) -> None:
        sub = self._trade_sub
        if sub is None:
            return
        ts = now_ms()
        for _ in range(1_000_000):
            try:
                frame = sub.recv(zmq.NOBLOCK)
            except zmq.Again:
                return
            except zmq.ZMQError:
                return
            try:
                ev = decode_market(frame)
            except Exception:
                continue
            if type(ev) is m.Trade and self._mk is not None and ev.symbol in self._meta:
                ins = self._meta[ev.symbol]
                price, qty = ins.price(ev.price), ins.qty(ev.qty)
                self._note_trade(ev.symbol, ev.trade_id, price, qty, ev.taker_side.value, ts)
                self._on_public(ev, self._public_trade_dict(ev, price, qty, ts))
            elif type(ev) is m.MarkPrice and ev.symbol in self._meta:
                self._on_public(ev, None)

    def _on_public(self, ev, trade: dict | None) -> None:
        """Hook: a public Trade (with its ccxt structure) or MarkPrice was
        read from the feed; the asyncio class feeds its ``watch_*`` here."""

    def _close_feeds(self) -> None:
        if self._trade_sub is not None:
            self._trade_sub.close(linger=0)
            self._trade_sub = None

    # ------------------------------------------------------ CCXT structures

    def _trade_dict(self, ev: m.Fill, rec: _Order, ts: int) -> dict:
        ins = self._meta[ev.symbol]
        price, qty, fee = ins.price(ev.price), ins.qty(ev.qty), self._mk.settle(ev.fee)
        maker = ev.liquidity.value == "maker"
        rate = ins.maker_fee if maker else ins.taker_fee
        fee_d = {"cost": float(fee), "currency": ins.settlement, "rate": float(rate)}
        return {
            "info": builtins(ev), "id": str(ev.trade_id), "order": str(ev.order_id), "timestamp": ts,
            "datetime": iso8601(ts), "symbol": self._sym(ev.symbol), "type": _ccxt_type(rec.type),
            "side": ev.side.value, "takerOrMaker": ev.liquidity.value, "price": float(price), "amount": float(qty),
            "cost": float(price * qty), "fee": fee_d, "fees": [dict(fee_d)],
        }

    def _public_trade_dict(self, ev: m.Trade, price: Decimal, qty: Decimal, ts: int) -> dict:
        return {
            "info": builtins(ev), "id": str(ev.trade_id), "order": None, "timestamp": ts, "datetime": iso8601(ts),
            "symbol": self._sym(ev.symbol), "type": None, "side": ev.taker_side.value, "takerOrMaker": None,
            "price": float(price), "amount": float(qty), "cost": float(price * qty), "fee": None, "fees": [],
        }

    def _order_dict(self, rec: _Order) -> dict:
        settle = self._meta[rec.symbol].settlement if rec.symbol in self._meta else "USDT"
        amount = rec.filled + rec.remaining
        remaining = Decimal(0) if rec.status == "closed" else rec.remaining
        average = rec.cost / rec.filled if rec.filled else None
        if average is not None and rec.symbol in self._meta:
            average = average.quantize(self._meta[rec.symbol].tick_size.scaleb(-4)).normalize()
        fee = {"cost": float(rec.fee), "currency": settle}
        tif = _TIF_OUT.get(rec.tif) if rec.tif else None
        stop = fl(rec.stop_price)
        return {
            "id": str(rec.id), "clientOrderId": rec.client_id, "timestamp": rec.timestamp,
            "datetime": iso8601(rec.timestamp), "lastTradeTimestamp": rec.last_trade,
            "lastUpdateTimestamp": rec.last_update, "symbol": self._sym(rec.symbol), "type": _ccxt_type(rec.type),
            "timeInForce": tif, "postOnly": rec.tif == "post_only" if rec.tif else None,
            "reduceOnly": rec.reduce_only, "side": rec.side, "price": fl(rec.price), "triggerPrice": stop,
            "stopPrice": stop, "stopLossPrice": stop if rec.type in _STOP_TYPES and rec.reduce_only else None,
            "takeProfitPrice": stop if rec.type in _TP_TYPES else None, "amount": float(amount),
            "cost": float(rec.cost), "average": fl(average), "filled": float(rec.filled),
            "remaining": float(remaining), "status": rec.status, "fee": fee, "fees": [dict(fee)],
            "trades": list(rec.trades),
            "info": {"order_id": rec.id, "symbol": rec.symbol, "type": rec.type, "tif": rec.tif,
                     "stop_price": None if rec.stop_price is None else str(rec.stop_price),
                     "triggered": rec.triggered, "cancel_cause": rec.cause, **rec.protect},
        }

    def _from_view(self, v: m.OrderView) -> _Order:
        """Bring the cache in line with an open-order view (the venue's word)."""
        ins = self._mk[v.symbol]
        rec = self._stub(v.order_id, v.symbol, None)
        _take_terms(rec, ins, v)
        rec.remaining = ins.qty(v.qty)
        filled = ins.qty(v.filled)
        if filled > rec.filled:  # fills from before this connection: no prices known for them
            rec.filled = filled
        rec.status = "open"
        return rec

    def _order_book(self, symbol: str, bids, asks, nonce: int) -> dict:
        ts = now_ms()
        return {"symbol": self._sym(symbol), "bids": [[float(p), float(q)] for p, q in bids],
                "asks": [[float(p), float(q)] for p, q in asks], "timestamp": ts, "datetime": iso8601(ts),
                "nonce": nonce}

    def _balance(self, ev: m.AccountUpdate) -> dict:
        """CCXT balance from an AccountUpdate (see fetch_balance)."""
        mk = self._mk
        settle = mk.settlement
        ts = now_ms()
        wallet = {a: mk.amount(a, v) for a, v in ev.balances.items()}
        out: dict = {"info": {**builtins(ev), "wallet": {a: fmt(v) for a, v in wallet.items()}},
                     "timestamp": ts, "datetime": iso8601(ts), "free": {}, "used": {}, "total": {}}
        for asset, amt in sorted(wallet.items()):
            if asset != settle:
                out[asset] = {"free": float(amt), "used": 0.0, "total": float(amt)}
        for asset in self.currencies:  # every currency has a row, 0 when not held (as binance's): balance[base] works
            if asset != settle and asset not in out:
                out[asset] = {"free": 0.0, "used": 0.0, "total": 0.0}
        equity, im = mk.risk(ev.equity), mk.risk(ev.im)
        free = max(Decimal(0), equity - im)
        used = min(im, max(equity, Decimal(0)))
        out[settle] = {"free": float(free), "used": float(used), "total": float(free + used if equity >= 0 else equity)}
        for asset in sorted(k for k in out if k not in ("info", "timestamp", "datetime", "free", "used", "total")):
            for kind in ("free", "used", "total"):
                out[kind][asset] = out[asset][kind]
        return out

    def _positions(self, ev: m.AccountUpdate, explain: m.Explain | None, symbols=None,
                   closed: tuple[str, ...] = ()) -> list[dict]:
        """CCXT positions from an AccountUpdate (+ Explain for collateral
        and isolated allocations). ``closed``: venue symbols to report with
        zero contracts (positions that went flat, for watch_positions)."""
        want = None if symbols is None else {self.market(s)["id"] for s in symbols}
        mk = self._mk
        mode = str(getattr(ev.margin_mode, "value", ev.margin_mode))
        equity, acct_mm = ev.equity, ev.mm
        counted = {a.asset: a.counted for a in explain.assets} if explain is not None else {}
        alloc = {p.symbol: p.isolated_margin for p in explain.positions} if explain is not None else {}
        ts = now_ms()
        out = []
        for p in ev.positions:
            if p.qty == 0 or (want is not None and p.symbol not in want):
                continue
            ins = self._meta[p.symbol]
            qty = ins.qty(p.qty)
            mark, entry = ins.price(p.mark), ins.price(p.entry_price)
            notional = mk.settle(p.notional)
            im, mm = mk.risk(p.im), mk.risk(p.mm)
            upnl = mk.settle(p.upnl)
            if mode == "isolated":
                collateral = Decimal(repr(alloc.get(p.symbol, 0.0)))
                margin_ratio = mm / (collateral + upnl) if collateral + upnl > 0 else None
            else:
                collateral = mk.risk(ev.collateral)
                margin_ratio = Decimal(repr(acct_mm)) / Decimal(repr(equity)) if equity > 0 else None
            liq = liquidation_price(mode, float(qty), float(mark), float(entry), float(mm), equity, acct_mm,
                                    counted.get(ins.underlying, 0.0), alloc.get(p.symbol, 0.0))
            last = self._last.get(p.symbol)
            out.append({
                "info": {**builtins(p), "margin_mode": mode, "account_equity": equity, "account_mm": acct_mm,
                         "venue_margin_ratio": ev.margin_ratio},
                "id": None, "symbol": self._sym(p.symbol), "timestamp": ts, "datetime": iso8601(ts),
                "lastUpdateTimestamp": ts, "isolated": mode == "isolated", "hedged": False,
                "side": "long" if qty > 0 else "short", "contracts": float(abs(qty)), "contractSize": 1.0,
                "entryPrice": float(entry), "markPrice": float(mark), "lastPrice": None if last is None else float(last[1]),
                "notional": float(notional), "leverage": float(notional / im) if im else None,
                "collateral": float(collateral), "initialMargin": float(im),
                "initialMarginPercentage": float(im / notional) if notional else None,
                "maintenanceMargin": float(mm),
                "maintenanceMarginPercentage": float(mm / notional) if notional else None,
                "unrealizedPnl": float(upnl), "realizedPnl": None, "liquidationPrice": liq,
                "marginMode": mode, "marginRatio": fl(margin_ratio),
                "percentage": float(upnl / im * 100) if im else None,
                "stopLossPrice": None, "takeProfitPrice": None,
            })
        for sym in closed:
            if want is not None and sym not in want:
                continue
            if any(p.symbol == sym and p.qty for p in ev.positions):
                continue
            out.append({
                "info": {"symbol": sym, "qty": 0, "margin_mode": mode}, "id": None, "symbol": self._sym(sym),
                "timestamp": ts, "datetime": iso8601(ts), "lastUpdateTimestamp": ts, "isolated": mode == "isolated",
                "hedged": False, "side": None, "contracts": 0.0, "contractSize": 1.0, "entryPrice": None,
                "markPrice": None, "lastPrice": None, "notional": 0.0, "leverage": None, "collateral": None,
                "initialMargin": 0.0, "initialMarginPercentage": None, "maintenanceMargin": 0.0,
                "maintenanceMarginPercentage": None, "unrealizedPnl": 0.0, "realizedPnl": None,
                "liquidationPrice": None, "marginMode": mode, "marginRatio": None, "percentage": None,
                "stopLossPrice": None, "takeProfitPrice": None,
            })
        return out

    # ================================================= unified methods (sans I/O)
    # Each yields Req / DRAIN and returns the CCXT structure; the public
    # wrappers (same names without the underscore) are in the subclasses.

    @params_read()
    def _g_load_markets(self, reload: bool = False, params=None):
        if reload or self.markets is None:
            (rep,) = yield Req((m.QueryInstruments(),), auth=False)
            (info,) = raise_for(rep.events)
            self._set_markets(info)
        self._open_trade_feed()
        return self.markets

    @params_read()
    def _g_fetch_markets(self, params=None):
        (rep,) = yield Req((m.QueryInstruments(),), auth=False)
        (info,) = raise_for(rep.events)
        return self._parse_markets(info)

    @params_read()
    def _g_fetch_currencies(self, params=None):
        yield from self._g_load_markets()
        return self.currencies

    @params_read()
    def _g_fetch_time(self, params=None):
        yield from self._g_load_markets()
        return now_ms()

    @params_read()
    def _g_fetch_order_book(self, symbol: str, limit: int | None = None, params=None):
        yield from self._g_load_markets()
        mid = self.market(symbol)["id"]
        (rep,) = yield Req((m.QueryBook(symbol=mid, depth=limit),), auth=False)
        (snap,) = raise_for(rep.events)
        ins = self._meta[mid]
        return self._order_book(mid, [(ins.price(p), ins.qty(q)) for p, q in snap.bids],
                                [(ins.price(p), ins.qty(q)) for p, q in snap.asks], snap.seq)

    @params_read()
    def _g_fetch_balance(self, params=None):
        yield from self._g_load_markets()
        (rep,) = yield Req((m.QueryAccount(account=self._account()),))
        evs = raise_for(rep.events)
        ev = next(e for e in evs if type(e) is m.AccountUpdate)
        self._account_ev = ev
        return self._balance(ev)

    @params_read('timeInForce', 'postOnly', 'reduceOnly', 'clientOrderId', 'stp', 'selfTradePrevention', *PROTECTIVE_PARAMS)
    def _g_create_order(self, symbol: str, type: str, side: str, amount, price=None, params=None):
        yield from self._g_load_markets()
        market = self.market(symbol)
        mid = market["id"]
        params = dict(params or {})
        otype = str(type).lower()
        side_l = str(side).lower()
        if side_l not in ("buy", "sell"):
            raise E.InvalidOrder(f"{self.id} createOrder() side must be 'buy' or 'sell', not {side!r}")
        tif_in = params.pop("timeInForce", None)
        post_only = bool(params.pop("postOnly", False))
        reduce_only = bool(params.pop("reduceOnly", False))
        client_id = params.pop("clientOrderId", None)
        stp = params.pop("stp", params.pop("selfTradePrevention", "expire_taker"))
        # --- protective orders: every param below is consumed (popped) or refused
        prot = protective_params(self.id, params)
        trigger, conditional = prot.pop("trigger"), prot.pop("conditional")
        if prot.pop("reduce_only"):
            reduce_only = True
        if prot.get("close_position"):
            reduce_only = False  # implied: the venue refuses both
        tif = "gtc"
        if tif_in is not None:
            t = _TIF_IN.get(str(tif_in).upper())
            if t is None:
                raise E.InvalidOrder(f"{self.id} createOrder() timeInForce must be GTC, IOC, FOK or PO, not {tif_in!r}")
            if t == "post_only":
                post_only = True
            else:
                tif = t
        if otype == "market":
            if post_only:
                raise E.InvalidOrder(f"{self.id} createOrder() a market order cannot be post-only")
            venue_type, price = (conditional[0] if conditional else "market"), None
        elif otype == "limit":
            if price is None:
                raise E.ArgumentsRequired(f"{self.id} createOrder() requires a price argument for a limit order")
            if conditional and conditional[1] is None:
                raise E.InvalidOrder(f"{self.id} createOrder() a trailing stop is a market order: type 'market'")
            venue_type = conditional[1] if conditional else "limit"
        elif otype in ("stop_market", "stop_limit"):
            if conditional and conditional[0] != "stop_market":
                raise E.InvalidOrder(f"{self.id} createOrder() type {otype} does not go with {conditional[2]}")
            venue_type = otype
            if otype == "stop_market":
                price = None
        else:
            raise E.InvalidOrder(f"{self.id} createOrder() does not support order type {type!r}: limit or market "
                                 "(with params triggerPrice/stopPrice for stop orders)")
        if prot.get("close_position"):
            if amount not in (None, 0):
                raise E.InvalidOrder(f"{self.id} createOrder() closePosition closes the whole position: "
                                     "pass amount None")
            qty = None
        else:
            qty = self.amount_to_precision(mid, amount)
        px = None if price is None else self.price_to_precision(mid, price)
        stop_px = None if trigger is None else self.price_to_precision(mid, trigger)
        for k in ("activation_price",):
            if prot.get(k) is not None:
                prot[k] = self.price_to_precision(mid, prot[k])
        for k in ("take_profit", "stop_loss"):
            spec = prot.get(k)
            if spec is not None:
                prot[k] = {n: (self.price_to_precision(mid, x) if n != "working_type" else x)
                           for n, x in spec.items() if x is not None}
        cmd = self._core.new_order_cmd(
            mid, side_l, qty, px, type=venue_type, tif=tif, post_only=post_only, reduce_only=reduce_only,
            stop_price=stop_px, stp=stp, client_order_id=None if client_id is None else str(client_id),
            account=self._account(), **prot)
        (rep,) = yield Req((cmd,))
        events = raise_for(rep.events)
        if not events or _typeof(events[0]) is not m.OrderAccepted:
            raise E.BadResponse(f"{self.id} unexpected reply to a new order: {events!r}")
        self._apply(events)
        return self._order_dict(self._orders[events[0].order_id])

    # --- protective orders
    @params_read('reduceOnly', 'clientOrderId')
    def _g_close_position(self, symbol: str, side: str | None = None, params=None):
        """ccxt ``closePosition``: a reduce-only market order for the whole
        position now (``side``, if given, must be the closing side)."""
        yield from self._g_load_markets()
        mid = self.market(symbol)["id"]
        params = dict(params or {})
        params.pop("reduceOnly", None)  # implied
        (rep,) = yield Req((m.QueryAccount(account=self._account()),))
        ev = next(e for e in raise_for(rep.events) if type(e) is m.AccountUpdate)
        lots = next((p.qty for p in ev.positions if p.symbol == mid), 0)
        if not lots:
            raise E.InvalidOrder(f"{self.id} closePosition() no open {symbol} position")
        close_side = "sell" if lots > 0 else "buy"
        if side is not None and str(side).lower() != close_side:
            raise E.InvalidOrder(f"{self.id} closePosition() the {symbol} position closes with a {close_side}, "
                                 f"not a {side}")
        amount = self._meta[mid].qty(abs(lots))
        order = yield from self._g_create_order(symbol, "market", close_side, amount, None,
                                                {**params, "reduceOnly": True})
        return order

    @params_read()
    def _g_edit_order(self, id, symbol: str, type: str | None = None, side: str | None = None, amount=None,
                      price=None, params=None):
        """Amend in place: ``amount`` is the new total amount (CCXT), sent
        to the venue as the new remaining amount (total − filled); a smaller
        remaining keeps time priority, a new price or a larger one does not."""
        yield from self._g_load_markets()
        mid = self.market(symbol)["id"]
        oid = _order_id(id)
        qty = None
        if amount is not None:
            rec = self._orders.get(oid)
            if rec is None:
                yield from self._g_open_views(mid)
                rec = self._orders.get(oid)
            filled = rec.filled if rec is not None else Decimal(0)
            rest = dec(self.amount_to_precision(mid, amount)) - filled
            if rest <= 0:
                raise E.InvalidOrder(f"{self.id} editOrder() amount {amount} is not above the filled {fmt(filled)}")
            qty = rest
        px = None if price is None else self.price_to_precision(mid, price)
        cmd = self._core.amend_cmd(mid, oid, qty=qty, price=px, account=self._account())
        (rep,) = yield Req((cmd,))
        self._apply(raise_for(rep.events))
        return self._order_dict(self._orders[oid])

    @params_read('clientOrderId')
    def _g_cancel_order(self, id, symbol: str | None = None, params=None):
        yield from self._g_load_markets()
        params = dict(params or {})
        cid = params.pop("clientOrderId", None)
        oid = None if id is None else _order_id(id)
        if oid is None and cid is None:
            raise E.ArgumentsRequired(f"{self.id} cancelOrder() requires an id or params['clientOrderId']")
        cmd = self._core.cancel_cmd(oid, None if cid is None else str(cid), account=self._account())
        (rep,) = yield Req((cmd,))
        evs = raise_for(rep.events)
        self._apply(evs)
        ev = next((e for e in evs if type(e) is m.OrderCancelled), None)
        if ev is None:
            raise E.BadResponse(f"{self.id} unexpected reply to a cancel: {evs!r}")
        return self._order_dict(self._orders[ev.order_id])

    @params_read()
    def _g_cancel_all_orders(self, symbol: str | None = None, params=None):
        yield from self._g_load_markets()
        mid = None if symbol is None else self.market(symbol)["id"]
        (rep,) = yield Req((m.CancelAll(account=self._account(), symbol=mid),))
        evs = raise_for(rep.events)
        self._apply(evs)
        return [self._order_dict(self._orders[e.order_id]) for e in evs if type(e) is m.OrderCancelled]

    def _g_open_views(self, mid: str | None):
        """Barrier: the venue's open orders, then every push sent before
        them (so the cache is at least as new as the answer)."""
        (rep,) = yield Req((m.QueryOpenOrders(account=self._account(), symbol=mid),))
        evs = raise_for(rep.events)
        pushed = yield DRAIN
        self._on_pushed(pushed)
        views = [o for ev in evs if type(ev) is m.OpenOrders for o in ev.orders]
        return [self._from_view(v) for v in views]

    @params_read()
    def _g_fetch_open_orders(self, symbol: str | None = None, since=None, limit=None, params=None):
        yield from self._g_load_markets()
        mid = None if symbol is None else self.market(symbol)["id"]
        recs = yield from self._g_open_views(mid)
        return _since_limit([self._order_dict(r) for r in recs], since, limit)

    def _g_account_and_explain(self):
        acct = self._account()
        rep, ex_rep = yield Req((m.QueryAccount(account=acct), m.QueryExplain(account=acct)))
        ev = next(e for e in raise_for(rep.events) if type(e) is m.AccountUpdate)
        explain = next((e for e in raise_for(ex_rep.events) if type(e) is m.Explain), None)
        self._account_ev = ev
        return ev, explain

    @params_read()
    def _g_fetch_positions(self, symbols=None, params=None):
        yield from self._g_load_markets()
        ev, explain = yield from self._g_account_and_explain()
        return self._positions(ev, explain, symbols)

    @params_read()
    def _g_fetch_position(self, symbol: str, params=None):
        positions = yield from self._g_fetch_positions([symbol])
        if positions:
            return positions[0]
        return self._positions(self._account_ev, None, [symbol], closed=(self.market(symbol)["id"],))[0]

    @params_read()
    def _g_fetch_margin_mode(self, symbol: str | None = None, params=None):
        yield from self._g_load_markets()
        (rep,) = yield Req((m.QueryAccount(account=self._account()),))
        ev = next(e for e in raise_for(rep.events) if type(e) is m.AccountUpdate)
        mode = str(getattr(ev.margin_mode, "value", ev.margin_mode))
        return {"info": {"account": ev.account, "margin_mode": mode},
                "symbol": None if symbol is None else self.market(symbol)["symbol"], "marginMode": mode}

    @params_read()
    def _g_set_margin_mode(self, marginMode: str, symbol: str | None = None, params=None):
        mode = str(marginMode).lower()
        if mode == "crossed":
            mode = "cross"
        if mode not in _VENUE_MODES:
            raise E.BadRequest(f"{self.id} setMarginMode() marginMode must be cross, isolated or portfolio, "
                               f"not {marginMode!r}")
        current = yield from self._g_fetch_margin_mode(symbol)
        sym = current["symbol"]
        if current["marginMode"] == mode:
            return {"info": {**current["info"], "changed": False}, "symbol": sym, "marginMode": mode}
        (rep,) = yield Req((m.SetMarginMode(account=self._account(), mode=m.MarginMode(mode)),))
        evs = raise_for(rep.events)
        self._apply(evs)
        changed = next((e for e in evs if type(e) is m.MarginModeChanged), None)
        return {"info": {**(builtins(changed) if changed else {}), "changed": True}, "symbol": sym,
                "marginMode": mode}

    @params_read()
    def _g_modify_margin(self, symbol: str, amount, kind: str, params=None):
        yield from self._g_load_markets()
        mkt = self.market(symbol)
        settle = mkt["settle"]
        minor = self._mk.minor(settle, self.currency_to_precision(settle, amount))
        if minor <= 0:
            raise E.BadRequest(f"{self.id} {kind}Margin() amount must be positive")
        (rep,) = yield Req((m.AdjustIsolatedMargin(account=self._account(), symbol=mkt["id"],
                                                   delta=minor if kind == "add" else -minor),))
        evs = raise_for(rep.events)
        self._apply(evs)
        ev = next(e for e in evs if type(e) is m.IsolatedMarginChanged)
        ts = now_ms()
        return {"info": builtins(ev), "symbol": mkt["symbol"], "type": kind, "marginMode": "isolated",
                "amount": float(self._mk.settle(abs(ev.delta))), "total": float(self._mk.settle(ev.allocated)),
                "code": settle, "status": "ok", "timestamp": ts, "datetime": iso8601(ts)}

    # --- history: market and account history asked of the venue
    # (docs/history.md), never a per-object cache: a restart of the bot or of
    # the venue changes nothing. Shapes: ccxt's, from Binance USD-M's klines,
    # ticker/24hr, premiumIndex, fundingRate, allOrders and userTrades.

    timeframes = {tf: tf for tf in ("1m", "5m", "15m", "1h", "4h", "1d")}  # the venue's candle intervals
    # ``has`` as above, with what the venue's history answers (a copy, so the
    # table above stays the one place for everything else)
    has = {**has, "fetchOHLCV": True, "fetchMarkOHLCV": True, "fetchIndexOHLCV": True, "fetchTrades": True,
           "fetchMyTrades": True, "fetchOrder": True, "fetchOrders": True, "fetchClosedOrders": True,
           "fetchCanceledOrders": True, "fetchTicker": True, "fetchTickers": True, "fetchFundingRate": True,
           "fetchFundingRates": True, "fetchFundingRateHistory": True}

    @params_read()
    def _g_fetch_ticker(self, symbol: str, params=None):
        yield from self._g_load_markets()
        (rep,) = yield Req((m.QueryTicker(symbol=self.market(symbol)["id"]),), auth=False)
        (t,) = raise_for(rep.events)
        return self._ticker_dict(t)

    @params_read()
    def _g_fetch_tickers(self, symbols=None, params=None):
        yield from self._g_load_markets()
        ids = {self.market(s)["id"] for s in symbols} if symbols else set(self.ids)
        (rep,) = yield Req((m.QueryTicker(),), auth=False)
        (all_,) = raise_for(rep.events)
        return {d["symbol"]: d for d in (self._ticker_dict(t) for t in all_.tickers if t.symbol in ids)}

    @params_read()
    def _g_fetch_trades(self, symbol: str, since: int | None = None, limit: int | None = None, params=None):
        yield from self._g_load_markets()
        mid = self.market(symbol)["id"]
        (rep,) = yield Req((m.QueryTrades(symbol=mid, limit=1000),), auth=False)
        (got,) = raise_for(rep.events)
        ins = self._meta[mid]
        trades = [self._public_trade_dict(ev, ins.price(ev.price), ins.qty(ev.qty), _ms(ev.ts)) for ev in got.trades]
        return _since_first(trades, since, limit)

    @params_read("price", "until")
    def _g_fetch_ohlcv(self, symbol: str, timeframe: str = "1m", since: int | None = None, limit: int | None = None,
                       params=None):
        """``[[open time ms, open, high, low, close, volume]]``; ``params``:
        ``price`` mark or index (Binance's markPriceKlines /
        indexPriceKlines), ``until`` (ms, inclusive)."""
        yield from self._g_load_markets()
        params = params or {}
        if timeframe not in self.timeframes:
            raise E.BadRequest(f"{self.id} fetchOHLCV() timeframe {timeframe!r} is not one of "
                               f"{', '.join(self.timeframes)}")
        price = params.get("price", "last")
        if price not in ("last", "mark", "index"):
            raise E.BadRequest(f"{self.id} fetchOHLCV() params['price'] must be 'mark' or 'index', not {price!r}")
        mid = self.market(symbol)["id"]
        until = params.get("until")
        cmd = m.QueryCandles(symbol=mid, interval=m.CandleInterval(timeframe), source=m.PriceSource(price),
                             start=None if since is None else int(since) * 1_000_000,
                             end=None if until is None else int(until) * 1_000_000 + 999_999,
                             limit=_cap(limit, 1500, 500))
        (rep,) = yield Req((cmd,), auth=False)
        return [[c.open_time // 1_000_000, fl(c.open), fl(c.high), fl(c.low), fl(c.close), fl(c.volume)]
                for c in self._mk_history(raise_for(rep.events))]

    def _g_fetch_mark_ohlcv(self, symbol, timeframe="1m", since=None, limit=None, params=None):
        return (yield from self._g_fetch_ohlcv(symbol, timeframe, since, limit, {**(params or {}), "price": "mark"}))

    def _g_fetch_index_ohlcv(self, symbol, timeframe="1m", since=None, limit=None, params=None):
        return (yield from self._g_fetch_ohlcv(symbol, timeframe, since, limit, {**(params or {}), "price": "index"}))

    @params_read()
    def _g_fetch_funding_rate(self, symbol: str, params=None):
        yield from self._g_load_markets()
        (rep,) = yield Req((m.QueryPremiumIndex(symbol=self.market(symbol)["id"]),), auth=False)
        (p,) = raise_for(rep.events)
        return self._funding_rate_dict(p)

    @params_read()
    def _g_fetch_funding_rates(self, symbols=None, params=None):
        yield from self._g_load_markets()
        ids = {self.market(s)["id"] for s in symbols} if symbols else set(self.ids)
        (rep,) = yield Req((m.QueryPremiumIndex(),), auth=False)
        (all_,) = raise_for(rep.events)
        return {d["symbol"]: d for d in (self._funding_rate_dict(p) for p in all_.items if p.symbol in ids)}

    @params_read("until")
    def _g_fetch_funding_rate_history(self, symbol: str | None = None, since: int | None = None,
                                      limit: int | None = None, params=None):
        yield from self._g_load_markets()
        until = (params or {}).get("until")
        cmd = m.QueryFundingHistory(symbol=None if symbol is None else self.market(symbol)["id"],
                                    start=None if since is None else int(since) * 1_000_000,
                                    end=None if until is None else int(until) * 1_000_000 + 999_999,
                                    limit=_cap(limit, 1000, 100))
        (rep,) = yield Req((cmd,), auth=False)
        (got,) = raise_for(rep.events)
        return [{"info": builtins(r), "symbol": self._sym(r.symbol), "fundingRate": float(r.rate_e8) / 1e8,
                 "timestamp": _ms(r.ts), "datetime": iso8601(_ms(r.ts))} for r in got.rates]

    @params_read()
    def _g_fetch_my_trades(self, symbol=None, since=None, limit=None, params=None):
        yield from self._g_load_markets()
        cmd = m.QueryMyTrades(account=self._account(), symbol=None if symbol is None else self.market(symbol)["id"],
                              start=None if since is None else int(since) * 1_000_000, limit=_cap(limit, 1000, 500))
        (rep,) = yield Req((cmd,))
        (got,) = raise_for(rep.events)
        return [self._fill_dict(f) for f in got.trades]

    @params_read("clientOrderId")
    def _g_fetch_order(self, id, symbol: str | None = None, params=None):
        """The order, open or ended, from the venue; ``trades`` and ``fee``
        from the account's fills the venue still holds for it."""
        yield from self._g_load_markets()
        cid = (params or {}).get("clientOrderId")
        oid = None if id is None else _order_id(id)
        if oid is None and cid is None:
            raise E.ArgumentsRequired(f"{self.id} fetchOrder() requires an id or params['clientOrderId']")
        acct = self._account()
        (rep,) = yield Req((m.QueryOrder(account=acct, order_id=oid, client_order_id=None if oid is not None else cid),))
        (o,) = raise_for(rep.events)
        fills = []
        if o.filled:
            (rep,) = yield Req((m.QueryMyTrades(account=acct, symbol=o.symbol, start=o.time, limit=1000),))
            (got,) = raise_for(rep.events)
            fills = [f for f in got.trades if f.order_id == o.order_id]
        return self._record_dict(o, fills)

    def _g_history_orders(self, symbol, since, limit, statuses, with_open: bool):
        yield from self._g_load_markets()
        mid = None if symbol is None else self.market(symbol)["id"]
        out = []
        if with_open:
            out = [self._order_dict(r) for r in (yield from self._g_open_views(mid))]
        cmd = m.QueryOrderHistory(account=self._account(), symbol=mid,
                                  start=None if since is None else int(since) * 1_000_000,
                                  limit=_cap(limit, 1000, 500))
        (rep,) = yield Req((cmd,))
        (got,) = raise_for(rep.events)
        out += [d for d in (self._record_dict(o) for o in got.orders) if d["status"] in statuses]
        out.sort(key=lambda d: (d["timestamp"] or 0, int(d["id"])))
        return _since_first(out, since, limit)

    @params_read()
    def _g_fetch_orders(self, symbol=None, since=None, limit=None, params=None):
        """Open orders and the ended ones the venue holds (its ``[history]`` limit)."""
        return (yield from self._g_history_orders(symbol, since, limit, _ENDED, True))

    @params_read()
    def _g_fetch_closed_orders(self, symbol=None, since=None, limit=None, params=None):
        """Every ended order (filled, cancelled, expired, rejected), as this facade always listed them."""
        return (yield from self._g_history_orders(symbol, since, limit, _ENDED, False))

    @params_read()
    def _g_fetch_canceled_orders(self, symbol=None, since=None, limit=None, params=None):
        return (yield from self._g_history_orders(symbol, since, limit, ("canceled",), False))

    def _mk_history(self, events):
        (ev,) = events
        return models.history(self._mk, ev)

    def _ticker_dict(self, t: m.Ticker) -> dict:
        """A ccxt ticker from the venue's rolling 24 hours; ``last`` is the
        last trade (the mark if nothing ever traded: ``info["lastSource"]``)."""
        h = models.history(self._mk, t)
        last, source = (h.last, "trade") if h.last is not None else (h.mark, "mark")
        ts = now_ms()
        return {
            "symbol": self._sym(t.symbol), "timestamp": ts, "datetime": iso8601(ts), "high": fl(h.high),
            "low": fl(h.low), "bid": fl(h.bid), "bidVolume": fl(h.bid_qty) if h.bid is not None else None,
            "ask": fl(h.ask), "askVolume": fl(h.ask_qty) if h.ask is not None else None, "vwap": fl(h.vwap),
            "open": fl(h.open), "close": fl(last), "last": fl(last), "previousClose": None, "change": fl(h.change),
            "percentage": fl(h.percentage), "average": fl((h.open + last) / 2) if h.open is not None else None,
            "baseVolume": float(h.volume), "quoteVolume": float(h.quote_volume), "markPrice": fl(h.mark),
            "indexPrice": fl(h.index),
            "info": {**builtins(t), "lastSource": source},
        }

    def _funding_rate_dict(self, p: m.PremiumIndex) -> dict:
        """ccxt's funding-rate structure from Binance's premiumIndex fields:
        ``fundingRate`` is the rate the next settlement would apply now,
        ``previousFundingRate`` the last one applied."""
        h = models.history(self._mk, p)
        nxt = None if h.next_funding_time is None else _ms(h.next_funding_time)
        ts = _ms(h.ts)
        hours = h.interval_ns // 3_600_000_000_000 or 8
        return {
            "info": builtins(p), "symbol": self._sym(p.symbol), "markPrice": fl(h.mark), "indexPrice": fl(h.index),
            "interestRate": float(h.interest_rate), "estimatedSettlePrice": None, "timestamp": ts,
            "datetime": iso8601(ts), "fundingRate": float(h.predicted_funding_rate), "fundingTimestamp": nxt,
            "fundingDatetime": iso8601(nxt), "nextFundingRate": None, "nextFundingTimestamp": None,
            "nextFundingDatetime": None, "previousFundingRate": float(h.last_funding_rate),
            "previousFundingTimestamp": None if nxt is None else nxt - hours * 3_600_000,
            "previousFundingDatetime": None if nxt is None else iso8601(nxt - hours * 3_600_000),
            "interval": f"{hours}h",
        }

    def _fill_dict(self, ev: m.Fill) -> dict:
        """A ccxt trade from one of the account's fills in the venue's history."""
        ins = self._meta[ev.symbol]
        price, qty, fee = ins.price(ev.price), ins.qty(ev.qty), self._mk.settle(ev.fee)
        rate = ins.maker_fee if ev.liquidity.value == "maker" else ins.taker_fee
        fee_d = {"cost": float(fee), "currency": ins.settlement, "rate": float(rate)}
        ts = _ms(ev.ts)
        return {
            "info": builtins(ev), "id": str(ev.trade_id), "order": str(ev.order_id), "timestamp": ts,
            "datetime": iso8601(ts), "symbol": self._sym(ev.symbol), "type": None, "side": ev.side.value,
            "takerOrMaker": ev.liquidity.value, "price": float(price), "amount": float(qty),
            "cost": float(price * qty), "fee": fee_d, "fees": [dict(fee_d)],
        }

    def _record_dict(self, o: m.OrderRecord, fills=()) -> dict:
        """A ccxt order from the venue's record of it. Cancelled and expired
        are both ccxt's ``canceled`` (``info["status"]`` tells them apart)."""
        r = models.order_record(self._mk, o)
        ins = self._meta[o.symbol]
        status = _CCXT_STATUS[r.status]
        cost = o.filled_quote * ins.tick_size * ins.lot_size
        trades = [self._fill_dict(f) for f in fills]
        fee = None
        if trades:
            fee = {"cost": float(sum(self._mk.settle(f.fee) for f in fills)), "currency": ins.settlement}
        last_trade = trades[-1]["timestamp"] if trades else None
        stop = fl(r.stop_price)
        tif = _TIF_OUT.get(r.tif)
        return {
            "id": str(o.order_id), "clientOrderId": r.client_order_id, "timestamp": _ms(o.time),
            "datetime": iso8601(_ms(o.time)), "lastTradeTimestamp": last_trade,
            "lastUpdateTimestamp": _ms(o.update_time), "symbol": self._sym(o.symbol), "type": _ccxt_type(r.type),
            "timeInForce": tif, "postOnly": r.tif == "post_only", "reduceOnly": r.reduce_only, "side": r.side,
            "price": fl(r.price), "triggerPrice": stop, "stopPrice": stop, "stopLossPrice": None,
            "takeProfitPrice": None, "amount": float(r.qty), "cost": float(cost), "average": fl(r.avg_price),
            "filled": float(r.filled), "remaining": float(r.remaining), "status": status, "fee": fee,
            "fees": [dict(fee)] if fee else [], "trades": trades,
            "info": {"order_id": o.order_id, "symbol": o.symbol, "type": r.type, "tif": r.tif, "status": r.status,
                     "stop_price": None if r.stop_price is None else str(r.stop_price), "triggered": r.triggered,
                     "cancel_cause": r.cause, "reject_reason": r.reject_reason},
        }
    # --- ccxt facade: base helpers, batch orders, status (issue 14)

    @params_read()
    def _g_fetch_l2_order_book(self, symbol: str, limit: int | None = None, params=None):
        """ccxt's ``fetch_l2_order_book``: the book with equal prices summed
        (the venue's book is already L2, so it is ``fetch_order_book``)."""
        book = yield from self._g_fetch_order_book(symbol, limit)
        return {**book, "bids": helpers.sort_by(helpers.aggregate(book["bids"]), 0, True),
                "asks": helpers.sort_by(helpers.aggregate(book["asks"]), 0)}

    @params_read()
    def _g_fetch_status(self, params=None):
        """``ok`` when the venue answers (a venue that does not raises
        RequestTimeout / ExchangeNotAvailable, as ccxt does for a dead API)."""
        (rep,) = yield Req((m.QueryInstruments(),), auth=False)
        (info,) = raise_for(rep.events)
        ts = now_ms()
        return {"status": "ok", "updated": ts, "eta": None, "url": None,
                "info": {"protocol_version": info.protocol_version, "instruments": len(info.instruments)}}

    _ORDER_REQUEST_KEYS = ("symbol", "type", "side", "amount", "price", "params")

    @params_read()
    def _g_create_orders(self, orders, params=None):
        """ccxt's batch ``create_orders([{symbol, type, side, amount, price,
        params}, ...])``: every order is checked first (a bad one raises and
        nothing is sent), then all are sent pipelined. The answer is one
        order per request, in order; one the venue refused has ``status``
        ``"rejected"``, ``id`` None and the refusal in ``info`` (``reason``,
        ``message``), as ccxt's exchanges report a failed item of a batch."""
        yield from self._g_load_markets()
        if not isinstance(orders, (list, tuple)) or not orders:
            raise E.BadRequest(f"{self.id} createOrders() orders must be a non-empty list of order requests")
        pending = []
        for i, req in enumerate(orders):
            if not isinstance(req, dict):
                raise E.BadRequest(f"{self.id} createOrders() orders[{i}] must be a dict, not {type(req).__name__}")
            unknown = sorted(set(req) - set(self._ORDER_REQUEST_KEYS))
            if unknown:
                raise E.BadRequest(f"{self.id} createOrders() orders[{i}] unknown key(s) {unknown}: an order "
                                   f"request has {', '.join(self._ORDER_REQUEST_KEYS)}")
            missing = [k for k in ("symbol", "type", "side", "amount") if req.get(k) is None]
            if missing:
                raise E.ArgumentsRequired(f"{self.id} createOrders() orders[{i}] requires {', '.join(missing)}")
        for req in orders:
            gen = self._g_create_order(req["symbol"], req["type"], req["side"], req["amount"], req.get("price"),
                                       req.get("params"))
            op = next(gen)  # builds and checks the order; raises before anything is sent
            if op is DRAIN or not isinstance(op, Req):
                raise E.BadResponse(f"{self.id} createOrders() internal: an order that sends nothing first")
            pending.append((gen, op, req))
        replies = yield Req(tuple(cmd for _, op, _ in pending for cmd in op.cmds))
        out, at = [], 0
        for gen, op, req in pending:
            answer, at = replies[at:at + len(op.cmds)], at + len(op.cmds)
            try:
                while True:  # a create_order that needs more round trips gets them, one by one
                    nxt = gen.send(answer)
                    answer = yield nxt
            except StopIteration as stop:
                out.append(stop.value)
            except E.BaseError as exc:
                out.append(self._rejected_order(req, exc))
            except ClientError as exc:
                out.append(self._rejected_order(req, E.translate(exc, self.id)))
        return out

    def _rejected_order(self, req: dict, exc: Exception) -> dict:
        ts = now_ms()
        side = str(req.get("side", "")).lower() or None
        return {
            "id": None, "clientOrderId": (req.get("params") or {}).get("clientOrderId"), "timestamp": ts,
            "datetime": iso8601(ts), "lastTradeTimestamp": None, "lastUpdateTimestamp": ts,
            "symbol": self.market(req["symbol"])["symbol"], "type": str(req.get("type")).lower(),
            "timeInForce": None, "postOnly": None, "reduceOnly": None, "side": side,
            "price": fl(None if req.get("price") is None else dec(req["price"], "price")), "triggerPrice": None,
            "stopPrice": None, "stopLossPrice": None, "takeProfitPrice": None,
            "amount": float(dec(req["amount"], "amount")), "cost": 0.0, "average": None, "filled": 0.0,
            "remaining": 0.0, "status": "rejected", "fee": None, "fees": [], "trades": [],
            "info": {"reason": getattr(exc, "reason", None), "message": str(exc), "error": type(exc).__name__},
        }
    # --- leverage (Binance semantics: per account and symbol, bounded by notional tiers)

    def _leverage_dict(self, s: m.SymbolLeverage, mode: str) -> dict:
        return {"info": builtins(s), "symbol": self._sym(s.symbol), "marginMode": mode,
                "longLeverage": s.leverage, "shortLeverage": s.leverage}

    def _tiers_list(self, s: m.SymbolLeverageTiers) -> list[dict]:
        settle = self._meta[s.symbol].settlement
        return [{"tier": t.bracket, "symbol": self._sym(s.symbol), "currency": settle,
                 "minNotional": t.notional_floor, "maxNotional": t.notional_cap,
                 "maintenanceMarginRate": t.mm_rate, "maxLeverage": t.max_leverage, "info": builtins(t)}
                for t in s.tiers]

    @params_read()
    def _g_set_leverage(self, leverage, symbol: str | None = None, params=None):
        if symbol is None:
            raise E.ArgumentsRequired(f"{self.id} setLeverage() requires a symbol argument")
        yield from self._g_load_markets()
        mkt = self.market(symbol)
        try:
            whole = not isinstance(leverage, (bool, str)) and int(leverage) == leverage
        except (TypeError, ValueError, OverflowError):
            whole = False
        if not whole:
            raise E.BadRequest(f"{self.id} setLeverage() leverage must be a whole number, not {leverage!r}")
        (rep,) = yield Req((m.SetLeverage(account=self._account(), symbol=mkt["id"], leverage=int(leverage)),))
        evs = raise_for(rep.events)
        self._apply(evs)
        ev = next(e for e in evs if type(e) is m.LeverageChanged)
        return {"info": builtins(ev), "symbol": mkt["symbol"], "leverage": ev.leverage,
                "maxLeverage": ev.max_leverage}

    @params_read()
    def _g_fetch_leverages(self, symbols=None, params=None):
        yield from self._g_load_markets()
        acct = self._account()
        rep, acc_rep = yield Req((m.QueryLeverage(account=acct), m.QueryAccount(account=acct)))
        ev = next(e for e in raise_for(rep.events) if type(e) is m.Leverage)
        upd = next(e for e in raise_for(acc_rep.events) if type(e) is m.AccountUpdate)
        mode = str(getattr(upd.margin_mode, "value", upd.margin_mode))
        wanted = None if symbols is None else {self.market(s)["id"] for s in symbols}
        return {self._sym(s.symbol): self._leverage_dict(s, mode) for s in ev.symbols
                if wanted is None or s.symbol in wanted}

    @params_read()
    def _g_fetch_leverage(self, symbol: str, params=None):
        out = yield from self._g_fetch_leverages([symbol])
        return out[self.market(symbol)["symbol"]]

    @params_read()
    def _g_fetch_leverage_tiers(self, symbols=None, params=None):
        yield from self._g_load_markets()
        wanted = None if symbols is None else {self.market(s)["id"] for s in symbols}
        (rep,) = yield Req((m.QueryLeverageTiers(),))
        ev = next(e for e in raise_for(rep.events) if type(e) is m.LeverageTiers)
        return {self._sym(s.symbol): self._tiers_list(s) for s in ev.symbols if wanted is None or s.symbol in wanted}

    @params_read()
    def _g_fetch_market_leverage_tiers(self, symbol: str, params=None):
        yield from self._g_load_markets()
        (rep,) = yield Req((m.QueryLeverageTiers(symbol=self.market(symbol)["id"]),))
        ev = next(e for e in raise_for(rep.events) if type(e) is m.LeverageTiers)
        return self._tiers_list(ev.symbols[0])


def liquidation_price(mode: str, qty: float, mark: float, entry: float, mm: float, equity: float, acct_mm: float,
                      underlying_collateral: float, isolated_margin: float) -> float | None:
    """An estimate of the mark at which the account (cross, portfolio) or
    the position (isolated) reaches its maintenance margin, everything else
    held still. None when no move of this price alone gets there (a hedged
    book) or the answer is not a positive price.

    Cross / portfolio: with ``x`` the relative move of this instrument's
    price (and of its underlying's index, which the mark follows),

        equity(x) = equity + qty·mark·x + C·x          (C: the underlying held
                                                        as collateral, counted
                                                        after haircut)
        MM(x)     = MM + mm·x                          (the position's MM
                                                        grows with its notional)

    and equity(x) = MM(x) at x* = −(equity − MM) / (qty·mark + C − mm); the
    price is mark·(1 + x*). Ignored: tier steps of the MM and haircut
    brackets crossed on the way, moves of other prices, funding, fees, and
    (portfolio) offsets between positions, beyond the position's own share
    of the requirement.

    Isolated: the position's allocated margin plus its PnL meets its MM:
    alloc + qty·(P − entry) = mm·P/mark, so P = (qty·entry − alloc) /
    (qty − mm/mark).
    """
    if qty == 0 or mark <= 0:
        return None
    if mode == "isolated":
        den = qty - mm / mark
        if den == 0:
            return None
        price = (qty * entry - isolated_margin) / den
    else:
        slope = qty * mark + underlying_collateral - mm
        if slope == 0:
            return None
        price = mark * (1 - (equity - acct_mm) / slope)
    return price if price > 0 and price == price and price != float("inf") else None


_UNIFIED_PREFIXES = ("fetch_", "create_", "cancel_", "edit_", "set_", "watch_", "un_watch_", "close_", "withdraw",
                     "transfer", "borrow_", "repay_", "add_", "reduce_")


def _snake(name: str) -> str:
    return re.sub(r"(?<!^)(?=[A-Z])", "_", name).lower() if any(c.isupper() for c in name) else name


def _camel(name: str) -> str:
    head, *rest = name.split("_")
    return head + "".join(w.capitalize() for w in rest)


def _ccxt_type(venue_type: str | None) -> str | None:
    if venue_type is None:
        return None
    return "market" if venue_type in _MARKET_TYPES else "limit"


_MARKET_TYPES = ("market", "stop_market", "take_profit_market", "trailing_stop_market")
_STOP_TYPES = ("stop_market", "stop_limit")
_TP_TYPES = ("take_profit_market", "take_profit_limit")


# --- protective orders (docs/adr/0011-protective-orders.md)
_WORKING_IN = {"MARK_PRICE": "mark_price", "CONTRACT_PRICE": "contract_price", "MARK": "mark_price",
               "LAST": "contract_price", "LAST_PRICE": "contract_price", "MARKPRICE": "mark_price",
               "LASTPRICE": "contract_price"}


def _working(exchange_id: str, name: str, value) -> str:
    w = _WORKING_IN.get(str(value).upper())
    if w is None:
        raise E.BadRequest(f"{exchange_id} createOrder() params['{name}'] must be 'mark' or 'last' "
                           f"(MARK_PRICE or CONTRACT_PRICE), not {value!r}; index-price triggers are not supported")
    return w


def _attached(exchange_id: str, name: str, spec, working: str | None) -> dict:
    """ccxt's ``stopLoss`` / ``takeProfit`` param: a trigger price, or a dict
    ``{triggerPrice, price?, type? ('market' | 'limit')}``; every key is read
    or refused."""
    if not isinstance(spec, dict):
        spec = {"triggerPrice": spec}
    unknown = sorted(set(spec) - {"triggerPrice", "price", "type"})
    if unknown:
        raise E.BadRequest(f"{exchange_id} createOrder() params['{name}'] unknown key '{unknown[0]}': it reads "
                           "triggerPrice, price, type")
    trig = spec.get("triggerPrice")
    if trig is None:
        raise E.ArgumentsRequired(f"{exchange_id} createOrder() params['{name}'] needs a triggerPrice")
    kind = str(spec.get("type", "limit" if spec.get("price") is not None else "market")).lower()
    price = spec.get("price")
    if kind not in ("market", "limit") or (kind == "limit") != (price is not None):
        raise E.InvalidOrder(f"{exchange_id} createOrder() params['{name}']: a 'limit' {name} needs a price, a "
                             f"'market' one takes none (got type {kind!r}, price {price!r})")
    return {"trigger_price": trig, "price": price, "working_type": working or "mark_price"}


def protective_params(exchange_id: str, params: dict) -> dict:
    """Pop the protective-order params from ``params`` (createOrder's) and
    say what the venue order is: ``trigger`` (its stop price), ``conditional``
    ((market type, limit type, the param's name) or None), ``reduce_only``
    (a stop-loss / take-profit closes), and the keyword arguments
    ``new_order_cmd`` takes for the rest. At most one trigger kind."""
    trigger = params.pop("triggerPrice", None)
    stop = params.pop("stopPrice", None)
    sl_price = params.pop("stopLossPrice", None)
    tp_price = params.pop("takeProfitPrice", None)
    trailing = params.pop("trailingPercent", None)
    activation = params.pop("trailingTriggerPrice", None)
    wt, tt = params.pop("workingType", None), params.pop("triggerType", None)
    close = params.pop("closePosition", False)
    sl, tp = params.pop("stopLoss", None), params.pop("takeProfit", None)
    working = None
    for name, value in (("workingType", wt), ("triggerType", tt)):
        if value is not None:
            w = _working(exchange_id, name, value)
            if working is not None and w != working:
                raise E.BadRequest(f"{exchange_id} createOrder() workingType and triggerType disagree")
            working = w
    if trigger is None:
        trigger = stop
    kinds = [(n, v) for n, v in (("triggerPrice", trigger), ("stopLossPrice", sl_price),
                                 ("takeProfitPrice", tp_price), ("trailingPercent", trailing)) if v is not None]
    if len(kinds) > 1:
        raise E.InvalidOrder(f"{exchange_id} createOrder() give one of triggerPrice, stopLossPrice, takeProfitPrice, "
                             f"trailingPercent, not {' and '.join(n for n, _ in kinds)}")
    out: dict = {"trigger": None, "conditional": None, "reduce_only": False}
    if kinds:
        name, value = kinds[0]
        if name == "trailingPercent":
            out["conditional"] = ("trailing_stop_market", None, name)
            out["callback_rate"] = value
        else:
            out["trigger"] = value
            out["conditional"] = (("take_profit_market", "take_profit_limit", name) if name == "takeProfitPrice"
                                  else ("stop_market", "stop_limit", name))
            out["reduce_only"] = name != "triggerPrice"  # ccxt: stop-loss / take-profit orders close
    if activation is not None:
        if trailing is None:
            raise E.ArgumentsRequired(f"{exchange_id} createOrder() trailingTriggerPrice needs trailingPercent")
        out["activation_price"] = activation
    if working is not None:
        if not kinds and sl is None and tp is None:
            raise E.InvalidOrder(f"{exchange_id} createOrder() workingType / triggerType apply to trigger orders "
                                 "and attached stopLoss / takeProfit only")
        if kinds:
            out["working_type"] = working
    if close:
        if close is not True or out["conditional"] is None or out["conditional"][0] == "trailing_stop_market":
            raise E.InvalidOrder(f"{exchange_id} createOrder() closePosition=True goes with a stopLossPrice, "
                                 "takeProfitPrice or triggerPrice market order")
        out["close_position"] = True
        out["reduce_only"] = False  # implied by the venue; it refuses both
    if (sl is not None or tp is not None) and kinds:
        raise E.InvalidOrder(f"{exchange_id} createOrder() stopLoss / takeProfit attach to a limit or market entry, "
                             "not to a trigger order")
    if sl is not None:
        out["stop_loss"] = _attached(exchange_id, "stopLoss", sl, working)
    if tp is not None:
        out["take_profit"] = _attached(exchange_id, "takeProfit", tp, working)
    return out


def _since_limit(items: list[dict], since: int | None, limit: int | None) -> list[dict]:
    if since is not None:
        items = [x for x in items if (x.get("timestamp") or 0) >= since]
    if limit is not None:
        items = items[-int(limit):] if limit > 0 else []
    return items


# --- history
_CCXT_STATUS = {"new": "open", "partially_filled": "open", "filled": "closed", "cancelled": "canceled",
                "expired": "canceled", "rejected": "rejected"}
_ENDED = ("closed", "canceled", "rejected")


def _ms(ns: int) -> int:
    """Venue time (ns) -> ccxt's milliseconds."""
    return ns // 1_000_000


def _cap(limit, hi: int, default: int) -> int:
    """ccxt's ``limit`` as a venue row count: 1..``hi``."""
    if limit is None:
        return default
    if not isinstance(limit, int) or isinstance(limit, bool) or limit <= 0:
        raise E.BadRequest(f"limit must be a positive integer, not {limit!r}")
    return min(limit, hi)


def _since_first(items: list[dict], since: int | None, limit: int | None) -> list[dict]:
    """ccxt's since/limit: from ``since`` the first ``limit`` items, else the last ``limit``."""
    if since is not None:
        items = [x for x in items if (x.get("timestamp") or 0) >= since]
        return items[:limit] if limit is not None else items
    return items[-limit:] if limit is not None and limit > 0 else ([] if limit is not None else items)


#: the unified methods each subclass wraps: public name -> generator name
METHODS = (
    "load_markets", "fetch_markets", "fetch_currencies", "fetch_time", "fetch_ticker", "fetch_tickers",
    "fetch_order_book", "fetch_trades", "fetch_balance", "create_order", "edit_order", "cancel_order",
    "cancel_all_orders", "fetch_order", "fetch_open_orders", "fetch_orders", "fetch_closed_orders",
    "fetch_canceled_orders", "fetch_my_trades", "fetch_positions", "fetch_position", "fetch_margin_mode",
    "set_margin_mode",
    # --- leverage
    "set_leverage", "fetch_leverage", "fetch_leverages", "fetch_leverage_tiers", "fetch_market_leverage_tiers",
    # --- protective orders
    "close_position",
)
# --- ccxt facade (issue 14)
METHODS += ("fetch_l2_order_book", "fetch_status", "create_orders")

# ccxt's base helpers as static methods of the exchange (``exchange.safe_string(...)``)
for _fn in helpers.STATIC:
    setattr(ExchangeBase, _fn.__name__, staticmethod(_fn))
del _fn

# --- history
METHODS += ("fetch_ohlcv", "fetch_mark_ohlcv", "fetch_index_ohlcv", "fetch_funding_rate", "fetch_funding_rates",
            "fetch_funding_rate_history")
