"""A toy margin model plugged into the venue by import path in the tests
(``risk.models.portfolio = "toy_model:ToyModel"``; pytest puts ``tests/`` on
``sys.path``, as it has no ``__init__.py``).

MM = 10 % of gross notional, nothing else: it implements only the one
required method of :class:`~exchange_sim.risk.models.RiskModel`, so IM = MM
(the interface's default), the per-position impacts and the all-accounts
sweep come from the interface's fallbacks.
"""

from exchange_sim.risk.models import RiskModel

RATE = 0.10


class ToyModel(RiskModel):
    name = "toy"

    def mm(self, exposures):
        return RATE * sum(abs(n) for _, n in exposures)

