"""CCXT's exception classes, and how exchange-sim's refusals map onto them.

The classes and their parents are CCXT 4's (``ccxt/base/errors.py``), so a
bot's ``except ccxt.InvalidOrder`` or ``except ccxt.NetworkError`` catches
what it catches on a real exchange::

    BaseError
    ├── ExchangeError
    │   ├── AuthenticationError
    │   │   ├── PermissionDenied
    │   │   │   └── AccountNotEnabled
    │   │   └── AccountSuspended
    │   ├── ArgumentsRequired
    │   ├── BadRequest
    │   │   └── BadSymbol
    │   ├── OperationRejected
    │   │   ├── NoChange
    │   │   │   └── MarginModeAlreadySet
    │   │   ├── MarketClosed
    │   │   ├── ManualInteractionNeeded
    │   │   └── RestrictedLocation
    │   ├── InsufficientFunds
    │   ├── InvalidAddress
    │   │   └── AddressPending
    │   ├── InvalidOrder
    │   │   ├── OrderNotFound
    │   │   ├── OrderNotCached
    │   │   ├── OrderImmediatelyFillable
    │   │   ├── OrderNotFillable
    │   │   ├── DuplicateOrderId
    │   │   └── ContractUnavailable
    │   ├── NotSupported
    │   ├── InvalidProxySettings
    │   └── ExchangeClosedByUser
    ├── OperationFailed
    │   ├── NetworkError
    │   │   ├── DDoSProtection
    │   │   ├── RateLimitExceeded
    │   │   ├── ExchangeNotAvailable
    │   │   │   └── OnMaintenance
    │   │   ├── InvalidNonce
    │   │   │   └── ChecksumError
    │   │   └── RequestTimeout
    │   ├── BadResponse
    │   │   └── NullResponse
    │   └── CancelPending
    └── UnsubscribeError

The tree is ccxt's ``error_hierarchy`` exactly (tests compare it with the
installed ``ccxt`` package). **When the real ``ccxt`` package is installed**
(the optional extra ``exchange-sim[ccxt]``), each class here also subclasses
ccxt's class of the same name, so a bot that mixes both packages catches the
facade's refusals with ``except ccxt.InsufficientFunds`` too; without it the
facade needs nothing beyond the standard library (docs/adr/0014-ccxt-facade.md).
Importing ccxt costs about half a second, once; ``EXCHANGESIM_CCXT_BASES=0``
in the environment skips it.

As in CCXT 4, ``NetworkError`` is *not* an ``ExchangeError``: a bot retries
the first and fixes its request for the second.

:func:`translate` turns the typed exceptions of :mod:`clients.errors` into
these (the original stays as ``__cause__``; the wire reason, if any, is
``exc.reason``). :data:`BY_REASON` is the table, one row per
:class:`~protocol.messages.RejectReason`.
"""

from __future__ import annotations

import os

import zmq

from clients import errors as client_errors
from protocol.messages import RejectReason

R = RejectReason


def _real_ccxt_errors():
    """ccxt's own errors module, if the package is installed (and not
    switched off by ``EXCHANGESIM_CCXT_BASES=0``), else None."""
    if os.environ.get("EXCHANGESIM_CCXT_BASES", "1") == "0":
        return None
    try:
        from ccxt.base import errors as real
    except Exception:  # not installed (or a broken install): the facade stands alone
        return None
    return real


_REAL = _real_ccxt_errors()


def _also(name: str) -> tuple[type, ...]:
    """ccxt's class ``name`` as an extra base (when ccxt is installed)."""
    cls = getattr(_REAL, name, None) if _REAL is not None else None
    return (cls,) if isinstance(cls, type) else ()


class BaseError(*(_also("BaseError") or (Exception,))):
    """Root of every CCXT exception. ``reason``: the venue's reject reason
    (a :class:`~protocol.messages.RejectReason` value) when there is one."""

    def __init__(self, message: str = "", reason: str | None = None):
        super().__init__(message)
        self.reason = reason


class ExchangeError(BaseError, *_also("ExchangeError")):
    pass


class AuthenticationError(ExchangeError, *_also("AuthenticationError")):
    pass


class PermissionDenied(AuthenticationError, *_also("PermissionDenied")):
    pass


class AccountNotEnabled(PermissionDenied, *_also("AccountNotEnabled")):
    pass


class AccountSuspended(AuthenticationError, *_also("AccountSuspended")):
    pass


class ArgumentsRequired(ExchangeError, *_also("ArgumentsRequired")):
    pass


class BadRequest(ExchangeError, *_also("BadRequest")):
    pass


class BadSymbol(BadRequest, *_also("BadSymbol")):
    pass


