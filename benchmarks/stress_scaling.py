"""Scenarios per second on 1 process, N local processes and an N-worker Dask LocalCluster, in one run.

    python benchmarks/stress_scaling.py                       # 200 traders, 120 scenarios, 2 workers
    python benchmarks/stress_scaling.py --traders 500 --scenarios 200 --workers 2
    python benchmarks/stress_scaling.py --first-order         # also 10^6 accounts x 100 shocks

The same generated venue and the same scenarios (GBM paths, seeded) run on
each executor in turn; the script checks their results are byte-identical,
then prints per executor: wall time (pool / cluster start included),
scenarios/s on the wall, and the steady rate (over the second half of the
results, so start-up is out), and the efficiency = steady rate / (workers ×
the 1-process rate). On a shared machine the cores an executor actually got
matter as much: it prints CPU seconds / wall seconds, and scenarios per CPU
second relative to one process (what the parallel machinery itself costs). Memory per worker: the peak RSS of a fresh spawned
process that does what a pool worker does (decode the state, run
scenarios), and of each Dask worker (``Client.run``), after its run.
"""

from __future__ import annotations

import argparse
import multiprocessing
import os
import resource
import sys
import time

from exchange_sim.stress import executors, first_order, scenarios, state


def _cpu() -> float:
    """CPU seconds of this process and of its children that have exited
    (pool workers and Dask worker processes, once shut down)."""
    t = os.times()
    return t.user + t.system + t.children_user + t.children_system


def _timed(fn, *args, **kw):
    stamps: list[float] = []
    c0 = _cpu()
    t0 = time.perf_counter()
    res = fn(*args, progress=lambda done, total: stamps.append(time.perf_counter()), **kw)
    wall = time.perf_counter() - t0
    # the second half of the results: every worker is long started by then
    half = len(stamps) // 2
    steady = (len(stamps) - 1 - half) / (stamps[-1] - stamps[half]) if len(stamps) > 2 and stamps[-1] > stamps[half] \
        else 0.0
    _timed.cpu = _cpu() - c0
    return res, wall, steady


def _peak_rss_mb() -> float:
    """Peak RSS of this process, MB: ``VmHWM`` (``ru_maxrss`` of a process
    started by fork + exec can start at its parent's peak)."""
    try:
        with open("/proc/self/status", encoding="ascii") as f:
            for line in f:
                if line.startswith("VmHWM:"):
                    return int(line.split()[1]) / 1024.0
    except OSError:
        pass
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024.0


