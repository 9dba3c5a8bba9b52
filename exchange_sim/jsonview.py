"""JSON for people: protocol messages with money as exact decimal strings.

The protocol carries risk figures (equity, IM, MM, explain's breakdown) as
floats in USD: estimates, computed in binary floating point, so a JSON dump
shows ``750.0000000000001`` or ``-11590.984082000003``. :func:`view` turns
a message into plain JSON data a person (or a script using ``Decimal``) can
read exactly:

- USD money figures (:data:`MONEY`) become decimal strings rounded
  **half-even** to the settlement asset's minor unit (6 decimals for USDT):
  ``"750.000000"``. Half-even, not "against the account", because these are
  display figures of float estimates: rounding a requirement up would turn
  float noise (``750.0000000000001``) into a visible extra minor unit, while
  half-even of the float's shortest text gives back the exact figure
  whenever the float is within half a minor unit of it. The venue's own
  balances and fees are integers of minor units and stay integers;
- USD prices per unit (:data:`PRICES`) become decimal strings with 8
  decimals (index prices are integers of 1e-8 USD, so this is exact);
- every other float (ratios, rates, scenario moves, average entry prices in
  ticks) stays a JSON number, rounded to 12 significant digits so binary
  noise (``0.006999999999999999``) reads as ``0.007``.

:data:`UNITS` says this in one line, for the top of a JSON document.
"""

from __future__ import annotations

import math
from decimal import ROUND_HALF_EVEN, Context, Decimal

import msgspec

#: message tag -> its fields that are USD money figures (floats in the protocol)
MONEY: dict[str, frozenset[str]] = {
    "Explain": frozenset({"collateral", "upnl", "equity", "im", "mm", "floor"}),
    "ExplainAsset": frozenset({"value", "haircut", "counted"}),
    "HaircutSlice": frozenset({"up_to", "value_in_bracket", "haircut"}),
    "ExplainPosition": frozenset({"notional", "upnl", "cross_im", "cross_mm", "impact", "isolated_margin", "im"}),
    "ExplainScenario": frozenset({"loss"}),
    "ModeRequirement": frozenset({"im", "mm", "usable_collateral", "free"}),
    "AccountUpdate": frozenset({"collateral", "equity", "im", "mm"}),
    "PositionView": frozenset({"im", "mm"}),
    "MarginCall": frozenset({"equity", "mm"}),
    "LiquidationStarted": frozenset({"equity", "mm"}),
    "LiquidationSlice": frozenset({"impact"}),
    "LiquidationFinished": frozenset({"equity", "mm"}),
    # --- leverage
    "LeverageTier": frozenset({"notional_floor", "notional_cap", "mm_amount"}),
    "SymbolLeverage": frozenset({"notional"}),
}
#: message tag -> its fields that are USD prices per whole unit (floats)
PRICES: dict[str, frozenset[str]] = {
    "ExplainAsset": frozenset({"index_price"}),
    "CollateralConversion": frozenset({"price"}),
}
PRICE_DECIMALS = 8
SIGNIFICANT = 12

UNITS = ("USD money figures are decimal strings rounded half-even to the settlement asset's minor unit "
         "({decimals} decimals); USD prices per unit are decimal strings with 8 decimals; balances, fees "
         "and amounts are integers of minor units; quantities are integers of lots and instrument prices "
         "integers of ticks (entry_price: their average); ratios, rates and moves are numbers")

_WIDE = Context(prec=80)  # room for any double's digits plus the decimals


def decimal_text(x: float, decimals: int) -> str | None:
    """``x`` as a decimal string with ``decimals`` places, rounded half-even
    from its shortest text (``repr``); ``None`` for inf/nan (JSON has neither).

    >>> decimal_text(-11590.984082000003, 6)
    '-11590.984082'
    """
    if not math.isfinite(x):
        return None
    d = Decimal(repr(float(x))).quantize(Decimal(1).scaleb(-decimals), rounding=ROUND_HALF_EVEN, context=_WIDE)
    return f"{abs(d) if d == 0 else d:f}"


def _number(x: float) -> float | None:
    return float(f"{x:.{SIGNIFICANT}g}") if math.isfinite(x) else None


def _walk(node, decimals: int, tag: str | None = None, field: str | None = None):
    if isinstance(node, dict):
        own = node.get("msg") if isinstance(node.get("msg"), str) else None
        if own is not None:
            return {k: _walk(v, decimals, own, k) for k, v in node.items()}
        return {k: _walk(v, decimals, tag, field) for k, v in node.items()}  # a map inside a field
    if isinstance(node, (list, tuple)):
        return [_walk(v, decimals, tag, field) for v in node]
    if isinstance(node, float):
        if field in MONEY.get(tag, ()):
            return decimal_text(node, decimals)
        if field in PRICES.get(tag, ()):
            return decimal_text(node, PRICE_DECIMALS)
        return _number(node)
    return node


def view(msg: msgspec.Struct | list, decimals: int) -> object:
    """``msg`` (a message, or a list of them) as JSON-ready builtins with
    money exact; ``decimals`` = the settlement asset's decimals."""
    return _walk(msgspec.to_builtins(msg), decimals)


def encode(msg: msgspec.Struct | list, decimals: int, *, units: bool = False) -> str:
    """:func:`view` as one line of JSON; ``units=True`` adds a top-level
    ``"units"`` note (:data:`UNITS`) to a message."""
    data = view(msg, decimals)
    if units and isinstance(data, dict):
        data["units"] = UNITS.format(decimals=decimals)
    return msgspec.json.encode(data).decode()
