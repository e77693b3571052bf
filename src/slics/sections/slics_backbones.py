"""Sections 4.4-4.5 of the SLiCS paper: SLiCS beyond CLIP, on TiTok-L-32 tokens and DINOv2 embeddings.

The notebooks ``05_slics_titok`` (Table 3) and ``06_slics_dino`` (Table 4) call these
functions with their section of ``params.yaml``, whose ``backbone`` names a registry entry
per profile (:mod:`slics.embedding.registry`). The protocol is the one of the CLIP sections
(:mod:`slics.sections.retrieval_protocol`: splits, the choice of ``K`` on the validation
queries, label lists; :mod:`slics.evaluation`: S-SVD and S-SLiCS dictionaries,
concept-filtered retrieval, mAP@20); only the embeddings and their preprocessing differ, as
the paper's section 4.1 says:

* **TiTok**: 32 tokens of 12 numbers, each token L2-normalised, concatenated (384
  numbers); no mean is removed (there is no text tower). Table 3 also scores the
  *quantised pool*: each candidate token replaced by its nearest unit codeword
  (:mod:`slics.core.pq`), the query component kept as it is; the score of a query
  component ``z`` and a quantised candidate ``x_hat`` is ``<z, x_hat>``, computed through a
  ``32 x K`` look-up table per query. ``x_hat`` has the constant norm ``sqrt(32)``, so this
  ranks like the cosine that :func:`slics.core.retrieval.filtered_retrieval` uses on the
  dequantised vectors; :func:`lut_agreement` checks that the look-up-table ranking is the
  same on a sample of queries.
* **DINOv2**: the 768-d CLS embedding, normalised, no mean removed; supervised SLiCS only.

Demo profile: the demo world's simulated image vectors of each dataset (384-d, stage
``embed_<dataset>``) stand in for both backbones, read as 32 tokens x 12 numbers for
TiTok (a codebook learned by seeded k-means on the training tokens) and used whole for
DINO. This exercises the protocol and the quantised pool; it is neither TiTok nor DINO.
Full profile: the image embeddings of the registry's encoders (``titok-l32``,
``dinov2-vitb14``) cached under ``data/embeddings/<backbone>/<dataset>/``
(:func:`slics.embedding.retrieval_set.encoded_images`).
"""

from __future__ import annotations

import numpy as np
import pandas as pd

from ..core.pq import QuantisedPool, TokenQuantiser, operation_counts, storage
from ..core.retrieval import top_k
from ..embedding.registry import embeddings_source, get_spec
from ..embedding.retrieval_set import RetrievalSet, load_set
from ..evaluation import Quantised, QuantisedCandidates, SLiCSMethod, Unfiltered, retrieval_pairs, summarise, table2
from .retrieval_protocol import DATASET_LABEL, DECIMALS as RETRIEVAL_DECIMALS, best_k, choose_k

POOLS = ("dense", "quantised")
QUALITATIVE = ("UF", "S-SVD", "S-SLiCS")     # the label lists: the methods these sections fit (no text tower)
# Candidate pools of the paper's splits, derived here (not stated in the paper): images with a general
# label minus train, validation and queries. MIRFlickr25K: 24,581 - 3,500; COCO train2017: the
# 117,266 images with an annotation - 21,500.
PAPER_POOLS = {"mirflickr25k": 21_081, "coco": 95_766}
DECIMALS = {**RETRIEVAL_DECIMALS, "agreement": 4, "MiB": 2, "ratio": 1, "inertia": 4}


def section_backbone(params: dict, section: str) -> str:
    """The registry backbone of ``section`` (``slics_titok`` or ``slics_dino``) in this profile."""
    return params[section]["backbone"][params["profile"]]


