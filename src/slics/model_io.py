"""Saving and loading fitted SLiCS models: one ``.npz`` file, no pickle.

Format ``slics-model``, version 1: a NumPy ``.npz`` archive (written by :func:`numpy.savez`,
read with ``allow_pickle=False``) holding

================== ======================================================================
``metadata``        a 0-d unicode array: one JSON object (below)
``dictionary``      float64 (C * K, d): the unit atoms, concept-major (``dictionary_``)
``atom_concept``    int64 (C * K,): the concept of every atom (``atom_concept_``)
``init_dictionary`` float64 (C * K, d): the S-SVD initialisation (``init_dictionary_``)
``error_history``   float64 (n_iter_ + 1,): relative reconstruction errors (``error_history_``)
``image_mean``      float64 (d,): only with ``preprocessing == "centre"``: the mean removed
================== ======================================================================

The JSON metadata: ``format`` (``"slics-model"``), ``format_version`` (``1``),
``slics_version``, ``concept_names`` (C str), ``n_atoms``, ``n_concepts``, ``n_features``,
``preprocessing`` (``"centre"``, ``"unit"``, ``"tokens"`` or ``"none"``), ``n_tokens`` (or
null), ``params`` (the estimator's other parameters, ``get_params()``: ``n_iter``,
``batch_size``, ``random_state``, ...; on loading, those the installed ``SLiCS`` does not
know are ignored, as they only matter for refitting), ``n_iter_``, ``n_rejected_``, and
``user`` (any JSON object given as ``metadata``).

Arrays are stored as they are, so a loaded model gives bit-identical ``transform``,
``components`` and ``project`` results. A file of another ``format_version`` is refused with
an error naming both versions.

Examples
--------
>>> import numpy as np, tempfile, os
>>> from slics.core.dictionary import SLiCS
>>> from slics.model_io import save_model, load_model
>>> rng = np.random.default_rng(0)
>>> X, Y = rng.normal(size=(60, 5)), np.repeat(np.eye(3, dtype=bool), 20, axis=0)
>>> model = SLiCS(n_atoms=2, n_iter=1).fit(X, Y)
>>> path = os.path.join(tempfile.mkdtemp(), "model.npz")
>>> _ = save_model(model, path, concept_names=["a", "b", "c"])
>>> back = load_model(path)
>>> back.concept_names_, np.array_equal(back.project(X, 1), model.project(X, 1))
(('a', 'b', 'c'), True)
"""

from __future__ import annotations

import json
import zipfile
from pathlib import Path

import numpy as np

from . import __version__
from .core.dictionary import SLiCS
from .utils.io import atomic_path, numpy_file_kind
from .utils.validation import check_int, check_matrix, check_names, check_vector

__all__ = ["FORMAT", "FORMAT_VERSION", "PREPROCESSING", "save_model", "load_model"]

FORMAT = "slics-model"
FORMAT_VERSION = 1
PREPROCESSING = ("centre", "unit", "tokens", "none")


def _plain(value):
    return value.item() if isinstance(value, np.generic) else value


def _json_value(value):
    """``json.dumps``'s fallback for ``metadata``: NumPy scalars and arrays as plain numbers and lists."""
    if isinstance(value, (np.generic, np.ndarray)):
        return value.tolist()
    raise TypeError(f"metadata is not JSON serializable: it holds a {type(value).__name__} "
                    f"({str(value)[:60]!r}); use str, numbers, lists and dicts.")


