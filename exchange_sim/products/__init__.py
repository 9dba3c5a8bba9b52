"""Contract kinds: what a position in an instrument is worth and owes.

Each kind is one class behind the same interface (:class:`~exchange_sim.products.perpetual.LinearPerpetual`
is the first, :class:`~exchange_sim.products.dated_future.DatedFuture` the second): the value and unrealized PnL of a position, the notional of a
price × quantity, the fee on a notional, the isolated initial margin of a
position, funding. Entry, clearing, the margin engine, the views and the
liquidation engine ask the instrument, never re-derive the arithmetic, so a
new kind (dated future, spot pair, option) is a new class here and leaves
matching untouched (docs/adr/0007-pipeline.md).
"""
