"""Embedding caches that say what they hold, and are recomputed when they hold something else.

The full profile's sections 4.4 and 3.7 encode real images once (TiTok-L-32, DINOv2, CLIP
ViT-B/32 and ViT-L/14 over hours) and keep the result under ``data/embeddings``. A cache is only
worth reusing for the same images under the same weights, so every cached array is written with a
manifest beside it (``<name>.manifest.json``): its row count, the sha256 of its image ids (joined
by newlines, in row order), the backbone and a tag of the weights file. :func:`cached_array`
returns the array only when all of these match the request; otherwise (a missing or older
manifest, a cache of other images, a different checkpoint) it warns, recomputes and rewrites.
"""

from __future__ import annotations

import hashlib
import json
import warnings
from pathlib import Path
from typing import Callable

import numpy as np

from ..utils.io import load_npy, save_npy, write_json


def ids_sha256(image_ids) -> str:
    """sha256 of the image ids joined by newlines (row order matters)."""
    return hashlib.sha256("\n".join(str(i) for i in image_ids).encode("utf-8")).hexdigest()


def manifest_path(path: str | Path) -> Path:
    """``<folder>/<name>.manifest.json`` for the array ``<folder>/<name>.npy``."""
    path = Path(path)
    return path.with_name(f"{path.stem}.manifest.json")


def expected_manifest(image_ids, backbone: str, weights: str | None) -> dict:
    """What a cache of ``image_ids`` under ``backbone`` with ``weights`` must record."""
    return {"n_rows": len(image_ids), "ids_sha256": ids_sha256(image_ids), "backbone": backbone,
            "weights": weights}


def mismatch(path: str | Path, expected: dict) -> str | None:
    """Why the cache at ``path`` cannot serve ``expected`` (None when it can).

    A ``weights`` of None in ``expected`` (the weights file cannot be located now) is not compared.
    """
    path = Path(path)
    if not path.is_file():
        return "no cache"
    man = manifest_path(path)
    if not man.is_file():
        return f"no manifest {man.name} (written before caches carried one)"
    try:
        found = json.loads(man.read_text(encoding="utf-8"))
    except (OSError, ValueError) as err:
        return f"unreadable manifest {man.name} ({err})"
    for key, want in expected.items():
        if key == "weights" and want is None:
            continue
        if found.get(key) != want:
            return f"{key} is {found.get(key)!r}, expected {want!r}"
    rows = np.load(path, mmap_mode="r").shape[0]
    if rows != expected["n_rows"]:
        return f"the array has {rows} rows, expected {expected['n_rows']}"
    return None


def cached_array(path: str | Path, image_ids, backbone: str, weights: str | None,
                 compute: Callable[[], np.ndarray]) -> np.ndarray:
    """The cached array at ``path`` if its manifest matches, else ``compute()`` saved with a manifest.

    Parameters
    ----------
    path : path of the ``.npy`` cache.
    image_ids : sequence of str, one per row, in row order.
    backbone : the backbone's name (``titok-l32``, ``clip-vit-l14``, ...).
    weights : a tag of the weights file (its resolved path names the hub revision), or None when unknown.
    compute : called with no argument when the cache cannot be used; returns one row per image id.
    """
    path = Path(path)
    expected = expected_manifest(image_ids, backbone, weights)
    why = mismatch(path, expected)
    if why is None:
        return load_npy(path)
    if why != "no cache":
        warnings.warn(f"not reusing the cache {path}: {why}; recomputing it.", stacklevel=2)
    X = np.asarray(compute())
    if X.shape[0] != len(image_ids):
        raise ValueError(f"{backbone} returned {X.shape[0]} rows for {len(image_ids)} images; nothing was cached.")
    save_npy(path, X)
    write_json(manifest_path(path), {**expected, "shape": list(X.shape), "dtype": str(X.dtype)}, decimals=0)
    return load_npy(path)


def weights_tag(path) -> str | None:
    """A tag of a weights file, ``<resolved name>:<size in bytes>``, or None for no file.

    In the Hugging Face cache a file resolves to ``blobs/<etag>`` (the sha256 of a large file), so
    the tag names the checkpoint's content without hashing gigabytes on every use.
    """
    if path is None or not Path(path).is_file():
        return None
    resolved = Path(path).resolve()
    return f"{resolved.name}:{resolved.stat().st_size}"
