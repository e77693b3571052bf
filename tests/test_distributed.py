"""slics on Dask (:mod:`slics.distributed`), on a real cluster of two worker processes.

Every lazy result is compared with the in-memory function on the same rows. The solvers are row
by row, but each block's products ``X_block @ D.T`` come from BLAS, whose kernels compute rows in
tiles (OpenBLAS, x86, float64: 2 to 16 rows) and a row past a call's last full tile in another
summation order (measured here: the last row of an odd-sized float64 product; float32: rows past
a multiple of 12). So coding is bitwise equal to one in-memory call when the block boundaries
fall where that call's tiles do (blocks of a multiple of 192 rows, tested with 384), and within
a few units in the last place otherwise (tested with blocks of 7, 333 and 1 rows: 1e-12 on
codes of unit rows; measured at most 1.4e-14). ``lasso(method="auto")`` depends on its batch
(FISTA warm starts chosen from its first rows): the same optimum, to the duality-gap tolerance.
Retrieval pads each shard to its place in the pool, so its scores are bitwise those of one
product at any shard sizes.
"""

from __future__ import annotations

import re
import warnings

import numpy as np
import pandas as pd
import pytest

da = pytest.importorskip("dask.array")
distributed = pytest.importorskip("distributed")

from slics import SLiCS, SpLiCE, TokenQuantiser, lasso, nnls_batch  # noqa: E402
from slics.cli import main  # noqa: E402
from slics.core.objectives import lasso_objective  # noqa: E402
from slics.core.pq import QuantisedPool  # noqa: E402
from slics.core.splice import nonneg_lasso  # noqa: E402
from slics.distributed import open_embeddings, quantised_top_k, save_store, sharded_top_k  # noqa: E402
from slics.distributed.blocks import map_rows  # noqa: E402
from slics.retrieval import filtered_retrieval, top_k  # noqa: E402
from slics.utils.threads import single_thread_blas  # noqa: E402


@pytest.fixture(scope="module")
def client():
    from slics.distributed.cluster import connect

    with connect(workers=2) as c:
        yield c


THREAD_VARIABLES = ("OMP_NUM_THREADS", "MKL_NUM_THREADS", "OPENBLAS_NUM_THREADS", "MALLOC_TRIM_THRESHOLD_")


def test_a_local_cluster_leaves_the_callers_environment_as_it_was(monkeypatch):
    # distributed's nannies write OMP_NUM_THREADS=1 (and more) into the process that starts them, so
    # every notebook kernel or stage started later ran on one BLAS thread; the workers still get them
    import os

    from slics.distributed.cluster import connect

    monkeypatch.setenv("MKL_NUM_THREADS", "2")            # one set by the caller, the others unset
    for key in ("OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS", "MALLOC_TRIM_THRESHOLD_"):
        monkeypatch.delenv(key, raising=False)
    before = dict(os.environ)
    with connect(workers=1) as c:
        assert dict(os.environ) == before
        seen = next(iter(c.run(lambda: {k: os.environ.get(k) for k in THREAD_VARIABLES}).values()))
    assert dict(os.environ) == before
    assert seen["OMP_NUM_THREADS"] == "1" and seen["OPENBLAS_NUM_THREADS"] == "1"


def test_the_local_workers_run_without_the_profiler_and_the_callers_config_is_kept(client):
    # the profiler sampled the task thread every 10 ms on each worker's event loop: CPU taken from the
    # tasks on a machine whose cores are all workers
    import dask

    from slics.distributed.cluster import LOCAL_CLUSTER_CONFIG

    def settings(dask_worker):
        import dask

        return ("profile" in dask_worker.periodic_callbacks,
                {key: dask.config.get(key) for key in LOCAL_CLUSTER_CONFIG})

    assert dask.config.get("distributed.worker.profile.enabled") is True       # distributed's default, here
    for profiling, config in client.run(settings).values():
        assert not profiling and config == LOCAL_CLUSTER_CONFIG
    assert dask.config.get("distributed.admin.tick.interval") != LOCAL_CLUSTER_CONFIG["distributed.admin.tick.interval"]


@pytest.fixture(scope="module")
def data():
    rng = np.random.default_rng(0)
    n, d, C = 1500, 32, 5
    X = rng.standard_normal((n, d))
    X /= np.linalg.norm(X, axis=1, keepdims=True)
    Y = rng.random((n, C)) < 0.35
    Y[np.arange(n), rng.integers(0, C, n)] = True
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        model = SLiCS(3, n_iter=2).fit(X, Y)
    return X, Y, model


