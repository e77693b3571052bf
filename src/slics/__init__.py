"""slics: sparse, interpretable decompositions of image embeddings.

The public API, in the style of scikit-learn (every name in ``__all__`` is imported lazily,
so that ``import slics`` stays fast and does not pull in torch or numba):

Estimators (``fit`` / ``transform``)
    :class:`SLiCS` (supervised sparse concept dictionaries), :class:`SpLiCE` (sparse
    non-negative decomposition over a word vocabulary), :class:`TokenQuantiser` and
    :class:`QuantisedPool` (the product quantiser and its compressed candidate pool),
    :class:`ProcrustesAlignment` and :class:`LeastSquaresAlignment` (maps between two
    embedding spaces).
Solvers (arrays in, arrays out; dictionaries have their atoms as ROWS, ``X ≈ W @ D``)
    :func:`lasso`, :func:`lasso_path` (exact lasso, certified by a duality gap),
    :func:`ista`, :func:`fista` (the report's batched proximal-gradient solvers),
    :func:`nnls_batch` (non-negative least squares on supports), :func:`nn_omp`,
    :func:`group_nn_omp` (greedy pursuits), :func:`zero_shot_pseudo_labels` and
    :func:`zero_shot_accuracy` (cosine zero-shot scoring).
Submodules
    :mod:`slics.retrieval` (top-k, filtered retrieval, mAP@k), :mod:`slics.captions`,
    :mod:`slics.preprocess`, :mod:`slics.evaluation`.

Every lasso-type objective in the package is ``||x - w D||^2 + lam ||w||_1`` per row
(:func:`slics.core.objectives.lasso_objective`); ``n_atoms`` always means atoms per concept
(:class:`SLiCS`). The report's sections live in :mod:`slics.sections`, one module each.
"""

__version__ = "0.1.0"

_PUBLIC = {
    # estimators
    "SLiCS": "slics.core.dictionary",
    "SpLiCE": "slics.core.splice",
    "TokenQuantiser": "slics.core.pq",
    "QuantisedPool": "slics.core.pq",
    "ProcrustesAlignment": "slics.core.alignment",
    "LeastSquaresAlignment": "slics.core.alignment",
    # solvers
    "lasso": "slics.core.lasso",
    "lasso_path": "slics.core.lasso",
    "ista": "slics.core.sparse_coding",
    "fista": "slics.core.sparse_coding",
    "nnls_batch": "slics.core.nnls",
    "nn_omp": "slics.core.omp",
    "group_nn_omp": "slics.core.omp",
    "zero_shot_pseudo_labels": "slics.core.zero_shot",
    "zero_shot_accuracy": "slics.core.zero_shot",
}

# public submodules, imported on first use (a missing one fails only then)
_SUBMODULES = ("captions", "evaluation", "preprocess", "retrieval")

__all__ = sorted(_PUBLIC) + sorted(_SUBMODULES)


def __getattr__(name):
    import importlib

    if name in _SUBMODULES:
        return importlib.import_module(f"{__name__}.{name}")
    try:
        module = _PUBLIC[name]
    except KeyError:
        raise AttributeError(f"module 'slics' has no attribute {name!r}") from None
    return getattr(importlib.import_module(module), name)


def __dir__():
    return sorted(__all__ + ["__version__"])
