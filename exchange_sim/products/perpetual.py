"""The USDT-margined linear perpetual: one contract kind.

In integers of the settlement asset's minor unit, with ``value`` = minor
units per (1 tick × 1 lot), fixed by the instrument's config
(:mod:`exchange_sim.instruments`):

    notional(price, qty) = price × qty × value
    uPnL(qty, cost)      = (qty × mark − cost) × value      (cost: Σ price × lots, accounts.Position)
    isolated MM          = MM tiers of |qty| × mark, in USD
    (initial margin is the margin models' alone: it depends on the account's
    leverage, exchange_sim.risk.leverage)

Funding is the perpetual's own cash flow (:mod:`exchange_sim.funding`); a
dated future would have settlement at expiry instead and no funding.
"""

from __future__ import annotations


class LinearPerpetual:
    """The contract arithmetic of a linear perpetual. A mixin of
    :class:`~exchange_sim.instruments.Instrument`, which sets ``value``,
    ``settle_unit``, ``mark``, the fee fractions and the margin tiers."""

    __slots__ = ()
    kind = "perpetual"
    #: funding is paid between longs and shorts of this kind
    funded = True

    def notional(self, price: int, qty: int) -> int:
        """Settlement minor units of ``qty`` lots at ``price`` ticks (signed as qty)."""
        return price * qty * self.value

    def upnl(self, qty: int, cost: int) -> int:
        """Unrealized PnL at mark of a position of ``qty`` lots and ``cost``
        (Σ price × lots), settlement minor units, exact."""
        return (qty * self.mark - cost) * self.value

    def usd(self, ticks_lots: int) -> float:
        """USD value of a ``price_ticks * qty_lots`` product (a risk estimate)."""
        return ticks_lots * self.value / self.settle_unit

    def fee(self, notional: int, maker: bool) -> int:
        """Fee in settlement minor units, rounded up (against the account)."""
        num, den = self.maker_fee if maker else self.taker_fee
        return -((-notional * num) // den)

    def isolated_mm(self, qty: int) -> float:
        """USD maintenance margin of a position of ``qty`` lots at mark alone."""
        return self.mm_tiers.amount(self.usd(abs(qty) * self.mark))