def lazy(X, rows=384):      # a multiple of 192: BLAS tiles fall as in one in-memory call
    return da.from_array(X, chunks=(rows, -1))


# --------------------------------------------------------------------------- coding
def test_estimators_and_solvers_on_workers_equal_in_memory(client, data):
    X, Y, model = data
    Xd, D = lazy(X), model.dictionary_
    pairs = {
        "transform": (model.transform(X, Y), model.transform(Xd, Y)),
        "components": (model.components(X, Y), model.components(Xd, lazy(Y))),
        "project": (model.project(X, 1), model.project(Xd, 1)),
        "nnls_batch": (nnls_batch(D, X, np.repeat(Y, 3, axis=1)), nnls_batch(D, Xd, np.repeat(Y, 3, axis=1))),
        "lasso cd": (lasso(X, D, 0.05, method="cd"), lasso(Xd, D, 0.05, method="cd")),
        "nonneg_lasso": (nonneg_lasso(X, D, 0.05), nonneg_lasso(Xd, D, 0.05)),
    }
    splice = SpLiCE(0.1).fit(np.random.default_rng(3).standard_normal((60, X.shape[1])))
    pairs["SpLiCE"] = (splice.transform(X), splice.transform(Xd))
    for name, (mem, lz) in pairs.items():
        assert isinstance(lz, da.Array) and lz.numblocks[0] == 4, name
        got = lz.compute()
        assert got.shape == mem.shape and got.dtype == mem.dtype, name
        assert np.array_equal(got, mem), f"{name}: differs by {np.abs(got - mem).max():.3g}"


def test_per_row_arguments_of_the_wrong_length_are_named(data):
    X, Y, model = data
    with pytest.raises(ValueError, match=re.escape("support has 10 rows but X has 1500; they must describe")):
        nnls_batch(model.dictionary_, lazy(X), np.ones((10, model.dictionary_.shape[0]), bool))
    with pytest.raises(ValueError, match=re.escape("Y has 10 rows but X has 1500; they must describe")):
        model.components(lazy(X), Y[:10])


def test_unaligned_blocks_differ_at_most_in_the_last_bits(client, data):
    X, Y, model = data
    D = model.dictionary_
    Xd = da.from_array(X, chunks=((7, 333, 1, 800, 358, 1), -1))     # odd blocks, 1-row blocks
    splice = SpLiCE(0.1).fit(np.random.default_rng(3).standard_normal((60, X.shape[1])))
    for name, f in {"transform": lambda A: model.transform(A, Y), "lasso cd": lambda A: lasso(A, D, 0.05, method="cd"),
                    "nnls active_set": lambda A: nnls_batch(D, A, method="active_set"),
                    "SpLiCE": splice.transform}.items():
        np.testing.assert_allclose(f(Xd).compute(), f(X), rtol=0, atol=1e-12, err_msg=name)


def test_lasso_auto_per_block_reaches_the_same_optimum(client, data):
    X, _, model = data
    D, lam, tol = model.dictionary_, 0.002, 1e-8
    mem = lasso(X, D, lam, tol=tol)
    got = lasso(lazy(X, 300), D, lam, tol=tol).compute()
    f_mem, f_got = lasso_objective(X, D, mem, lam), lasso_objective(X, D, got, lam)
    assert np.all(np.abs(f_got - f_mem) <= 2 * tol * np.maximum(f_mem, f_got))


def test_model_is_broadcast_once_not_embedded_per_task(client, data):
    X, Y, model = data
    W = model.transform(lazy(X, 100), Y)
    assert not [k for k in W.__dask_graph__().keys() if str(k).startswith("SLiCS-")]     # not a task
    held = {k: v for k, v in client.who_has().items() if str(k).startswith("SLiCS-")}
    assert held and all(len(v) == 2 for v in held.values())      # a scattered copy on each worker


