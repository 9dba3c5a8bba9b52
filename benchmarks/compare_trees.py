"""Time ``Venue.apply`` of two source trees alternately, in one run.

    python benchmarks/compare_trees.py OLD_TREE NEW_TREE [--rounds 5] [--n 20000] [--heavy 5000]

Each round runs, for each tree in turn, a fresh subprocess with
``PYTHONPATH=<tree>`` (so that tree's ``exchange_sim`` is imported; the
flows come from this file's ``flows.py`` either way) that builds the mixed
60/30/10 flow (``flows.mixed_flow``) and the trading-heavy flow
(``flows.trading_flow``: every command an IOC filling 1-3 makers) and times
``apply`` over the commands on a fresh venue, best of 3 replays. Alternating
the trees round by round spreads the shared machine's load over both.
Prints each round's µs per command and, at the end, the ratio old / new of
the medians (above 1: the new tree is faster).
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys

HERE = os.path.dirname(os.path.abspath(__file__))

_CHILD = r"""
import json, sys, time
sys.path.insert(0, {here!r})
import exchange_sim, flows

def best(flow, reps=3):
    out = []
    for _ in range(reps):
        v = flow.new_venue()
        apply = v.apply
        cmds = flow.commands
        t = time.perf_counter()
        for c in cmds:
            apply(c)
        out.append((time.perf_counter() - t) / len(cmds) * 1e6)
        flow.check_replay(v)
    return min(out)

mixed = flows.mixed_flow({n})
heavy = flows.trading_flow({heavy})
print(json.dumps({{"tree": exchange_sim.__file__, "mixed": best(mixed), "heavy": best(heavy)}}))
"""


def run(tree: str, n: int, heavy: int) -> dict:
    env = dict(os.environ, PYTHONPATH=os.path.abspath(tree))
    code = _CHILD.format(here=HERE, n=n, heavy=heavy)
    out = subprocess.run([sys.executable, "-c", code], env=env, capture_output=True, text=True, timeout=900, cwd="/")
    if out.returncode:
        raise SystemExit(out.stderr)
    res = json.loads(out.stdout.strip().splitlines()[-1])
    if not res["tree"].startswith(os.path.abspath(tree)):
        raise SystemExit(f"imported {res['tree']}, not {tree}")
    return res


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("old")
    ap.add_argument("new")
    ap.add_argument("--rounds", type=int, default=5)
    ap.add_argument("--n", type=int, default=20_000, help="timed commands of the mixed flow")
    ap.add_argument("--heavy", type=int, default=5_000, help="timed commands of the trading-heavy flow")
    args = ap.parse_args()
    got: dict = {"old": {"mixed": [], "heavy": []}, "new": {"mixed": [], "heavy": []}}
    for r in range(args.rounds):
        for label, tree in (("old", args.old), ("new", args.new)) if r % 2 == 0 else (("new", args.new), ("old", args.old)):
            res = run(tree, args.n, args.heavy)
            for k in ("mixed", "heavy"):
                got[label][k].append(res[k])
            print(f"round {r + 1} {label}: mixed {res['mixed']:.2f} us/cmd, trading-heavy {res['heavy']:.2f} us/cmd",
                  flush=True)
    for k, name in (("mixed", "mixed 60/30/10"), ("heavy", "trading-heavy IOC")):
        old, new = statistics.median(got["old"][k]), statistics.median(got["new"][k])
        print(f"{name}: old {old:.2f} us, new {new:.2f} us (medians of {args.rounds}); old/new = {old / new:.3f}")


if __name__ == "__main__":
    main()
