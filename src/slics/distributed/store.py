"""Chunked stores of embeddings on disk, read as dask arrays and written atomically.

Two formats, both one array of rows:

* **zarr** (a folder ``NAME.zarr``, or any folder holding a zarr array): chunked (written raw
  by default: see :func:`save_store`), readable by any zarr client; the row chunks become dask's.
* **a folder of .npy shards** (``part-00000.npy``, ``part-00001.npy``, ... in natural name order):
  each shard a 2-D array with the same columns and dtype, one dask chunk each; what a pipeline
  that embeds images in batches writes most easily.

A single ``.npy`` file is read too (memory-mapped, cut into row chunks). Only shapes and dtypes
are read when a store is opened; the workers read the rows (a shared file system, or the same
path on every worker, is assumed). :func:`save_store` writes to a staging folder beside the
destination and renames it into place when every chunk is written: a failure or an interrupt
leaves the previous contents (or nothing), never a half-written store.
"""

from __future__ import annotations

import os
import re
import sys
from pathlib import Path

import numpy as np

from ..core.nnls import ROW_BLOCK
from ..utils.io import atomic_dir
from .blocks import dask_modules

SHARD = "part-{:05d}.npy"
DEFAULT_CHUNK_BYTES = 64 << 20      # rows per chunk of a single .npy file: about 64 MiB


def _natural(path: Path):
    return [int(t) if t.isdigit() else t for t in re.split(r"(\d+)", path.name)]


def _is_zarr(path: Path) -> bool:
    return path.suffix == ".zarr" or (path / "zarr.json").is_file() or (path / ".zarray").is_file()


def is_store(path) -> bool:
    """Whether ``path`` names a chunked store (a ``.zarr`` path or a folder), not a single file."""
    p = Path(path)
    return p.suffix == ".zarr" or p.is_dir()


def _header(path: Path, what: str) -> tuple[tuple, np.dtype]:
    try:
        arr = np.load(path, mmap_mode="r", allow_pickle=False)
    except (ValueError, OSError, EOFError) as exc:
        raise ValueError(f"{what} shard {str(path)!r} is not a plain .npy array: {exc}") from None
    return arr.shape, arr.dtype


def _load_rows(path: str, start: int, stop: int) -> np.ndarray:
    return np.array(np.load(path, mmap_mode="r", allow_pickle=False)[start:stop])


