"""The house: the liquidity agents of one venue, stepped by the server.

The server calls :meth:`House.observe` with every command it applied (only
index moves matter) and, right after a command that moved an index and
every :data:`STEP_MS` otherwise, runs :meth:`House.step` — a generator whose
commands the server applies one by one through ``Server.execute`` before the
next is generated, so each agent decides on the state its previous order
left. One step, per symbol in config order: the maker re-quotes (on an index
move of its underlying, or ``requote_ms`` after its last re-quote), then the
arbitrageur takes what is still stale; then the noise flow's arrivals; and a
``Tick`` while a liquidation waits out its grace, so the engine acts on time
even when nobody trades.

Time here is the server's wall clock, passed in as ``now`` (ns), and the
noise flow draws from ``random.Random(seed)``: both live outside the core.
A test steps a house with chosen times and gets the same commands.
"""

from __future__ import annotations

import random
from collections.abc import Iterator
from decimal import Decimal

from exchange_sim.config import LiquidityParams
from exchange_sim.liquidity.arb import Arbitrageur
from exchange_sim.liquidity.maker import MarketMaker
from exchange_sim.liquidity.noise import NoiseFlow
from protocol.messages import Deposit, OpenAccount, SetIndexPrice, ShockPrice, Tick, Trade

#: the house is stepped at least this often (noise arrivals, re-quotes, liquidation ticks)
STEP_MS = 50
_MOVES = (SetIndexPrice, ShockPrice)


class House:
    """The agents and their schedule; see the module docstring."""

    def __init__(self, params: LiquidityParams, venue):
        self.p = params
        symbols = params.symbols or list(venue.instruments)
        self.instruments = [venue.instruments[s] for s in symbols]
        self.maker = MarketMaker(params.maker, params.maker_account)
        self.arb = Arbitrageur(params.arb, params.arb_account)
        self.noise = NoiseFlow(params.noise, params.noise_account, random.Random(params.seed))
        #: underlyings whose index a command moved since the last step
        self.moved: set[str] = set()
        self._requoted: dict[str, int] = {}  # symbol -> ns of its last re-quote
        self.commands = 0  # sent since start (for Stats readers and benchmarks)
        self.trades = 0  # trades its own commands made (a tally for the demo)
        self._mine = frozenset(self.accounts)
        for name in sorted({i.underlying for i in self.instruments}):
            self.maker.observe(name, venue.assets[name].index, 0)

    @property
    def accounts(self) -> tuple[int, int, int]:
        p = self.p
        return p.maker_account, p.arb_account, p.noise_account

    def start_up(self, venue) -> list:
        """Open and fund the agents' accounts (skipping what exists: a recovered venue)."""
        unit = venue.assets[venue.settle_name].unit
        out = []
        for acct in self.accounts:
            if acct not in venue.accounts:
                out.append(OpenAccount(account=acct))
                out.append(Deposit(account=acct, asset=venue.settle_name,
                                   amount=int(Decimal(self.p.deposit_usdt) * unit)))
        return out

    def observe(self, command, events=None) -> None:
        """Called with every applied command (and its events): remember index
        moves, count the fills of the house's own commands (cheap for others)."""
        tc = type(command)
        if tc in _MOVES:
            self.moved.add(command.asset)
        elif events and getattr(command, "account", None) in self._mine:
            self.trades += sum(1 for e in events if type(e) is Trade)

    def step(self, venue, now: int) -> Iterator:
        """The commands due at ``now`` (ns); see the module docstring."""
        moved, self.moved = self.moved, set()
        for name in sorted(moved):
            self.maker.observe(name, venue.assets[name].index, now)
        every = self.p.maker.requote_ms * 1_000_000
        for ins in self.instruments:
            if ins.underlying in moved or now - self._requoted.get(ins.symbol, -every) >= every:
                self._requoted[ins.symbol] = now
                yield from self._count(self.maker.quotes(venue, ins, now))
                yield from self._count(self.arb.sweep(venue, ins))
        yield from self._count(self.noise.orders(venue, self.instruments, now))
        if venue.liq.pending:
            self.commands += 1
            yield Tick()

    def _count(self, cmds) -> Iterator:
        for c in cmds:
            self.commands += 1
            yield c
