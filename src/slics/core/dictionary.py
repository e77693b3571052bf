"""SLiCS: supervised dictionary learning of sparse linear concept subspaces.

Model. A unit-norm embedding ``x`` (``d`` dims) is a sum over ``C`` concepts of
components ``x_j = D_j^T w_j``: ``D_j`` holds the ``K`` unit atoms of concept
``j`` (rows, not sign-constrained) and ``w_j >= 0``. In supervised training the
label row ``y`` fixes the support: ``w_j = 0`` whenever ``y_j = 0``. Layout: the
fitted ``dictionary_`` has shape ``(C * K, d)``, concept-major (atom ``j * K + k``
belongs to concept ``j``; ``atom_concept_`` says so), and coefficients have shape
``(n, C * K)`` with ``X ≈ W @ dictionary_``.

Training (alternating minimisation, as in the paper):

1. Initialisation (S-SVD): the atoms of concept ``j`` are the top-``K`` left singular
   vectors of the (uncentred) matrix of training embeddings labelled ``j``, each
   with the polarity given by :func:`majority_sign` of its projections. A concept
   with fewer than ``K`` samples has rank below ``K``: its remaining atoms are random
   unit vectors (seeded by ``random_state``, with a warning) that are then learned
   like any other atom.
2. Coefficient step: :func:`slics.core.nnls.nnls_batch` of every sample on the atoms of
   its labelled concepts (optionally with a ridge term).
3. Atom step (``update="ksvd"``), atom by atom: on the samples where the atom is
   active, the residual with the atom's own contribution added back, ``R``; its
   rank-1 truncated SVD ``sigma u v^T``; the sign ``s`` of :func:`majority_sign`;
   the atom becomes ``s u`` and its coefficients ``max(0, s sigma v)``. An atom that
   no sample uses is kept unchanged. (Compiled in :mod:`slics.core._ksvd`: Lanczos on the
   gathered rows, tolerance ``_KSVD_TOL``, updated rows written straight back into the
   residual.) With ``monotone=True`` an update is kept only if
   it lowers the residual energy, so (with ``ridge=0`` and full batches) the error
   history never increases. ``update="bcd"`` and ``update="power"`` are the
   alternatives of the paper's appendix A (see :class:`SLiCS`).

``error_history_`` holds the relative reconstruction error
``||X - W D||_F / ||X||_F`` of the training set with NNLS coefficients, after the
initialisation and after every iteration; its last value is therefore the error
of :meth:`SLiCS.transform` on the training data.
"""

from __future__ import annotations

import functools
import os
import warnings

import numpy as np
import scipy.linalg
from sklearn.base import BaseEstimator
from sklearn.utils.validation import check_is_fitted
from tqdm import tqdm

from ..utils.threads import blas_threads_for, single_thread_blas
from ..utils.validation import (check_choice, check_index, check_int, check_labels, check_matrix, check_positive,
                                check_random_state, is_dask_array)
from ._ksvd import ksvd_step
from .nnls import nnls_batch

UPDATES = ("ksvd", "bcd", "power")
_KSVD_TOL = 1e-9    # Ritz residual of the compiled K-SVD atom solver (relative to sigma^2)
_SCALE_RANGE = (1e-60, 1e60)   # accepted ||X||_F of a fit: the atom step squares energies (see _check_scale)


def majority_sign(projections, axis=None):
    """Polarity of a rank-1 term under non-negative coefficients (the paper's majority rule).

    For a residual ``R`` and a unit direction ``u`` with projections ``p = R u``, using the
    atom ``s u`` with the best non-negative coefficients ``max(0, s p_i)`` removes the
    energy ``sum_{i: s p_i > 0} p_i^2``. The rule picks the sign that removes more:
    ``+1`` when ``sum_{p_i > 0} p_i^2 >= sum_{p_i < 0} p_i^2`` (ties go to ``+1``), else ``-1``.

    Parameters
    ----------
    projections : array_like
        Projections ``p`` (for the SVD update, ``sigma v``).
    axis : int, optional
        Axis along which to decide (default: the whole array).

    Returns
    -------
    float or ndarray
        ``+1.0`` or ``-1.0`` (an array when ``axis`` is given).
    """
    p = np.asarray(projections, dtype=float)
    signed_energy = np.sum(p * np.abs(p), axis=axis)
    out = np.where(signed_energy >= 0, 1.0, -1.0)
    return float(out) if out.ndim == 0 else out


