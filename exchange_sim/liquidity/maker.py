"""The house market maker: a depth profile around the index, one per symbol.

Each re-quote of a symbol is ``CancelAll(symbol)`` followed by ``levels``
GTC limits a side (ordinary orders: margined, in the book, journaled). Level
``i`` (0 = best) sits at ``half + i x step_bps`` from the centre and is
``size_usd x size_growth^i`` USD, so depth grows away from the touch as on a
real book. The half-spread is

    half = spread_bps + vol_mult x recent_move + shock_spread_bps x 0.5^(since_shock / shock_halflife)

where ``recent_move`` is the largest single index move (bps) that was not a
shock, halving every ``vol_halflife_ms``: quotes widen when the index jumps
around and relax as it calms down; right after a shock (one move beyond
``shock_bps``) the book re-forms at once but wider, as makers quote after a
crash. The centre is the index moved against the maker's inventory by up to
``skew_bps`` (long: lower, so its asks are hit first); at
``max_inventory_usd`` only the side that reduces the inventory is quoted.

The maker re-quotes on every index move of the symbol's underlying (the
server steps the house right after the command that moved it) and at least
every ``requote_ms``. Its levels are plain limits, not post-only: a new ask
that crosses a stale bid left by another account above the new index trades
with it, as a real maker would take a mispriced quote.
"""

from __future__ import annotations

from collections.abc import Iterator

from exchange_sim.config import MakerParams
from exchange_sim.instruments import Instrument
from exchange_sim.liquidity import market
from protocol.messages import CancelAll, NewOrder, Side, TimeInForce


class MarketMaker:
    __slots__ = ("p", "account", "_last", "_move", "_shock")

    def __init__(self, params: MakerParams, account: int):
        self.p = params
        self.account = account
        self._last: dict[str, int] = {}  # underlying -> last index seen (1e-8 USD)
        self._move: dict[str, tuple[float, int]] = {}  # underlying -> (largest calm move bps, when ns)
        self._shock: dict[str, int] = {}  # underlying -> time of the last shock (ns)

    def observe(self, underlying: str, index: int, now: int) -> None:
        """Note a new index of ``underlying`` at time ``now`` (ns)."""
        last = self._last.get(underlying)
        self._last[underlying] = index
        if not last or not index or index == last:
            return
        bps = abs(index - last) / last * 10_000
        if bps > self.p.shock_bps:
            self._shock[underlying] = now
        elif bps >= self.recent_move(underlying, now):
            self._move[underlying] = (bps, now)

    def recent_move(self, underlying: str, now: int) -> float:
        bps, at = self._move.get(underlying, (0.0, now))
        return bps * 0.5 ** ((now - at) / (self.p.vol_halflife_ms * 1e6))

    def half_spread(self, underlying: str, now: int) -> float:
        """The first level's distance from the centre now, bps (see the module docstring)."""
        p = self.p
        half = p.spread_bps + p.vol_mult * self.recent_move(underlying, now)
        at = self._shock.get(underlying)
        if at is not None:
            half += p.shock_spread_bps * 0.5 ** ((now - at) / (p.shock_halflife_ms * 1e6))
        return half

    def quotes(self, venue, ins: Instrument, now: int) -> Iterator:
        """The commands of one re-quote of ``ins``: cancel, then the profile."""
        index_ticks = market.centre(venue, ins)
        if index_ticks is None or ins.paused:
            return
        p = self.p
        yield CancelAll(account=self.account, symbol=ins.symbol)
        pos_usd = market.usd(ins, market.position(venue, self.account, ins.symbol), index_ticks)
        load = max(-1.0, min(1.0, pos_usd / p.max_inventory_usd))
        c = index_ticks * (1 - load * p.skew_bps / 10_000)
        half = self.half_spread(ins.underlying, now)
        for i in range(p.levels):
            d = half + i * p.step_bps
            size = p.size_usd * p.size_growth ** i
            if load < 1.0:
                price = market.bid_at(c, d)
                yield NewOrder(account=self.account, symbol=ins.symbol, side=Side.BUY,
                               qty=market.lots_for(ins, size, price), price=price, tif=TimeInForce.GTC)
            if load > -1.0:
                price = market.ask_at(c, d)
                yield NewOrder(account=self.account, symbol=ins.symbol, side=Side.SELL,
                               qty=market.lots_for(ins, size, price), price=price, tif=TimeInForce.GTC)