def test_token_quantiser_codes_and_quantised_top_k(client):
    rng = np.random.default_rng(2)
    X = rng.standard_normal((3000, 16))
    q = TokenQuantiser(n_tokens=4, codebook_size=16, random_state=0).fit(X[:1000])
    codes = q.transform(lazy(X, 700))
    mem = q.transform(X)
    assert np.array_equal(codes.compute(), mem) and codes.dtype == mem.dtype
    mem[11] = mem[2900]                                      # an exact tie across shards
    Z = np.vstack([q.inverse_transform(mem[[2900]]), rng.standard_normal((40, 16))])
    index, scores = quantised_top_k(Z, lazy(mem, 700), q.codebook_, 15)
    pool = QuantisedPool(mem, q.codebook_)
    assert np.array_equal(index, pool.top_k(Z, 15))
    assert np.array_equal(scores, np.take_along_axis(pool.scores(Z), index, axis=1))
    assert index[0, 0] == 11 and 2900 in index[0, :3]


# --------------------------------------------------------------------------- retrieval
def test_sharded_top_k_is_exactly_top_k_with_ties(client):
    rng = np.random.default_rng(1)
    P, Q = rng.standard_normal((4000, 24)), rng.standard_normal((120, 24))
    P[[10, 3999]] = P[2000], 4 * P[2000]      # equal cosines in three shards (a power of two: exactly)
    Q[0] = P[2000]
    index, scores = sharded_top_k(Q, lazy(P, 700), 25)
    assert np.array_equal(index, top_k(Q, P, 25))
    assert list(index[0, :3]) == [10, 2000, 3999]
    Pn = P / np.linalg.norm(P, axis=1, keepdims=True)
    Qn = Q / np.linalg.norm(Q, axis=1, keepdims=True)
    assert np.allclose(scores, np.einsum("qd,qkd->qk", Qn, Pn[index]), atol=1e-14)
    assert np.array_equal(top_k(Q, lazy(P, 700), 4000), top_k(Q, P, 4000))       # k = n: every candidate


def test_sharded_scores_are_bitwise_those_of_one_product_on_any_shards(client):
    """Shards of any size (1-row ones: a matrix-vector product; unaligned ones: rows past a BLAS
    kernel's last full tile) give the scores of one product over the whole pool, so exact ties
    across shards fall by index as in memory."""
    rng = np.random.default_rng(6)
    P, Q = rng.standard_normal((4001, 512)), rng.standard_normal((333, 512))
    P[[1033, 4000]] = P[3], 2 * P[3]                         # the same direction in 1-row shards
    Q[[0, 332]] = P[3] + 0.1 * rng.standard_normal((2, 512))
    pool = da.from_array(P, chunks=((700, 333, 1, 1967, 999, 1), -1))
    Qn, Pn = Q / np.linalg.norm(Q, axis=1, keepdims=True), P / np.linalg.norm(P, axis=1, keepdims=True)
    with single_thread_blas():                                # the reference: one BLAS thread
        S = Qn[:100] @ Pn.T, Qn[100:200] @ Pn.T, Qn[200:300] @ Pn.T, Qn[300:] @ Pn.T
        mem = top_k(Q, P, 30, block=100)
    index, scores = sharded_top_k(Q, pool, 30, block=100)
    assert np.array_equal(index, mem)
    assert np.array_equal(scores, np.take_along_axis(np.vstack(S), index, axis=1))
    # the three equal directions come first; row 4000, past the pool's last full tile, scores a
    # last bit apart from the others in memory too, and the shards reproduce that bit
    assert set(index[0, :3]) == set(index[332, :3]) == {3, 1033, 4000}


def test_sharded_scores_are_the_pool_block_products_across_block_boundaries(client):
    """Past one block of POOL_BLOCK rows, every score is that of the product over its pool block
    (the documented computation, written out here), whichever shard holds the row."""
    from slics.core.retrieval import POOL_BLOCK

    rng = np.random.default_rng(8)
    n = 2 * POOL_BLOCK + 777
    P, Q = rng.standard_normal((n, 24)), rng.standard_normal((70, 24))
    P[[POOL_BLOCK + 1, n - 1]] = P[10], 3 * P[10]               # exact ties in other blocks and shards
    Q[0] = P[10] + 0.05 * rng.standard_normal(24)
    chunks = (1, POOL_BLOCK - 1, 2, 3000, 1000)
    pool = da.from_array(P, chunks=((*chunks, n - sum(chunks)), -1))
    Qn, Pn = Q / np.linalg.norm(Q, axis=1, keepdims=True), P / np.linalg.norm(P, axis=1, keepdims=True)
    with single_thread_blas():
        S = np.hstack([Qn @ Pn[s:s + POOL_BLOCK].T for s in range(0, n, POOL_BLOCK)])
        mem = top_k(Q, P, 25, block=70)
    index, scores = sharded_top_k(Q, pool, 25, block=70)
    assert np.array_equal(index, mem)
    assert np.array_equal(scores, np.take_along_axis(S, index, axis=1))
    assert set(index[0, :3]) == {10, POOL_BLOCK + 1, n - 1}


