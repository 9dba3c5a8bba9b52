"""Python bytecodes executed per ``Venue.apply`` of a flow: a deterministic
measure of interpreted work, free of the timing noise of a shared machine.

    PYTHONPATH=TREE python benchmarks/count_bytecodes.py [--flow mixed|heavy] [--n N] [--history-off]

Builds the flow (``flows.mixed_flow`` or ``flows.trading_flow``) with the
``exchange_sim`` that ``PYTHONPATH`` picks, replays it on a fresh venue under
a ``sys.settrace`` opcode counter and prints the count per command. Run it on
two trees and divide. It counts bytecodes, not time: work done in C (msgspec
construction, dict and deque operations, numpy) weighs one bytecode however
long it takes, and cache misses do not show, so read it beside
``compare_trees.py`` and ``history_overhead.py``. ``--history-off`` swaps the
history stage's ``record`` for a no-op (trees that have one).
"""

from __future__ import annotations

import argparse
import os
import sys

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--flow", choices=("mixed", "heavy"), default="mixed")
    ap.add_argument("--n", type=int, default=4000)
    ap.add_argument("--history-off", action="store_true")
    args = ap.parse_args()
    if args.history_off:
        from exchange_sim.core import history

        history.History.record = lambda self, events: None
    import flows

    import exchange_sim

    flow = flows.trading_flow(args.n) if args.flow == "heavy" else flows.mixed_flow(args.n)
    v = flow.new_venue()
    apply = v.apply
    count = 0

    def tracer(frame, event, arg):
        nonlocal count
        frame.f_trace_opcodes = True
        if event == "opcode":
            count += 1
        return tracer

    sys.settrace(tracer)
    try:
        for c in flow.commands:
            apply(c)
    finally:
        sys.settrace(None)
    flow.check_replay(v)
    print(f"{os.path.dirname(os.path.dirname(exchange_sim.__file__))}: {args.flow} flow, {args.n} commands"
          f"{' (history off)' if args.history_off else ''}: {count / args.n:.0f} bytecodes per apply")


if __name__ == "__main__":
    main()
