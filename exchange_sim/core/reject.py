"""The typed reject: how entry and views refuse a command, and the lookups
that raise it. ``Venue.apply`` / ``Venue.query`` turn a :class:`Reject`
into one :class:`~protocol.messages.Rejected` event (:func:`rejected`)."""

from __future__ import annotations

from exchange_sim.accounts import Account
from exchange_sim.core.state import State
from exchange_sim.instruments import Asset, Instrument
from protocol.messages import Rejected, RejectReason

R = RejectReason


class Reject(Exception):
    """Raised by validation; the command changed nothing."""

    def __init__(self, reason: RejectReason, message: str):
        self.reason = reason
        self.message = message


def rejected(cmd, reason: RejectReason, message: str) -> Rejected:
    """The ``Rejected`` event for ``cmd``, echoing its well-typed ids."""
    account = getattr(cmd, "account", None)
    order_id = getattr(cmd, "order_id", None)
    cid = getattr(cmd, "client_order_id", None)
    return Rejected(
        reason=reason,
        message=message,
        command=type(cmd).__name__,
        account=account if type(account) is int else None,
        order_id=order_id if type(order_id) is int else None,
        client_order_id=cid if type(cid) is str else None,
    )


def int_in(value: object, lo: int, hi: int) -> bool:
    return type(value) is int and lo <= value <= hi


def account(state: State, account_id) -> Account:
    acct = state.accounts.get(account_id) if type(account_id) is int else None
    if acct is None:
        raise Reject(R.UNKNOWN_ACCOUNT, f"account {account_id!r} does not exist (deposit first)")
    return acct


def instrument(state: State, symbol) -> Instrument:
    ins = state.instruments.get(symbol) if type(symbol) is str else None
    if ins is None:
        raise Reject(R.UNKNOWN_SYMBOL, f"unknown symbol {symbol!r}")
    return ins


def asset(state: State, name) -> Asset:
    a = state.assets.get(name) if type(name) is str else None
    if a is None:
        raise Reject(R.UNKNOWN_ASSET, f"unknown asset {name!r}")
    return a