def test_faiss_backend_agrees(client):
    pytest.importorskip("faiss")
    rng = np.random.default_rng(4)
    P, Q = rng.standard_normal((3000, 32)), rng.standard_normal((50, 32))
    index, scores = sharded_top_k(Q, lazy(P, 700), 20, backend="faiss")
    exact, exact_scores = sharded_top_k(Q, lazy(P, 700), 20)
    assert np.abs(scores - exact_scores).max() < 1e-5
    assert np.array_equal(index, exact)


def test_filtered_retrieval_on_a_sharded_pool_equals_in_memory(client, data):
    X, Y, model = data
    q, p = slice(0, 60), slice(60, None)
    for transform_pool in (None, model.project):
        mem = filtered_retrieval(X[q], X[p], Y[q], Y[p], transform_query=model.project,
                                 transform_pool=transform_pool, k=10)
        got = filtered_retrieval(X[q], lazy(X[p], 500), Y[q], Y[p], transform_query=model.project,
                                 transform_pool=transform_pool, k=10)
        pd.testing.assert_frame_equal(got, mem)


# --------------------------------------------------------------------------- stores
def test_stores_read_back_and_failed_writes_leave_nothing(client, tmp_path):
    X = np.random.default_rng(5).standard_normal((1000, 8)).astype(np.float32)
    for name in ("a.zarr", "shards"):
        out = save_store(lazy(X, 300), tmp_path / name)
        back = open_embeddings(out)
        assert back.chunks[0] == (300, 300, 300, 100) and np.array_equal(back.compute(), X)
    np.save(tmp_path / "one.npy", X)
    assert np.array_equal(open_embeddings(tmp_path / "one.npy", rows_per_chunk=128).compute(), X)
    (tmp_path / "odd").mkdir()
    np.save(tmp_path / "odd" / "part-1.npy", X[:10])
    np.save(tmp_path / "odd" / "part-2.npy", X[:10, :4])
    with pytest.raises(ValueError, match="differ in columns"):
        open_embeddings(tmp_path / "odd")
    with pytest.raises(FileNotFoundError, match="does not exist"):
        open_embeddings(tmp_path / "missing.zarr")
    for name in ("bad.zarr", "bad"):
        with pytest.raises(ValueError, match="block 2 fails"):
            save_store(map_rows(_fail_third, lazy(X, 300), tail=(8,), dtype=np.float32), tmp_path / name)
        assert not (tmp_path / name).exists()
    assert sorted(p.name for p in tmp_path.iterdir()) == ["a.zarr", "odd", "one.npy", "shards"]


def test_zarr_stores_are_written_raw_unless_compressors_are_given(client, tmp_path):
    import zarr

    X = np.random.default_rng(6).standard_normal((700, 16)).astype(np.float32)
    for compressors, codecs in ((None, ()), ("auto", ("zstd",))):
        out = save_store(lazy(X, 300), tmp_path / f"{compressors}.zarr", compressors=compressors)
        arr = zarr.open_array(str(out), mode="r")
        assert tuple(type(c).__name__.removesuffix("Codec").lower() for c in arr.compressors) == codecs
        assert np.array_equal(open_embeddings(out).compute(), X)
    raw, zstd = (sum(f.stat().st_size for f in (tmp_path / f"{c}.zarr").rglob("c/**/*") if f.is_file())
                 for c in (None, "auto"))
    assert raw == 3 * 300 * X[0].nbytes and zstd < raw        # zarr stores the last chunk whole
    for name, compressors, match in (("bad.zarr", "zstd", "compressors must be None, 'auto' or a list of zarr codecs"),
                                     ("shards", "auto", "compressors applies to zarr stores only")):
        with pytest.raises(ValueError, match=match):
            save_store(lazy(X, 300), tmp_path / name, compressors=compressors)
        assert not (tmp_path / name).exists()


