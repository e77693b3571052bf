"""Seeded train / validation / query / pool splits, shared by every method.

As in the SLiCS paper (section 4.1): after dropping images without a general label,
``n_train`` images train the dictionaries, a disjoint ``n_val`` images choose the
number of atoms ``K``, ``n_query`` images are the retrieval queries, and the rest of
the set is the candidate pool. The split depends only on the number of images and the
seed (one permutation from ``numpy.random.default_rng(seed)``), so every method and
every backbone sees the same images in the same roles.

Sizes per dataset and profile live in ``params.yaml`` (``datasets.<name>.splits``):
MIRFlickr25K 2,000 / 500 / 1,000 as in the paper; COCO 20,000 / 500 / 1,000 in the
full profile, and a training set scaled down in proportion for the 15,000-image demo
subset (see ``params.yaml``).
"""

from __future__ import annotations

import numpy as np
import pandas as pd

SPLITS = ("train", "val", "query", "pool")


def make_split(n_images: int, n_train: int, n_val: int, n_query: int, seed: int) -> np.ndarray:
    """The split name of every image: an object array of ``train``/``val``/``query``/``pool``.

    A seeded permutation assigns the first ``n_train`` permuted images to ``train``, the
    next ``n_val`` to ``val``, the next ``n_query`` to ``query`` and the rest to ``pool``
    (which must not be empty).
    """
    sizes = {"n_train": n_train, "n_val": n_val, "n_query": n_query}
    for name, value in sizes.items():
        if isinstance(value, bool) or int(value) != value or value < 1:
            raise ValueError(f"{name} must be a positive integer, got {value!r}.")
    if n_train + n_val + n_query >= n_images:
        raise ValueError(f"{n_images} images cannot hold {n_train} train + {n_val} val + {n_query} query "
                         "images and a non-empty pool.")
    perm = np.random.default_rng(int(seed)).permutation(int(n_images))
    split = np.empty(n_images, dtype=object)
    bounds = np.cumsum([0, n_train, n_val, n_query, n_images - n_train - n_val - n_query])
    for name, lo, hi in zip(SPLITS, bounds[:-1], bounds[1:]):
        split[perm[lo:hi]] = name
    return split


def split_table(image_ids, split: np.ndarray) -> pd.DataFrame:
    """The split as a table: one row per image, columns ``image`` and ``split``."""
    if len(image_ids) != len(split):
        raise ValueError(f"{len(image_ids)} image ids but {len(split)} split entries.")
    return pd.DataFrame({"image": list(image_ids), "split": list(split)})


def split_counts(split) -> pd.DataFrame:
    """Images per split, in :data:`SPLITS` order."""
    split = np.asarray(split)
    return pd.DataFrame({"split": list(SPLITS), "images": [int(np.sum(split == s)) for s in SPLITS]})
