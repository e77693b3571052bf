"""CIFAR-10 test set for the full profile: 10,000 32x32 RGB images, 1,000 per class.

The files are torchvision's: ``data/external/cifar10/cifar-10-batches-py/`` with
``test_batch`` (a pickle of a dict with ``data``, uint8 (10000, 3072) in
channel-major R, G, B planes of 32x32, and ``labels``, 10,000 ints) and
``batches.meta`` (``label_names``). They are written by Python 2, so their keys
load as bytes (``b'data'``) under ``encoding='bytes'``.

:func:`ensure_cifar10` materialises them: present and matching torchvision's md5
sums, copied from ``$SLICS_DATA_MIRROR/cifar10/cifar-10-batches-py/``, or downloaded
by ``torchvision.datasets.CIFAR10(root, train=False, download=True)`` (which checks the
archive's md5). Offline with the files missing it raises at once, saying how to get them.

:func:`read_cifar10_test` then reads the pickles itself, with the exact layout
torchvision uses (reshape to (n, 3, 32, 32), transpose to HWC), but without
torchvision's md5 check, so that small test fixtures in the same format can be
read too. It unpickles with a restricted unpickler that only admits the numpy
array reconstruction the files need.
"""

from __future__ import annotations

import os
import pickle
import shutil
from pathlib import Path

import numpy as np

from ..utils.config import data_dir

CIFAR10_CLASSES = ("airplane", "automobile", "bird", "cat", "deer",
                   "dog", "frog", "horse", "ship", "truck")
BATCH_FOLDER = "cifar-10-batches-py"
TEST_FILE = "test_batch"
META_FILE = "batches.meta"
URL = "https://www.cs.toronto.edu/~kriz/cifar-10-python.tar.gz"
IMAGE_SHAPE = (32, 32, 3)


class CifarUnavailableError(RuntimeError):
    """The CIFAR-10 files are missing and cannot be downloaded now."""


def cifar10_root() -> Path:
    """``data/external/cifar10``: the torchvision ``root`` of the CIFAR-10 files."""
    return data_dir() / "external" / "cifar10"


def _files(root: Path) -> dict[str, Path]:
    return {name: root / BATCH_FOLDER / name for name in (TEST_FILE, META_FILE)}


def download_command(root: Path | str | None = None) -> str:
    root = Path(root) if root is not None else Path("data/external/cifar10")
    return (f"python -c \"from torchvision.datasets import CIFAR10; "
            f"CIFAR10('{root}', train=False, download=True)\"")


def md5_sums() -> dict[str, str]:
    """torchvision's md5 sums of the two files (the registry's ``_expected.cifar10_md5``)."""
    from .resources import expected

    return dict(expected("cifar10_md5"))


def _intact(files: dict[str, Path]) -> bool:
    from torchvision.datasets.utils import check_integrity

    md5 = md5_sums()
    return all(check_integrity(str(path), md5[name]) for name, path in files.items())


def ensure_cifar10(root: str | Path | None = None, offline: bool | None = None) -> Path:
    """Make the CIFAR-10 test files available (md5-checked) under ``root``; return ``root``.

    ``offline`` defaults to :func:`slics.embedding.encoders.offline_mode` (``SLICS_OFFLINE`` or
    ``HF_HUB_OFFLINE``); when offline, or when the download host cannot be reached, and
    neither the files nor a mirror copy is there, :class:`CifarUnavailableError` is raised
    immediately.
    """
    from ..embedding.encoders import can_reach, offline_mode

    root = Path(root) if root is not None else cifar10_root()
    files = _files(root)
    if all(p.is_file() for p in files.values()):
        if _intact(files):
            return root
        raise CifarUnavailableError(
            f"The CIFAR-10 files under {root / BATCH_FOLDER} do not match torchvision's md5 sums; "
            f"delete that folder and download again with\n    {download_command(root)}")
    mirror = os.environ.get("SLICS_DATA_MIRROR")
    source = Path(mirror) / "cifar10" / BATCH_FOLDER if mirror else None
    if source is not None and all((source / name).is_file() for name in files):
        (root / BATCH_FOLDER).mkdir(parents=True, exist_ok=True)
        for name, dest in files.items():
            tmp = dest.with_name(f".{name}.tmp")
            shutil.copyfile(source / name, tmp)
            os.replace(tmp, dest)
        if not _intact(files):
            raise CifarUnavailableError(f"The mirror copy in {source} does not match torchvision's md5 sums.")
        return root
    offline = offline_mode() if offline is None else offline
    if offline or not can_reach("www.cs.toronto.edu"):
        why = "offline mode is set (SLICS_OFFLINE / HF_HUB_OFFLINE)" if offline else \
            "www.cs.toronto.edu cannot be reached"
        raise CifarUnavailableError(
            f"The CIFAR-10 test set is not in {root / BATCH_FOLDER} and {why}. On a connected "
            f"machine, from the project root, run\n    {download_command(root)}\n"
            f"(torchvision fetches {URL}, 163 MB, and checks its md5), then copy "
            f"{BATCH_FOLDER}/{TEST_FILE} and {BATCH_FOLDER}/{META_FILE} to {root / BATCH_FOLDER} here "
            f"(or to $SLICS_DATA_MIRROR/cifar10/{BATCH_FOLDER}/).")
    from torchvision.datasets import CIFAR10

    CIFAR10(str(root), train=False, download=True)
    return root


