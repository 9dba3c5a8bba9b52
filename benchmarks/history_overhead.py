"""What the history stage costs ``Venue.apply``, in one process.

    python benchmarks/history_overhead.py [--rounds 10] [--n 20000] [--heavy 5000]

Builds the mixed 60/30/10 flow (``flows.mixed_flow``) and the trading-heavy
flow (``flows.trading_flow``: every command a limit IOC filling 1-3 makers)
once, then replays each on a fresh venue with the history stage on and off
(``History.record`` swapped for a no-op: what ``[history] enabled = false``
saves), alternately, the order flipped
every round; CPU µs per ``apply`` (``time.process_time``). The best round of
each is the least disturbed by the other work on the machine. Prints every
round and the ratios on / off of the best and median rounds (above 1: the
history costs that much). The ``ts`` stamps on events and the events'
``gc=False`` are in both; ``compare_trees.py`` against the tree before the
history measures those too.
"""

from __future__ import annotations

import argparse
import os
import statistics
import sys

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))

import flows  # noqa: E402

from exchange_sim.core import history  # noqa: E402

_RECORD = history.History.record


def _off(self, events) -> None:
    """The history stage switched off (nothing recorded)."""


def replay(flow, on: bool) -> float:
    history.History.record = _RECORD if on else _off
    try:
        return flow.time_apply()
    finally:
        history.History.record = _RECORD


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--rounds", type=int, default=10)
    ap.add_argument("--n", type=int, default=20_000, help="timed commands of the mixed flow")
    ap.add_argument("--heavy", type=int, default=5_000, help="timed commands of the trading-heavy flow")
    args = ap.parse_args()
    got_flows = {"mixed": flows.mixed_flow(args.n), "heavy": flows.trading_flow(args.heavy)}
    got: dict = {(k, on): [] for k in got_flows for on in (False, True)}
    for r in range(args.rounds):
        order = (False, True) if r % 2 == 0 else (True, False)
        for k, flow in got_flows.items():
            for on in order:
                got[(k, on)].append(replay(flow, on))
        print(f"round {r + 1}: " + ", ".join(
            f"{k} off {got[(k, False)][-1]:.2f} on {got[(k, True)][-1]:.2f} us" for k in got_flows), flush=True)
    for k, name in (("mixed", "mixed 60/30/10"), ("heavy", "trading-heavy IOC")):
        off, on = got[(k, False)], got[(k, True)]
        print(f"{name}: best off {min(off):.2f} us, on {min(on):.2f} us: on/off = {min(on) / min(off):.3f}; "
              f"median on/off = {statistics.median(on) / statistics.median(off):.3f} ({args.rounds} rounds)")


if __name__ == "__main__":
    main()
