"""Compile the package's numba kernels into numba's on-disk cache before their first use.

A fresh checkout has no numba cache, so the first call of each compiled kernel compiles it: about
80 s of one core for all of them on a 2-core machine (the lasso's, in float64 and float32, 43 s of
it), spent inside whichever pipeline stage or test calls it first while the other core waits.
``python -m slics.utils.jit`` (run by ``make`` after installing) compiles them in parallel
processes, each a share of the kernels, by calling the public functions on tiny problems: the
argument types are then those of the real calls, and the stages and tests load what was compiled.

The work is split by source file: numba keeps one index per kernel, and two processes adding
signatures of one kernel at the same time could each write the index without the other's. The
kernels of :mod:`slics.core._cholesky` are called from two shares (the lasso's and the NNLS's),
but only from other kernels, whose cache entries hold their code: with every ``_cholesky``
entry deleted, both shares' kernels still load from the cache without compiling anything.
"""

from __future__ import annotations

import os
import sys
import time
from concurrent.futures import ProcessPoolExecutor


def _lasso() -> None:
    import numpy as np

    from ..core.lasso import lasso

    rng = np.random.default_rng(0)
    X, D = rng.standard_normal((8, 6)), rng.standard_normal((10, 6))
    for dtype in (np.float64, np.float32):
        lasso(X.astype(dtype), D.astype(dtype), 0.5, method="cd")


def _subproblems() -> None:
    import numpy as np

    from ..core._subproblems import solve

    # rows on their own working dictionaries (float64 whatever the storage dtype: one signature)
    rng = np.random.default_rng(0)
    X, D = rng.standard_normal((4, 6)), rng.standard_normal((40, 6))
    solve(D, X, np.zeros((4, 40)), np.einsum("ij,ij->i", X, X), 0.5, False, 1e-6, 100)


def _slics() -> None:
    import numpy as np

    from ..core.dictionary import SLiCS
    from ..core.nnls import nnls_batch
    from ..core._ksvd import _PARALLEL_ROWS
    from ..core.planted import make_planted
    from ..core.reference.nnls_cd import nnls_cd

    # one concept on more rows than the atom step's parallel threshold: its parallel kernels compile too
    X, Y, _, _ = make_planted(_PARALLEL_ROWS + 100, 8, 1, 2, concepts_per_sample=(1, 1), atom_density=1.0,
                              random_state=0)
    SLiCS(2, n_iter=1).fit(X, Y)
    nnls_batch(np.eye(3), X[:4, :3])
    nnls_cd(np.eye(3), X[:4, :3])


def _pq() -> None:
    import numpy as np

    from ..core.pq import QuantisedPool, lookup_tables, lut_scores

    rng = np.random.default_rng(0)
    for codebook_size in (8, 1024):                   # one-byte and two-byte codes
        codebook = rng.standard_normal((codebook_size, 3))
        pool = QuantisedPool.from_vectors(rng.standard_normal((5, 6)), codebook, 2)
        queries = rng.standard_normal((2, 6))
        pool.scores(queries)
        lut_scores(lookup_tables(queries, codebook, 2), pool.codes)


def _ista() -> None:
    import numpy as np

    from ..core._sparse_product import prox_gradient_step, sparse_rows_product

    for dtype in (np.float64, np.float32):           # ISTA's sparse product and step, in both working dtypes
        W = np.eye(3, dtype=dtype)
        sparse_rows_product(W, W, np.empty_like(W))
        prox_gradient_step(W.copy(), W, W, dtype(1.0), dtype(0.5))


SHARES = {"lasso": _lasso, "subproblems": _subproblems, "slics": _slics, "pq": _pq, "ista": _ista}


def _compile(name: str) -> tuple[str, float]:
    start = time.perf_counter()
    SHARES[name]()
    return name, time.perf_counter() - start


def compile_kernels(workers: int | None = None, log=print) -> dict[str, float]:
    """Compile every share of :data:`SHARES` in ``workers`` processes (default: one per share, at most
    the CPUs); returns each share's seconds."""
    workers = workers or min(len(SHARES), os.cpu_count() or 1)
    seconds = {}
    with ProcessPoolExecutor(max_workers=workers) as pool:
        for name, s in pool.map(_compile, SHARES):
            seconds[name] = s
            log(f"numba kernels: {name} ready in {s:.0f} s")
    return seconds


def main(argv: list[str] | None = None) -> int:
    import argparse

    parser = argparse.ArgumentParser(prog="python -m slics.utils.jit", description=__doc__.splitlines()[0])
    parser.add_argument("--workers", type=int, default=None, help="processes (default: one per share, at most the CPUs)")
    args = parser.parse_args(argv)
    start = time.perf_counter()
    compile_kernels(args.workers)
    print(f"numba kernels compiled (or loaded from the cache) in {time.perf_counter() - start:.0f} s")
    return 0


if __name__ == "__main__":
    sys.exit(main())
