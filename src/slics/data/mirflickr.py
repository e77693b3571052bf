"""MIRFlickr25K labels: 25,000 images, 11 general concepts, 6 with sub-labels.

The label lists are DeepHash-pytorch's ``data/mirflickr/{train,test,database}.txt``
(resource ``mirflickr25k_labels``): every line is ``imN.jpg`` followed by 38 binary
columns, the official ``mirflickr25k_annotations_v080`` files in alphabetical order
(:data:`LABELS38`; the mirror's ``label_names38.txt`` lists the same names). A name
ending in ``_r1`` is the "relevant" (stricter) annotation of the same concept; the
SLiCS paper uses the 24 "potential" labels, which form the hierarchy below (checked
on the real files, see the data README): 11 general concepts, 6 of them with
finer-grained sub-labels (13 in all).

General label of an image: its general column, or any of that concept's sub-labels
(the files violate ``sub ⊂ general`` for at most 5 images per pair; taking the union
keeps the hierarchy exact). Images without any general label are dropped by
:meth:`MultiLabelSet.drop_unlabelled` (as in the paper).
"""

from __future__ import annotations

import re

import numpy as np

from .multilabel import MultiLabelSet, read_label_files

RESOURCE = "mirflickr25k_labels"
FILES = ("mirflickr25k/deephash_train.txt", "mirflickr25k/deephash_test.txt",
         "mirflickr25k/deephash_database.txt")
LABELS38 = (
    "animals", "baby", "baby_r1", "bird", "bird_r1", "car", "car_r1", "clouds", "clouds_r1", "dog", "dog_r1",
    "female", "female_r1", "flower", "flower_r1", "food", "indoor", "lake", "male", "male_r1", "night",
    "night_r1", "people", "people_r1", "plant_life", "portrait", "portrait_r1", "river", "river_r1", "sea",
    "sea_r1", "sky", "structures", "sunset", "transport", "tree", "tree_r1", "water",
)
GENERAL = ("animals", "food", "indoor", "night", "people", "plant_life", "sky", "structures", "sunset",
           "transport", "water")
SUBLABELS = {
    "animals": ("bird", "dog"),
    "people": ("baby", "female", "male", "portrait"),
    "plant_life": ("flower", "tree"),
    "sky": ("clouds",),
    "transport": ("car",),
    "water": ("lake", "river", "sea"),
}
_NAME = re.compile(r"^im(\d+)\.jpg$")


def _image_number(name: str) -> int:
    match = _NAME.match(name)
    if not match:
        raise ValueError(f"unexpected MIRFlickr25K image name {name!r} (expected imN.jpg).")
    return int(match.group(1))


def from_columns(names, Y38: np.ndarray) -> MultiLabelSet:
    """Build the hierarchy from the 38 annotation columns (rows sorted by image number)."""
    Y38 = np.asarray(Y38, dtype=bool)
    order = np.argsort([_image_number(n) for n in names], kind="stable")
    names = tuple(names[i] for i in order)
    Y38 = Y38[order]
    col = {name: i for i, name in enumerate(LABELS38)}
    sub_names = tuple(s for g in GENERAL for s in SUBLABELS.get(g, ()))
    sub_parent = np.array([GENERAL.index(g) for g in GENERAL for _ in SUBLABELS.get(g, ())], dtype=np.int64)
    sub = Y38[:, [col[s] for s in sub_names]]
    general = Y38[:, [col[g] for g in GENERAL]].copy()
    for j in range(len(GENERAL)):
        children = np.flatnonzero(sub_parent == j)
        if children.size:
            general[:, j] |= sub[:, children].any(axis=1)
    label_names = tuple(sorted(GENERAL + sub_names))          # the 24 potential labels
    labels = Y38[:, [col[name] for name in label_names]]
    return MultiLabelSet(names, labels, label_names, general, GENERAL, sub, sub_names, sub_parent)


def read_mirflickr25k(paths) -> MultiLabelSet:
    """Read DeepHash-format list files (any subset of them) into one set, sorted by image number."""
    return from_columns(*read_label_files(paths, len(LABELS38), "MIRFlickr25K"))


def load_mirflickr25k() -> MultiLabelSet:
    """All 25,000 MIRFlickr25K images (resource ``mirflickr25k_labels``, fetched and verified).

    The count checked is the registry's ``_expected.mirflickr25k_images`` (25,000).
    """
    from .resources import expected, resource_path

    data = read_mirflickr25k([resource_path(RESOURCE, f) for f in FILES])
    n_images = int(expected("mirflickr25k_images"))
    if len(data) != n_images:
        raise ValueError(f"MIRFlickr25K should have {n_images} images, the lists hold {len(data)}.")
    return data
