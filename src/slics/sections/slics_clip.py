"""Sections 3-4 of the SLiCS paper: concept subspaces of CLIP embeddings and filtered retrieval.

The notebook ``03_slics_clip`` calls these functions: load a retrieval set
(:func:`slics.embedding.retrieval_set.load_set`: embeddings of ``embed_<dataset>``, labels,
split, preprocessed as the paper), choose ``K`` on the validation queries
(:mod:`slics.sections.retrieval_protocol`), run the methods of Table 2 through
:mod:`slics.evaluation` (S-SVD, S-SLiCS, U-SLiCS with zero-shot pseudo-labels, UF, SpLiCE,
F-SpLiCE; the methods are described in :mod:`slics.evaluation.methods`), and caption the
subspaces with words. Its figures are in :mod:`slics.sections.retrieval_figures`.
"""

from __future__ import annotations

import warnings

import numpy as np
import pandas as pd

from .. import captions
from ..core.dictionary import SLiCS
from ..embedding.registry import get_spec
from ..embedding.retrieval_set import RetrievalSet, load_set
from ..evaluation import SLiCSMethod, SpLiCEMethod, Unfiltered, fit_method, retrieval_pairs, summarise
from .retrieval_protocol import DATASET_LABEL, DECIMALS, best_k, choose_k, seeded_subset



def word_captions(model: SLiCS, rs: RetrievalSet, words, n_words: int = 5) -> dict[str, list[str]]:
    """Table 1: per concept, the ``n_words`` words with the smallest non-negative
    reconstruction error from that concept's atoms (words normalised, centred by their
    mean, renormalised; ties by word order): :func:`slics.captions.word_captions`."""
    return captions.word_captions(model, rs.vocab.astype(np.float64), words, n_words=n_words,
                                  concept_names=rs.data.general_names)


def caption_words(dictionary, atom_concept, V, words, concept_names, n_words: int = 5) -> dict[str, list[str]]:
    """The ``n_words`` rows of ``V`` (already centred) best reconstructed (NNLS) by each concept's atoms."""
    return captions.word_captions(dictionary, V, words, n_words=n_words, concept_names=concept_names,
                                  atom_concept=atom_concept, centre=False)


def paper_case(backbone: str) -> str:
    """The paper's name of a backbone in its cases ("ViT" in "MIR/ViT"), else the table's name."""
    from ..embedding.registry import backbone_names

    spec = next((get_spec(n) for n in backbone_names() if backbone in (n, get_spec(n).display)), None)
    return spec.paper_case or spec.display if spec is not None else backbone


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
                    case = f"{DATASET_LABEL[dataset]}/{paper_case(backbone)}"
                    mask = (out["difference"] == name) & (out["retrieval"] == kind) & (out["case"] == case)
                    if not mask.any():
                        out = pd.concat([out, pd.DataFrame([{"difference": name, "retrieval": kind, "case": case,
                                                             "paper": np.nan, "run": value}])],
                                        ignore_index=True)
                    else:
                        out.loc[mask, "run"] = value
    return out


# --- one dataset, end to end -------------------------------------------------------------

def table2_backbones(params: dict) -> list[str]:
    """Table 2's backbones in this profile (``slics_clip.backbones``), ``embed.backbone`` first: the
    embed stages made its files; stage 03 encodes the others (:func:`backbone_embeddings`)."""
    primary = params["embed"]["backbone"]
    return [primary] + [b for b in params["slics_clip"]["backbones"][params["profile"]] if b != primary]


def run_dataset(dataset: str, params: dict, backbone: str | None = None) -> dict:
    """Everything of Table 2, Fig. 6 and Table 1 for one dataset and backbone (default
    ``embed.backbone``); returns tables and models. The fits' warnings (a concept with fewer
    training rows than atoms, a concept without pseudo-labels) are returned as ``notes``, which the
    notebook shows, rather than written to its stderr."""
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always", UserWarning)
        out = _run_dataset(dataset, params, backbone)
    for w in caught:
        if issubclass(w.category, UserWarning) and str(w.message) not in out["notes"]:
            out["notes"].append(f"{dataset} / {out['set'].backbone}: {w.message}")
        elif not issubclass(w.category, UserWarning):
            warnings.warn_explicit(w.message, w.category, w.filename, w.lineno)
    return out


