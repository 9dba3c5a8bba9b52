"""One scenario through the real venue core, on a copy of the state.

For each step of the scenario's path, the index of every asset it moves is
set with ``SetIndexPrice`` through ``Venue.apply``, in ticks of at most
``max_tick`` (a 50% gap with the default 5% is ten ticks, ``step_s`` apart
split evenly), assets in name order. Each tick's liquidations run inside
that ``apply`` to their end — book slices, insurance takeovers, ADL,
collateral conversions, bankruptcy cover — as they would live. After each
tick the **makers** (the generated venue's market maker; ``--maker`` for a
data dir) re-quote: their resting orders of the moved underlyings, as they
were in the starting state, are cancelled and placed again post-only at
their original prices scaled by the index move, so the next tick's
liquidations meet the depth they had, ``max_tick`` stale. Other resting
orders stay where they were. A cascade deferred by the per-command bound
(``CascadeBoundHit``) is run on with ``Tick`` commands, one venue second
apart, until none is pending (at most :data:`MAX_EXTRA_TICKS`).

Everything the result holds is counted from the events ``apply`` returned
(and ``QueryAccount`` of the insurance fund after every tick), plus the
first-order figures of :mod:`exchange_sim.stress.first_order` on the
starting state at every step's prices. No clock is read: the result of a
scenario is a function of the state and the scenario, on any process.
"""

from __future__ import annotations

import math
from decimal import Decimal

import msgspec
import numpy as np

from exchange_sim import snapshot
from exchange_sim.stress import first_order
from exchange_sim.stress.scenarios import Scenario, shock_size
from exchange_sim.stress.state import Prepared
from protocol.messages import (
    AccountUpdate,
    AutoDeleverage,
    BankruptcyCovered,
    CancelAll,
    CascadeBoundHit,
    CollateralConversion,
    InsuranceTakeover,
    LiquidationSlice,
    LiquidationStarted,
    NewOrder,
    QueryAccount,
    Rejected,
    SetIndexPrice,
    Side,
    Tick,
    Trade,
)

MAX_EXTRA_TICKS = 1_000
SECOND = 1_000_000_000


class ScenarioResult(msgspec.Struct, kw_only=True):
    """What one scenario did. Money in USD (the settlement asset) as floats
    rounded to the cent; counts exact."""

    index: int
    name: str
    kind: str
    shock: float  # scenarios.shock_size
    steps: int
    ticks: int  # SetIndexPrice commands applied
    liquidations: int  # LiquidationStarted events
    accounts_liquidated: list[int]
    slices: int
    notional_closed: float  # book fills + takeovers + ADL, at their prices
    book_notional: float
    takeovers: int
    takeover_notional: float
    adl_count: int
    adl_accounts: list[int]  # counterparties deleveraged
    conversions: int
    conversion_proceeds: float
    bad_debt: float  # BankruptcyCovered: what the fund paid for accounts left in debt
    fund_start: float  # insurance fund equity, USD
    fund_min: float
    fund_end: float
    fund_drawdown: float  # fund_start - fund_min
    fund_exhausted: bool  # ADL was needed, or the fund's equity reached 0
    cascade_bound_hits: int
    extra_ticks: int
    clear_step: int  # last step with liquidation activity (0-based), -1 if none
    clear_s: int  # venue seconds from the start to the end of that step (and its extra ticks)
    first_order_below_mm: int  # accounts below MM at some step, before any cascade
    cover1: float
    cover2: float
    worst: list[tuple[int, float]]  # up to five (account, loss) by first-order loss
    maker_rejects: int  # re-quotes the venue refused (post-only would cross, margin...)


def _usd(x: float) -> float:
    return round(x, 2)


