"""Atomic writers for every generated artefact.

Each writer writes to a temporary file in the destination folder and renames it
into place, so an interrupted run never leaves a half-written result. Output is
byte-stable: sorted JSON keys, fixed float formatting, no timestamps.
"""

from __future__ import annotations

import errno
import json
import os
import shutil
import tempfile
from contextlib import contextmanager
from pathlib import Path
from typing import Iterator, Mapping

import numpy as np
import pandas as pd

_UMASK = os.umask(0)
os.umask(_UMASK)
# What a folder that cannot be written into answers: permissions, a read-only file system.
_NOT_WRITABLE = (errno.EACCES, errno.EPERM, errno.EROFS)


class NotWritableError(PermissionError):
    """A folder the project must write into cannot be written; the message names it and the fix."""


def _not_writable(folder: Path, err: OSError) -> NotWritableError:
    """The error for a write refused in ``folder`` (``err``), naming the folder and the fix."""
    from .config import data_dir, results_dir

    folder = Path(folder).absolute()
    redirect = ""
    for root, variable in ((results_dir, "SLICS_RESULTS_DIR"), (data_dir, "SLICS_DATA_DIR")):
        try:
            root = root().absolute()
        except Exception:       # no project here: nothing to redirect
            continue
        if folder == root or root in folder.parents:
            redirect = f", or point {variable} at a writable folder"
    return NotWritableError(f"cannot write into {folder} ({err.strerror}); make it writable "
                            f"(chmod -R u+w {folder}, or remount it read-write){redirect}. Nothing was changed.")


def _make_in(folder: Path, make):
    """``make()`` after creating ``folder``; a refused write becomes a :class:`NotWritableError`."""
    try:
        folder.mkdir(parents=True, exist_ok=True)
        return make()
    except OSError as err:
        if err.errno in (errno.EEXIST, errno.ENOTDIR):      # a file where a folder must be
            blocker = next((p for p in (folder, *folder.parents) if p.exists() and not p.is_dir()), folder)
            raise NotADirectoryError(f"cannot write into {folder}: {blocker} is a file, not a folder; choose "
                                     f"another path (or move that file away).") from None
        if err.errno not in _NOT_WRITABLE:
            raise
        refused = Path(err.filename).parent if err.filename and not folder.is_dir() else folder
        raise _not_writable(refused, err) from None


def check_writable(folder: str | Path) -> Path:
    """Check, before any work starts, that files can be made in ``folder`` (or, while it does not
    exist yet, in its nearest existing parent, where it will be made); nothing is created.

    Raises :class:`NotWritableError` (a ``PermissionError``) naming the folder and the fix when
    it is read-only (permissions or a read-only file system).
    """
    folder = Path(folder)
    existing = next(p for p in (folder.absolute(), *folder.absolute().parents) if p.exists())

    def probe():
        fd, path = tempfile.mkstemp(prefix=".write-check-", dir=existing)
        os.close(fd)
        os.unlink(path)

    _make_in(existing, probe)
    return folder


@contextmanager
def atomic_path(dest: str | Path) -> Iterator[Path]:
    """Yield a temporary path next to ``dest``; rename it onto ``dest`` on success."""
    dest = Path(dest)
    fd, tmp = _make_in(dest.parent, lambda: tempfile.mkstemp(prefix=f".{dest.name}.", suffix=".tmp", dir=dest.parent))
    os.close(fd)
    tmp = Path(tmp)
    try:
        yield tmp
        os.chmod(tmp, 0o666 & ~_UMASK)  # mkstemp creates 0600; give the usual permissions
        os.replace(tmp, dest)
    finally:
        if tmp.exists():
            tmp.unlink()


@contextmanager
def atomic_dir(dest: str | Path) -> Iterator[Path]:
    """Yield an empty staging folder beside ``dest``; on success it replaces ``dest`` whole.

    On failure the staging folder is removed and ``dest`` keeps its previous contents.
    """
    dest = Path(dest)
    check_writable(dest.parent)
    remove_stale(dest.parent, f".{dest.name}.staging-*", f".{dest.name}.old-*")
    staging = Path(_make_in(dest.parent, lambda: tempfile.mkdtemp(prefix=f".{dest.name}.staging-", dir=dest.parent)))
    os.chmod(staging, 0o777 & ~_UMASK)  # mkdtemp creates 0700; the published folder gets the usual mode
    try:
        yield staging
        old = dest.with_name(f".{dest.name}.old-{staging.name[-8:]}")
        if dest.exists():
            os.replace(dest, old)
        os.replace(staging, dest)
        shutil.rmtree(old, ignore_errors=True)
    finally:
        shutil.rmtree(staging, ignore_errors=True)