def _run_dataset(dataset: str, params: dict, backbone: str | None) -> dict:
    from tqdm import tqdm

    cfg = params["slics_clip"]
    k, n_iter = int(cfg["k"]), int(cfg["n_iter"])
    batch = cfg["batch_size"][dataset]
    seeds = [int(s) for s in cfg["seeds"][dataset]]
    if backbone not in (None, params["embed"]["backbone"]):
        from ..embedding.embed_multilabel import backbone_embeddings

        backbone_embeddings(dataset, params, backbone)
    rs = load_set(dataset, params, backbone)
    backbone = rs.backbone
    pool, queries = rs.rows("pool"), rs.rows("query")

    def run(fitted, q=queries, p=pool, seed=None, name=None):
        return summarise(retrieval_pairs(rs, fitted, q, p, k), dataset, backbone, name or fitted.name, seed)

    grid, grid_models = choose_k(rs, cfg["k_grid"], n_iter, batch, pool, k=k, seed=seeds[0])
    K = best_k(grid)
    runs, ablation = [], []
    fitted = {"S-SVD": SLiCSMethod(K, 0).fit(rs)}
    runs.append(run(fitted["S-SVD"]))
    n_pseudo = int(cfg["n_pseudo_labels"])
    pseudo = SLiCSMethod(K, labels="pseudo", n_pseudo_labels=n_pseudo).training_labels(rs)
    notes: list[str] = []
    for seed in tqdm(seeds, desc=f"S-SLiCS / U-SLiCS seeds ({dataset})", disable=None):
        for method in (SLiCSMethod(K, n_iter, batch, seed),
                       SLiCSMethod(K, n_iter, batch, seed, labels="pseudo", n_pseudo_labels=n_pseudo)):
            f = method.fit(rs)
            fitted.setdefault(f.name, f)
            notes.extend(n for n in f.notes if n not in notes)
            runs.append(run(f, seed=seed))
    uf = Unfiltered().fit(rs)
    uf_run = run(uf)
    runs.append(uf_run)

    # Fig. 7 and the candidate-projection ablation (S-SLiCS, first seed)
    s = fitted["S-SLiCS"].model
    variants = {
        "partial (query projected)": runs[1],
        "full disentanglement": run(SLiCSMethod(K, model=s, query="full").fit(rs), name="S-SLiCS full"),
        "query and candidates projected": run(SLiCSMethod(K, model=s, project_pool=True).fit(rs),
                                              name="S-SLiCS both projected"),
    }
    for name, summary in variants.items():
        ablation.append({"dataset": dataset, "backbone": backbone, "variant": name,
                         "map_general": summary["map_general"], "map_sub": summary["map_sub"]})

    # SpLiCE and F-SpLiCE (on seeded subsamples when n_queries / n_pool say so), with UF and S-SLiCS beside them
    sp_cfg = cfg["splice"]
    rng = np.random.default_rng(int(params["seed"]))
    sq, spool = seeded_subset(queries, sp_cfg["n_queries"], rng), seeded_subset(pool, sp_cfg["n_pool"], rng)
    cache: dict = {}
    lam = float(sp_cfg["lam"])
    f_splice, splice = (fit_method(rs, SpLiCEMethod(lam, filtered), cache=cache) for filtered in (True, False))
    # Table 2's own rows (both are sorted): SpLiCE joins its protocol, and UF and S-SLiCS (first
    # seed) were scored on them above, so their rows are reused rather than scored again
    own_rows = sq.size == queries.size and spool.size == pool.size
    scored = {"UF": uf_run, "S-SLiCS": runs[1]} if own_rows else {}
    splice_rows = [{**scored[f.name], "seed": None} if f.name in scored else run(f, sq, spool)
                   for f in (uf, fitted["S-SLiCS"], f_splice, splice)]
    if own_rows:
        runs.extend(splice_rows[2:])
    nnz = splice.encode(np.concatenate([sq, spool])).getnnz(axis=1)
    models = {name: f.model for name, f in fitted.items()}
    return {"set": rs, "K": K, "grid": grid, "runs": pd.DataFrame(runs), "ablation": pd.DataFrame(ablation),
            "fitted": {"UF": uf, **fitted, "F-SpLiCE": f_splice, "SpLiCE": splice},
            "splice": pd.DataFrame(splice_rows), "splice_mean_nonzeros": float(nnz.mean()),
            "splice_sizes": {"queries": (sq.size, queries.size), "pool": (spool.size, pool.size)}, "models": models,
            "pseudo_labels": pseudo, "grid_models": {K_: f.model for K_, f in grid_models.items()}, "notes": notes}


