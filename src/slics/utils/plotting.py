"""One figure style for every figure of the compendium, and a deterministic PNG writer.

The conventions, written once here and applied by every section's figure code:

- **colours**: the Okabe-Ito palette (:data:`PALETTE`), distinguishable under the common forms
  of colour blindness; matplotlib's ``tab10``/``tab20`` are not (their light/dark pairs merge);
- **many classes**: colour and marker together (:func:`class_styles`), so that up to 88 classes
  get distinct pairs and a class reads without colour;
- **titles in words**: what is plotted, not an internal variable name;
- **every parameter value visible**: a log axis with a value of 0 becomes symmetric-log
  (:func:`value_axis`), and tick labels are the values themselves, not ``3x10^0``;
- **legends off the data**: beside or below the axes (:func:`legend_outside`);
- **axes that show the differences that matter**: a score axis spans the data with a margin,
  not 0 to 1, when the differences are small (:func:`zoom_to`);
- **baselines where the paper draws them**: a grey dashed line (:data:`BASELINE`).
"""

from __future__ import annotations

from pathlib import Path
from typing import Sequence

import matplotlib.pyplot as plt
import numpy as np
import seaborn as sns
from matplotlib.ticker import FixedLocator, NullFormatter, NullLocator

from .io import atomic_path

STYLE = {
    "figure.dpi": 100,
    "savefig.dpi": 150,
    "font.size": 10,
    "axes.titlesize": 11,
    "axes.labelsize": 10,
    "legend.fontsize": 9,
    "figure.figsize": (6.4, 4.0),
    "svg.hashsalt": "slics",
}

# Okabe & Ito (2008), "Color Universal Design": blue, orange, bluish green, vermillion,
# reddish purple, sky blue, yellow, black (yellow and black last: weak on white, heavy).
PALETTE = ("#0072B2", "#E69F00", "#009E73", "#D55E00", "#CC79A7", "#56B4E9", "#F0E442", "#000000")
MARKERS = ("o", "s", "^", "D", "v", "P", "X", "*", "<", ">", "h")
BASELINE = {"color": "0.35", "ls": "--", "lw": 1.2}
MUTED = "0.78"  # points that are context, not data (e.g. embeddings behind their components)


def set_style() -> None:
    """Apply the compendium's figure style (seaborn whitegrid, the Okabe-Ito palette)."""
    sns.set_theme(context="notebook", style="whitegrid", palette=list(PALETTE), rc=STYLE)


def class_styles(n: int) -> list[tuple[str, str]]:
    """``n`` distinct (colour, marker) pairs: colours cycle through 8, markers through 11."""
    if not isinstance(n, (int, np.integer)) or n < 0:
        raise ValueError(f"n={n!r}: the number of classes must be a non-negative integer.")
    if n > len(PALETTE) * len(MARKERS):
        raise ValueError(f"n={n}: at most {len(PALETTE) * len(MARKERS)} classes get distinct styles; "
                         "group the rest (e.g. as 'other').")
    return [(PALETTE[i % len(PALETTE)], MARKERS[i % len(MARKERS)]) for i in range(n)]


def value_axis(ax, values: Sequence[float], axis: str = "x", log: bool = True, fmt: str = "{:g}") -> None:
    """Ticks at exactly ``values``, labelled with the values themselves.

    On a log axis minor ticks get no labels (no stray ``3x10^0``); when a value is 0 the axis is
    symmetric-log with a linear part up to the smallest positive value, so 0 stays visible.
    """
    if axis not in ("x", "y"):
        raise ValueError(f"axis={axis!r}: choose 'x' or 'y'.")
    values = [float(v) for v in values]
    if log:
        positive = [v for v in values if v > 0]
        if len(positive) < len(values):
            getattr(ax, f"set_{axis}scale")("symlog", linthresh=min(positive) if positive else 1.0)
        else:
            getattr(ax, f"set_{axis}scale")("log")
    target = getattr(ax, f"{axis}axis")
    target.set_major_locator(FixedLocator(values))
    target.set_minor_locator(NullLocator())
    target.set_minor_formatter(NullFormatter())
    getattr(ax, f"set_{axis}ticklabels")([fmt.format(v) for v in values])


def zoom_to(ax, values, axis: str = "y", margin: float = 0.25, floor: float | None = None,
            ceiling: float | None = None) -> None:
    """Limit ``axis`` to the range of ``values`` plus ``margin`` of that range on each side."""
    values = np.asarray([v for v in np.ravel(values) if np.isfinite(v)], dtype=float)
    if values.size == 0:
        raise ValueError("values: nothing finite to zoom to.")
    lo, hi = float(values.min()), float(values.max())
    pad = margin * max(hi - lo, 0.02 * max(abs(hi), 1e-12))
    lo, hi = lo - pad, hi + pad
    if floor is not None:
        lo = max(lo, floor)
    if ceiling is not None:
        hi = min(hi, ceiling)
    getattr(ax, f"set_{axis}lim")(lo, hi)


def legend_outside(ax, where: str = "right", ncol: int = 1, **kwargs):
    """A legend beside (``right``) or below (``below``) ``ax``, never over the data."""
    if where == "right":
        return ax.legend(loc="upper left", bbox_to_anchor=(1.02, 1.0), borderaxespad=0, ncol=ncol, **kwargs)
    if where == "below":
        return ax.legend(loc="upper center", bbox_to_anchor=(0.5, -0.3), borderaxespad=0, ncol=ncol, **kwargs)
    raise ValueError(f"where={where!r}: choose 'right' or 'below'.")


def save_figure(fig: plt.Figure, dest: str | Path) -> None:
    """Save ``fig`` as PNG atomically, with no timestamp metadata, so reruns are byte-identical.

    Returns nothing, so that a notebook cell ending with this call shows the figure (through
    the inline backend) and no path.
    """
    with atomic_path(dest) as tmp:
        fig.savefig(tmp, format="png", bbox_inches="tight", metadata={"Software": None})
