"""MS-COCO labels: 80 categories under the 12 official supercategories.

:data:`CATEGORIES` is the official COCO category list (id, name, supercategory), as in
the ``categories`` field of every ``instances_*.json``; the supercategories, in order of
first appearance, are the 12 general concepts of the SLiCS paper and the categories its
sub-labels.

Two sources:

* demo profile: DeepHash-pytorch's 15,000-image COCO-2014 subset (resource
  ``coco_labels``), one line per image, ``train2014/...jpg`` followed by 80 binary
  columns in *alphabetical* category-name order (the mirror's ``label_names80.txt``);
* full profile: the official ``annotations/instances_train2017.json`` (resource
  ``coco_instances_2017``, profile ``full``): an image carries a category when it has
  at least one instance annotation of it (crowd annotations included).

Either way the columns are returned in the official id order.
"""

from __future__ import annotations

import json

import numpy as np

from .multilabel import MultiLabelSet, read_label_files

RESOURCE = "coco_labels"
FILES = ("coco/deephash_coco_train.txt", "coco/deephash_coco_test.txt")
INSTANCES_RESOURCE = "coco_instances_2017"
INSTANCES_FILE = "coco/annotations_trainval2017.zip"
INSTANCES_MEMBER = "annotations/instances_train2017.json"

CATEGORIES = (
    (1, "person", "person"), (2, "bicycle", "vehicle"), (3, "car", "vehicle"), (4, "motorcycle", "vehicle"),
    (5, "airplane", "vehicle"), (6, "bus", "vehicle"), (7, "train", "vehicle"), (8, "truck", "vehicle"),
    (9, "boat", "vehicle"), (10, "traffic light", "outdoor"), (11, "fire hydrant", "outdoor"),
    (13, "stop sign", "outdoor"), (14, "parking meter", "outdoor"), (15, "bench", "outdoor"),
    (16, "bird", "animal"), (17, "cat", "animal"), (18, "dog", "animal"), (19, "horse", "animal"),
    (20, "sheep", "animal"), (21, "cow", "animal"), (22, "elephant", "animal"), (23, "bear", "animal"),
    (24, "zebra", "animal"), (25, "giraffe", "animal"), (27, "backpack", "accessory"),
    (28, "umbrella", "accessory"), (31, "handbag", "accessory"), (32, "tie", "accessory"),
    (33, "suitcase", "accessory"), (34, "frisbee", "sports"), (35, "skis", "sports"),
    (36, "snowboard", "sports"), (37, "sports ball", "sports"), (38, "kite", "sports"),
    (39, "baseball bat", "sports"), (40, "baseball glove", "sports"), (41, "skateboard", "sports"),
    (42, "surfboard", "sports"), (43, "tennis racket", "sports"), (44, "bottle", "kitchen"),
    (46, "wine glass", "kitchen"), (47, "cup", "kitchen"), (48, "fork", "kitchen"), (49, "knife", "kitchen"),
    (50, "spoon", "kitchen"), (51, "bowl", "kitchen"), (52, "banana", "food"), (53, "apple", "food"),
    (54, "sandwich", "food"), (55, "orange", "food"), (56, "broccoli", "food"), (57, "carrot", "food"),
    (58, "hot dog", "food"), (59, "pizza", "food"), (60, "donut", "food"), (61, "cake", "food"),
    (62, "chair", "furniture"), (63, "couch", "furniture"), (64, "potted plant", "furniture"),
    (65, "bed", "furniture"), (67, "dining table", "furniture"), (70, "toilet", "furniture"),
    (72, "tv", "electronic"), (73, "laptop", "electronic"), (74, "mouse", "electronic"),
    (75, "remote", "electronic"), (76, "keyboard", "electronic"), (77, "cell phone", "electronic"),
    (78, "microwave", "appliance"), (79, "oven", "appliance"), (80, "toaster", "appliance"),
    (81, "sink", "appliance"), (82, "refrigerator", "appliance"), (84, "book", "indoor"),
    (85, "clock", "indoor"), (86, "vase", "indoor"), (87, "scissors", "indoor"), (88, "teddy bear", "indoor"),
    (89, "hair drier", "indoor"), (90, "toothbrush", "indoor"),
)
CATEGORY_NAMES = tuple(name for _, name, _ in CATEGORIES)
SUPERCATEGORIES = tuple(dict.fromkeys(sup for _, _, sup in CATEGORIES))
ALPHABETICAL = tuple(sorted(CATEGORY_NAMES))       # the DeepHash column order