class Runner:
    """Per-process state built once from a :class:`Prepared`: the decoded
    state, the first-order arrays, unit conversions and the makers' orders."""

    def __init__(self, prep: Prepared):
        self.prep = prep
        self.cfg = prep.config
        self.state = snapshot.decode(prep.state)
        self.base = dict(self.state.index)
        self.pop = first_order.from_state(self.cfg, self.state)
        settle = self.cfg.venue.settlement_asset
        self.unit = unit = 10 ** next(a.decimals for a in self.cfg.assets if a.name == settle)
        self.usd_per = {i.symbol: float(int(Decimal(i.tick_size) * Decimal(i.lot_size) * unit)) / unit
                        for i in self.cfg.instruments}
        self.underlying = {i.symbol: i.underlying for i in self.cfg.instruments}
        self.fund = self.cfg.liquidation.insurance_account
        makers = set(prep.makers)
        #: underlying -> the makers' resting orders: (account, symbol, side, price, qty)
        self.quotes: dict[str, list[tuple[int, str, int, int, int]]] = {}
        for ins in self.state.instruments:
            und = self.underlying[ins.symbol]
            for o in ins.bids + ins.asks:
                if o.account in makers:
                    self.quotes.setdefault(und, []).append((o.account, ins.symbol, o.side, o.price, o.qty - o.filled))

    def run(self, sc: Scenario) -> ScenarioResult:
        venue = snapshot.restore(self.cfg, snapshot.decode(self.prep.state))
        t = Tally(self, venue)
        ts = self.state.now
        fund0 = t.fund_min = t.fund_equity()
        current = {a: 0.0 for a in self.base}
        index = dict(self.base)
        seen_step: list[dict[str, float]] = []
        for n, step in enumerate(sc.path):
            t.step = n
            target = {**current, **step}
            seen_step.append(dict(target))
            moved = sorted(a for a in step if step[a] != current[a])
            ticks = 1
            for a in moved:
                rel = (1.0 + target[a]) / (1.0 + current[a]) - 1.0
                ticks = max(ticks, math.ceil(abs(rel) / self.prep.max_tick - 1e-12))
            dt = sc.step_s * SECOND // ticks
            for k in range(1, ticks + 1):
                ts += dt
                for a in moved:
                    move = current[a] + (target[a] - current[a]) * k / ticks
                    price = index[a] = max(1, round(self.base[a] * (1.0 + move)))
                    ev = t.apply(SetIndexPrice(asset=a, price=price), ts)
                    if isinstance(ev[0], Rejected):
                        raise RuntimeError(f"scenario {sc.name!r}: SetIndexPrice {a} refused: {ev[0].message}")
                    t.ticks += 1
                self._requote(moved, index, ts, t)
                t.fund_min = min(t.fund_min, t.fund_equity())
            current = target
        while t.deferred and t.extra_ticks < MAX_EXTRA_TICKS:
            ts += SECOND
            t.apply(Tick(), ts)
            t.extra_ticks += 1
            t.fund_min = min(t.fund_min, t.fund_equity())
        return t.result(sc, fund0, t.fund_equity(), seen_step)

    def _requote(self, moved: list[str], index: dict[str, int], ts: int, t: "Tally") -> None:
        for und in moved:
            quotes = self.quotes.get(und)
            if not quotes:
                continue
            num, den = index[und], self.base[und]
            for acct, sym in sorted({(q[0], q[1]) for q in quotes}):
                t.apply(CancelAll(account=acct, symbol=sym), ts)
            for acct, sym, side, price, qty in quotes:
                new = max(1, (2 * price * num + den) // (2 * den))  # price x index ratio, rounded half up
                ev = t.apply(NewOrder(account=acct, symbol=sym, side=Side.BUY if side > 0 else Side.SELL,
                                      qty=qty, price=new, tif="post_only"), ts)
                if isinstance(ev[0], Rejected):
                    t.maker_rejects += 1


class Tally:
    """Counts of the events of one scenario."""

    def __init__(self, runner: Runner, venue):
        self.r = runner
        self.venue = venue
        self.step = 0
        #: the last command's cascade was cut by the per-command bound; any
        #: next command runs it on (Venue.apply), so only the last one counts
        self.deferred = False
        self.ticks = self.liquidations = self.slices = self.takeovers = self.adl = 0
        self.conversions = self.bound_hits = self.extra_ticks = self.maker_rejects = 0
        self.book = self.takeover_notional = self.adl_notional = self.conversion = self.bad_debt = 0.0
        self.liquidated: set[int] = set()
        self.adl_accounts: set[int] = set()
        self.clear_step = -1
        self.fund_min = 0.0

    def apply(self, cmd, ts: int | None = None) -> list:
        """Apply a command to the scenario's venue and count its events."""
        events = self.venue.apply(cmd, ts)
        self.deferred = self.absorb(events)
        return events

    def fund_equity(self) -> float:
        """The insurance fund's equity once no cascade is pending: a query
        runs a deferred cascade first (its update is from before it), so ask
        again until nothing else happened (bounded)."""
        for _ in range(MAX_EXTRA_TICKS):
            ev = self.apply(QueryAccount(account=self.r.fund))
            if len(ev) == 1:
                break
        upd = ev[0]  # the query's own answer comes first, before any cascade it ran
        return upd.equity if isinstance(upd, AccountUpdate) else 0.0

    def absorb(self, events: list) -> bool:
        """Count ``events``; True if a cascade was deferred (CascadeBoundHit)."""
        usd_per = self.r.usd_per
        active = deferred = False
        for e in events:
            tp = type(e)
            if tp is Trade:
                if e.liquidation:
                    self.book += e.price * e.qty * usd_per[e.symbol]
            elif tp is LiquidationStarted:
                self.liquidations += 1
                self.liquidated.add(e.account)
                active = True
            elif tp is LiquidationSlice:
                self.slices += 1
                active = True
            elif tp is InsuranceTakeover:
                self.takeovers += 1
                self.takeover_notional += e.price * e.qty * usd_per[e.symbol]
                active = True
            elif tp is AutoDeleverage:
                self.adl += 1
                self.adl_accounts.add(e.counterparty)
                self.adl_notional += e.price * e.qty * usd_per[e.symbol]
                active = True
            elif tp is CollateralConversion:
                self.conversions += 1
                self.conversion += e.proceeds / self.r.unit
            elif tp is BankruptcyCovered:
                self.bad_debt += e.amount / self.r.unit
                active = True
            elif tp is CascadeBoundHit:
                self.bound_hits += 1
                deferred = True
        if active:
            self.clear_step = max(self.clear_step, self.step)
        return deferred

    def result(self, sc: Scenario, fund0: float, fund_end: float, steps: list[dict[str, float]]) -> ScenarioResult:
        r = self.r
        meta = r.pop.meta
        below = set()
        worst_loss = None
        for moves in steps:
            idx = meta.index_after(moves)
            equity, mm = first_order.figures(r.pop, idx)
            mask = (mm > 0) & (equity < meta.liq_ratio * mm)
            below.update(int(i) for i in r.pop.ids[mask])
            loss = np.maximum(0.0, -equity)
            worst_loss = loss if worst_loss is None else np.maximum(worst_loss, loss)
        c1, c2, top = first_order.covers(worst_loss, r.pop.ids)
        clear_s = 0
        if self.clear_step >= 0:
            clear_s = (self.clear_step + 1) * sc.step_s + (self.extra_ticks if self.clear_step == len(sc.path) - 1 else 0)
        return ScenarioResult(
            index=sc.index, name=sc.name, kind=sc.kind, shock=round(shock_size(sc), 6), steps=len(sc.path),
            ticks=self.ticks, liquidations=self.liquidations, accounts_liquidated=sorted(self.liquidated),
            slices=self.slices, notional_closed=_usd(self.book + self.takeover_notional + self.adl_notional),
            book_notional=_usd(self.book), takeovers=self.takeovers, takeover_notional=_usd(self.takeover_notional),
            adl_count=self.adl, adl_accounts=sorted(self.adl_accounts), conversions=self.conversions,
            conversion_proceeds=_usd(self.conversion), bad_debt=_usd(self.bad_debt), fund_start=_usd(fund0),
            fund_min=_usd(self.fund_min), fund_end=_usd(fund_end), fund_drawdown=_usd(fund0 - self.fund_min),
            fund_exhausted=self.adl > 0 or self.fund_min <= 0.0, cascade_bound_hits=self.bound_hits,
            extra_ticks=self.extra_ticks, clear_step=self.clear_step, clear_s=clear_s,
            first_order_below_mm=len(below), cover1=_usd(c1), cover2=_usd(c2),
            worst=[(a, _usd(x)) for a, x in top], maker_rejects=self.maker_rejects,
        )


def run_scenario(prep: Prepared, sc: Scenario) -> ScenarioResult:
    """Convenience: one scenario, building the per-process state each call."""
    return Runner(prep).run(sc)
