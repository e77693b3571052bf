"""Thread limits shared by the compiled solvers."""

from __future__ import annotations

import sys
from contextlib import contextmanager

from threadpoolctl import ThreadpoolController

_CONTROLLER = None
_MODULES = 0            # len(sys.modules) when _CONTROLLER was made
THREADED_FROM = 2e9     # multiply-adds from which a product before a compiled kernel gets every BLAS thread


def _controller() -> ThreadpoolController:
    """The loaded BLAS and OpenMP libraries. Scanning them takes milliseconds, so it is done again only
    after new imports: that is how another library gets loaded (faiss and torch bring their own
    BLAS), and one the scan missed would keep all its threads."""
    global _CONTROLLER, _MODULES
    if _CONTROLLER is None or len(sys.modules) != _MODULES:
        _CONTROLLER = ThreadpoolController()
        _MODULES = len(sys.modules)
    return _CONTROLLER


@contextmanager
def single_thread_blas():
    """Limit BLAS to one thread while many small products or factorisations run.

    Multi-threaded BLAS on tiny matrices mostly waits for its threads (badly so on a busy
    machine), and after a large product OpenBLAS's threads keep spinning and take cores from
    the numba kernels that follow: one thread is several times faster there.
    """
    with _controller().limit(limits=1, user_api="blas"):
        yield


def blas_threads() -> int:
    """The number of threads the loaded BLAS libraries use (the largest; 1 if none is loaded)."""
    return max([lib.num_threads for lib in _controller().select(user_api="blas").lib_controllers] or [1])


@contextmanager
def blas_threads_for(madds: float):
    """Every BLAS thread for a product of at least :data:`THREADED_FROM` multiply-adds, one below.

    After a threaded call OpenBLAS's threads busy-wait for about 0.1 s (2^28 cycles, its default
    timeout) and take cores from a compiled kernel that starts then: on a 2-core machine the
    kernel of a 500-row lasso lost 10-30 ms that way, more than the one-thread product of a
    1,000-atom Gram matrix costs over the threaded one (4-5 ms).
    """
    if madds >= THREADED_FROM:
        yield
    else:
        with single_thread_blas():
            yield
