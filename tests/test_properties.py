"""Property-based tests of the public API (hypothesis).

Every call on arbitrary input either returns a result that satisfies the function's contract
(checked here: shapes, non-negativity, optimality conditions where cheap, unit norms, top-k
order) or raises a ValueError/TypeError whose message names the offending parameter. The
examples are small and their number bounded (profiles in ``conftest.py``), so the suite runs
in well under two minutes on two cores.
"""

import re
import warnings

import numpy as np
import pytest

hypothesis = pytest.importorskip("hypothesis")
from hypothesis import assume, given, settings, strategies as st  # noqa: E402
from hypothesis.extra import numpy as hnp  # noqa: E402

from slics.core import storage  # noqa: E402
from slics.core.dictionary import SLiCS  # noqa: E402
from slics.core.lasso import lasso  # noqa: E402
from slics.core.nnls import nnls_batch  # noqa: E402
from slics.core.omp import nn_omp  # noqa: E402
from slics.core.retrieval import average_precision_at_k, select_top, top_k  # noqa: E402
from slics.core.sparse_coding import fista, ista, lipschitz_step  # noqa: E402
from slics.core.splice import SpLiCE  # noqa: E402
from slics.core.zero_shot import zero_shot_pseudo_labels  # noqa: E402
from slics.preprocess import preprocess  # noqa: E402
from slics.utils.validation import check_index, check_int, check_positive  # noqa: E402

# examples per test come from the profile (conftest.py: "ci" by default, derandomised, 100);
# SLICS_HYPOTHESIS_PROFILE=dev draws 300 fresh ones
SMALL = settings(deadline=None)
DTYPES = [np.int64, np.float32, np.float64, np.bool_, np.complex128, object]


def finite_floats(bound=10.0):
    """Finite floats in [-bound, bound]; magnitudes below 1e-6 become 0 (squared, they underflow:
    the solvers treat such atoms as zero, documented scale limits rather than contract failures)."""
    return st.floats(-bound, bound, allow_nan=False, allow_infinity=False, width=64).map(
        lambda v: 0.0 if abs(v) < 1e-6 else v)


def matrices(rows=st.integers(0, 5), cols=st.integers(0, 4), bad=True):
    """2-D arrays of any dtype of :data:`DTYPES`, sometimes with NaN/inf; or well-formed float64 ones."""
    if not bad:
        return st.tuples(st.integers(1, 6), st.integers(1, 4)).flatmap(
            lambda s: hnp.arrays(np.float64, s, elements=finite_floats()))

    def build(dtype, shape):
        if dtype is object:
            return st.just(np.full(shape, "x", dtype=object))
        if dtype is np.complex128:
            return hnp.arrays(dtype, shape, elements=st.complex_numbers(max_magnitude=5, allow_nan=False))
        if np.issubdtype(dtype, np.floating):
            return hnp.arrays(dtype, shape, elements=st.one_of(finite_floats(), st.sampled_from(
                [np.nan, np.inf, -np.inf, 0.0])).map(lambda v: float(np.asarray(v, dtype))))
        return hnp.arrays(dtype, shape)

    return st.tuples(st.sampled_from(DTYPES), st.tuples(rows, cols)).flatmap(lambda a: build(*a))


SCALARS = st.one_of(st.integers(-5, 10), finite_floats(), st.sampled_from([np.nan, np.inf, -np.inf]),
                    st.booleans(), st.none(), st.text(max_size=3), st.just([1.0]))


def raises_named(call, *names):
    """Run ``call``; on error require a ValueError/TypeError whose message names one of ``names``."""
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            return call()
    except (ValueError, TypeError) as exc:
        assert any(re.search(rf"\b{re.escape(n)}\b", str(exc)) for n in names), \
            f"{type(exc).__name__} does not name any of {names}: {exc}"
        return None


