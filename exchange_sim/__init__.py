"""exchange-sim: a simulated crypto-derivatives venue.

>>> from exchange_sim import Venue
>>> venue = Venue()                 # embedded default config
>>> events = venue.apply(command)   # doctest: +SKIP

Layers
------
The code is three layers; a module imports only from its own layer or the
ones below it, and no import cycle exists anywhere (function-level and
``TYPE_CHECKING`` imports included). ``tests/test_layering.py`` reads every
module's imports (``ast``, nothing imported) and enforces this.

1. **Core** — the wire contract :mod:`protocol` and every module of this
   package not listed under applications: the venue and its engines, config,
   journal, replay, snapshots, feeds, the ZeroMQ server
   (:mod:`exchange_sim.server`). The core never imports :mod:`clients` or an
   application.
2. **Clients** — the :mod:`clients` library (blocking and asyncio clients,
   book mirror, models, errors, the ccxt facade). It speaks the protocol
   only: it imports :mod:`protocol`, never :mod:`exchange_sim`, and no
   application.
3. **Applications** — programs built from both: ``exchange-sim``'s command
   line (:mod:`exchange_sim.cli`), the demo (:mod:`exchange_sim.demo`), the
   web page (:mod:`exchange_sim.web`), the Binance gateway
   (:mod:`exchange_sim.gateway`), the load generator
   (:mod:`clients.loadgen`) and the example bots (:mod:`clients.bots`). They
   may import the core and the clients. They live beside the layer they are
   closest to (``exchange-sim load`` and the bots are clients at heart that
   also read the venue's config: demo keys, endpoints, thresholds), so the
   layer of a module is given by the list ``APPLICATIONS`` in
   ``tests/test_layering.py``, not by its directory.
"""

from exchange_sim.venue import Venue

__all__ = ["Venue"]
__version__ = "0.1.0"
