"""Section 2: sparse CLIP embeddings by ISTA / FISTA over a concept dictionary.

Conventions (shared by every function here):

- ``Z`` is ``(n_images, d)``: image embeddings are ROWS.
- ``D`` is ``(n_concepts, d)``: concepts (atoms) are ROWS (unit norm after alignment), the
  layout of :func:`slics.core.lasso.lasso`, :func:`slics.core.nnls.nnls_batch` and
  ``SLiCS.dictionary_``. The solvers transpose it once on entry into the contiguous
  ``(d, n_concepts)`` array ``A = D^T`` they multiply with (:func:`align_embeddings` returns a
  ``D`` that is already such a transposed view, so that costs no copy).
- ``W`` is ``(n_images, n_concepts)``: row ``i`` holds the code ``w_i`` of image ``i``; ``Z ≈ W D``.
- The per-image objective is the report's ``||z - w D||^2 + lam * ||w||_1``
  (no 1/2, no 1/d; :func:`slics.core.objectives.lasso_objective`). scikit-learn's
  ``Lasso(alpha, fit_intercept=False)`` fitted on ``(D.T, z)`` minimises the same problem when
  ``alpha = lam / (2 * d)``.
- Solvers work in ``dtype`` (float64 by default; pass ``np.float32`` for speed) and
  return ``W`` in that dtype. The solvers are batched: one ``W A^T A`` product per
  iteration for all images (``W (A^T A)`` or ``(W A^T) A``, whichever is cheaper), no
  per-image loop; ISTA skips the rows that provably stay at zero, and multiplies a sparse
  iterate over its non-zeros only (:func:`_ista_product`).
- Step sizes: the gradient of ``||z - w D||^2`` is ``L``-Lipschitz with ``L = 2 ||D||_2^2``.
  ISTA decreases the objective monotonically for ``lr <= 1/L`` (:func:`lipschitz_step`),
  still converges for ``lr < 2/L`` and diverges above. Centring matters: for 1,010
  all-MiniLM-L6-v2 concept prompts ``1/L`` is 0.0012 raw but 0.017 after
  :func:`align_embeddings`, so the report's ``lr = 0.01`` is safe only on aligned concepts.
- ``return_history=True`` makes a solver return ``(W, history)``; ``history[k]`` is the
  objective summed over all images after ``k`` iterations (``history[0]`` at ``W = 0``).
- Memory: the solvers process the images in chunks of at most ``_CHUNK_ELEMENTS`` code
  entries (``chunk_rows(n_concepts)`` rows), so their working arrays (five chunk-sized
  arrays besides the output ``W``) stay bounded however many images there are. ISTA's rows
  are independent, so chunking changes nothing but the memory; FISTA applies its stopping
  rule to each chunk's images.
"""

from __future__ import annotations

import warnings
from typing import NamedTuple

import numpy as np
import scipy.sparse as sp

from ..utils.validation import check_float_dtype, check_int, check_matrix, check_positive, check_real_array, check_vector
from .normalise import normalise_rows
from ._sparse_product import prox_gradient_step, sparse_rows_product
from .objectives import lasso_objective

__all__ = [
    "Aligned", "align_embeddings", "center_and_normalise", "concept_dictionary",
    "soft_threshold", "lipschitz_step", "ista", "fista", "fista_from",
    "reconstruct", "sparse_memory_bytes",
]


# ----------------------------------------------------------------------------- alignment
def center_and_normalise(X, mean=None):
    """Centre the rows of ``X`` by a mean vector, then scale each row to unit length.

    Parameters
    ----------
    X : array of shape (n, d)
        Embeddings as rows (images, or concepts given as rows).
    mean : array of shape (d,), optional
        Mean to subtract. By default the mean of the rows of ``X``.

    Returns
    -------
    X_c : ndarray of shape (n, d), float64
        Centred rows renormalised to unit L2 norm (a row equal to the mean stays zero).
    mean : ndarray of shape (d,), float64
        The mean that was subtracted, so it can be added back (see :func:`reconstruct`).
    """
    X = check_matrix(X, "X")
    if mean is None:
        mean = X.mean(axis=0)
    else:
        mean = check_vector(mean, "mean", X.shape[1])
    return normalise_rows(X - mean), mean


