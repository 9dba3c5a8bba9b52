"""The venue-wide risk sweep: every account's equity, IM, MM and ratio at once.

On every mark-price move each account must be re-checked. Doing that with a
Python loop per account costs ~100 ms for 10^5 accounts; here the venue keeps
its accounts as numpy columns and one sweep is a handful of array passes:

    qty, cost, alloc : instruments × accounts   (float64; instruments are rows,
                       so each row is a contiguous run over accounts)
    bal              : assets × accounts        (minor units)
    mode             : accounts                 (0 cross, 1 portfolio, 2 isolated)

    notional_USD = qty · mark · value / unit
    uPnL         = Σ_i (qty · mark − cost) · value / unit
    collateral   = Σ_k counted(bal_k · index_k)        (tiered haircuts, vectorized)
    equity       = collateral + Σ alloc / unit + uPnL
    IM, MM       = each mode's model ``sweep`` over its columns
    ratio        = equity / MM; isolated: min over positions of (alloc + uPnL_i) / MM_i

The sweep's IM counts positions only (resting orders matter to the pre-trade
check, not to liquidation). Arrays are written by the venue when an account's
wallet or positions change (``RiskArrays.sync``), so the hot path pays a few
scalar writes per fill and the sweep pays nothing per account in Python.
Figures are floats (risk estimates); a property test checks them against the
per-account path of :mod:`exchange_sim.risk.margin` to 1e-9 relative.
"""

from __future__ import annotations

import numpy as np

from exchange_sim.accounts import Account
from exchange_sim.risk.margin import MarginEngine
from exchange_sim.risk.models import tiered
from protocol.messages import PRICE_SCALE, MarginMode

MODE_CODE = {MarginMode.CROSS: 0, MarginMode.PORTFOLIO: 1, MarginMode.ISOLATED: 2}


class SweepResult:
    """Per-account arrays, aligned with ``RiskArrays.ids[:n]``."""

    __slots__ = ("ids", "equity", "im", "mm", "ratio")

    def __init__(self, ids, equity, im, mm, ratio):
        self.ids = ids
        self.equity = equity
        self.im = im
        self.mm = mm
        self.ratio = ratio  # +inf where there is no requirement


class RiskArrays:
    """Accounts as numpy columns, grown by doubling."""

    def __init__(self, symbols: list[str], assets: list[str], capacity: int = 1024):
        self.symbols = symbols
        self.asset_names = assets
        self.sym_row = {s: i for i, s in enumerate(symbols)}
        self.asset_row = {a: k for k, a in enumerate(assets)}
        self.n = 0
        self.ids: list[int] = []
        self._alloc(capacity)

    def _alloc(self, cap: int) -> None:
        ni, nk = len(self.symbols), len(self.asset_names)
        old = getattr(self, "qty", None)
        qty, cost, alloc = np.zeros((ni, cap)), np.zeros((ni, cap)), np.zeros((ni, cap))
        bal, mode = np.zeros((nk, cap)), np.zeros(cap, dtype=np.int8)
        level = np.zeros(cap, dtype=np.int8)
        if old is not None:
            n = self.n
            qty[:, :n], cost[:, :n], alloc[:, :n] = self.qty[:, :n], self.cost[:, :n], self.alloc[:, :n]
            bal[:, :n], mode[:n], level[:n] = self.bal[:, :n], self.mode[:n], self.level[:n]
        self.qty, self.cost, self.alloc, self.bal, self.mode = qty, cost, alloc, bal, mode
        #: margin-call level last reported per account: 0 fine, 1 warning,
        #: 2 reduce-only, 3 liquidation (a MarginCall fires when it rises)
        self.level = level
        self.cap = cap

    def add(self, acct: Account) -> None:
        if self.n == self.cap:
            self._alloc(self.cap * 2)
        acct.col = self.n
        self.ids.append(acct.id)
        self.n += 1
        self.sync(acct)

    def remove(self, acct: Account, accounts: dict[int, Account]) -> None:
        """Drop a (flat, empty) account: the last column moves into its place."""
        col, last = acct.col, self.n - 1
        if col != last:
            moved = accounts[self.ids[last]]
            for arr in (self.qty, self.cost, self.alloc, self.bal):
                arr[:, col] = arr[:, last]
            self.mode[col] = self.mode[last]
            self.level[col] = self.level[last]
            self.ids[col] = moved.id
            moved.col = col
        for arr in (self.qty, self.cost, self.alloc, self.bal):
            arr[:, last] = 0.0
        self.mode[last] = 0
        self.level[last] = 0
        self.ids.pop()
        self.n -= 1
        acct.col = -1

    def sync(self, acct: Account) -> None:
        """Write one account's wallet, positions, allocations and mode. O(its size)."""
        col = acct.col
        self.qty[:, col] = 0.0
        self.cost[:, col] = 0.0
        self.alloc[:, col] = 0.0
        self.bal[:, col] = 0.0
        row = self.sym_row
        for sym, pos in acct.positions.items():
            if pos.qty:
                self.qty[row[sym], col] = pos.qty
                self.cost[row[sym], col] = pos.cost
        for sym, a in acct.isolated.items():
            self.alloc[row[sym], col] = a
        arow = self.asset_row
        for name, b in acct.balances.items():
            self.bal[arow[name], col] = b
        self.mode[col] = MODE_CODE[acct.margin_mode]


