"""Sections 3-4 of the SLiCS paper: concept subspaces of CLIP embeddings and filtered retrieval.

The notebook ``03_slics_clip`` calls these functions: load a retrieval set
(:func:`slics.embedding.retrieval_set.load_set`: embeddings of ``embed_<dataset>``, labels,
split, preprocessed as the paper), fit the
dictionaries (S-SVD, S-SLiCS, U-SLiCS with zero-shot pseudo-labels), score the methods
of Table 2 with :mod:`slics.core.retrieval`, choose ``K`` on the validation queries, and
caption the subspaces with words. Its figures are in :mod:`slics.sections.retrieval_figures`.

Methods (the columns of the paper's Table 2), each giving the query vector of concept
``j`` and the candidate vectors:

* ``S-SVD``: the S-SLiCS initialisation alone (``n_iter=0``); ``SLiCS.project(q, j)`` vs ``c``.
* ``S-SLiCS``: supervised SLiCS, ``n_iter`` iterations (mini-batches on COCO, several seeds).
* ``U-SLiCS``: SLiCS on zero-shot pseudo-labels (top ``n_pseudo_labels`` concepts of each
  training image by cosine between its *original* embedding and the template-averaged
  concept-name embeddings).
* ``UF``: unfiltered, ``q`` vs ``c`` (the same ranking for every concept).
* ``SpLiCE``: ``w(q) V`` vs ``w(c) V`` (reconstructions over the centred LAION-10k words).
* ``F-SpLiCE``: ``w(q)_{G_j} V_{G_j}`` (the words grouped to concept ``j``) vs ``w(c) V``.

How the lost symbols were read: the filtered score is ``cos(D_j^T w_j(q), c)`` with
``w_j(q)`` the NNLS coefficients of ``q`` on concept ``j``'s atoms alone (eq. 3, "partial
disentanglement"); the ablation ``project_pool`` also projects the candidate.
"""

from __future__ import annotations

import warnings

import numpy as np
import pandas as pd
from scipy import sparse

from ..core.dictionary import SLiCS
from ..core.nnls import nnls_batch
from ..core.retrieval import filtered_retrieval, mean_average_precision
from ..core.splice import SpLiCE
from ..core.zero_shot import normalise_rows, zero_shot_pseudo_labels
from ..embedding.retrieval_set import RetrievalSet, load_set

METHODS = ("S-SVD", "S-SLiCS", "U-SLiCS", "UF", "F-SpLiCE", "SpLiCE")
DATASET_LABEL = {"mirflickr25k": "MIR", "coco": "COCO"}
DECIMALS = {"map_general": 4, "map_sub": 4, "map_general_std": 4, "map_sub_std": 4, "paper": 3, "run": 4,
            "mean_labels_per_image": 3, "residual": 4, "cosine": 3, "co_occurrence": 3,
            "relative_error": 4, "*": 4}


def pseudo_labels(rs: RetrievalSet, rows: np.ndarray, k: int) -> np.ndarray:
    """Zero-shot pseudo-labels of ``rows``: their top-``k`` concepts (original embeddings)."""
    return zero_shot_pseudo_labels(rs.X_raw[rows], rs.general_text, k=k)


def fit_dictionary(rs: RetrievalSet, K: int, n_iter: int, batch_size=None, seed: int = 0,
                   labels: np.ndarray | None = None) -> SLiCS:
    """SLiCS on the training split (``n_iter=0``: S-SVD); ``labels`` default the true ones."""
    train = rs.rows("train")
    Y = rs.data.general[train] if labels is None else labels
    return SLiCS(n_atoms=int(K), n_iter=int(n_iter), batch_size=batch_size, random_state=seed).fit(rs.X[train], Y)


class ConceptSubsetModel:
    """SLiCS fitted on some of the concepts; a concept it skipped is searched unfiltered (as UF)."""

    def __init__(self, model: SLiCS, concepts):
        self.model = model
        self.index = {int(j): i for i, j in enumerate(concepts)}
        self.dictionary_ = model.dictionary_
        self.atom_concept_ = np.asarray(concepts, dtype=np.int64)[model.atom_concept_]   # original concept ids

    def project(self, X, concept):
        i = self.index.get(int(concept))
        return np.asarray(X, dtype=np.float64) if i is None else self.model.project(X, i)


