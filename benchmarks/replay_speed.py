"""Recovery speed: journal N commands of the venue benchmarks' mixed flow
(60% limits / 30% cancels / 10% marketable orders, 100 accounts), then time
``exchange_sim.replay.recover`` rebuilding the venue from the journal alone.

    python benchmarks/replay_speed.py --commands 1000000      # the issue's target: <= 30 s

Prints one JSON line: commands, journal bytes, write time, replay time, replay
commands/s, and whether the recovered state hash equals the live one.
"""

from __future__ import annotations

import argparse
import json
import tempfile
import time
from pathlib import Path

from flows import mixed_flow  # this directory: sys.path[0] when run as a script

from exchange_sim import Venue, journal, replay, snapshot


def run(commands: int, directory: Path) -> dict:
    flow = mixed_flow(commands)  # funded accounts and a warm book (setup), then the flow
    j = journal.Journal(directory)
    live = Venue(flow.config)
    t0 = time.perf_counter()
    ts = 1_700_000_000_000_000_000
    for cmd in flow.setup + flow.commands:
        ts += 1_000_000
        j.append(live.seq + 1, ts, cmd)
        live.apply(cmd, ts)
    j.close()
    wrote = time.perf_counter() - t0
    size = sum(p.stat().st_size for p in journal.segments(directory))
    t0 = time.perf_counter()
    recovered, notes, n = replay.recover(directory, live.config)
    took = time.perf_counter() - t0
    return {"commands": n, "journal_bytes": size, "write_and_apply_s": round(wrote, 2), "replay_s": round(took, 2),
            "replay_commands_per_s": round(n / took), "same_state_hash": snapshot.state_hash(recovered) == snapshot.state_hash(live),
            "notes": notes}


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--commands", type=int, default=1_000_000)
    args = ap.parse_args(argv)
    with tempfile.TemporaryDirectory() as d:
        print(json.dumps(run(args.commands, Path(d))))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
