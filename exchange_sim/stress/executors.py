"""Where the scenarios run: this process, local processes, or a Dask cluster.

Every executor takes the same :class:`~exchange_sim.stress.state.Prepared`
(shipped to each worker **once**: the process pool's initializer, Dask's
``scatter(..., broadcast=True)``) and the same scenarios, and returns the
results sorted by scenario index, so the same input gives byte-identical
results whichever runs it. Results travel as msgpack bytes and are decoded
here, so nothing depends on how an executor pickles.

- :func:`run_serial`: in this process, one after the other.
- :func:`run_processes`: a ``concurrent.futures.ProcessPoolExecutor``
  (``spawn`` start method: no inherited threads or locks), one task per
  scenario, results as they complete.
- :func:`run_dask`: ``distributed.Client`` to a scheduler address, or a
  ``LocalCluster`` it starts (processes, one thread each, on 127.0.0.1, no
  dashboard); one task per scenario, streamed back with ``as_completed``.

``progress(done, total)`` is called after each result.
"""

from __future__ import annotations

import multiprocessing
import os
from collections.abc import Callable
from concurrent.futures import ProcessPoolExecutor, as_completed

import msgspec

from exchange_sim.stress.run import Runner, ScenarioResult
from exchange_sim.stress.scenarios import Scenario
from exchange_sim.stress.state import Prepared

Progress = Callable[[int, int], None]

_enc = msgspec.msgpack.Encoder()
_result_dec = msgspec.msgpack.Decoder(ScenarioResult)
_prep_dec = msgspec.msgpack.Decoder(Prepared)
_scenario_dec = msgspec.msgpack.Decoder(Scenario)


def encode_results(results: list[ScenarioResult]) -> bytes:
    """The canonical bytes of a result list (what the determinism test compares)."""
    return _enc.encode(results)


def _none(done: int, total: int) -> None:
    pass


def run_serial(prep: Prepared, scenarios: list[Scenario], progress: Progress = _none) -> list[ScenarioResult]:
    runner = Runner(prep)
    out = []
    for k, sc in enumerate(scenarios, 1):
        # the same bytes round trip as the other executors
        out.append(_result_dec.decode(_enc.encode(runner.run(sc))))
        progress(k, len(scenarios))
    return out


# -------------------------------------------------------- local processes

_RUNNER: Runner | None = None


def _init_worker(prep_bytes: bytes) -> None:
    global _RUNNER
    _RUNNER = Runner(_prep_dec.decode(prep_bytes))


def _run_in_worker(scenario_bytes: bytes) -> bytes:
    return _enc.encode(_RUNNER.run(_scenario_dec.decode(scenario_bytes)))


def run_processes(prep: Prepared, scenarios: list[Scenario], workers: int | None = None,
                  progress: Progress = _none) -> list[ScenarioResult]:
    workers = workers or os.cpu_count() or 1
    ctx = multiprocessing.get_context("spawn")
    results: dict[int, ScenarioResult] = {}
    with ProcessPoolExecutor(max_workers=workers, mp_context=ctx, initializer=_init_worker,
                             initargs=(_enc.encode(prep),)) as pool:
        futures = [pool.submit(_run_in_worker, _enc.encode(sc)) for sc in scenarios]
        for fut in as_completed(futures):
            res = _result_dec.decode(fut.result())
            results[res.index] = res
            progress(len(results), len(scenarios))
    return [results[k] for k in sorted(results)]


# ------------------------------------------------------------------- Dask

#: per Dask worker process: scattered Prepared key -> its Runner
_DASK_RUNNERS: dict[str, Runner] = {}


def _dask_task(scenario_bytes: bytes, prep_bytes: bytes, token: str) -> bytes:
    runner = _DASK_RUNNERS.get(token)
    if runner is None:
        _DASK_RUNNERS.clear()  # one state per worker at a time
        runner = _DASK_RUNNERS[token] = Runner(_prep_dec.decode(prep_bytes))
    return _enc.encode(runner.run(_scenario_dec.decode(scenario_bytes)))


def local_cluster(workers: int):
    """A LocalCluster of ``workers`` processes, one thread each, on 127.0.0.1, no dashboard."""
    import logging

    from distributed import LocalCluster

    return LocalCluster(n_workers=workers, threads_per_worker=1, processes=True, host="127.0.0.1",
                        dashboard_address=None, silence_logs=logging.ERROR)


def dask_available() -> bool:
    try:
        import distributed  # noqa: F401
    except ImportError:
        return False
    return True


def run_dask(prep: Prepared, scenarios: list[Scenario], scheduler: str | None = None, workers: int | None = None,
             progress: Progress = _none, client=None) -> list[ScenarioResult]:
    """On a Dask cluster: ``client`` if given, else a Client to ``scheduler``,
    else a LocalCluster of ``workers`` (default: all cores) for this run."""
    if not dask_available():
        raise ValueError("Dask is not installed: pip install 'exchange-sim[dask]' (or run without --dask/--scheduler)")
    from distributed import Client
    from distributed import as_completed as dask_completed

    cluster = None
    own = client is None
    if own:
        if scheduler is not None:
            try:
                client = Client(scheduler, timeout="10s")
            except OSError as exc:
                raise OSError(f"cannot reach the Dask scheduler at {scheduler}: {exc}") from None
        else:
            cluster = local_cluster(workers or os.cpu_count() or 1)
            client = Client(cluster)
    try:
        prep_bytes = _enc.encode(prep)
        [state] = client.scatter([prep_bytes], broadcast=True, hash=True)
        futures = client.map(_dask_task, [_enc.encode(sc) for sc in scenarios], prep_bytes=state,
                             token=state.key if isinstance(state.key, str) else str(state.key), pure=False)
        results: dict[int, ScenarioResult] = {}
        for fut in dask_completed(futures):
            res = _result_dec.decode(fut.result())
            results[res.index] = res
            progress(len(results), len(scenarios))
            fut.release()
        return [results[k] for k in sorted(results)]
    finally:
        if own:
            client.close()
            if cluster is not None:
                cluster.close()
