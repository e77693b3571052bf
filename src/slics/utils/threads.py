"""Thread limits shared by the compiled solvers."""

from __future__ import annotations

from contextlib import contextmanager

from threadpoolctl import ThreadpoolController

_CONTROLLER = None


@contextmanager
def single_thread_blas():
    """Limit BLAS to one thread while many small products or factorisations run.

    Multi-threaded BLAS on tiny matrices mostly waits for its threads (badly so on a busy
    machine), and after a large product OpenBLAS's threads keep spinning and take cores from
    the numba kernels that follow: one thread is several times faster there.
    """
    global _CONTROLLER
    if _CONTROLLER is None:  # scanning the loaded libraries is slow: do it once
        _CONTROLLER = ThreadpoolController()
    with _CONTROLLER.limit(limits=1, user_api="blas"):
        yield