class OperationRejected(ExchangeError, *_also("OperationRejected")):
    pass


class NoChange(OperationRejected, *_also("NoChange")):
    pass


class MarginModeAlreadySet(NoChange, *_also("MarginModeAlreadySet")):
    pass


class MarketClosed(OperationRejected, *_also("MarketClosed")):
    pass


class ManualInteractionNeeded(OperationRejected, *_also("ManualInteractionNeeded")):
    pass


class RestrictedLocation(OperationRejected, *_also("RestrictedLocation")):
    pass


class InsufficientFunds(ExchangeError, *_also("InsufficientFunds")):
    pass


class InvalidAddress(ExchangeError, *_also("InvalidAddress")):
    pass


class AddressPending(InvalidAddress, *_also("AddressPending")):
    pass


class InvalidOrder(ExchangeError, *_also("InvalidOrder")):
    pass


class OrderNotFound(InvalidOrder, *_also("OrderNotFound")):
    pass


class OrderNotCached(InvalidOrder, *_also("OrderNotCached")):
    pass


class OrderImmediatelyFillable(InvalidOrder, *_also("OrderImmediatelyFillable")):
    pass


class OrderNotFillable(InvalidOrder, *_also("OrderNotFillable")):
    pass


class DuplicateOrderId(InvalidOrder, *_also("DuplicateOrderId")):
    pass


class ContractUnavailable(InvalidOrder, *_also("ContractUnavailable")):
    pass


class NotSupported(ExchangeError, *_also("NotSupported")):
    pass


class InvalidProxySettings(ExchangeError, *_also("InvalidProxySettings")):
    pass


class ExchangeClosedByUser(ExchangeError, *_also("ExchangeClosedByUser")):
    pass


class OperationFailed(BaseError, *_also("OperationFailed")):
    pass


class NetworkError(OperationFailed, *_also("NetworkError")):
    pass


class DDoSProtection(NetworkError, *_also("DDoSProtection")):
    pass


class RateLimitExceeded(NetworkError, *_also("RateLimitExceeded")):
    pass


class ExchangeNotAvailable(NetworkError, *_also("ExchangeNotAvailable")):
    pass


class OnMaintenance(ExchangeNotAvailable, *_also("OnMaintenance")):
    pass


class InvalidNonce(NetworkError, *_also("InvalidNonce")):
    pass


class ChecksumError(InvalidNonce, *_also("ChecksumError")):
    pass


class RequestTimeout(NetworkError, *_also("RequestTimeout")):
    pass


class BadResponse(OperationFailed, *_also("BadResponse")):
    pass


class NullResponse(BadResponse, *_also("NullResponse")):
    pass


class CancelPending(OperationFailed, *_also("CancelPending")):
    pass


class UnsubscribeError(BaseError, *_also("UnsubscribeError")):
    pass


#: the venue's reject reasons -> CCXT classes. INVALID_FIELD depends on the
#: command refused (see :func:`class_for`).
BY_REASON: dict[RejectReason, type[BaseError]] = {
    R.MALFORMED: BadRequest,
    R.UNKNOWN_MESSAGE: BadRequest,
    R.INVALID_FIELD: BadRequest,  # InvalidOrder when the refused command is an order command
    R.NOT_LOGGED_IN: AuthenticationError,
    R.AUTH_FAILED: AuthenticationError,
    R.NOT_ALLOWED: PermissionDenied,
    R.RATE_LIMITED: RateLimitExceeded,
    R.UNKNOWN_ACCOUNT: AccountNotEnabled,
    R.UNKNOWN_ASSET: BadRequest,
    R.UNKNOWN_SYMBOL: BadSymbol,
    R.SYMBOL_PAUSED: MarketClosed,
    R.BAD_TICK: InvalidOrder,
    R.BAD_LOT: InvalidOrder,
    R.BELOW_MIN_NOTIONAL: InvalidOrder,
    R.ABOVE_MAX_QTY: InvalidOrder,
    R.OUTSIDE_PRICE_BAND: InvalidOrder,
    R.NO_MARK_PRICE: OperationRejected,
    R.MISSING_PRICE: InvalidOrder,
    R.MISSING_STOP_PRICE: InvalidOrder,
    R.INSUFFICIENT_MARGIN: InsufficientFunds,
    R.INSUFFICIENT_BALANCE: InsufficientFunds,
    R.POST_ONLY_WOULD_CROSS: OrderImmediatelyFillable,
    R.FOK_NOT_FILLABLE: OrderNotFillable,
    R.REDUCE_ONLY_WOULD_INCREASE: InvalidOrder,
    R.NO_LIQUIDITY: OrderNotFillable,
    R.UNKNOWN_ORDER: OrderNotFound,
    R.DUPLICATE_CLIENT_ORDER_ID: DuplicateOrderId,
    R.TOO_MANY_OPEN_ORDERS: InvalidOrder,
    R.SELF_TRADE_PREVENTED: InvalidOrder,
    R.NOTHING_TO_AMEND: InvalidOrder,
    R.REDUCE_ONLY_MODE: InsufficientFunds,  # margin ratio too low: only risk-reducing orders
    R.MARGIN_MODE_CHANGE_DENIED: OperationRejected,
    R.ACCOUNT_EXISTS: BadRequest,
    R.INTERNAL: ExchangeError,  # the venue's fault, the effect unknown: not InvalidOrder, not retryable blindly
    # --- leverage (Binance -4028 "Leverage is not valid" / -2027 "max position at current leverage")
    R.LEVERAGE_ABOVE_MAX: BadRequest,
    R.LEVERAGE_INSUFFICIENT_MARGIN: InsufficientFunds,
}

