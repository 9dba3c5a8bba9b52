"""Example bots: small, runnable, commented programs that trade on exchange-sim.

Each one is a lesson in one idea and runs on its own against a server
(``exchange-sim serve``), with ``--help`` for its options::

    python -m clients.bots.market_maker          # post-only quotes, amended as the index and inventory move
    python -m clients.bots.noise_taker           # random market and limit orders at a seeded rate
    python -m clients.bots.leveraged_trader      # a 10x position held until it is liquidated
    python -m clients.bots.liquidation_watcher   # public liquidations and one account's margin ratio

Read them in that order. What they share (command-line options, Ctrl-C
handling, the market-data subscription) lives in :mod:`clients.bots._common`,
so each bot file is only the trading idea. Every bot has a ``run(...)``
function that tests call with a ``stop`` event; ``main()`` is the command
line around it.
"""
