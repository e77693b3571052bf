"""Tests for slics.utils.validation."""

import numpy as np
import pytest

from slics.utils.validation import check_int


@pytest.mark.parametrize("value, expect", [(3, 3), (np.int32(4), 4), (5.0, 5), (np.float32(0), 0)])
def test_check_int_accepts_integers(value, expect):
    out = check_int(value, "n")
    assert out == expect and type(out) is int


@pytest.mark.parametrize("value", [2.9, 1.7, True, np.bool_(False), "3", None, float("nan"), float("inf")])
def test_check_int_rejects_non_integers(value):
    with pytest.raises(ValueError, match="n must be an integer"):
        check_int(value, "n")


def test_check_int_minimum():
    assert check_int(0, "n", minimum=0) == 0
    with pytest.raises(ValueError, match="at least 1, got 0"):
        check_int(0, "n", minimum=1)


@pytest.mark.parametrize("given, expect", [(np.float32, np.float32), (np.float64, np.float64), (np.float16, np.float64),
                                           (np.int64, np.float64), (np.uint8, np.float64)])
def test_check_matrix_keeps_a_listed_dtype_and_converts_others_to_the_first(given, expect):
    from slics.utils.validation import check_matrix

    X = np.arange(6).reshape(2, 3).astype(given)
    out = check_matrix(X, "X", dtype=[np.float64, np.float32])
    assert out.dtype == expect and np.array_equal(out, X.astype(expect))
    assert (out is X) == (given == expect)          # no copy of an accepted dtype


def test_check_matrix_with_a_dtype_list_still_rejects_non_finite_values():
    from slics.utils.validation import check_matrix

    X = np.ones((2, 3), np.float32)
    X[1, 2] = np.nan
    with pytest.raises(ValueError, match=r"X contains 1 NaN .*float32"):
        check_matrix(X, "X", dtype=[np.float64, np.float32])


@pytest.mark.parametrize("dtype", [np.float16, np.float32, np.float64])
@pytest.mark.parametrize("case", ["finite", "overflowing sum", "nan", "inf", "-inf", "inf and -inf", "empty", "huge"])
def test_all_finite_is_the_elementwise_check(dtype, case):
    # the sum's fast path must agree with np.isfinite entry by entry, also where a finite array's
    # sum overflows (then it falls back) and where infinities of both signs sum to NaN
    from slics.utils.validation import all_finite, check_matrix

    rng = np.random.default_rng(7)
    X = rng.standard_normal((37, 11)).astype(dtype)
    top = np.finfo(dtype).max
    if case == "overflowing sum":
        X[:] = top / 2
    elif case == "huge":
        X[3, 4], X[5, 6] = top, -top
    elif case in ("nan", "inf", "-inf"):
        X[rng.integers(37), rng.integers(11)] = float(case)
    elif case == "inf and -inf":
        X[1, 2], X[30, 9] = np.inf, -np.inf
    elif case == "empty":
        X = X[:0]
    for view in (X, np.asfortranarray(X), X[::-2, ::3], X[1::2]):
        assert all_finite(view) is bool(np.isfinite(view).all())
    expect = bool(np.isfinite(X).all())
    if not expect:
        with pytest.raises(ValueError, match=r"X contains \d+ NaN or infinite"):
            check_matrix(X, "X", dtype=[dtype])
