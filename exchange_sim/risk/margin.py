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
one entry, never a rescan of its orders. The model's terms are cached too:
for an additive model (cross, isolated: ``RiskModel.additive``) each
symbol's IM term, so a check is one bracket evaluation and an fsum of one
float per symbol; for a netted one (portfolio: ``RiskModel.netted``) each
underlying's term (from its instruments' exposures), so a check recomputes
one underlying's term, the gross, and the scenario maximum. Other models
(plug-ins) are evaluated over the account's symbols once per check.

The figures are floats in USD (risk estimates, never balances). They are
cached per account as per-asset and per-symbol terms with totals by
``math.fsum`` (order-independent, so bit-identical after a snapshot
restore). A fill recomputes only the terms of the traded symbol (and
underlying) and the settlement asset (:meth:`MarginEngine.touch`); other wallet changes
(``Account.credit`` sets ``cache_epoch = -1``) and any price move (the
engine's ``epoch``) recompute the account in full at the next ``fresh()``.
See docs/adr/0003-incremental-pretrade-margin.md.

Leverage (docs/adr/0010-leverage.md): an additive model's IM term of a
symbol the account set a leverage on is ``RiskModel.im_part_at`` (1/leverage,
never below the tiers); the pre-trade check, isolated allocations
(:meth:`MarginEngine.isolated_im`), ``isolated_need`` and the mode switch all
read it from there. :meth:`MarginEngine.free` is the withdrawable settlement
balance, by Withdraw's own test (:meth:`MarginEngine.withdraw_refusal`).
"""

from __future__ import annotations

from math import fsum

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
        # --- leverage: the settlement asset counts at its full value (no haircut
        # anywhere on its brackets), so free() may take its closed-form path
        self._settle_flat = max(settle.haircut.rates) == 0.0
        self._settle_name = settle.name
        #: instruments of each underlying, for the netted models' per-underlying terms
        self.u_ins: dict[str, list[Instrument]] = {}
        for ins in instruments.values():
            self.u_ins.setdefault(ins.underlying, []).append(ins)

    def model(self, acct: Account) -> RiskModel:
        return self.models.get(acct.margin_mode, self.isolated)

    # ------------------------------------------------------------- caches
    #
    # Every total is a sum of cached terms: counted value per asset, uPnL
    # (int) per position, and the model's terms: MM per position and IM per
    # symbol for an additive model; term(u, net) per underlying, of the
    # positions (MM) and of the worst-side exposures (IM), for a netted one.
    # A change recomputes only the terms it touched, then the totals: float
    # totals by math.fsum, which is correctly rounded and so does not depend
    # on the order or history of the updates; a venue restored from a
    # snapshot computes the same bits. Never a running ``+=`` on a float.
    # refresh() fills the same terms with the same helpers, so an account
    # updated incrementally and one refreshed from scratch hold equal caches
    # (Venue._check asserts it).

    def fresh(self, acct: Account) -> Account:
        if acct.cache_epoch != self.epoch:
            self.refresh(acct)
        return acct

    def refresh(self, acct: Account) -> None:
        """Recompute every cached figure of ``acct``. O(assets + symbols)."""
        acct.cv_parts.clear()
        acct.upnl_parts.clear()
        acct.expo.clear()
        acct.mm_parts.clear()
        acct.im_parts.clear()
        acct.hyp.clear()
        for name in acct.balances:
            self._set_asset(acct, name)
        model = self.model(acct)
        inst = self.instruments
        for sym in acct.positions:
            self._set_position(acct, inst[sym], model)
            self._set_orders(acct, inst[sym], model)
        for sym in acct.open_totals:
            if sym not in acct.positions:
                self._set_orders(acct, inst[sym], model)
        self._totals(acct, model)
        acct.cache_epoch = self.epoch

    def touch(self, acct: Account, ins: Instrument, asset: str) -> None:
        """A fill changed the account's ``asset`` balance, its position in
        ``ins`` and maybe its open orders there: recompute those terms and
        the totals, O(1) + the fsums (instead of a full refresh). A stale
        cache is left stale: the next :meth:`fresh` rebuilds all of it."""
        if acct.cache_epoch != self.epoch:
            return
        model = self.models.get(acct.margin_mode, self.isolated)
        self._set_asset(acct, asset)
        self._set_position(acct, ins, model)
        self._set_orders(acct, ins, model)
        self._totals(acct, model)

    def update_symbol(self, acct: Account, ins: Instrument) -> None:
        """Open orders of one symbol changed: update its IM term and the IM.
        O(1) + an fsum for an additive or netted model, O(model) otherwise."""
        if acct.cache_epoch != self.epoch:
            return  # the next fresh() recomputes everything
        model = self.models.get(acct.margin_mode, self.isolated)
        self._set_orders(acct, ins, model)
        acct.im_total = self._im_total(acct, model)

    def commit(self, acct: Account, ins: Instrument, pre: tuple) -> None:
        """Store the result of :meth:`im_after` once those open orders rest as
        checked (nothing else changed since): the same figures
        :meth:`update_symbol` would compute, without evaluating the model
        again."""
        if acct.cache_epoch != self.epoch:
            return
        x, h, part, after = pre
        if x:
            acct.hyp[ins.symbol] = h
        else:
            acct.hyp.pop(ins.symbol, None)
        if part is not None:  # (key, new IM term or None)
            key, term = part
            if term is None:
                acct.im_parts.pop(key, None)
            else:
                acct.im_parts[key] = term
        acct.im_total = after

    def _set_asset(self, acct: Account, name: str) -> None:
        bal = acct.balances.get(name, 0)
        if bal:
            acct.cv_parts[name] = counted_value(self.assets[name], bal)[1]
        else:
            acct.cv_parts.pop(name, None)

    def _set_position(self, acct: Account, ins: Instrument, model: RiskModel) -> None:
        sym = ins.symbol
        pos = acct.positions.get(sym)
        if pos is not None and pos.qty:
            acct.upnl_parts[sym] = ins.upnl(pos.qty, pos.cost)
            n = acct.expo[sym] = ins.usd(pos.qty * ins.mark)
            if model.additive:
                acct.mm_parts[sym] = model.mm_part(ins, n)
        else:
            acct.upnl_parts.pop(sym, None)
            acct.expo.pop(sym, None)
            if model.additive:  # (a netted model's terms are keyed by underlying)
                acct.mm_parts.pop(sym, None)
        if model.netted:
            self._set_term(acct.mm_parts, acct.expo, ins.underlying, model)

    def _set_orders(self, acct: Account, ins: Instrument, model: RiskModel) -> None:
        """The symbol's worst-side exposure (``hyp``) and its IM term."""
        sym = ins.symbol
        pos = acct.positions.get(sym)
        x = worst_side(ins, pos.qty if pos is not None else 0, acct.open_totals.get(sym))
        if x:
            h = acct.hyp[sym] = ins.usd(x)
            if model.additive:
                lev = acct.leverage  # usually empty: one truth test on the hot path
                acct.im_parts[sym] = model.im_part_at(ins, h, lev.get(sym)) if lev else model.im_part(ins, h)
        else:
            acct.hyp.pop(sym, None)
            if model.additive:
                acct.im_parts.pop(sym, None)
        if model.netted:
            self._set_term(acct.im_parts, acct.hyp, ins.underlying, model)

    def _set_term(self, terms: dict, expo: dict, u: str, model: RiskModel) -> None:
        """Netted model: the term of underlying ``u`` from the exposures of its
        instruments (``model.term(u, [(instrument, notional), ...])``), or
        none when it has none."""
        inss = self.u_ins[u]
        if len(inss) == 1:  # the usual case: one instrument per underlying
            ins = inss[0]
            n = expo.get(ins.symbol)
            if n is None:
                terms.pop(u, None)
            else:
                terms[u] = model.term(u, ((ins, n),))
            return
        es = [(i, expo[i.symbol]) for i in inss if i.symbol in expo]
        if es:
            terms[u] = model.term(u, es)
        else:
            terms.pop(u, None)

    def _totals(self, acct: Account, model: RiskModel) -> None:
        acct.collateral = fsum(acct.cv_parts.values())
        acct.upnl = sum(acct.upnl_parts.values())  # ints: exact in any order
        if model.additive:
            acct.mm = fsum(acct.mm_parts.values())
        elif not acct.expo:
            acct.mm = 0.0
        elif model.netted:
            acct.mm = model.mm_from_terms(acct.mm_parts.values(), fsum(map(abs, acct.expo.values())))
        else:
            acct.mm = model.mm(self.exposures(acct))
        acct.im_total = self._im_total(acct, model)

    def _im_total(self, acct: Account, model: RiskModel) -> float:
        if model.additive:
            return fsum(acct.im_parts.values())
        if not acct.hyp:
            return 0.0
        if model.netted:
            return model.im_from_terms(acct.im_parts.values(), fsum(map(abs, acct.hyp.values())))
        return self._im(acct, model)

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

    # ------------------------------------------------------------ figures

    def equity(self, acct: Account) -> float:
        """Equity in USD from the caches (call :meth:`fresh` first)."""
        alloc = sum(acct.isolated.values()) if acct.isolated else 0
        return acct.collateral + (acct.upnl + alloc) / self.unit

    def ratio(self, acct: Account) -> float | None:
        """Margin ratio E / MM (worst position's for isolated); None = infinite."""
        if acct.margin_mode is ISOLATED:
            return self.isolated_worst(acct)[0]
        if acct.mm <= 0.0:
            return None
        return self.equity(acct) / acct.mm

    def equity_and_ratio(self, acct: Account) -> tuple[float, float | None]:
        """(:meth:`equity`, :meth:`ratio`), the equity computed once."""
        eq = self.equity(acct)
        if acct.margin_mode is ISOLATED:
            return eq, self.isolated_worst(acct)[0]
        mm = acct.mm
        return eq, (eq / mm if mm > 0.0 else None)

    def isolated_worst(self, acct: Account) -> tuple[float | None, str | None]:
        """Isolated mode: (ratio, symbol) of the position with the lowest own
        ratio, ties by symbol; (None, None) when no position has an MM."""
        worst = None
        worst_sym = None
        for sym, pos in acct.positions.items():
            if pos.qty:
                r = self.isolated_ratio(acct, self.instruments[sym], pos)
                if r is not None and (worst is None or r < worst or (r == worst and sym < worst_sym)):
                    worst, worst_sym = r, sym
        return worst, worst_sym

    def isolated_ratio(self, acct: Account, ins: Instrument, pos) -> float | None:
        mm = self.isolated.mm([(ins, ins.usd(pos.qty * ins.mark))])
        if mm <= 0.0:
            return None
        own = (acct.isolated.get(ins.symbol, 0) + ins.upnl(pos.qty, pos.cost)) / self.unit
        return own / mm

    def im_after(self, acct: Account, ins: Instrument, new_totals: list[int]) -> tuple[float, float, tuple]:
        """(IM now, IM if the symbol's open orders were ``new_totals``, the new
        figures for :meth:`commit`). Additive model: one term and an fsum;
        netted: one underlying's term, the gross and the model's combination;
        otherwise one model evaluation over the account's symbols."""
        sym = ins.symbol
        pos = acct.positions.get(sym)
        x = worst_side(ins, pos.qty if pos is not None else 0, new_totals)
        h = ins.usd(x) if x else 0.0
        model = self.models.get(acct.margin_mode, self.isolated)
        if model.additive:
            parts = acct.im_parts.copy()
            if x:
                lev = acct.leverage  # usually empty: one truth test on the hot path
                term = parts[sym] = model.im_part_at(ins, h, lev.get(sym)) if lev else model.im_part(ins, h)
            else:
                term = None
                parts.pop(sym, None)
            after = fsum(parts.values())
            return acct.im_total, after, (x, h, (sym, term), after)
        hyp = acct.hyp.copy()
        if x:
            hyp[sym] = h
        else:
            hyp.pop(sym, None)
        if not hyp:
            after = 0.0
            part = (ins.underlying, None) if model.netted else None
        elif model.netted:
            u = ins.underlying
            terms = acct.im_parts.copy()
            self._set_term(terms, hyp, u, model)
            after = model.im_from_terms(terms.values(), fsum(map(abs, hyp.values())))
            part = (u, terms.get(u))
        else:
            inst = self.instruments
            after = model.im([(inst[s], hyp[s]) for s in sorted(hyp)])
            part = None
        return acct.im_total, after, (x, h, part, after)

    def isolated_need(self, acct: Account, ins: Instrument | None = None, new_totals: list[int] | None = None,
                      leverage: dict[str, int] | None = None) -> float:
        """USD the wallet must still provide for isolated IM with ``new_totals``
        as the open orders of ``ins`` (no ``ins``: the open orders as they are),
        at the account's leverage (or ``leverage``, a hypothetical one):
        Σ over symbols of max(0, IM of the worst side − allocation)."""
        gaps = []
        alloc = acct.isolated
        lev = acct.leverage if leverage is None else leverage
        at = self.isolated.im_part_at
        for sym in (set(acct.hyp) | {ins.symbol}) if ins is not None else acct.hyp:
            i = self.instruments[sym]
            totals = new_totals if ins is not None and sym == ins.symbol else acct.open_totals.get(sym)
            x = worst_side(i, acct.position_qty(sym), totals)
            im = at(i, i.usd(abs(x)), lev.get(sym))  # the worse side's exposure, not the position's
            gap = im - alloc.get(sym, 0) / self.unit
            if gap > 0:
                gaps.append(gap)
        return fsum(gaps)  # the set's order depends on the hash seed; fsum's result does not

    def mode_requirement(self, acct: Account, mode: MarginMode) -> tuple[float, float]:
        """(IM with orders, MM) the account would need under ``mode``."""
        self.fresh(acct)
        model = self.models.get(mode, self.isolated)
        inst = self.instruments
        exposures = self.exposures(acct)
        mm = model.mm(exposures) if exposures else 0.0
        if not acct.hyp:
            im = 0.0
        elif acct.leverage and model.additive:  # --- leverage: per-symbol terms at the account's leverage
            lev = acct.leverage
            im = fsum(model.im_part_at(inst[s], acct.hyp[s], lev.get(s)) for s in sorted(acct.hyp))
        else:
            im = model.im([(inst[s], acct.hyp[s]) for s in sorted(acct.hyp)])
        return im, mm

    # --- leverage

    def isolated_im(self, acct: Account, ins: Instrument, qty: int) -> float:
        """USD initial margin a position of ``qty`` lots needs at mark alone, at
        the account's leverage for it (the isolated allocation's floor)."""
        return self.isolated.im_part_at(ins, ins.usd(abs(qty) * ins.mark), acct.leverage.get(ins.symbol))

    def position_im(self, acct: Account, ins: Instrument, notional: float) -> float:
        """USD IM of a position of ``notional`` (USD, ≥ 0) alone: the tiers at
        the account's leverage for the symbol, which the portfolio model
        ignores (docs/adr/0010-leverage.md)."""
        lev = acct.leverage.get(ins.symbol) if acct.leverage and acct.margin_mode is not PORTFOLIO else None
        return self.isolated.im_part_at(ins, notional, lev)

    def im_at_leverage(self, acct: Account, ins: Instrument, leverage: int) -> float:
        """The account's IM (USD, open orders included) if its leverage on
        ``ins`` were ``leverage``; the IM now for a model that ignores leverage
        (portfolio, custom non-additive ones). Call :meth:`fresh` first."""
        model = self.model(acct)
        if not model.additive:
            return acct.im_total
        parts = acct.im_parts.copy()
        h = acct.hyp.get(ins.symbol)
        if h is not None:
            parts[ins.symbol] = model.im_part_at(ins, h, leverage)
        return fsum(parts.values())

    # --- leverage (free: what Withdraw accepts)

    def _pooled_flat(self, acct: Account) -> bool:
        """Cross or portfolio, no debt, and a settlement asset without haircut:
        the case where Withdraw of the settlement asset is ``amount ≤ free``."""
        if acct.margin_mode is ISOLATED or not self._settle_flat:
            return False
        balances = acct.balances
        return len(balances) == 1 or min(balances.values()) >= 0

    def withdraw_refusal(self, acct: Account, asset: Asset, bal: int, amount: int) -> str | None:
        """Why withdrawing ``amount`` of ``asset`` (``bal`` held, ≥ amount)
        would break margin, or None. Call :meth:`fresh` first.

        Cross and portfolio: equity after it must still cover IM; with no IM,
        a debt (negative balance) must stay backed too. For the settlement
        asset with no debt that is, in integers, ``amount ≤`` :meth:`free`
        (the same rule the AccountUpdate shows). Isolated: each position is
        backed by its allocation, which its loss cannot exceed, so
        allocations and isolated uPnL are left out and only the wallet
        counts: the settlement balance left must cover the IM the open orders
        need beyond the allocations (``isolated_need``, as the pre-trade
        check), and a debt must stay backed by the wallet's counted collateral."""
        if acct.margin_mode is not ISOLATED:
            if asset is self.settle and self._pooled_flat(acct):
                if amount > self.free(acct):
                    eq_after = self.equity(acct) - asset.usd(amount)
                    return f"withdrawal would leave equity {eq_after:.2f} below initial margin {acct.im_total:.2f}"
                return None
            if acct.im_total > 0.0 or any(b < 0 for b in acct.balances.values()):
                _, counted_before = counted_value(asset, bal)
                _, counted_after = counted_value(asset, bal - amount)
                eq_after = self.equity(acct) - counted_before + counted_after
                if acct.im_total > eq_after:
                    return f"withdrawal would leave equity {eq_after:.2f} below initial margin {acct.im_total:.2f}"
            return None
        settle = self.settle
        if asset is settle:
            need = self.isolated_need(acct)
            free = (bal - amount) / settle.unit
            if need > free:
                return (f"withdrawal would leave the free {asset.name} balance {free:.2f} below the isolated "
                        f"margin its open orders need {need:.2f}")
        if any(b < 0 for b in acct.balances.values()):
            _, counted_before = counted_value(asset, bal)
            _, counted_after = counted_value(asset, bal - amount)
            wallet_after = acct.collateral - counted_before + counted_after
            if wallet_after < 0.0:
                return f"withdrawal would leave the wallet {wallet_after:.2f} {settle.name} short of its debt"
        return None

    def free(self, acct: Account, equity: float | None = None) -> int:
        """The largest settlement-asset Withdraw the venue accepts now
        (settlement minor units, ≥ 0), so withdrawing exactly ``free``
        succeeds and one minor unit more is refused. Call :meth:`fresh` first.

        The usual case (cross or portfolio, no debt, a settlement asset
        without haircut; every AccountUpdate carries it, so it is a few
        operations): ``min(balance, floor((equity − IM) × unit))``, and
        Withdraw's rule there *is* ``amount ≤ free``. Otherwise (isolated, a
        debt, a haircut settlement asset) Withdraw's float test
        (:meth:`withdraw_refusal`) decides, by bisection on the amount (the
        test is monotone in it), from an estimate. ``equity``: the account's
        :meth:`equity` if the caller has it already (the AccountUpdate builder)."""
        bal = acct.balances.get(self._settle_name, 0)
        if bal <= 0:
            return 0
        if self._pooled_flat(acct):
            im = acct.im_total
            if im <= 0.0:
                return bal
            room = int(((self.equity(acct) if equity is None else equity) - im) * self.unit)  # floor if positive
            return 0 if room <= 0 else room if room < bal else bal
        settle = self.settle
        refused = self.withdraw_refusal
        if refused(acct, settle, bal, bal) is None:
            return bal
        if acct.margin_mode is ISOLATED:
            room = bal / self.unit - self.isolated_need(acct)
        else:
            room = self.equity(acct) - acct.im_total
        # invariant: withdrawing lo passes (nothing withdrawn always does), hi is refused
        lo, hi = 0, bal
        guess = min(bal - 1, max(0, int(room * self.unit)))
        if guess > 0:
            if refused(acct, settle, bal, guess) is None:
                lo = guess
                if refused(acct, settle, bal, guess + 1) is not None:
                    return guess  # the usual case: the estimate is exact
            else:
                hi = guess
        while hi - lo > 1:  # bisection: O(log balance) exact tests at worst
            mid = (lo + hi) // 2
            if refused(acct, settle, bal, mid) is None:
                lo = mid
            else:
                hi = mid
        return lo
