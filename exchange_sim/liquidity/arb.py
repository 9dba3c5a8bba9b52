"""The house arbitrageur: keeps the book (and so the last price) near the index.

After the maker re-quotes a symbol, the arbitrageur looks at the book: bids
priced above ``index x (1 + band_bps)`` or asks below ``index x (1 -
band_bps)`` are stale — left by an account that has not caught up with an
index move — and it takes them with one IOC limit at the band's edge (at most
``max_usd`` a step), so they do not wait there for a liquidation to sell
into. When it holds a position it unwinds it with a reduce-only IOC at the
band's edge, into the maker's quotes, which sit inside the band.
"""

from __future__ import annotations

from collections.abc import Iterator

from exchange_sim.config import ArbParams
from exchange_sim.instruments import Instrument
from exchange_sim.liquidity import market
from protocol.messages import NewOrder, Side, TimeInForce


class Arbitrageur:
    __slots__ = ("p", "account")

    def __init__(self, params: ArbParams, account: int):
        self.p = params
        self.account = account

    def sweep(self, venue, ins: Instrument) -> Iterator:
        """At most one taking order a side for ``ins``, then an unwind if nothing was stale."""
        c = market.centre(venue, ins)
        if c is None or ins.paused:
            return
        band = self.p.band_bps
        hi, lo = market.ask_at(c, band), market.bid_at(c, band)
        snap = venue.book_snapshot(ins.symbol, 100)
        cap = market.lots_for(ins, self.p.max_usd, max(1, round(c)))
        stale_bids = min(cap, sum(q for p, q in snap.bids if p > hi))
        stale_asks = min(cap, sum(q for p, q in snap.asks if p < lo))
        if stale_bids:
            yield NewOrder(account=self.account, symbol=ins.symbol, side=Side.SELL, qty=stale_bids, price=hi,
                           tif=TimeInForce.IOC)
        if stale_asks:
            yield NewOrder(account=self.account, symbol=ins.symbol, side=Side.BUY, qty=stale_asks, price=lo,
                           tif=TimeInForce.IOC)
        if stale_bids or stale_asks:
            return
        pos = market.position(venue, self.account, ins.symbol)
        if pos:
            yield NewOrder(account=self.account, symbol=ins.symbol, side=Side.SELL if pos > 0 else Side.BUY,
                           qty=min(abs(pos), cap), price=lo if pos > 0 else hi, tif=TimeInForce.IOC,
                           reduce_only=True)
