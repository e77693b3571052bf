"""Multi-label image sets with a two-level label hierarchy (general concepts and sub-labels).

Both retrieval datasets of the SLiCS paper have this shape:

* MIRFlickr25K: 11 general concepts, 6 of which have finer-grained sub-labels
  (:mod:`slics.data.mirflickr`);
* MS-COCO: 12 supercategories (general) over 80 categories (sub-labels)
  (:mod:`slics.data.coco`).

:class:`MultiLabelSet` holds one such set: the image ids, the *raw* label columns that
an image was annotated with (what the demo simulator draws images from), the general
label matrix that SLiCS learns with, and the sub-label matrix used only to assess
finer-grained retrieval, with each sub-label's general parent.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np


@dataclass(frozen=True)
class MultiLabelSet:
    """Images with raw labels, general concepts and sub-labels (rows aligned).

    Attributes
    ----------
    image_ids : tuple of str
        File name of every image (e.g. ``im1.jpg``, ``train2014/COCO_train2014_...jpg``).
    labels : ndarray of bool, shape (n, L)
        The raw annotation columns named by ``label_names``.
    label_names : tuple of str
    general : ndarray of bool, shape (n, C)
        General concepts (the supervision of SLiCS, the relevance of general retrieval).
    general_names : tuple of str
    sub : ndarray of bool, shape (n, S)
        Sub-labels (relevance of sub-label retrieval).
    sub_names : tuple of str
    sub_parent : ndarray of int, shape (S,)
        Index into ``general_names`` of each sub-label's general concept.
    """

    image_ids: tuple
    labels: np.ndarray
    label_names: tuple
    general: np.ndarray
    general_names: tuple
    sub: np.ndarray
    sub_names: tuple
    sub_parent: np.ndarray

    def __post_init__(self):
        n = len(self.image_ids)
        for name, names in (("labels", self.label_names), ("general", self.general_names),
                            ("sub", self.sub_names)):
            array = getattr(self, name)
            if array.dtype != bool or array.shape != (n, len(names)):
                raise ValueError(f"{name} must be a bool array of shape ({n}, {len(names)}), "
                                 f"got {array.dtype} {array.shape}.")
        parent = np.asarray(self.sub_parent)
        if parent.shape != (len(self.sub_names),) or (parent.size and (parent.min() < 0 or
                                                                       parent.max() >= len(self.general_names))):
            raise ValueError("sub_parent must give one general-concept index per sub-label.")

    def __len__(self) -> int:
        return len(self.image_ids)

    def subset(self, rows) -> "MultiLabelSet":
        """The images at ``rows`` (indices or a boolean mask), in that order."""
        rows = np.asarray(rows)
        if rows.dtype == bool:
            rows = np.flatnonzero(rows)
        return MultiLabelSet(tuple(self.image_ids[i] for i in rows), self.labels[rows], self.label_names,
                             self.general[rows], self.general_names, self.sub[rows], self.sub_names,
                             self.sub_parent)

    def drop_unlabelled(self) -> "MultiLabelSet":
        """Only the images with at least one general concept (the paper drops the others)."""
        return self.subset(self.general.any(axis=1))

    def sub_labels_of(self, concept: int) -> np.ndarray:
        """Column indices of the sub-labels under general concept ``concept``."""
        return np.flatnonzero(np.asarray(self.sub_parent) == concept)

    def hierarchy(self) -> dict[str, list[str]]:
        """General concept -> its sub-labels (empty list when it has none)."""
        return {g: [self.sub_names[s] for s in self.sub_labels_of(j)]
                for j, g in enumerate(self.general_names)}


def read_label_lines(lines, n_columns: int, source: str = "label list") -> tuple[tuple, np.ndarray]:
    """Parse ``<image> 0 1 0 ...`` lines (the DeepHash-pytorch list format).

    Returns the image names and a bool (n, n_columns) matrix. Blank lines are skipped;
    any other malformed line raises with its line number.
    """
    names, rows = [], []
    for number, line in enumerate(lines, 1):
        parts = line.split()
        if not parts:
            continue
        flags = "".join(parts[1:])        # n_columns characters when every field is one 0 or 1
        if len(parts) != n_columns + 1 or len(flags) != n_columns or flags.strip("01"):
            raise ValueError(f"{source}, line {number}: expected an image name and {n_columns} 0/1 "
                             f"columns, got {len(parts) - 1} field(s) after the name.")
        names.append(parts[0])
        rows.append(flags)
    if not names:
        raise ValueError(f"{source} holds no label lines.")
    if len(set(names)) != len(names):
        raise ValueError(f"{source} lists some image more than once.")
    bits = np.frombuffer("".join(rows).encode("ascii"), dtype=np.uint8) == ord("1")
    return tuple(names), bits.reshape(len(names), n_columns)


def read_label_files(paths, n_columns: int, dataset: str) -> tuple[tuple, np.ndarray]:
    """Read several DeepHash list files into one (names, labels), in file then line order."""
    names, blocks = [], []
    for path in paths:
        path = Path(path)
        n, Y = read_label_lines(path.read_text(encoding="utf-8").splitlines(), n_columns, str(path))
        names.extend(n)
        blocks.append(Y)
    if len(set(names)) != len(names):
        raise ValueError(f"the {dataset} list files share images; each image must appear once.")
    return tuple(names), np.vstack(blocks)


def prompt_name(label: str) -> str:
    """A label name as words for a text prompt: ``plant_life`` -> ``plant life``."""
    return label.replace("_", " ")
