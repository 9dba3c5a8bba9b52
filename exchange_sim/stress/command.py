"""``exchange-sim stress``: what-if scenarios over a venue state, each with its full cascade.

    exchange-sim stress --accounts 200 --grid BTC=-0.5:0.5:0.1 --grid ETH=-0.4:0:0.2
    exchange-sim stress --data-dir data --historical all --monte-carlo 500 --seed 7 --html report.html
    exchange-sim stress --accounts 1000 --monte-carlo 2000 --dask local
    exchange-sim stress --data-dir data --at 120000 --scenarios moves.toml --scheduler tcp://10.0.0.5:8786

The state (one of): --data-dir (its newest snapshot, or --at SEQ), --venue-file
(an `explain` scenario TOML), --accounts N (a generated venue, seeded by
--seed). Scenarios (any mix, numbered in this order): --scenarios FILE,
--grid ASSET=FROM:TO:STEP (repeat: cross product), --historical NAMES|all,
--monte-carlo N (correlated GBM), --bootstrap N (resampled historical steps).
Runs on local processes (all cores) by default; --workers 1 runs in this
process; --dask local or --scheduler ADDRESS runs on Dask (the dask extra).
The JSON report goes to stdout or --report; --html writes the page.
See docs/stress-testing.md.
"""

from __future__ import annotations

import argparse
import os
import sys
import time

# the parser is built on every `exchange-sim` call: the venue and numpy are
# imported when a stress run starts, not here
LEVEL_USD = 250_000.0  # state.LEVEL_USD


def add_arguments(p: argparse.ArgumentParser) -> argparse.ArgumentParser:
    src = p.add_argument_group("state (one of)")
    src.add_argument("--data-dir", help="a journaled data dir: its newest snapshot")
    src.add_argument("--at", type=int, metavar="SEQ", help="with --data-dir: the state after command SEQ")
    src.add_argument("--venue-file", metavar="TOML", help="an `exchange-sim explain` scenario file")
    src.add_argument("--accounts", type=int, metavar="N", help="a generated venue of N traders (see the docs)")
    src.add_argument("--insurance", metavar="USDT", help="generated venue: the insurance fund's seed (default: config)")
    src.add_argument("--depth", type=float, metavar="USD", default=LEVEL_USD,
                     help="generated venue: the maker's notional per price level (default 250000)")
    src.add_argument("--config", help="TOML config for --venue-file / --accounts (default: the embedded one)")
    sc = p.add_argument_group("scenarios")
    sc.add_argument("--scenarios", metavar="FILE", help="a TOML file of [[scenario]] tables")
    sc.add_argument("--grid", action="append", default=[], metavar="ASSET=FROM:TO:STEP",
                    help="shock grid axis, e.g. BTC=-0.5:0.5:0.1 (repeat for a cross product)")
    sc.add_argument("--historical", metavar="NAMES", help="comma-separated historical moves, or all")
    sc.add_argument("--monte-carlo", type=int, default=0, metavar="N", help="N correlated GBM paths")
    sc.add_argument("--bootstrap", type=int, default=0, metavar="N", help="N paths of resampled historical steps")
    sc.add_argument("--steps", type=int, default=24, help="steps per random path (default 24)")
    sc.add_argument("--step-s", type=int, default=3600, help="seconds per random-path step (default 3600)")
    sc.add_argument("--vol-scale", type=float, default=1.0, help="multiply the config's volatilities (GBM)")
    sc.add_argument("--corr", type=float, default=0.8, help="pairwise correlation of GBM moves (default 0.8)")
    sc.add_argument("--seed", type=int, default=1, help="seed of the generated venue and the random paths")
    rn = p.add_argument_group("running")
    rn.add_argument("--maker", action="append", type=int, default=None, metavar="ACCOUNT",
                    help="an account whose resting orders follow the index (generated venue: 1)")
    rn.add_argument("--max-tick", type=float, default=0.05, help="largest index move per tick (default 0.05)")
    rn.add_argument("--workers", type=int, help="processes / Dask workers (default: all cores; 1 = this process)")
    rn.add_argument("--dask", choices=["local"], help="run on a Dask LocalCluster")
    rn.add_argument("--scheduler", metavar="ADDRESS", help="run on the Dask cluster at ADDRESS, e.g. tcp://host:8786")
    rn.add_argument("--report", metavar="PATH", help="write the JSON report here (default: stdout)")
    rn.add_argument("--html", metavar="PATH", help="write the HTML report here")
    rn.add_argument("--no-progress", action="store_true", help="no progress line on stderr")
    return p


class ProgressBar:
    """``done/total  rate/s  ETA`` on stderr, redrawn at most 5 times a second."""

    def __init__(self, stream, live: bool):
        self.stream, self.live = stream, live
        self.t0 = time.perf_counter()
        self.last = 0.0

    def __call__(self, done: int, total: int) -> None:
        now = time.perf_counter()
        if not self.live or (now - self.last < 0.2 and done < total):
            return
        self.last = now
        elapsed = now - self.t0
        rate = done / elapsed if elapsed > 0 else 0.0
        eta = (total - done) / rate if rate > 0 else 0.0
        width = 30
        fill = int(width * done / total) if total else width
        self.stream.write(f"\r[{'#' * fill}{'.' * (width - fill)}] {done}/{total} scenarios  {rate:.1f}/s  "
                          f"ETA {eta:.0f}s ")
        if done == total:
            self.stream.write("\n")
        self.stream.flush()