# --- tables, metrics and figures for the notebook ----------------------------------------

QUALITATIVE = ("UF", "S-SLiCS", "U-SLiCS", "F-SpLiCE")     # the methods of the paper's Fig. 8, in its order

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


def order_cases(frame: pd.DataFrame, params: dict) -> pd.DataFrame:
    """Rows by dataset (``slics_clip.datasets``), then backbone in ``slics_clip.backbones`` order."""
    datasets, backbones = params["slics_clip"]["datasets"], params["slics_clip"]["backbones"][params["profile"]]
    names = {get_spec(b).display: i for i, b in enumerate(backbones)}
    key = frame["dataset"].map(datasets.index) * len(names) + frame["backbone"].map(names)
    return frame.iloc[np.argsort(key.to_numpy(), kind="stable")].reset_index(drop=True)


PAPER_CASE_OF_STATED = "ViT"   # 0.728 + 0.167 = 0.895 and 0.791 + 0.138 = 0.929: the stated values are ViT-B/32's


def stated_rows(table: pd.DataFrame) -> pd.DataFrame:
    """The rows of one backbone of a Table 2 to set beside the paper's stated values: ViT-B/32 where
    the run has it, else the first backbone listed (a table of one backbone is returned as it is)."""
    if "backbone" not in table or table["backbone"].nunique() <= 1:
        return table
    vit = [b for b in dict.fromkeys(table["backbone"]) if paper_case(b) == PAPER_CASE_OF_STATED]
    return table[table["backbone"] == (vit or list(dict.fromkeys(table["backbone"])))[0]]


def with_paper_values(table: pd.DataFrame, reference: dict) -> pd.DataFrame:
    """Table 2 with ``paper_vit_map_general``: the general mAP@20 the paper's prose states for ViT-B/32
    (UF-CLIP and the best S-SLiCS, per dataset) beside every row of that dataset and method."""
    stated = {"UF": reference["uf_clip_general"], "S-SLiCS": reference["best_s_slics_general"]}
    values = [stated.get(m, {}).get(d, np.nan) for d, m in zip(table["dataset"], table["method"])]
    return table.assign(paper_vit_map_general=np.asarray(values, dtype=float))


def metrics(table: pd.DataFrame, splice: pd.DataFrame, chosen_k: dict) -> dict:
    """``results/metrics/slics_clip.json``: every Table 2 number, by case (``dataset/backbone``) and method;
    ``chosen_k`` maps each case to its K."""
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
    for case, K in chosen_k.items():
        out[case]["K"] = int(K)
    return out


def describe(params: dict) -> str:
    """Markdown: where this run's embeddings come from."""
    if params["profile"] == "demo":
        return ("**Demo profile: the images are simulated from their real labels.** Each MIRFlickr25K / "
                "COCO image is a scene of the demo world (section 2, `demo_world` in `params.yaml`) with "
                "*its own annotation labels* (MIRFlickr25K: the 24 potential labels; COCO: the 80 "
                "categories), rendered in the space of the real demo text tower (all-MiniLM-L6-v2) from "
                "each label's *descriptor words*: rarer LAION words near the label's name, disjoint from "
                "the LAION-10k vocabulary that SpLiCE and the captions read, from the concept names and "
                "from the prompts (`tests/test_demo_world.py` checks it). Labels, hierarchy and splits are "
                "the real ones. The image mean that is removed is the mean of the training split "
                "(SpLiCE's means exist only for real CLIP).")
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