def fit_unsupervised(rs: RetrievalSet, K: int, n_iter: int, batch_size, seed: int, pseudo: np.ndarray,
                     notes: list[str]):
    """U-SLiCS on the pseudo-labels; a concept that no training image is pseudo-labelled with is skipped.

    Such a concept has nothing to learn its atoms from (SLiCS refuses it), so the model is fitted on
    the other concepts and queries on it are searched unfiltered; a warning says so and the sentence
    is appended to ``notes`` (once).
    """
    empty = np.flatnonzero(~pseudo.any(axis=0))
    if not empty.size:
        return fit_dictionary(rs, K, n_iter, batch_size, seed, labels=pseudo)
    note = (f"U-SLiCS on {rs.dataset}: no training image is pseudo-labelled with "
            f"{', '.join(rs.data.general_names[j] for j in empty)}; skipped (those queries are searched "
            "unfiltered, as UF).")
    if note not in notes:
        warnings.warn(note, UserWarning, stacklevel=2)
        notes.append(note)
    kept = np.flatnonzero(pseudo.any(axis=0))
    return ConceptSubsetModel(fit_dictionary(rs, K, n_iter, batch_size, seed, labels=pseudo[:, kept]), kept)


def _projector(model: SLiCS):
    return lambda X, j: model.project(X, j)


def evaluate(rs: RetrievalSet, queries: np.ndarray, pool: np.ndarray, *, model: SLiCS | None = None,
             splice: tuple | None = None, project_pool: bool = False, k: int = 20) -> pd.DataFrame:
    """AP@k pairs of one method: SLiCS ``model`` (filtered), ``splice=(SpLiCE, codes, filtered)``
    or neither (UF). ``codes`` holds the SpLiCE codes of every row of ``rs.X`` used."""
    d = rs.data
    common = dict(query_sub=d.sub[queries], pool_sub=d.sub[pool], sub_parent=d.sub_parent, k=k)
    Yq, Yp = d.general[queries], d.general[pool]
    if model is not None:
        proj = _projector(model)
        return filtered_retrieval(rs.X[queries], rs.X[pool], Yq, Yp, transform_query=proj,
                                  transform_pool=proj if project_pool else None, **common)
    if splice is not None:
        sp, codes, filtered = splice
        P = sp.reconstruct(codes[pool])
        if filtered:
            return filtered_retrieval(codes[queries].toarray(), P, Yq, Yp,
                                      transform_query=lambda W, j: sp.reconstruct(W, j), **common)
        return filtered_retrieval(sp.reconstruct(codes[queries]), P, Yq, Yp, **common)
    return filtered_retrieval(rs.X[queries], rs.X[pool], Yq, Yp, **common)


def seeded_subset(rows: np.ndarray, size: int | None, rng: np.random.Generator) -> np.ndarray:
    """``size`` of ``rows`` drawn without replacement (sorted), or all of them when ``size`` is null or larger."""
    if size is None or int(size) >= rows.size:
        return np.sort(rows)
    return np.sort(rng.choice(rows, size=int(size), replace=False))


def splice_codes(rs: RetrievalSet, rows: np.ndarray, lam: float, *, chunk: int = 2000,
                 progress: bool = True) -> tuple[SpLiCE, sparse.csr_matrix]:
    """Fit SpLiCE on the vocabulary (grouped by concept) and decompose ``rows``: the codes as a
    sparse (n, V) matrix over every row of ``rs.X``, empty outside ``rows``.

    Rows are decomposed ``chunk`` at a time, so that only one dense (chunk, V) block exists.
    """
    from tqdm import tqdm

    sp = SpLiCE(lam=lam).fit(rs.vocab, rs.general_text)
    rows = np.asarray(rows)
    blocks = []
    for start in tqdm(range(0, rows.size, chunk), desc=f"SpLiCE {rs.dataset}", unit="chunk",
                      disable=None if progress else True):   # None: off without a terminal (notebooks)
        block = sparse.csr_matrix(sp.transform(rs.X[rows[start:start + chunk]]))
        blocks.append(block)
    W = sparse.vstack(blocks, format="coo") if blocks else sparse.coo_matrix((0, sp.vocab_.shape[0]))
    codes = sparse.csr_matrix((W.data, (rows[W.row], W.col)), shape=(rs.X.shape[0], sp.vocab_.shape[0]))
    return sp, codes


