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
from protocol import messages as m
from protocol.session import decode_market


# ccxt's unified params this venue cannot honour, with why: a bot that sends
# one must hear so, never believe its stop-loss is in place when it is not.
UNSUPPORTED_PARAMS = {
    "stopLoss": "attached stop-loss orders are not supported yet; place a separate reduce-only stop "
                "(create_stop_market_order with params={'reduceOnly': True})",
    "takeProfit": "attached take-profit orders are not supported yet",
    "trailingPercent": "trailing stops are not supported yet",
    "trailingAmount": "trailing stops are not supported yet",
    "trailingTriggerPrice": "trailing stops are not supported yet",
    "triggerType": "stops trigger on the mark price only",
    "triggerDirection": "a stop triggers when the mark moves against the order side; the direction is implied",
    "workingType": "stops trigger on the mark price only",
    "closePosition": "close-position orders are not supported yet; send a reduce-only order for the position size",
    "marginMode": "the margin mode is per account: call set_margin_mode",
    "leverage": "the venue has no leverage setting; margin comes from notional tiers",
    "hedged": "one net position per instrument (one-way mode)",
    "positionSide": "one net position per instrument (one-way mode)",
}


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
    """Decorate a ``_g_`` method: its ``params`` may hold only ``known``
    keys, checked when it is called (before any I/O)."""
    def deco(fn):
        names = list(inspect.signature(fn).parameters)
        at = names.index("params")
        method = fn.__name__.removeprefix("_g_")

        @functools.wraps(fn)
        def checked(*args, **kwargs):
            params = kwargs["params"] if "params" in kwargs else (args[at] if len(args) > at else None)
            refuse_unknown_params(args[0].id, method, params, known)
            return fn(*args, **kwargs)
        return checked
    return deco

# CCXT's precision constants (ccxt/base/decimal_to_precision.py)
TRUNCATE, ROUND = 0, 1
DECIMAL_PLACES, SIGNIFICANT_DIGITS, TICK_SIZE = 2, 3, 4
NO_PADDING, PAD_WITH_ZERO = 5, 6

MAX_CACHED_ORDERS = 10_000
MAX_CACHED_TRADES = 10_000
MAX_PUBLIC_TRADES = 1_000  # per symbol, for fetch_trades