def from_categories(image_ids, Y80: np.ndarray) -> MultiLabelSet:
    """Build the hierarchy from an (n, 80) matrix in the official category order."""
    Y80 = np.asarray(Y80, dtype=bool)
    parent = np.array([SUPERCATEGORIES.index(sup) for _, _, sup in CATEGORIES], dtype=np.int64)
    general = np.zeros((Y80.shape[0], len(SUPERCATEGORIES)), dtype=bool)
    for j in range(len(SUPERCATEGORIES)):
        general[:, j] = Y80[:, parent == j].any(axis=1)
    return MultiLabelSet(tuple(image_ids), Y80, CATEGORY_NAMES, general, SUPERCATEGORIES, Y80.copy(),
                         CATEGORY_NAMES, parent)


def read_deephash_coco(paths) -> MultiLabelSet:
    """Read DeepHash-format COCO lists (alphabetical columns), in file then line order."""
    names, Y = read_label_files(paths, len(ALPHABETICAL), "COCO")
    official = Y[:, [ALPHABETICAL.index(name) for name in CATEGORY_NAMES]]
    return from_categories(names, official)


def read_instances(source) -> MultiLabelSet:
    """Image-level labels from an official ``instances_*.json`` (a path, or the parsed dict).

    Images are in the file's ``images`` order, named by ``file_name``; the file's
    ``categories`` must be the official list (same ids, names and supercategories).
    Images with no annotation get an all-zero row (drop them with ``drop_unlabelled``).
    """
    if isinstance(source, dict):
        doc = source
    else:
        with open(source, encoding="utf-8") as fh:
            doc = json.load(fh)
    for key in ("images", "annotations", "categories"):
        if key not in doc:
            raise ValueError(f"not a COCO instances file: no '{key}' field.")
    cats = tuple((int(c["id"]), c["name"], c["supercategory"]) for c in doc["categories"])
    if tuple(sorted(cats)) != CATEGORIES:
        raise ValueError("the file's categories are not the official 80 COCO categories.")
    column = {cid: i for i, (cid, _, _) in enumerate(CATEGORIES)}
    row = {int(img["id"]): i for i, img in enumerate(doc["images"])}
    Y = np.zeros((len(row), len(CATEGORIES)), dtype=bool)
    for ann in doc["annotations"]:
        try:
            Y[row[int(ann["image_id"])], column[int(ann["category_id"])]] = True
        except KeyError as err:
            raise ValueError(f"annotation {ann.get('id')} refers to an unknown image or category ({err}).") from None
    return from_categories([img["file_name"] for img in doc["images"]], Y)


def load_coco(profile: str = "demo") -> MultiLabelSet:
    """The COCO labels of ``profile``: the 15,000-image subset (demo) or train2017 (full)."""
    from .resources import expected, resource_path

    if profile == "demo":
        data = read_deephash_coco([resource_path(RESOURCE, f) for f in FILES])
        n_images = int(expected("coco_demo_images"))      # 15,000
        if len(data) != n_images:
            raise ValueError(f"the COCO demo subset should have {n_images} images, got {len(data)}.")
        return data
    if profile == "full":
        import zipfile

        archive = resource_path(INSTANCES_RESOURCE, INSTANCES_FILE)
        with zipfile.ZipFile(archive) as zf, zf.open(INSTANCES_MEMBER) as fh:
            return read_instances(json.load(fh))
    raise ValueError(f"unknown profile {profile!r}; expected 'demo' or 'full'.")
