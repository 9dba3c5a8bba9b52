"""Margin models: what a portfolio of positions requires.

One small interface, :class:`RiskModel`, that the built-in cross and
portfolio models implement and that a user can implement to load-test their
own margin logic (select it in the config by import path, ``module:Class``):

- ``mm(exposures)`` / ``im(exposures)``: maintenance and initial margin of one
  account, from its exposures ``[(instrument, signed notional in USD), ...]``;
- ``impacts(exposures)``: per position, MM(all) − MM(all without it): the
  margin impact the liquidation engine ranks by;
- ``sweep(notional, underlying_of)``: the same MM and IM for every account at
  once from an instruments × accounts array of signed notionals (numpy).
  ``RiskModel.sweep`` has a per-account fallback so a toy model only needs
  ``mm``; the built-ins vectorize it;
- ``additive`` (class attribute, default False): True declares that MM and
  IM are sums of per-position terms, ``mm_part(ins, n)`` / ``im_part(ins, n)``,
  with ``mm(exposures) == math.fsum(mm_part(i, n) for i, n in exposures)``.
  The margin engine then caches one term per symbol and recomputes only the
  one an order or fill changed (docs/adr/0003-incremental-pretrade-margin.md);
- ``netted`` (class attribute, default False): True declares that MM depends
  on the exposures only through one term per underlying ``u``,
  ``term(u, [(instrument, notional) for u's instruments held])``, and the
  gross (the fsum of |notional|):
  ``mm(exposures) == mm_from_terms([term(u, exposures_u) for each u], gross)``,
  and IM likewise with ``im_from_terms``, all independent of the order of the
  terms and of the exposures within a term. The engine then caches one term
  per underlying (portfolio margin). A model that is neither is evaluated in
  full on every change.

Portfolio margin (the default profile is calibrated in
docs/adr/0004-portfolio-margin-calibration.md). Each underlying ``u`` held
has a term ``E_u``, its PnL (USD) when it alone moves up by its scanning
range, from the signed notionals ``n_i`` of its instruments ``i``:

- a fixed scanning range ``r_u`` (the profile's ``scan_ranges`` or
  ``default_scan_range``, e.g. the stress profile): ``E_u = r_u · D_u`` with
  ``D_u = Σ_i n_i`` the net exposure (netted first);
- no fixed range (the default profile, calibrated to cross):
  ``E_u = Σ_i sign(n_i) · mm_tiers_i(|n_i|)``, each instrument with its own
  maintenance tiers. A lone position, a one-directional book and several
  same-direction instruments on one underlying then cost exactly their cross
  MM; equal and opposite positions on two instruments of one underlying (same
  tiers) net to zero and pay only the floor. The effective move of ``u`` is
  ``E_u / D_u`` (reported by ``scenarios()`` when ``D_u ≠ 0``).

The scenarios are: u moves up its range while every other underlying v
moves c times its own the same way, and the whole market moves up each
underlying's range, each with its mirror (down). The PnL of "u up" is
``E_u + c·Σ_{v≠u} E_v = (1−c)·E_u + c·T`` with ``T = Σ E_v``, its mirror the
opposite, so the worst loss is, in closed form,

    worst = max(|T|, max_u |(1 − c)·E_u + c·T|)          O(underlyings)
    MM    = max(worst, floor_rate · Σ |notional_i|)
    IM    = im_factor · MM

``scenarios()`` lists the same losses one by one for the explain view, and the
vectorized sweep computes them as a (scenarios × underlyings) matrix product;
tests check the three agree.
"""

from __future__ import annotations

import importlib
import math
from collections.abc import Collection, Sequence

import numpy as np

from exchange_sim.config import Config, RiskProfile
from exchange_sim.instruments import Instrument

Exposures = Sequence[tuple[Instrument, float]]


