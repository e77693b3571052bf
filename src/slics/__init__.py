"""slics: sparse, interpretable decompositions of image embeddings.

The package backs the notebooks of the compendium: one thin module per report
section plus shared helpers. Public names are imported lazily so that
``import slics`` stays fast and does not pull in torch.
"""

from importlib import import_module

__version__ = "0.1.0"

_PUBLIC = {
    # section 1
    "mean_estimate": "slics.sections.robustness",
    "median_estimate": "slics.sections.robustness",
    "mode_estimate": "slics.sections.robustness",
    # section 2
    "ista": "slics.core.sparse_coding",
    "fista": "slics.core.sparse_coding",
    "zero_shot_accuracy": "slics.core.zero_shot",
    # SLiCS core
    "SLiCS": "slics.core.dictionary",
    "nnls_batch": "slics.core.nnls",
    "lasso": "slics.core.lasso",
    "lasso_path": "slics.core.lasso",
    "nn_omp": "slics.core.omp",
    "group_nn_omp": "slics.core.omp",
    "zero_shot_pseudo_labels": "slics.core.zero_shot",
}

__all__ = sorted(_PUBLIC)


def __getattr__(name):
    try:
        module = _PUBLIC[name]
    except KeyError:
        raise AttributeError(f"module 'slics' has no attribute {name!r}") from None
    return getattr(import_module(module), name)


def __dir__():
    return sorted(list(globals()) + __all__)
