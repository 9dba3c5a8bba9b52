"""Per-account margin: collateral after haircuts, equity, IM, MM, ratio.

    collateral CV = Σ_assets counted(value)    counted(v) = v − haircut(v)  if v ≥ 0
                                                           = v              if v < 0 (a debt counts in full)
    equity     E  = CV + Σ isolated allocations + Σ uPnL at mark
    MM, IM        = the account's margin model (cross, portfolio) on its positions
    margin ratio  = E / MM   (None = infinite when MM is 0)

Modes:

- **cross** and **portfolio**: one pool; the model comes from the config
  (``risk.models``, pluggable).
- **isolated**: each position carries its own allocation moved out of the
  wallet's settlement asset; MM per position is its cross MM; the position is
  at risk alone when allocation + uPnL < MM. The account's ratio is its worst
  position's ratio.

IM counts resting orders: per symbol, the worse of "all buys fill" and "all
sells fill" at their limit prices (Binance's open-order margin), kept as one
signed USD exposure per symbol in ``acct.hyp``, so a pre-trade check changes
one entry and asks the model once: O(symbols of the account), never a rescan
of its orders.

The figures are floats in USD (risk estimates, never balances). They are
cached per account and recomputed when its wallet or positions changed
(``cache_epoch = -1``) or any price moved (the venue's ``epoch``).
"""

from __future__ import annotations

from exchange_sim.accounts import Account
from exchange_sim.config import Config
from exchange_sim.instruments import Asset, Instrument
from exchange_sim.risk.models import CrossMargin, RiskModel, load_model
from protocol.messages import MarginMode

CROSS, PORTFOLIO, ISOLATED = MarginMode.CROSS, MarginMode.PORTFOLIO, MarginMode.ISOLATED


def counted_value(asset: Asset, balance: int) -> tuple[float, float]:
    """(USD value, value counted after haircut) of a balance."""
    value = asset.usd(balance)
    if value <= 0.0:
        return value, value  # a debt counts in full: no haircut benefit
    return value, value - asset.haircut.amount(value)


def worst_side(ins: Instrument, qty: int, totals: list[int] | None) -> int:
    """Signed ticks×lots exposure if all buys, or all sells, filled: the larger."""
    exposure = qty * ins.mark
    if totals is None:
        return exposure
    up = exposure + totals[1]
    down = exposure - totals[3]
    return up if (up if up >= 0 else -up) >= (down if down >= 0 else -down) else down