class RiskModel:
    """Interface of a margin model. Subclass and override ``mm`` (and ``im``)."""

    name = "custom"
    #: True only if MM and IM are sums of the per-position ``mm_part`` /
    #: ``im_part`` (see the module docstring); custom models default to the
    #: full evaluation, which is always correct
    additive = False

    def __init__(self, config: Config, instruments: dict[str, Instrument]):
        self.config = config
        self.instruments = instruments

    def mm(self, exposures: Exposures) -> float:
        raise NotImplementedError  # the interface's one required method

    def im(self, exposures: Exposures) -> float:
        return self.mm(exposures)

    def mm_part(self, ins: Instrument, notional: float) -> float:
        """One position's MM term (used only when ``additive``)."""
        return self.mm([(ins, notional)])

    def im_part(self, ins: Instrument, notional: float) -> float:
        """One symbol's IM term (used only when ``additive``)."""
        return self.im([(ins, notional)])

    # --- leverage
    def im_part_at(self, ins: Instrument, notional: float, leverage: int | None) -> float:
        """One symbol's IM term at an account's leverage for it (``additive``
        models only): ``max(|notional| / leverage, im_part)``, so the initial
        margin rate is 1/leverage but never below the notional tier's own
        (Binance/Bybit: a tier bounds the leverage). ``None`` (never set)
        is ``im_part`` itself, bit for bit: the default keeps today's figures."""
        base = self.im_part(ins, notional)
        if leverage is None:
            return base
        at = (notional if notional >= 0 else -notional) / leverage
        return at if at > base else base

    #: True only if MM and IM come from per-underlying terms (``term(u,
    #: exposures of u)``, ``mm_from_terms``, ``im_from_terms``; see the
    #: module docstring)
    netted = False

    def impacts(self, exposures: Exposures) -> list[float]:
        """MM(all) − MM(all but position k), for each k. O(n · cost of mm)."""
        total = self.mm(exposures)
        return [total - self.mm([e for j, e in enumerate(exposures) if j != k]) for k in range(len(exposures))]

    def scenarios(self, exposures: Exposures) -> list[tuple[str, dict[str, float], float]]:
        """(name, relative move per underlying, loss in USD) of each stress scenario."""
        return []

    def sweep(self, notional: np.ndarray, symbols: list[str]) -> tuple[np.ndarray, np.ndarray]:
        """(IM, MM) per account from an instruments × accounts array of signed
        USD notionals. Fallback: one ``im``/``mm`` call per account."""
        n = notional.shape[1]
        im = np.zeros(n)
        mm = np.zeros(n)
        inss = [self.instruments[s] for s in symbols]
        for a in range(n):
            col = notional[:, a]
            exp = [(inss[i], float(col[i])) for i in np.flatnonzero(col)]
            if exp:
                im[a] = self.im(exp)
                mm[a] = self.mm(exp)
        return im, mm


def tiered(brackets, x: np.ndarray) -> np.ndarray:
    """Vectorized :meth:`Brackets.amount` for x ≥ 0."""
    rates = brackets.rates
    if len(rates) == 1:
        return x * rates[0]
    if all(a <= b for a, b in zip(rates, rates[1:])):
        # Rates that never fall make amount() convex: the max of each
        # bracket's affine piece, a few fused passes instead of a
        # searchsorted and three gathers (~4x faster for 10^5 values).
        out = x * rates[0]
        for lo, base, rate in zip(brackets.lowers[1:], brackets.bases[1:], rates[1:]):
            np.maximum(out, x * rate + (base - lo * rate), out=out)
        return out
    uppers = np.asarray(brackets.uppers)
    idx = np.searchsorted(uppers, x, side="left")
    return np.asarray(brackets.bases)[idx] + (x - np.asarray(brackets.lowers)[idx]) * np.asarray(brackets.rates)[idx]


