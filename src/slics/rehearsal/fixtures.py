"""Fixture datasets in the real on-disk formats, small enough to encode in seconds.

Every writer returns the mirror paths it wrote (relative to the mirror folder, as in
``resources.yaml``); :func:`write_fixtures` writes them all and returns their sha256 sums and
the sizes the readers will check (the registry's ``_expected`` section).
"""

from __future__ import annotations

import gzip
import io
import json
import pickle
import zipfile
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from ..data.resources import sha256_of

NOUNS = ("dog", "cat", "man", "woman", "child", "street", "tree", "water", "car", "ball", "beach", "grass",
         "shirt", "hat", "bike", "horse", "building", "boat", "field", "table")
VERBS = ("walks", "sits", "runs", "stands", "plays", "waits")


@dataclass(frozen=True)
class FixtureSizes:
    """How many images each fixture dataset holds."""

    cifar10_per_class: int = 2
    mirflickr25k: int = 28
    coco: int = 28
    flickr30k: dict | None = None      # split -> images; default: enough rows for section 3.7's maps
    vocab_size: int = 60

    def flickr30k_splits(self) -> dict:
        return self.flickr30k or {"train": 520, "val": 6, "test_2016": 6}


def _jpeg(rng: np.random.Generator, size: int = 48) -> bytes:
    """A small JPEG: a random colour gradient with a random block, so that images differ."""
    from PIL import Image

    base = rng.integers(0, 256, 3)
    ramp = np.linspace(0, 1, size)[:, None, None] * rng.integers(-120, 120, 3)
    pixels = np.clip(base + ramp + np.zeros((size, size, 3)), 0, 255).astype(np.uint8)
    x, y = rng.integers(0, size // 2, 2)
    pixels[y:y + size // 3, x:x + size // 3] = rng.integers(0, 256, 3)
    buf = io.BytesIO()
    Image.fromarray(pixels).save(buf, format="JPEG", quality=90)
    return buf.getvalue()


def _labels(n: int, n_columns: int, rng: np.random.Generator) -> np.ndarray:
    """(n, n_columns) bool: every column in about a third of the rows, every row labelled."""
    Y = rng.random((n, n_columns)) < 0.35
    Y[np.arange(n), np.arange(n) % n_columns] = True
    return Y


def write_cifar10(mirror: Path, per_class: int, rng) -> list[str]:
    """``cifar10/cifar-10-batches-py/{test_batch,batches.meta}`` as torchvision's pickles."""
    from ..data.cifar import BATCH_FOLDER, CIFAR10_CLASSES, META_FILE, TEST_FILE

    labels = [c for c in range(len(CIFAR10_CLASSES)) for _ in range(per_class)]
    data = rng.integers(0, 256, (len(labels), 3072), dtype=np.uint8)
    folder = mirror / "cifar10" / BATCH_FOLDER
    folder.mkdir(parents=True, exist_ok=True)
    with open(folder / TEST_FILE, "wb") as fh:
        pickle.dump({b"batch_label": b"testing batch 1 of 1", b"labels": labels, b"data": data,
                     b"filenames": [f"img{i}.png".encode() for i in range(len(labels))]}, fh, protocol=2)
    with open(folder / META_FILE, "wb") as fh:
        pickle.dump({b"label_names": [c.encode() for c in CIFAR10_CLASSES], b"num_vis": 3072}, fh, protocol=2)
    return [f"cifar10/{BATCH_FOLDER}/{TEST_FILE}", f"cifar10/{BATCH_FOLDER}/{META_FILE}"]


def write_mirflickr25k(mirror: Path, n: int, rng) -> list[str]:
    """DeepHash's three label lists (38 columns) and ``mirflickr25k.zip`` (``mirflickr/imN.jpg``)."""
    from ..data.mirflickr import FILES, LABELS38

    names = [f"im{i + 1}.jpg" for i in range(n)]
    Y = _labels(n, len(LABELS38), rng)
    lines = [f"{name} " + " ".join("1" if v else "0" for v in row) for name, row in zip(names, Y)]
    cuts = np.array_split(np.arange(n), len(FILES))
    for path, rows in zip(FILES, cuts):
        (mirror / path).parent.mkdir(parents=True, exist_ok=True)
        (mirror / path).write_text("\n".join(lines[i] for i in rows) + "\n", encoding="utf-8")
    archive = "mirflickr25k/mirflickr25k.zip"
    with zipfile.ZipFile(mirror / archive, "w") as zf:
        zf.writestr("mirflickr/", b"")
        for name in names:
            zf.writestr(f"mirflickr/{name}", _jpeg(rng))
        zf.writestr("mirflickr/license.txt", b"fixture")
    return [*FILES, archive]


def write_coco(mirror: Path, n: int, rng) -> list[str]:
    """``annotations_trainval2017.zip`` (``annotations/instances_train2017.json``) and ``train2017.zip``."""
    from ..data.coco import CATEGORIES, SUPERCATEGORIES

    images = [{"id": 9 + i, "file_name": f"{9 + i:012d}.jpg", "width": 48, "height": 48} for i in range(n)]
    general = _labels(n, len(SUPERCATEGORIES), rng)
    annotations = []
    for img, row in zip(images, general):
        for j in np.flatnonzero(row):
            cats = [cid for cid, _, sup in CATEGORIES if sup == SUPERCATEGORIES[j]]
            annotations.append({"id": len(annotations) + 1, "image_id": img["id"], "iscrowd": 0,
                                "category_id": int(rng.choice(cats)), "bbox": [0, 0, 4, 4], "area": 16.0})
    doc = {"info": {"description": "rehearsal fixture"}, "licenses": [], "images": images,
           "annotations": annotations,
           "categories": [{"id": cid, "name": name, "supercategory": sup} for cid, name, sup in CATEGORIES]}
    labels_zip, images_zip = "coco/annotations_trainval2017.zip", "coco/train2017.zip"
    (mirror / "coco").mkdir(parents=True, exist_ok=True)
    with zipfile.ZipFile(mirror / labels_zip, "w") as zf:
        zf.writestr("annotations/instances_train2017.json", json.dumps(doc))
    with zipfile.ZipFile(mirror / images_zip, "w") as zf:
        for img in images:
            zf.writestr(f"train2017/{img['file_name']}", _jpeg(rng))
    return [labels_zip, images_zip]


def write_flickr30k(mirror: Path, images_dir: Path, splits: dict, rng) -> list[str]:
    """Multi30k's caption files (5 per split, gzip) and image lists, and the JPEGs in ``images_dir``."""
    written, start = [], 1000
    images_dir.mkdir(parents=True, exist_ok=True)
    (mirror / "flickr30k").mkdir(parents=True, exist_ok=True)
    for split, n in splits.items():
        names = [f"{start + i}.jpg" for i in range(n)]
        start += n
        for name in names:
            (images_dir / name).write_bytes(_jpeg(rng))
        path = f"flickr30k/{split}_images.txt"
        (mirror / path).write_text("\n".join(names) + "\n", encoding="utf-8")
        written.append(path)
        for k in range(1, 6):
            lines = [f"A {rng.choice(NOUNS)} {rng.choice(VERBS)} near the {rng.choice(NOUNS)} with a "
                     f"{rng.choice(NOUNS)} ." for _ in names]
            path = f"flickr30k/{split}.{k}.en.gz"
            with gzip.open(mirror / path, "wt", encoding="utf-8") as fh:   # mtime 0: byte-stable
                fh.write("\n".join(lines) + "\n")
            written.append(path)
    return written


def write_fixtures(mirror: str | Path, images_dir: str | Path, sizes: FixtureSizes = FixtureSizes(),
                   seed: int = 0) -> tuple[dict[str, str], dict]:
    """Write every fixture; return (mirror path -> sha256, the registry's ``_expected`` values)."""
    from ..data.cifar import BATCH_FOLDER, META_FILE, TEST_FILE

    mirror, rng = Path(mirror), np.random.default_rng(seed)
    paths = [*write_cifar10(mirror, sizes.cifar10_per_class, rng),
             *write_mirflickr25k(mirror, sizes.mirflickr25k, rng),
             *write_coco(mirror, sizes.coco, rng),
             *write_flickr30k(mirror, Path(images_dir), sizes.flickr30k_splits(), rng)]
    sums = {path: sha256_of(mirror / path) for path in paths}
    import hashlib

    md5 = {name: hashlib.md5((mirror / "cifar10" / BATCH_FOLDER / name).read_bytes()).hexdigest()
           for name in (TEST_FILE, META_FILE)}
    expected = {"mirflickr25k_images": sizes.mirflickr25k, "laion_vocab_size": sizes.vocab_size,
                "flickr30k_images": sum(sizes.flickr30k_splits().values()), "cifar10_md5": md5}
    return sums, expected
