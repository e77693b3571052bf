"""Figures of the retrieval sections (SLiCS paper Figs. 2b-8), shared by the CLIP, TiTok and DINOv2 notebooks.

Each function takes a fitted :class:`~slics.core.dictionary.SLiCS` and a
:class:`~slics.embedding.retrieval_set.RetrievalSet` (or a result table) and returns a
matplotlib figure; the notebooks save them with :func:`slics.utils.plotting.save_figure`.
"""

from __future__ import annotations

import numpy as np
import pandas as pd

from ..core.dictionary import SLiCS
from ..core.normalise import normalise_rows
from ..embedding.retrieval_set import RetrievalSet
from ..utils.plotting import BASELINE, MARKERS, MUTED, PALETTE, class_styles, legend_outside, value_axis, zoom_to
from .slics_clip import best_k

DATASET_NAMES = {"mirflickr25k": "MIRFlickr25K", "coco": "MS COCO"}


def dataset_name(dataset: str) -> str:
    """The dataset's name as the paper writes it (``mirflickr25k`` -> ``MIRFlickr25K``)."""
    return DATASET_NAMES.get(dataset, dataset)


def figure_k_grid(grid: pd.DataFrame):
    """Fig. 6: validation mAP@20 (general, sub-label) versus atoms per concept."""
    import matplotlib.pyplot as plt

    keys = ["dataset", "backbone"] if "backbone" in grid and grid["backbone"].nunique() > 1 else ["dataset"]
    cases = list(dict.fromkeys(zip(*(grid[k] for k in keys))))
    fig, axes = plt.subplots(1, len(cases), figsize=(4.8 * len(cases), 3.4), squeeze=False)
    for ax, case in zip(axes[0], cases):
        dataset = case[0]
        t = grid[np.logical_and.reduce([grid[k] == v for k, v in zip(keys, case)])]
        ax.plot(t["K"], t["map_general"], marker=MARKERS[0], color=PALETTE[0], label="general labels")
        ax.plot(t["K"], t["map_sub"], marker=MARKERS[1], color=PALETTE[1], label="sub-labels")
        K = best_k(t)
        ax.axvline(K, color="0.5", ls=":", label=f"chosen K = {K}")
        value_axis(ax, t["K"], "x", fmt="{:.0f}")
        ax.set(xlabel="K (atoms per concept)", ylabel="validation mAP@20",
               title=f"{' / '.join([dataset_name(dataset), *case[1:]])}: retrieval versus K")
        legend_outside(ax, "below", ncol=3, frameon=False)
    fig.tight_layout()
    return fig


def figure_ablation(ablation: pd.DataFrame, baseline: pd.DataFrame | None = None):
    """Fig. 7: partial versus full disentanglement (and projecting the candidates too).

    One marker per variant and dataset on an axis zoomed to the values (the variants differ by
    a few hundredths), with the unfiltered retrieval (UF) of the same run as a dashed baseline,
    as the paper draws it. ``baseline`` holds ``dataset``, ``method`` and ``map_general`` /
    ``map_sub`` rows (Table 2); by default the Table 2 this run wrote before the figure.
    """
    import matplotlib.pyplot as plt

    from ..utils.config import results_dir

    if baseline is None:
        table2 = results_dir() / "tables" / "slics_clip_table2.csv"
        baseline = pd.read_csv(table2) if table2.is_file() else None
    datasets = list(dict.fromkeys(ablation["dataset"]))
    variants = list(dict.fromkeys(ablation["variant"]))
    fig, axes = plt.subplots(1, 2, figsize=(10, 3.4))
    offsets = (np.arange(len(variants)) - (len(variants) - 1) / 2) * 0.18
    for ax, kind in zip(axes, ("general", "sub")):
        shown = list(ablation[f"map_{kind}"])
        for i, variant in enumerate(variants):
            rows = ablation[ablation["variant"] == variant].set_index("dataset")
            ax.plot(np.arange(len(datasets)) + offsets[i], [rows.loc[d, f"map_{kind}"] for d in datasets],
                    ls="none", marker=MARKERS[i], markersize=8, color=PALETTE[i], label=variant)
        if baseline is not None:
            same = baseline["backbone"].isin(set(ablation["backbone"])) if "backbone" in baseline else True
            uf = baseline[(baseline["method"] == "UF") & same].set_index("dataset")   # the ablation's backbone
            for j, d in enumerate(datasets):
                if d in uf.index:
                    ax.hlines(uf.loc[d, f"map_{kind}"], j - 0.4, j + 0.4, **BASELINE,
                              label="UF (unfiltered retrieval)" if j == 0 else None)
                    shown.append(uf.loc[d, f"map_{kind}"])
        zoom_to(ax, shown, floor=0, ceiling=1)
        ax.set_xticks(np.arange(len(datasets)), [dataset_name(d) for d in datasets])
        ax.set_xlim(-0.6, len(datasets) - 0.4)
        ax.set(ylabel="mAP@20", xlabel="", title=f"{'General-label' if kind == 'general' else 'Sub-label'} retrieval")
    legend_outside(axes[1], "right")
    fig.tight_layout()
    return fig