def sweep(arrays: RiskArrays, engine: MarginEngine) -> SweepResult:
    """Equity, IM, MM and ratio of every account, vectorized. See module doc."""
    n = arrays.n
    inss = [engine.instruments[s] for s in arrays.symbols]
    unit = engine.unit
    marks = np.array([float(i.mark) for i in inss])
    values = np.array([float(i.value) for i in inss])
    qty = arrays.qty[:, :n]
    scale = (marks * values / unit)[:, None]
    notional = qty * scale
    upnl_pos = notional - arrays.cost[:, :n] * (values / unit)[:, None]
    upnl = upnl_pos.sum(axis=0)
    collateral = np.zeros(n)
    for k, name in enumerate(arrays.asset_names):
        asset = engine.assets[name]
        if not asset.index:
            continue
        v = arrays.bal[k, :n] * (asset.index / (asset.unit * PRICE_SCALE))
        positive = np.maximum(v, 0.0)
        collateral += np.where(v > 0.0, v - tiered(asset.haircut, positive), v)
    alloc = arrays.alloc[:, :n]
    equity = collateral + alloc.sum(axis=0) / unit + upnl
    im = np.zeros(n)
    mm = np.zeros(n)
    ratio = np.full(n, np.inf)
    mode = arrays.mode[:n]
    for code, model in ((0, engine.cross), (1, engine.portfolio)):
        cols = np.flatnonzero(mode == code)
        if cols.size == 0:
            continue
        if cols.size == n:  # the common case: no fancy-index copy
            im, mm = model.sweep(notional, arrays.symbols)
            break
        im[cols], mm[cols] = model.sweep(notional[:, cols], arrays.symbols)
    cols = np.flatnonzero(mode == 2)
    if cols.size:
        sub = notional[:, cols]
        gross = np.abs(sub)
        mm_pos = np.zeros_like(sub)
        im_pos = np.zeros_like(sub)
        for i, ins in enumerate(inss):
            mm_pos[i] = tiered(ins.mm_tiers, gross[i])
            im_pos[i] = tiered(ins.im_tiers, gross[i])
        own = alloc[:, cols] / unit + upnl_pos[:, cols]
        with np.errstate(divide="ignore", invalid="ignore"):
            pos_ratio = np.where(mm_pos > 0.0, own / mm_pos, np.inf)
        ratio[cols] = pos_ratio.min(axis=0)
        im[cols] = im_pos.sum(axis=0)
        mm[cols] = mm_pos.sum(axis=0)
    pooled = mode != 2
    with np.errstate(divide="ignore", invalid="ignore"):
        ratio = np.where(pooled & (mm > 0.0), equity / np.where(mm > 0.0, mm, 1.0), ratio)
    return SweepResult(arrays.ids[:n], equity, im, mm, ratio)
