"""The figure conventions of slics.utils.plotting, and the figures that had defects."""

import matplotlib

matplotlib.use("Agg")

import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402
import pandas as pd  # noqa: E402
import pytest  # noqa: E402

from slics.utils import plotting  # noqa: E402

OKABE_ITO = {"#000000", "#E69F00", "#56B4E9", "#009E73", "#F0E442", "#0072B2", "#D55E00", "#CC79A7"}


def _labels(ax, axis="x"):
    ax.figure.canvas.draw()
    ticks = getattr(ax, f"get_{axis}ticklabels")(minor=False) + getattr(ax, f"get_{axis}ticklabels")(minor=True)
    return [t.get_text() for t in ticks if t.get_text()]


def test_palette_is_okabe_ito_and_class_styles_are_distinct():
    assert set(plotting.PALETTE) == OKABE_ITO
    styles = plotting.class_styles(88)
    assert len(set(styles)) == 88
    assert plotting.class_styles(11)[8][0] == plotting.class_styles(11)[0][0]  # colour repeats ...
    assert plotting.class_styles(11)[8][1] != plotting.class_styles(11)[0][1]  # ... with another marker
    with pytest.raises(ValueError, match="n=89"):
        plotting.class_styles(89)
    with pytest.raises(ValueError, match="n=-1"):
        plotting.class_styles(-1)


def test_value_axis_labels_the_values_and_keeps_zero():
    fig, ax = plt.subplots()
    ax.plot([2, 4, 8, 16], [1, 2, 3, 4])
    plotting.value_axis(ax, [2, 4, 8, 16], fmt="{:.0f}")
    assert _labels(ax) == ["2", "4", "8", "16"]  # no minor labels such as 3x10^0
    assert ax.get_xscale() == "log"
    fig2, ax2 = plt.subplots()
    ax2.plot([0, 1, 10, 100], [1, 2, 3, 4])
    plotting.value_axis(ax2, [0, 1, 10, 100])
    assert ax2.get_xscale() == "symlog" and _labels(ax2) == ["0", "1", "10", "100"]
    with pytest.raises(ValueError, match="axis='z'"):
        plotting.value_axis(ax2, [1], "z")
    plt.close("all")


def test_zoom_and_legend_outside():
    fig, ax = plt.subplots()
    ax.plot([0, 1], [0.91, 0.94], label="a")
    plotting.zoom_to(ax, [0.91, 0.94], floor=0, ceiling=1)
    lo, hi = ax.get_ylim()
    assert 0.8 < lo < 0.91 and 0.94 < hi < 1.0
    legend = plotting.legend_outside(ax)
    fig.canvas.draw()
    renderer = fig.canvas.get_renderer()
    assert legend.get_window_extent(renderer).x0 >= ax.get_window_extent(renderer).x1
    with pytest.raises(ValueError, match="values"):
        plotting.zoom_to(ax, [np.nan])
    plt.close("all")


def test_ista_figure_shows_every_lambda_with_a_title_in_words():
    from slics.sections.ista_clip import figure_sweep

    lams = [0.01, 0.1, 1.0, 5.0]
    table = pd.DataFrame({"lambda": lams, "mean_nonzeros": [600, 80, 0.3, 0.0], "accuracy": [0.8, 0.7, 0.15, 0.1],
                          "report_mean_nonzeros": [700, 85, 0.0, 0.0], "report_accuracy": [0.89, 0.88, 0.1, 0.1]})
    fig = figure_sweep(table, 0.89, 0.88)
    left, right = fig.axes
    assert _labels(left) == ["0.01", "0.1", "1", "5"]
    assert left.get_xlim()[1] > 5 and left.get_ylim()[0] <= 0  # lambda = 5 and zero non-zeros are on the axes
    assert all(np.isfinite(line.get_ydata()).all() for line in left.get_lines())
    assert "A_w_plus_mu_c" not in right.get_title() and "accuracy" in right.get_title().lower()
    plt.close("all")


def test_k_grid_and_disentanglement_figures():
    from slics.sections.retrieval_figures import figure_ablation, figure_k_grid

    grid = pd.DataFrame({"dataset": ["mirflickr25k"] * 4, "K": [2, 4, 8, 16],
                         "map_general": [0.97, 0.96, 0.94, 0.92], "map_sub": [0.89, 0.93, 0.93, 0.92]})
    fig = figure_k_grid(grid)
    assert _labels(fig.axes[0]) == ["2", "4", "8", "16"]
    ablation = pd.DataFrame({"dataset": ["coco"] * 2, "variant": ["partial", "full"],
                             "map_general": [0.916, 0.918], "map_sub": [0.836, 0.817]})
    baseline = pd.DataFrame({"dataset": ["coco"], "method": ["UF"], "map_general": [0.773], "map_sub": [0.70]})
    fig = figure_ablation(ablation, baseline)
    general = fig.axes[0]
    assert general.get_ylim()[0] > 0.5  # zoomed to the values and the baseline, not from 0
    assert any(c.get_label().startswith("UF") for c in general.collections)
    plt.close("all")