def concept_dictionary(concept_emb):
    """Build the dictionary ``D`` (concepts as rows) from concept text embeddings given as rows.

    Parameters
    ----------
    concept_emb : array of shape (n_concepts, d)
        One text embedding per concept, as produced by the encoder.

    Returns
    -------
    D : ndarray of shape (n_concepts, d), float64
        Concepts centred by their mean and renormalised to unit norm, as rows. Stored as the
        transpose of a C-contiguous ``(d, n_concepts)`` array, the layout the solvers multiply
        with (values and shape are those of the rows; only the memory order differs).
    concept_mean : ndarray of shape (d,)
        The concept mean ``mu_c``.
    """
    C, mu = center_and_normalise(concept_emb)
    return np.ascontiguousarray(C.T).T, mu


class Aligned(NamedTuple):
    """Output of :func:`align_embeddings`."""

    Z: np.ndarray             #: (n_images, d) centred, unit-norm image embeddings
    D: np.ndarray             #: (n_concepts, d) centred, unit-norm concepts as rows
    image_mean: np.ndarray    #: (d,) mean of the image embeddings, mu_img
    concept_mean: np.ndarray  #: (d,) mean of the concept embeddings, mu_c


def align_embeddings(image_emb, concept_emb) -> Aligned:
    """The report's modality alignment: centre images and concepts by their own means, renormalise.

    Parameters
    ----------
    image_emb : array of shape (n_images, d)
        Image embeddings, one per row.
    concept_emb : array of shape (n_concepts, d)
        Concept text embeddings, one per row (the returned ``D`` keeps them as rows).

    Returns
    -------
    Aligned
        Named tuple ``(Z, D, image_mean, concept_mean)``.
    """
    image_emb = check_matrix(image_emb, "image_emb")
    concept_emb = check_matrix(concept_emb, "concept_emb", n_cols=image_emb.shape[1])
    Z, mu_img = center_and_normalise(image_emb)
    D, mu_c = concept_dictionary(concept_emb)
    return Aligned(Z, D, mu_img, mu_c)


# ----------------------------------------------------------------------------- building blocks
def soft_threshold(X, t):
    """Elementwise soft threshold ``sign(x) * max(|x| - t, 0)`` (the prox of ``t * ||.||_1``).

    Parameters
    ----------
    X : array_like
    t : float
        Non-negative threshold.

    Returns
    -------
    ndarray
        Same shape and float dtype as ``X``; entries with ``|x| <= t`` are exactly zero.
    """
    t = check_positive(t, "threshold t", allow_zero=True)
    X = check_real_array(X, "X")
    if not np.issubdtype(X.dtype, np.floating):
        X = X.astype(np.float64)
    return np.maximum(X - t, 0) + np.minimum(X + t, 0)


_SPARSE_COST = 16   # the sparse product is used where its flops are at most 1 / this of the dense one's


def _ista_product(A: np.ndarray, rows: int):
    """A function ``(W, out, nnz) -> out = W A^T A`` for ISTA's iterates ``W`` with ``nnz`` non-zeros:
    :func:`_gram_product`, or, where ``W`` has few non-zeros, ``W G`` over the non-zeros only
    (:func:`slics.core._sparse_product.sparse_rows_product`).

    ISTA's codes grow sparse at large ``lam`` (about 2 to 45 non-zeros per row of 1,003 over the
    iterations of the report's lambdas 0.2 and 0.5), while the dense product costs the same at any
    sparsity. The sparse one is used where its ``2 nnz m`` flops are at most ``1 / _SPARSE_COST`` of
    the dense one's: it streams rows of ``G`` (a memory-bound gather) where the dense product runs at
    the matmul peak, and it also reads and writes every entry once (``benchmarks/bench_ista_sparse.py``
    measures both). The choice depends on the non-zeros only (counted by the step that made ``W``),
    never on timings: the same iterates on every run. ``G`` (``m x m``) is formed on first use, and
    only when it is no larger than the ``rows x m`` iterate. The two products round differently (a
    sum in another order).
    """
    dense = _gram_product(A)
    d, m = A.shape
    dense_flops = min(2 * m * m, 4 * m * d)          # per row
    if m > rows:
        return lambda W, out, nnz: dense(W, out)
    gram = []

    def product(W, out, nnz):
        if not _SPARSE_COST * 2.0 * nnz * m <= dense_flops * W.shape[0]:
            return dense(W, out)
        if not gram:
            gram.append(np.ascontiguousarray(A.T @ A))
        sparse_rows_product(W, gram[0], out)
        return out

    return product