@pytest.mark.parametrize("dtype", [np.float32, np.float64, np.uint8])
@pytest.mark.parametrize("layout", ["raw", "zstd", "v2", "big-endian", "column chunks"])
def test_zarr_stores_read_as_zarr_reads_them(tmp_path, dtype, layout):
    """Raw zarr-3 chunks in this machine's byte order are read straight from their files
    (store._raw_zarr); every other layout through zarr. Either way the rows are zarr's own, with
    an edge chunk, a chunk zarr never wrote (all fill value) and a non-zero fill value."""
    import sys

    import zarr

    from slics.distributed.store import _raw_zarr

    fill = 7 if np.dtype(dtype).kind == "u" else np.nan
    X = (np.random.default_rng(7).random((1003, 5)) * 100).astype(dtype)
    X[300:600] = fill                          # chunk 1 is all fill value: zarr writes no file for it
    other = "big" if sys.byteorder == "little" else "little"
    kw = {"zstd": {"compressors": "auto"}, "v2": {"zarr_format": 2, "compressors": None},
          "big-endian": {"compressors": None, "serializer": zarr.codecs.BytesCodec(endian=other)}}
    chunks = (300, 2) if layout == "column chunks" else (300, 5)
    zarr.create_array(str(tmp_path / "s.zarr"), shape=X.shape, chunks=chunks, dtype=X.dtype, fill_value=fill,
                      **kw.get(layout, {"compressors": None}))[:] = X
    direct = _raw_zarr(tmp_path / "s.zarr", "pool") is not None
    assert direct == (layout == "raw" or (layout == "big-endian" and X.itemsize == 1))
    if layout == "raw":
        assert not (tmp_path / "s.zarr" / "c" / "1").exists()     # the fill-value path is taken
    back = open_embeddings(tmp_path / "s.zarr")
    got, ref = back.compute(scheduler="sync"), zarr.open_array(str(tmp_path / "s.zarr"), mode="r")[:]
    assert back.dtype == got.dtype == ref.dtype and got.tobytes() == ref.tobytes()
    assert np.array_equal(got, X, equal_nan=fill != 7)


def test_a_raw_store_is_read_by_the_task_that_codes_it(client, data, tmp_path):
    """map_rows is one blockwise layer and a raw store's reads another: dask fuses them, so each
    block of rows is read where it is coded (no read task whose block could travel; the labels'
    small blocks may be tasks of their own), and the codes are bitwise the in-memory ones."""
    from dask.utils import key_split

    X, Y, model = data
    save_store(lazy(X.astype(np.float32)), tmp_path / "s.zarr")
    stored = open_embeddings(tmp_path / "s.zarr")
    for lazy_codes in (model.transform(stored, Y), model.components(stored, Y), lasso(stored, model.dictionary_, 0.1)):
        graph = dict(lazy_codes.__dask_optimize__(lazy_codes.__dask_graph__(), lazy_codes.__dask_keys__()))
        names = {key_split(k) for k in graph}
        assert not any(name.startswith("zarr-raw") for name in names), names
        assert sum(1 for k in graph if isinstance(k, tuple) and k[0] == lazy_codes.name) == len(stored.chunks[0])
    assert np.array_equal(model.transform(stored, Y).compute(), model.transform(X.astype(np.float32), Y))
    from slics.distributed.search import packed_shards

    shards = packed_shards(X[:3], stored, 5, "dense")          # retrieval: one task a shard too
    graph = dict(shards.__dask_optimize__(shards.__dask_graph__(), shards.__dask_keys__()))
    assert {key_split(k) for k in graph if isinstance(k, tuple)} == {"shard_packed"}
    assert len([k for k in graph if isinstance(k, tuple)]) == len(stored.chunks[0])


def test_a_damaged_raw_zarr_chunk_is_named(tmp_path):
    import zarr

    arr = zarr.create_array(str(tmp_path / "s.zarr"), shape=(10, 3), chunks=(4, 3), dtype="f4", compressors=None)
    arr[:] = 1
    chunk = tmp_path / "s.zarr" / "c" / "1" / "0"
    chunk.write_bytes(chunk.read_bytes()[:20])
    with pytest.raises(ValueError, match=r"c/1/0.* holds 20 bytes, not the 48 .*damaged"):
        open_embeddings(tmp_path / "s.zarr").compute(scheduler="sync")


def _fail_third(block, shared):
    if block[0, 0] == np.float32(_FIRST_OF_THIRD):
        raise ValueError("block 2 fails")
    return block


