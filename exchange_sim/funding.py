"""Perpetual funding: the rate, and who pays whom.

Binance's formula, with the top of the book as the impact price:

    premium = (max(0, best bid − mark) − max(0, mark − best ask)) / mark
    rate    = premium + clamp(interest − premium, −clamp, +clamp)
    rate    = clamp(rate, −cap, +cap)

A positive rate means longs pay shorts. Payment of a position is
``qty × mark × value × rate``; the rate is fixed to an integer of 1e-8 units
first, and every payment is floored (a payer pays the rounded-up amount, a
receiver gets the rounded-down one), so rounding always goes against the
account. The few minor units of rounding left over go to the venue's fee
ledger: funding is zero-sum up to that dust, and the money-conservation
check counts it. An isolated position pays from, and receives into, its own
allocation; only the part of a payment beyond the allocation comes from the
wallet (``Clearing.settle_funding``).
"""

from __future__ import annotations

from decimal import Decimal

from exchange_sim.config import FundingParams
from exchange_sim.instruments import Instrument

RATE_SCALE = 10**8


class FundingRule:
    __slots__ = ("interval_ns", "interest", "clamp", "cap")

    def __init__(self, params: FundingParams):
        self.interval_ns = params.interval_s * 1_000_000_000
        self.interest = float(Decimal(params.interest_rate))
        self.clamp = float(Decimal(params.clamp))
        self.cap = float(Decimal(params.cap))

    def premium(self, ins: Instrument) -> float:
        mark = ins.mark
        bid, ask = ins.book.best_bid(), ins.book.best_ask()
        up = max(0, bid - mark) if bid is not None else 0
        down = max(0, mark - ask) if ask is not None else 0
        return (up - down) / mark

    def rate_e8(self, premium: float) -> int:
        """The rate in 1e-8 units (an integer, so payments are exact)."""
        rate = premium + min(max(self.interest - premium, -self.clamp), self.clamp)
        rate = min(max(rate, -self.cap), self.cap)
        return round(rate * RATE_SCALE)


def payment(qty: int, mark: int, value: int, rate_e8: int) -> int:
    """Signed settlement minor units credited to a position (floored)."""
    return (-qty * mark * value * rate_e8) // RATE_SCALE
