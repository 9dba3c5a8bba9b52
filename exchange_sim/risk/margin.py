"""Cross margin: collateral after haircuts, equity, IM and MM.

    collateral CV = Σ_assets counted(value)   counted(v) = v − haircut(v) if v ≥ 0
                                                          = v             if v < 0
    equity     E  = CV + Σ uPnL at mark
    MM            = Σ_positions mm_tiers(|qty × mark| in USD)
    IM            = Σ_symbols   im_tiers(worst-case notional in USD)

The worst case of a symbol counts its resting orders as filled at their
limit prices, one side at a time (all buys, or all sells), and keeps the
larger: this is the pre-trade rule "IM with this order and the account's
other open orders on the same side filled" (Binance computes open-order
margin the same way). Haircut brackets and margin tiers are marginal
(:mod:`exchange_sim.risk.brackets`).

The figures are floats in USD: risk estimates, never balances. They are
cached per account and recomputed only when its wallet, positions or the
venue's prices changed (``epoch``), so a pre-trade check costs O(1) tier
evaluations for the symbol it touches, not a rescan of the account.
"""

from __future__ import annotations

from exchange_sim.accounts import Account
from exchange_sim.instruments import Asset, Instrument


def counted_value(asset: Asset, balance: int) -> tuple[float, float]:
    """(USD value, value counted after haircut) of a balance."""
    value = asset.usd(balance)
    if value <= 0.0:
        return value, value  # a debt counts in full: no haircut benefit
    return value, value - asset.haircut.amount(value)


def symbol_im(ins: Instrument, qty: int, totals: list[int] | None) -> float:
    """IM of one symbol: worst of (all buys fill, all sells fill), USD."""
    exposure = qty * ins.mark
    if totals is None:
        worst = exposure if exposure >= 0 else -exposure
    else:
        up = exposure + totals[1]
        down = exposure - totals[3]
        up = up if up >= 0 else -up
        down = down if down >= 0 else -down
        worst = up if up > down else down
    if worst == 0:
        return 0.0
    return ins.im_tiers.amount(ins.usd(worst))


def refresh(acct: Account, assets: dict[str, Asset], instruments: dict[str, Instrument], epoch: int) -> None:
    """Recompute every cached figure of ``acct``. O(assets + symbols)."""
    cv = 0.0
    for name, bal in acct.balances.items():
        if bal:
            cv += counted_value(assets[name], bal)[1]
    upnl = 0
    mm = 0.0
    for sym, pos in acct.positions.items():
        if pos.qty:
            ins = instruments[sym]
            upnl += (pos.qty * ins.mark - pos.cost) * ins.value
            notional = pos.qty * ins.mark
            mm += ins.mm_tiers.amount(ins.usd(notional if notional >= 0 else -notional))
    im = acct.im_by_symbol
    im.clear()
    for sym in set(acct.positions) | set(acct.open_totals):
        value = symbol_im(instruments[sym], acct.position_qty(sym), acct.open_totals.get(sym))
        if value:
            im[sym] = value
    acct.collateral = cv
    acct.upnl = upnl
    acct.mm = mm
    acct.im_total = float(sum(im.values()))
    acct.cache_epoch = epoch


def equity(acct: Account, settle_unit: int) -> float:
    """Equity in USD from the caches (call :func:`refresh` first)."""
    return acct.collateral + acct.upnl / settle_unit


def position_mm(ins: Instrument, qty: int) -> float:
    notional = qty * ins.mark
    return ins.mm_tiers.amount(ins.usd(notional if notional >= 0 else -notional))