def top_singular_pair(R: np.ndarray, v0=None, tol: float = 1e-8, max_steps: int = 200):
    """Leading right singular vector of ``R`` by Golub-Kahan-Lanczos bidiagonalisation.

    Parameters
    ----------
    R : ndarray of shape (m, d)
    v0 : ndarray of shape (d,), optional
        Start vector (a warm start, e.g. the current atom); default the largest row.
    tol : float, default 1e-8
        Stop when ``||R^T u - sigma v|| <= tol * sigma``.
    max_steps : int, default 200
        Total Lanczos steps (restarted every 10 from the current estimate).

    Returns
    -------
    sigma : float
        Leading singular value.
    v : ndarray of shape (d,)
        Unit right singular vector (``R v = sigma u``); its sign is arbitrary.
    """
    m, d = R.shape
    if min(m, d) <= 24:
        _, s, vt = np.linalg.svd(R, full_matrices=False)
        return float(s[0]), vt[0]
    if v0 is None or not np.any(R @ v0):  # also when v0 is orthogonal to every row of R
        v0 = R[np.argmax(np.einsum("ij,ij->i", R, R))]
        if not np.any(v0):
            return 0.0, np.eye(1, d)[0]
    # A small fixed pseudo-random component: a start vector lying exactly in an invariant
    # subspace (e.g. another singular vector) would otherwise never see the leading one.
    v = v0 / np.linalg.norm(v0) + 1e-3 * _jitter(d)
    v /= np.linalg.norm(v)
    L, steps = 10, 0
    while True:
        V = np.empty((L + 1, d))
        U = np.empty((L, m))
        alpha = np.zeros(L)
        beta = np.zeros(L)
        V[0] = v
        for i in range(L):
            u = R @ V[i]
            if i:
                u -= beta[i - 1] * U[i - 1]
                u -= U[:i].T @ (U[:i] @ u)
            alpha[i] = np.linalg.norm(u)
            U[i] = u / alpha[i] if alpha[i] > 0 else 0.0
            w = R.T @ U[i] - alpha[i] * V[i]
            w -= V[:i + 1].T @ (V[:i + 1] @ w)
            beta[i] = np.linalg.norm(w)
            P, s, Qt = np.linalg.svd(_bidiag(alpha, beta, i + 1))
            steps += 1
            sigma = s[0]
            est = V[:i + 1].T @ Qt[0]
            est /= np.linalg.norm(est)
            # ||R^T u - sigma v|| = |beta_i P[i, 0]|; alpha_i = 0 or beta_i = 0: invariant subspace
            if (abs(beta[i] * P[i, 0]) <= tol * sigma or alpha[i] <= tol * sigma or beta[i] <= tol * sigma
                    or steps >= max_steps):
                return float(sigma), est
            V[i + 1] = w / beta[i]
        v = est


@functools.lru_cache(maxsize=8)
def _jitter(d: int) -> np.ndarray:
    """A fixed pseudo-random unit vector of length ``d`` (read-only)."""
    g = np.random.default_rng(0).standard_normal(d)
    g /= np.linalg.norm(g)
    g.flags.writeable = False
    return g


def _bidiag(alpha, beta, k):
    B = np.diag(alpha[:k])
    if k > 1:
        B[np.arange(k - 1), np.arange(1, k)] = beta[:k - 1]
    return B


def _new_atom(R, c_old, d_old, update, tol=1e-6):
    """Candidate (atom, coefficients) for one atom given its residual ``R`` (atom added back)."""
    if update == "ksvd":
        _, v = top_singular_pair(R, v0=d_old, tol=tol)
        p = R @ v
        s = majority_sign(p)
        return s * v, np.maximum(0.0, s * p)
    if update == "bcd":
        g = R.T @ c_old
        ng = np.linalg.norm(g)
        if ng == 0:
            return None
        atom = g / ng
        return atom, np.maximum(0.0, R @ atom)
    # "power": the modified power method, started from the current atom
    atom = d_old
    for _ in range(100):
        coef = np.maximum(0.0, R @ atom)
        g = R.T @ coef
        ng = np.linalg.norm(g)
        if ng == 0:
            return None
        new = g / ng
        converged = np.linalg.norm(new - atom) <= 1e-9
        atom = new
        if converged:
            break
    return atom, np.maximum(0.0, R @ atom)


