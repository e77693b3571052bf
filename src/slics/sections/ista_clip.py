"""Section 2: sparse CLIP embeddings by ISTA over a Flickr30k concept dictionary.

The notebook ``02_ista_clip`` calls these functions in order: load the cached embeddings,
measure dense zero-shot accuracy and the modality gap, align images and concepts, sweep
lambda with the report's ISTA (and the exact lasso optimum beside it), and summarise against
the report's own numbers (``reference/report_values.yaml``): Table 1 (sparsity versus
accuracy), Table 2 (memory), Table 3 (most active concepts), examples, ISTA versus FISTA.
The solvers live in :mod:`slics.core.sparse_coding`, the byte arithmetic in :mod:`slics.core.storage`.

Reconstructions (:data:`RECONSTRUCTIONS`, the ablation): the codes ``w`` are fitted against
the centred, renormalised dictionary ``A_c``, but the report (section 2.2.3) writes the sparse
embedding as ``z_hat = A w + mu_c`` with ``A`` the *uncentred* dictionary (the unit-norm concept
prompts). Each variant is named after what it computes; ``A_w_plus_mu_c`` is the report's.
In the code the dictionaries are ``(n_concepts, d)`` arrays with concepts as rows (``A^T``):
``aligned.D`` is ``A_c^T``, ``concept_emb`` is ``A^T``, and ``A w`` is ``w D``.

Memory (Table 2): the report's 19.53 "MB" is the dense *image embeddings*, 10000 x 512 float32
in MiB; its 8.21 "MB" is 215.27 x 10^4 non-zero float32 *values* in MiB, no indices stored
(:func:`report_memory_table` reproduces both). :func:`memory_table` gives the storage with the
indices a sparse code needs (CSR int32 / int16 indices, COO) for every lambda.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pandas as pd

from ..core import storage
from ..core.normalise import normalise_rows
from ..core.objectives import lasso_objective
from ..core.sparse_coding import Aligned, fista, ista, lipschitz_step, reconstruct
from ..core.zero_shot import cosine_similarity, zero_shot_accuracy
from ..data.cifar import CIFAR10_CLASSES
from ..utils.validation import check_matrix
from ..utils.reference import report_table, report_value

SECTION = "ista_clip"
RECONSTRUCTIONS = {
    "A_w_plus_mu_c": "A w + mu_c with A the uncentred unit-norm concept prompts (the report's formula), "
                     "against the class prompts",
    "Ac_w_plus_mu_c": "A_c w + mu_c with A_c the centred, renormalised concepts the codes were fitted with, "
                      "against the class prompts",
    "Ac_w_vs_centred_classes": "A_c w against the class prompts centred by mu_c: all in the dictionary's "
                               "centred space",
    "Ac_w_plus_mu_img": "A_c w + mu_img (adding back the image mean that the alignment removed), "
                        "against the class prompts",
}
REPORT_RECONSTRUCTION = "A_w_plus_mu_c"
SOLVERS = ("ista", "exact")
MEMORY_FORMATS = ("values_only", "csr_int32", "csr_int16", "coo_int32")
# Printed precision of every section-2 quantity (README, "Reproduction contract"): coarse enough
# that cross-machine float noise (about 1e-6 relative) does not reach the last digit. Mean
# non-zeros are whole numbers: they count coefficients, and another BLAS kernel puts a few of the
# float32 ISTA's millions on the other side of its threshold (measured at lambda 0.01: 6,685,500
# non-zeros in 10,000 codes with OpenBLAS's AVX-512 kernels, 668.55 exactly, printed 668.5 there
# and 668.6 with its AVX2 ones).
DECIMALS = {
    "lambda": 2, "mean_nonzeros": 0, "median_nonzeros": 1, "subset_ista_mean_nonzeros": 0,
    "subset_exact_mean_nonzeros": 0, "report_mean_nonzeros": 2, "dense_accuracy": 4, "accuracy": 4,
    "subset_ista_accuracy": 4, "subset_exact_accuracy": 4,
    "report_accuracy": 4, **{f"accuracy_{how}": 4 for how in RECONSTRUCTIONS},
    "objective": 4, "ista_relative_gap": 4, "mean_abs_weight": 4, "report_nonzero_count": 0,
    "report_concept_nonzero_images": 0, "report_MiB": 2, "report_MiB_reproduced": 2, "run_MiB": 2,
    **{f"{fmt}_MiB": 2 for fmt in (*MEMORY_FORMATS, "dense")}, "csr_int32_over_dense_embeddings": 3,
    "csr_int32_over_dense_codes": 3, "implied_mean_nonzeros": 2, "cosine": 4,
    "mean_abs_difference": 4, "max_abs_difference": 4,
    "fista_objective_final": 2, "ista_objective_at_n_iter": 2, "ista_objective_at_horizon": 2,
    "exact_objective": 2, "lipschitz_step": 5, "report_step": 3,
}


@dataclass
class SectionInputs:
    """Embeddings read from ``data/embeddings/<backbone>/`` (rows are unit-norm)."""

    images: np.ndarray        # (n_images, d)
    labels: np.ndarray        # (n_images,) class index
    class_emb: np.ndarray     # (10, d) "a photo of a {class}"
    concept_emb: np.ndarray   # (n_concepts, d) "a photo of a {concept}": the uncentred dictionary A (rows)
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


def modality_gap(inputs: SectionInputs, aligned: Aligned, n_images: int, seed: int) -> pd.DataFrame:
    """Mean image-image and image-concept cosines, raw and after alignment, on ``n_images`` seeded images."""
    rng = np.random.default_rng(seed)
    sample = rng.choice(len(inputs.images), size=min(int(n_images), len(inputs.images)), replace=False)
    raw, centred = inputs.images[sample], aligned.Z[sample]
    table = pd.DataFrame({
        "pair": ["image-image", "image-concept"],
        "raw": [cosine_similarity(raw, raw).mean(), cosine_similarity(raw, inputs.concept_emb).mean()],
        "centred": [cosine_similarity(centred, centred).mean(), cosine_similarity(centred, aligned.D).mean()],
    })
    for column in ("raw", "centred"):     # rounded here, + 0.0 so that a noisy 0 never prints as "-0.0000"
        table[column] = table[column].round(DECIMALS["cosine"]) + 0.0
    return table


# --- codes and their reconstructions ------------------------------------------

def exact_codes(Z, D, lam: float, *, init=None, tol: float = 1e-6, max_iter: int = 100_000) -> np.ndarray:
    """Exact minimiser of ``||z - w D||^2 + lam ||w||_1`` for every row of ``Z`` (the lasso optimum).

    :func:`slics.core.lasso.lasso` (coordinate descent on the Gram matrix with working sets, stopped
    at a relative duality gap ``tol``) with the dictionary's concepts as its atoms (rows). The one
    place where this section calls an exact solver, so that it can be swapped.

    Parameters
    ----------
    Z : array of shape (n_images, d)
        Image embeddings, one per row.
    D : array of shape (n_concepts, d)
        Dictionary, concepts as rows (as :func:`slics.core.sparse_coding.ista`).
    lam : float
        L1 weight on the report's scale.
    init : array of shape (n_images, n_concepts), optional
        Warm start (e.g. the ISTA codes); only the speed depends on it.
    tol : float, default 1e-6
        Relative duality gap at which a row stops (a ``ConvergenceWarning`` names rows that do not).
    max_iter : int, default 100000
        Sweeps per row at most: a few rows of coherent dictionaries need thousands (the solver's
        own default, 1000, leaves some far from the optimum); the others stop at ``tol`` long before.

    Returns
    -------
    ndarray of shape (n_images, n_concepts), float64
    """
    from ..core.lasso import lasso

    D = check_matrix(D, "D")
    # method pinned: "auto" times its candidates, so its bytes could depend on the machine's load
    return lasso(check_matrix(Z, "Z", n_cols=D.shape[1]), D, lam, init=init, tol=tol, max_iter=max_iter,
                 dtype=np.float64, method="cd")


def reconstruct_as(how: str, W, aligned: Aligned, concept_emb, class_emb, centred=None):
    """``(z_hat, class prompts)`` of reconstruction ``how`` (see :data:`RECONSTRUCTIONS`).

    ``centred`` may pass a precomputed ``A_c w`` (``reconstruct(W, aligned.D)``) to share it
    between variants.
    """
    if how == "A_w_plus_mu_c":
        return reconstruct(W, concept_emb, aligned.concept_mean), class_emb
    if how not in RECONSTRUCTIONS:
        raise ValueError(f"unknown reconstruction {how!r}; choose one of {tuple(RECONSTRUCTIONS)}.")
    P = reconstruct(W, aligned.D) if centred is None else centred
    if how == "Ac_w_plus_mu_c":
        return P + aligned.concept_mean, class_emb
    if how == "Ac_w_plus_mu_img":
        return P + aligned.image_mean, class_emb
    return P, normalise_rows(np.asarray(class_emb) - aligned.concept_mean)


def classify_codes(W, aligned: Aligned, inputs: SectionInputs, how: str = REPORT_RECONSTRUCTION) -> float:
    """Zero-shot accuracy of codes ``W`` reconstructed the way ``how`` names."""
    Z_hat, classes = reconstruct_as(how, W, aligned, inputs.concept_emb, inputs.class_emb)
    return zero_shot_accuracy(Z_hat, classes, inputs.labels)


def code_summary(W, lam: float, aligned: Aligned, inputs: SectionInputs) -> dict:
    """Sparsity, mean objective per image and the accuracy of every reconstruction of codes ``W``."""
    nnz = np.count_nonzero(W, axis=1)
    centred = reconstruct(W, aligned.D)
    residual = aligned.Z - centred
    objective = np.einsum("ij,ij->i", residual, residual) + lam * np.abs(W).sum(axis=1, dtype=np.float64)
    row = {"lambda": float(lam), "nnz": int(nnz.sum()), "mean_nonzeros": float(nnz.mean()),
           "median_nonzeros": float(np.median(nnz)), "zero_codes": int(np.sum(nnz == 0)),
           "objective": float(objective.mean())}
    for how in RECONSTRUCTIONS:
        Z_hat, classes = reconstruct_as(how, W, aligned, inputs.concept_emb, inputs.class_emb, centred)
        row[f"accuracy_{how}"] = zero_shot_accuracy(Z_hat, classes, inputs.labels)
    return row


def subset(inputs: SectionInputs, aligned: Aligned, rows) -> tuple[SectionInputs, Aligned]:
    """The images ``rows`` of the inputs and of the aligned embeddings (means, dictionary unchanged)."""
    rows = np.asarray(rows)
    sub = SectionInputs(inputs.images[rows], inputs.labels[rows], inputs.class_emb, inputs.concept_emb,
                        inputs.concepts, inputs.backbone)
    return sub, aligned._replace(Z=aligned.Z[rows])


def subset_rows(n_images: int, size: int | None, seed: int) -> np.ndarray:
    """``size`` seeded image indices, sorted (all images when ``size`` is None or too large)."""
    if size is None or int(size) >= n_images:
        return np.arange(n_images)
    return np.sort(np.random.default_rng(seed).choice(n_images, size=int(size), replace=False))


def lambda_sweep(inputs: SectionInputs, aligned: Aligned, lambdas, lr: float, n_iter: int, *,
                 exact_rows=None, keep: tuple = ()) -> tuple[pd.DataFrame, dict]:
    """The report's ISTA for every lambda on all images; with ``exact_rows``, the lasso optimum beside it.

    Returns the long table (one row per lambda, solver and image set, see :func:`code_summary`):
    ``("ista", "all")`` always; with ``exact_rows`` also ``("ista", "subset")`` and
    ``("exact", "subset")`` on those images (the optimum warm-started from ISTA's codes), and the
    ISTA codes of the lambdas in ``keep``.
    """
    from tqdm import tqdm

    rows, codes = [], {}
    if exact_rows is not None:
        sub_inputs, sub_aligned = subset(inputs, aligned, exact_rows)
    for lam in tqdm(lambdas, desc="lambda sweep", disable=None):
        W = ista(aligned.Z, aligned.D, lam, lr=lr, n_iter=n_iter, dtype=np.float32)
        rows.append({"solver": "ista", "images": "all", **code_summary(W, lam, aligned, inputs)})
        if exact_rows is not None:
            W_sub = W[exact_rows]
            W_exact = exact_codes(sub_aligned.Z, sub_aligned.D, lam, init=W_sub)
            rows.append({"solver": "ista", "images": "subset", **code_summary(W_sub, lam, sub_aligned, sub_inputs)})
            rows.append({"solver": "exact", "images": "subset",
                         **code_summary(W_exact, lam, sub_aligned, sub_inputs)})
        if lam in keep:
            codes[lam] = W
    return pd.DataFrame(rows), codes


# --- tables beside the report --------------------------------------------------

def _report(name: str) -> pd.DataFrame:
    return report_table(SECTION, name)


def table1(sweep: pd.DataFrame) -> pd.DataFrame:
    """Table 1 beside the report's: mean non-zeros and accuracy (report's reconstruction) per lambda.

    ``mean_nonzeros`` / ``accuracy``: ISTA on all images; ``subset_*``: ISTA and the exact lasso
    optimum on the seeded subset of the sweep; ``ista_relative_gap``: ISTA's mean objective over
    the optimum's, minus one (how far the report's 200 iterations are from the optimum).
    """
    acc = f"accuracy_{REPORT_RECONSTRUCTION}"
    pick = lambda solver, images: sweep[(sweep["solver"] == solver) & (sweep["images"] == images)]  # noqa: E731
    full = pick("ista", "all").set_index("lambda")
    out = pd.DataFrame({"lambda": full.index, "mean_nonzeros": full["mean_nonzeros"].to_numpy(),
                        "accuracy": full[acc].to_numpy()})
    report = _report("table1").set_index("lambda")
    out["report_mean_nonzeros"] = [report["mean_nonzeros"].get(lam, np.nan) for lam in out["lambda"]]
    out["report_accuracy"] = [report["accuracy_percent"].get(lam, np.nan) / 100 for lam in out["lambda"]]
    if len(pick("exact", "subset")):
        ista_sub = pick("ista", "subset").set_index("lambda").loc[out["lambda"]]
        exact = pick("exact", "subset").set_index("lambda").loc[out["lambda"]]
        out["subset_ista_mean_nonzeros"] = ista_sub["mean_nonzeros"].to_numpy()
        out["subset_exact_mean_nonzeros"] = exact["mean_nonzeros"].to_numpy()
        out["subset_ista_accuracy"] = ista_sub[acc].to_numpy()
        out["subset_exact_accuracy"] = exact[acc].to_numpy()
        gap = ista_sub["objective"].to_numpy() / exact["objective"].to_numpy() - 1
        # within the exact solver's tolerance the gap may come out a hair below 0: print it as 0
        out["ista_relative_gap"] = np.round(gap, DECIMALS["ista_relative_gap"]) + 0.0
    return out


def ablation_table(sweep: pd.DataFrame) -> pd.DataFrame:
    """Accuracy of every reconstruction, per lambda and solver."""
    return sweep[["lambda", "solver", "images", *(f"accuracy_{how}" for how in RECONSTRUCTIONS)]].reset_index(drop=True)


def distance_to_report(sweep: pd.DataFrame) -> pd.DataFrame:
    """Mean and largest absolute difference between each reconstruction's accuracy and the report's Table 1.

    Over the lambdas of the report's table, for ISTA on all images (the report's setting).
    """
    report = _report("table1").set_index("lambda")["accuracy_percent"] / 100
    run = sweep[(sweep["solver"] == "ista") & (sweep["images"] == "all")].set_index("lambda")
    common = [lam for lam in run.index if lam in report.index]
    rows = []
    for how in RECONSTRUCTIONS:
        diff = (run.loc[common, f"accuracy_{how}"] - report.loc[common]).abs()
        rows.append({"reconstruction": how, "mean_abs_difference": diff.mean(), "max_abs_difference": diff.max()})
    return pd.DataFrame(rows)


def report_memory_mib(n_values: float, bytes_per_value: int = 4) -> float:
    """The report's memory convention: ``n_values`` float32 values in MiB, nothing else stored.

    ``report_memory_mib(10000 * 512)`` is the report's 19.53 (dense image embeddings) and
    ``report_memory_mib(215.27e4)`` its 8.21 (Table 1's mean non-zeros at lambda = 0.05 times
    10,000 images): the report's "MB" are MiB, and its sparse size stores no indices.
    """
    return storage.mib(float(n_values) * bytes_per_value)


def report_memory_table(n_images: int, dim: int, n_concepts: int, run_mean_nonzeros: float) -> pd.DataFrame:
    """The report's Table 2, its numbers reproduced from its own counts, beside this run's under its convention."""
    report = _report("table2").set_index("embedding")
    n_rep = report_value(SECTION, "n_images")
    t1 = _report("table1").set_index("lambda")["mean_nonzeros"]
    top = report_value(SECTION, "top_lambda")
    return pd.DataFrame({
        "embedding": ["Dense (image embeddings)", f"Sparse (codes, lambda = {top}, values only)"],
        "report_shape": report["shape"].tolist(),
        "report_MiB": report["memory_MB"].tolist(),
        "report_MiB_reproduced": [report_memory_mib(n_rep * report_value(SECTION, "embedding_dim")),
                                  report_memory_mib(t1[top] * n_rep)],
        "run_shape": [f"{n_images}x{dim}", f"{n_images}x{n_concepts}"],
        "run_MiB": [report_memory_mib(n_images * dim), report_memory_mib(run_mean_nonzeros * n_images)],
    })


def memory_table(mean_nonzeros, lambdas, counts_from: str, n_images: int, dim: int, n_concepts: int) -> pd.DataFrame:
    """Storage of codes with ``mean_nonzeros`` per image in every format, in MiB, per lambda.

    ``values_only_MiB`` is the report's convention; the CSR and COO columns include the indices
    that make a sparse matrix usable. Ratios compare CSR int32 with the dense image embeddings
    (the report's comparison) and with the dense codes.
    """
    rows = []
    for lam, mean in zip(lambdas, mean_nonzeros):
        sizes = storage.storage_bytes(round(mean * n_images), n_images, n_concepts)
        dense_embeddings = n_images * dim * 4
        rows.append({"lambda": float(lam), "counts_from": counts_from, "mean_nonzeros": float(mean),
                     **{f"{fmt}_MiB": storage.mib(sizes[fmt]) for fmt in (*MEMORY_FORMATS, "dense")},
                     "csr_int32_over_dense_embeddings": sizes["csr_int32"] / dense_embeddings,
                     "csr_int32_over_dense_codes": sizes["csr_int32"] / sizes["dense"]})
    return pd.DataFrame(rows)


def memory_claim_check(n_images: int, n_concepts: int) -> pd.DataFrame:
    """Mean non-zeros per image that the report's sparse size implies in each storage format."""
    claim = _report("table2").set_index("embedding").loc["Sparse", "memory_MB"]
    implied = storage.implied_nonzeros_per_row(claim * storage.MIB, n_images, n_concepts)
    return pd.DataFrame({"format": list(implied), "implied_mean_nonzeros": list(implied.values())})


def top_concepts(W: np.ndarray, concepts: list[str], k: int = 20) -> pd.DataFrame:
    """Table 3: the ``k`` concepts used (non-zero) by the most images (ties by name), beside the report's.

    ``report_concept`` / ``report_nonzero_count``: the report's Table 3 at the same rank;
    ``report_concept_nonzero_images``: how many images of this run use that concept (empty when
    it is not in this run's dictionary).
    """
    counts = np.count_nonzero(W, axis=0)
    mean_weight = np.abs(W).sum(axis=0) / np.maximum(counts, 1)
    table = pd.DataFrame({"concept": concepts, "nonzero_images": counts, "mean_abs_weight": mean_weight})
    table = table.sort_values(["nonzero_images", "concept"], ascending=[False, True], kind="stable")
    table = table.head(k).reset_index(drop=True)
    table.insert(0, "rank", table.index + 1)
    report = _report("table3").set_index("rank").reindex(table["rank"])
    index = {c: i for i, c in enumerate(concepts)}
    table["report_concept"] = report["concept"].fillna("").to_numpy()
    table["report_nonzero_count"] = report["nonzero_count"].to_numpy(dtype=float)
    table["report_concept_nonzero_images"] = [float(counts[index[c]]) if c in index else np.nan
                                              for c in table["report_concept"]]
    return table


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


# --- ISTA versus FISTA, and the metrics ------------------------------------------

def convergence_experiment(aligned: Aligned, rows, lam: float, lr: float, n_iter: int, horizon: int,
                           tol: float) -> tuple[dict[str, np.ndarray], dict]:
    """Objective histories of the report's ISTA and of FISTA (step 1/L) on the images ``rows``.

    Both run for up to ``horizon`` iterations (FISTA stops earlier at relative change ``tol``);
    the exact optimum of those images (:func:`exact_codes`) is the floor. Returns the histories
    (objective summed over the images, per iteration) and a summary: ISTA after the report's
    ``n_iter`` and after ``horizon``, FISTA at its end, the optimum, the report's step and the
    safe step ``1/L``.
    """
    if int(horizon) < int(n_iter):
        raise ValueError(f"horizon ({horizon}) must be at least the report's n_iter ({n_iter}).")
    Z = aligned.Z[np.asarray(rows)]
    W_ista, ista_history = ista(Z, aligned.D, lam, lr=lr, n_iter=horizon, return_history=True)
    _, fista_history = fista(Z, aligned.D, lam, n_iter=horizon, tol=tol, return_history=True)
    W_exact = exact_codes(Z, aligned.D, lam, init=W_ista)
    summary = {"lambda": float(lam), "n_images": len(Z), "n_iter": int(n_iter), "horizon": int(horizon),
               "report_step": float(lr), "lipschitz_step": lipschitz_step(aligned.D),
               "ista_objective_at_n_iter": float(ista_history[int(n_iter)]),
               "ista_objective_at_horizon": float(ista_history[-1]),
               "fista_objective_final": float(fista_history[-1]), "fista_iterations": len(fista_history) - 1,
               "exact_objective": float(lasso_objective(Z, aligned.D, W_exact, lam).sum())}
    return {f"ISTA, step {lr}": ista_history, "FISTA, step 1/L": fista_history}, summary


def rounded(values: dict) -> dict:
    """``values`` with every float at its precision in :data:`DECIMALS` (for display)."""
    return {k: round(v, DECIMALS[k]) if isinstance(v, float) else v for k, v in values.items()}


def section_metrics(profile: str, backbone: str, n_concepts: int, dense_accuracy: float,
                    sweep: pd.DataFrame, convergence: dict) -> dict:
    """The metrics file: dense accuracy, and per solver and lambda the sparsity and every accuracy."""
    per_solver = {}
    for (solver, images), rows in sweep.groupby(["solver", "images"], sort=False):
        per_solver[f"{solver}_{images}"] = {f"{row['lambda']:g}": {"mean_nonzeros": row["mean_nonzeros"],
                                                     **{f"accuracy_{h}": row[f"accuracy_{h}"] for h in RECONSTRUCTIONS}}
                              for row in rows.to_dict("records")}
    return {"profile": profile, "backbone": backbone, "n_concepts": n_concepts,
            "dense_accuracy": dense_accuracy, "report_reconstruction": REPORT_RECONSTRUCTION,
            "sweep": per_solver, "convergence": convergence}


# --- figures ---------------------------------------------------------------

def figure_sweep(table: pd.DataFrame, dense_accuracy: float, report_dense_accuracy: float):
    """Table 1 as a figure: sparsity and accuracy versus lambda, run (ISTA, exact) beside the report.

    Every lambda of the sweep is a labelled tick; the non-zeros axis is symmetric-log so that
    codes with no non-zero (large lambda) stay on the figure at 0.
    """
    import matplotlib.pyplot as plt

    from ..utils.plotting import BASELINE, MARKERS, PALETTE, value_axis

    fig, (left, right) = plt.subplots(1, 2, figsize=(10, 3.6))
    series = [("mean_nonzeros", "accuracy", "this run, ISTA (200 iterations)", "-"),
              ("report_mean_nonzeros", "report_accuracy", "report", "--")]
    if "subset_exact_accuracy" in table:
        series.append(("subset_exact_mean_nonzeros", "subset_exact_accuracy", "this run, exact optimum (subset)", ":"))
    for i, (nnz, acc, label, ls) in enumerate(series):
        style = {"ls": ls, "marker": MARKERS[i], "color": PALETTE[i], "label": label}
        left.plot(table["lambda"], table[nnz], **style)
        right.plot(table["lambda"], table[acc], **style)
    left.set_yscale("symlog", linthresh=1)
    left.set_ylim(bottom=0)
    left.set(xlabel="lambda (l1 penalty)", ylabel="mean non-zeros per image",
             title="Sparsity of the codes")
    right.axhline(dense_accuracy, color=BASELINE["color"], lw=BASELINE["lw"], ls="-", label="dense embeddings, this run")
    right.axhline(report_dense_accuracy, **BASELINE, label="dense embeddings, report")
    right.set(xlabel="lambda (l1 penalty)", ylabel="zero-shot accuracy", ylim=(0, 1),
              title=r"Zero-shot accuracy of the codes, decoded as $A\,w + \mu_c$")
    for ax in (left, right):
        value_axis(ax, table["lambda"], "x")
    handles, labels = right.get_legend_handles_labels()
    fig.legend(handles, labels, loc="upper center", bbox_to_anchor=(0.5, 0.0), ncol=3, frameon=False)
    fig.tight_layout()
    return fig


# relative objective gap drawn as the floor of the convergence figure: above the rounding of a sum
# of a few hundred row objectives (about 1e-14 of it), below anything a solver is asked for
GAP_FLOOR = 1e-12


def figure_convergence(histories: dict[str, np.ndarray], optimum: float):
    """Objective minus the exact optimum, per iteration, for each solver.

    Gaps below ``GAP_FLOOR`` of the optimum are the rounding of the objective's sums (they move
    with the BLAS build), so they are drawn at that floor, which is also the axis's bottom.
    """
    import matplotlib.pyplot as plt

    from ..utils.plotting import legend_outside

    floor = GAP_FLOOR * max(abs(optimum), 1.0)
    fig, ax = plt.subplots(figsize=(6.4, 3.6))
    for name, history in histories.items():
        gap = np.maximum(np.asarray(history) - optimum, floor)
        ax.plot(np.arange(len(gap)), gap, label=name)
    ax.set(yscale="log", xlabel="iteration", ylabel="objective minus the exact optimum",
           title="Convergence: ISTA (the report's step) versus FISTA (step 1/L)")
    ax.set_ylim(bottom=floor / 2)
    legend_outside(ax)
    fig.tight_layout()
    return fig


def figure_examples(W: np.ndarray, items: np.ndarray, labels: np.ndarray, concepts: list[str], k: int):
    """Bar charts of the largest weights of a few codes (the report's Figures 3-4)."""
    import matplotlib.pyplot as plt

    from ..utils.plotting import PALETTE

    fig, axes = plt.subplots(1, len(items), figsize=(3.2 * len(items), 3.4), squeeze=False)
    for ax, index in zip(axes[0], items):
        top = top_weights(W, index, concepts, k)[::-1]
        colours = [PALETTE[0] if w > 0 else PALETTE[3] for w in top["weight"]]
        ax.barh(top["concept"], top["weight"], color=colours)
        ax.axvline(0, color="0.2", lw=0.8)
        ax.set(title=f"image {index} (a {CIFAR10_CLASSES[labels[index]]}): largest weights", xlabel="concept weight")
    fig.tight_layout()
    return fig


def concept_mining_tables() -> dict:
    """The ``concepts`` stage's summary and tables (order comparison, overlap with the report's Table 3)."""
    import json

    from ..data.concepts import TABLE_STEM
    from ..utils.config import upstream_results_dir

    root = upstream_results_dir()
    read = lambda suffix: pd.read_csv(root / "tables" / f"{TABLE_STEM}_{suffix}.csv", keep_default_na=False)  # noqa: E731
    summary = json.loads((root / "metrics" / f"{TABLE_STEM}.json").read_text())
    return {"summary": summary, "orders": read("orders"), "overlap": read("report_overlap")}


def describe_inputs(params: dict) -> str:
    """Markdown paragraph saying where this run's embeddings come from."""
    profile, backbone = params["profile"], params["embed"]["backbone"]
    if profile == "demo":
        from ..embedding.simulator import describe

        return describe(params["demo_world"])
    return (f"**Full profile**: real CIFAR-10 test images embedded by open_clip `{backbone}` with "
            "OpenAI weights and open_clip's own preprocessing (224 px, bicubic resize, centre crop, "
            "CLIP mean and std); prompts embedded by the same model's text tower.")