def choose_k(rs: RetrievalSet, grid, n_iter: int, batch_size, pool: np.ndarray, k: int = 20,
             seed: int = 0) -> tuple[pd.DataFrame, dict]:
    """Validation mAP@k (general and sub-label) of S-SLiCS for every ``K`` of ``grid`` (Fig. 6),
    and the fitted models by ``K``."""
    from tqdm import tqdm

    rows, models = [], {}
    for K in tqdm(list(grid), desc=f"K grid ({rs.dataset})", disable=None):
        model = models[int(K)] = fit_dictionary(rs, K, n_iter, batch_size, seed)
        summary = mean_average_precision(evaluate(rs, rs.rows("val"), pool, model=model, k=k))
        rows.append({"dataset": rs.dataset, "K": int(K), "map_general": summary["map_general"],
                     "map_sub": summary["map_sub"]})
    return pd.DataFrame(rows), models


def best_k(grid_table: pd.DataFrame) -> int:
    """The ``K`` with the best validation sub-label mAP (ties: the smaller ``K``)."""
    t = grid_table.sort_values(["map_sub", "K"], ascending=[False, True], kind="stable")
    return int(t["K"].iloc[0])


def word_captions(model: SLiCS, rs: RetrievalSet, words, n_words: int = 5) -> dict[str, list[str]]:
    """Table 1: per concept, the ``n_words`` words with the smallest non-negative
    reconstruction error from that concept's atoms (words normalised, centred by their
    mean, renormalised; ties by word order)."""
    from ..core.sparse_coding import center_and_normalise

    V, _ = center_and_normalise(normalise_rows(rs.vocab.astype(np.float64)))
    return caption_words(model.dictionary_, model.atom_concept_, V, words, rs.data.general_names, n_words)


def caption_words(dictionary, atom_concept, V, words, concept_names, n_words: int = 5) -> dict[str, list[str]]:
    """The ``n_words`` rows of ``V`` best reconstructed (NNLS) by each concept's atoms."""
    out = {}
    for j, name in enumerate(concept_names):
        Dj = dictionary[atom_concept == j]
        if not Dj.shape[0]:                   # a concept U-SLiCS skipped (no pseudo-labels): no caption
            out[name] = []
            continue
        R = V - nnls_batch(Dj, V) @ Dj
        err = np.einsum("ij,ij->i", R, R)
        order = np.argsort(err, kind="stable")[:n_words]
        out[name] = [words[i] for i in order]
    return out


def summarise(pairs: pd.DataFrame, dataset: str, backbone: str, method: str, seed: int | None = None) -> dict:
    summary = mean_average_precision(pairs)
    return {"dataset": dataset, "backbone": backbone, "method": method, "seed": seed, **summary}


def table2(runs: pd.DataFrame) -> pd.DataFrame:
    """Table 2: mean (and std over seeds) mAP@20 per dataset, backbone and method."""
    g = runs.groupby(["dataset", "backbone", "method"], sort=False)
    out = g[["map_general", "map_sub"]].mean()
    std = g[["map_general", "map_sub"]].std(ddof=0).add_suffix("_std").where(g.size() > 1)   # NaN: one run
    out = out.join(std).join(g.size().rename("n_runs")).reset_index()
    return out