def _atom_step(D, W, E, Y, K, update, monotone, compiled=True):
    """Update every atom in place (``D``, ``W``, residual ``E = X - W D``); returns #rejected.

    ``update="ksvd"`` on float64 arrays runs the compiled solver of :mod:`slics.core._ksvd`;
    ``compiled=False`` runs the straightforward Python form (Golub-Kahan-Lanczos on a gathered
    copy, to the same tolerance), kept as the reference of the tests.
    """
    if compiled and update == "ksvd" and E.dtype == np.float64 and E.flags.c_contiguous and W.flags.c_contiguous \
            and D.flags.c_contiguous and W.dtype == D.dtype == np.float64:
        Yb = np.asarray(Y, bool)
        idx = np.flatnonzero(Yb.T.ravel()) % Yb.shape[0]         # rows of concept 0, then 1, ...
        ptr = np.r_[0, np.cumsum(Yb.sum(axis=0))].astype(np.int64)
        with single_thread_blas():
            rejected, _ = ksvd_step(E, W, D, ptr, idx.astype(np.int64), int(K), bool(monotone), _KSVD_TOL,
                                    np.array(_jitter(E.shape[1])))
        return int(rejected)
    rejected = 0
    ger = scipy.linalg.blas.get_blas_funcs("ger", (E,))
    buf = np.empty(E.size)
    with single_thread_blas():
        for j in range(Y.shape[1]):
            rows = np.flatnonzero(Y[:, j])
            sl = slice(j * K, (j + 1) * K)
            Wj = W[rows, sl]
            if not np.any(Wj > 0):
                continue
            Ej = E[rows]
            for k in range(K):
                a = np.flatnonzero(Wj[:, k] > 0)
                if a.size == 0:          # unused atom: kept unchanged
                    continue
                c_old, d_old = Wj[a, k], D[j * K + k]
                R = buf[:a.size * E.shape[1]].reshape(a.size, E.shape[1])
                np.take(Ej, a, axis=0, out=R, mode="clip")      # (unbuffered: indices are valid)
                old = float(np.dot(R.ravel(), R.ravel()))
                ger(1.0, d_old, c_old, a=R.T, overwrite_a=True)      # R += c_old d_old^T, in place
                cand = _new_atom(R, c_old, d_old, update, _KSVD_TOL)
                if cand is None:
                    continue
                atom, coef = cand
                new = float(np.dot(R.ravel(), R.ravel()) - np.dot(coef, coef))
                if monotone and not new < old:
                    rejected += 1
                    continue
                ger(-1.0, atom, coef, a=R.T, overwrite_a=True)      # R -= coef atom^T
                Ej[a] = R
                Wj[a, k] = coef
                D[j * K + k] = atom
            E[rows] = Ej
            W[rows, sl] = Wj
    return rejected


def _residual(X, W, D, out=None):
    """``X - W D`` with one n x d array (in place on the product, or into ``out``: peak memory).
    The atom step's compiled kernel follows: a small product runs on one BLAS thread (see
    ``blas_threads_for``)."""
    with blas_threads_for(W.shape[0] * W.shape[1] * D.shape[1]):
        E = np.matmul(W, D, out=out)
    np.subtract(X, E, out=E)
    return E


def _available_memory() -> int:
    """Physical memory in bytes (a generous bound: the fit must fit in it)."""
    try:
        return os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES")
    except (ValueError, OSError, AttributeError):      # not POSIX: no bound
        return 1 << 62


def _check_memory(K: int, C: int, n: int, d: int) -> None:
    """Raise before allocating when the dictionary and its coefficients cannot fit in memory."""
    # float64 arrays of the fit: dictionary and its initial copy (2 C K d), coefficients, their
    # support and one NNLS work copy (about 3 n C K), and the residual (n d)
    need = 8 * (2 * C * K * d + 3 * n * C * K + n * d)
    have = _available_memory()
    if need > have:
        raise ValueError(f"n_atoms={K} needs about {need / 2 ** 30:.3g} GiB for {C} concepts, {n} samples "
                         f"and {d} features, more than this machine's {have / 2 ** 30:.3g} GiB; "
                         f"lower n_atoms (atoms per concept).")


