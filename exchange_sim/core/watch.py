"""Watch: margin levels, the vectorized sweep, liquidation flags.

Each account has a margin-call level (ok, warning, reduce-only,
liquidation) from its ratio; a ``MarginCall`` goes out when it gets worse,
and an account at the liquidation level is flagged for the liquidation
engine, which runs before ``Venue.apply`` returns. After a price move every
account is re-checked at once (:mod:`exchange_sim.risk.sweep`); after a fill,
funding or a transfer only the accounts touched are.
"""

from __future__ import annotations

from collections.abc import Callable

import numpy as np

from exchange_sim.accounts import Account
from exchange_sim.core.clearing import Clearing
from exchange_sim.core.state import State
from exchange_sim.risk.margin import ISOLATED
from exchange_sim.risk.sweep import MODE_CODE, sweep
from protocol.messages import MarginCall

LEVEL_NAMES = ("ok", "warning", "reduce_only", "liquidation")


class Watch:
    """Margin levels and liquidation flags; see the module docstring."""

    __slots__ = ("s", "margin", "risk", "clearing", "flag")

    def __init__(self, state: State, clearing: Clearing, flag: Callable[[Account], None]):
        self.s = state
        self.margin = state.margin
        self.risk = state.risk
        self.clearing = clearing
        #: called with each account found at the liquidation level
        self.flag = flag

    def level(self, ratio: float | None) -> int:
        if ratio is None:
            return 0
        r = self.risk
        if ratio < r.liquidation_ratio:
            return 3
        if ratio < r.reduce_only_ratio:
            return 2
        return 1 if ratio < r.warning_ratio else 0

    def check(self, acct: Account, events: list) -> None:
        """Per-account path (after a fill, funding, a transfer): record the
        margin-call level and tell the account when it got worse (isolated:
        the worst position's ratio, and its symbol in the MarginCall)."""
        m = self.margin
        m.fresh(acct)
        if acct.margin_mode is ISOLATED:
            ratio, symbol = m.isolated_worst(acct)
        else:
            ratio, symbol = m.ratio(acct), None
        level = self.level(ratio)
        levels = self.s.arrays.level
        old = levels[acct.col]
        if level > old:
            events.append(
                MarginCall(
                    account=acct.id, level=LEVEL_NAMES[level], margin_ratio=ratio,
                    equity=m.equity(acct), mm=acct.mm, symbol=symbol,
                )
            )
        if level != old:  # numpy scalar writes are slow; the level rarely changes
            levels[acct.col] = level
        if level == 3:
            self.flag(acct)

    def check_update(self, acct: Account, upd, events: list) -> None:
        """:meth:`check` for an account whose ``AccountUpdate`` was just built
        and nothing changed since (after a fill): its ratio, equity and MM are
        read from the update instead of computed again."""
        ratio = upd.margin_ratio
        level = self.level(ratio)
        levels = self.s.arrays.level
        old = levels[acct.col]
        if level > old:
            symbol = self.margin.isolated_worst(acct)[1] if acct.margin_mode is ISOLATED else None
            events.append(
                MarginCall(
                    account=acct.id, level=LEVEL_NAMES[level], margin_ratio=ratio,
                    equity=upd.equity, mm=upd.mm, symbol=symbol,
                )
            )
        if level != old:
            levels[acct.col] = level
        if level == 3:
            self.flag(acct)

    def risk_sweep(self):
        """Equity, IM, MM and ratio of every account in one vectorized pass
        (:mod:`exchange_sim.risk.sweep`)."""
        return sweep(self.clearing.sync_arrays(), self.margin)

    def sweep_levels(self, events: list) -> None:
        """After a price move: re-check every account at once; margin calls go
        out most under-margined first (ties by account id)."""
        res = self.risk_sweep()
        n = len(res.ids)
        if n == 0:
            return
        r = self.risk
        ratio = res.ratio
        new = np.where(
            ratio < r.liquidation_ratio, 3,
            np.where(ratio < r.reduce_only_ratio, 2, np.where(ratio < r.warning_ratio, 1, 0)),
        ).astype(np.int8)
        arrays = self.s.arrays
        old = arrays.level[:n]
        worse = np.flatnonzero(new > old)
        old[:] = new
        ids = res.ids
        accounts = self.s.accounts
        for col in np.flatnonzero(new == 3).tolist():
            self.flag(accounts[ids[col]])
        if worse.size == 0:
            return
        iso = arrays.mode[:n] == MODE_CODE[ISOLATED]
        for col in sorted(worse.tolist(), key=lambda c: (ratio[c], ids[c])):
            symbol = None
            if iso[col]:  # the worst position, per account: only for the few that get an event
                symbol = self.margin.isolated_worst(accounts[ids[col]])[1]
            events.append(
                MarginCall(
                    account=ids[col], level=LEVEL_NAMES[new[col]], margin_ratio=float(ratio[col]),
                    equity=float(res.equity[col]), mm=float(res.mm[col]), symbol=symbol,
                )
            )