def _gram_product(A: np.ndarray):
    """A function ``(W, out) -> out = W A^T A``, with the cheaper of two evaluation orders.

    With ``m`` concepts in ``d`` dimensions, ``W (A^T A)`` costs ``2 n m^2`` flops and
    ``(W A^T) A`` costs ``4 n m d``; the second wins when ``2 d < m`` (e.g. 1003 concepts in 384
    dimensions).
    """
    d, m = A.shape
    if 2 * d < m:
        At = np.ascontiguousarray(A.T)
        return lambda W, out: np.matmul(W @ At, A, out=out)
    G = A.T @ A
    return lambda W, out: np.matmul(W, G, out=out)


def _columns(D: np.ndarray) -> np.ndarray:
    """``A = D^T`` as a C-contiguous ``(d, n_concepts)`` array (no copy when ``D`` is already
    such a transposed view, as :func:`concept_dictionary` returns it)."""
    return np.ascontiguousarray(D.T)


def _lipschitz(A: np.ndarray) -> float:
    """L = 2 * sigma_max(A)^2, the Lipschitz constant of the gradient of ||z - w A^T||^2."""
    return 2.0 * float(np.linalg.norm(np.asarray(A, dtype=np.float64), 2)) ** 2


def _safe_step(A: np.ndarray) -> float:
    """``1 / L`` of a checked dictionary; a clear error for an all-zero one (``L = 0``)."""
    L = _lipschitz(A)
    if L == 0:
        raise ValueError("D is all zeros; the dictionary must contain at least one non-zero concept.")
    return 1.0 / L


def lipschitz_step(D) -> float:
    """Largest safe (monotone) proximal-gradient step ``1 / L`` with ``L = 2 * ||D||_2^2``.

    Parameters
    ----------
    D : array of shape (n_concepts, d)
        Dictionary, concepts as rows.

    Returns
    -------
    float
        ``1 / (2 * s_max^2)``, ``s_max`` the largest singular value of ``D``. ISTA with a
        step above this loses its descent guarantee and diverges beyond ``2 / L``.
    """
    return _safe_step(_columns(check_matrix(D, "D")))


def _check_problem(Z, D, lam, dtype):
    """Checked ``Z`` and ``A = D^T`` (contiguous, ``dtype``) and ``lam``."""
    dtype = check_float_dtype(dtype)
    D = check_matrix(D, "D", dtype=dtype)
    Z = check_matrix(Z, "Z", n_cols=D.shape[1], dtype=dtype)
    lam = check_positive(lam, "lam (lambda)", allow_zero=True)
    return Z, _columns(D), lam


# ----------------------------------------------------------------------------- solvers
_CHUNK_ELEMENTS = 1 << 24   # code entries per chunk of images (128 MiB per float64 working array)