def prepare(args: argparse.Namespace):
    from exchange_sim import config as config_mod
    from exchange_sim import snapshot
    from exchange_sim.stress import state

    chosen = [name for name in ("data_dir", "venue_file", "accounts") if getattr(args, name) is not None]
    if len(chosen) != 1:
        raise ValueError("give exactly one state: --data-dir DIR, --venue-file TOML or --accounts N")
    if args.at is not None and args.data_dir is None:
        raise ValueError("--at needs --data-dir")
    if args.insurance is not None and args.accounts is None:
        raise ValueError("--insurance applies to a generated venue (--accounts) only")
    if not 0.001 <= args.max_tick <= 0.5:
        raise ValueError(f"--max-tick {args.max_tick}: must be in 0.001..0.5")
    base = config_mod.load(args.config) if args.config else None
    makers = args.maker or []
    meta: dict = {"seed": args.seed}
    if args.data_dir is not None:
        if args.config:
            raise ValueError("--config does not apply to --data-dir (the data dir has its own config.toml)")
        venue, label = state.from_data_dir(args.data_dir, args.at)
    elif args.venue_file is not None:
        venue = state.from_scenario_file(args.venue_file, base)
        label = f"venue file {args.venue_file}"
    else:
        if args.depth <= 0:
            raise ValueError(f"--depth {args.depth}: must be positive")
        venue = state.generated(args.accounts, args.seed, state.generated_config(args.insurance, base),
                                level_usd=args.depth)
        makers = makers or [state.MAKER]
        label = f"generated venue: {args.accounts} traders, seed {args.seed}"
        meta["depth_usd_per_level"] = args.depth
    known = {a.id for a in snapshot.capture(venue).accounts}
    missing = sorted(set(makers) - known)
    if missing:
        raise ValueError(f"--maker {', '.join(map(str, missing))}: no such account in the state")
    prep = state.from_venue(venue, makers, args.max_tick, label)
    meta.update(source=label, accounts=len(state.decode_state(prep).accounts), makers=prep.makers,
                max_tick=args.max_tick)
    return prep, meta


def build_scenarios(args: argparse.Namespace, prep) -> list:
    from exchange_sim.stress import scenarios, state

    if args.monte_carlo < 0 or args.bootstrap < 0:
        raise ValueError("--monte-carlo and --bootstrap take a count of 0 or more")
    assets = state.assets_priced(prep)
    groups = []
    if args.scenarios:
        groups.append(scenarios.load_file(args.scenarios, assets))
    if args.grid:
        groups.append(scenarios.grid(scenarios.parse_grid(args.grid, assets)))
    if args.historical:
        names = None if args.historical == "all" else [n.strip() for n in args.historical.split(",") if n.strip()]
        groups.append(scenarios.historical(names, assets))
    if args.monte_carlo:
        vols = prep.config.server.feed.volatility
        moved = sorted(a for a in assets if vols.get(a, 0.0) > 0)
        groups.append(scenarios.monte_carlo(args.monte_carlo, moved, vols, args.steps, args.step_s, args.seed,
                                            args.corr, args.vol_scale))
    if args.bootstrap:
        groups.append(scenarios.bootstrap(args.bootstrap, args.steps, args.seed, assets, args.step_s))
    out = scenarios.number(groups)
    if not out:
        raise ValueError("no scenarios: give --scenarios, --grid, --historical, --monte-carlo or --bootstrap")
    return out


def run_from_args(args: argparse.Namespace) -> int:
    from exchange_sim.stress import executors, report

    if args.dask and args.scheduler:
        raise ValueError("give --dask local or --scheduler ADDRESS, not both")
    if args.workers is not None and args.workers < 1:
        raise ValueError(f"--workers {args.workers}: at least 1")
    if (args.dask or args.scheduler) and not executors.dask_available():
        raise ValueError("Dask is not installed: pip install 'exchange-sim[dask]'")
    prep, meta = prepare(args)
    scs = build_scenarios(args, prep)
    meta["scenario_kinds"] = sorted({s.kind for s in scs})
    bar = ProgressBar(sys.stderr, live=not args.no_progress)
    t0 = time.perf_counter()
    if args.dask or args.scheduler:
        how = f"Dask {'LocalCluster' if args.dask else args.scheduler}"
        results = executors.run_dask(prep, scs, scheduler=args.scheduler, workers=args.workers, progress=bar)
    elif args.workers == 1:
        how = "1 process"
        results = executors.run_serial(prep, scs, progress=bar)
    else:
        workers = args.workers or os.cpu_count() or 1
        how = f"{workers} local processes"
        results = executors.run_processes(prep, scs, workers, progress=bar)
    elapsed = time.perf_counter() - t0
    rep = report.build(results, meta)
    text = report.to_json(rep)
    if args.report:
        with open(args.report, "w", encoding="utf-8") as f:
            f.write(text)
    else:
        sys.stdout.write(text)
    if args.html:
        with open(args.html, "w", encoding="utf-8") as f:
            f.write(report.html(rep))
    print(f"exchange-sim stress: {len(scs)} scenarios on {how} in {elapsed:.1f} s "
          f"({len(scs) / elapsed:.1f}/s); fund exhausted in {rep['fund']['exhausted_in']}", file=sys.stderr)
    return 0


__all__ = ["add_arguments", "run_from_args"]
