import numpy as np
import pytest
import scipy.sparse as sp

from slics.core import storage


def _codes(seed=0, n=40, m=30, density=0.15):
    rng = np.random.default_rng(seed)
    W = rng.normal(size=(n, m)).astype(np.float32)
    W[rng.random((n, m)) > density] = 0
    return W


def test_formats_match_the_bytes_scipy_and_numpy_store():
    W = _codes()
    n, m = W.shape
    sizes = storage.storage_bytes(np.count_nonzero(W), n, m)
    csr, coo = sp.csr_array(W), sp.coo_array(W)
    assert csr.indices.dtype == np.int32 and csr.indptr.dtype == np.int32
    assert sizes["csr_int32"] == csr.data.nbytes + csr.indices.nbytes + csr.indptr.nbytes
    assert sizes["coo_int32"] == coo.data.nbytes + coo.row.astype(np.int32).nbytes + coo.col.astype(np.int32).nbytes
    small = csr.indices.astype(np.int16)
    assert np.array_equal(small, csr.indices)          # int16 holds every column index
    assert sizes["csr_int16"] == csr.data.nbytes + small.nbytes + csr.indptr.nbytes
    assert sizes["values_only"] == csr.data.nbytes
    assert sizes["dense"] == W.nbytes


def test_int16_indices_only_while_they_fit_and_errors():
    assert "csr_int16" in storage.storage_bytes(5, 3, 32768)
    assert "csr_int16" not in storage.storage_bytes(5, 3, 32769)
    with pytest.raises(ValueError, match="nnz"):
        storage.storage_bytes(7, 2, 3)
    with pytest.raises(ValueError, match="n_rows must be at least 1, got 0"):
        storage.storage_bytes(0, 0, 3)


def test_implied_nonzeros_inverts_storage_bytes():
    n, m, per_row = 1000, 1003, 25
    sizes = storage.storage_bytes(n * per_row, n, m)
    for fmt, implied in storage.implied_nonzeros_per_row(sizes["csr_int32"], n, m).items():
        if fmt == "csr_int32":
            assert implied == pytest.approx(per_row)
    assert storage.implied_nonzeros_per_row(sizes["coo_int32"], n, m)["coo_int32"] == pytest.approx(per_row)


def test_mib_is_binary():
    assert storage.mib(2 ** 20) == 1.0
    assert storage.mib(10_000 * 512 * 4) == 19.53125
