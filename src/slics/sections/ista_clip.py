"""Section 2: sparse CLIP embeddings by ISTA over a Flickr30k concept dictionary.

The notebook ``02_ista_clip`` calls these functions in order: load the cached
embeddings, measure dense zero-shot accuracy, align images and concepts, sweep
lambda with the report's ISTA, and summarise (sparsity versus accuracy, memory,
most active concepts, examples). The solvers live in :mod:`slics.core.sparse_coding`.

Three ways to classify a sparse code ``w`` are compared (the ablation):

- ``report``: ``z_hat = A w + mu_c`` (the report's formula, ``mu_c`` the concept mean),
  against the raw class-prompt embeddings;
- ``centred``: ``A w`` against the class prompts centred by ``mu_c``, i.e. in the
  dictionary's own centred space;
- ``image_mean``: ``A w + mu_img`` (adding back the image mean that alignment removed).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pandas as pd

from ..core.sparse_coding import Aligned, align_embeddings, ista, reconstruct, sparse_memory_bytes
from ..core.zero_shot import normalise_rows, zero_shot_accuracy

CIFAR10_CLASSES = ("airplane", "automobile", "bird", "cat", "deer",
                   "dog", "frog", "horse", "ship", "truck")
CLASSIFIERS = ("report", "centred", "image_mean")
# Printed precision of every section-2 quantity (README, "Reproduction contract"): coarse enough
# that cross-machine float noise (about 1e-6 relative) does not reach the last digit.
DECIMALS = {
    "lambda": 2, "mean_nonzeros": 1, "median_nonzeros": 1, "dense_accuracy": 4,
    **{f"accuracy_{how}": 4 for how in CLASSIFIERS},
    "dense_float32_MB": 2, "csr_MB": 2, "csr_over_dense": 3,
    "implied_mean_nonzeros": 2, "fraction_of_dense": 4, "mean_abs_weight": 4,
    "fista_objective_final": 2, "ista_objective_at_200": 2, "ista_objective_final": 2,
    "lipschitz_step": 5, "report_step": 3,
}


@dataclass
class SectionInputs:
    """Embeddings read from ``data/embeddings/<backbone>/`` (rows are unit-norm)."""

    images: np.ndarray        # (n_images, d)
    labels: np.ndarray        # (n_images,) class index
    class_emb: np.ndarray     # (10, d) "a photo of a {class}"
    concept_emb: np.ndarray   # (n_concepts, d) "a photo of a {concept}"
    concepts: list[str]
    backbone: str


def load_inputs(backbone: str) -> SectionInputs:
    """Read the cached CIFAR-10 and concept embeddings of ``backbone`` (made by ``dvc repro``)."""
    from ..data.concepts import load_concepts
    from ..embedding.embed import load_embeddings

    inputs = SectionInputs(
        images=load_embeddings(backbone, "cifar10_images"),
        labels=load_embeddings(backbone, "cifar10_labels"),
        class_emb=load_embeddings(backbone, "cifar10_classes"),
        concept_emb=load_embeddings(backbone, "concepts"),
        concepts=load_concepts(),
        backbone=backbone,
    )
    if len(inputs.concepts) != inputs.concept_emb.shape[0]:
        raise ValueError(f"{len(inputs.concepts)} concepts but {inputs.concept_emb.shape[0]} concept "
                         "embeddings: the embeddings are stale; run `dvc repro`.")
    return inputs


def classify_codes(W: np.ndarray, aligned: Aligned, class_emb: np.ndarray, labels: np.ndarray,
                   how: str = "report") -> float:
    """Zero-shot accuracy of sparse codes ``W``, reconstructed the way ``how`` names."""
    if how == "report":
        return zero_shot_accuracy(reconstruct(W, aligned.A, aligned.concept_mean), class_emb, labels)
    if how == "centred":
        centred_classes = normalise_rows(class_emb - aligned.concept_mean)
        return zero_shot_accuracy(reconstruct(W, aligned.A), centred_classes, labels)
    if how == "image_mean":
        return zero_shot_accuracy(reconstruct(W, aligned.A, aligned.image_mean), class_emb, labels)
    raise ValueError(f"unknown classifier {how!r}; choose one of {CLASSIFIERS}.")


def lambda_sweep(inputs: SectionInputs, aligned: Aligned, lambdas, lr: float, n_iter: int,
                 keep: tuple = ()) -> tuple[pd.DataFrame, dict[float, np.ndarray]]:
    """Run the report's ISTA for every lambda; return Table 1 (+ ablation) and the codes asked for."""
    from tqdm import tqdm

    rows, codes = [], {}
    for lam in tqdm(lambdas, desc="lambda sweep", disable=None):
        W = ista(aligned.Z, aligned.A, lam, lr=lr, n_iter=n_iter, dtype=np.float32)
        nnz = np.count_nonzero(W, axis=1)
        row = {"lambda": float(lam), "mean_nonzeros": float(nnz.mean()),
               "median_nonzeros": float(np.median(nnz)), "zero_codes": int(np.sum(nnz == 0))}
        for how in CLASSIFIERS:
            row[f"accuracy_{how}"] = classify_codes(W, aligned, inputs.class_emb, inputs.labels, how)
        rows.append(row)
        if lam in keep:
            codes[lam] = W
    return pd.DataFrame(rows), codes