def figure_atoms(model: SLiCS, rs: RetrievalSet, n_nonzero: int):
    """Fig. 5: atom co-occurrence of non-negative OMP codes of the validation set, and the
    cosine similarity between atoms (both ordered by concept)."""
    import matplotlib.pyplot as plt

    from ..core.omp import nn_omp

    W = nn_omp(model.dictionary_, rs.X[rs.rows("val")], n_nonzero)
    A = (W > 0).astype(float)
    co = A.T @ A
    co = co / np.maximum(np.diag(co)[:, None], 1)        # P(atom b active | atom a active)
    cos = model.dictionary_ @ model.dictionary_.T
    fig, axes = plt.subplots(1, 2, figsize=(10, 4.4))
    for ax, M, title, cmap in ((axes[0], co, "P(column atom active | row atom active),\nnon-negative OMP codes of the validation set", "viridis"),
                               (axes[1], cos, "Cosine similarity between atoms", "coolwarm")):
        im = ax.imshow(M, cmap=cmap, vmin=0 if cmap == "viridis" else -1, vmax=1)
        ax.grid(False)
        K = model.n_atoms
        ticks = np.arange(model.n_concepts_) * K + (K - 1) / 2
        ax.set(xticks=ticks, yticks=ticks, title=title)
        ax.set_xticklabels(rs.data.general_names, rotation=90, fontsize=7)
        ax.set_yticklabels(rs.data.general_names, fontsize=7)
        fig.colorbar(im, ax=ax, shrink=0.8)
    fig.suptitle(f"{dataset_name(rs.dataset)}: the {model.n_atoms} atoms of each concept, grouped by concept")
    fig.tight_layout()
    within = np.array([[abs(cos[a, b]) for b in range(cos.shape[0]) if b != a
                        and model.atom_concept_[b] == model.atom_concept_[a]] for a in range(cos.shape[0])])
    return fig, float(np.mean(within)) if within.size else float("nan")


def concept_with_most_subs(rs: RetrievalSet) -> int:
    """The general concept with the most sub-labels (ties: the first), e.g. MIR ``people``."""
    return int(np.argmax(np.bincount(rs.data.sub_parent, minlength=len(rs.data.general_names))))


FIG3_CONCEPTS = ("animals", "animal")      # the paper's Fig. 3 shows the "animal" subspace (MIR / COCO names)


def fig3_concept(rs: RetrievalSet) -> int:
    """The concept of the paper's Fig. 3, "animal" (MIR ``animals``, COCO ``animal``); where a set has
    no such concept, the one with the most sub-labels."""
    for name in FIG3_CONCEPTS:
        if name in rs.data.general_names:
            return rs.data.general_names.index(name)
    return concept_with_most_subs(rs)


