"""Leverage per account and symbol, and the notional tiers that bound it.

Binance USD-M / Bybit semantics (docs/adr/0010-leverage.md):

- an account picks a leverage ``L`` per symbol (``SetLeverage``); its
  initial-margin rate there is ``1/L`` but never below the notional tier's
  own: the IM term of a symbol's worst-side exposure ``n`` (position and open
  orders, USD) is ``max(|n| / L, IM tiers(|n|))``
  (:meth:`~exchange_sim.risk.models.RiskModel.im_part_at`, the one place
  that computes it);
- a symbol never set has no leverage of its own: its IM is the tiers' alone,
  exactly today's figures; it *reports* the first tier's maximum (what the
  tiers charge on a small position);
- a tier's maximum leverage is ``floor(1 / its IM rate)``; the maximum an
  account may set is the one of the tier its current notional (position and
  open orders, worst side) falls in.

The tier table reads like Binance's ``GET /fapi/v1/leverageBracket``: each
bracket's notional floor and cap, its maximum leverage, maintenance rate and
maintenance amount (``cum``), with ``MM = notional × rate − cum`` inside the
bracket: the same figure as the marginal brackets of
:mod:`exchange_sim.risk.brackets`.
"""

from __future__ import annotations

import math

from exchange_sim.instruments import Instrument
from protocol.messages import LeverageTier, SymbolLeverageTiers


def rate_leverage(rate: float) -> int:
    """The maximum leverage an IM rate allows: ``floor(1 / rate)``, at least
    1 (a hair of tolerance so 0.01 gives 100, not 99 from float rounding)."""
    if rate <= 0.0:
        return 1_000  # an unmargined tier: the protocol's bound
    return max(1, math.floor(1.0 / rate + 1e-9))


def bracket_index(ins: Instrument, notional: float) -> int:
    """The tier ``notional`` (USD, ≥ 0) falls in (a notional on a cap is in
    the lower tier, as :meth:`Brackets.amount` counts it)."""
    uppers = ins.im_tiers.uppers
    i = 0
    while notional > uppers[i]:
        i += 1
    return i


def max_leverage(ins: Instrument, notional: float) -> int:
    """The highest leverage the tier of ``notional`` (USD) allows."""
    return rate_leverage(ins.im_tiers.rates[bracket_index(ins, notional)])


def default_leverage(ins: Instrument) -> int:
    """What a symbol never set reports: the first tier's maximum."""
    return rate_leverage(ins.im_tiers.rates[0])


def tiers(ins: Instrument) -> SymbolLeverageTiers:
    """The symbol's brackets, Binance ``leverageBracket`` style."""
    im, mm = ins.im_tiers, ins.mm_tiers
    rows = []
    for k, (lo, hi, im_rate, mm_rate, base) in enumerate(zip(mm.lowers, mm.uppers, im.rates, mm.rates, mm.bases)):
        rows.append(
            LeverageTier(
                bracket=k + 1, notional_floor=lo, notional_cap=None if hi == math.inf else hi,
                max_leverage=rate_leverage(im_rate), im_rate=im_rate, mm_rate=mm_rate,
                mm_amount=lo * mm_rate - base,
            )
        )
    return SymbolLeverageTiers(symbol=ins.symbol, tiers=rows)