def memory_table(sweep: pd.DataFrame, n_images: int, n_concepts: int) -> pd.DataFrame:
    """Table 2: dense float32 versus CSR (float32 values, int32 indices) bytes per lambda.

    The CSR size follows from the number of non-zeros alone, so the sweep's counts suffice:
    ``nnz * (4 + 4) + (n_images + 1) * 4`` bytes.
    """
    dense = n_images * n_concepts * 4
    nnz = np.round(sweep["mean_nonzeros"].to_numpy() * n_images).astype(np.int64)
    csr = nnz * 8 + (n_images + 1) * 4
    return pd.DataFrame({"lambda": sweep["lambda"], "nnz": nnz, "dense_float32_MB": dense / 1e6,
                         "csr_MB": csr / 1e6, "csr_over_dense": csr / dense})


def memory_claim_check(claim_mb: float, n_images: int, n_concepts: int) -> pd.DataFrame:
    """Mean non-zeros per image that a claimed size implies under common sparse formats."""
    formats = {
        "CSR float32 values, int32 indices": (4, 4, 4),
        "CSR float64 values, int32 indices": (8, 4, 4),
        "CSR float64 values, int64 indices": (8, 8, 8),
        "COO float32 values, two int32 indices": (4, 8, 0),
    }
    rows = []
    for name, (value_bytes, index_bytes, pointer_bytes) in formats.items():
        overhead = (n_images + 1) * pointer_bytes
        per_nnz = value_bytes + index_bytes
        implied = (claim_mb * 1e6 - overhead) / per_nnz / n_images
        rows.append({"format": name, "bytes_per_nonzero": per_nnz,
                     "implied_mean_nonzeros": implied,
                     "fraction_of_dense": claim_mb * 1e6 / (n_images * n_concepts * 4)})
    return pd.DataFrame(rows)


def check_csr_formula(W: np.ndarray) -> bool:
    """True when :func:`memory_table`'s formula matches scipy's actual CSR bytes for ``W``."""
    actual = sparse_memory_bytes(W)
    n = W.shape[0]
    return actual["csr_bytes"] == actual["nnz"] * 8 + (n + 1) * 4


def top_concepts(W: np.ndarray, concepts: list[str], k: int = 20) -> pd.DataFrame:
    """Table 3: the ``k`` concepts used (non-zero) by the most images (ties by name)."""
    counts = np.count_nonzero(W, axis=0)
    mean_weight = np.abs(W).sum(axis=0) / np.maximum(counts, 1)
    table = pd.DataFrame({"concept": concepts, "nonzero_images": counts, "mean_abs_weight": mean_weight})
    table = table.sort_values(["nonzero_images", "concept"], ascending=[False, True], kind="stable")
    return table.head(k).reset_index(drop=True).assign(rank=lambda t: t.index + 1)[
        ["rank", "concept", "nonzero_images", "mean_abs_weight"]]


