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