def chunk_rows(n_concepts: int) -> int:
    """Images per chunk of the batched solvers for a dictionary of ``n_concepts`` atoms."""
    return max(1, _CHUNK_ELEMENTS // max(int(n_concepts), 1))


def _chunked(solve, Z, m, return_history, dtype):
    """Run ``solve(Z_chunk) -> (W, history)`` on row chunks; histories summed (the last value
    of a shorter one repeated: that chunk had stopped)."""
    n = Z.shape[0]
    step = chunk_rows(m)
    if n <= step:
        W, history = solve(Z)
        return (W, np.asarray(history)) if return_history else W
    W = np.empty((n, m), dtype=dtype)
    histories = []
    for start in range(0, n, step):
        W[start:start + step], h = solve(Z[start:start + step])
        histories.append(np.asarray(h))
    if not return_history:
        return W
    length = max(h.size for h in histories)
    history = np.zeros(length)
    for h in histories:
        history += np.concatenate([h, np.full(length - h.size, h[-1])])
    return W, history


def ista(Z, D, lam, *, lr=0.01, n_iter=200, return_history=False, dtype=np.float64):
    """Batched ISTA for ``min_w ||z - w D||^2 + lam ||w||_1``, exactly as the report runs it.

    ``w_0 = 0``; each iteration ``w <- S_{lr*lam}(w - lr * 2 (w D - z) D^T)``, for all images at
    once as ``W <- S(W - 2 lr (W D D^T - Z D^T))``, the product evaluated in the cheaper order.

    Parameters
    ----------
    Z : array of shape (n_images, d)
        Aligned (centred, unit-norm) image embeddings.
    D : array of shape (n_concepts, d)
        Dictionary, concepts as rows.
    lam : float
        Non-negative L1 weight (the report uses the scale of this objective, e.g. 0.05).
    lr : float, default 0.01
        Step size; the soft threshold is ``lr * lam``. Checked once against ``1/L``
        (:func:`lipschitz_step`): a ``RuntimeWarning`` when ``1/L < lr < 2/L`` (converges, not
        monotonically), a ``ValueError`` when ``lr >= 2/L`` (ISTA diverges).
    n_iter : int, default 200
        Fixed number of iterations (no early stopping), a non-negative integer.
    return_history : bool, default False
        Also return the objective summed over images at ``W_0 = 0, W_1, ..., W_n_iter``
        (length ``n_iter + 1``); read off the gradient products in float64, one extra product
        per iteration in float32.
    dtype : numpy dtype, default float64
        Working and output dtype.

    Returns
    -------
    W : ndarray of shape (n_images, n_concepts)
    history : ndarray of shape (n_iter + 1,), float64
        Only with ``return_history=True``.
    """
    Z, A, lam = _check_problem(Z, D, lam, dtype)
    lr = check_positive(lr, "lr (learning rate)")
    n_iter = check_int(n_iter, "n_iter", minimum=0)
    safe = _safe_step(A)
    if lr >= 2 * safe:
        raise ValueError(f"lr={lr:g} is at or above the stability limit 2/L={2 * safe:.4g} of this dictionary "
                         f"(1/L={safe:.4g}, L = 2 ||D||_2^2): ISTA would diverge to NaN. Use lr <= 1/L "
                         f"(slics.core.sparse_coding.lipschitz_step(D)), or centre the concepts first "
                         f"(align_embeddings).")
    if lr > safe:
        warnings.warn(f"lr={lr:g} exceeds the Lipschitz-safe step 1/L={safe:.4g} (L = 2 ||D||_2^2): "
                      f"ISTA loses its descent guarantee and diverges for lr >= 2/L={2 * safe:.4g}.",
                      RuntimeWarning, stacklevel=2)
    return _chunked(lambda Zc: _ista(Zc, A, lam, lr, n_iter, True, dtype) if return_history
                    else (_ista(Zc, A, lam, lr, n_iter, False, dtype), None), Z, A.shape[1], return_history, dtype)


def _ista(Z, A, lam, lr, n_iter, return_history, dtype):
    """ISTA on checked inputs (see :func:`ista`), ``A = D^T`` contiguous."""
    ZA = Z @ A
    two_lr, thr = np.dtype(dtype).type(2 * lr), np.dtype(dtype).type(lr * lam)
    # From w_0 = 0 the first iterate is S(2 lr A^T z); a row where that is all zero is a fixed
    # point and stays zero for ever, so only the other rows are iterated (an exact shortcut).
    moving = np.any(soft_threshold(two_lr * ZA, thr) != 0, axis=1)
    if not moving.all() and n_iter > 0:
        W = np.zeros_like(ZA)
        if return_history:
            still = float(np.einsum("ij,ij->", Z[~moving], Z[~moving]))
            history = np.full(n_iter + 1, still)
        if moving.any():
            out = _ista(Z[moving], A, lam, lr, n_iter, return_history, dtype)
            W[moving] = out[0] if return_history else out
            if return_history:
                history += out[1]
        return (W, history) if return_history else W
    gradient_product = _ista_product(A, Z.shape[0])
    W = np.zeros_like(ZA)
    history = [float(lasso_objective(Z, A.T, W, lam).sum())] if return_history else None
    V, nnz = np.empty_like(W), 0
    expand = _expands(return_history, ZA)        # the history read off the products (see _fista)
    zz = np.einsum("ij,ij->i", Z, Z) if expand else None
    for k in range(n_iter):
        gradient_product(W, V, nnz)
        if expand and k:
            history.append(_expanded_objective(zz, ZA, W, V, lam))
        nnz = prox_gradient_step(V, ZA, W, two_lr, thr)     # V = S(W - 2 lr (W G - Z A))
        W, V = V, W
        if return_history and not expand:
            history.append(float(lasso_objective(Z, A.T, W, lam).sum()))
    if expand and n_iter:
        history.append(_expanded_objective(zz, ZA, W, gradient_product(W, V, nnz), lam))
    return (W, np.asarray(history)) if return_history else W


def fista(Z, D, lam, *, n_iter=5000, tol=1e-7, restart=True, return_history=False, dtype=np.float64):
    """Batched FISTA (Beck & Teboulle, 2009) for ``min_w ||z - w D||^2 + lam ||w||_1``, step ``1/L``.

    Parameters
    ----------
    Z : array of shape (n_images, d)
        Image embeddings, one per row.
    D : array of shape (n_concepts, d)
        Dictionary, concepts as rows.
    lam : float
        Non-negative L1 weight, same scale as :func:`ista`.
    n_iter : int, default 5000
        Maximum number of iterations, a non-negative integer.
    tol : float, default 1e-7
        Stop when, for every image (of the chunk, see the module notes on memory),
        ``||w_k - w_{k-1}|| <= tol * max(||w_k||, 1e-12)`` (relative change of the code, not of
        the objective). ``tol=0`` runs exactly ``n_iter`` iterations.
    restart : bool, default True
        Per-image gradient-based adaptive restart of the momentum (O'Donoghue & Candes, 2015),
        which removes FISTA's ripples and converges much faster on this problem; ``False``
        gives plain Beck & Teboulle FISTA. Same fixed point either way.
    return_history : bool, default False
        Also return the objective summed over images at ``W_0 = 0, W_1, ..., W_k``
        (length = iterations run + 1); no extra product in float64 (see :func:`_fista`), one
        extra product per iteration in float32.
    dtype : numpy dtype, default float64
        Working and output dtype.

    Returns
    -------
    W : ndarray of shape (n_images, n_concepts)
    history : ndarray of shape (iterations run + 1,), float64
        Only with ``return_history=True`` (with several chunks, a chunk that stopped earlier
        contributes its last objective to the later entries).
    """
    Z, A, lam = _check_problem(Z, D, lam, dtype)
    tol = check_positive(tol, "tol", allow_zero=True)
    n_iter = check_int(n_iter, "n_iter", minimum=0)
    step = _safe_step(A)
    gradient_product = _gram_product(A)
    return _chunked(lambda Zc: _fista(Zc, A, lam, n_iter, tol, restart, return_history, dtype, step,
                                      gradient_product), Z, A.shape[1], return_history, dtype)


def _fista(Z, A, lam, n_iter, tol, restart, return_history, dtype, step, gradient_product, W0=None,
           stop=None):
    """FISTA on one chunk of checked rows (see :func:`fista`), ``A = D^T`` contiguous, from ``W0``
    (default zero); returns ``(W, history or None)``, or ``(None, None)`` as soon as ``stop()``
    (checked once per iteration, when given) is true.

    With a float64 history, the product of each iterate ``W`` is formed instead of that of the
    extrapolated point ``Y``: it gives the objective (:func:`_expanded_objective`), and ``Y``'s
    product follows from linearity, ``P(Y) = P(W_new) + beta (P(W_new) - P(W))``. One product per
    iteration, where a history read off ``W`` would take a second.
    """
    ZA = Z @ A
    W = np.zeros_like(ZA) if W0 is None else np.array(W0, dtype=ZA.dtype)
    Y = W.copy()
    V, buf = np.empty_like(ZA), np.empty_like(ZA)   # preallocated: no 80 MB temporaries per iteration
    t = np.ones((W.shape[0], 1))
    two_step, thr = np.dtype(dtype).type(2 * step), np.dtype(dtype).type(step * lam)
    history = [float(lasso_objective(Z, A.T, W, lam).sum())] if return_history else None
    expand = _expands(return_history, ZA)
    if expand:
        zz = np.einsum("ij,ij->i", Z, Z)
        PW = gradient_product(W, np.empty_like(ZA))
        PY, spare = PW.copy(), np.empty_like(ZA)
    for _ in range(n_iter):
        if stop is not None and stop():
            return None, None
        if expand:
            V, PY = PY, V           # the product of Y, by linearity
        else:
            gradient_product(Y, V)
        W_new = V
        prox_gradient_step(W_new, ZA, Y, two_step, thr)      # S(Y - step * grad(Y))
        if expand:
            history.append(_expanded_objective(zz, ZA, W_new, gradient_product(W_new, spare), lam))
        elif return_history:
            history.append(float(lasso_objective(Z, A.T, W_new, lam).sum()))
        D = np.subtract(W_new, W, out=buf)
        if restart:                 # O'Donoghue & Candes: drop momentum where it points uphill
            uphill = np.einsum("ij,ij->i", Y, D) > np.einsum("ij,ij->i", W_new, D)
            t[uphill] = 1.0
        t_new = 0.5 * (1.0 + np.sqrt(1.0 + 4.0 * t * t))
        beta = ((t - 1.0) / t_new).astype(dtype)
        np.multiply(D, beta, out=Y)
        Y += W_new                  # Y = W_new + (t - 1) / t_new * (W_new - W)
        if expand:
            np.subtract(spare, PW, out=PY)
            PY *= beta
            PY += spare
            PW, spare = spare, PW
        W, V, t = W_new, W, t_new
        if tol > 0:
            change = np.sqrt(np.einsum("ij,ij->i", D, D))
            size = np.sqrt(np.einsum("ij,ij->i", W, W))
            if np.all(change <= tol * np.maximum(size, 1e-12)):
                break
    return W, history


def _expands(return_history, ZA) -> bool:
    """Whether a history is read off the gradient products (:func:`_expanded_objective`): in float64
    only, where the products' rounding stays far below the objective's changes (float32 products
    would blur a history near the optimum at about 1e-7 of the objective)."""
    return bool(return_history) and ZA.dtype == np.float64


def _expanded_objective(zz, ZA, W, P, lam) -> float:
    """The objective summed over rows, ``||z||^2 - 2 w.(A^T z) + w.(w G) + lam ||w||_1``, from the
    product ``P = W G`` the solver forms anyway (no product of its own)."""
    rows = zz - 2.0 * np.einsum("ij,ij->i", W, ZA) + np.einsum("ij,ij->i", W, P)
    return float(np.sum(rows + lam * np.abs(W).sum(axis=1)))


def fista_from(Z, D, lam, W0, *, tol=1e-7, n_iter=5000, dtype=np.float64):
    """:func:`fista` started from the codes ``W0`` instead of zero (a warm start).

    Same stopping rule as :func:`fista` (with restart), no history. Used by
    :func:`slics.core.lasso.lasso_path` to warm-start from the codes at a nearby ``lam``.

    Parameters
    ----------
    Z : array of shape (n_images, d)
        Image embeddings, one per row.
    D : array of shape (n_concepts, d)
        Dictionary, concepts as rows.
    lam : float
        Non-negative L1 weight, same scale as :func:`ista`.
    W0 : array of shape (n_images, n_concepts)
        Starting codes.
    tol : float, default 1e-7
        Relative change of the codes at which a chunk stops, as in :func:`fista`.
    n_iter : int, default 5000
        Maximum number of iterations.
    dtype : numpy dtype, default float64
        Working and output dtype.

    Returns
    -------
    W : ndarray of shape (n_images, n_concepts)
    """
    Z, A, lam = _check_problem(Z, D, lam, dtype)
    step = _safe_step(A)
    gradient_product = _gram_product(A)
    W0 = check_matrix(W0, "W0", n_cols=A.shape[1], dtype=dtype)
    if W0.shape[0] != Z.shape[0]:
        raise ValueError(f"W0 has {W0.shape[0]} rows but Z has {Z.shape[0]}; one starting code per row of Z is expected.")
    step_rows = chunk_rows(A.shape[1])
    W = np.empty((Z.shape[0], A.shape[1]), dtype=dtype)
    for start in range(0, Z.shape[0], step_rows):
        sl = slice(start, start + step_rows)
        W[sl] = _fista(Z[sl], A, lam, n_iter, tol, True, False, dtype, step, gradient_product, W0[sl])[0]
    return W


class _Prepared(NamedTuple):
    """A dictionary prepared once for repeated FISTA calls (:func:`_fista_rows`)."""

    A: np.ndarray             #: (d, n_concepts) contiguous, ``D^T``
    step: float               #: ``1 / L``
    gradient_product: object  #: see :func:`_gram_product`


def _prepare(D, dtype, G=None) -> _Prepared:
    """``D`` (concepts as rows, checked) prepared for :func:`_fista_rows`, once per call.

    The Lipschitz constant comes from the largest eigenvalue of the smaller Gram matrix in float64
    (``D^T D`` or ``G = D D^T``, which the caller may pass in the storage dtype) rather than
    from the SVD of :func:`lipschitz_step` (the same value to rounding, 10-30 times cheaper:
    6.8 s against 0.6 s for 10,000 x 768 on the shared 2-core machine), and a passed ``G`` is
    the gradient product when that order is the cheaper. The warm starts of
    :func:`slics.core.lasso.lasso` use it; :func:`fista` itself is unchanged.
    """
    D = np.asarray(D, dtype=dtype)
    m, d = D.shape
    D64 = np.asarray(D, dtype=np.float64)
    small = D64.T @ D64 if d < m else (D64 @ D64.T if G is None else np.asarray(G, dtype=np.float64))
    L = 2.0 * float(np.linalg.eigvalsh(small)[-1]) if small.size else 0.0
    if not L > 0:
        raise ValueError("D is all zeros; the dictionary must contain at least one non-zero concept.")
    A = _columns(D)
    if G is not None and 2 * d >= m:
        Gd = np.asarray(G, dtype=dtype)
        return _Prepared(A, 1.0 / L, lambda W, out: np.matmul(W, Gd, out=out))
    return _Prepared(A, 1.0 / L, _gram_product(A))


def _fista_rows(Z, lam, W0, prepared: _Prepared, tol, dtype, stop=None):
    """FISTA with restart on checked rows ``Z`` (one chunk) over a prepared dictionary, from ``W0``
    (None: zero), at most 5,000 iterations (the default of :func:`fista`); None when ``stop()`` became true first. :func:`slics.core.lasso.lasso` uses it
    for its warm starts and for its timed pilot."""
    return _fista(Z, prepared.A, lam, 5000, tol, True, False, dtype, prepared.step, prepared.gradient_product,
                  W0, stop)[0]


# ----------------------------------------------------------------------------- uses of the codes
def reconstruct(W, D, mean=None) -> np.ndarray:
    """Sparse reconstruction ``z_hat = w D + mean`` for every image (rows): ``W D + mean``.

    Parameters
    ----------
    W : array of shape (n_images, n_concepts)
        Codes, one row per image.
    D : array of shape (n_concepts, d)
        Dictionary, concepts as rows.
    mean : array of shape (d,), optional
        Mean to add back: the concept mean ``mu_c`` (the report's ``A w + mu_c``), the image
        mean ``mu_img``, or ``None`` to stay in the centred space (``w D``).

    Returns
    -------
    ndarray of shape (n_images, d), float64
    """
    D = check_matrix(D, "D")
    W = check_matrix(W, "W", n_cols=D.shape[0])
    Z_hat = W @ D
    if mean is not None:
        Z_hat += check_vector(mean, "mean", D.shape[1])
    return Z_hat


def sparse_memory_bytes(W, dtype=np.float32) -> dict:
    """Actual storage of ``W`` as a ``scipy.sparse`` CSR matrix versus a dense float32 array.

    Parameters
    ----------
    W : array of shape (n_images, n_concepts)
        Codes; exact zeros are not stored.
    dtype : numpy dtype, default float32
        dtype of the stored non-zero values.

    Returns
    -------
    dict
        ``nnz``, ``mean_nnz_per_row``, ``data_bytes``, ``indices_bytes``, ``indptr_bytes``,
        ``csr_bytes`` (their sum), ``data_dtype``, ``indices_dtype``, ``indptr_dtype``,
        ``dense_float32_bytes`` (``n * m * 4``) and ``ratio`` (csr / dense).
    """
    W = check_matrix(W, "W")
    dtype = check_float_dtype(dtype)        # an integer dtype would truncate the codes and miscount nnz
    S = sp.csr_array(W.astype(dtype))
    S.eliminate_zeros()
    csr = S.data.nbytes + S.indices.nbytes + S.indptr.nbytes
    dense = W.shape[0] * W.shape[1] * 4
    return {
        "shape": list(W.shape), "nnz": int(S.nnz), "mean_nnz_per_row": S.nnz / W.shape[0],
        "data_bytes": int(S.data.nbytes), "indices_bytes": int(S.indices.nbytes),
        "indptr_bytes": int(S.indptr.nbytes), "csr_bytes": int(csr),
        "data_dtype": str(S.data.dtype), "indices_dtype": str(S.indices.dtype),
        "indptr_dtype": str(S.indptr.dtype), "dense_float32_bytes": int(dense),
        "ratio": csr / dense,
    }
