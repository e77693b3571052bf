"""A ``distributed`` client: a local cluster of worker processes, or an existing scheduler."""

from __future__ import annotations

import os
from contextlib import contextmanager

from .blocks import INSTALL

# The local cluster's settings for batch work; distributed's defaults serve an interactive
# dashboard. Its workers' statistical profiler samples the task thread every 10 ms on the worker's
# event loop, and every server ticks every 20 ms and polls the system every 0.5 s: on 2
# single-threaded workers of a 2-core machine that was 1.1-1.9 s of CPU per 13 s of tasks, taken
# from the tasks (0.7-1.0 s with these settings). Without the profiler the dashboard's profile page
# stays empty; start a cluster by hand to profile one.
LOCAL_CLUSTER_CONFIG = {
    "distributed.worker.profile.enabled": False,
    "distributed.admin.tick.interval": "200ms",
    "distributed.admin.system-monitor.interval": "2s",
}


@contextmanager
def _environment_kept():
    """Undo what starting worker processes writes into this process's ``os.environ``.

    distributed's nannies set ``distributed.nanny.pre-spawn-environ`` (``OMP_NUM_THREADS=1``,
    ``MKL_NUM_THREADS=1``, ``OPENBLAS_NUM_THREADS=1``, ...) in the *calling* process before they
    spawn a worker, and leave it there: every process the caller starts afterwards (a notebook
    kernel, a pipeline stage), and torch or numba threads it starts later, would run on one thread.
    The workers, already started, keep their own environment.
    """
    before = dict(os.environ)
    try:
        yield
    finally:
        for key in set(os.environ) - set(before):
            del os.environ[key]
        for key, value in before.items():
            if os.environ.get(key) != value:
                os.environ[key] = value


@contextmanager
def connect(scheduler: str | None = None, *, workers: int | None = None, threads_per_worker: int = 1,
            memory_limit="auto"):
    """Yield a ``distributed.Client``; the computations inside the block run on its workers.

    Parameters
    ----------
    scheduler : str, optional
        Address of a running scheduler (``tcp://host:8786``; start one with ``dask scheduler`` and
        workers with ``dask worker tcp://host:8786``). Default: start a local cluster.
    workers : int, optional
        Worker processes of the local cluster (default 1; not with ``scheduler``).
    threads_per_worker : int, default 1
        Threads per local worker, for dask's tasks and for the compiled solvers inside them
        (``NUMBA_NUM_THREADS``; numba would otherwise start one thread per core in every worker
        process, and a worker count would no longer be a core count). One thread per process,
        as many processes as cores, is the intended layout. Workers started by hand need the
        same: ``NUMBA_NUM_THREADS=1 dask worker ADDRESS --nthreads 1``.
    memory_limit : str or int, default "auto"
        Per local worker (``"4GiB"``; ``"auto"`` shares the machine's memory between workers).

    Notes
    -----
    The local cluster runs with :data:`LOCAL_CLUSTER_CONFIG` (no statistical profiler on the
    workers, slower event-loop ticks and system polls); the caller's dask configuration is left
    as it was.
    """
    from ..utils.validation import check_int

    try:
        import dask
        from distributed import Client, LocalCluster
    except ImportError:
        raise ImportError(f"a cluster needs the dask extra: {INSTALL}.") from None
    if scheduler is not None:
        if workers is not None:
            raise ValueError("workers is the size of a local cluster; with scheduler the running cluster's "
                             "workers are used (start more with `dask worker ADDRESS`).")
        with Client(scheduler) as client:
            yield client
        return
    workers = check_int(1 if workers is None else workers, "workers", minimum=1)
    threads_per_worker = check_int(threads_per_worker, "threads_per_worker", minimum=1)
    threads = str(threads_per_worker)
    with _environment_kept(), dask.config.set(LOCAL_CLUSTER_CONFIG):   # the workers take it at their spawn
        cluster = LocalCluster(n_workers=workers, threads_per_worker=threads_per_worker, processes=True,
                               memory_limit=memory_limit, dashboard_address=":0",
                               env={"NUMBA_NUM_THREADS": threads, "OMP_NUM_THREADS": threads})
    with _environment_kept(), cluster, Client(cluster) as client:   # a restarted worker sets it again
        yield client