def figure_two_atoms(model: SLiCS, rs: RetrievalSet, concept: int):
    """Fig. 3: coefficients of a concept's two most used atoms on its training images,
    coloured by sub-label (images with exactly one sub-label of the concept)."""
    import matplotlib.pyplot as plt

    train = rs.rows("train")
    rows = train[rs.data.general[train, concept]]
    W = model.transform(rs.X[rows], rs.data.general[rows])[:, model.atom_concept_ == concept]
    a, b = np.argsort(-np.count_nonzero(W, axis=0), kind="stable")[:2]
    subs = rs.data.sub_labels_of(concept)
    S = rs.data.sub[rows][:, subs]
    fig, ax = plt.subplots(figsize=(5.6, 4.2))
    one = S.sum(axis=1) == 1
    ax.scatter(W[~one, a], W[~one, b], s=6, c=MUTED, label="none or several")
    for s, (col, (colour, marker)) in enumerate(zip(subs, class_styles(len(subs)))):
        keep = one & S[:, s]
        ax.scatter(W[keep, a], W[keep, b], s=12, color=colour, marker=marker, label=rs.data.sub_names[col])
    ax.set(xlabel=f"coefficient of atom {a}", ylabel=f"coefficient of atom {b}",
           title=f"{dataset_name(rs.dataset)}: two atoms of '{rs.data.general_names[concept]}' by sub-label")
    legend_outside(ax, fontsize=8, markerscale=1.5)
    fig.tight_layout()
    return fig


TSNE_INPUT_DECIMALS = 4


MIN_TSNE_POINTS = 3


def tsne_2d(X, perplexity: float, seed: int) -> np.ndarray:
    """2-D t-SNE (scikit-learn, PCA start, 500 iterations) of ``X`` rounded to 4 decimals, on one OpenMP thread.

    t-SNE is chaotic: changing one input coordinate by 1e-11 gives another layout (measured,
    scikit-learn and openTSNE alike), and the concept components differ between CPUs by up to
    5e-12 (NNLS on nearly dependent atoms). Rounded to 4 decimals (the rows are unit vectors
    with coordinates of about 0.05) such noise reaches a rounding boundary with probability
    about 1e-8 per coordinate, so every machine feeds t-SNE the same numbers. Its Barnes-Hut
    gradient sums in an order set by the thread count, hence one thread.
    """
    from sklearn.manifold import TSNE
    from threadpoolctl import threadpool_limits

    X = np.round(np.asarray(X, dtype=np.float64), TSNE_INPUT_DECIMALS)
    if X.shape[0] < MIN_TSNE_POINTS:
        raise ValueError(f"t-SNE needs at least {MIN_TSNE_POINTS} points, got {X.shape[0]}.")
    # scikit-learn needs perplexity < n; only tiny sets (the full profile's rehearsal) are capped
    perplexity = min(perplexity, (X.shape[0] - 1) / 2)
    with threadpool_limits(limits=1, user_api="openmp"):
        return TSNE(n_components=2, init="pca", random_state=seed, perplexity=perplexity,
                    max_iter=500).fit_transform(X)


def figure_tsne(model: SLiCS, rs: RetrievalSet, n_images: int, seed: int):
    """Fig. 2b: t-SNE of training embeddings, their components and the atoms, by concept."""
    import matplotlib.pyplot as plt

    rng = np.random.default_rng(seed)
    train = rs.rows("train")
    rows = np.sort(rng.choice(train, size=min(n_images, train.size), replace=False))
    X, Y = rs.X[rows], rs.data.general[rows]
    comps = model.components(X, Y)
    ci, cj = np.nonzero(Y)
    C = normalise_rows(comps[ci, cj])
    pts = np.vstack([X, C, model.dictionary_])
    emb = tsne_2d(pts, perplexity=30, seed=seed)
    n, m = X.shape[0], C.shape[0]
    fig, ax = plt.subplots(figsize=(7, 5.4))
    ax.scatter(emb[:n, 0], emb[:n, 1], s=5, c=MUTED, label="embeddings")
    for j, (name, (colour, marker)) in enumerate(zip(rs.data.general_names, class_styles(len(rs.data.general_names)))):
        keep = cj == j
        ax.scatter(emb[n:n + m][keep, 0], emb[n:n + m][keep, 1], s=10, color=colour, marker=marker, label=name)
        atoms = emb[n + m:][model.atom_concept_ == j]
        ax.scatter(atoms[:, 0], atoms[:, 1], s=70, marker=marker, color=colour, edgecolor="k", linewidth=0.8)
    ax.set(title=f"{dataset_name(rs.dataset)}: t-SNE of embeddings (grey), their concept components\n"
                 "(small markers) and the atoms (large outlined markers), by concept", xticks=[], yticks=[])
    legend_outside(ax, fontsize=8, markerscale=1.5)
    fig.tight_layout()
    return fig