def converged(call):
    """``(result, True)`` when ``call`` emitted no ConvergenceWarning, else ``(result, False)``.

    The solvers' contract: an optimal result, or a warning saying that it is not (collinear
    atoms make coordinate descent slow: duplicate atoms and 1-D problems are drawn here).
    """
    from sklearn.exceptions import ConvergenceWarning

    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        out = call()
    return out, not any(issubclass(w.category, ConvergenceWarning) for w in caught)


def is_clean(A):
    A = np.asarray(A)
    return A.ndim == 2 and A.size > 0 and A.dtype != bool and np.issubdtype(A.dtype, np.number) \
        and not np.iscomplexobj(A) and np.all(np.isfinite(A.astype(np.float64)))


# ------------------------------------------------------------------ validation helpers
@SMALL
@given(SCALARS)
def test_check_positive_and_check_int_never_convert_silently(value):
    out = raises_named(lambda: check_positive(value, "lam", allow_zero=True), "lam")
    if out is not None:
        assert out >= 0 and np.isfinite(out) and out == float(value)
    out = raises_named(lambda: check_int(value, "n"), "n")
    if out is not None:
        assert type(out) is int and out == value and not isinstance(value, bool)


@SMALL
@given(SCALARS, st.integers(1, 4))
def test_check_index_never_wraps(value, n):
    out = raises_named(lambda: check_index(value, "concept", n), "concept")
    if out is not None:
        assert 0 <= out < n and out == value


# ------------------------------------------------------------------ retrieval
def _brute_top_k(Q, P, k):
    norm = lambda A: A / np.where(np.linalg.norm(A, axis=1, keepdims=True) > 0,  # noqa: E731
                                  np.linalg.norm(A, axis=1, keepdims=True), 1)
    S = norm(Q) @ norm(P).T
    return np.array([sorted(range(P.shape[0]), key=lambda c: (-S[i, c], c))[:k] for i in range(Q.shape[0])],
                    dtype=np.int64).reshape(Q.shape[0], -1), S


@SMALL
@given(matrices(), matrices(), SCALARS)
def test_top_k_contract_on_any_input(Q, P, k):
    out = raises_named(lambda: top_k(Q, P, k), "queries", "candidates", "k")
    if out is None:
        return
    Q, P = np.asarray(Q, float), np.asarray(P, float)
    assert out.shape == (Q.shape[0], int(k)) and out.dtype == np.int64
    assert np.all((out >= 0) & (out < P.shape[0]))
    for row in out:
        assert len(set(row.tolist())) == row.size


@SMALL
@given(st.integers(1, 5), st.integers(1, 6), st.integers(1, 3), st.data())
def test_top_k_equals_brute_force(m, n, d, data):
    """Integer-valued embeddings make many exact ties, where the lower index must win."""
    Q = data.draw(hnp.arrays(np.float64, (m, d), elements=st.integers(-2, 2).map(float)))
    P = data.draw(hnp.arrays(np.float64, (n, d), elements=st.integers(-2, 2).map(float)))
    k = data.draw(st.integers(1, n))
    out = top_k(Q, P, k)
    ref, S = _brute_top_k(Q, P, k)
    np.testing.assert_allclose(np.take_along_axis(S, out, 1), np.take_along_axis(S, ref, 1), atol=1e-12)
    exact = np.all(np.abs(np.diff(np.sort(np.unique(np.round(S, 12))))) > 1e-9) if S.size > 1 else True
    if exact:
        np.testing.assert_array_equal(out, ref)


@SMALL
@given(st.integers(1, 4), st.integers(1, 700), st.integers(1, 40), st.integers(0, 3), st.data())
def test_select_top_equals_a_full_sort(m, n, k, levels, data):
    """Scores on a few levels (many exact ties) or continuous, at any k; wide rows take the block bound."""
    k = min(k, n)
    values = st.integers(-levels, levels).map(float) if levels else st.floats(-1e6, 1e6, allow_nan=False)
    S = data.draw(hnp.arrays(np.float64, (m, n), elements=values))
    ref = np.array([np.lexsort((np.arange(n), -row))[:k] for row in S], dtype=np.int64).reshape(m, k)
    np.testing.assert_array_equal(select_top(S, k), ref)


