"""Reference solvers, kept for the tests and benchmarks only.

The pipeline never imports these modules. Each is an exact alternative to a solver of
:mod:`slics.core` that was measured slower (``benchmarks/``) and stays as an independent
check of it:

- ``nnls_cd``: :func:`~slics.core.reference.nnls_cd.nnls_cd`, compiled per-row coordinate
  descent for the NNLS problems of :func:`slics.core.nnls.nnls_batch`.
"""

__all__ = ["nnls_cd"]