def codebook(rs: RetrievalSet, params: dict, section: str) -> tuple[np.ndarray, dict]:
    """The unit codebook of the quantised pool and a description of it.

    A backbone whose encoder has its own quantiser (TiTok-L-32: 4,096 codewords) saved it
    beside its embeddings; otherwise (the demo) seeded k-means on the training tokens learns
    ``codebook_size`` codewords.
    """
    cfg = params[section]
    backbone = section_backbone(params, section)
    spec = get_spec(backbone)
    if spec.images == "encoder":
        from ..embedding.embed import embeddings_dir
        from ..utils.io import load_npy

        C = load_npy(embeddings_dir(embeddings_source(backbone), rs.dataset) / "codebook.npy")
        return C, {"source": f"{spec.title}: the tokenizer's own codebook", "codebook_size": int(C.shape[0])}
    q = TokenQuantiser(n_tokens=spec.n_tokens, codebook_size=int(cfg["codebook_size"]),
                       max_iter=int(cfg["kmeans_max_iter"]), random_state=int(params["seed"]))
    q.fit(rs.X[rs.rows("train")])
    return q.codebook_, {"source": "seeded k-means on the training tokens, centres normalised",
                         "codebook_size": int(q.codebook_.shape[0]), "inertia": q.inertia_}


def lut_agreement(rs, model, qpool: QuantisedPool, Xhat: np.ndarray, n_queries: int, seed: int, k: int = 20,
                  atol: float = 1e-4) -> dict:
    """Whether ranking through the look-up table gives the dense top ``k`` of the quantised pool.

    A sample of ``n_queries`` queries, unfiltered and with their S-SLiCS components for every
    concept they carry: the top ``k`` by look-up-table score (:meth:`QuantisedPool.top_k`)
    against the top ``k`` by cosine on the dequantised vectors
    (:func:`slics.core.retrieval.top_k`). The two sum the same products in a different order
    (float64), so candidates whose scores differ by rounding alone may swap places; a pair
    *agrees* when the two lists have the same dense scores rank by rank within ``atol``.
    Also returns the largest difference between look-up-table and dense inner products.
    """
    rng = np.random.default_rng(seed)
    queries = rs.rows("query")
    sample = np.sort(rng.choice(queries, size=min(int(n_queries), queries.size), replace=False))
    blocks = [rs.X[sample]]
    for j in range(rs.data.general.shape[1]):
        rows = sample[rs.data.general[sample, j]]
        if rows.size:
            Z = model.project(rs.X[rows], j)
            blocks.append(Z[np.linalg.norm(Z, axis=1) > 0])
    Z = np.concatenate(blocks)
    dense = Z @ Xhat.T
    lut = qpool.scores(Z)
    a, b = qpool.top_k(Z, k), top_k(Z, Xhat, k)
    gap = np.abs(np.take_along_axis(dense, a, 1) - np.take_along_axis(dense, b, 1)).max(axis=1)
    return {"pairs": int(Z.shape[0]), "agreement": float(np.mean(gap <= atol)),
            "max_score_difference": float(np.abs(lut - dense).max())}


def run_dataset(dataset: str, params: dict, section: str) -> dict:
    """Table 3 (``slics_titok``) or Table 4 (``slics_dino``) for one dataset: K on validation,
    S-SVD, S-SLiCS, UF.

    A backbone of tokens (the registry's ``quantisable``) adds every method on the quantised
    pool, the look-up-table check and the codebook.
    """
    from tqdm import tqdm

    cfg = params[section]
    k, n_iter = int(cfg["k"]), int(cfg["n_iter"])
    batch = cfg["batch_size"][dataset]
    seeds = [int(s) for s in cfg["seeds"][dataset]]
    backbone = section_backbone(params, section)
    spec = get_spec(backbone)
    rs = load_set(dataset, params, backbone)
    pool, queries = rs.rows("pool"), rs.rows("query")
    grid, grid_fitted = choose_k(rs, cfg["k_grid"], n_iter, batch, pool, k=k, seed=seeds[0])
    K = best_k(grid)

    out = {"set": rs, "K": K, "grid": grid}
    candidates = None
    if spec.quantisable:
        C, info = codebook(rs, params, section)
        candidates = QuantisedCandidates(C, spec.n_tokens)
        out.update(codebook=info, qpool=candidates.pool(rs, pool), Xhat=candidates.vectors(rs, pool))

    # S-SLiCS per seed, fitted once and scored on every pool; the grid's model at K is the first
    # seed's (the same call), reused
    by_seed = {seeds[0]: grid_fitted[K]}
    for seed in tqdm(seeds[1:], desc=f"S-SLiCS seeds ({dataset})", disable=None):
        by_seed[seed] = SLiCSMethod(K, n_iter, batch, seed).fit(rs)
    ssvd, uf = SLiCSMethod(K, 0).fit(rs), Unfiltered().fit(rs)
    runs = []
    for pool_kind in POOLS if candidates is not None else POOLS[:1]:
        def scored(fitted):
            return fitted if pool_kind == "dense" else Quantised(fitted, candidates).fit(rs)

        def run(fitted, name, seed=None):
            pairs = retrieval_pairs(rs, scored(fitted), queries, pool, k)
            return {**summarise(pairs, dataset, rs.backbone, name, seed), "pool": pool_kind}

        runs.append(run(ssvd, "S-SVD"))
        runs.extend(run(fitted, "S-SLiCS", seed) for seed, fitted in by_seed.items())
        runs.append(run(uf, "UF"))
    out.update(models={"S-SVD": ssvd.model, "S-SLiCS": by_seed[seeds[0]].model}, runs=pd.DataFrame(runs),
               fitted={"UF": uf, "S-SVD": ssvd, "S-SLiCS": by_seed[seeds[0]]})    # dense, for the label lists
    if candidates is not None:
        out["lut"] = lut_agreement(rs, out["models"]["S-SLiCS"], out["qpool"], out["Xhat"],
                                   int(cfg["lut_check_queries"]), int(params["seed"]), k)
    return out