@SMALL
@given(hnp.arrays(np.int64, st.tuples(st.integers(0, 4), st.integers(1, 6)), elements=st.integers(0, 1)))
def test_average_precision_matches_its_formula(rel):
    ap = average_precision_at_k(rel)
    assert ap.shape == (rel.shape[0],)
    for i, r in enumerate(rel.astype(bool)):
        hits = np.flatnonzero(r)
        ref = np.mean([(j + 1) / (h + 1) for j, h in enumerate(hits)]) if hits.size else 0.0
        assert ap[i] == pytest.approx(ref, abs=1e-12) and 0.0 <= ap[i] <= 1.0


# ------------------------------------------------------------------ solvers
def _problem(data, nonneg=False):
    m = data.draw(st.integers(1, 4), "atoms")
    d = data.draw(st.integers(1, 4), "dim")
    n = data.draw(st.integers(1, 3), "rows")
    D = data.draw(hnp.arrays(np.float64, (m, d), elements=finite_floats(3)), "D")
    if data.draw(st.booleans(), "duplicate atom") and m > 1:
        D[-1] = D[0]
    X = data.draw(hnp.arrays(np.float64, (n, d), elements=finite_floats(3)), "X")
    return D, X


@SMALL
@given(st.data(), st.floats(0.01, 5.0), st.booleans())
def test_lasso_kkt(data, lam, positive):
    D, X = _problem(data)
    W, ok = converged(lambda: lasso(X, D, lam, positive=positive, tol=1e-12, max_iter=5000))
    assert W.shape == (X.shape[0], D.shape[0])
    if positive:
        assert np.all(W >= 0)
    assume(ok)
    g = 2 * (X - W @ D) @ D.T                      # minus the gradient of the smooth part
    scale = 1e-4 * max(1.0, float(np.abs(X).max() * np.abs(D).max()) ** 2 * D.shape[1])
    active = W != 0
    assert np.all(np.abs(g[active] - lam * np.sign(W[active])) <= scale)
    upper = g[~active] if positive else np.abs(g[~active])
    assert np.all(upper <= lam + scale)


@SMALL
@given(st.data())
def test_nnls_matches_scipy(data):
    from scipy.optimize import nnls

    D, X = _problem(data)
    W = nnls_batch(D, X)
    assert W.shape == (X.shape[0], D.shape[0]) and np.all(W >= 0)
    for x, w in zip(X, W):
        ref = nnls(D.T, x)[1] ** 2
        assert np.sum((x - w @ D) ** 2) <= ref + 1e-8 * max(1.0, float(x @ x))


@SMALL
@given(matrices(), matrices(), SCALARS)
def test_solvers_on_any_input(X, D, lam):
    for solver, names in ((lasso, ("X", "D", "lam")), (ista, ("Z", "D", "lam")), (fista, ("Z", "D", "lam")),
                          (nnls_batch, ("D", "X"))):
        if solver is nnls_batch:
            out = raises_named(lambda: nnls_batch(D, X), *names)
        else:
            out = raises_named(lambda: solver(X, D, lam, n_iter=20) if solver is not lasso
                               else solver(X, D, lam, max_iter=20), *names)
        if out is not None:
            assert out.shape == (np.asarray(X).shape[0], np.asarray(D).shape[0]) and np.all(np.isfinite(out))
            if solver is nnls_batch:
                assert np.all(out >= 0)


