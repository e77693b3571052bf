"""Section 1: robustness of the l2, l1 and l0 estimators of a scalar.

For observations x_1..x_n, the minimiser of sum_i |x_i - m|^p is the mean (p = 2),
the median (p = 1) and the mode (p = 0, counting mismatches). Conventions:

- Even-length median: the l1 loss is flat between the two middle values; we
  return their midpoint (numpy's convention).
- Mode ties: several values may share the highest count; we return the smallest
  of them (so the estimate is deterministic). With ``tol > 0`` a value "matches"
  every observation within ``tol`` of it, and candidates are the observations.
"""

from __future__ import annotations

from typing import Callable

import numpy as np
import pandas as pd

from ..utils.plotting import BASELINE, MARKERS, PALETTE, legend_outside, value_axis

ESTIMATORS = ("l2", "l1", "l0")
NAMES = {"l2": "mean", "l1": "median", "l0": "mode"}


def check_observations(x) -> np.ndarray:
    """Return ``x`` as a finite, non-empty 1-D float array or raise ValueError."""
    x = np.asarray(x, dtype=float)
    if x.ndim != 1:
        raise ValueError(f"observations must be a 1-D sequence of numbers, got shape {x.shape}.")
    if x.size == 0:
        raise ValueError("observations are empty; an estimate needs at least one value.")
    if not np.all(np.isfinite(x)):
        raise ValueError("observations contain NaN or infinite values; remove them first.")
    return x


def mean_estimate(x) -> float:
    """l2 estimator: the arithmetic mean."""
    return float(np.mean(check_observations(x)))