def _check_scale(X: np.ndarray) -> float:
    """``||X||_F^2``, or a ValueError when X is zero or its scale is outside ``_SCALE_RANGE``.

    The fit squares the entries (Gram matrices) and the atom step squares those energies again,
    so a Frobenius norm far from 1 over- or underflows float64 part way, with a misleading error.
    """
    total = float(np.einsum("ij,ij->", X, X))
    if not np.any(X):
        raise ValueError("X is all zeros: there is nothing to reconstruct (the relative error is undefined).")
    norm = float(np.sqrt(total))
    if not _SCALE_RANGE[0] <= norm <= _SCALE_RANGE[1]:
        amax = float(np.max(np.abs(X)))
        flow = "overflows" if amax > 1 else "underflows"
        raise ValueError(f"X's scale is out of range: ||X||_F = {norm:.3g} (largest |entry| {amax:.3g}) must lie "
                         f"in [{_SCALE_RANGE[0]:g}, {_SCALE_RANGE[1]:g}], else float64 {flow} in the fit; "
                         f"rescale X first, e.g. normalise its rows to unit length as the paper does.")
    return total


def _labelled_rows(X, Y):
    """``X`` and boolean ``Y`` without the rows of ``Y`` that are all zero (dropped with a warning)."""
    Y = check_labels(Y, X.shape[0])
    empty = ~Y.any(axis=1)
    if empty.any():
        warnings.warn(f"dropping {int(empty.sum())} sample(s) with no concept label (all-zero rows of Y).",
                      UserWarning, stacklevel=3)
        X, Y = X[~empty], Y[~empty]
        if X.shape[0] == 0:
            raise ValueError("every row of Y is all-zero: there is nothing to learn from.")
    return X, Y


def _check_concepts(Y) -> None:
    missing = np.flatnonzero(~Y.any(axis=0))
    if missing.size:
        raise ValueError(f"concept(s) {missing.tolist()} have no training samples; drop those columns of Y "
                         f"or add labelled samples.")


