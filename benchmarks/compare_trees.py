"""Time ``Venue.apply`` of two source trees alternately, in one run.

    python benchmarks/compare_trees.py OLD_TREE NEW_TREE [--rounds 10] [--n 20000] [--heavy 5000]

One long-lived worker process per tree, started with ``PYTHONPATH=<tree>``
(so that tree's ``exchange_sim`` is imported; the flows come from this
file's ``flows.py`` either way), builds the mixed 60/30/10 flow
(``flows.mixed_flow``) and the trading-heavy flow (``flows.trading_flow``:
every command a limit IOC filling 1-3 makers) once. Then each round asks
the old worker, then the new one (the order flips every round), to replay
each flow on a fresh venue and report µs per ``apply`` of CPU time
(``time.process_time``: time spent waiting for a core on a shared machine
does not count). The load still moves caches and clocks; alternating replay
by replay spreads it over both trees, and the best round of each is the
least disturbed.
Prints every round and, at the end, the ratios old / new of the best and of
the median rounds (above 1: the new tree is faster).
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys

HERE = os.path.dirname(os.path.abspath(__file__))

_WORKER = r"""
import json, sys
sys.path.insert(0, {here!r})
import exchange_sim, flows

got = {{"mixed": flows.mixed_flow({n}), "heavy": flows.trading_flow({heavy})}}
print(json.dumps({{"tree": exchange_sim.__file__}}), flush=True)
for line in sys.stdin:
    print(json.dumps({{"us": got[line.strip()].time_apply()}}), flush=True)
"""


class Worker:
    def __init__(self, tree: str, n: int, heavy: int):
        env = dict(os.environ, PYTHONPATH=os.path.abspath(tree))
        code = _WORKER.format(here=HERE, n=n, heavy=heavy)
        self.p = subprocess.Popen([sys.executable, "-c", code], env=env, cwd="/", text=True,
                                  stdin=subprocess.PIPE, stdout=subprocess.PIPE)
        first = json.loads(self.p.stdout.readline())
        if not first["tree"].startswith(os.path.abspath(tree)):
            raise SystemExit(f"imported {first['tree']}, not {tree}")

    def time(self, flow: str) -> float:
        self.p.stdin.write(flow + "\n")
        self.p.stdin.flush()
        return json.loads(self.p.stdout.readline())["us"]

    def close(self) -> None:
        self.p.stdin.close()
        self.p.wait(60)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("old")
    ap.add_argument("new")
    ap.add_argument("--rounds", type=int, default=10)
    ap.add_argument("--n", type=int, default=20_000, help="timed commands of the mixed flow")
    ap.add_argument("--heavy", type=int, default=5_000, help="timed commands of the trading-heavy flow")
    args = ap.parse_args()
    workers = {"old": Worker(args.old, args.n, args.heavy), "new": Worker(args.new, args.n, args.heavy)}
    got: dict = {(label, k): [] for label in workers for k in ("mixed", "heavy")}
    try:
        for r in range(args.rounds):
            order = ("old", "new") if r % 2 == 0 else ("new", "old")
            for k in ("mixed", "heavy"):
                for label in order:
                    got[(label, k)].append(workers[label].time(k))
            print(f"round {r + 1}: " + ", ".join(
                f"{k} old {got[('old', k)][-1]:.2f} new {got[('new', k)][-1]:.2f} us" for k in ("mixed", "heavy")),
                flush=True)
    finally:
        for w in workers.values():
            w.close()
    for k, name in (("mixed", "mixed 60/30/10"), ("heavy", "trading-heavy IOC")):
        old, new = got[("old", k)], got[("new", k)]
        print(f"{name}: best old {min(old):.2f} us, new {min(new):.2f} us: old/new = {min(old) / min(new):.3f}; "
              f"median old/new = {statistics.median(old) / statistics.median(new):.3f} ({args.rounds} rounds)")


if __name__ == "__main__":
    main()
