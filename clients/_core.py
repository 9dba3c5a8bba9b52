"""What the sync and asyncio clients share: commands from human arguments,
replies to results, socket options. No I/O here, so both clients behave the
same by construction."""

from __future__ import annotations

from decimal import Decimal

import zmq

from clients import models
from clients.errors import ExchangeError, InvalidOrder, error_for
from protocol import messages as m
from protocol.messages import OrderType, Rejected, RejectReason, Side, StpMode, TimeInForce

DEFAULT_ORDERS = "tcp://127.0.0.1:7001"
DEFAULT_MARKET_DATA = "tcp://127.0.0.1:7002"


def setup_dealer(sock: zmq.Socket, server_key: str | bytes | None) -> None:
    """DEALER options: no linger on close, CURVE pinned to the server's public
    key (an ephemeral client key pair: identity is the API key, not the
    CURVE key)."""
    sock.linger = 0
    sock.rcvhwm = 0  # never drop a private event on our side
    if server_key is not None:
        curve(sock, server_key)


def curve(sock: zmq.Socket, server_key: str | bytes) -> None:
    public, secret = zmq.curve_keypair()
    sock.curve_serverkey = server_key.encode() if isinstance(server_key, str) else server_key
    sock.curve_publickey = public
    sock.curve_secretkey = secret


def raise_for(events: list) -> list:
    """Raise the typed exception of the first Rejected among ``events``."""
    for ev in events:
        if type(ev) is Rejected:
            raise error_for(ev)
    return events


def _enum(cls, value, what: str):
    if isinstance(value, cls):
        return value
    try:
        return cls(str(value).lower())
    except ValueError:
        allowed = ", ".join(v.value for v in cls)
        raise InvalidOrder(f"{what} must be one of {allowed}, not {value!r}", RejectReason.INVALID_FIELD) from None


class Core:
    """Command builders and reply parsers; ``self.markets`` is set at login."""

    account_id: int | None
    markets: models.Markets | None

    def _mk(self) -> models.Markets:
        if self.markets is None:
            raise ExchangeError("instrument metadata not loaded: log in (or call load_markets) first")
        return self.markets

    def _acct(self, account: int | None) -> int:
        a = self.account_id if account is None else account
        if a is None:
            raise ExchangeError("no account: log in first or pass account=")
        return a

    def new_order_cmd(self, symbol: str, side, qty, price=None, *, type="limit", tif="gtc", post_only=False,
                      reduce_only=False, stop_price=None, stp="expire_taker", client_order_id=None,
                      account=None, **protective) -> m.NewOrder:
        mk = self._mk()
        ins = mk[symbol]
        otype = _enum(OrderType, type, "type")
        t = _enum(TimeInForce, tif, "tif")
        if post_only:
            t = TimeInForce.POST_ONLY
        return m.NewOrder(
            account=self._acct(account), symbol=symbol, side=_enum(Side, side, "side"),
            qty=None if qty is None else ins.lots(qty),
            price=None if price is None else ins.ticks(price), type=otype, tif=t, reduce_only=bool(reduce_only),
            stop_price=None if stop_price is None else ins.ticks(stop_price), stp=_enum(StpMode, stp, "stp"),
            client_order_id=client_order_id, **(protective_fields(ins, **protective) if protective else {}),
        )

    def cancel_cmd(self, order_id=None, client_order_id=None, account=None) -> m.CancelOrder:
        if order_id is None and client_order_id is None:
            raise InvalidOrder("give order_id or client_order_id", RejectReason.INVALID_FIELD)
        return m.CancelOrder(account=self._acct(account), order_id=order_id, client_order_id=client_order_id)

    def amend_cmd(self, symbol: str, order_id=None, client_order_id=None, *, qty=None, price=None,
                  account=None) -> m.AmendOrder:
        ins = self._mk()[symbol]
        return m.AmendOrder(
            account=self._acct(account), order_id=order_id, client_order_id=client_order_id,
            qty=None if qty is None else ins.lots(qty), price=None if price is None else ins.ticks(price),
        )

    # ------------------------------------------------------------- parsing

    def parse_order(self, events: list, duplicate: bool = False) -> models.OrderResult:
        raise_for(events)
        if not events or type(events[0]) is not m.OrderAccepted:
            raise ExchangeError(f"unexpected reply to a new order: {events!r}")
        return models.order_result(self._mk(), events, duplicate)

    def parse_account(self, events: list) -> models.AccountState:
        raise_for(events)
        for ev in events:
            if type(ev) is m.AccountUpdate:
                return models.account_state(self._mk(), ev)
        raise ExchangeError(f"unexpected reply to an account query: {events!r}")

    def parse_open_orders(self, events: list) -> list[models.OpenOrder]:
        raise_for(events)
        mk = self._mk()
        return [models.open_order(mk, o) for ev in events if type(ev) is m.OpenOrders for o in ev.orders]

    def parse_book(self, events: list) -> models.Book:
        raise_for(events)
        return models.book(self._mk(), events[0])

    # --- leverage

    def set_leverage_cmd(self, symbol: str, leverage, account=None) -> m.SetLeverage:
        self._mk()[symbol]  # an unknown symbol is refused here, typed
        try:
            whole = not isinstance(leverage, (bool, str)) and int(leverage) == leverage
        except (TypeError, ValueError, OverflowError):
            whole = False
        if not whole:
            raise InvalidOrder(f"leverage must be a whole number, not {leverage!r}", RejectReason.INVALID_FIELD)
        return m.SetLeverage(account=self._acct(account), symbol=symbol, leverage=int(leverage))

    def parse_leverage_changed(self, events: list) -> m.LeverageChanged:
        raise_for(events)
        for ev in events:
            if type(ev) is m.LeverageChanged:
                return ev
        raise ExchangeError(f"unexpected reply to SetLeverage: {events!r}")

    def parse_leverage(self, events: list) -> dict[str, models.SymbolLeverage]:
        raise_for(events)
        mk = self._mk()
        return {s.symbol: models.symbol_leverage(mk, s) for ev in events if type(ev) is m.Leverage for s in ev.symbols}

    def parse_leverage_tiers(self, events: list) -> dict[str, tuple[models.LeverageTier, ...]]:
        raise_for(events)
        return {s.symbol: tuple(models.leverage_tier(t) for t in s.tiers)
                for ev in events if type(ev) is m.LeverageTiers for s in ev.symbols}

    def parse_ledger(self, events: list) -> models.Ledger:
        raise_for(events)
        for ev in events:
            if type(ev) is m.Ledger:
                return models.ledger(self._mk(), ev)
        raise ExchangeError(f"unexpected reply to QueryLedger: {events!r}")

    def human(self, ev):
        """An event in human units where a model exists (see clients.models)."""
        return models.convert(self.markets, ev) if self.markets is not None else ev

    def minor(self, asset: str, amount) -> int:
        return self._mk().minor(asset, amount)

    # --- history: the venue's market and account history (docs/history.md);
    # times are venue ns, prices and sizes human units

    def candles_cmd(self, symbol: str, interval="1m", *, price="last", start: int | None = None,
                    end: int | None = None, limit: int = 500) -> m.QueryCandles:
        self._mk()[symbol]  # an unknown symbol is refused here, by name
        return m.QueryCandles(symbol=symbol, interval=_enum(m.CandleInterval, interval, "interval"),
                              source=_enum(m.PriceSource, price, "price"), start=start, end=end, limit=limit)

    def order_cmd(self, order_id=None, client_order_id=None, account=None) -> m.QueryOrder:
        if order_id is None and client_order_id is None:
            raise InvalidOrder("give order_id or client_order_id", RejectReason.INVALID_FIELD)
        return m.QueryOrder(account=self._acct(account), order_id=order_id, client_order_id=client_order_id)

    def parse_history(self, events: list):
        """The reply to a history query, in human units (clients.models.history)."""
        raise_for(events)
        return models.history(self._mk(), events[0])


