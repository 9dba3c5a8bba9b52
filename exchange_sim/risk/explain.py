"""``explain``: every margin figure of one account, and a readable rendering.

The teaching view of the source article: each collateral asset before and
after its haircut (bracket by bracket), each position with its own cross
requirement and its margin impact, the portfolio stress scenarios with the
worst one marked, and the same holdings under isolated, cross and portfolio
margin side by side — the capital-efficiency comparison.

Usable collateral per mode: cross and portfolio pool every asset after its
haircut; isolated margin can only be funded from the settlement asset (as on
Binance, whose multi-asset mode is cross-only), so BTC and ETH back nothing
there. ``free`` = usable collateral + uPnL − IM: what is left to open new
trades, i.e. the idle capital the article talks about.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from exchange_sim.accounts import Account
from exchange_sim.risk.margin import ISOLATED, counted_value
from protocol.messages import (
    PRICE_SCALE,
    Explain,
    ExplainAsset,
    ExplainPosition,
    ExplainScenario,
    HaircutSlice,
    MarginMode,
    ModeRequirement,
)
from protocol.units import ratio_text

if TYPE_CHECKING:
    from exchange_sim.core.state import State


def _brackets(asset, value: float) -> list[HaircutSlice]:
    out = []
    b = asset.haircut
    for lo, hi, rate in zip(b.lowers, b.uppers, b.rates):
        inside = min(max(value - lo, 0.0), hi - lo)
        if inside <= 0.0 and out:
            break
        out.append(HaircutSlice(up_to=hi if hi != float("inf") else None, rate=rate, value_in_bracket=inside, haircut=inside * rate))
    return out


def build(venue: State, acct: Account) -> Explain:
    m = venue.margin
    m.fresh(acct)
    unit = venue.settle.unit
    assets = []
    for name, asset in venue.assets.items():
        bal = acct.balances.get(name, 0)
        if not bal:
            continue
        value, counted = counted_value(asset, bal)
        assets.append(
            ExplainAsset(
                asset=name, balance=bal, index_price=asset.index / PRICE_SCALE, value=value,
                haircut=value - counted, counted=counted, brackets=_brackets(asset, value) if value > 0 else [],
            )
        )
    exposures = m.exposures(acct)
    impacts = m.model(acct).impacts(exposures) if exposures else []
    positions = []
    for (ins, notional), impact in zip(exposures, impacts):
        pos = acct.positions[ins.symbol]
        gross = abs(notional)
        positions.append(
            ExplainPosition(
                symbol=ins.symbol, underlying=ins.underlying, qty=pos.qty, entry_price=pos.entry_price(),
                mark=ins.mark, notional=notional, upnl=ins.upnl(pos.qty, pos.cost) / unit,
                cross_im=ins.im_tiers.amount(gross), cross_mm=ins.mm_tiers.amount(gross), impact=impact,
                isolated_margin=acct.isolated.get(ins.symbol, 0) / unit,
                leverage=acct.leverage.get(ins.symbol), im=m.position_im(acct, ins, gross),
            )
        )
    pm = m.portfolio
    scenarios = []
    if exposures:
        held = {ins.underlying for ins, _ in exposures}
        # scenarios led by an underlying the account holds, and the whole market
        rows = [r for r in pm.scenarios(exposures) if r[0].split(" ")[0] in held | {"market"}]
        # a custom model may list no scenarios at all
        worst = max(range(len(rows)), key=lambda k: rows[k][2]) if rows else -1
        scenarios = [
            ExplainScenario(name=name, moves={u: v for u, v in moves.items() if u in held}, loss=loss, worst=(k == worst))
            for k, (name, moves, loss) in enumerate(rows)
        ]
    upnl = acct.upnl / unit
    alloc = sum(acct.isolated.values()) / unit
    pooled = acct.collateral + alloc
    settle_only = max(acct.balances.get(venue.settle_name, 0), 0) / unit + alloc
    compare = []
    for mode in (MarginMode.ISOLATED, MarginMode.CROSS, MarginMode.PORTFOLIO):
        im, mm = m.mode_requirement(acct, mode)
        usable = settle_only if mode is ISOLATED else pooled
        compare.append(
            ModeRequirement(
                mode=mode, im=im, mm=mm, usable_collateral=usable, free=usable + upnl - im,
                margin_ratio=(usable + upnl) / mm if mm > 0 else None,
            )
        )
    gross_total = sum(abs(n) for _, n in exposures)
    return Explain(
        account=acct.id, mode=acct.margin_mode, assets=assets, positions=positions, scenarios=scenarios,
        collateral=acct.collateral, upnl=upnl, equity=m.equity(acct), im=acct.im_total, mm=acct.mm,
        margin_ratio=m.ratio(acct), floor=pm.floor_rate * gross_total if hasattr(pm, "floor_rate") else 0.0,
        compare=compare, profile=getattr(pm, "profile_name", "custom"),
    )


def render(ex: Explain) -> str:
    """Plain-text rendering of an :class:`Explain`, for terminals and lessons."""
    lines = [f"Account {ex.account} — {ex.mode} margin (portfolio profile: {ex.profile})", ""]
    lines.append("Collateral (each asset at index, after its tiered haircut)")
    lines.append(f"  {'asset':<6}{'value $':>14}{'haircut $':>12}{'counted $':>14}   brackets")
    for a in ex.assets:
        br = ", ".join(f"{s.rate:.0%} on ${s.value_in_bracket:,.0f}" for s in a.brackets) or "debt: counted in full"
        lines.append(f"  {a.asset:<6}{a.value:>14,.2f}{a.haircut:>12,.2f}{a.counted:>14,.2f}   {br}")
    lines.append(f"  {'total':<6}{'':>14}{'':>12}{ex.collateral:>14,.2f}")
    lines.append("")
    if ex.positions:
        lines.append("Positions (notional at mark; cross requirement of each alone; margin impact in this mode)")
        lines.append(f"  {'symbol':<11}{'notional $':>14}{'uPnL $':>11}{'cross IM':>11}{'cross MM':>11}{'impact':>10}")
        for p in ex.positions:
            lines.append(
                f"  {p.symbol:<11}{p.notional:>14,.2f}{p.upnl:>11,.2f}{p.cross_im:>11,.2f}{p.cross_mm:>11,.2f}{p.impact:>10,.2f}"
            )
        # --- leverage: only the symbols an account set (the default is the tiers, shown above)
        levered = [p for p in ex.positions if p.leverage is not None]
        if levered:
            ignored = " (portfolio margin ignores it)" if ex.mode == MarginMode.PORTFOLIO else ""
            lines.append("Leverage set" + ignored + ": " + ", ".join(
                f"{p.symbol} {p.leverage}x (IM ${p.im:,.2f})" for p in levered))
        lines.append("")
    if ex.scenarios:
        lines.append(f"Portfolio stress scenarios (loss $; floor ${ex.floor:,.2f})")
        for s in ex.scenarios:
            moves = " ".join(f"{u} {v:+.2%}" for u, v in s.moves.items())
            mark = "  <- worst" if s.worst else ""
            lines.append(f"  {s.name:<10}{s.loss:>12,.2f}   {moves}{mark}")
        lines.append("")
    lines.append(
        f"Equity ${ex.equity:,.2f} = collateral ${ex.collateral:,.2f} + uPnL ${ex.upnl:,.2f}"
        + (" + isolated allocations" if any(p.isolated_margin for p in ex.positions) else "")
    )
    lines.append(f"IM ${ex.im:,.2f}   MM ${ex.mm:,.2f}   margin ratio (equity / MM) {ratio_text(ex.margin_ratio)}")
    lines.append("")
    lines.append("The same holdings under each margin mode")
    lines.append(f"  {'mode':<10}{'IM $':>12}{'MM $':>12}{'usable collateral $':>21}{'free (idle) $':>15}{'ratio':>14}")
    for c in ex.compare:
        lines.append(
            f"  {c.mode:<10}{c.im:>12,.2f}{c.mm:>12,.2f}{c.usable_collateral:>21,.2f}{c.free:>15,.2f}{ratio_text(c.margin_ratio):>14}"
        )
    return "\n".join(lines)