class SLiCS(BaseEstimator):
    """Sparse Linear Concept Subspaces: a group-structured, non-negative dictionary.

    Parameters
    ----------
    n_atoms : int
        Atoms per concept, ``K >= 1``.
    n_iter : int, default 10
        Alternating iterations (epochs with ``batch_size``). ``0`` gives the S-SVD
        baseline: the initialisation only.
    batch_size : int, optional
        Mini-batches: each iteration is an epoch over shuffled disjoint batches of this
        size (coefficients on the batch, then the atoms active on the batch). Default:
        full batch.
    update : {"ksvd", "bcd", "power"}, default "ksvd"
        Atom update. ``"ksvd"``: rank-1 SVD of the atom's residual with the majority sign
        (the paper's method). ``"bcd"``: block-coordinate descent, the least-squares
        atom given the current coefficients, normalised, then the non-negative
        coefficients given the atom. ``"power"``: the modified power method, iterating
        ``c = max(0, R a)``, ``a = R^T c / ||R^T c||`` from the current atom to convergence.
    monotone : bool, default False
        Keep an atom update only if it lowers the residual energy of its samples (the
        cyclic-minimiser check); the error history is then non-increasing (full batch,
        ``ridge=0``).
    ridge : float, default 0.0
        Ridge weight of the coefficient step (see :func:`slics.core.nnls.nnls_batch`); the atom
        step and ``error_history_`` use the plain reconstruction error.
    random_state : int, default 0
        Seed of the random atoms of under-sampled concepts and of the batch shuffles.
    tol : float, optional
        Stopping rule beside ``n_iter``: stop after the first iteration whose relative
        decrease of the error, ``(e_{k-1} - e_k) / e_{k-1}``, is below ``tol`` (an increase
        also stops). Default ``None``: always run ``n_iter`` iterations (the paper's 10).

    Attributes
    ----------
    dictionary_ : ndarray of shape (n_concepts * n_atoms, n_features)
        Unit atoms (rows), concept-major.
    atom_concept_ : ndarray of shape (n_concepts * n_atoms,)
        Concept index of each atom.
    init_dictionary_ : ndarray of shape (n_concepts * n_atoms, n_features)
        The S-SVD initialisation.
    error_history_ : ndarray of shape (n_iter_ + 1,)
        Relative reconstruction error (NNLS coefficients) after initialisation and after
        every iteration.
    n_iter_ : int
        Iterations run (``n_iter`` unless ``tol`` stopped earlier).
    n_features_in_, n_concepts_ : int
    n_rejected_ : int
        Atom updates rejected by the monotone check.

    Notes
    -----
    Label rows with no concept carry no information for supervised training: ``fit``
    drops them with a warning (as the paper does). A concept with no sample at all is an
    error. ``transform`` and ``components`` give all-zero coefficients to such rows.

    A concept with fewer than ``n_atoms`` samples (or ``n_features < n_atoms``) gets its
    remaining atoms as random unit vectors, with a warning; they are learned like the
    others. An atom that no sample uses (all its coefficients zero) is kept unchanged.

    With ``batch_size`` the atom step of a batch sees only that batch's residual, and the
    monotone check is per batch; ``error_history_`` is then computed after each epoch
    with a fresh NNLS pass over the whole training set, and may increase.
    """

    def __init__(self, n_atoms, n_iter=10, batch_size=None, update="ksvd", monotone=False, ridge=0.0,
                 random_state=0, tol=None):
        self.n_atoms = n_atoms
        self.n_iter = n_iter
        self.batch_size = batch_size
        self.update = update
        self.monotone = monotone
        self.ridge = ridge
        self.random_state = random_state
        self.tol = tol

    # ------------------------------------------------------------------ checks
    def _check_params(self):
        check_int(self.n_atoms, "n_atoms (K, atoms per concept)", minimum=1)
        check_int(self.n_iter, "n_iter", minimum=0)
        check_choice(self.update, "update", UPDATES)
        if self.batch_size is not None:
            check_int(self.batch_size, "batch_size (None or an integer)", minimum=1)
        check_positive(self.ridge, "ridge", allow_zero=True)
        if self.tol is not None:
            check_positive(self.tol, "tol", allow_zero=True)
        check_random_state(self.random_state)

    def _check_XY(self, X, Y):
        check_is_fitted(self, "dictionary_")
        X = check_matrix(X, "X", n_cols=self.n_features_in_, dtype=[np.float64, np.float32])   # nnls_batch converts
        Y = check_labels(Y, X.shape[0])
        if Y.shape[1] != self.n_concepts_:
            raise ValueError(f"Y has {Y.shape[1]} concepts but the model was fitted with {self.n_concepts_}.")
        return X, Y

    def _on_blocks(self, method, X, Y, *extra):
        """``method`` over the row blocks of a dask ``X`` (:mod:`slics.distributed.coding`)."""
        from ..distributed.coding import slics_rows

        check_is_fitted(self, "dictionary_")
        return slics_rows(self, method, X, Y, *extra)

    def _support(self, Y):
        return np.repeat(Y, int(self.n_atoms), axis=1)

    # ------------------------------------------------------------------ fitting
    def _initialise(self, X, Y, rng):
        K, d = int(self.n_atoms), X.shape[1]
        D = np.empty((Y.shape[1] * K, d))
        for j in range(Y.shape[1]):
            Xj = X[Y[:, j]]
            m = Xj.shape[0]
            r = min(K, m, d)
            if m > d:
                _, vecs = scipy.linalg.eigh(Xj.T @ Xj, subset_by_index=[d - r, d - 1])
                U = vecs[:, ::-1].T
            else:
                U = np.linalg.svd(Xj, full_matrices=False)[2][:r]
            U *= majority_sign(Xj @ U.T, axis=0)[:, None]
            if r < K:
                warnings.warn(f"concept {j} has {m} training sample(s), fewer than n_atoms={K} "
                              f"(or d={d} < K): its other {K - r} atoms start as random unit vectors.",
                              UserWarning, stacklevel=3)
                extra = rng.standard_normal((K - r, d))
                U = np.vstack([U, extra / np.linalg.norm(extra, axis=1, keepdims=True)])
            D[j * K:(j + 1) * K] = U
        return D

    def fit(self, X, Y):
        """Learn the dictionary from embeddings ``X`` and binary concept labels ``Y``.

        Parameters
        ----------
        X : array of shape (n_samples, n_features)
            Embeddings (rows; unit norm in the paper, not required).
        Y : array of shape (n_samples, n_concepts)
            Binary labels (or pseudo-labels from
            :func:`slics.core.zero_shot.zero_shot_pseudo_labels` for unsupervised SLiCS).
            All-zero rows are dropped with a warning.

        Returns
        -------
        self : SLiCS
        """
        self._check_params()
        X, Y = _labelled_rows(check_matrix(X, "X"), Y)
        _check_concepts(Y)
        K, C = int(self.n_atoms), Y.shape[1]
        _check_memory(K, C, *X.shape)
        total = _check_scale(X)
        self.n_features_in_, self.n_concepts_ = X.shape[1], C
        self.atom_concept_ = np.repeat(np.arange(C), K)
        rng = check_random_state(self.random_state)

        with single_thread_blas():
            D = self._initialise(X, Y, rng)
        self.init_dictionary_ = D.copy()
        S = self._support(Y)
        W = nnls_batch(D, X, S, ridge=self.ridge)
        E = _residual(X, W, D)
        history = [np.sqrt(np.einsum("ij,ij->", E, E) / total)]
        self.n_rejected_ = 0
        n = X.shape[0]
        for _ in tqdm(range(int(self.n_iter)), desc="SLiCS", disable=None, leave=False):
            if self.batch_size is None or self.batch_size >= n:
                self.n_rejected_ += _atom_step(D, W, E, Y, K, self.update, self.monotone)
            else:
                perm = rng.permutation(n)
                for b in np.array_split(perm, int(np.ceil(n / self.batch_size))):
                    W[b] = self._batch_step(D, X[b], Y[b], S[b], init=W[b])[0]
            W = nnls_batch(D, X, S, ridge=self.ridge, init=W, overwrite_init=True)
            E = _residual(X, W, D, out=E)
            history.append(np.sqrt(np.einsum("ij,ij->", E, E) / total))
            if self.tol is not None and (history[-2] - history[-1]) < self.tol * history[-2]:
                break
        self.n_iter_ = len(history) - 1
        self.dictionary_ = D
        self.error_history_ = np.asarray(history)
        return self

    def _batch_step(self, D, Xb, Yb, Sb, init=None):
        """One mini-batch step, in place on ``D``: NNLS coefficients of the batch, then the atoms
        active on it; returns the batch's coefficients and residual."""
        Wb = nnls_batch(D, Xb, Sb, ridge=self.ridge, init=init, overwrite_init=init is not None)
        Eb = _residual(Xb, Wb, D)
        self.n_rejected_ += _atom_step(D, Wb, Eb, Yb, int(self.n_atoms), self.update, self.monotone)
        return Wb, Eb

    def partial_fit(self, X, Y, *, init_dictionary=None):
        """One mini-batch step of SLiCS on the batch ``(X, Y)``: the paper's mini-batch fit, fed from a stream.

        The first call starts the dictionary: by S-SVD on this batch (each concept needs a sample
        in it), or from ``init_dictionary``; every call then does what one batch of
        :meth:`fit` with ``batch_size`` does (NNLS coefficients of the batch, then the atoms active
        on it). Calling it on the batches of an epoch of ``fit`` (same rows, same order), from
        ``fit``'s ``init_dictionary_``, gives ``fit``'s dictionary (``fit`` warm-starts each NNLS
        from the previous pass, which changes only rounding). Memory is set by the batch.

        Parameters
        ----------
        X : array of shape (n_batch, n_features), or a dask array
            A dask array is streamed: one step per row chunk, each chunk computed in turn.
        Y : array of shape (n_batch, n_concepts)
            Binary labels; all-zero rows are dropped with a warning.
        init_dictionary : array of shape (n_concepts * n_atoms, n_features), optional
            The starting dictionary (first call only), e.g. an S-SVD over more data.

        Returns
        -------
        self : SLiCS
            With ``dictionary_``, ``init_dictionary_``, ``atom_concept_``, ``n_rejected_``,
            ``n_iter_`` (batch steps so far) and ``error_history_`` (relative error of each batch
            after its step).
        """
        if is_dask_array(X):
            from ..distributed.coding import stream_batches

            for Xb, Yb in stream_batches(X, Y):
                self.partial_fit(Xb, Yb, init_dictionary=init_dictionary)
                init_dictionary = None
            return self
        self._check_params()
        started = hasattr(self, "dictionary_")
        X = check_matrix(X, "X", n_cols=self.n_features_in_ if started else None)
        X, Y = _labelled_rows(X, Y)
        total = _check_scale(X)
        K = int(self.n_atoms)
        if not started:
            C = Y.shape[1]
            if init_dictionary is None:
                _check_concepts(Y)
                with single_thread_blas():
                    D = self._initialise(X, Y, np.random.default_rng(self.random_state))
            else:
                D = np.array(check_matrix(init_dictionary, "init_dictionary", n_cols=X.shape[1]), order="C")
                if D.shape[0] != C * K:
                    raise ValueError(f"init_dictionary has {D.shape[0]} atoms; {C} concepts x n_atoms={K} "
                                     f"= {C * K} are expected.")
            self.n_features_in_, self.n_concepts_ = X.shape[1], C
            self.atom_concept_ = np.repeat(np.arange(C), K)
            self.init_dictionary_, self.dictionary_ = D.copy(), D
            self.n_rejected_, self.n_iter_, self.error_history_ = 0, 0, np.empty(0)
        elif init_dictionary is not None:
            raise ValueError("init_dictionary starts a partial fit; this model already has a dictionary.")
        elif Y.shape[1] != self.n_concepts_:
            raise ValueError(f"Y has {Y.shape[1]} concepts but the model was fitted with {self.n_concepts_}.")
        _, Eb = self._batch_step(self.dictionary_, X, Y, self._support(Y))
        self.n_iter_ += 1
        self.error_history_ = np.append(self.error_history_, np.sqrt(np.einsum("ij,ij->", Eb, Eb) / total))
        return self

    # ------------------------------------------------------------------ using
    def transform(self, X, Y):
        """Non-negative coefficients supported on the labelled concepts.

        Parameters
        ----------
        X : array of shape (n, n_features)
        Y : array of shape (n, n_concepts)
            Binary labels (or pseudo-labels) fixing which concepts each row may use.

        Returns
        -------
        W : ndarray of shape (n, n_concepts * n_atoms)
            NNLS coefficients (``X ≈ W @ dictionary_``), zero outside ``Y``'s concepts.
        """
        if is_dask_array(X):      # lazy, block by block, the model sent once (slics.distributed)
            return self._on_blocks("transform", X, Y)
        X, Y = self._check_XY(X, Y)
        return nnls_batch(self.dictionary_, X, self._support(Y), ridge=self.ridge)

    def components(self, X, Y):
        """Full disentanglement: the component of every row in every concept.

        Parameters
        ----------
        X : array of shape (n, n_features)
        Y : array of shape (n, n_concepts)

        Returns
        -------
        ndarray of shape (n, n_concepts, n_features)
            ``[i, j]`` is ``D_j^T w_j`` for row ``i`` (zero for unlabelled concepts); the
            components sum to the NNLS reconstruction ``transform(X, Y) @ dictionary_``.
        """
        if is_dask_array(X):
            return self._on_blocks("components", X, Y)
        W = self.transform(X, Y)
        C, K = self.n_concepts_, int(self.n_atoms)
        return np.einsum("nck,ckd->ncd", W.reshape(-1, C, K), self.dictionary_.reshape(C, K, -1))

    def project(self, X, concept):
        """Partial disentanglement: the closest point of one concept's cone to every row.

        This is the paper's eq. 3: ``D_j^T w`` with ``w = argmin_{w >= 0} ||x - D_j^T w||``
        (NNLS on that concept's atoms alone, without ridge).

        Parameters
        ----------
        X : array of shape (n, n_features)
        concept : int
            Concept index in ``[0, n_concepts)``.

        Returns
        -------
        ndarray of shape (n, n_features)
        """
        check_is_fitted(self, "dictionary_")
        if is_dask_array(X):
            return self._on_blocks("project", X, None, check_index(concept, "concept", self.n_concepts_))
        X = check_matrix(X, "X", n_cols=self.n_features_in_)
        concept = check_index(concept, "concept", self.n_concepts_)
        Dj = self.dictionary_[self.atom_concept_ == concept]
        # einsum's own loop, as in components(): a row's sum does not depend on how many rows are
        # in the call, as BLAS's can for so short a product (so row blocks on Dask workers match)
        return np.einsum("nk,kd->nd", nnls_batch(Dj, X), Dj)