def save_model(model: SLiCS, path, *, concept_names=None, preprocessing: str = "none", image_mean=None,
               n_tokens: int | None = None, metadata: dict | None = None) -> Path:
    """Write a fitted SLiCS model to ``path`` (``.npz``), atomically.

    Parameters
    ----------
    model : SLiCS
        A fitted model.
    path : str or Path
        Destination; must end in ``.npz``.
    concept_names : sequence of str, optional
        One per concept (default ``concept_names_`` of the model if it has them, else
        ``"concept 0"``, ...). Names must be unique.
    preprocessing : {"centre", "unit", "tokens", "none"}, default "none"
        How embeddings were prepared before fitting (and must be prepared before use).
    image_mean : array of shape (d,), optional
        The mean removed by ``"centre"`` (required with it, refused otherwise).
    n_tokens : int, optional
        Tokens per row for ``"tokens"`` (required with it).
    metadata : dict, optional
        Anything JSON-serialisable, stored under ``user``.

    Returns
    -------
    Path
    """
    if not isinstance(model, SLiCS) or not hasattr(model, "dictionary_"):
        raise TypeError(f"save_model needs a fitted slics SLiCS model, got {type(model).__name__} "
                        f"(call .fit first).")
    path = Path(path)
    if path.suffix != ".npz":
        raise ValueError(f"model files end in .npz, got {str(path)!r}.")
    C, d = int(model.n_concepts_), int(model.n_features_in_)
    if concept_names is None:
        concept_names = getattr(model, "concept_names_", None) or [f"concept {j}" for j in range(C)]
    names = check_names(concept_names, "concept_names", unique=True)
    if len(names) != C:
        raise ValueError(f"concept_names has {len(names)} names but the model has {C} concepts.")
    if preprocessing not in PREPROCESSING:
        raise ValueError(f"preprocessing must be one of {', '.join(PREPROCESSING)}, got {preprocessing!r}.")
    arrays = {"dictionary": np.asarray(model.dictionary_), "atom_concept": np.asarray(model.atom_concept_),
              "init_dictionary": np.asarray(model.init_dictionary_), "error_history": np.asarray(model.error_history_)}
    if preprocessing == "centre":
        if image_mean is None:
            raise ValueError("preprocessing 'centre' needs the image_mean that was removed.")
        arrays["image_mean"] = check_vector(image_mean, "image_mean", d)
    elif image_mean is not None:
        raise ValueError(f"image_mean is only stored with preprocessing 'centre', not {preprocessing!r}.")
    if (preprocessing == "tokens") != (n_tokens is not None):
        raise ValueError("n_tokens goes with preprocessing 'tokens' (and only with it).")
    meta = {"format": FORMAT, "format_version": FORMAT_VERSION, "slics_version": __version__,
            "concept_names": names, "n_atoms": int(model.n_atoms), "n_concepts": C, "n_features": d,
            "preprocessing": preprocessing, "n_tokens": None if n_tokens is None else check_int(n_tokens, "n_tokens", minimum=1),
            "params": {p: _plain(v) for p, v in sorted(model.get_params().items()) if p != "n_atoms"},
            "n_iter_": int(model.n_iter_), "n_rejected_": int(model.n_rejected_), "user": metadata or {}}
    text = json.dumps(meta, sort_keys=True, default=_json_value)
    with atomic_path(path) as tmp:
        with open(tmp, "wb") as fh:
            np.savez(fh, metadata=np.array(text), **arrays)
    return path


def _read(path: Path) -> tuple[dict, dict]:
    if not path.is_file():
        raise FileNotFoundError(f"model file {str(path)!r} does not exist; create one with `slics fit`.")
    kind = numpy_file_kind(path)
    if kind == "npy":
        raise ValueError(f"{str(path)!r} is a single array (.npy), not a slics model file (a .npz archive).")
    if kind != "npz":
        raise ValueError(f"{str(path)!r} is not a slics model file: a model is a .npz (zip) archive written by "
                         f"`slics fit` or slics.model_io.save_model; this file's first bytes are not a zip archive's.")
    try:
        z = np.load(path, allow_pickle=False)
    except (ValueError, OSError, zipfile.BadZipFile, EOFError) as exc:
        raise ValueError(f"{str(path)!r} is not a slics model file (a .npz archive without pickles): {exc}") from None
    if not isinstance(z, np.lib.npyio.NpzFile):
        raise ValueError(f"{str(path)!r} is a single array (.npy), not a slics model file (a .npz archive).")
    try:
        with z:
            arrays = {k: z[k] for k in z.files}
    except (ValueError, OSError, zipfile.BadZipFile, EOFError) as exc:
        raise ValueError(f"{str(path)!r} is not a slics model file (a .npz archive without pickles): {exc}") from None
    if "metadata" not in arrays:
        raise ValueError(f"{str(path)!r} is a .npz archive but not a slics model file (no 'metadata' entry).")
    try:
        meta = json.loads(str(arrays.pop("metadata")))
    except json.JSONDecodeError as exc:
        raise ValueError(f"{str(path)!r}: the model metadata is not valid JSON ({exc}).") from None
    if not isinstance(meta, dict):
        raise ValueError(f"{str(path)!r}: the model metadata is a JSON {type(meta).__name__}, not an object: "
                         f"not a slics model file.")
    return meta, arrays


# Metadata entries load_model reads, and their JSON types (a file edited by hand or damaged is refused).
_META_TYPES = {"n_concepts": int, "n_atoms": int, "n_features": int, "concept_names": list, "params": dict,
               "n_iter_": int, "n_rejected_": int, "preprocessing": str, "n_tokens": (int, type(None))}


