"""Atomic writers for every generated artefact.

Each writer writes to a temporary file in the destination folder and renames it
into place, so an interrupted run never leaves a half-written result. Output is
byte-stable: sorted JSON keys, fixed float formatting, no timestamps.
"""

from __future__ import annotations

import json
import os
import tempfile
from contextlib import contextmanager
from pathlib import Path
from typing import Iterator

import numpy as np
import pandas as pd

FLOAT_FORMAT = "%.6g"
_UMASK = os.umask(0)
os.umask(_UMASK)


@contextmanager
def atomic_path(dest: str | Path) -> Iterator[Path]:
    """Yield a temporary path next to ``dest``; rename it onto ``dest`` on success."""
    dest = Path(dest)
    dest.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{dest.name}.", suffix=".tmp", dir=dest.parent)
    os.close(fd)
    tmp = Path(tmp)
    try:
        yield tmp
        os.chmod(tmp, 0o666 & ~_UMASK)  # mkstemp creates 0600; give the usual permissions
        os.replace(tmp, dest)
    finally:
        if tmp.exists():
            tmp.unlink()


def write_text(dest: str | Path, text: str) -> Path:
    with atomic_path(dest) as tmp:
        tmp.write_text(text, encoding="utf-8")
    return Path(dest)


def write_bytes(dest: str | Path, data: bytes) -> Path:
    with atomic_path(dest) as tmp:
        tmp.write_bytes(data)
    return Path(dest)


def _plain(obj):
    """Convert numpy scalars/arrays so ``json`` can serialise them."""
    if isinstance(obj, np.generic):
        return obj.item()
    if isinstance(obj, np.ndarray):
        return obj.tolist()
    raise TypeError(f"Object of type {type(obj).__name__} is not JSON serialisable")


def _round_floats(obj, digits: int):
    if isinstance(obj, float):
        return float(f"{obj:.{digits}g}")
    if isinstance(obj, dict):
        return {k: _round_floats(v, digits) for k, v in obj.items()}
    if isinstance(obj, (list, tuple)):
        return [_round_floats(v, digits) for v in obj]
    return obj


def write_json(dest: str | Path, obj, digits: int = 8) -> Path:
    """Write ``obj`` as sorted, indented JSON with floats rounded to ``digits`` significant digits."""
    obj = json.loads(json.dumps(obj, default=_plain))
    return write_text(dest, json.dumps(_round_floats(obj, digits), indent=2, sort_keys=True) + "\n")


def write_table(df: pd.DataFrame, stem: str | Path, caption: str | None = None,
                float_format: str = FLOAT_FORMAT, index: bool = False) -> tuple[Path, Path]:
    """Write ``df`` as ``<stem>.csv`` and ``<stem>.md`` (a Markdown table, optional caption)."""
    stem = Path(stem)
    csv_path, md_path = stem.with_suffix(".csv"), stem.with_suffix(".md")
    write_text(csv_path, df.to_csv(index=index, float_format=float_format, lineterminator="\n"))
    md = df.to_markdown(index=index, floatfmt=".6g")
    if caption:
        md = f"{caption}\n\n{md}"
    write_text(md_path, md + "\n")
    return csv_path, md_path


def save_npy(dest: str | Path, array: np.ndarray) -> Path:
    with atomic_path(dest) as tmp:
        with open(tmp, "wb") as fh:
            np.save(fh, array, allow_pickle=False)
    return Path(dest)


def load_npy(path: str | Path, what: str = "array", how_to_make: str = "run `dvc repro`") -> np.ndarray:
    """Load an ``.npy`` file, with an error that says how to produce it when missing."""
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"The {what} file {path} is missing; {how_to_make} to create it.")
    return np.load(path, allow_pickle=False)
