"""Marginal brackets, like income-tax brackets.

Both haircuts (by collateral value) and margin tiers (by notional) use them:
each rate applies only to the slice of the amount inside its bracket, so the
result is continuous in the amount. Binance's tier tables express the same
thing as ``amount * rate_of_tier - cumulative_amount``; precomputing the
cumulative amount at each bracket's lower bound makes one evaluation a short
scan plus one multiply.

>>> b = Brackets([(100.0, 0.1), (float("inf"), 0.5)])
>>> b.amount(50.0), b.amount(100.0), b.amount(300.0)
(5.0, 10.0, 110.0)
"""

from __future__ import annotations

from collections.abc import Sequence


class Brackets:
    """Piecewise-linear, continuous ``amount(x)`` from (upper bound, rate) rows."""

    __slots__ = ("uppers", "rates", "lowers", "bases")

    def __init__(self, rows: Sequence[Sequence[float]]):
        self.uppers = [float(r[0]) for r in rows]
        self.rates = [float(r[1]) for r in rows]
        self.lowers = [0.0] + self.uppers[:-1]
        self.bases: list[float] = []
        base = 0.0
        for lo, hi, rate in zip(self.lowers, self.uppers, self.rates):
            self.bases.append(base)
            base += (hi - lo) * rate

    def amount(self, x: float) -> float:
        """Σ rate_k × (part of ``x`` inside bracket k). O(brackets); x ≥ 0."""
        uppers = self.uppers
        i = 0
        # Brackets are few (2-5): a linear scan beats bisect's call overhead.
        while x > uppers[i]:
            i += 1
        return self.bases[i] + (x - self.lowers[i]) * self.rates[i]

    def first_rate(self) -> float:
        return self.rates[0]