def median_estimate(x) -> float:
    """l1 estimator: the median (midpoint of the two middle values for even length)."""
    x = np.sort(check_observations(x))
    n = x.size
    return float(x[n // 2]) if n % 2 else float((x[n // 2 - 1] + x[n // 2]) / 2)


def mode_estimate(x, tol: float = 0.0) -> float:
    """l0 estimator: the value matching the most observations (smallest on ties)."""
    x = check_observations(x)
    if tol < 0 or not np.isfinite(tol):
        raise ValueError(f"tol must be a finite non-negative number, got {tol}.")
    candidates = np.unique(x)
    matches = (np.abs(x[None, :] - candidates[:, None]) <= tol).sum(axis=1)
    return float(candidates[np.argmax(matches)])  # argmax takes the first, i.e. smallest, tie


def loss(kind: str, m, x, tol: float = 0.0) -> np.ndarray:
    """Loss of each candidate estimate ``m`` (array) on observations ``x``."""
    x = check_observations(x)
    residual = np.abs(np.asarray(m, dtype=float)[..., None] - x)
    if kind == "l2":
        return (residual**2).sum(axis=-1)
    if kind == "l1":
        return residual.sum(axis=-1)
    if kind == "l0":
        return (residual > tol).sum(axis=-1).astype(float)
    raise ValueError(f"unknown loss {kind!r}; choose one of {ESTIMATORS}.")


def make_grid(x, start: float, stop: float, step: float) -> np.ndarray:
    """A fine grid on [start, stop] joined with the observations themselves.

    The l0 loss (tol = 0) is minimised only at observed values, a set of measure
    zero that no regular grid is guaranteed to hit, so they are always candidates.
    """
    if not step > 0 or not stop > start:
        raise ValueError(f"grid needs start < stop and step > 0, got {start}, {stop}, {step}.")
    n = int(round((stop - start) / step)) + 1
    return np.union1d(np.round(np.linspace(start, stop, n), 10), check_observations(x))


def grid_minimise(kind: str, x, grid: np.ndarray, tol: float = 0.0) -> float:
    """Numerical minimiser of ``loss(kind)`` over ``grid`` (the smallest on ties)."""
    values = loss(kind, grid, x, tol)
    return float(grid[np.argmin(values)])


CLOSED_FORM: dict[str, Callable] = {
    "l2": mean_estimate,
    "l1": median_estimate,
    "l0": mode_estimate,
}


def closed_form(kind: str, x, tol: float = 0.0) -> float:
    return CLOSED_FORM[kind](x, tol) if kind == "l0" else CLOSED_FORM[kind](x)


def estimates_table(x, true_value: float, grid: np.ndarray, tol: float = 0.0) -> pd.DataFrame:
    """Closed-form and grid-search estimates of the three estimators."""
    rows = []
    for kind in ESTIMATORS:
        exact = closed_form(kind, x, tol)
        numeric = grid_minimise(kind, x, grid, tol)
        rows.append({
            "loss": kind,
            "estimator": NAMES[kind],
            "closed_form": round(exact, 4),
            "numerical": round(numeric, 4),
            "abs_error_vs_truth": round(abs(exact - true_value), 4),
        })
    return pd.DataFrame(rows)


def contaminated_sample(n: int, fraction: float, inlier: float, outlier: float) -> np.ndarray:
    """``n`` observations, ``round(fraction * n)`` of them replaced by ``outlier``."""
    if not 0 <= fraction <= 1:
        raise ValueError(f"fraction must be in [0, 1], got {fraction}.")
    k = int(round(fraction * n))
    return np.r_[np.full(n - k, inlier, dtype=float), np.full(k, outlier, dtype=float)]


def breakdown_by_magnitude(n: int, fraction: float, inlier: float, magnitudes) -> pd.DataFrame:
    """Estimates as the outliers move ``magnitude`` away from the inliers."""
    rows = []
    for magnitude in magnitudes:
        x = contaminated_sample(n, fraction, inlier, inlier + magnitude)
        rows.append({"outlier_magnitude": float(magnitude),
                     **{NAMES[k]: closed_form(k, x) for k in ESTIMATORS}})
    return pd.DataFrame(rows)


def breakdown_by_fraction(n: int, magnitude: float, inlier: float, fractions) -> pd.DataFrame:
    """Estimates as a growing fraction of the observations is contaminated."""
    rows = []
    for fraction in fractions:
        x = contaminated_sample(n, fraction, inlier, inlier + magnitude)
        rows.append({"contaminated_fraction": float(fraction),
                     "n_outliers": int(round(fraction * n)),
                     **{NAMES[k]: closed_form(k, x) for k in ESTIMATORS}})
    return pd.DataFrame(rows)


def breakdown_point(table: pd.DataFrame, inlier: float, atol: float = 1e-9) -> dict[str, float | None]:
    """Smallest contaminated fraction at which each estimate leaves the inlier value."""
    points = {}
    for name in NAMES.values():
        broken = table.loc[np.abs(table[name] - inlier) > atol, "contaminated_fraction"]
        points[name] = float(broken.min()) if len(broken) else None
    return points


# --- figures ---------------------------------------------------------------

COLOURS = {"mean": PALETTE[0], "median": PALETTE[1], "mode": PALETTE[2]}
MARKER = {"mean": MARKERS[0], "median": MARKERS[1], "mode": MARKERS[2]}


def figure_estimates(x, estimates: dict[str, float], true_value: float):
    """The report's Figure 1: the observations and the three estimates."""
    import matplotlib.pyplot as plt

    x = check_observations(x)
    fig, ax = plt.subplots(figsize=(6.4, 3.6))
    ax.scatter(np.arange(1, x.size + 1), x, color="0.2", zorder=3, label="observations")
    for name, value in estimates.items():
        ax.axhline(value, color=COLOURS[name], lw=2, ls="--" if name == "mode" else "-",
                   label=f"{name} = {value:.4g}")
    ax.axhline(true_value, color="0.6", lw=1, ls=":", label=f"true value = {true_value:g}")
    ax.set(xlabel="observation index", ylabel="value",
           title="Mean (l2), median (l1) and mode (l0) estimates of a scalar")
    legend_outside(ax)
    fig.tight_layout()
    return fig


def figure_loss_landscape(x, grid: np.ndarray, tol: float = 0.0):
    """The three losses as functions of the candidate estimate, each with its minimiser."""
    import matplotlib.pyplot as plt

    fig, axes = plt.subplots(1, 3, figsize=(10, 3.2), sharex=True)
    for ax, kind in zip(axes, ESTIMATORS):
        values = loss(kind, grid, x, tol)
        best = grid_minimise(kind, x, grid, tol)
        name = NAMES[kind]
        ax.plot(grid, values, color=COLOURS[name], lw=1.5)
        ax.axvline(best, color="0.3", ls="--", lw=1)
        ax.set(title=f"{kind} loss: minimised by the {name}, {best:.4g}", xlabel="estimate m")
    axes[0].set_ylabel("loss")
    fig.tight_layout()
    return fig


def figure_breakdown(by_magnitude: pd.DataFrame, by_fraction: pd.DataFrame, inlier: float,
                     fixed_fraction: float, fixed_magnitude: float):
    """Estimates versus outlier magnitude and versus contaminated fraction."""
    import matplotlib.pyplot as plt

    fig, (left, right) = plt.subplots(1, 2, figsize=(10, 3.6))
    for name, line in zip(NAMES.values(), ("-", "-", "--")):
        style = dict(color=COLOURS[name], marker=MARKER[name], ms=5, ls=line, label=name, mfc="none" if name == "mode" else None)
        left.plot(by_magnitude["outlier_magnitude"], by_magnitude[name], **style)
        right.plot(by_fraction["contaminated_fraction"], by_fraction[name], **style)
    value_axis(left, by_magnitude["outlier_magnitude"], "x")
    left.set(xlabel="outlier magnitude (symmetric-log axis)", ylabel="estimate",
             title=f"Estimates with {fixed_fraction:.0%} of the observations contaminated")
    right.set(xlabel="contaminated fraction", title=f"Estimates with outliers at +{fixed_magnitude:g}")
    right.axvline(0.5, color="0.6", ls=":", lw=1)
    for ax in (left, right):
        ax.axhline(inlier, **BASELINE, label=f"inlier value {inlier:g}" if ax is right else None)
    legend_outside(right)
    fig.tight_layout()
    return fig