def _worker_footprint(prep_bytes: bytes, scenario_bytes: list[bytes], out) -> None:
    executors._init_worker(prep_bytes)
    for sc in scenario_bytes:
        executors._run_in_worker(sc)
    out.put(_peak_rss_mb())


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--traders", type=int, default=200)
    ap.add_argument("--scenarios", type=int, default=120)
    ap.add_argument("--steps", type=int, default=4)
    ap.add_argument("--workers", type=int, default=2)
    ap.add_argument("--seed", type=int, default=1)
    ap.add_argument("--first-order", action="store_true", help="also time the 10^6 x 100 first-order grid")
    args = ap.parse_args(argv)

    print(f"load average before: {' '.join(f'{x:.2f}' for x in os.getloadavg())}; cpus: {os.cpu_count()}")
    t0 = time.perf_counter()
    cfg = state.generated_config(insurance="200000")
    prep = state.from_venue(state.generated(args.traders, args.seed, cfg, level_usd=50_000), [state.MAKER])
    vols = cfg.server.feed.volatility
    scs = scenarios.number([scenarios.monte_carlo(args.scenarios, ["BTC", "ETH", "SOL"], vols, args.steps, 3600,
                                                  args.seed, vol_scale=4.0)])
    print(f"venue: {args.traders} traders + maker, state {len(prep.state) / 1024:.0f} KiB; "
          f"{len(scs)} GBM scenarios x {args.steps} steps (vol x4); setup {time.perf_counter() - t0:.1f} s")

    rows = []
    one, wall, steady = _timed(executors.run_serial, prep, scs)
    rows.append(("1 process", 1, wall, len(scs) / wall, steady, _timed.cpu))
    procs, wall, steady = _timed(executors.run_processes, prep, scs, workers=args.workers)
    rows.append((f"{args.workers} local processes", args.workers, wall, len(scs) / wall, steady, _timed.cpu))
    have_dask = executors.dask_available()
    dask_rss: list[float] = []
    if have_dask:
        from distributed import Client

        dask_c0 = _cpu()
        cluster = executors.local_cluster(args.workers)
        client = Client(cluster)
        try:
            dres, wall, steady = _timed(executors.run_dask, prep, scs, client=client)
            dask_rss = sorted(client.run(_peak_rss_mb).values())
        finally:
            client.close()
            cluster.close()
        # the workers' CPU is counted once they have exited
        rows.append((f"Dask LocalCluster, {args.workers} workers", args.workers, wall, len(scs) / wall, steady,
                     _cpu() - dask_c0))
    same = executors.encode_results(one) == executors.encode_results(procs)
    if have_dask:
        same = same and executors.encode_results(one) == executors.encode_results(dres)
    print(f"results byte-identical across executors: {same}")
    base = rows[0][4] or rows[0][3]
    per_cpu0 = len(scs) / rows[0][5]
    print(f"{'executor':34} {'wall s':>7} {'scen/s wall':>12} {'scen/s steady':>14} {'efficiency':>11} "
          f"{'cores got':>10} {'scen/CPU-s':>11} {'vs 1 proc':>10}")
    for name, w, wall, rate, steady, cpu in rows:
        eff = (steady or rate) / (w * base)
        per_cpu = len(scs) / cpu if cpu > 0 else 0.0
        print(f"{name:34} {wall:7.2f} {rate:12.2f} {steady:14.2f} {eff:11.2f} {cpu / wall:10.2f} {per_cpu:11.2f} "
              f"{per_cpu / per_cpu0:10.2f}")
    print("efficiency = steady rate / (workers x 1-process rate); cores got = CPU seconds / wall seconds "
          "(incl. start-up); scen/CPU-s vs 1 proc = the work lost to parallel overhead, whatever the load")

    ctx = multiprocessing.get_context("spawn")
    q = ctx.Queue()
    p = ctx.Process(target=_worker_footprint, args=(executors._enc.encode(prep),
                                                     [executors._enc.encode(s) for s in scs[:20]], q))
    p.start()
    rss = q.get(timeout=600)
    p.join()
    print(f"memory per local worker (peak RSS after 20 scenarios): {rss:.0f} MB")
    if dask_rss:
        print(f"memory per Dask worker (peak RSS after the run): {', '.join(f'{x:.0f}' for x in dask_rss)} MB")

    if args.first_order:
        import tracemalloc

        from exchange_sim import config as config_mod

        grid = [round(-0.5 + 0.1 * k, 10) for k in range(10)]
        shocks = [{"BTC": b, "ETH": e} for b in grid for e in grid]
        tracemalloc.start()
        t0 = time.perf_counter()
        pop = first_order.synthetic(config_mod.default(), 1_000_000, seed=1)
        t_pop = time.perf_counter() - t0
        t0 = time.perf_counter()
        res = first_order.sweep(pop, shocks)
        t_sweep = time.perf_counter() - t0
        _, peak = tracemalloc.get_traced_memory()
        tracemalloc.stop()
        print(f"first order, 10^6 accounts x {len(shocks)} shocks (numpy): population {t_pop:.1f} s, "
              f"sweep {t_sweep:.1f} s ({len(shocks) / t_sweep:.1f} shocks/s), peak traced memory "
              f"{peak / 2**20:.0f} MB; below MM at BTC/ETH -50%: {res.below_mm[0]:,}")
        if have_dask:
            t0 = time.perf_counter()
            dres = first_order.sweep_dask(config_mod.default(), 1_000_000, 1, shocks, block=250_000,
                                          scheduler="threads")
            print(f"first order, same grid as dask.array, 4 blocks of 250,000 generated in place (threads): "
                  f"{time.perf_counter() - t0:.1f} s incl. generation; below MM at -50%: {dres.below_mm[0]:,}")
    print(f"load average after: {' '.join(f'{x:.2f}' for x in os.getloadavg())}")
    return 0 if same else 1


if __name__ == "__main__":
    sys.exit(main())
