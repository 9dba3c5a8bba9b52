"""Venue-wide stress testing: many what-if scenarios over one state, each with its full cascade.

- :mod:`~exchange_sim.stress.scenarios`: grid, historical, Monte-Carlo and
  file scenarios (index paths), seeded;
- :mod:`~exchange_sim.stress.state`: the starting state as snapshot bytes
  (data dir, scenario file, live or generated venue);
- :mod:`~exchange_sim.stress.run`: one scenario through ``Venue.apply`` on a
  restored copy, to a :class:`~exchange_sim.stress.run.ScenarioResult`;
- :mod:`~exchange_sim.stress.first_order`: the vectorized "below MM before
  any cascade" sweep and the Cover-1 / Cover-2 figures;
- :mod:`~exchange_sim.stress.executors`: this process, local processes, Dask;
- :mod:`~exchange_sim.stress.report`: JSON and a self-contained HTML page;
- :mod:`~exchange_sim.stress.command`: ``exchange-sim stress``.

docs/stress-testing.md is the user's guide.
"""