class CrossMargin(RiskModel):
    """Σ over positions of their tiered rate: no offsets between positions."""

    name = "cross"
    additive = True

    # fsum: correctly rounded, so the total does not depend on the order of
    # the terms, and equals the engine's fsum of its cached per-symbol terms
    def mm(self, exposures: Exposures) -> float:
        return math.fsum(ins.mm_tiers.amount(n if n >= 0 else -n) for ins, n in exposures)

    def im(self, exposures: Exposures) -> float:
        return math.fsum(ins.im_tiers.amount(n if n >= 0 else -n) for ins, n in exposures)

    def mm_part(self, ins: Instrument, notional: float) -> float:
        return ins.mm_tiers.amount(notional if notional >= 0 else -notional)

    def im_part(self, ins: Instrument, notional: float) -> float:
        return ins.im_tiers.amount(notional if notional >= 0 else -notional)

    def impacts(self, exposures: Exposures) -> list[float]:
        # additive model: a position's impact is its own MM
        return [ins.mm_tiers.amount(abs(n)) for ins, n in exposures]

    def sweep(self, notional: np.ndarray, symbols: list[str]) -> tuple[np.ndarray, np.ndarray]:
        gross = np.abs(notional)
        im = np.zeros(notional.shape[1])
        mm = np.zeros(notional.shape[1])
        for i, sym in enumerate(symbols):
            ins = self.instruments[sym]
            row = gross[i]
            im += tiered(ins.im_tiers, row)
            mm += tiered(ins.mm_tiers, row)
        return im, mm