class _ArrayUnpickler(pickle.Unpickler):
    """Unpickler for the CIFAR batches: plain containers and numpy arrays only."""

    ALLOWED = {
        ("numpy.core.multiarray", "_reconstruct"), ("numpy._core.multiarray", "_reconstruct"),
        ("numpy", "ndarray"), ("numpy", "dtype"), ("_codecs", "encode"),
    }

    def find_class(self, module, name):
        if (module, name) in self.ALLOWED:
            return super().find_class(module, name)
        raise pickle.UnpicklingError(f"{module}.{name} is not allowed in a CIFAR-10 batch file.")


def _text(value):
    return value.decode("latin1") if isinstance(value, bytes) else value


def read_batch(path: str | Path) -> dict:
    """Load one CIFAR pickle, with keys (and byte strings in lists) decoded to ``str``."""
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"CIFAR-10 file {path} is missing; get it with\n    {download_command()}")
    with open(path, "rb") as fh:
        raw = _ArrayUnpickler(fh, encoding="latin1").load()  # as torchvision: py2 str -> str
    if not isinstance(raw, dict):
        raise ValueError(f"{path} is not a CIFAR batch (expected a pickled dict, got {type(raw).__name__}).")
    return {_text(k): [_text(v) for v in value] if isinstance(value, list) else value
            for k, value in raw.items()}


def read_cifar10_test(root: str | Path | None = None) -> tuple[np.ndarray, np.ndarray, list[str]]:
    """``(images uint8 (n, 32, 32, 3), labels int64 (n,), class names)`` of ``test_batch``.

    Same layout as ``torchvision.datasets.CIFAR10(root, train=False)``, without its md5
    check (call :func:`ensure_cifar10` first for the real files).
    """
    root = Path(root) if root is not None else cifar10_root()
    files = _files(root)
    batch, meta = read_batch(files[TEST_FILE]), read_batch(files[META_FILE])
    for key, where in (("data", batch), ("labels", batch), ("label_names", meta)):
        if key not in where:
            raise ValueError(f"CIFAR-10 file lacks the '{key}' entry; found {sorted(where)}.")
    data = np.asarray(batch["data"])
    if data.dtype != np.uint8 or data.ndim != 2 or data.shape[1] != int(np.prod(IMAGE_SHAPE)):
        raise ValueError(f"CIFAR-10 'data' must be uint8 of shape (n, 3072), got {data.dtype} {data.shape}.")
    labels = np.asarray(batch["labels"], dtype=np.int64)
    classes = [str(c) for c in meta["label_names"]]
    if labels.shape != (data.shape[0],):
        raise ValueError(f"CIFAR-10 has {data.shape[0]} images but {labels.size} labels.")
    if labels.size and (labels.min() < 0 or labels.max() >= len(classes)):
        raise ValueError(f"CIFAR-10 labels must be in [0, {len(classes)}).")
    images = data.reshape(-1, 3, 32, 32).transpose(0, 2, 3, 1)
    return np.ascontiguousarray(images), labels, classes


class CifarImages:
    """A sequence of PIL images over a uint8 (n, 32, 32, 3) array (what encoders consume)."""

    def __init__(self, images: np.ndarray):
        images = np.asarray(images)
        if images.dtype != np.uint8 or images.ndim != 4 or images.shape[1:] != IMAGE_SHAPE:
            raise ValueError(f"images must be uint8 of shape (n, 32, 32, 3), got {images.dtype} {images.shape}.")
        self.images = images

    def __len__(self) -> int:
        return self.images.shape[0]

    def __getitem__(self, index: int):
        from PIL import Image

        if not -len(self) <= index < len(self):
            raise IndexError(index)
        return Image.fromarray(self.images[index])

    def __iter__(self):
        return (self[i] for i in range(len(self)))


def load_cifar10_test(root: str | Path | None = None, offline: bool | None = None):
    """Full profile: ensure (download / verify) then read the test set.

    Returns ``(CifarImages, labels int64, class names)``.
    """
    root = ensure_cifar10(root, offline)
    images, labels, classes = read_cifar10_test(root)
    if tuple(classes) != CIFAR10_CLASSES:
        raise ValueError(f"Unexpected CIFAR-10 class names {classes}; expected {list(CIFAR10_CLASSES)}.")
    return CifarImages(images), labels, classes