_ORDER_COMMANDS = frozenset({"NewOrder", "AmendOrder", "CancelOrder", "CancelAll"})

# client-side conditions without a wire reason, by the client's class
_BY_CLIENT_CLASS: tuple[tuple[type[Exception], type[BaseError]], ...] = (
    (client_errors.RequestTimeout, RequestTimeout),
    (client_errors.Disconnected, ExchangeNotAvailable),
    (client_errors.AuthenticationFailed, AuthenticationError),
    (client_errors.NotAuthenticated, AuthenticationError),
    (client_errors.NotAllowed, PermissionDenied),
    (client_errors.RateLimited, RateLimitExceeded),
    (client_errors.OrderNotFound, OrderNotFound),
    (client_errors.DuplicateOrder, DuplicateOrderId),
    (client_errors.InsufficientMargin, InsufficientFunds),
    (client_errors.InvalidOrder, InvalidOrder),
    (client_errors.ProtocolError, BadRequest),
)


def class_for(reason: RejectReason | str | None, command: str = "") -> type[BaseError]:
    """The CCXT class for a venue reject reason (ExchangeError if unknown)."""
    if reason is None:
        return ExchangeError
    try:
        reason = RejectReason(reason)
    except ValueError:
        return ExchangeError
    if reason is R.INVALID_FIELD and command in _ORDER_COMMANDS:
        return InvalidOrder
    return BY_REASON.get(reason, ExchangeError)


def translate(exc: BaseException, exchange_id: str = "exchangesim") -> BaseException:
    """The CCXT exception for an exception raised by :mod:`clients` or pyzmq
    (CCXT exceptions and anything unrelated are returned unchanged)."""
    if isinstance(exc, BaseError):
        return exc
    if isinstance(exc, zmq.ZMQError):
        return NetworkError(f"{exchange_id} {exc}")
    if not isinstance(exc, client_errors.ExchangeError):
        return exc
    reason = exc.reason
    if reason is not None:
        command = exc.event.command if exc.event is not None else ""
        cls = class_for(reason, command)
        if cls is BadRequest and reason is R.INVALID_FIELD and isinstance(exc, client_errors.InvalidOrder) \
                and exc.event is None:
            cls = InvalidOrder  # refused client-side while building an order
        return cls(f"{exchange_id} {reason.value}: {exc.message}", reason.value)
    for client_cls, cls in _BY_CLIENT_CLASS:
        if isinstance(exc, client_cls):
            return cls(f"{exchange_id} {exc.message}")
    return ExchangeError(f"{exchange_id} {exc.message}")


__all__ = [
    "BaseError", "ExchangeError", "AuthenticationError", "PermissionDenied", "AccountNotEnabled",
    "AccountSuspended", "ArgumentsRequired", "BadRequest", "BadSymbol", "OperationRejected", "NoChange",
    "MarginModeAlreadySet", "MarketClosed", "InsufficientFunds", "InvalidOrder", "OrderNotFound",
    "OrderNotCached", "OrderImmediatelyFillable", "OrderNotFillable", "DuplicateOrderId", "ContractUnavailable",
    "NotSupported", "OperationFailed", "NetworkError", "DDoSProtection", "RateLimitExceeded",
    "ExchangeNotAvailable", "OnMaintenance", "InvalidNonce", "RequestTimeout", "BadResponse", "NullResponse",
    "CancelPending", "ManualInteractionNeeded", "RestrictedLocation", "InvalidAddress", "AddressPending",
    "InvalidProxySettings", "ExchangeClosedByUser", "ChecksumError", "UnsubscribeError", "BY_REASON", "class_for", "translate",
]