def results_table(runs: pd.DataFrame) -> pd.DataFrame:
    """Mean (and std over seeds) mAP@20 per dataset, pool and method, as :func:`slics.evaluation.table2`."""
    frames = []
    for pool_kind, part in runs.groupby("pool", sort=False):
        frames.append(table2(part).assign(pool=pool_kind))
    t = pd.concat(frames, ignore_index=True)
    return t[["dataset", "backbone", "pool", "method", "map_general", "map_sub", "map_general_std", "map_sub_std",
              "n_runs", *[c for c in ("map_general_minkr", "map_sub_minkr") if c in t]]]


def paper_layout(table: pd.DataFrame) -> pd.DataFrame:
    """The paper's layout: one row per (dataset, retrieval), one column per method (and pool, where
    there are several)."""
    rows = []
    several = table["pool"].nunique() > 1
    for dataset in dict.fromkeys(table["dataset"]):
        for retrieval in ("general", "sub"):
            row = {"dataset": DATASET_LABEL[dataset], "retrieval": retrieval}
            for _, r in table[table["dataset"] == dataset].iterrows():
                col = f"{r['method']} ({r['pool']})" if several else r["method"]
                row[col] = r[f"map_{retrieval}"]
            rows.append(row)
    return pd.DataFrame(rows)


def paper_comparison(table: pd.DataFrame, paper: dict) -> pd.DataFrame:
    """The values the paper's prose states beside this run's (dense pool), one row per statement
    (``paper`` is the section's entry of ``reference/report_values.yaml``)."""
    t = table[table["pool"] == "dense"].set_index(["dataset", "method"])
    rows = []

    def add(what, dataset, retrieval, value, run, sentence):
        rows.append({"statement": what, "dataset": DATASET_LABEL[dataset], "retrieval": retrieval,
                     "paper": np.nan if value is None else float(value), "run": float(run), "source": sentence})

    for dataset in dict.fromkeys(table["dataset"]):
        s, u, v = (t.loc[(dataset, m)] for m in ("S-SLiCS", "UF", "S-SVD"))
        add("S-SLiCS", dataset, "general", paper["s_slics_general"].get(dataset), s["map_general"],
            paper["s_slics_sentence"])
        if "s_slics_minus_uf" in paper:
            add("UF", dataset, "general", paper["uf_general"].get(dataset), u["map_general"], paper["uf_sentence"])
            for retrieval in ("general", "sub"):
                add("S-SLiCS - UF", dataset, retrieval, paper["s_slics_minus_uf"][retrieval].get(dataset),
                    s[f"map_{retrieval}"] - u[f"map_{retrieval}"], paper["s_slics_minus_uf_sentence"])
        else:
            add("UF", dataset, "general", (paper.get("uf_general") or {}).get(dataset), u["map_general"],
                paper["uf_sentence"])
        for retrieval in ("general", "sub"):
            add("S-SLiCS - S-SVD", dataset, retrieval, None, s[f"map_{retrieval}"] - v[f"map_{retrieval}"],
                paper.get("s_svd_sentence", ""))
    return pd.DataFrame(rows)