# --- protective orders
#: working types by their venue names and the short ones ccxt uses ('mark' | 'last')
WORKING_TYPES = {"mark_price": m.WorkingType.MARK_PRICE, "mark": m.WorkingType.MARK_PRICE,
                 "contract_price": m.WorkingType.CONTRACT_PRICE, "last": m.WorkingType.CONTRACT_PRICE,
                 "last_price": m.WorkingType.CONTRACT_PRICE}


def to_working_type(value) -> m.WorkingType:
    w = WORKING_TYPES.get(str(getattr(value, "value", value)).lower())
    if w is None:
        raise InvalidOrder(f"working_type must be mark_price or contract_price ('mark' or 'last'), not {value!r}",
                           RejectReason.INVALID_FIELD)
    return w


def callback_bps(rate) -> int:
    """A trailing stop's callback rate in percent (Binance ``callbackRate``:
    1 = 1 %) as the venue's whole basis points."""
    bps = Decimal(str(rate)) * 100
    if bps != bps.to_integral_value():
        raise InvalidOrder(f"callback rate {rate}% is not a whole number of basis points (0.01 %)",
                           RejectReason.INVALID_FIELD)
    return int(bps)


def attached_order(ins: models.InstrumentMeta, spec, what: str) -> m.AttachedOrder:
    """An attached take-profit / stop-loss from a trigger price, or a dict
    ``{"trigger_price", "price"?, "working_type"?}`` in human units."""
    if not isinstance(spec, dict):
        return m.AttachedOrder(trigger_price=ins.ticks(spec))
    unknown = set(spec) - {"trigger_price", "price", "working_type"}
    if unknown or "trigger_price" not in spec:
        raise InvalidOrder(f"{what} takes trigger_price and optional price, working_type; "
                           f"got {sorted(spec)}", RejectReason.INVALID_FIELD)
    price = spec.get("price")
    return m.AttachedOrder(
        trigger_price=ins.ticks(spec["trigger_price"]), price=None if price is None else ins.ticks(price),
        working_type=to_working_type(spec.get("working_type", "mark_price")),
    )


def protective_fields(ins: models.InstrumentMeta, *, working_type=None, close_position=False, callback_rate=None,
                      activation_price=None, take_profit=None, stop_loss=None) -> dict:
    """The protective-order fields of a NewOrder from human arguments (an
    unknown keyword is a TypeError, never dropped)."""
    out: dict = {}
    if working_type is not None:
        out["working_type"] = to_working_type(working_type)
    if close_position:
        out["close_position"] = True
    if callback_rate is not None:
        out["callback_bps"] = callback_bps(callback_rate)
    if activation_price is not None:
        out["activation_price"] = ins.ticks(activation_price)
    if take_profit is not None:
        out["take_profit"] = attached_order(ins, take_profit, "take_profit")
    if stop_loss is not None:
        out["stop_loss"] = attached_order(ins, stop_loss, "stop_loss")
    return out


def shock_bps(pct) -> int:
    """A percentage move as basis points: -30 -> -3000."""
    bps = Decimal(str(pct)) * 100
    if bps != bps.to_integral_value():
        raise InvalidOrder(f"shock {pct}% is finer than a basis point", RejectReason.INVALID_FIELD)
    return int(bps)