def _check_meta(meta: dict, path: Path) -> None:
    bad = sorted(k for k, t in _META_TYPES.items()
                 if k not in meta or not isinstance(meta[k], t) or isinstance(meta[k], bool))
    if "preprocessing" not in bad and meta["preprocessing"] not in PREPROCESSING:
        bad.append("preprocessing")
    if bad:
        raise ValueError(f"{str(path)!r}: the model metadata lacks or garbles the entr(y/ies) {bad}: the file is "
                         f"damaged; refit the model (slics fit).")


def _check_arrays(arrays: dict, C: int, K: int, d: int, preprocessing: str, path: Path) -> None:
    """The arrays of a model file as :func:`save_model` writes them, or a ValueError: the file is damaged."""
    try:
        for name in ("dictionary", "init_dictionary"):
            check_matrix(arrays[name], name, n_cols=d)        # real, finite (a NaN atom fails only at use)
        if arrays["init_dictionary"].shape != (C * K, d):
            raise ValueError(f"init_dictionary has shape {arrays['init_dictionary'].shape}, not {(C * K, d)}")
        if preprocessing == "centre":
            if "image_mean" not in arrays:
                raise ValueError(f"preprocessing 'centre' needs the {d}-vector image_mean")
            check_vector(arrays["image_mean"], "image_mean", d)
    except ValueError as exc:
        raise ValueError(f"{str(path)!r}: {str(exc).rstrip('.')}: the file is damaged.") from None
    if not np.array_equal(arrays["atom_concept"], np.repeat(np.arange(C), K)):      # SLiCS's concept-major layout
        raise ValueError(f"{str(path)!r}: atom_concept is not the concept-major layout of {C} concepts x {K} atoms "
                         f"(0, ..., 0, 1, ...): the file is damaged.")


def load_model(path) -> SLiCS:
    """Read a model written by :func:`save_model`.

    Parameters
    ----------
    path : str or Path

    Returns
    -------
    SLiCS
        Fitted (``dictionary_``, ``atom_concept_``, ``init_dictionary_``, ``error_history_``,
        ``n_iter_``, ``n_rejected_``), with the file's ``concept_names_`` (tuple of str),
        ``preprocessing_`` (str), ``n_tokens_`` (int or None), ``image_mean_`` (array or None)
        and ``metadata_`` (the whole JSON metadata).
    """
    path = Path(path)
    meta, arrays = _read(path)
    if meta.get("format") != FORMAT:
        raise ValueError(f"{str(path)!r} is not a slics model file (format {meta.get('format')!r}, "
                         f"expected {FORMAT!r}).")
    version = meta.get("format_version")
    if version != FORMAT_VERSION:
        raise ValueError(f"{str(path)!r} is a slics model file of format_version {version!r}, but this slics "
                         f"({__version__}) reads format_version {FORMAT_VERSION}; refit the model or use the "
                         f"slics release that wrote it.")
    missing = [k for k in ("dictionary", "atom_concept", "init_dictionary", "error_history") if k not in arrays]
    if missing:
        raise ValueError(f"{str(path)!r} lacks the array(s) {missing}: the file is damaged.")
    _check_meta(meta, path)
    C, K, d = meta["n_concepts"], meta["n_atoms"], meta["n_features"]
    D = arrays["dictionary"]
    if D.shape != (C * K, d) or arrays["atom_concept"].shape != (C * K,) or len(meta["concept_names"]) != C:
        raise ValueError(f"{str(path)!r}: the arrays do not match the metadata ({C} concepts x {K} atoms, "
                         f"{d} features; dictionary {D.shape}): the file is damaged.")
    _check_arrays(arrays, C, K, d, meta["preprocessing"], path)
    model = SLiCS(n_atoms=K)
    known = model.get_params()
    model.set_params(**{p: v for p, v in meta["params"].items() if p in known})
    model.dictionary_, model.atom_concept_ = D, arrays["atom_concept"]
    model.init_dictionary_, model.error_history_ = arrays["init_dictionary"], arrays["error_history"]
    model.n_features_in_, model.n_concepts_ = d, C
    model.n_iter_, model.n_rejected_ = meta["n_iter_"], meta["n_rejected_"]
    model.concept_names_ = tuple(meta["concept_names"])
    model.preprocessing_, model.n_tokens_ = meta["preprocessing"], meta["n_tokens"]
    model.image_mean_ = arrays.get("image_mean")
    model.metadata_ = meta
    return model
