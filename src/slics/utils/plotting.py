"""One fixed figure style, and a deterministic PNG writer."""

from __future__ import annotations

from pathlib import Path

import matplotlib.pyplot as plt
import seaborn as sns

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


def set_style() -> None:
    """Apply the compendium's figure style (seaborn whitegrid, colourblind palette)."""
    sns.set_theme(context="notebook", style="whitegrid", palette="colorblind", rc=STYLE)


def save_figure(fig: plt.Figure, dest: str | Path) -> None:
    """Save ``fig`` as PNG atomically, with no timestamp metadata, so reruns are byte-identical.

    Returns nothing, so that a notebook cell ending with this call shows the figure (through
    the inline backend) and no path.
    """
    with atomic_path(dest) as tmp:
        fig.savefig(tmp, format="png", bbox_inches="tight", metadata={"Software": None})