_VENUE_MODES = ("cross", "isolated", "portfolio")
_TIF_IN = {"GTC": "gtc", "IOC": "ioc", "FOK": "fok", "PO": "post_only", "GTX": "post_only"}
_TIF_OUT = {"gtc": "GTC", "ioc": "IOC", "fok": "FOK", "post_only": "PO"}


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
                 "last_update")

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
        "CORS": None, "spot": False, "margin": False, "swap": True, "future": False, "option": False,
        "addMargin": True, "cancelAllOrders": True, "cancelOrder": True, "createOrder": True,
        "createLimitOrder": True, "createMarketOrder": True, "createPostOnlyOrder": True,
        "createReduceOnlyOrder": True, "createStopOrder": True, "createStopLimitOrder": True,
        "createStopMarketOrder": True, "createTriggerOrder": True, "createStopLossOrder": True,
        "createTakeProfitOrder": False, "editOrder": True, "fetchBalance": True, "fetchCanceledOrders": "emulated",
        "fetchClosedOrders": "emulated", "fetchCurrencies": True, "fetchFundingRate": False, "fetchLeverage": False,
        "fetchMarginMode": True, "fetchMarkets": True, "fetchMyTrades": "emulated", "fetchOHLCV": False,
        "fetchOpenOrders": True, "fetchOrder": True, "fetchOrderBook": True, "fetchOrders": "emulated",
        "fetchPosition": True, "fetchPositions": True, "fetchTicker": True, "fetchTickers": True,
        "fetchTime": True, "fetchTrades": "emulated", "reduceMargin": True, "setLeverage": False,
        "setMarginMode": True, "setPositionMode": False, "withdraw": False, "deposit": False,
        "watchOrderBook": False, "watchOrders": False, "watchPositions": False, "watchTicker": False,
        "watchTrades": False,
    }

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
            "trackLastTrade": True,  # subscribe to public trades: ticker 'last', fetch_trades
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
        self._public_trades: dict[str, deque] = {}
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
            try:
                attr = getattr(type(self), snake)
            except AttributeError:
                pass
            else:
                if callable(attr):
                    return getattr(self, snake)
        if snake.startswith(_UNIFIED_PREFIXES):
            def not_supported(*args, **kwargs):
                raise E.NotSupported(f"{self.id} {_camel(snake)}() is not supported")
            return not_supported
        raise AttributeError(f"{type(self).__name__!r} object has no attribute {name!r}")

    def __repr__(self) -> str:
        return f"<{type(self).__module__}.exchangesim orders={self.urls['api']['orders']}>"

    @staticmethod
    def milliseconds() -> int:
        return now_ms()

    @staticmethod
    def seconds() -> int:
        return int(time.time())

    @staticmethod
    def iso8601(timestamp: int | None) -> str | None:
        return iso8601(timestamp)

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
            out.append({
                "id": meta.symbol, "symbol": f"{base}/{settle}:{settle}", "base": base, "quote": settle,
                "settle": settle, "baseId": base, "quoteId": settle, "settleId": settle, "lowercaseId": None,
                "type": "swap", "spot": False, "margin": False, "swap": True, "future": False, "option": False,
                "index": None, "active": True, "contract": True, "linear": True, "inverse": False,
                "subType": "linear", "contractSize": 1.0, "expiry": None, "expiryDatetime": None, "strike": None,
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

    def set_leverage(self, leverage, symbol=None, params=None):
        raise E.NotSupported(f"{self.id} setLeverage() is not supported: the venue has no leverage setting; margin "
                             "comes from notional tiers (a position's leverage = notional / initial margin)")

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

    def _open_trade_feed(self) -> None:
        """Subscribe to every symbol's public trades (ticker ``last``,
        ``fetch_trades``). Trades before this moment are not known."""
        if self._trade_sub is not None or not self.options.get("trackLastTrade", True) or not self._meta:
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
                book = self._public_trades.setdefault(ev.symbol, deque(maxlen=MAX_PUBLIC_TRADES))
                book.append(self._public_trade_dict(ev, price, qty, ts))

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
            "stopPrice": stop, "stopLossPrice": None, "takeProfitPrice": None, "amount": float(amount),
            "cost": float(rec.cost), "average": fl(average), "filled": float(rec.filled),
            "remaining": float(remaining), "status": rec.status, "fee": fee, "fees": [dict(fee)],
            "trades": list(rec.trades),
            "info": {"order_id": rec.id, "symbol": rec.symbol, "type": rec.type, "tif": rec.tif,
                     "stop_price": None if rec.stop_price is None else str(rec.stop_price),
                     "triggered": rec.triggered, "cancel_cause": rec.cause},
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

    @params_read('timeInForce', 'postOnly', 'reduceOnly', 'clientOrderId', 'triggerPrice', 'stopPrice', 'stopLossPrice', 'takeProfitPrice', 'stp', 'selfTradePrevention')
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
        trigger = params.pop("triggerPrice", None)
        stop = params.pop("stopPrice", None)
        stop_loss = params.pop("stopLossPrice", None)
        if params.pop("takeProfitPrice", None) is not None:
            raise E.NotSupported(f"{self.id} createOrder() takeProfitPrice is not supported: the venue's stop orders "
                                 "trigger only when the mark moves against the order side (stop-loss direction)")
        stp = params.pop("stp", params.pop("selfTradePrevention", "expire_taker"))
        trigger = next((x for x in (trigger, stop, stop_loss) if x is not None), None)
        if stop_loss is not None:
            reduce_only = True
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
            venue_type, price = ("stop_market" if trigger is not None else "market"), None
        elif otype == "limit":
            if price is None:
                raise E.ArgumentsRequired(f"{self.id} createOrder() requires a price argument for a limit order")
            venue_type = "stop_limit" if trigger is not None else "limit"
        elif otype in ("stop_market", "stop_limit"):
            venue_type = otype
            if otype == "stop_market":
                price = None
        else:
            raise E.InvalidOrder(f"{self.id} createOrder() does not support order type {type!r}: limit or market "
                                 "(with params triggerPrice/stopPrice for stop orders)")
        qty = self.amount_to_precision(mid, amount)
        px = None if price is None else self.price_to_precision(mid, price)
        stop_px = None if trigger is None else self.price_to_precision(mid, trigger)
        cmd = self._core.new_order_cmd(
            mid, side_l, qty, px, type=venue_type, tif=tif, post_only=post_only, reduce_only=reduce_only,
            stop_price=stop_px, stp=stp, client_order_id=None if client_id is None else str(client_id),
            account=self._account())
        (rep,) = yield Req((cmd,))
        events = raise_for(rep.events)
        if not events or _typeof(events[0]) is not m.OrderAccepted:
            raise E.BadResponse(f"{self.id} unexpected reply to a new order: {events!r}")
        self._apply(events)
        return self._order_dict(self._orders[events[0].order_id])

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
    return "market" if venue_type in ("market", "stop_market") else "limit"


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
)
# --- history
METHODS += ("fetch_ohlcv", "fetch_mark_ohlcv", "fetch_index_ohlcv", "fetch_funding_rate", "fetch_funding_rates",
            "fetch_funding_rate_history")
