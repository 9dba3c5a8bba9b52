"""Clearing (R2): the only writer of money.

Balances, positions, fees, funding, isolated allocations, transfers and the
money ledgers change here and nowhere else, and every write keeps the two
derived structures in step itself: the account's margin caches (a fill
updates the touched terms in place, ``MarginEngine.touch``; any other write
goes through ``Account.credit``, which invalidates them) and the sweep's
dirty set (accounts whose numpy column must be re-synced before the next
vectorized sweep). No other stage can forget either.

Settlement arithmetic is the contract kind's (:mod:`exchange_sim.products`):
notional, fee and realized PnL in integers of the settlement asset.
"""

from __future__ import annotations

import math

from exchange_sim.accounts import Account
from exchange_sim.book import FLAG_LIQUIDATION, Order
from exchange_sim.core.orders import OrderIndex
from exchange_sim.core.state import State
from exchange_sim.funding import FundingRule, payment
from exchange_sim.instruments import Asset, Instrument
from exchange_sim.risk.margin import ISOLATED
from protocol.messages import (
    BalanceChanged,
    Fill,
    FundingPayment,
    FundingRate,
    IsolatedMarginChanged,
    Liquidity,
    MarginMode,
    MarkPrice,
    Side,
    Trade,
)

_MAKER, _TAKER = Liquidity.MAKER, Liquidity.TAKER
_SIDE_ENUM = {1: Side.BUY, -1: Side.SELL}