_FIRST_OF_THIRD = float(np.random.default_rng(5).standard_normal((1000, 8)).astype(np.float32)[600, 0])


# --------------------------------------------------------------------------- partial_fit
def test_partial_fit_over_fit_batches_gives_fit_dictionary(data):
    X, Y, _ = data
    batch = 300
    fitted = SLiCS(3, n_iter=1, batch_size=batch).fit(X, Y)
    perm = np.random.default_rng(0).permutation(len(X))       # fit's epoch order (random_state=0)
    batches = np.array_split(perm, len(X) // batch)
    stream = SLiCS(3)
    for i, b in enumerate(batches):
        stream.partial_fit(X[b], Y[b], init_dictionary=fitted.init_dictionary_ if i == 0 else None)
    # fit warm-starts each batch's NNLS from its last pass: only rounding differs
    np.testing.assert_allclose(stream.dictionary_, fitted.dictionary_, rtol=0, atol=1e-12)
    assert stream.n_iter_ == len(batches) and stream.error_history_.shape == (len(batches),)
    chunked = SLiCS(3).partial_fit(lazy(X[perm], batch), Y[perm], init_dictionary=fitted.init_dictionary_)
    assert np.array_equal(chunked.dictionary_, stream.dictionary_)
    first = SLiCS(3).partial_fit(X[:500], Y[:500])            # S-SVD of the first batch
    assert np.allclose(first.init_dictionary_, SLiCS(3, n_iter=0).fit(X[:500], Y[:500]).dictionary_)
    with pytest.raises(ValueError, match="already has a dictionary"):
        first.partial_fit(X[:10], Y[:10], init_dictionary=fitted.init_dictionary_)
    with pytest.raises(ValueError, match="2 concepts"):
        first.partial_fit(X[:10], Y[:10, :2])


# --------------------------------------------------------------------------- command line
def test_cli_components_and_retrieve_on_stores(client, data, tmp_path, capsys):
    X, Y, _ = data
    names = [f"c{j}" for j in range(Y.shape[1])]
    np.save(tmp_path / "emb.npy", X)
    pd.DataFrame(Y.astype(int), columns=names).to_csv(tmp_path / "labels.csv", index=False)
    assert main(["fit", "--embeddings", str(tmp_path / "emb.npy"), "--labels", str(tmp_path / "labels.csv"),
                 "--n-atoms", "2", "--n-iter", "2", "--out", str(tmp_path / "model.npz")]) == 0
    save_store(lazy(X), tmp_path / "emb.zarr")        # blocks of a multiple of 192 rows: bitwise codes
    save_store(lazy(X[100:], 333), tmp_path / "pool")   # retrieval: bitwise at any shard size
    np.save(tmp_path / "pool.npy", X[100:])
    np.save(tmp_path / "q.npy", X[:7])
    address = client.scheduler.address
    common = ["--model", tmp_path / "model.npz", "--labels", tmp_path / "labels.csv"]
    assert main(["components", *map(str, common), "--embeddings", str(tmp_path / "emb.npy"),
                 "--out", str(tmp_path / "c.npy")]) == 0
    assert main(["components", *map(str, common), "--embeddings", str(tmp_path / "emb.zarr"),
                 "--scheduler", address, "--out", str(tmp_path / "c.zarr")]) == 0
    assert np.array_equal(da.from_zarr(str(tmp_path / "c.zarr")).compute(), np.load(tmp_path / "c.npy"))
    ask = ["retrieve", "--model", str(tmp_path / "model.npz"), "--queries", str(tmp_path / "q.npy"),
           "--concept", "c1", "--concept", "c3", "-k", "12"]
    assert main([*ask, "--pool", str(tmp_path / "pool.npy"), "--out", str(tmp_path / "mem.csv")]) == 0
    assert main([*ask, "--pool", str(tmp_path / "pool"), "--scheduler", address,
                 "--out", str(tmp_path / "dask.csv")]) == 0
    assert (tmp_path / "mem.csv").read_text() == (tmp_path / "dask.csv").read_text()
    capsys.readouterr()
    code = main(["components", *map(str, common), "--embeddings", str(tmp_path / "emb.zarr"),
                 "--scheduler", address, "--out", str(tmp_path / "c2.npy")])
    assert code == 2 and "written as a store" in capsys.readouterr().err
    assert not (tmp_path / "c2.npy").exists()
