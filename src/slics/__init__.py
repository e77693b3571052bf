"""slics: sparse, interpretable decompositions of image embeddings.

The package backs the notebooks of the compendium: one thin module per report
section plus shared helpers. Public names are imported lazily so that
``import slics`` stays fast and does not pull in torch.
"""

from importlib import import_module

__version__ = "0.1.0"

_PUBLIC = {
    # section 1
    "mean_estimate": "slics.robustness",
    "median_estimate": "slics.robustness",
    "mode_estimate": "slics.robustness",
    # section 2
    "ista": "slics.sparse_coding",
    "fista": "slics.sparse_coding",
    "zero_shot_accuracy": "slics.zero_shot",
    # SLiCS core
    "SLiCS": "slics.dictionary",
    "nnls_batch": "slics.nnls",
    "nn_omp": "slics.omp",
    "group_nn_omp": "slics.omp",
    "zero_shot_pseudo_labels": "slics.zero_shot",
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