def differences(table: pd.DataFrame, reference: dict) -> pd.DataFrame:
    """The paper's stated differences (S-SLiCS - S-SVD, S-SLiCS - UF, U-SLiCS - UF) beside the run's."""
    rows = []
    case_order = reference["cases"]
    for name, (a, b) in {"S-SLiCS - S-SVD": ("S-SLiCS", "S-SVD"), "S-SLiCS - UF": ("S-SLiCS", "UF"),
                         "U-SLiCS - UF": ("U-SLiCS", "UF")}.items():
        for kind in ("general", "sub"):
            paper = reference["differences"].get(name, {}).get(kind, [None] * len(case_order))
            for case, value in zip(case_order, paper):
                rows.append({"difference": name, "retrieval": kind, "case": case,
                             "paper": np.nan if value is None else float(value), "run": np.nan})
    out = pd.DataFrame(rows)
    for (dataset, backbone), t in table.groupby(["dataset", "backbone"], sort=False):
        m = t.set_index("method")
        for name, (a, b) in {"S-SLiCS - S-SVD": ("S-SLiCS", "S-SVD"), "S-SLiCS - UF": ("S-SLiCS", "UF"),
                             "U-SLiCS - UF": ("U-SLiCS", "UF")}.items():
            for kind in ("general", "sub"):
                if a in m.index and b in m.index:
                    value = m.loc[a, f"map_{kind}"] - m.loc[b, f"map_{kind}"]
                    case = f"{DATASET_LABEL[dataset]}/{backbone}"
                    mask = (out["difference"] == name) & (out["retrieval"] == kind) & (out["case"] == case)
                    if not mask.any():
                        out = pd.concat([out, pd.DataFrame([{"difference": name, "retrieval": kind, "case": case,
                                                             "paper": np.nan, "run": value}])],
                                        ignore_index=True)
                    else:
                        out.loc[mask, "run"] = value
    return out


# --- one dataset, end to end -------------------------------------------------------------

def full_disentanglement(model: SLiCS, rs: RetrievalSet, queries: np.ndarray):
    """Query representation and transform for full disentanglement (Fig. 7): the concept-``j``
    component of the NNLS fit on *all* the query's labelled concepts (``SLiCS.components``)."""
    comps = model.components(rs.X[queries], rs.data.general[queries])
    index = np.arange(queries.size, dtype=np.float64)[:, None]
    return index, (lambda idx, j: comps[idx[:, 0].astype(np.int64), j])


