"""House liquidity: agents that are accounts of the venue (``serve --liquidity``).

A market maker per symbol (:mod:`.maker`), an arbitrageur (:mod:`.arb`) and
a noise flow (:mod:`.noise`) run inside the server process, stepped by the
server after every index move and on a timer (:class:`.house.House`). Their
orders are ordinary ``NewOrder`` / ``CancelAll`` commands that go through
``Server.execute`` like anyone's: journaled, in the book, margined, replayed
exactly. The agents' randomness (a seeded ``random.Random``) and their clock
live here, outside the deterministic core; what they decided is in the
journal. Why this shape, and the liquidation grace that lets the book
re-form after a shock before the liquidation engine sells into it:
docs/adr/0013-house-liquidity.md.
"""

from exchange_sim.liquidity.house import House
from exchange_sim.liquidity.profile import DEFAULT, load_profile, with_liquidity

__all__ = ["DEFAULT", "House", "load_profile", "with_liquidity"]