class PortfolioMargin(RiskModel):
    """Scenario-based margin over underlyings; hedges across underlyings offset."""

    name = "portfolio"

    def __init__(self, config: Config, instruments: dict[str, Instrument]):
        super().__init__(config, instruments)
        self.profile_name = config.risk.profile
        self.profile: RiskProfile = config.risk.profiles.get(self.profile_name, RiskProfile())
        p = self.profile
        self.c = p.correlation
        self.floor_rate = p.floor_rate
        self.im_factor = p.im_factor
        # underlyings in config order; reference tiers = first instrument's
        # (only for the move the explain view shows where the net is zero)
        self.underlyings: list[str] = []
        self.ref_tiers = {}
        for ins in instruments.values():
            if ins.underlying not in self.ref_tiers:
                self.underlyings.append(ins.underlying)
                self.ref_tiers[ins.underlying] = ins.mm_tiers
        self.fixed_range: dict[str, float | None] = {
            u: p.scan_ranges.get(u, p.default_scan_range) for u in self.underlyings
        }
        self.u_index = {u: k for k, u in enumerate(self.underlyings)}
        # scenario matrix (scenarios × underlyings) in units of each range
        names, rows = [], []
        for k, u in enumerate(self.underlyings):
            row = [self.c] * len(self.underlyings)
            row[k] = 1.0
            for sign, tag in ((1.0, "+"), (-1.0, "-")):
                names.append(f"{u} {tag}")
                rows.append([sign * x for x in row])
        for sign, tag in ((1.0, "+"), (-1.0, "-")):
            names.append(f"market {tag}")
            rows.append([sign] * len(self.underlyings))
        self.scenario_names = names
        self.scenario_matrix = np.array(rows)
        #: the sweep's row groups per tuple of instrument rows (_sweep_plan)
        self._plans: dict[tuple[str, ...], list[tuple]] = {}

    # netted: the margin engine caches term(u, its exposures) per underlying
    # and calls *_from_terms; every sum is an fsum, so the figures do not
    # depend on the order of the exposures or on the history of the cache
    netted = True

    def _by_underlying(self, exposures: Exposures) -> tuple[dict[str, list], float]:
        """Exposures grouped per underlying (in first-seen order) and the gross."""
        by_u: dict[str, list] = {}
        for e in exposures:
            by_u.setdefault(e[0].underlying, []).append(e)
        return by_u, math.fsum(n if n >= 0 else -n for _, n in exposures)

    def term(self, underlying: str, exposures: Exposures) -> float:
        """E_u: the underlying's PnL when it alone moves up its range, from
        its instruments' exposures ``[(instrument, signed notional), ...]``:
        ``r_u · Σ n_i`` with a fixed range, else ``Σ sign(n_i) · mm_tiers_i(|n_i|)``
        (fsums: independent of the order of the exposures)."""
        fixed = self.fixed_range[underlying]
        if fixed is not None:
            if len(exposures) == 1:
                return exposures[0][1] * fixed
            return math.fsum(n for _, n in exposures) * fixed
        if len(exposures) == 1:  # the usual case: one instrument per underlying
            ins, n = exposures[0]
            return ins.mm_tiers.amount(n) if n >= 0 else -ins.mm_tiers.amount(-n)
        return math.fsum(
            ins.mm_tiers.amount(n) if n >= 0 else -ins.mm_tiers.amount(-n) for ins, n in exposures
        )

    def mm_from_terms(self, terms: Collection[float], gross: float) -> float:
        """MM from E_u of each underlying held, and the gross notional."""
        c = self.c
        t = math.fsum(terms)
        worst = t if t >= 0 else -t
        if not terms:
            pass
        elif 0.0 <= c <= 1.0:
            # (1 − c)·x + c·T is monotone in x (so is its float rounding), so
            # the largest |PnL| is at the largest or the smallest E_u: two
            # candidates instead of a Python loop over every underlying
            ct = c * t
            hi = abs((1.0 - c) * max(terms) + ct)
            lo = abs((1.0 - c) * min(terms) + ct)
            worst = max(worst, hi, lo)
        else:
            for x in terms:
                pnl = abs((1.0 - c) * x + c * t)
                if pnl > worst:
                    worst = pnl
        floor = self.floor_rate * gross
        return worst if worst > floor else floor

    def im_from_terms(self, terms: Collection[float], gross: float) -> float:
        return self.im_factor * self.mm_from_terms(terms, gross)

    def mm(self, exposures: Exposures) -> float:
        by_u, gross = self._by_underlying(exposures)
        return self.mm_from_terms([self.term(u, es) for u, es in by_u.items()], gross)

    def im(self, exposures: Exposures) -> float:
        return self.im_factor * self.mm(exposures)

    def scenarios(self, exposures: Exposures) -> list[tuple[str, dict[str, float], float]]:
        """Each scenario's moves and loss. A scenario's loss is
        ``−Σ_u weight_u · E_u``; the move shown for ``u`` is its weight times
        its effective range ``E_u / D_u`` (the fixed range if there is one; the
        first tier rate where ``D_u`` is 0, e.g. an underlying not held)."""
        by_u, _ = self._by_underlying(exposures)
        terms = {u: self.term(u, es) for u, es in by_u.items()}
        ranges = {}
        for u in self.underlyings:
            fixed = self.fixed_range[u]
            if fixed is not None:
                ranges[u] = fixed
                continue
            net = math.fsum(n for _, n in by_u.get(u, ()))
            ranges[u] = terms[u] / net if net != 0.0 else self.ref_tiers[u].first_rate()
        out = []
        for name, row in zip(self.scenario_names, self.scenario_matrix):
            moves = {u: float(row[k]) * ranges[u] for k, u in enumerate(self.underlyings)}
            loss = -math.fsum(float(row[self.u_index[u]]) * e for u, e in terms.items())
            out.append((name, moves, loss))
        return out

    def sweep(self, notional: np.ndarray, symbols: list[str]) -> tuple[np.ndarray, np.ndarray]:
        e = self._sweep_terms(notional, symbols)
        pnl = self.scenario_matrix @ e  # scenarios × accounts
        worst = np.abs(pnl, out=pnl).max(axis=0)  # each scenario's mirror is in the matrix too
        floor = self.floor_rate * np.abs(notional).sum(axis=0)
        mm = np.maximum(worst, floor)
        return self.im_factor * mm, mm

    def _sweep_terms(self, notional: np.ndarray, symbols: list[str]) -> np.ndarray:
        """E_u per underlying and account (underlyings × accounts), from the
        instrument rows of ``notional`` (instruments as rows keep each row
        contiguous; rows are added per underlying, not by a 0/1 grouping
        matmul: with so few rows OpenBLAS's threading costs ~40x the work on
        a busy 2-core box).

        A fixed range (or a one-bracket table): ``factor · Σ n_i``. Tiered
        rows, grouped by underlying and equal tier table, with brackets of
        lower bounds ``lo_j`` and rates ``r_j``: since
        ``sign(n)·tier(|n|) = r_0·n + Σ_{j≥1} (r_j − r_{j−1})·(n − clip(n, ±lo_j))``
        and the bracket terms vanish above the largest |n| of the group,

            E_u += r_J · Σ n_i − Σ_{j=1..J} (r_j − r_{j−1}) · Σ clip(n_i, ±lo_j)

        with ``J`` the last bracket any of the group's notionals reaches: a
        few whole-row passes per row (add, clip, min and max), no per-element
        gather. Equal to the per-account terms up to float rounding."""
        plan = self._plans.get(tuple(symbols))
        if plan is None:
            plan = self._plans[tuple(symbols)] = self._sweep_plan(symbols)
        m = notional.shape[1]
        e = np.zeros((len(self.underlyings), m))
        buf = np.empty(m)
        for k, factor, brackets, rows in plan:
            acc = notional[rows[0]].copy()
            for i in rows[1:]:
                acc += notional[i]
            if brackets is None:
                acc *= factor
                e[k] += acc
                continue
            lowers, rates = brackets.lowers, brackets.rates
            top = 0.0  # the largest |n| of the group
            for i in rows:
                row = notional[i]
                if row.size:
                    top = max(top, float(row.max()), -float(row.min()))
            last = 0
            while last + 1 < len(lowers) and top > lowers[last + 1]:
                last += 1
            acc *= rates[last]
            for j in range(1, last + 1):
                lo = lowers[j]
                clipped = np.clip(notional[rows[0]], -lo, lo)
                for i in rows[1:]:
                    clipped += np.clip(notional[i], -lo, lo, out=buf)
                clipped *= rates[j] - rates[j - 1]
                acc -= clipped
            e[k] += acc
        return e

    def _sweep_plan(self, symbols: list[str]) -> list[tuple]:
        """For :meth:`_sweep_terms`: [(underlying row, factor, None, instrument
        rows)] for fixed ranges and one-bracket tables, [(underlying row,
        None, tier table, instrument rows)] for the tiered ones (equal tables
        of one underlying share a group)."""
        groups: dict[tuple, tuple] = {}
        for i, sym in enumerate(symbols):
            ins = self.instruments[sym]
            u = ins.underlying
            k = self.u_index[u]
            fixed = self.fixed_range[u]
            b = ins.mm_tiers
            if fixed is not None or len(b.rates) == 1:
                factor = fixed if fixed is not None else b.rates[0]
                groups.setdefault((k, "linear", factor), (k, factor, None, []))[3].append(i)
            else:
                groups.setdefault((k, tuple(b.uppers), tuple(b.rates)), (k, None, b, []))[3].append(i)
        return list(groups.values())


def load_model(path: str, config: Config, instruments: dict[str, Instrument]) -> RiskModel:
    """Instantiate ``module:Class`` with ``(config, instruments)``.

    Raises ``ValueError`` naming the path when it cannot be imported.
    """
    module_name, _, attr = path.partition(":")
    if not module_name or not attr:
        raise ValueError(f"risk model {path!r} must look like 'package.module:Class'")
    try:
        cls = getattr(importlib.import_module(module_name), attr)
    except (ImportError, AttributeError) as exc:
        raise ValueError(f"cannot load risk model {path!r}: {exc}") from None
    return cls(config, instruments)
