"""The liquidation engine: worst margin impact first, in slices, at bounded prices.

When an account's equity falls below its maintenance margin (an isolated
position: its allocation + uPnL below its own MM), the venue flags it and,
at the end of the command, this engine runs (docs/adr/0005-liquidation-order.md):

1. **Order.** Flagged accounts are processed most under-margined first
   (lowest ratio), ties by account id. Liquidation fills can push their
   counterparties under too; those are flagged and processed in the next
   *round* (an account back above MM by then is dropped). At most
   ``max_rounds`` rounds run per command; past that a ``CascadeBoundHit``
   event names who is still below MM and the next command goes on.
2. **Cancel** the account's open orders (cause ``liquidation``), then re-check.
3. **Rank** positions by margin impact, ``MM(all) − MM(all without it)``,
   with the account's own model; close the largest first, ties by symbol,
   and re-rank after every slice. Under portfolio margin a hedge leg has a
   negative impact (removing it raises MM), so it is never closed while the
   naked leg that drives the risk is still open.
4. **Slice** = min(slice_fraction of the position, the closed-form lots that
   bring the ratio back to ``target_ratio`` at mark), at least
   ``min_slice_notional``: an IOC order into the book, priced no worse than
   the position's **bankruptcy price** — the price at which the account's
   equity would be zero: ``bk = mark − equity / (qty × value)``.
5. **Fee** ``fee_rate`` × closed notional to the insurance fund, shrunk so it
   never takes the account below zero equity. It replaces the taker fee:
   the liquidation order's fills charge the account none (the resting maker
   pays its maker fee as usual; ``Clearing.settle``), since the
   bankruptcy price leaves nothing for a fee on top.
6. **Backstop.** What the book cannot absorb within the bankruptcy price, the
   insurance fund (a real account) takes over at that price — if its equity
   can bear the loss at mark. Otherwise **auto-deleveraging** closes the rest
   against opposite positions ranked by PnL% × effective leverage (BitMEX,
   Binance), at the same bankruptcy price.
7. **Debt.** A negative settlement balance left with no positions (or still
   below MM) is repaid by selling other collateral to the fund at index minus
   ``conversion_penalty``, most-haircut asset first; what is still missing
   after that, the fund pays (``BankruptcyCovered``).

**Grace.** With ``[liquidation] grace_ms`` > 0 a flagged account waits that
long in venue time (the ``ts`` the sequencer stamped on its flagging
command) and is liquidated by the first command at or after flag + grace,
if still below MM then: the book gets that long to re-form after a jump
(``serve --liquidity``, docs/adr/0013-house-liquidity.md). 0, the default,
liquidates inside the command that flagged.

Every step is an event. Nothing here reads a clock or a random source, and
every iteration order is defined, so the cascade is deterministic.

The engine drives the pipeline through its stages' public methods only
(docs/adr/0007-pipeline.md): ``venue.execute`` runs a liquidation order
through matching and clearing and returns its ``Execution`` (what filled, at
which prices, whom it touched); money moves through ``Clearing`` (fees,
takeovers, ADL transfers, conversions), open orders through ``OrderIndex``,
levels through ``Watch``, account events through ``Views``.
"""

from __future__ import annotations

import math
from bisect import bisect_left, insort
from decimal import Decimal
from fractions import Fraction
from exchange_sim.accounts import Account
from exchange_sim.book import BUY, FLAG_LIQUIDATION, FLAG_REDUCE_ONLY, SELL, STP_NONE, Order
from exchange_sim.instruments import Instrument
from exchange_sim.risk.margin import ISOLATED
from protocol.messages import (
    PRICE_SCALE,
    AutoDeleverage,
    BankruptcyCovered,
    CancelCause,
    CascadeBoundHit,
    CollateralConversion,
    InsuranceTakeover,
    LiquidationFinished,
    LiquidationNotice,
    LiquidationSlice,
    LiquidationStarted,
    OrderType,
    Side,
    TimeInForce,
)

MAX_SLICES = 200  # per liquidation; past it each position left is closed whole
_SIDE_ENUM = {BUY: Side.BUY, SELL: Side.SELL}


