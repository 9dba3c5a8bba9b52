"""Typed exceptions: one per kind of refusal a bot handles differently.

Every exception the venue causes is an :class:`ExchangeError` carrying the
wire ``reason`` (:class:`~protocol.messages.RejectReason`), the readable
``message`` and the ``Rejected`` event itself. :func:`error_for` picks the
class from the reason::

    ExchangeError
    ├── ProtocolError            MALFORMED, UNKNOWN_MESSAGE (a client bug)
    ├── NotAuthenticated         NOT_LOGGED_IN
    │   └── AuthenticationFailed AUTH_FAILED
    ├── NotAllowed               NOT_ALLOWED (admin only, another account's order)
    ├── RateLimited              RATE_LIMITED (back off and retry)
    ├── OrderRejected            any other refusal of an order or command
    │   ├── InvalidOrder         (also a ValueError) bad tick/lot, band, min notional, post-only...
    │   ├── InsufficientMargin   INSUFFICIENT_MARGIN, INSUFFICIENT_BALANCE, REDUCE_ONLY_MODE,
    │   │                        LEVERAGE_INSUFFICIENT_MARGIN
    │   └── DuplicateOrder       DUPLICATE_CLIENT_ORDER_ID
    ├── OrderNotFound            (also a LookupError) UNKNOWN_ORDER
    ├── InternalError            INTERNAL: the server failed; the command's effect is unknown
    ├── RequestTimeout           (also a TimeoutError) no answer in time
    └── Disconnected             the server ended the session (logout, heartbeat timeout, shutdown)
"""

from __future__ import annotations

from protocol.messages import Rejected, RejectReason

R = RejectReason


class ExchangeError(Exception):
    """A refusal from the venue or the server. ``reason`` may be None for
    client-side conditions (timeouts, disconnects)."""

    def __init__(self, message: str, reason: RejectReason | None = None, event: Rejected | None = None):
        super().__init__(f"{reason.value}: {message}" if reason is not None else message)
        self.reason = reason
        self.message = message
        self.event = event


class ProtocolError(ExchangeError):
    pass


class NotAuthenticated(ExchangeError):
    pass


class AuthenticationFailed(NotAuthenticated):
    pass


class NotAllowed(ExchangeError):
    pass


class RateLimited(ExchangeError):
    pass


class OrderRejected(ExchangeError):
    pass


class InvalidOrder(OrderRejected, ValueError):
    pass


class InsufficientMargin(OrderRejected):
    pass


class DuplicateOrder(OrderRejected):
    pass


class OrderNotFound(ExchangeError, LookupError):
    pass


class InternalError(ExchangeError):
    """The server failed while handling the command (``INTERNAL``): its bug,
    not the caller's. Unlike every other refusal, the command may have been
    partly applied: query the orders and account before acting again, and do
    not resend blindly (a resent order may be a second order)."""


class RequestTimeout(ExchangeError, TimeoutError):
    pass


class Disconnected(ExchangeError):
    pass


_BY_REASON: dict[RejectReason, type[ExchangeError]] = {
    R.MALFORMED: ProtocolError,
    R.UNKNOWN_MESSAGE: ProtocolError,
    R.NOT_LOGGED_IN: NotAuthenticated,
    R.AUTH_FAILED: AuthenticationFailed,
    R.NOT_ALLOWED: NotAllowed,
    R.RATE_LIMITED: RateLimited,
    R.INSUFFICIENT_MARGIN: InsufficientMargin,
    R.INSUFFICIENT_BALANCE: InsufficientMargin,
    R.REDUCE_ONLY_MODE: InsufficientMargin,
    R.DUPLICATE_CLIENT_ORDER_ID: DuplicateOrder,
    R.UNKNOWN_ORDER: OrderNotFound,
    R.INTERNAL: InternalError,
    R.INVALID_FIELD: InvalidOrder,
    R.UNKNOWN_SYMBOL: InvalidOrder,
    R.UNKNOWN_ASSET: InvalidOrder,
    R.BAD_TICK: InvalidOrder,
    R.BAD_LOT: InvalidOrder,
    R.BELOW_MIN_NOTIONAL: InvalidOrder,
    R.ABOVE_MAX_QTY: InvalidOrder,
    R.OUTSIDE_PRICE_BAND: InvalidOrder,
    R.MISSING_PRICE: InvalidOrder,
    R.MISSING_STOP_PRICE: InvalidOrder,
    R.POST_ONLY_WOULD_CROSS: InvalidOrder,
    R.FOK_NOT_FILLABLE: InvalidOrder,
    R.REDUCE_ONLY_WOULD_INCREASE: InvalidOrder,
    R.NOTHING_TO_AMEND: InvalidOrder,
    # --- leverage
    R.LEVERAGE_ABOVE_MAX: InvalidOrder,
    R.LEVERAGE_INSUFFICIENT_MARGIN: InsufficientMargin,
}


def error_for(rej: Rejected) -> ExchangeError:
    """The exception for a ``Rejected`` event (OrderRejected when no finer class fits)."""
    try:
        reason = RejectReason(rej.reason)
    except ValueError:
        return OrderRejected(rej.message, None, rej)
    return _BY_REASON.get(reason, OrderRejected)(rej.message, reason, rej)
