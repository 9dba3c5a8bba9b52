"""What an agent reads of the venue, in its units (read-only, in process).

Agents run in the server's thread between two commands, so they read the
venue's public state directly — the same figures a ``QueryBook`` or
``QueryAccount`` would give, without a round trip. Prices here are floats
of ticks (a decision, not money); every order leaves as integer ticks and
lots, rounded away from the index (bids down, asks up) so a quote is never
better than the agent meant.
"""

from __future__ import annotations

import math

from exchange_sim.instruments import Instrument


def centre(venue, ins: Instrument) -> float | None:
    """The index of ``ins``'s underlying in ticks of ``ins`` (None: no index yet)."""
    index = venue.assets[ins.underlying].index
    return index / ins.tick_e8 if index else None


def position(venue, account: int, symbol: str) -> int:
    """The account's net position in ``symbol``, lots (0 if none or no account)."""
    acct = venue.accounts.get(account)
    if acct is None:
        return 0
    pos = acct.positions.get(symbol)
    return pos.qty if pos is not None else 0


def usd(ins: Instrument, lots: int, price: float) -> float:
    """USD notional of ``lots`` at ``price`` ticks (settlement asset taken at 1 USD)."""
    return lots * price * ins.value / ins.settle_unit


def lots_for(ins: Instrument, usd_size: float, price: int) -> int:
    """Lots worth about ``usd_size`` at ``price`` ticks: at least the minimum
    notional, at most the instrument's maximum quantity."""
    per_lot = price * ins.value  # settlement minor units
    want = int(usd_size * ins.settle_unit / per_lot)
    least = -(-ins.min_notional // per_lot)
    return max(1, min(max(want, least), ins.max_qty))


def bid_at(c: float, bps: float) -> int:
    """A bid ``bps`` under ``c`` ticks, rounded down (at least 1 tick)."""
    return max(1, math.floor(round(c * (1 - bps / 10_000), 6)))  # round first: 59,987.9999999 is 59,988


def ask_at(c: float, bps: float) -> int:
    """An ask ``bps`` over ``c`` ticks, rounded up."""
    return max(1, math.ceil(round(c * (1 + bps / 10_000), 6)))
