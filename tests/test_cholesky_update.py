"""The Cholesky factor that the lasso's support solves keep up to date (slics.core._cholesky).

After any sequence of removals and appends, the factor must be the factor of the Gram block of
the atoms it holds, in their order: checked against the block itself (``L L^T``), against
NumPy's factor of that block (the Cholesky factor with a positive diagonal is unique), and its
solves against SciPy's ``cho_solve``. The Lawson-Hanson NNLS and the lasso's support solves
both keep their factors with these kernels.
"""

import numpy as np
import pytest
from scipy.linalg import cho_factor, cho_solve

from slics.core._cholesky import PIVOT, chol_append, chol_factor, chol_factor_rows, chol_remove, chol_solve


def gram(m, d, seed, coherent=0.0):
    rng = np.random.default_rng(seed)
    A = rng.normal(size=(m, d)) + coherent * rng.normal(size=d)
    return A @ A.T


def check_factor(L, P, n, M, atoms):
    """``L[:n, :n]`` (its lower triangle) is the factor of ``M[atoms, atoms]``, held in ``P[:n]``."""
    assert list(P[:n]) == list(atoms)
    block = M[np.ix_(atoms, atoms)]
    F = np.tril(L[:n, :n])
    assert np.all(np.diag(F) > 0.0)
    scale = np.abs(block).max()
    np.testing.assert_allclose(F @ F.T, block, rtol=0, atol=1e-11 * scale)
    np.testing.assert_allclose(F, np.linalg.cholesky(block), rtol=0, atol=1e-8 * np.sqrt(scale))


@pytest.mark.parametrize("m, d, coherent", [(12, 20, 0.0), (40, 60, 0.0), (40, 60, 3.0), (90, 120, 1.0)])
@pytest.mark.parametrize("seed", [0, 1, 2])
def test_random_removals_and_appends_keep_the_factor_of_the_block(m, d, coherent, seed):
    M = gram(m, d, seed, coherent)
    rng = np.random.default_rng(100 + seed)
    atoms = list(rng.permutation(m)[: m // 2])
    P = np.zeros(m, np.int64)
    P[: len(atoms)] = atoms
    L = np.empty((m, m))
    factor = chol_factor_rows if seed % 2 else lambda M_, P_, n_, L_: chol_factor(
        M_[np.ix_(P_[:n_], P_[:n_])].copy(), n_, L_, PIVOT)
    assert factor(M, P, len(atoms), L)
    check_factor(L, P, len(atoms), M, atoms)
    for _ in range(3 * m):
        n = len(atoms)
        if n > 1 and (rng.random() < 0.5 or n == m):
            p = int(rng.integers(n))
            chol_remove(L, P, n, p)
            atoms.pop(p)
        else:
            a = int(rng.choice([j for j in range(m) if j not in atoms]))
            P[n] = a
            assert chol_append(M, P, n, L)
            atoms.append(a)
        check_factor(L, P, len(atoms), M, atoms)
    n = len(atoms)
    b = rng.normal(size=m)
    x = np.empty(n)
    chol_solve(L, P, n, b, x)
    expected = cho_solve(cho_factor(M[np.ix_(atoms, atoms)]), b[atoms])
    np.testing.assert_allclose(x, expected, rtol=1e-8, atol=1e-12 * np.abs(expected).max())


@pytest.mark.parametrize("p", [0, 3, 6])
def test_removing_the_first_middle_and_last_atom(p):
    M = gram(7, 9, 5)
    P = np.arange(7)
    L = np.empty((7, 7))
    assert chol_factor(M.copy(), 7, L, PIVOT)
    chol_remove(L, P, 7, p)
    check_factor(L, P, 6, M, [j for j in range(7) if j != p])


def test_a_dependent_atom_is_refused_and_leaves_the_factor_unchanged():
    rng = np.random.default_rng(3)
    A = rng.normal(size=(5, 8))
    A = np.vstack([A, A[1] - 2.0 * A[3]])        # atom 5 is a combination of atoms 1 and 3
    M = A @ A.T
    P = np.arange(6)
    L = np.empty((6, 6))
    assert chol_factor_rows(M, P, 5, L)
    before = np.tril(L[:5, :5])
    assert not chol_append(M, P, 5, L)
    np.testing.assert_array_equal(np.tril(L[:5, :5]), before)
    assert not chol_factor(M.copy(), 6, np.empty((6, 6)), PIVOT)
    assert not chol_factor_rows(M, P, 6, np.empty((6, 6)))


def test_a_nearly_dependent_atom_is_refused_by_the_relative_pivot():
    """Atom 5 is a combination of atoms 1 and 3 plus a component of length 3.2e-7 orthogonal to all
    atoms: its pivot ``L_55^2`` is about 1e-13, clearly above rounding (about 1e-14 here) and far
    below ``PIVOT * G_55`` (about 4e-12). Positive, so only the relative threshold refuses it, in
    the row-by-row append and in LAPACK's factor; twice that threshold's scale away, it is accepted."""
    rng = np.random.default_rng(5)
    A = rng.normal(size=(5, 8))
    orth = np.linalg.svd(A)[2][-1]                       # a unit vector orthogonal to the five atoms
    for length, refused in ((np.sqrt(1e-13), True), (np.sqrt(1e-9), False)):
        B = np.vstack([A, A[1] - 2.0 * A[3] + length * orth])
        M = B @ B.T
        P = np.arange(6)
        L = np.empty((6, 6))
        assert chol_factor_rows(M, P, 5, L)
        exact = length ** 2                                # the pivot in exact arithmetic
        assert (exact <= PIVOT * M[5, 5]) == refused
        assert chol_append(M, P, 5, L) == (not refused)
        assert chol_factor(M.copy(), 6, np.empty((6, 6)), PIVOT) == (not refused)
