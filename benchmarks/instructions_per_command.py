"""Instructions per ``Venue.apply`` of a flow, counted by valgrind: a
figure that does not move with the machine's load (benchmarks/RESULTS.md,
"This session's features, combined").

    valgrind --tool=callgrind --callgrind-out-file=/dev/null python benchmarks/instructions_per_command.py heavy setup
    valgrind --tool=callgrind --callgrind-out-file=/dev/null python benchmarks/instructions_per_command.py heavy run

The first counts building the flow and the venue; the second the same plus
applying the flow's commands, so (run - setup) / commands is the cost per
command. ``heavy``: ``flows.trading_flow(1000)``; ``mixed``:
``flows.mixed_flow(3000)``. ``PYTHONPATH=<tree>`` picks the tree measured;
``NOGC=1`` turns the garbage collector off for the applying part.
"""

from __future__ import annotations

import gc
import os
import sys

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import flows  # noqa: E402

COMMANDS = {"heavy": 1000, "mixed": 3000}


def main(which: str, part: str) -> None:
    flow = flows.trading_flow(COMMANDS[which]) if which == "heavy" else flows.mixed_flow(COMMANDS[which])
    venue = flow.new_venue()
    if os.environ.get("NOGC"):
        gc.disable()
    if part == "run":
        apply = venue.apply
        for c in flow.commands:
            apply(c)
        flow.check_replay(venue)


if __name__ == "__main__":
    if len(sys.argv) != 3 or sys.argv[1] not in COMMANDS or sys.argv[2] not in ("setup", "run"):
        raise SystemExit("usage: instructions_per_command.py heavy|mixed setup|run")
    main(sys.argv[1], sys.argv[2])