def s_svd_wins(table: pd.DataFrame) -> tuple[int, int]:
    """(cases where S-SVD beats S-SLiCS, cases) over datasets x {general, sub} on the dense pool."""
    t = table[table["pool"] == "dense"].set_index(["dataset", "method"])
    wins = cases = 0
    for dataset in dict.fromkeys(table["dataset"]):
        for retrieval in ("general", "sub"):
            cases += 1
            wins += int(t.loc[(dataset, "S-SVD"), f"map_{retrieval}"] > t.loc[(dataset, "S-SLiCS"), f"map_{retrieval}"])
    return wins, cases


def cost_table(results: dict, paper_sizes: dict, paper_pools: dict = PAPER_POOLS) -> pd.DataFrame:
    """Storage and arithmetic of the quantised pool against the dense pool, per dataset and at the paper's sizes.

    Per query vector: dense ``n * D`` multiply-adds; look-up table ``K * D`` multiply-adds plus
    ``n * T`` additions. Storage: ``n * T`` indices (``ceil(log2 K)`` bits, packed) against
    ``n * D`` float32 numbers.
    """
    rows = []
    cases = [(d, len(r["qpool"]), r["qpool"].n_tokens, r["qpool"].codebook.shape[1], r["qpool"].codebook.shape[0])
             for d, r in results.items()]
    cases += [(f"{d} (paper's sizes)", n, paper_sizes["n_tokens"], paper_sizes["token_dim"],
               paper_sizes["codebook_size"]) for d, n in paper_pools.items()]
    for name, n, T, d, K in cases:
        st, ops = storage(n, T, d, K), operation_counts(n, T, d, K)
        rows.append({"pool": name, "candidates": n, "codebook": K, "index_bits": st["index_bits"],
                     "dense_MiB": st["dense_bytes"] / 2**20, "indices_MiB": st["packed_index_bytes"] / 2**20,
                     "storage_ratio": st["dense_bytes"] / st["packed_index_bytes"],
                     "dense_madds_per_query": ops["dense_multiply_adds"],
                     "lut_ops_per_query": ops["lut_total"],
                     "ops_ratio": ops["dense_multiply_adds"] / ops["lut_total"]})
    return pd.DataFrame(rows)


def metrics(table: pd.DataFrame, results: dict) -> dict:
    """The metrics file: every table number by dataset, pool and method, the chosen K, TiTok's extras."""
    out = {}
    for _, r in table.iterrows():
        entry = {"map_general": r["map_general"], "map_sub": r["map_sub"], "n_runs": int(r["n_runs"])}
        if r["n_runs"] > 1:
            entry.update(map_general_std=r["map_general_std"], map_sub_std=r["map_sub_std"])
        out.setdefault(r["dataset"], {}).setdefault(r["pool"], {})[r["method"]] = entry
    for dataset, res in results.items():
        out[dataset]["K"] = int(res["K"])
        if "lut" in res:
            out[dataset]["lut_agreement"] = res["lut"]["agreement"]
            out[dataset]["codebook_size"] = res["codebook"]["codebook_size"]
    return out


SECTION_MODEL = {"slics_titok": "TiTok", "slics_dino": "DINOv2"}   # the paper's section names


def describe(params: dict, section: str) -> str:
    """Markdown: where this run's embeddings come from."""
    spec = get_spec(section_backbone(params, section))
    if params["profile"] == "demo":
        what = (f"read as {spec.n_tokens} tokens of {spec.dim // spec.n_tokens} numbers, each token normalised, "
                f"with a codebook of {params[section]['codebook_size']} unit codewords learned by seeded k-means "
                "on the training tokens" if spec.quantisable else "normalised")
        return (f"**Demo profile: this is not {SECTION_MODEL[section]}.** The images are "
                "the demo world's simulated MIRFlickr25K / COCO vectors (384-d, simulated from each image's "
                f"real labels by stage `embed_<dataset>`), {what}, with no mean removed. It exercises the "
                "protocol" + (" and the quantised pool" if spec.quantisable else "") + "; the numbers say "
                "nothing about the real backbone.")
    return (f"**Full profile**: the real images embedded by `{spec.name}` ({spec.title}), "
            "normalised as the paper, no mean removed.")