def _from_npy(path: Path, what: str, rows: int | None):
    dask, da = dask_modules()
    shape, dtype = _header(path, what)
    _check_shape(shape, dtype, path, what)
    # whole blocks of 192 rows: the NNLS codes are then bitwise the in-memory ones (row_products)
    step = rows or max(1, DEFAULT_CHUNK_BYTES // max(1, shape[1] * dtype.itemsize) // ROW_BLOCK) * ROW_BLOCK
    load = dask.delayed(_load_rows, pure=True)
    return [da.from_delayed(load(str(path), s, min(s + step, shape[0])), shape=(min(step, shape[0] - s), shape[1]),
                            dtype=dtype) for s in range(0, shape[0], step)]


def _raw_zarr(path: Path, what: str):
    """The zarr array at ``path`` as a dask array of its :func:`raw_chunks`, or None when zarr
    must read it.

    One read from the file into the block: through zarr the same 100 MB chunk costs about 3.5x as
    long (0.10 s against 0.03 s from the page cache, measured), which on memory-bound workers is
    most of what does not scale. The reads are a blockwise layer, which dask fuses with the
    blockwise work on the rows (:func:`slics.distributed.blocks.map_rows`).
    """
    chunks = raw_chunks(path, what)
    if chunks is None:
        return None
    _, da = dask_modules()
    return da.from_array(chunks, chunks=(chunks.step, chunks.shape[1]), asarray=False, lock=False, fancy=False,
                         inline_array=True, meta=np.empty((0, 0), chunks.dtype), name=f"zarr-raw-{_token(path)}")


def raw_chunks(path, what: str = "embeddings"):
    """The rows of the zarr array at ``path`` as :class:`RawChunks`, when zarr stores its chunks as
    raw bytes in this machine's byte order (what :func:`save_store` writes by default: zarr 3, no
    compressor or filter, row chunks spanning every column, default chunk keys); else None."""
    import zarr
    from zarr.codecs import BytesCodec

    path = Path(path)
    arr = zarr.open_array(str(path), mode="r")
    meta = arr.metadata
    if (meta.zarr_format != 3 or arr.ndim != 2 or arr.compressors or arr.filters or meta.storage_transformers
            or not isinstance(arr.serializer, BytesCodec) or arr.chunks[1] != arr.shape[1]
            or (arr.serializer.endian is not None and arr.serializer.endian.value != sys.byteorder)):
        return None
    _check_shape(arr.shape, arr.dtype, path, what)
    key = meta.encode_chunk_key((987654321, 0)).replace("987654321", "{}")     # a chunk's file, by row chunk
    last = -(-arr.shape[0] // arr.chunks[0]) - 1
    if any(key.format(i) != meta.encode_chunk_key((i, 0)) for i in (0, last)):
        return None
    return RawChunks(str(path), arr.shape, arr.chunks[0], np.dtype(arr.dtype).str, meta.fill_value, key)


def _token(path: Path) -> str:
    """The store's path and the time its metadata was written: a rewritten store gets new keys."""
    from dask.base import tokenize

    return tokenize(str(path.resolve()), (path / "zarr.json").stat().st_mtime_ns)


class RawChunks:
    """Rows of a raw zarr-3 array, read from its chunk files (``[rows, columns]`` slicing only)."""

    def __init__(self, path: str, shape: tuple, step: int, dtype: str, fill, key: str):
        self.path, self.shape, self.step, self.dtype = path, tuple(shape), int(step), np.dtype(dtype)
        self.fill, self.key, self.ndim = fill, key, 2

    def __getitem__(self, index):
        rows, cols = index if isinstance(index, tuple) else (index, slice(None))
        if isinstance(rows, (int, np.integer)):
            return self[slice(int(rows), int(rows) + 1 or None), cols][0]
        wanted = range(*rows.indices(self.shape[0]))
        if not wanted:
            return np.empty((0, self.shape[1]), self.dtype)[:, cols]
        first, last = min(wanted[0], wanted[-1]) // self.step, max(wanted[0], wanted[-1]) // self.step
        block = np.concatenate([self._chunk(i) for i in range(first, last + 1)]) if last > first else self._chunk(first)
        if wanted.step == 1 and wanted[0] == first * self.step and len(wanted) == len(block):
            return block[:, cols]           # whole chunks: what dask asks for
        return block[np.asarray(wanted) - first * self.step][:, cols]

    def _chunk(self, i: int) -> np.ndarray:
        rows = min(self.step, self.shape[0] - i * self.step)
        return _read_raw_chunk(f"{self.path}/{self.key.format(i)}", rows, (self.step, self.shape[1]), self.dtype,
                               self.fill)


def _read_raw_chunk(path: str, rows: int, chunk_shape: tuple, dtype, fill) -> np.ndarray:
    """The first ``rows`` rows of one raw zarr chunk file (zarr writes edge chunks whole); a chunk
    that zarr did not write (all of it the fill value) is the fill value."""
    dtype = np.dtype(dtype)
    expected = int(np.prod(chunk_shape)) * dtype.itemsize
    try:
        with open(path, "rb") as f:
            size = os.fstat(f.fileno()).st_size
            if size != expected:
                raise ValueError(f"zarr chunk {path!r} holds {size} bytes, not the {expected} of a raw "
                                 f"{chunk_shape} {dtype} chunk: the store is damaged; write it again.")
            block = np.fromfile(f, dtype=dtype, count=rows * chunk_shape[1])
    except FileNotFoundError:
        return np.full((rows, chunk_shape[1]), fill, dtype)
    return block.reshape(rows, chunk_shape[1])


def _check_shape(shape, dtype, path: Path, what: str) -> None:
    if len(shape) != 2 or shape[0] == 0 or shape[1] == 0:
        raise ValueError(f"{what} {str(path)!r} must hold a non-empty 2-D array (rows, features), got shape {shape}.")
    if not np.issubdtype(dtype, np.number) or np.issubdtype(dtype, np.complexfloating):
        raise ValueError(f"{what} {str(path)!r} must hold real numbers, got dtype {dtype}.")


def open_embeddings(path, *, rows_per_chunk: int | None = None, what: str = "embeddings"):
    """A chunked store (zarr, a folder of ``.npy`` shards, or one ``.npy``) as a lazy dask array.

    Parameters
    ----------
    path : str or Path
    rows_per_chunk : int, optional
        Rechunk to this many rows per block (default: the store's own chunks; a single ``.npy``
        is cut into blocks of about 64 MiB, a whole number of 192-row blocks: see ``docs/scaling.md``).
    what : str
        The name used in error messages.

    Returns
    -------
    dask array of shape (n, d), its columns in one chunk.
    """
    from ..utils.validation import check_int

    _, da = dask_modules()
    p = Path(path)
    if rows_per_chunk is not None:
        rows_per_chunk = check_int(rows_per_chunk, "rows_per_chunk", minimum=1)
    if not p.exists():
        raise FileNotFoundError(f"{what} store {str(p)!r} does not exist.")
    if p.is_dir() and _is_zarr(p):
        X = _raw_zarr(p, what)
        if X is None:
            X = da.from_zarr(str(p), inline_array=True)      # blockwise reads, fused as _raw_zarr's
            _check_shape(X.shape, X.dtype, p, what)
    elif p.is_dir():
        shards = sorted(p.glob("*.npy"), key=_natural)
        if not shards:
            raise ValueError(f"{what} folder {str(p)!r} holds neither a zarr array nor .npy shards.")
        parts = [_from_npy(s, what, None) for s in shards]
        widths = {part[0].shape[1] for part in parts}
        dtypes = {part[0].dtype for part in parts}
        if len(widths) > 1 or len(dtypes) > 1:
            raise ValueError(f"{what} shards in {str(p)!r} differ in columns {sorted(widths)} or dtype "
                             f"{sorted(map(str, dtypes))}; every shard must have the same.")
        X = da.concatenate([c for part in parts for c in part], axis=0)
    elif p.suffix == ".npy":
        X = da.concatenate(_from_npy(p, what, rows_per_chunk), axis=0)
    else:
        raise ValueError(f"{what} {str(p)!r}: a store is a zarr folder, a folder of .npy shards or one .npy file.")
    X = X.rechunk({1: -1})
    return X.rechunk({0: rows_per_chunk}) if rows_per_chunk else X


def _save_shard(block: np.ndarray, path: str) -> int:
    np.save(path, block, allow_pickle=False)
    return len(block)


def save_store(X, path, *, compressors=None) -> Path:
    """Compute the dask array ``X`` chunk by chunk and write it as a store, atomically.

    ``path`` ending in ``.zarr`` writes zarr (row chunks as ``X``'s, regular); any other path a
    folder of ``.npy`` shards, one per row chunk. An existing store at ``path`` is replaced only
    once every chunk is written.

    Parameters
    ----------
    X : dask array
    path : str or Path
    compressors : zarr codecs, "auto" or None, default None
        zarr only: the chunks' compression, as zarr's ``compressors``. None writes them raw:
        embeddings barely compress (their mantissas are noise), and decompressing costs more
        than reading the bytes it saves. Measured on unit-norm float32 rows of dimension 512
        (``benchmarks/bench_dask.py``'s): zarr's default ("auto", zstd) saved 7.5 % of the
        bytes and read 2.7x slower; blosc lz4 with bit shuffle saved 12 % and read 2x slower.

    Returns
    -------
    Path
    """
    dask, da = dask_modules()
    dest = Path(path)
    if dest.exists() and not dest.is_dir():
        raise ValueError(f"output {str(dest)!r} is a file; a store is written as a folder (NAME.zarr or a folder "
                         f"of .npy shards).")
    if compressors is not None and dest.suffix != ".zarr":
        raise ValueError(f"compressors applies to zarr stores only, and {str(dest)!r} is a folder of .npy shards; "
                         f"name it NAME.zarr, or leave compressors at None.")
    with atomic_dir(dest) as staging:
        X = X.rechunk({i: -1 for i in range(1, X.ndim)})
        blocks = X.to_delayed().reshape(-1)
        if dest.suffix == ".zarr":
            import zarr

            rows = X.chunks[0]
            if len(set(rows[:-1])) > 1 or (len(rows) > 1 and rows[-1] > rows[0]):
                X = X.rechunk({0: rows[0]})      # zarr needs regular chunks
                blocks = X.to_delayed().reshape(-1)
            try:
                zarr.create_array(str(staging), shape=X.shape, chunks=(X.chunks[0][0], *X.shape[1:]), dtype=X.dtype,
                                  compressors=compressors, overwrite=True)
            except (TypeError, ValueError) as exc:
                raise ValueError(f"compressors must be None, 'auto' or a list of zarr codecs (e.g. "
                                 f"[zarr.codecs.ZstdCodec()]), got {compressors!r} ({exc}).") from None
            write = dask.delayed(_write_rows, pure=False)
            starts = np.concatenate([[0], np.cumsum(X.chunks[0])[:-1]])
            tasks = [write(b, str(staging), int(start)) for b, start in zip(blocks, starts)]
        else:
            save = dask.delayed(_save_shard, pure=False)
            tasks = [save(b, str(staging / SHARD.format(i))) for i, b in enumerate(blocks)]
        _compute_all(dask, tasks)
    return dest


def _write_rows(block, path: str, start: int) -> None:
    import zarr

    zarr.open_array(path, mode="r+")[start:start + block.shape[0]] = block


def _compute_all(dask, tasks) -> None:
    """Run every task; on a distributed client wait for all of them, failed or not, before raising,
    so that no block is still being written when the staging folder is removed."""
    try:
        from distributed import get_client, wait

        client = get_client()
    except (ImportError, ValueError):
        dask.compute(*tasks)
        return
    futures = client.compute(list(tasks))
    wait(futures)
    client.gather(futures)