def run_dataset(dataset: str, params: dict) -> dict:
    """Everything of Table 2, Fig. 6 and Table 1 for one dataset; returns tables and models."""
    from tqdm import tqdm

    cfg = params["slics_clip"]
    k, n_iter = int(cfg["k"]), int(cfg["n_iter"])
    batch = cfg["batch_size"][dataset]
    seeds = [int(s) for s in cfg["seeds"][dataset]]
    rs = load_set(dataset, params)
    backbone = rs.backbone
    pool, queries = rs.rows("pool"), rs.rows("query")

    grid, grid_models = choose_k(rs, cfg["k_grid"], n_iter, batch, pool, k=k, seed=seeds[0])
    K = best_k(grid)
    runs, ablation = [], []
    models = {"S-SVD": fit_dictionary(rs, K, 0)}
    runs.append(summarise(evaluate(rs, queries, pool, model=models["S-SVD"], k=k), dataset, backbone, "S-SVD"))
    pseudo = pseudo_labels(rs, rs.rows("train"), int(cfg["n_pseudo_labels"]))
    notes: list[str] = []
    for seed in tqdm(seeds, desc=f"S-SLiCS / U-SLiCS seeds ({dataset})", disable=None):
        for method, labels in (("S-SLiCS", None), ("U-SLiCS", pseudo)):
            model = fit_dictionary(rs, K, n_iter, batch, seed) if labels is None else \
                fit_unsupervised(rs, K, n_iter, batch, seed, labels, notes)
            models.setdefault(method, model)
            runs.append(summarise(evaluate(rs, queries, pool, model=model, k=k), dataset, backbone, method, seed))
    runs.append(summarise(evaluate(rs, queries, pool, k=k), dataset, backbone, "UF"))

    # Fig. 7 and the candidate-projection ablation (S-SLiCS, first seed)
    s = models["S-SLiCS"]
    index, full = full_disentanglement(s, rs, queries)
    d = rs.data
    common = dict(query_sub=d.sub[queries], pool_sub=d.sub[pool], sub_parent=d.sub_parent, k=k)
    variants = {
        "partial (query projected)": runs[1],
        "full disentanglement": summarise(filtered_retrieval(index, rs.X[pool], d.general[queries], d.general[pool],
                                                             transform_query=full, **common),
                                          dataset, backbone, "S-SLiCS full"),
        "query and candidates projected": summarise(evaluate(rs, queries, pool, model=s, project_pool=True, k=k),
                                                    dataset, backbone, "S-SLiCS both projected"),
    }
    for name, summary in variants.items():
        ablation.append({"dataset": dataset, "backbone": backbone, "variant": name,
                         "map_general": summary["map_general"], "map_sub": summary["map_sub"]})

    # SpLiCE and F-SpLiCE (on seeded subsamples when n_queries / n_pool say so), with UF and S-SLiCS beside them
    sp_cfg = cfg["splice"]
    rng = np.random.default_rng(int(params["seed"]))
    sq, spool = seeded_subset(queries, sp_cfg["n_queries"], rng), seeded_subset(pool, sp_cfg["n_pool"], rng)
    sp, codes = splice_codes(rs, np.concatenate([sq, spool]), float(sp_cfg["lam"]))
    splice_rows = [summarise(evaluate(rs, sq, spool, k=k), dataset, backbone, "UF"),
                   summarise(evaluate(rs, sq, spool, model=s, k=k), dataset, backbone, "S-SLiCS"),
                   summarise(evaluate(rs, sq, spool, splice=(sp, codes, True), k=k), dataset, backbone, "F-SpLiCE"),
                   summarise(evaluate(rs, sq, spool, splice=(sp, codes, False), k=k), dataset, backbone, "SpLiCE")]
    if sq.size == queries.size and spool.size == pool.size:    # Table 2's own protocol: SpLiCE joins it
        runs.extend(splice_rows[2:])
    nnz = codes[np.concatenate([sq, spool])].getnnz(axis=1)
    return {"set": rs, "K": K, "grid": grid, "runs": pd.DataFrame(runs), "ablation": pd.DataFrame(ablation),
            "splice": pd.DataFrame(splice_rows), "splice_mean_nonzeros": float(nnz.mean()),
            "splice_sizes": {"queries": (sq.size, queries.size), "pool": (spool.size, pool.size)}, "models": models,
            "pseudo_labels": pseudo, "grid_models": grid_models, "notes": notes}


# --- tables, metrics and figures for the notebook ----------------------------------------

def splice_protocol(results: dict) -> str:
    """Markdown: how many queries and candidates SpLiCE decomposed on each dataset."""
    lines = []
    for dataset, r in results.items():
        (nq, all_q), (npool, all_pool) = r["splice_sizes"]["queries"], r["splice_sizes"]["pool"]
        whole = nq == all_q and npool == all_pool
        lines.append(f"- {dataset}: {nq:,} of {all_q:,} queries against {npool:,} of {all_pool:,} candidates"
                     + (" (the whole protocol)." if whole else " (seeded subsamples: compare within this table)."))
    return "\n".join(lines)


def captions_table(results: dict, n_words: int) -> pd.DataFrame:
    """Table 1 for every dataset: supervised and unsupervised word captions side by side."""
    from ..embedding.embed import laion10k_words

    words = laion10k_words()
    rows = []
    for dataset, out in results.items():
        sup = word_captions(out["models"]["S-SLiCS"], out["set"], words, n_words)
        uns = word_captions(out["models"]["U-SLiCS"], out["set"], words, n_words)
        for concept in out["set"].data.general_names:
            rows.append({"dataset": dataset, "subspace": concept, "S-SLiCS caption": ", ".join(sup[concept]),
                         "U-SLiCS caption": ", ".join(uns[concept])})
    return pd.DataFrame(rows)


