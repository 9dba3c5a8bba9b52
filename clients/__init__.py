"""Python clients for exchange-sim.

- :class:`Client` — blocking; :class:`AsyncClient` — asyncio (``zmq.asyncio``);
  the same methods: login, place/buy/sell, cancel, amend, cancel_all,
  account, positions, open_orders, book, batch, admin calls, and a stream
  of private events. Decimal human units in and out (:mod:`clients.models`).
- :class:`BookMirror` — a local L2 book in sync with the venue (snapshot +
  sequenced deltas + gap repair).
- Typed exceptions (:mod:`clients.errors`), each carrying the wire reason.
"""

from clients.aio import AsyncClient
from clients.client import Client
from clients.errors import (
    AuthenticationFailed,
    Disconnected,
    DuplicateOrder,
    ExchangeError,
    InsufficientMargin,
    InternalError,
    InvalidOrder,
    NotAllowed,
    NotAuthenticated,
    OrderNotFound,
    OrderRejected,
    ProtocolError,
    RateLimited,
    RequestTimeout,
)
from clients.mirror import BookMirror
from clients.models import AccountState, Book, Fill, OpenOrder, OrderResult, OrderUpdate, Position

__all__ = [
    "Client", "AsyncClient", "BookMirror",
    "ExchangeError", "ProtocolError", "NotAuthenticated", "AuthenticationFailed", "NotAllowed", "RateLimited",
    "OrderRejected", "InvalidOrder", "InsufficientMargin", "DuplicateOrder", "OrderNotFound", "RequestTimeout",
    "Disconnected", "InternalError",
    "AccountState", "Book", "Fill", "OpenOrder", "OrderResult", "OrderUpdate", "Position",
]
