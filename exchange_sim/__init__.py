"""exchange-sim: a simulated crypto-derivatives venue.

>>> from exchange_sim import Venue
>>> venue = Venue()                 # embedded default config
>>> events = venue.apply(command)   # doctest: +SKIP
"""

from exchange_sim.venue import Venue

__all__ = ["Venue"]
__version__ = "0.1.0"