class Clearing:
    """Settles executions and moves money; see the module docstring."""

    __slots__ = ("s", "accounts", "margin", "orders", "settle_name", "unit", "funding", "dirty")

    def __init__(self, state: State, orders: OrderIndex):
        self.s = state
        self.accounts = state.accounts
        self.margin = state.margin
        self.orders = orders
        self.settle_name = state.settle_name
        self.unit = state.settle.unit
        self.funding = FundingRule(state.config.funding)
        #: accounts whose wallet, positions or mode changed since the sweep's arrays were synced
        self.dirty: dict[int, Account] = {}

    # ---------------------------------------------------------- accounts

    def open_account(self, account_id: int, mode: MarginMode | None = None) -> Account:
        acct = Account(account_id, self.s.default_mode if mode is None else mode)
        self.s.arrays.add(acct)
        self.accounts[account_id] = acct
        return acct

    def close_account(self, acct: Account) -> None:
        self.dirty.pop(acct.id, None)
        self.s.arrays.remove(acct, self.accounts)
        del self.accounts[acct.id]

    def restore_account(self, acct: Account, level: int) -> None:
        """Put an account rebuilt from a snapshot in place (its column, its level)."""
        self.accounts[acct.id] = acct
        self.s.arrays.add(acct)
        self.s.arrays.level[acct.col] = level

    def clear_accounts(self) -> None:
        """Drop every account and the money ledgers (a snapshot restore
        starts from nothing, not from the fund's seed)."""
        self.accounts.clear()
        self.s.arrays.n = 0
        self.s.arrays.ids.clear()
        self.dirty.clear()
        for ledger in (self.s.deposits, self.s.withdrawals, self.s.fees_collected,
                       self.s.funding_residue, self.s.liquidation_fees):
            ledger.clear()

    def sync_arrays(self):
        """Copy every dirty account into its column of the sweep's arrays."""
        arrays = self.s.arrays
        for acct in self.dirty.values():
            arrays.sync(acct)
        self.dirty.clear()
        return arrays

    # -------------------------------------------------------------- fills

    def settle(self, acct: Account, ins: Instrument, order: Order, ex, events: list) -> list[Account]:
        """Settle an execution's fills: positions, realized PnL, fees, the
        Fill and Trade events, then each touched account's isolated
        allocation. Returns the touched accounts, taker first (also
        ``ex.touched``)."""
        s = self.s
        sym = ins.symbol
        value = ins.value
        settle = self.settle_name
        taker_side = order.side
        taker_enum = _SIDE_ENUM[taker_side]
        maker_enum = _SIDE_ENUM[-taker_side]
        taker_pos = acct.position(sym)
        accounts = self.accounts
        fees = s.fees_collected
        totals_sub = self.orders.totals_sub
        forget = self.orders.forget
        touched = [acct]
        olds = {acct.id: taker_pos.qty}
        taker_fee_total = 0
        taker_pnl_total = 0
        liq = bool(order.flags & FLAG_LIQUIDATION)
        remaining = ex.qty
        fee = ins.fee
        now = s.now
        for maker, qty, price in ex.fills:
            trade_id = s.next_trade_id
            s.next_trade_id = trade_id + 1
            notional = price * qty * value
            # maker side
            mk = accounts[maker.account]
            if mk.id not in olds:
                olds[mk.id] = mk.position_qty(sym)
            mk_fee = fee(notional, True)
            mk_pos = mk.position(sym)
            mk_pnl = mk_pos.apply_fill(-taker_side * qty, price) * value
            # not credit(): that would drop the margin cache; touch() below updates it
            bal = mk.balances
            bal[settle] = bal.get(settle, 0) + mk_pnl - mk_fee
            totals_sub(mk, maker, qty, False)
            if maker.qty == 0:
                forget(maker)  # its last lots were just taken out above
            if mk not in touched:
                touched.append(mk)
            events.append(
                Fill(
                    account=mk.id, order_id=maker.order_id, symbol=sym, side=maker_enum, price=price,
                    qty=qty, fee=mk_fee, liquidity=_MAKER, trade_id=trade_id, remaining=maker.qty,
                    realized_pnl=mk_pnl, position=mk_pos.qty, client_order_id=maker.client_order_id, ts=now,
                )
            )
            # taker side; a liquidation pays the liquidation fee instead
            # (liquidation.fee_rate, charged by the engine after the slice):
            # the bankruptcy price leaves nothing for a taker fee on top
            tk_fee = 0 if liq else fee(notional, False)
            tk_pnl = taker_pos.apply_fill(taker_side * qty, price) * value
            taker_fee_total += tk_fee
            taker_pnl_total += tk_pnl
            fees[settle] = fees.get(settle, 0) + mk_fee + tk_fee
            remaining -= qty
            order.filled += qty
            events.append(
                Fill(
                    account=acct.id, order_id=order.order_id, symbol=sym, side=taker_enum, price=price,
                    qty=qty, fee=tk_fee, liquidity=_TAKER, trade_id=trade_id, remaining=remaining,
                    realized_pnl=tk_pnl, position=taker_pos.qty, client_order_id=order.client_order_id,
                    liquidation=liq, ts=now,
                )
            )
            events.append(Trade(symbol=sym, trade_id=trade_id, price=price, qty=qty, taker_side=taker_enum, liquidation=liq,
                                ts=now))
        bal = acct.balances
        bal[settle] = bal.get(settle, 0) + taker_pnl_total - taker_fee_total
        # Each account's settlement balance, position and open orders in this
        # symbol moved: recompute those margin terms only (no full refresh).
        touch = self.margin.touch
        dirty = self.dirty
        for a in touched:
            touch(a, ins, settle)
        for a in touched:
            dirty[a.id] = a
            if a.margin_mode is ISOLATED:
                self.rebalance_isolated(a, ins, olds[a.id], events)
        ex.touched = touched
        return touched

    def rebalance_isolated(self, acct: Account, ins: Instrument, old_qty: int, events: list) -> None:
        """Isolated mode: keep each position's allocation in step with its size.

        Growing (or flipping): top the allocation up to the position's IM at
        mark, moved out of the wallet's settlement balance. Shrinking: release
        the closed share back to the wallet (rounded down: the position keeps
        the odd unit). Closed: release all of it.
        """
        sym = ins.symbol
        new_qty = acct.position_qty(sym)
        alloc = acct.isolated.get(sym, 0)
        flipped = old_qty != 0 and new_qty != 0 and (old_qty > 0) != (new_qty > 0)
        if new_qty == 0:
            target = 0
        elif flipped or abs(new_qty) > abs(old_qty):
            target = max(0 if flipped else alloc, math.ceil(self.margin.isolated_im(acct, ins, new_qty) * self.unit))
        else:  # shrank: the closed share goes back to the wallet
            target = alloc * abs(new_qty) // abs(old_qty)
        delta = target - alloc
        if delta == 0:
            return
        acct.credit(self.settle_name, -delta)
        if target:
            acct.isolated[sym] = target
        else:
            acct.isolated.pop(sym, None)
        self.dirty[acct.id] = acct
        events.append(IsolatedMarginChanged(account=acct.id, symbol=sym, delta=delta, allocated=target))

    # ----------------------------------------------------------- wallet

    def deposit(self, acct: Account, asset: Asset, amount: int, events: list) -> None:
        bal = acct.credit(asset.name, amount)
        deposits = self.s.deposits
        deposits[asset.name] = deposits.get(asset.name, 0) + amount
        self.dirty[acct.id] = acct
        events.append(BalanceChanged(account=acct.id, asset=asset.name, delta=amount, balance=bal, reason="deposit"))

    def withdraw(self, acct: Account, asset: Asset, amount: int, events: list) -> None:
        bal = acct.credit(asset.name, -amount)
        withdrawals = self.s.withdrawals
        withdrawals[asset.name] = withdrawals.get(asset.name, 0) + amount
        self.dirty[acct.id] = acct
        events.append(BalanceChanged(account=acct.id, asset=asset.name, delta=-amount, balance=bal, reason="withdraw"))

    def seed_fund(self, fund: Account, amount: int) -> None:
        """The insurance fund's opening balance (a deposit with no event)."""
        fund.credit(self.settle_name, amount)
        self.s.deposits[self.settle_name] = amount
        self.dirty[fund.id] = fund

    def set_mode(self, acct: Account, mode: MarginMode) -> None:
        acct.margin_mode = mode
        acct.cache_epoch = -1  # every term depends on the model
        self.dirty[acct.id] = acct

    def adjust_isolated(self, acct: Account, symbol: str, delta: int, events: list) -> None:
        alloc = acct.isolated.get(symbol, 0)
        acct.credit(self.settle_name, -delta)
        acct.isolated[symbol] = alloc + delta
        self.dirty[acct.id] = acct
        events.append(IsolatedMarginChanged(account=acct.id, symbol=symbol, delta=delta, allocated=alloc + delta))

    # ------------------------------------------------------------ prices

    def reprice(self, asset: Asset, price: int, events: list) -> None:
        """A new index price: the marks of its instruments follow, and every
        margin cache becomes stale (the engine's epoch)."""
        asset.index = price
        self.margin.epoch += 1
        for ins in self.s.by_underlying.get(asset.name, ()):
            ins.mark = ins.mark_from_index(price)
            events.append(MarkPrice(symbol=ins.symbol, mark=ins.mark, index=price))

    # ----------------------------------------------------------- funding

    def settle_funding(self, symbol: str | None, events: list, rate_e8: int | None = None) -> list[Account]:
        """Longs pay shorts (or the reverse) qty × mark × rate, per funded
        instrument, accounts in id order. See :mod:`exchange_sim.funding`.
        Returns the accounts that paid or received, in first-payment order.
        ``rate_e8``: a given rate (a replay's recorded one) instead of the premium's.

        An isolated position pays from, and receives into, its own allocation
        (as on Binance); a payment larger than the allocation takes it to zero
        and only the rest comes from the wallet. Each allocation change is an
        ``IsolatedMarginChanged``.
        """
        s = self.s
        settle = self.settle_name
        holders = sorted(self.accounts.values(), key=lambda a: a.id)
        touched: dict[int, Account] = {}
        for ins in s.instruments.values():
            if (symbol is not None and ins.symbol != symbol) or ins.mark == 0 or not ins.funded:
                continue
            premium = self.funding.premium(ins)
            rate = self.funding.rate_e8(premium) if rate_e8 is None else rate_e8  # a recorded rate (replay)
            events.append(FundingRate(symbol=ins.symbol, rate_e8=rate, mark=ins.mark, premium=premium, ts=s.now))
            if rate == 0:
                continue
            dust = 0
            for acct in holders:
                qty = acct.position_qty(ins.symbol)
                if not qty:
                    continue
                amount = payment(qty, ins.mark, ins.value, rate)
                dust -= amount
                touched[acct.id] = acct
                events.append(
                    FundingPayment(account=acct.id, symbol=ins.symbol, position=qty, rate_e8=rate, amount=amount,
                                   ts=s.now)
                )
                if acct.margin_mode is ISOLATED and amount:
                    rest = self._fund_isolated(acct, ins.symbol, amount, events)
                    if rest:
                        acct.credit(settle, rest)
                else:
                    acct.credit(settle, amount)
            s.fees_collected[settle] = s.fees_collected.get(settle, 0) + dust
            s.funding_residue[settle] = s.funding_residue.get(settle, 0) + dust  # --- leverage (ledger)
        for acct in touched.values():
            self.dirty[acct.id] = acct
        return list(touched.values())

    def _fund_isolated(self, acct: Account, sym: str, amount: int, events: list) -> int:
        """Book a funding ``amount`` (> 0 received, < 0 paid) against the
        isolated position's allocation; return what the wallet still pays
        (the part of a payment beyond the allocation), else 0."""
        alloc = acct.isolated.get(sym, 0)
        delta = amount if amount > 0 else max(amount, -alloc)
        if delta == 0:  # nothing allocated to pay from
            return amount
        target = alloc + delta
        if target:
            acct.isolated[sym] = target
        else:
            acct.isolated.pop(sym, None)
        acct.cache_epoch = -1  # the contract for changes outside the fill path (ADR 0003)
        events.append(IsolatedMarginChanged(account=acct.id, symbol=sym, delta=delta, allocated=target))
        return amount - delta

    # ------------------------------------------------------- liquidation

    def liquidation_fee(self, acct: Account, fund: Account, fee: int) -> None:
        """The liquidation fee, from the account to the insurance fund."""
        acct.credit(self.settle_name, -fee)
        fund.credit(self.settle_name, fee)
        self.dirty[acct.id] = acct
        self.dirty[fund.id] = fund
        fees = self.s.liquidation_fees  # --- leverage (ledger)
        fees[self.settle_name] = fees.get(self.settle_name, 0) + fee

    def transfer(self, a: Account, b: Account, ins: Instrument, a_side: int, lots: int, price: int) -> None:
        """Move ``lots`` between two accounts at ``price``, off-book, no fee:
        ``a`` trades ``a_side``, ``b`` the other side (takeover, ADL)."""
        settle = self.settle_name
        for acct, sign in ((a, a_side), (b, -a_side)):
            pnl = acct.position(ins.symbol).apply_fill(sign * lots, price) * ins.value
            acct.credit(settle, pnl)
            self.dirty[acct.id] = acct

    def convert(self, acct: Account, fund: Account, asset: str, units: int, proceeds: int) -> None:
        """Sell ``units`` of ``asset`` to the fund for ``proceeds`` of settlement."""
        settle = self.settle_name
        acct.credit(asset, -units)
        fund.credit(asset, units)
        fund.credit(settle, -proceeds)
        acct.credit(settle, proceeds)
        self.dirty[acct.id] = acct
        self.dirty[fund.id] = fund

    # --- leverage

    def set_leverage(self, acct: Account, ins: Instrument, leverage: int, events: list) -> None:
        """Store the account's leverage on ``ins`` (entry checked it). Every
        IM term of the symbol depends on it (the cache is rebuilt). Isolated:
        an open position's allocation is topped up to its IM at the new
        leverage from the wallet (entry checked the wallet has it), as
        Binance does when an isolated position's leverage is lowered; a higher
        leverage leaves the allocation as it is (AdjustIsolatedMargin takes it out)."""
        acct.leverage[ins.symbol] = leverage
        acct.cache_epoch = -1
        acct.views.pop(ins.symbol, None)  # its PositionView shows the IM
        self.dirty[acct.id] = acct
        qty = acct.position_qty(ins.symbol)
        if acct.margin_mode is ISOLATED and qty:
            alloc = acct.isolated.get(ins.symbol, 0)
            target = math.ceil(self.margin.isolated_im(acct, ins, qty) * self.unit)
            if target > alloc:
                self.adjust_isolated(acct, ins.symbol, target - alloc, events)
    # --- dated futures (issue 16)

    def shock_basis(self, ins: Instrument, asset, change_e8: int, events: list) -> None:
        """Move a dated future's basis by ``change_e8`` (1e-8 USD, bounded):
        a new mark, so every margin cache becomes stale (as a reprice)."""
        ins.mark = ins.shock_basis(change_e8, asset.index)
        self.margin.epoch += 1
        events.append(MarkPrice(symbol=ins.symbol, mark=ins.mark, index=asset.index))

    def settle_expiry(self, ins: Instrument, price_e8: int, events: list) -> tuple[list[Account], int]:
        """Close every position in the dated future ``ins`` in cash at
        ``price_e8`` (1e-8 USD), accounts in id order: each is paid
        ``(qty × price − cost) × value`` floored to the minor unit (against
        the account; ``DatedFuture.settlement_payout``), a ``BalanceChanged``
        with reason ``settlement``; an isolated position's allocation goes
        back to the wallet. The payouts are zero-sum up to that flooring: what
        it left over (a whole number of minor units, ≥ 0) goes to the fee
        ledger and is returned with the accounts paid."""
        settle = self.settle_name
        sym = ins.symbol
        paid: list[Account] = []
        frac = 0
        for aid in sorted(self.accounts):
            acct = self.accounts[aid]
            pos = acct.positions.get(sym)
            if pos is None or not pos.qty:
                continue
            old_qty = pos.qty
            payout, rest = ins.settlement_payout(pos.qty, pos.cost, price_e8)
            frac += rest
            pos.qty = 0
            pos.cost = 0
            bal = acct.credit(settle, payout)
            events.append(BalanceChanged(account=aid, asset=settle, delta=payout, balance=bal, reason="settlement"))
            if acct.margin_mode is ISOLATED:
                self.rebalance_isolated(acct, ins, old_qty, events)
            acct.cache_epoch = -1  # a position changed outside the fill path (ADR 0003)
            self.dirty[aid] = acct
            paid.append(acct)
        rounding = frac // ins.tick_e8  # exact: Σ qty = 0, so Σ of the exact payouts is whole
        if rounding:
            self.s.fees_collected[settle] = self.s.fees_collected.get(settle, 0) + rounding
        return paid, rounding

    def cover(self, acct: Account, fund: Account, debt: int) -> None:
        """The fund pays an account's remaining settlement debt."""
        fund.credit(self.settle_name, -debt)
        acct.credit(self.settle_name, debt)
        self.dirty[acct.id] = acct
        self.dirty[fund.id] = fund
