"""Bytes needed to store a matrix of sparse codes, by storage format.

A sparse code must store, for every non-zero, its value AND where it is (its column, and its
row or a row pointer); only a dense array may leave positions implicit. The formats here
(float32 values unless ``value_bytes`` says otherwise):

- ``values_only``: the non-zero values alone, ``nnz * 4`` bytes: not a usable format (the
  positions are lost), but the convention of the first report's Table 2;
- ``csr_int32``: CSR as scipy stores it, int32 column indices and ``n_rows + 1`` row pointers;
- ``csr_int16``: CSR with int16 column indices (valid while ``n_cols <= 32768``);
- ``coo_int32``: COO, an int32 row and an int32 column index per non-zero;
- ``dense``: the full ``n_rows x n_cols`` array.

Row pointers are int32 while ``nnz < 2**31`` and int64 beyond, as in scipy. Sizes in MiB
(``2**20`` bytes) via :func:`mib`: the report's "MB" are MiB (see ``slics.sections.ista_clip``).
"""

from __future__ import annotations

from ..utils.validation import check_int, check_positive

MIB = 2 ** 20
FORMATS = ("values_only", "csr_int32", "csr_int16", "coo_int32", "dense")
INT16_MAX_COLUMNS = 2 ** 15


def mib(n_bytes) -> float:
    """Bytes in MiB (``2**20`` bytes)."""
    return check_positive(n_bytes, "n_bytes", allow_zero=True) / MIB


def _check_counts(nnz: int, n_rows: int, n_cols: int) -> tuple[int, int, int]:
    """Counts as ints; fractional or negative counts are errors, not truncated."""
    n_rows, n_cols = check_int(n_rows, "n_rows", minimum=1), check_int(n_cols, "n_cols", minimum=1)
    nnz = check_int(nnz, "nnz", minimum=0)
    if not nnz <= n_rows * n_cols:
        raise ValueError(f"nnz must be between 0 and n_rows * n_cols = {n_rows * n_cols}, got {nnz}.")
    return nnz, n_rows, n_cols


def storage_bytes(nnz: int, n_rows: int, n_cols: int, value_bytes: int = 4) -> dict[str, int]:
    """Bytes of an ``n_rows x n_cols`` matrix with ``nnz`` non-zeros in every format of :data:`FORMATS`.

    Parameters
    ----------
    nnz : int
        Number of stored non-zeros.
    n_rows, n_cols : int
        Shape of the matrix (rows are samples, columns concepts).
    value_bytes : int, default 4
        Bytes per stored value (4 for float32).

    Returns
    -------
    dict
        Format name -> bytes; ``csr_int16`` is absent when ``n_cols > 32768``.
    """
    nnz, n_rows, n_cols = _check_counts(nnz, n_rows, n_cols)
    value_bytes = check_int(value_bytes, "value_bytes", minimum=1)
    pointers = (n_rows + 1) * (4 if nnz < 2 ** 31 else 8)
    sizes = {
        "values_only": nnz * value_bytes,
        "csr_int32": nnz * (value_bytes + 4) + pointers,
        "csr_int16": nnz * (value_bytes + 2) + pointers,
        "coo_int32": nnz * (value_bytes + 8),
        "dense": n_rows * n_cols * value_bytes,
    }
    if n_cols > INT16_MAX_COLUMNS:
        del sizes["csr_int16"]
    return sizes


def implied_nonzeros_per_row(size_bytes: float, n_rows: int, n_cols: int, value_bytes: int = 4) -> dict[str, float]:
    """Mean non-zeros per row that a stated size implies in each sparse format (inverts :func:`storage_bytes`)."""
    size_bytes = check_positive(size_bytes, "size_bytes", allow_zero=True)
    sizes0 = storage_bytes(0, n_rows, n_cols, value_bytes)
    sizes1 = storage_bytes(1, n_rows, n_cols, value_bytes)
    return {fmt: (size_bytes - sizes0[fmt]) / (sizes1[fmt] - sizes0[fmt]) / n_rows
            for fmt in sizes0 if fmt != "dense"}