def figure_tsne_k(models: dict, rs: RetrievalSet, concept: int, n_images: int, seed: int):
    """Fig. 4: t-SNE of one concept's components of validation images for several ``K``,
    coloured by sub-label (images with exactly one sub-label of the concept)."""
    import matplotlib.pyplot as plt

    rng = np.random.default_rng(seed)
    val = rs.rows("val")
    subs = rs.data.sub_labels_of(concept)
    S = rs.data.sub[val][:, subs]
    keep = val[rs.data.general[val, concept] & (S.sum(axis=1) == 1)]
    keep = np.sort(rng.choice(keep, size=min(n_images, keep.size), replace=False))
    label = np.argmax(rs.data.sub[keep][:, subs], axis=1)
    fig, axes = plt.subplots(1, len(models), figsize=(3.6 * len(models), 3.6), squeeze=False)
    for ax, (K, model) in zip(axes[0], sorted(models.items())):
        if keep.size < MIN_TSNE_POINTS:        # tiny sets only: too few validation images to lay out
            ax.text(0.5, 0.5, f"{keep.size} validation image(s)\nwith one sub-label", ha="center", va="center")
            ax.set(title=f"K = {K}", xticks=[], yticks=[])
            continue
        comps = model.components(rs.X[keep], rs.data.general[keep])[:, concept]
        emb = tsne_2d(normalise_rows(comps), perplexity=20, seed=seed)
        for s, (col, (colour, marker)) in enumerate(zip(subs, class_styles(len(subs)))):
            ax.scatter(emb[label == s, 0], emb[label == s, 1], s=10, color=colour, marker=marker,
                       label=rs.data.sub_names[col])
        ax.set(title=f"K = {K} atoms per concept", xticks=[], yticks=[])
    if keep.size >= MIN_TSNE_POINTS:
        legend_outside(axes[0][-1], fontsize=8, markerscale=1.5)
    fig.suptitle(f"{dataset_name(rs.dataset)}: t-SNE of the components of '{rs.data.general_names[concept]}', by sub-label")
    fig.tight_layout()
    return fig


def figure_qualitative_images(rs: RetrievalSet, methods, images, queries, k: int = 5):
    """Figs. 8-10 (full profile): each query image, then its top ``k`` results under each fitted method
    (``methods``, in the order shown), unfiltered once (UF, SpLiCE) or filtered by each of the query's
    concepts (S-SLiCS, U-SLiCS, F-SpLiCE, ...), as :func:`~slics.sections.retrieval_protocol.qualitative_rankings`
    ranks them. ``images`` maps an image row of ``rs`` to a PIL image (e.g.
    :class:`slics.data.images.ZipImages` over ``rs.data.image_ids``)."""
    import matplotlib.pyplot as plt

    from .retrieval_protocol import qualitative_rankings

    rows = qualitative_rankings(rs, methods, queries, k)
    fig, axes = plt.subplots(len(rows), k + 1, figsize=(1.8 * (k + 1), 1.9 * len(rows)), squeeze=False)
    for r, (q, name, j, top) in enumerate(rows):
        for c, index in enumerate([q, *top]):
            ax = axes[r][c]
            ax.imshow(images[int(index)])
            ax.set_xticks([])
            ax.set_yticks([])
            ax.grid(False)
        axes[r][0].set_title("query", fontsize=8)
        axes[r][1].set_title(f"{name}" + ("" if j is None else f", filter: {rs.data.general_names[j]}"),
                             fontsize=8, loc="left")
    fig.tight_layout()
    return fig
