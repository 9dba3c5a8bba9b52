"""A CCXT-style facade over exchange-sim: point an existing ccxt bot at the
sandbox by changing its import line and its config.

    from clients import ccxt          # was: import ccxt
    exchange = ccxt.exchangesim({     # or getattr(ccxt, "exchangesim")({...})
        "apiKey": "demo-key-taker-2",
        "uid": "2",                   # the account id (or apiKey "2:demo-key-taker-2")
        "urls": {"api": {"orders": "tcp://127.0.0.1:7001", "marketData": "tcp://127.0.0.1:7002"}},
    })
    exchange.load_markets()
    price = exchange.fetch_ticker("BTC/USDT:USDT")["last"]
    order = exchange.create_order("BTC/USDT:USDT", "limit", "buy", 0.01, price * 0.99, {"postOnly": True})

What is here (CCXT 4's names and return shapes; ``docs/ccxt.md``):

- ``exchangesim`` (blocking) and :mod:`clients.ccxt.async_support`'s
  ``exchangesim`` (asyncio, plus ccxt.pro's ``watch_*``);
  ``exchanges = ["exchangesim"]``;
- CCXT's exception classes at module level (:mod:`clients.ccxt.errors`),
  raised for the venue's refusals by reject reason;
- symbols in CCXT's unified form: venue ``BTC-PERP`` is ``BTC/USDT:USDT``
  (a linear USDT swap); the venue id is accepted too.

Credentials: ``uid`` (or ``options["account"]``) is the account id and
``apiKey`` its API key, or ``apiKey`` alone as ``"ACCOUNT:KEY"``;
``secret`` is unused (the venue authenticates a session by its key at login,
no request signing). Endpoints: ``urls["api"]["orders"/"marketData"]``, else
``options["orders"/"marketData"]``, else the environment variables
``EXCHANGESIM_ORDERS`` / ``EXCHANGESIM_MARKET_DATA``, else the embedded
config's ``tcp://127.0.0.1:7001`` / ``:7002``. ``timeout`` is in ms (CCXT's
unit), ``options["serverKey"]`` pins a CURVE server key,
``options["cancelOnDisconnect"]`` asks the venue to cancel the account's
orders when the session ends.

The exchange connects lazily: public methods (markets, tickers, books) work
without credentials, private ones log in on first use (and again if the
server ended the session).
"""

from __future__ import annotations

import time

import zmq

from clients.ccxt import errors
from clients.ccxt._base import (
    DECIMAL_PLACES,
    DRAIN,
    METHODS,
    NO_PADDING,
    PAD_WITH_ZERO,
    ROUND,
    SIGNIFICANT_DIGITS,
    TICK_SIZE,
    TRUNCATE,
    ExchangeBase,
)
from clients.ccxt.errors import *  # noqa: F401,F403  (CCXT's exception classes, at module level as in ccxt)
from clients.ccxt.errors import translate
from clients.client import Client
from clients.errors import ExchangeError as _ClientError
from protocol.messages import Rejected, RejectReason

__version__ = "4.0.0-exchangesim"
version = __version__
exchanges = ["exchangesim"]

Exchange = ExchangeBase


def _not_logged_in(replies) -> bool:
    return any(type(ev) is Rejected and ev.reason == RejectReason.NOT_LOGGED_IN
               for rep in replies for ev in rep.events)


