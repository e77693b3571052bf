import numpy as np
import pytest
from scipy import stats

from slics.sections import robustness as rb

REPORT_X = [1, 1, 1, 6, 1, 1]


def test_report_values():
    assert rb.mean_estimate(REPORT_X) == pytest.approx(11 / 6)
    assert rb.median_estimate(REPORT_X) == 1.0
    assert rb.mode_estimate(REPORT_X) == 1.0


@pytest.mark.parametrize("seed", range(5))
@pytest.mark.parametrize("n", [1, 2, 7, 10])
def test_against_numpy_and_scipy(seed, n):
    x = np.random.default_rng(seed).integers(-3, 4, size=n).astype(float)
    assert rb.mean_estimate(x) == pytest.approx(np.mean(x))
    assert rb.median_estimate(x) == pytest.approx(np.median(x))
    # scipy's mode also returns the smallest of tied values
    assert rb.mode_estimate(x) == stats.mode(x, keepdims=False).mode


@pytest.mark.parametrize("x, expected", [
    ([4, 1, 3, 2], 2.5),          # even length: midpoint of the middle two
    ([5, 5, 1, 1], 3.0),
    ([2, 9], 5.5),
    ([7], 7.0),
    ([3, 1, 2], 2.0),
])
def test_median_hand_cases(x, expected):
    assert rb.median_estimate(x) == expected


@pytest.mark.parametrize("x, expected", [
    ([3, 3, 1, 1, 2], 1.0),       # tie between 1 and 3: smallest wins
    ([5, 4, 3], 3.0),             # all unique: smallest
    ([2, 2, 2, 9, 9], 2.0),
    ([-1.5, 0.0, -1.5], -1.5),
])
def test_mode_hand_cases_and_ties(x, expected):
    assert rb.mode_estimate(x) == expected


def test_mode_with_tolerance_groups_nearby_values():
    x = [1.0, 1.05, 0.95, 5.0, 5.0]
    assert rb.mode_estimate(x) == 5.0
    assert rb.mode_estimate(x, tol=0.1) == 1.0  # 1.0 matches 0.95, 1.0 and 1.05 (3 > 2)


@pytest.mark.parametrize("bad, message", [
    ([], "empty"),
    ([1.0, np.nan], "NaN or infinite"),
    ([1.0, np.inf], "NaN or infinite"),
    ([[1.0, 2.0]], "1-D"),
])
@pytest.mark.parametrize("estimator", [rb.mean_estimate, rb.median_estimate, rb.mode_estimate])
def test_bad_input(estimator, bad, message):
    with pytest.raises(ValueError, match=message):
        estimator(bad)


def test_losses_match_definitions():
    x = np.array(REPORT_X, dtype=float)
    m = np.array([0.0, 1.0, 2.5])
    np.testing.assert_allclose(rb.loss("l2", m, x), [((x - v) ** 2).sum() for v in m])
    np.testing.assert_allclose(rb.loss("l1", m, x), [np.abs(x - v).sum() for v in m])
    np.testing.assert_allclose(rb.loss("l0", m, x), [6, 1, 6])
    with pytest.raises(ValueError, match="unknown loss"):
        rb.loss("l3", m, x)


@pytest.mark.parametrize("seed", range(5))
def test_grid_minimiser_agrees_with_closed_form(seed):
    x = np.random.default_rng(seed).integers(0, 6, size=9).astype(float)
    grid = rb.make_grid(x, -1, 7, 1e-3)
    for kind in rb.ESTIMATORS:
        assert rb.grid_minimise(kind, x, grid) == pytest.approx(rb.closed_form(kind, x), abs=1e-3)


def test_report_table():
    grid = rb.make_grid(REPORT_X, -1.0, 8.0, 1e-4)
    table = rb.estimates_table(REPORT_X, 1.0, grid)
    assert table["closed_form"].tolist() == [1.8333, 1.0, 1.0]
    assert table["numerical"].tolist() == [1.8333, 1.0, 1.0]


def test_grid_contains_observations_and_rejects_bad_ranges():
    grid = rb.make_grid([0.123456], 0, 1, 0.1)
    assert 0.123456 in grid
    with pytest.raises(ValueError, match="start < stop"):
        rb.make_grid([1.0], 1, 0, 0.1)


def test_breakdown_points():
    table = rb.breakdown_by_fraction(20, 10.0, 1.0, [0, 0.05, 0.45, 0.5, 0.55])
    assert table["mean"].tolist() == pytest.approx([1.0, 1.5, 5.5, 6.0, 6.5])
    # median breaks at exactly half: the midpoint of the inlier and the outlier value
    assert table["median"].tolist() == [1.0, 1.0, 1.0, 6.0, 11.0]
    # mode: a 10/10 tie goes to the smallest value, so it holds at 50% and breaks above
    assert table["mode"].tolist() == [1.0, 1.0, 1.0, 1.0, 11.0]
    assert rb.breakdown_point(table, 1.0) == {"mean": 0.05, "median": 0.5, "mode": 0.55}


def test_breakdown_by_magnitude_mean_grows_linearly():
    table = rb.breakdown_by_magnitude(10, 0.2, 1.0, [0, 10, 100])
    assert table["mean"].tolist() == pytest.approx([1.0, 3.0, 21.0])
    assert table["median"].tolist() == [1.0, 1.0, 1.0]
    with pytest.raises(ValueError, match="fraction"):
        rb.contaminated_sample(10, 1.5, 0.0, 1.0)
