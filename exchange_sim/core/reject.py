"""The typed reject: how entry and views refuse a command, the lookups
that raise it, and how its message shows figures. ``Venue.apply`` /
``Venue.query`` turn a :class:`Reject` into one
:class:`~protocol.messages.Rejected` event (:func:`rejected`).

A message is for a person: prices in the quote currency, quantities in base
units, amounts in the asset, each followed by the wire's integer in
brackets (``59,940.2 USDT [599402 ticks]``, ``0.010 BTC [10 lots]``); margin
ratios as :func:`protocol.units.ratio_text` writes them."""

from __future__ import annotations

from decimal import Decimal

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


def _human(d: Decimal) -> str:
    return f"{d:,f}"


def price_text(ins: Instrument, ticks: int) -> str:
    """``59,940.2 USDT [599402 ticks]``: a price in the quote currency."""
    return f"{_human(ticks * ins.tick_size)} {ins.settlement} [{ticks} ticks]"


def qty_text(ins: Instrument, lots: int) -> str:
    """``0.010 BTC [10 lots]``: a quantity in base units."""
    return f"{_human(lots * ins.lot_size)} {ins.underlying} [{lots} lot{'' if lots == 1 else 's'}]"


def amount_text(a: Asset, minor: int) -> str:
    """``1.500000 USDT [1500000 minor units]``: an amount of an asset."""
    return f"{_human(Decimal(minor).scaleb(-a.decimals))} {a.name} [{minor} minor unit{'' if minor == 1 else 's'}]"