class exchangesim(ExchangeBase):  # noqa: N801  (CCXT's class naming: the exchange id)
    """The blocking exchange. Every method is CCXT's unified method of the
    same name; see :class:`clients.ccxt._base.ExchangeBase` for the
    structures and ``docs/ccxt.md`` for what differs from a real venue."""

    def __init__(self, config: dict | None = None):
        super().__init__(config)
        self._client: Client | None = None

    # ------------------------------------------------------------ the I/O

    def _conn(self) -> Client:
        if self._client is None:
            self._client = Client(self.urls["api"]["orders"], server_key=self.server_key,
                                  timeout=float(self.timeout) / 1000)
        return self._client

    def _login(self) -> Client:
        c = self._conn()
        if c.session is None:
            acct, key = self._credentials()
            self._core.account_id = acct
            c.login(acct, key, cancel_on_disconnect=bool(self.options.get("cancelOnDisconnect")))
            self.session_lost = None
        return c

    def _send(self, c: Client, cmds) -> list:
        rids = [c.submit(cmd) for cmd in cmds]
        return [c.result(rid) for rid in rids]

    def _io(self, op):
        if op is DRAIN:
            return self._drain()
        if not op.auth:
            return self._send(self._conn(), op.cmds)
        replies = self._send(self._login(), op.cmds)
        if _not_logged_in(replies):  # the server forgot us (restart): log in again and resend once
            self._client.session = None
            replies = self._send(self._login(), op.cmds)
        return replies

    def _drain(self) -> list:
        c, out = self._client, []
        if c is None:
            return out
        while True:
            try:
                ev = c.poll_event(0.0, raw=True)
            except _ClientError:
                continue
            if ev is None:
                return out
            out.append(ev)

    def _run(self, gen):
        """Drive a sans-I/O method (see :mod:`clients.ccxt._base`)."""
        try:
            self._drain_trade_feed()
            pushed = self._drain()
            if pushed:
                self._on_pushed(pushed)
            op = next(gen)
            while True:
                try:
                    answer = self._io(op)
                except Exception as exc:  # the method may handle it; if not, it comes back out
                    op = gen.throw(exc)
                    continue
                op = gen.send(answer)
        except StopIteration as stop:
            return stop.value
        except (_ClientError, zmq.ZMQError) as exc:
            raise translate(exc, self.id) from exc

    def close(self) -> None:
        """Log out and close the sockets (CCXT's sync classes have nothing
        to close; here there is a session)."""
        self._close_feeds()
        if self._client is not None:
            try:
                self._client.close()
            except (_ClientError, zmq.ZMQError):
                pass
            self._client = None

    def __del__(self):
        # ccxt's blocking exchanges are never closed by the bots that use them:
        # release the sockets (and the heartbeat thread) when this one goes
        try:
            self._close_feeds()
            if self._client is not None:
                self._client.close(logout=False)
        except Exception:
            pass

    def __enter__(self) -> exchangesim:
        return self

    def __exit__(self, *exc) -> None:
        self.close()

    # ------------------------------------------------------------ markets

    def load_markets(self, reload: bool = False, params=None) -> dict:
        """``{symbol: market}``; also sets ``markets``, ``symbols``, ``ids``,
        ``markets_by_id`` (id -> [market], as CCXT 4) and ``currencies``."""
        return self._run(self._g_load_markets(reload, params))

    def fetch_markets(self, params=None) -> list[dict]:
        return self._run(self._g_fetch_markets(params))

    def fetch_currencies(self, params=None) -> dict:
        return self._run(self._g_fetch_currencies(params))

    def fetch_time(self, params=None) -> int:
        return self._run(self._g_fetch_time(params))

    # ------------------------------------------------------- market data

    def fetch_ticker(self, symbol: str, params=None) -> dict:
        """The venue's rolling 24-hour statistics (Binance ticker/24hr):
        open/high/low, ``baseVolume``/``quoteVolume``, ``change``,
        ``percentage``, ``vwap``; ``last`` = the last trade on the venue
        (the mark if nothing ever traded; ``info["lastSource"]`` says
        which); best bid/ask; ``markPrice``/``indexPrice``."""
        return self._run(self._g_fetch_ticker(symbol, params))

    def fetch_tickers(self, symbols=None, params=None) -> dict:
        return self._run(self._g_fetch_tickers(symbols, params))

    def fetch_order_book(self, symbol: str, limit: int | None = None, params=None) -> dict:
        """``bids``/``asks`` as [[price, amount]] floats best first; ``nonce``
        is the book's delta sequence number."""
        return self._run(self._g_fetch_order_book(symbol, limit, params))

    def fetch_trades(self, symbol: str, since: int | None = None, limit: int | None = None, params=None) -> list:
        """Recent public trades from the venue (its last ``[history]
        trades_per_symbol``), oldest first."""
        return self._run(self._g_fetch_trades(symbol, since, limit, params))

    # ------------------------------------------------------------ account

    def fetch_balance(self, params=None) -> dict:
        """CCXT balance. The settlement asset's row (USDT) is the account's
        margin balance across all its collateral, as in Binance's multi-asset
        mode: ``total`` = equity (haircut collateral + unrealized PnL),
        ``used`` = initial margin (positions and open orders), ``free`` =
        equity − initial margin. Other assets: their wallet amount (free =
        total, used 0; their haircut value is inside USDT's figures). The raw
        wallet is in ``info["wallet"]``."""
        return self._run(self._g_fetch_balance(params))

    def fetch_positions(self, symbols=None, params=None) -> list[dict]:
        """Open positions as CCXT position structures. ``marginRatio`` is
        CCXT's (maintenance margin / equity: 1.0 = liquidation; the venue's
        equity / MM is ``info["venue_margin_ratio"]``), account-wide under
        cross and portfolio margin. ``leverage`` = notional / initial margin
        (the figure the position carries; the leverage setting is fetch_leverage).
        ``liquidationPrice`` is an estimate: see
        :func:`clients.ccxt._base.liquidation_price`."""
        return self._run(self._g_fetch_positions(symbols, params))

    def fetch_position(self, symbol: str, params=None) -> dict:
        return self._run(self._g_fetch_position(symbol, params))

    def fetch_margin_mode(self, symbol: str | None = None, params=None) -> dict:
        return self._run(self._g_fetch_margin_mode(symbol, params))

    def set_margin_mode(self, marginMode: str, symbol: str | None = None, params=None) -> dict:
        """``cross``, ``isolated`` or ``portfolio`` (exchange-sim's portfolio
        margin). The venue's margin mode is per *account*: ``symbol`` is
        accepted and ignored, and the change applies to every instrument.
        Setting the current mode is a no-op (``info["changed"] = False``);
        a refused change (to or from isolated with positions or orders, or
        not enough equity under the new mode) raises OperationRejected."""
        return self._run(self._g_set_margin_mode(marginMode, symbol, params))

    def add_margin(self, symbol: str, amount, params=None) -> dict:
        """Isolated mode: move ``amount`` USDT into the position's margin."""
        return self._run(self._g_modify_margin(symbol, amount, "add", params))

    def reduce_margin(self, symbol: str, amount, params=None) -> dict:
        return self._run(self._g_modify_margin(symbol, amount, "reduce", params))

    # ------------------------------------------------------------- orders

    def create_order(self, symbol: str, type: str, side: str, amount, price=None, params=None) -> dict:
        """Place an order. ``type``: limit or market. ``params``:
        ``timeInForce`` (GTC, IOC, FOK, PO), ``postOnly``, ``reduceOnly``,
        ``clientOrderId``, ``triggerPrice`` / ``stopPrice`` (a stop order
        that the mark triggers: stop-limit or stop-market),
        ``stopLossPrice`` (a reduce-only stop), ``stp`` (self-trade
        prevention: expire_taker, expire_maker, expire_both, none).
        ``amount`` is truncated to the lot and ``price`` rounded to the
        tick first, as CCXT exchanges do."""
        return self._run(self._g_create_order(symbol, type, side, amount, price, params))

    def edit_order(self, id, symbol: str, type: str | None = None, side: str | None = None, amount=None,
                   price=None, params=None) -> dict:
        """Amend a resting order (price and/or total ``amount``)."""
        return self._run(self._g_edit_order(id, symbol, type, side, amount, price, params))

    def cancel_order(self, id, symbol: str | None = None, params=None) -> dict:
        """Cancel by id (or ``params["clientOrderId"]``); returns the order."""
        return self._run(self._g_cancel_order(id, symbol, params))

    def cancel_all_orders(self, symbol: str | None = None, params=None) -> list[dict]:
        return self._run(self._g_cancel_all_orders(symbol, params))

    def fetch_order(self, id, symbol: str | None = None, params=None) -> dict:
        """An order of the account, open or ended, from the venue's history
        (``params["clientOrderId"]`` instead of ``id`` works too), with its
        fills as ``trades``. OrderNotFound past the venue's
        ``[history] orders_per_account``."""
        return self._run(self._g_fetch_order(id, symbol, params))

    def fetch_open_orders(self, symbol: str | None = None, since=None, limit=None, params=None) -> list[dict]:
        return self._run(self._g_fetch_open_orders(symbol, since, limit, params))

    def fetch_orders(self, symbol: str | None = None, since=None, limit=None, params=None) -> list[dict]:
        """Open orders plus the account's ended orders from the venue's history."""
        return self._run(self._g_fetch_orders(symbol, since, limit, params))

    def fetch_closed_orders(self, symbol: str | None = None, since=None, limit=None, params=None) -> list[dict]:
        return self._run(self._g_fetch_closed_orders(symbol, since, limit, params))

    def fetch_canceled_orders(self, symbol: str | None = None, since=None, limit=None, params=None) -> list[dict]:
        return self._run(self._g_fetch_canceled_orders(symbol, since, limit, params))

    def fetch_my_trades(self, symbol: str | None = None, since=None, limit=None, params=None) -> list[dict]:
        """The account's fills from the venue's history (Binance userTrades),
        oldest first: fee, ``takerOrMaker``, the order id; realized PnL in
        ``info["realized_pnl"]`` (settlement minor units)."""
        return self._run(self._g_fetch_my_trades(symbol, since, limit, params))

    # --- ccxt facade: base helpers, batch orders, status (issue 14)

    def fetch_l2_order_book(self, symbol: str, limit: int | None = None, params=None) -> dict:
        """ccxt's L2 book: the venue's book is L2 already (``fetch_order_book``)."""
        return self._run(self._g_fetch_l2_order_book(symbol, limit, params))

    def fetch_status(self, params=None) -> dict:
        """``{"status": "ok", ...}`` when the venue answers."""
        return self._run(self._g_fetch_status(params))

    def create_orders(self, orders: list[dict], params=None) -> list[dict]:
        """Several orders at once, pipelined: ``[{"symbol", "type", "side",
        "amount", "price", "params"}, ...]``; a refused one comes back with
        ``status`` ``"rejected"`` (see :meth:`ExchangeBase._g_create_orders`)."""
        return self._run(self._g_create_orders(orders, params))

    def sleep(self, milliseconds) -> None:
        """ccxt's ``exchange.sleep(ms)``."""
        time.sleep(float(milliseconds) / 1000)

    # ----------------------------------------------------------- leverage

    def set_leverage(self, leverage, symbol: str | None = None, params=None) -> dict:
        """The account's leverage on ``symbol`` (Binance ``POST /fapi/v1/leverage``):
        initial margin = notional / leverage, never below the notional tier's.
        Above the tier's maximum: BadRequest; a lower leverage the account
        cannot margin: InsufficientFunds."""
        return self._run(self._g_set_leverage(leverage, symbol, params))

    def fetch_leverage(self, symbol: str, params=None) -> dict:
        """CCXT leverage structure (one-way mode: long = short leverage)."""
        return self._run(self._g_fetch_leverage(symbol, params))

    def fetch_leverages(self, symbols=None, params=None) -> dict:
        return self._run(self._g_fetch_leverages(symbols, params))

    def fetch_leverage_tiers(self, symbols=None, params=None) -> dict:
        """CCXT leverage tiers per symbol (Binance ``leverageBracket``)."""
        return self._run(self._g_fetch_leverage_tiers(symbols, params))

    def fetch_market_leverage_tiers(self, symbol: str, params=None) -> list[dict]:
        return self._run(self._g_fetch_market_leverage_tiers(symbol, params))


    # --- protective orders
    def close_position(self, symbol: str, side: str | None = None, params=None) -> dict:
        """Close the whole position in ``symbol`` now: a reduce-only market
        order of its size (ccxt ``closePosition``)."""
        return self._run(self._g_close_position(symbol, side, params))

    # --- history: candles and funding from the venue

    def fetch_ohlcv(self, symbol: str, timeframe: str = "1m", since: int | None = None, limit: int | None = None,
                    params=None) -> list[list]:
        """``[[timestamp ms, open, high, low, close, volume]]`` oldest first
        (Binance klines): ``timeframe`` one of ``timeframes``; ``since`` (ms)
        the first candle's earliest open; ``params``: ``price`` mark or index
        (mark/index price candles), ``until`` (ms)."""
        return self._run(self._g_fetch_ohlcv(symbol, timeframe, since, limit, params))

    def fetch_mark_ohlcv(self, symbol: str, timeframe: str = "1m", since=None, limit=None, params=None) -> list:
        return self._run(self._g_fetch_mark_ohlcv(symbol, timeframe, since, limit, params))

    def fetch_index_ohlcv(self, symbol: str, timeframe: str = "1m", since=None, limit=None, params=None) -> list:
        return self._run(self._g_fetch_index_ohlcv(symbol, timeframe, since, limit, params))

    def fetch_funding_rate(self, symbol: str, params=None) -> dict:
        """Mark, index, the rate the next settlement would apply now
        (``fundingRate``), the last applied one (``previousFundingRate``) and
        the next settlement time (Binance premiumIndex)."""
        return self._run(self._g_fetch_funding_rate(symbol, params))

    def fetch_funding_rates(self, symbols=None, params=None) -> dict:
        return self._run(self._g_fetch_funding_rates(symbols, params))

    def fetch_funding_rate_history(self, symbol: str | None = None, since=None, limit=None, params=None) -> list:
        """Settled rates, oldest first (Binance fundingRate)."""
        return self._run(self._g_fetch_funding_rate_history(symbol, since, limit, params))


__all__ = ["exchangesim", "exchanges", "Exchange", "errors", "version", "__version__", "METHODS",
           "TRUNCATE", "ROUND", "DECIMAL_PLACES", "SIGNIFICANT_DIGITS", "TICK_SIZE", "NO_PADDING",
           "PAD_WITH_ZERO", *errors.__all__]
