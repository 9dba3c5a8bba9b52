"""The house noise flow: seeded random marketable orders at a Poisson rate.

Arrivals are a Poisson process of ``rate_per_s`` over all served symbols
(exponential gaps drawn from the house's seeded ``random.Random``); each
order picks a symbol and a side at random (only the reducing side once its
position passes ``max_position_usd``), an exponentially distributed USD size
of mean ``size_usd``, and is an IOC limit ``slip_bps`` through the index, so
it trades with the maker's quotes and prints trades. The draws depend only
on the seed and the times the house is stepped at; the orders they make are
journaled, so a replay needs neither.
"""

from __future__ import annotations

import random
from collections.abc import Iterator

from exchange_sim.config import NoiseParams
from exchange_sim.instruments import Instrument
from exchange_sim.liquidity import market
from protocol.messages import NewOrder, Side, TimeInForce

MAX_PER_STEP = 100  # arrivals handled per step: a stalled loop does not burst thousands at once


class NoiseFlow:
    __slots__ = ("p", "account", "rng", "next_at")

    def __init__(self, params: NoiseParams, account: int, rng: random.Random):
        self.p = params
        self.account = account
        self.rng = rng
        self.next_at: int | None = None  # ns of the next arrival

    def _gap(self) -> int:
        return int(self.rng.expovariate(self.p.rate_per_s) * 1e9)

    def orders(self, venue, instruments: list[Instrument], now: int) -> Iterator:
        """The arrivals due by ``now`` (ns)."""
        if self.p.rate_per_s <= 0 or not instruments:
            return
        if self.next_at is None:
            self.next_at = now + self._gap()
        n = 0
        while self.next_at <= now and n < MAX_PER_STEP:
            self.next_at += self._gap()
            n += 1
            order = self._one(venue, self.rng.choice(instruments))
            if order is not None:
                yield order
        if self.next_at <= now:  # skipped arrivals of a stall are dropped, not owed
            self.next_at = now + self._gap()

    def _one(self, venue, ins: Instrument):
        c = market.centre(venue, ins)
        rng = self.rng
        buy = rng.random() < 0.5
        size = rng.expovariate(1.0 / self.p.size_usd)
        if c is None or ins.paused:
            return None
        pos_usd = market.usd(ins, market.position(venue, self.account, ins.symbol), c)
        if abs(pos_usd) > self.p.max_position_usd:
            buy = pos_usd < 0
        price = market.ask_at(c, self.p.slip_bps) if buy else market.bid_at(c, self.p.slip_bps)
        return NewOrder(account=self.account, symbol=ins.symbol, side=Side.BUY if buy else Side.SELL,
                        qty=market.lots_for(ins, size, price), price=price, tif=TimeInForce.IOC)
