"""A ``distributed`` client: a local cluster of worker processes, or an existing scheduler."""

from __future__ import annotations

from contextlib import contextmanager

from .blocks import INSTALL


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
        Threads per local worker. The solvers are compiled and single-threaded per block, so one
        thread per process (and as many processes as cores) is the measured best.
    memory_limit : str or int, default "auto"
        Per local worker (``"4GiB"``; ``"auto"`` shares the machine's memory between workers).
    """
    from ..utils.validation import check_int

    try:
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
    with LocalCluster(n_workers=workers, threads_per_worker=threads_per_worker, processes=True,
                      memory_limit=memory_limit, dashboard_address=":0") as cluster, Client(cluster) as client:
        yield client
