"""Storage sizes at their boundaries (written from the survivors of `make mutation`)."""

import pytest

from slics.core import storage


def test_every_format_by_its_formula():
    # 3 non-zeros in a 2 x 4 matrix, 4-byte values: int32 pointers (2 + 1) * 4 = 12 bytes
    assert storage.storage_bytes(3, 2, 4) == {"values_only": 12, "csr_int32": 3 * 8 + 12, "csr_int16": 3 * 6 + 12,
                                              "coo_int32": 3 * 12, "dense": 32}
    assert storage.storage_bytes(3, 2, 4, value_bytes=8) == {"values_only": 24, "csr_int32": 3 * 12 + 12,
                                                             "csr_int16": 3 * 10 + 12, "coo_int32": 3 * 16,
                                                             "dense": 64}


def test_row_pointers_widen_at_two_to_the_31_non_zeros():
    n_rows, n_cols = 2 ** 16, 2 ** 16
    below = storage.storage_bytes(2 ** 31 - 1, n_rows, n_cols)
    at = storage.storage_bytes(2 ** 31, n_rows, n_cols)
    assert below["csr_int32"] - (2 ** 31 - 1) * 8 == (n_rows + 1) * 4
    assert at["csr_int32"] - 2 ** 31 * 8 == (n_rows + 1) * 8
    assert "csr_int16" not in at                        # 65536 columns do not fit int16 indices


def test_bounds_are_inclusive():
    assert storage.storage_bytes(0, 1, 1)["dense"] == 4
    assert storage.storage_bytes(6, 2, 3)["values_only"] == 24          # a full matrix
    assert storage.storage_bytes(1, 1, 1, value_bytes=1)["values_only"] == 1
    assert "csr_int16" in storage.storage_bytes(1, 1, storage.INT16_MAX_COLUMNS)
    with pytest.raises(ValueError, match=r"nnz must be between 0 and n_rows \* n_cols = 6, got 7"):
        storage.storage_bytes(7, 2, 3)
    with pytest.raises(ValueError, match="n_cols must be at least 1, got 0"):
        storage.storage_bytes(0, 1, 0)
    with pytest.raises(ValueError, match="value_bytes must be at least 1, got 0"):
        storage.storage_bytes(0, 1, 1, value_bytes=0)


def test_implied_nonzeros_per_row_every_sparse_format():
    n, m, per_row, vb = 10, 7, 2.5, 8
    nnz = int(n * per_row)
    sizes = storage.storage_bytes(nnz, n, m, vb)
    for fmt in ("values_only", "csr_int32", "csr_int16", "coo_int32"):
        implied = storage.implied_nonzeros_per_row(sizes[fmt], n, m, vb)
        assert set(implied) == {"values_only", "csr_int32", "csr_int16", "coo_int32"}
        assert implied[fmt] == pytest.approx(per_row)
    assert storage.implied_nonzeros_per_row(0, n, m)["values_only"] == 0.0
    wide = storage.implied_nonzeros_per_row(storage.storage_bytes(20, 10, 40_000)["csr_int32"], 10, 40_000)
    assert set(wide) == {"values_only", "csr_int32", "coo_int32"} and wide["csr_int32"] == pytest.approx(2.0)


def test_mib_of_zero_and_fractions():
    assert storage.mib(0) == 0.0
    assert storage.mib(2 ** 19) == 0.5
    assert storage.MIB == 2 ** 20 and storage.FORMATS == ("values_only", "csr_int32", "csr_int16", "coo_int32",
                                                          "dense")