def example_items(labels: np.ndarray, n_examples: int, seed: int) -> np.ndarray:
    """Indices of ``n_examples`` items of distinct classes, drawn with ``seed``."""
    rng = np.random.default_rng(seed)
    classes = rng.choice(np.unique(labels), size=n_examples, replace=False)
    return np.array([rng.choice(np.flatnonzero(labels == c)) for c in classes])


def top_weights(W: np.ndarray, index: int, concepts: list[str], k: int) -> pd.DataFrame:
    """The ``k`` largest-magnitude weights of one code."""
    w = W[index]
    order = np.argsort(-np.abs(w), kind="stable")[:k]
    order = order[w[order] != 0]
    return pd.DataFrame({"concept": [concepts[i] for i in order], "weight": w[order]})


def with_profile(table: pd.DataFrame, profile: str, backbone: str) -> pd.DataFrame:
    """Label a results table with the profile and backbone that produced it."""
    return table.assign(profile=profile, backbone=backbone)


# --- figures ---------------------------------------------------------------

def figure_sweep(sweep: pd.DataFrame, dense_accuracy: float):
    """Sparsity (mean non-zeros) and accuracy versus lambda, with the dense accuracy."""
    import matplotlib.pyplot as plt

    fig, (left, right) = plt.subplots(1, 2, figsize=(10, 3.6))
    left.plot(sweep["lambda"], sweep["mean_nonzeros"], marker="o")
    left.set(xscale="log", yscale="log", xlabel="lambda", ylabel="mean non-zeros per image",
             title="Sparsity of the ISTA codes")
    for how, style in zip(CLASSIFIERS, ("-", "--", ":")):
        right.plot(sweep["lambda"], sweep[f"accuracy_{how}"], marker="o", ls=style, label=how)
    right.axhline(dense_accuracy, color="0.4", lw=1, label="dense")
    right.set(xscale="log", xlabel="lambda", ylabel="zero-shot accuracy", ylim=(0, 1),
              title="Accuracy of the sparse reconstructions")
    right.legend()
    fig.tight_layout()
    return fig


def figure_convergence(histories: dict[str, np.ndarray]):
    """Objective minus the best objective found, per iteration, for each solver."""
    import matplotlib.pyplot as plt

    best = min(float(np.min(h)) for h in histories.values())
    fig, ax = plt.subplots(figsize=(6.4, 3.6))
    for name, history in histories.items():
        gap = np.maximum(np.asarray(history) - best, 1e-12)
        ax.plot(np.arange(len(gap)), gap, label=name)
    ax.set(yscale="log", xlabel="iteration", ylabel="objective - best objective",
           title="ISTA (report step) versus FISTA (step 1/L)")
    ax.legend()
    fig.tight_layout()
    return fig


def figure_examples(W: np.ndarray, items: np.ndarray, labels: np.ndarray, concepts: list[str], k: int):
    """Bar charts of the largest weights of a few codes (the report's Figures 3-4)."""
    import matplotlib.pyplot as plt

    fig, axes = plt.subplots(1, len(items), figsize=(3.2 * len(items), 3.4), squeeze=False)
    for ax, index in zip(axes[0], items):
        top = top_weights(W, index, concepts, k)[::-1]
        colours = ["C0" if w > 0 else "C3" for w in top["weight"]]
        ax.barh(top["concept"], top["weight"], color=colours)
        ax.set(title=f"item {index}: {CIFAR10_CLASSES[labels[index]]}", xlabel="weight")
    fig.tight_layout()
    return fig


def describe_inputs(params: dict) -> str:
    """Markdown paragraph saying where this run's embeddings come from."""
    profile, backbone = params["profile"], params["embed"]["backbone"]
    if profile == "demo":
        from ..embedding.simulator import describe

        return describe(params["demo_world"], params["embed"]["prompt_template"])
    return (f"**Full profile**: real CIFAR-10 test images embedded by open_clip `{backbone}` with "
            "OpenAI weights and open_clip's own preprocessing (224 px, bicubic resize, centre crop, "
            "CLIP mean and std); prompts embedded by the same model's text tower.")
