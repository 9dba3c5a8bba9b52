"""The venue core as an explicit pipeline (docs/adr/0007-pipeline.md).

One command's path, one file per stage, over one :class:`~exchange_sim.core.state.State`:

- ``sequencer``  — ``Venue.apply``: seq, clock, dispatch, the stages in order;
- ``entry``      — R1: validation and the pre-trade margin check turn a
  command into a ticket or a typed reject, and change nothing;
- ``matching``   — one engine per instrument (book, stops, book sequence):
  ``execute(order) -> Execution``, ``trigger(mark)``; never touches money;
- ``orders``     — the accounts' open-order index and the IM they hold;
- ``clearing``   — R2: the only writer of balances, positions, fees, funding,
  isolated allocations and transfers; keeps the margin caches and the
  sweep's dirty set;
- ``watch``      — margin levels, the vectorized sweep, liquidation flags;
- ``views``      — unsequenced reads and the AccountUpdate builder;
- ``liquidation``— consumes ``Execution``\\ s through the stages' public methods;
- ``invariants`` — every invariant, checked after each step by the tests.
"""