class MarginEngine:
    """Computes and caches every account's margin figures for the venue."""

    def __init__(self, config: Config, assets: dict[str, Asset], instruments: dict[str, Instrument], settle: Asset):
        self.assets = assets
        self.instruments = instruments
        self.settle = settle
        self.unit = settle.unit
        self.cross = load_model(config.risk.models.cross, config, instruments)
        self.portfolio = load_model(config.risk.models.portfolio, config, instruments)
        self.isolated = CrossMargin(config, instruments)  # per position
        self.models: dict[MarginMode, RiskModel] = {CROSS: self.cross, PORTFOLIO: self.portfolio}
        self.epoch = 0

    def model(self, acct: Account) -> RiskModel:
        return self.models.get(acct.margin_mode, self.isolated)

    # ------------------------------------------------------------- caches

    def fresh(self, acct: Account) -> Account:
        if acct.cache_epoch != self.epoch:
            self.refresh(acct)
        return acct

    def refresh(self, acct: Account) -> None:
        """Recompute every cached figure of ``acct``. O(assets + symbols)."""
        assets = self.assets
        cv = 0.0
        for name in sorted(acct.balances):
            bal = acct.balances[name]
            if bal:
                cv += counted_value(assets[name], bal)[1]
        upnl = 0
        exposures = []
        for sym in sorted(acct.positions):
            pos = acct.positions[sym]
            if pos.qty:
                ins = self.instruments[sym]
                upnl += (pos.qty * ins.mark - pos.cost) * ins.value
                exposures.append((ins, ins.usd(pos.qty * ins.mark)))
        hyp = acct.hyp
        hyp.clear()
        for sym in sorted(set(acct.positions) | set(acct.open_totals)):
            ins = self.instruments[sym]
            x = worst_side(ins, acct.position_qty(sym), acct.open_totals.get(sym))
            if x:
                hyp[sym] = ins.usd(x)
        model = self.model(acct)
        acct.collateral = cv
        acct.upnl = upnl
        acct.mm = model.mm(exposures) if exposures else 0.0
        acct.im_total = self._im(acct, model) if hyp else 0.0
        acct.cache_epoch = self.epoch

    def _im(self, acct: Account, model: RiskModel) -> float:
        # by symbol, so the float sum does not depend on the dict's history
        # (a venue restored from a snapshot must compute the same bits)
        ins = self.instruments
        return model.im([(ins[s], acct.hyp[s]) for s in sorted(acct.hyp)])

    def exposures(self, acct: Account) -> list[tuple[Instrument, float]]:
        """Positions as (instrument, signed USD notional at mark), by symbol."""
        out = []
        for sym in sorted(acct.positions):
            pos = acct.positions[sym]
            if pos.qty:
                ins = self.instruments[sym]
                out.append((ins, ins.usd(pos.qty * ins.mark)))
        return out

    def update_symbol(self, acct: Account, ins: Instrument) -> None:
        """Open orders of one symbol changed: update its IM exposure. O(model)."""
        if acct.cache_epoch != self.epoch:
            return  # the next fresh() recomputes everything
        x = worst_side(ins, acct.position_qty(ins.symbol), acct.open_totals.get(ins.symbol))
        if x:
            acct.hyp[ins.symbol] = ins.usd(x)
        else:
            acct.hyp.pop(ins.symbol, None)
        acct.im_total = self._im(acct, self.model(acct)) if acct.hyp else 0.0

    # ------------------------------------------------------------ figures

    def equity(self, acct: Account) -> float:
        """Equity in USD from the caches (call :meth:`fresh` first)."""
        alloc = sum(acct.isolated.values()) if acct.isolated else 0
        return acct.collateral + (acct.upnl + alloc) / self.unit

    def ratio(self, acct: Account) -> float | None:
        """Margin ratio E / MM (worst position's for isolated); None = infinite."""
        if acct.margin_mode is ISOLATED:
            worst = None
            for sym, pos in acct.positions.items():
                if pos.qty:
                    r = self.isolated_ratio(acct, self.instruments[sym], pos)
                    if r is not None and (worst is None or r < worst):
                        worst = r
            return worst
        if acct.mm <= 0.0:
            return None
        return self.equity(acct) / acct.mm

    def isolated_ratio(self, acct: Account, ins: Instrument, pos) -> float | None:
        mm = self.isolated.mm([(ins, ins.usd(pos.qty * ins.mark))])
        if mm <= 0.0:
            return None
        own = (acct.isolated.get(ins.symbol, 0) + (pos.qty * ins.mark - pos.cost) * ins.value) / self.unit
        return own / mm

    def im_after(self, acct: Account, ins: Instrument, new_totals: list[int]) -> tuple[float, float]:
        """(IM now, IM if the symbol's open orders were ``new_totals``)."""
        sym = ins.symbol
        x = worst_side(ins, acct.position_qty(sym), new_totals)
        hyp = dict(acct.hyp)
        if x:
            hyp[sym] = ins.usd(x)
        else:
            hyp.pop(sym, None)
        inst = self.instruments
        after = self.model(acct).im([(inst[s], hyp[s]) for s in sorted(hyp)]) if hyp else 0.0
        return acct.im_total, after

    def isolated_need(self, acct: Account, ins: Instrument, new_totals: list[int]) -> float:
        """USD the wallet must still provide for isolated IM with ``new_totals``:
        Σ over symbols of max(0, IM of the worst side − allocation)."""
        need = 0.0
        alloc = acct.isolated
        for sym in set(acct.hyp) | {ins.symbol}:
            i = self.instruments[sym]
            totals = new_totals if sym == ins.symbol else acct.open_totals.get(sym)
            x = worst_side(i, acct.position_qty(sym), totals)
            im = i.im_tiers.amount(i.usd(abs(x)))
            gap = im - alloc.get(sym, 0) / self.unit
            if gap > 0:
                need += gap
        return need

    def mode_requirement(self, acct: Account, mode: MarginMode) -> tuple[float, float]:
        """(IM with orders, MM) the account would need under ``mode``."""
        self.fresh(acct)
        model = self.models.get(mode, self.isolated)
        inst = self.instruments
        exposures = self.exposures(acct)
        mm = model.mm(exposures) if exposures else 0.0
        im = model.im([(inst[s], acct.hyp[s]) for s in sorted(acct.hyp)]) if acct.hyp else 0.0
        return im, mm
