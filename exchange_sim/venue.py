"""``Venue``: the core's entry point, kept at its old import path.

The core is a pipeline of stages in :mod:`exchange_sim.core` (sequencer ·
entry · matching · orders · clearing · watch · views · liquidation ·
invariants; docs/adr/0007-pipeline.md); ``Venue`` is its sequencer.
"""

from exchange_sim.core.matching import StopOrder
from exchange_sim.core.sequencer import Venue

__all__ = ["Venue", "StopOrder"]