class LiquidationEngine:
    """Flags and liquidates accounts; see the module docstring. ``venue``:
    the sequencer (``exchange_sim.core.sequencer.Venue``), for its stages."""

    def __init__(self, venue):
        self.v = venue
        self.s = venue.state
        self.p = self.s.config.liquidation
        self.fund_id = self.p.insurance_account
        fee = Fraction(Decimal(str(self.p.fee_rate)))
        self.fee_fraction = (fee.numerator, fee.denominator)
        pen = Fraction(Decimal(str(self.p.conversion_penalty)))
        self.keep = (pen.denominator - pen.numerator, pen.denominator)  # 1 - penalty
        #: accounts flagged below MM, waiting for the next round
        self.pending: dict[int, Account] = {}
        # --- house liquidity: the liquidation grace (docs/adr/0013-house-liquidity.md)
        #: venue ns a flagged account waits before the engine acts (0: in the flagging command)
        self.grace_ns = self.p.grace_ms * 1_000_000
        #: account id -> venue time (ns) it was first flagged, while it waits out the grace
        self.since: dict[int, int] = {}
        #: the fund's wallet or positions changed during this run
        self.fund_touched = False
        # ADL queues of this command: (symbol, side) -> [sorted (-rank, id), id -> key,
        # how much of _log is applied]; _log lists accounts changed since they were built
        self._queues: dict[tuple[str, int], list] = {}
        self._log: list[Account] = []
        self._stamp = (-1, -1)

    # ------------------------------------------------------------ rounds

    def flag(self, acct: Account) -> None:
        if acct.id != self.fund_id:
            self.pending[acct.id] = acct
            if self.grace_ns and acct.id not in self.since:
                self.since[acct.id] = self.s.now

    def run(self, events: list) -> None:
        """Process flagged accounts round by round until none is left."""
        v = self.s
        m = v.margin
        limit = v.risk.liquidation_ratio
        rounds = 0
        self.fund_touched = False
        waiting: dict[int, Account] = {}
        while self.pending:
            batch, self.pending = self.pending, {}
            if self.grace_ns:  # flagged less than the grace ago: the book gets that long to re-form first
                batch = self._due(batch, waiting)
            # Only accounts still below MM wait: one flagged between two of its
            # own slices, or lifted again by a later fill, is not pending.
            due = []
            for a in batch.values():
                if v.accounts.get(a.id) is a:
                    r = m.ratio(m.fresh(a))
                    if r is not None and r < limit:
                        due.append((r, a.id, a))
                        continue
                self.since.pop(a.id, None)  # back above MM (or gone): a later fall starts a new grace
            if not due:
                break
            due.sort(key=lambda t: (t[0], t[1]))
            if rounds == self.p.max_rounds:
                self.pending = {a.id: a for _, _, a in due}
                events.append(CascadeBoundHit(rounds=rounds, pending=sorted(self.pending)))
                break
            rounds += 1
            for _, _, acct in due:
                self.pending.pop(acct.id, None)  # liquidating it now
                self.since.pop(acct.id, None)
                self.liquidate(acct, events)
        if waiting:
            self.pending.update(waiting)
        if self.fund_touched:  # fees, takeovers, conversions: the fund's state now
            events.append(self.v.views.account_update(v.accounts[self.fund_id]))

    def _due(self, batch: dict[int, Account], waiting: dict[int, Account]) -> dict[int, Account]:
        """The flagged accounts whose grace has passed at venue time ``now``;
        the others move to ``waiting`` (pending again after this run)."""
        now, grace, since = self.s.now, self.grace_ns, self.since
        due = {}
        for i, a in batch.items():
            if now - since.setdefault(i, now) >= grace:
                due[i] = a
            else:
                waiting[i] = a
        return due

    # ------------------------------------------------------- one account

    def liquidate(self, acct: Account, events: list) -> None:
        v = self.s
        m = v.margin
        if acct.margin_mode is ISOLATED:
            for sym in sorted(acct.positions):
                pos = acct.positions[sym]
                if pos.qty:
                    ins = v.instruments[sym]
                    r = m.isolated_ratio(acct, ins, pos)
                    if r is not None and r < v.risk.liquidation_ratio:
                        self._liquidate_isolated(acct, ins, events)
            self._settle_debt(acct, events)
            events.append(self.v.views.account_update(acct))
            return
        ratio = m.ratio(m.fresh(acct))
        if ratio is None or ratio >= v.risk.liquidation_ratio:
            return
        events.append(LiquidationStarted(account=acct.id, margin_ratio=ratio, equity=m.equity(acct), mm=acct.mm))
        self._cancel_orders(acct, None, events)
        target = self.p.target_ratio
        n = 0
        while True:  # ends: past MAX_SLICES every slice closes a whole position
            m.fresh(acct)
            eq, mm = m.equity(acct), acct.mm
            if mm <= 0.0 or eq >= target * mm:
                break
            exposures = m.exposures(acct)  # by symbol: the tie-break order
            impacts = m.model(acct).impacts(exposures)
            k = min(range(len(exposures)), key=lambda j: (-impacts[j], j))
            ins = exposures[k][0]
            pos = acct.positions[ins.symbol]
            size = abs(pos.qty)
            lots = size if n >= MAX_SLICES else self._slice(ins, size, eq, mm, impacts[k])
            self._close(acct, ins, lots, eq, impacts[k], None, events)
            n += 1
        self._settle_debt(acct, events)
        events.append(self.v.views.account_update(acct))  # after the fees and the backstop
        events.append(
            LiquidationFinished(account=acct.id, margin_ratio=m.ratio(acct), equity=m.equity(acct), mm=acct.mm)
        )

    def _liquidate_isolated(self, acct: Account, ins: Instrument, events: list) -> None:
        m = self.s.margin
        sym = ins.symbol
        pos = acct.positions[sym]
        own, mm = self._isolated_figures(acct, ins)
        events.append(LiquidationStarted(account=acct.id, margin_ratio=own / mm, equity=own, mm=mm, symbol=sym))
        self._cancel_orders(acct, sym, events)
        target = self.p.target_ratio
        for n in range(MAX_SLICES + 1):
            if not pos.qty:
                break
            own, mm = self._isolated_figures(acct, ins)
            if mm <= 0.0 or own >= target * mm:
                break
            size = abs(pos.qty)
            lots = size if n == MAX_SLICES else self._slice(ins, size, own, mm, mm)
            self._close(acct, ins, lots, own, mm, own, events)
        own, mm = self._isolated_figures(acct, ins) if pos.qty else (0.0, 0.0)
        events.append(
            LiquidationFinished(
                account=acct.id, margin_ratio=own / mm if mm > 0 else None, equity=own, mm=mm, symbol=sym
            )
        )
        m.fresh(acct)

    def _isolated_figures(self, acct: Account, ins: Instrument) -> tuple[float, float]:
        """(own equity, MM) of an isolated position, USD."""
        pos = acct.positions[ins.symbol]
        own = (acct.isolated.get(ins.symbol, 0) + ins.upnl(pos.qty, pos.cost)) / self.s.settle.unit
        return own, ins.isolated_mm(pos.qty)

    def _cancel_orders(self, acct: Account, symbol: str | None, events: list) -> None:
        self.v.orders.cancel_all(acct, symbol, CancelCause.LIQUIDATION, events)

    # ----------------------------------------------------------- slices

    def _slice(self, ins: Instrument, size: int, equity: float, mm: float, impact: float) -> int:
        """Lots to close next: the smaller of a fixed fraction and the closed
        form, at least ``min_slice_notional``, at most the position."""
        if equity * self.s.settle.unit < 1.0:
            return size  # bankrupt (less than a minor unit left): close it at once
        lots = math.ceil(size * self.p.slice_fraction)
        lot_usd = ins.usd(ins.mark)
        # Closed form at mark: each lot closed frees impact/size of MM and
        # costs the fee on its notional; restore E − fee·x ≥ target·(MM − relief·x).
        target = self.p.target_ratio
        net = target * impact / size - self.p.fee_rate * lot_usd
        if net > 0.0:
            needed = math.ceil((target * mm - equity) / net)
            lots = min(lots, max(needed, 1))
        if lot_usd > 0:
            lots = max(lots, math.ceil(self.p.min_slice_notional / lot_usd))
        return max(1, min(lots, size))

    def bankruptcy_price(self, ins: Instrument, qty: int, equity: float) -> int:
        """Ticks at which ``equity`` (USD) would be zero with ``qty`` moving
        alone; rounded so the liquidation never trades worse than it."""
        bk = ins.mark - equity * self.s.settle.unit / (qty * ins.value)
        return max(1, math.ceil(bk)) if qty > 0 else max(1, math.floor(bk))

    def _close(self, acct, ins, lots, equity, impact, isolated_own, events) -> None:
        """Close ``lots`` of the position: IOC into the book at the bankruptcy
        bound, the rest to the insurance fund or ADL, then the fee."""
        s = self.s
        sym = ins.symbol
        pos = acct.positions[sym]
        old_qty = pos.qty
        side = SELL if pos.qty > 0 else BUY
        bk = self.bankruptcy_price(ins, pos.qty, equity)
        mark = ins.mark
        order = Order(
            s.take_order_id(), acct.id, side, bk, lots, STP_NONE, None, sym, TimeInForce.IOC,
            FLAG_REDUCE_ONLY | FLAG_LIQUIDATION, s.seq,
        )
        ex = self.v.execute(acct, ins, order, OrderType.LIMIT, events, liquidation=True)
        if self._queues:
            self._log += ex.touched
        rest = order.qty
        book_qty = lots - rest
        notional = ex.notional(ins.value)
        slip = -ex.slippage(mark, side, ins.value)  # settlement minor units the fills gained against mark
        if book_qty:
            avg = round(notional / (book_qty * ins.value))
            events.append(LiquidationNotice(symbol=sym, side=_SIDE_ENUM[side], qty=book_qty, price=avg))
        if rest:
            notional += bk * rest * ins.value
            slip += (bk - mark) * rest * ins.value * (-1 if side == BUY else 1)
            before_backstop = pos.qty  # the book fills already rebalanced up to here
            self._backstop(acct, ins, side, rest, bk, events)
            if acct.margin_mode is ISOLATED:
                self.v.clearing.rebalance_isolated(acct, ins, before_backstop, events)
        fee = self._fee(acct, notional, lots, old_qty, slip, isolated_own)
        m = s.margin
        m.fresh(acct)
        events.append(
            LiquidationSlice(
                account=acct.id, symbol=sym, side=_SIDE_ENUM[side], qty=lots, book_qty=book_qty, takeover_qty=rest,
                bankruptcy_price=bk, impact=impact, fee=fee, margin_ratio_after=m.ratio(acct),
            )
        )

    def _fee(self, acct, notional, lots, old_qty, slip, isolated_own) -> int:
        v = self.s
        unit = v.settle.unit
        num, den = self.fee_fraction
        fee = -((-notional * num) // den)  # exact integer ceiling: rounded against the account
        m = v.margin
        if isolated_own is None:
            cap = math.floor(m.equity(m.fresh(acct)) * unit)
        else:  # the closed share of the position's own equity, after slippage
            cap = math.floor(isolated_own * unit * lots / abs(old_qty) + slip)
        fee = max(0, min(fee, cap))
        if fee:
            fund = v.accounts[self.fund_id]
            if self._queues:
                self._log += (acct, fund)
            self.v.clearing.liquidation_fee(acct, fund, fee)
            self.fund_touched = True
        return fee

    # ---------------------------------------------------------- backstop

    def _transfer(self, a: Account, b: Account, ins: Instrument, a_side: int, lots: int, price: int) -> None:
        """Move ``lots`` between two accounts at ``price``, off-book, no fee:
        ``a`` trades ``a_side``, ``b`` the other side."""
        self.v.clearing.transfer(a, b, ins, a_side, lots, price)
        if self._queues:
            self._log += (a, b)

    def _backstop(self, acct, ins, side, lots, price, events) -> None:
        v = self.s
        m = v.margin
        fund = v.accounts[self.fund_id]
        # the fund takes the other side: its loss at mark if the price is off-market
        fund_side = -side
        loss = max(0, (price - ins.mark) * lots * ins.value * fund_side) / v.settle.unit
        if m.equity(m.fresh(fund)) - loss >= 0.0:
            self._transfer(acct, fund, ins, side, lots, price)
            self.fund_touched = True
            events.append(
                InsuranceTakeover(account=acct.id, fund=fund.id, symbol=ins.symbol, side=_SIDE_ENUM[side], qty=lots, price=price)
            )
            return  # the fund's AccountUpdate goes out once, at the end of the run
        self._adl(acct, ins, side, lots, price, events)

    def adl_ranking(self, ins: Instrument, bankrupt: Account | None, side: int) -> list[tuple[float, Account]]:
        """Opposite positions by rank = PnL% × effective leverage, highest first,
        ties by account id. ``side`` is the bankrupt account's closing side.
        O(accounts): the reference; ``_adl`` keeps the same order incrementally."""
        ranked = []
        for a in self.s.accounts.values():
            if a is bankrupt:
                continue
            pos = a.positions.get(ins.symbol)
            if pos is None or not pos.qty or (pos.qty > 0) != (side > 0):
                continue  # the counterparty must hold the opposite of the bankrupt position
            ranked.append((self._rank(a, ins, pos), a))
        ranked.sort(key=lambda r: (-r[0], r[1].id))
        return ranked

    def _rank(self, a: Account, ins: Instrument, pos) -> float:
        v = self.s
        m = v.margin
        upnl = ins.upnl(pos.qty, pos.cost)
        entry = abs(pos.cost * ins.value) or 1
        eq = m.equity(m.fresh(a))
        lev = abs(pos.qty * ins.mark * ins.value) / v.settle.unit / (eq if eq > 0 else 1e-9)
        return upnl / entry * lev

    def _adl_queue(self, ins: Instrument, side: int) -> list[tuple[float, int]]:
        """``adl_ranking`` as sorted (−rank, account id) keys, built once per
        (symbol, side) per command and then updated only for the accounts
        changed since (fills, transfers, fees, conversions): ranks depend on
        positions, equity and marks, and marks do not move inside a cascade.
        The same order as a full re-ranking, without an O(accounts) scan per
        bankrupt slice."""
        v = self.s
        stamp = (v.seq, v.margin.epoch)
        if stamp != self._stamp:
            self._stamp = stamp
            self._queues = {}
            self._log = []
        sym = ins.symbol
        q = self._queues.get((sym, side))
        if q is None:
            keys = [(-r, a.id) for r, a in self.adl_ranking(ins, None, side)]
            q = self._queues[(sym, side)] = [keys, {k[1]: k for k in keys}, len(self._log)]
            return keys
        keys, key_of, seen = q
        log = self._log
        if seen < len(log):
            for a in dict.fromkeys(log[seen:]):  # each changed account once
                old = key_of.pop(a.id, None)
                if old is not None:
                    del keys[bisect_left(keys, old)]
                pos = a.positions.get(sym)
                if pos is not None and pos.qty and (pos.qty > 0) == (side > 0):
                    k = key_of[a.id] = (-self._rank(a, ins, pos), a.id)
                    insort(keys, k)
            q[2] = len(log)
        return keys

    def _adl(self, acct, ins, side, lots, price, events) -> None:
        v = self.s
        stages = self.v
        for neg_rank, other_id in self._adl_queue(ins, side):  # not changed while iterated
            if not lots:
                break
            other = v.accounts[other_id]
            if other is acct:
                continue
            rank = -neg_rank
            old = other.position_qty(ins.symbol)
            q = min(lots, abs(old))
            self._transfer(acct, other, ins, side, q, price)
            lots -= q
            events.append(
                AutoDeleverage(account=acct.id, counterparty=other.id, symbol=ins.symbol, qty=q, price=price, rank=rank)
            )
            if other.margin_mode is ISOLATED:
                stages.clearing.rebalance_isolated(other, ins, old, events)
            stages.orders.position_changed(other, ins, events)
            events.append(stages.views.account_update(other))
            # closed off-market, it may now be below MM: flag it for the next round
            stages.watch.check(other, events)
        assert lots == 0, "positions net to zero, so opposite positions always cover a bankrupt one"

    # -------------------------------------------------------------- debt

    def _settle_debt(self, acct: Account, events: list) -> None:
        """Repay a negative settlement balance from other collateral, then the fund."""
        v = self.s
        m = v.margin
        settle = v.settle_name
        if acct.balances.get(settle, 0) >= 0:
            return
        if any(p.qty for p in acct.positions.values()):
            ratio = m.ratio(m.fresh(acct))
            if ratio is None or ratio >= v.risk.liquidation_ratio:
                return
        fund = v.accounts[self.fund_id]
        if self._queues:
            self._log += (acct, fund)
        keep_num, keep_den = self.keep
        # most-haircut asset first (its first bracket's rate), ties by name
        for name in sorted(
            (n for n, b in acct.balances.items() if b > 0 and n != settle and v.assets[n].index),
            key=lambda n: (-v.assets[n].haircut.first_rate(), n),
        ):
            debt = -acct.balances[settle]
            if debt <= 0:
                break
            asset = v.assets[name]
            # proceeds(units) = units × index × (1 − penalty) in settlement minor units, floored
            num = asset.index * keep_num * v.settle.unit
            den = PRICE_SCALE * asset.unit * keep_den
            units = min(acct.balances[name], -((-debt * den) // num))
            proceeds = units * num // den
            if units <= 0 or proceeds <= 0:
                continue
            self.v.clearing.convert(acct, fund, name, units, proceeds)
            self.fund_touched = True
            events.append(
                CollateralConversion(
                    account=acct.id, asset=name, amount=units, proceeds=proceeds,
                    price=asset.index / PRICE_SCALE * keep_num / keep_den,
                )
            )
        debt = -acct.balances.get(settle, 0)
        if debt > 0 and not any(p.qty for p in acct.positions.values()):
            self.v.clearing.cover(acct, fund, debt)
            self.fund_touched = True
            events.append(BankruptcyCovered(account=acct.id, amount=debt))