@SMALL
@given(st.data(), st.floats(0.01, 2.0))
def test_fista_reaches_the_lasso_objective(data, lam):
    from slics.core.objectives import lasso_objective

    D, X = _problem(data)
    assume(np.any(D))
    W_cd, ok_cd = converged(lambda: lasso(X, D, lam, tol=1e-12, max_iter=5000))
    W_fista, ok_fista = converged(lambda: fista(X, D, lam, tol=1e-12, n_iter=20000))
    ref, got = lasso_objective(X, D, W_cd, lam), lasso_objective(X, D, W_fista, lam)
    if ok_cd and ok_fista:
        np.testing.assert_allclose(got, ref, rtol=1e-5, atol=1e-8)
    best = np.minimum(ref, got)
    W = ista(X, D, lam, lr=lipschitz_step(D), n_iter=50)      # never below the optimum
    assert np.all(lasso_objective(X, D, W, lam) >= best - 1e-6 * np.maximum(1.0, best))


@SMALL
@given(st.data(), SCALARS)
def test_nn_omp_sparsity(data, n_nonzero):
    D, X = _problem(data)
    out = raises_named(lambda: nn_omp(D, X, n_nonzero), "n_nonzero", "D")
    if out is not None:
        assert np.all(out >= 0) and np.all((out > 0).sum(axis=1) <= int(n_nonzero))


# ------------------------------------------------------------------ estimators
def _labelled(data):
    C = data.draw(st.integers(1, 3), "concepts")
    n = data.draw(st.integers(C, 8), "rows")
    d = data.draw(st.integers(1, 4), "dim")
    X = data.draw(hnp.arrays(np.float64, (n, d), elements=finite_floats(2)), "X")
    Y = np.zeros((n, C), bool)
    Y[np.arange(n), np.arange(n) % C] = True
    extra = data.draw(hnp.arrays(np.bool_, (n, C)), "extra labels")
    return X, Y | extra


@SMALL
@given(st.data(), st.integers(1, 3), st.sampled_from(["ksvd", "bcd", "power"]), st.integers(-4, 5))
def test_slics_contract(data, K, update, concept):
    X, Y = _labelled(data)
    model = raises_named(lambda: SLiCS(K, n_iter=1, update=update).fit(X, Y), "X")
    if model is None:
        assert not np.any(X) or not np.all(np.isfinite(X))
        return
    C = Y.shape[1]
    assert model.dictionary_.shape == (C * K, X.shape[1])
    np.testing.assert_allclose(np.linalg.norm(model.dictionary_, axis=1), 1.0, atol=1e-8)
    W = model.transform(X, Y)
    assert np.all(W >= 0) and not np.any(W[~np.repeat(Y, K, axis=1)])
    np.testing.assert_allclose(model.components(X, Y).sum(axis=1), W @ model.dictionary_, atol=1e-9)
    P = raises_named(lambda: model.project(X, concept), "concept")
    assert (P is not None) == (0 <= concept < C)
    if P is not None:
        # the projection onto a cone: the residual is orthogonal to the projection
        R = X - P
        np.testing.assert_allclose(np.einsum("ij,ij->i", R, P), 0.0, atol=1e-7 * max(1.0, np.abs(X).max() ** 2))


@SMALL
@given(matrices(bad=True), matrices(bad=False), st.integers(-2, 3))
def test_splice_contract(vocab, Z, concept):
    model = raises_named(lambda: SpLiCE(0.05).fit(vocab), "vocab_emb")
    if model is None:
        return
    W = raises_named(lambda: model.transform(Z), "Z")     # checked by transform itself (it names Z)
    if W is None:
        assert np.asarray(Z).shape[1] != model.vocab_.shape[1]
        return
    assert W.shape == (Z.shape[0], model.vocab_.shape[0]) and np.all(W >= 0)
    np.testing.assert_allclose(np.linalg.norm(model.vocab_, axis=1), 1.0, atol=1e-9)