def metrics(table: pd.DataFrame, splice: pd.DataFrame, chosen_k: dict) -> dict:
    """``results/metrics/slics_clip.json``: every Table 2 number, by case and method."""
    out = {}
    for _, r in table.iterrows():
        case = f"{r['dataset']}/{r['backbone']}"
        entry = {"map_general": r["map_general"], "map_sub": r["map_sub"], "n_runs": int(r["n_runs"])}
        if r["n_runs"] > 1:
            entry.update(map_general_std=r["map_general_std"], map_sub_std=r["map_sub_std"])
        out.setdefault(case, {})[r["method"]] = entry
    for _, r in splice.iterrows():
        case = f"{r['dataset']}/{r['backbone']}"
        out[case].setdefault("splice_protocol", {})[r["method"]] = {"map_general": r["map_general"],
                                                                    "map_sub": r["map_sub"]}
    for dataset, K in chosen_k.items():
        for case in out:
            if case.startswith(dataset + "/"):
                out[case]["K"] = int(K)
    return out


def example_queries(rs: RetrievalSet, n_queries: int, seed: int) -> np.ndarray:
    """A seeded choice of queries with at least two general concepts (sorted rows)."""
    rng = np.random.default_rng(seed)
    queries = rs.rows("query")
    multi = queries[rs.data.general[queries].sum(axis=1) >= 2]
    return np.sort(rng.choice(multi, size=min(n_queries, multi.size), replace=False))


def qualitative(rs: RetrievalSet, model: SLiCS, n_queries: int, seed: int, k: int = 5) -> pd.DataFrame:
    """Fig. 8 in the demo: the labels of the top results, filtered (S-SLiCS) and unfiltered (UF)."""
    from ..core.retrieval import top_k

    chosen = example_queries(rs, n_queries, seed)
    pool = rs.rows("pool")
    d = rs.data

    def labels(i):
        parts = []
        for j in np.flatnonzero(d.general[i]):
            subs = [d.sub_names[s] for s in d.sub_labels_of(int(j)) if d.sub[i, s]]
            parts.append(f"{d.general_names[j]} ({'+'.join(subs)})" if subs else d.general_names[j])
        return ", ".join(parts)

    rows = []
    for q in chosen:
        uf = pool[top_k(rs.X[q:q + 1], rs.X[pool], k)[0]]
        rows.append({"query": d.image_ids[q], "query labels": labels(q), "filter": "UF (no filter)",
                     "top results (labels)": " | ".join(labels(i) for i in uf)})
        for j in np.flatnonzero(d.general[q]):
            top = pool[top_k(model.project(rs.X[q:q + 1], int(j)), rs.X[pool], k)[0]]
            rows.append({"query": d.image_ids[q], "query labels": labels(q), "filter": d.general_names[j],
                         "top results (labels)": " | ".join(labels(i) for i in top)})
    return pd.DataFrame(rows)


def describe(params: dict) -> str:
    """Markdown: where this run's embeddings come from."""
    if params["profile"] == "demo":
        return ("**Demo profile: the images are simulated from their real labels.** Each MIRFlickr25K / "
                "COCO image is a simulated embedding (the demo world of section 2, `demo_world` in "
                "`params.yaml`) built from the text embeddings of *its own annotation labels* (MIRFlickr25K: "
                "the 24 potential labels; COCO: the 80 categories) by the real demo text tower "
                "(all-MiniLM-L6-v2). Labels, hierarchy and splits are the real ones. The image mean that is "
                "removed is the mean of the training split (SpLiCE's means exist only for real CLIP).")
    return (f"**Full profile**: the real images embedded by open_clip `{params['embed']['backbone']}` "
            "(OpenAI weights); SpLiCE's precomputed image mean is removed.")


def pseudo_label_quality(rs: RetrievalSet, pseudo: np.ndarray) -> pd.DataFrame:
    """Per concept: how the zero-shot pseudo-labels of the training images match the true labels."""
    Y = rs.data.general[rs.rows("train")]
    rows = []
    for j, name in enumerate(rs.data.general_names):
        tp = int(np.sum(pseudo[:, j] & Y[:, j]))
        rows.append({"dataset": rs.dataset, "concept": name, "true": int(Y[:, j].sum()),
                     "pseudo": int(pseudo[:, j].sum()), "precision": tp / max(int(pseudo[:, j].sum()), 1),
                     "recall": tp / max(int(Y[:, j].sum()), 1)})
    return pd.DataFrame(rows)