def remove_stale(folder: str | Path, *patterns: str) -> list[Path]:
    """Remove what a killed run left in ``folder`` (entries matching ``patterns``); returns them.

    A run that is killed (SIGKILL, power loss) cannot clean up its staging folder; the next run
    of the same stage or writer removes it. Two runs of the same stage at once are not supported.
    """
    removed = []
    for pattern in patterns:
        for path in Path(folder).glob(pattern):
            shutil.rmtree(path, ignore_errors=True) if path.is_dir() else path.unlink(missing_ok=True)
            removed.append(path)
    return removed


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


def _decimals_for(name: str, decimals: int | Mapping[str, int], what: str) -> int:
    if isinstance(decimals, int):
        return decimals
    if name in decimals:
        return decimals[name]
    if "*" in decimals:
        return decimals["*"]
    raise ValueError(
        f"No precision stated for {what} {name!r}. Every printed number has a stated precision "
        f"(see README, 'Reproduction contract'): add {name!r} to `decimals`."
    )


def _round_json(obj, key: str, decimals, significant: int | None):
    if isinstance(obj, float):
        if significant is not None:
            return float(f"{obj:.{significant}g}")
        return round(obj, _decimals_for(key, decimals, "metric"))
    if isinstance(obj, dict):
        return {k: _round_json(v, str(k), decimals, significant) for k, v in obj.items()}
    if isinstance(obj, (list, tuple)):
        return [_round_json(v, key, decimals, significant) for v in obj]
    return obj


def write_json(dest: str | Path, obj, decimals: int | Mapping[str, int] | None = None,
               significant: int | None = None) -> Path:
    """Write ``obj`` as sorted, indented JSON with every float at a stated precision.

    ``decimals`` is one number of decimal places for every float, or a mapping from a float's
    (innermost) key to its decimals, with ``"*"`` as an optional default; a float whose key has
    no stated precision raises. ``significant`` (significant digits) is for machine-dependent
    records such as benchmark timings, which are not part of the reproduction contract.
    """
    if (decimals is None) == (significant is None):
        raise TypeError("write_json needs exactly one of `decimals` or `significant`.")
    obj = json.loads(json.dumps(obj, default=_plain))
    rounded = _round_json(obj, "", decimals, significant)
    return write_text(dest, json.dumps(rounded, indent=2, sort_keys=True) + "\n")


def round_table(df: pd.DataFrame, decimals: int | Mapping[str, int]) -> pd.DataFrame:
    """Round every float column of ``df`` to its stated number of decimals (a copy)."""
    out = df.copy()
    for col in out.columns:
        if pd.api.types.is_float_dtype(out[col]):
            out[col] = out[col].round(_decimals_for(str(col), decimals, "column"))
    return out


def _formatted(df: pd.DataFrame, decimals) -> pd.DataFrame:
    out = df.astype(object).copy()
    for col in df.columns:
        if pd.api.types.is_float_dtype(df[col]):
            d = _decimals_for(str(col), decimals, "column")
            out[col] = [("" if pd.isna(v) else f"{v:.{d}f}") for v in df[col]]
    return out


def write_table(df: pd.DataFrame, stem: str | Path, decimals: int | Mapping[str, int],
                caption: str | None = None, index: bool = False) -> pd.DataFrame:
    """Write ``df`` as ``<stem>.csv`` and ``<stem>.md`` with every float at its stated precision.

    ``decimals`` is one number of decimal places for all float columns, or a mapping from column
    name to decimals (``"*"`` as an optional default); a float column without one raises. Returns
    the rounded table, so that a notebook shows exactly the digits that were written.
    """
    stem = Path(stem)
    text = _formatted(df, decimals)
    write_text(stem.with_suffix(".csv"), text.to_csv(index=index, lineterminator="\n"))
    align = ["right" if pd.api.types.is_numeric_dtype(df[c]) and not pd.api.types.is_bool_dtype(df[c])
             else "left" for c in df.columns]
    md = text.to_markdown(index=index, disable_numparse=True,
                          colalign=(["left"] if index else []) + align)
    if caption:
        md = f"{caption}\n\n{md}"
    write_text(stem.with_suffix(".md"), md + "\n")
    return round_table(df, decimals)


def numpy_file_kind(path: str | Path) -> str | None:
    """What ``path`` holds, from its first bytes: ``"npy"``, ``"npz"`` (a zip archive), ``"pickle"``,
    or None (none of these: text, an image, a truncated file...). ``np.load`` itself falls back
    to unpickling an unknown file, and then reports any file as a pickle."""
    with open(path, "rb") as fh:
        head = fh.read(6)
    if head == b"\x93NUMPY":
        return "npy"
    if head[:4] in (b"PK\x03\x04", b"PK\x05\x06"):
        return "npz"
    if head[:1] == b"\x80":
        return "pickle"
    return None


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