@SMALL
@given(matrices(), matrices(), SCALARS)
def test_zero_shot_pseudo_labels_contract(image, text, k):
    out = raises_named(lambda: zero_shot_pseudo_labels(image, text, k), "image_emb", "concept_text_emb", "k")
    if out is not None:
        assert out.dtype == bool and np.all(out.sum(axis=1) == k)


@SMALL
@given(matrices(), st.sampled_from(["unit", "tokens", "centre", "bogus"]), SCALARS)
def test_preprocess_contract(X, kind, n_tokens):
    out = raises_named(lambda: preprocess(X, kind, n_tokens=n_tokens, mean=np.zeros(np.shape(X)[-1])),
                       "X", "kind", "n_tokens", "mean", "features")
    if out is not None and kind == "unit":
        norms = np.linalg.norm(out, axis=1)
        assert np.all(np.isclose(norms, 1.0) | (norms == 0))


@SMALL
@given(SCALARS, SCALARS, SCALARS, SCALARS)
def test_storage_bytes_contract(nnz, n_rows, n_cols, value_bytes):
    out = raises_named(lambda: storage.storage_bytes(nnz, n_rows, n_cols, value_bytes),
                       "nnz", "n_rows", "n_cols", "value_bytes")
    if out is not None:
        assert all(type(v) is int and v >= 0 for v in out.values())
        assert out["dense"] == int(n_rows) * int(n_cols) * int(value_bytes)


@SMALL
@given(st.integers(1, 3), st.integers(1, 4), st.integers(1, 6), SCALARS, SCALARS, st.data())
def test_quantised_pool_top_k_matches_its_vectors(n_tokens, codebook_size, n, k, block, data):
    from slics.core.pq import QuantisedPool

    token_dim = 2
    codebook = data.draw(hnp.arrays(np.float64, (codebook_size, token_dim), elements=finite_floats(2)))
    codes = data.draw(hnp.arrays(np.int64, (n, n_tokens), elements=st.integers(-1, codebook_size)))
    Z = data.draw(hnp.arrays(np.float64, (2, n_tokens * token_dim), elements=finite_floats(2)))
    pool = raises_named(lambda: QuantisedPool(codes, codebook), "codes")
    if pool is None:
        assert codes.min() < 0 or codes.max() >= codebook_size
        return
    S = raises_named(lambda: pool.scores(Z, block=block), "block")
    if S is not None:
        np.testing.assert_allclose(S, Z @ pool.vectors().T, atol=1e-9)
    out = raises_named(lambda: pool.top_k(Z, k), "k")
    if out is not None:
        assert out.shape == (2, k) and all(len(set(r)) == k for r in out.tolist())
        best = np.take_along_axis(Z @ pool.vectors().T, out, 1)
        assert np.all(np.diff(best, axis=1) <= 1e-9)


@SMALL
@given(st.integers(2, 4), st.integers(1, 6), st.integers(0, 10 ** 6), st.data())
def test_procrustes_recovers_a_rotation(d, extra, seed, data):
    from slics.core.alignment import ProcrustesAlignment, random_rotation

    X = data.draw(hnp.arrays(np.float64, (d + extra, d), elements=finite_floats(3)))
    assume(np.linalg.matrix_rank(X) == d and np.linalg.cond(X) < 1e6)
    R = random_rotation(d, seed)
    model = ProcrustesAlignment().fit(X, X @ R)
    np.testing.assert_allclose(model.map_, R, atol=1e-6)
    np.testing.assert_allclose(model.transform(X), X @ R, atol=1e-6)


@SMALL
@given(matrices(), matrices())
def test_alignment_on_any_input(X, Y):
    from slics.core.alignment import LeastSquaresAlignment, ProcrustesAlignment

    for cls in (ProcrustesAlignment, LeastSquaresAlignment):
        model = raises_named(lambda: cls().fit(X, Y), "X", "Y")
        if model is not None:
            assert model.map_.shape == (np.shape(X)[1], np.shape(Y)[1]) and np.all(np.isfinite(model.map_))
