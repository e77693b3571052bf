"""Sections 4.4-4.5 of the SLiCS paper: SLiCS beyond CLIP, on TiTok-L-32 tokens and DINOv2 embeddings.

The notebooks ``05_slics_titok`` (Table 3) and ``06_slics_dino`` (Table 4) call these
functions. The protocol is the one of the CLIP sections, reused from
:mod:`slics.sections.slics_clip` (splits, the choice of ``K`` on the validation queries,
S-SVD and S-SLiCS dictionaries, concept-filtered retrieval, mAP@20, label lists); only the
embeddings and their preprocessing differ, as the paper's section 4.1 says:

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
Full profile: the image embeddings of :mod:`slics.embedding.vision` (``titok-l32``,
``dinov2-vitb14``) cached under ``data/embeddings/<backbone>/<dataset>/``.
"""

from __future__ import annotations

import dataclasses

import numpy as np
import pandas as pd

from ..core.pq import QuantisedPool, TokenQuantiser, normalise_tokens, operation_counts, storage
from ..core.retrieval import top_k
from ..core.zero_shot import normalise_rows
from ..embedding.retrieval_set import RetrievalSet, load_set
from . import slics_clip

SECTIONS = {"titok": "slics_titok", "dino": "slics_dino"}
FULL_BACKBONE = {"titok": "titok-l32", "dino": "dinov2-vitb14"}
POOLS = ("dense", "quantised")
# Candidate pools of the paper's splits, derived here (not stated in the paper): images with a general
# label minus train, validation and queries. MIRFlickr25K: 24,581 - 3,500; COCO train2017: the
# 117,266 images with an annotation - 21,500.
PAPER_POOLS = {"mirflickr25k": 21_081, "coco": 95_766}
DECIMALS = {**slics_clip.DECIMALS, "paper": 3, "run": 4, "agreement": 4, "MiB": 2, "ratio": 1,
            "inertia": 4, "map_general": 4, "map_sub": 4, "*": 4}


def preprocess(X, which: str, n_tokens: int = 32) -> np.ndarray:
    """The paper's preprocessing: TiTok, each token normalised; DINO, the row normalised. No mean removed."""
    if which == "titok":
        return normalise_tokens(X, n_tokens)
    if which == "dino":
        return normalise_rows(np.asarray(X, dtype=np.float64))
    raise ValueError(f"unknown backbone family {which!r}; expected one of {tuple(SECTIONS)}.")


def load_backbone_set(dataset: str, params: dict, which: str) -> RetrievalSet:
    """The retrieval set of ``dataset`` with this backbone's embeddings and preprocessing.

    Demo: :func:`slics.embedding.retrieval_set.load_set` (the demo world's vectors, labels and
    split) with the embeddings re-preprocessed (no mean removed). Full: the cached
    embeddings of ``titok-l32`` or ``dinov2-vitb14`` (see :func:`full_embeddings`).
    """
    n_tokens = int(params[SECTIONS[which]].get("n_tokens", 32))
    if params["profile"] == "demo":
        rs = load_set(dataset, params)
        X = preprocess(rs.X_raw, which, n_tokens)
        return dataclasses.replace(rs, X=X, backbone=f"demo ({which} protocol)",
                                   mean=np.zeros(X.shape[1]))
    X_raw, split, data = full_embeddings(dataset, params, which)
    X = preprocess(X_raw, which, n_tokens)
    return RetrievalSet(dataset, FULL_BACKBONE[which], X, X_raw, split, data, None, None,
                                   np.zeros(X.shape[1]))


def full_embeddings(dataset: str, params: dict, which: str, device=None):
    """(embeddings, split, labels) of the real images under ``titok-l32`` / ``dinov2-vitb14``, cached.

    The split is the one of :func:`slics.embedding.embed_multilabel.dataset_split` (seeded, the
    same for every backbone); the embeddings are computed once and saved under
    ``data/embeddings/<backbone>/<dataset>/images.npy``. Offline without weights or image
    archive this fails before any model is built.
    """
    from ..data.images import ZipImages, ensure_archive
    from ..embedding.embed import embeddings_dir
    from ..embedding.embed_multilabel import dataset_split, load_labels
    from ..embedding.cache import cached_array, weights_tag
    from ..embedding.vision import get_image_backbone, image_backbone_weights
    from ..utils.io import save_npy

    name = FULL_BACKBONE[which]
    data = load_labels(dataset, "full")
    split = dataset_split(data, params, dataset)
    path = embeddings_dir(name, dataset) / "images.npy"
    weights = weights_tag(image_backbone_weights(name))

    def encode():
        archive = ensure_archive(dataset)
        model = get_image_backbone(name, pretrained=True, device=device)
        X = model.encode_images(ZipImages(archive, data.image_ids), batch_size=int(params["embed"]["batch_size"]))
        if which == "titok":
            save_npy(path.with_name("codebook.npy"), model.codebook())
        return X

    return cached_array(path, data.image_ids, name, weights, encode), split, data


def codebook(rs: RetrievalSet, params: dict, which: str = "titok") -> tuple[np.ndarray, dict]:
    """The unit codebook of the quantised pool and a description of it.

    Demo: seeded k-means on the training tokens (``codebook_size`` codewords); full: the
    tokenizer's own codebook (4,096 codewords), saved beside the embeddings.
    """
    cfg = params[SECTIONS[which]]
    if params["profile"] == "full":
        from ..embedding.embed import embeddings_dir
        from ..utils.io import load_npy

        C = load_npy(embeddings_dir(FULL_BACKBONE[which], rs.dataset) / "codebook.npy")
        return C, {"source": "TiTok-L-32 quantiser codebook", "codebook_size": int(C.shape[0])}
    q = TokenQuantiser(n_tokens=int(cfg["n_tokens"]), codebook_size=int(cfg["codebook_size"]),
                       max_iter=int(cfg["kmeans_max_iter"]), random_state=int(params["seed"]))
    q.fit(rs.X[rs.rows("train")])
    return q.codebook_, {"source": "seeded k-means on the training tokens, centres normalised",
                         "codebook_size": int(q.codebook_.shape[0]), "inertia": q.inertia_}


def with_pool(rs: RetrievalSet, pool_rows: np.ndarray, Xhat: np.ndarray) -> RetrievalSet:
    """A copy of ``rs`` whose pool rows are the quantised vectors ``Xhat`` (queries unchanged)."""
    X = rs.X.copy()
    X[pool_rows] = Xhat
    return dataclasses.replace(rs, X=X)


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


def run_dataset(dataset: str, params: dict, which: str) -> dict:
    """Table 3 (TiTok) or Table 4 (DINO) for one dataset: K on validation, S-SVD, S-SLiCS, UF.

    TiTok adds every method on the quantised pool, the look-up-table check and the codebook.
    """
    from tqdm import tqdm

    cfg = params[SECTIONS[which]]
    k, n_iter = int(cfg["k"]), int(cfg["n_iter"])
    batch = cfg["batch_size"][dataset]
    seeds = [int(s) for s in cfg["seeds"][dataset]]
    rs = load_backbone_set(dataset, params, which)
    pool, queries = rs.rows("pool"), rs.rows("query")
    grid, grid_models = slics_clip.choose_k(rs, cfg["k_grid"], n_iter, batch, pool, k=k, seed=seeds[0])
    K = slics_clip.best_k(grid)

    sets = {"dense": rs}
    out = {"set": rs, "K": K, "grid": grid}
    if which == "titok":
        C, info = codebook(rs, params, which)
        qpool = QuantisedPool.from_vectors(rs.X[pool], C, int(cfg["n_tokens"]))
        Xhat = qpool.vectors()
        sets["quantised"] = with_pool(rs, pool, Xhat)
        out.update(codebook=info, qpool=qpool, Xhat=Xhat)

    # S-SLiCS per seed, fitted once and scored on every pool; the grid's model at K is the first
    # seed's (the same call), reused
    by_seed = {seeds[0]: grid_models[K]}
    for seed in tqdm(seeds[1:], desc=f"S-SLiCS seeds ({dataset})", disable=None):
        by_seed[seed] = slics_clip.fit_dictionary(rs, K, n_iter, batch, seed)
    models = {"S-SVD": slics_clip.fit_dictionary(rs, K, 0), "S-SLiCS": by_seed[seeds[0]]}
    runs = []
    for pool_kind, s in sets.items():
        tag = dict(pool=pool_kind)
        runs.append({**slics_clip.summarise(slics_clip.evaluate(s, queries, pool, model=models["S-SVD"], k=k),
                                            dataset, rs.backbone, "S-SVD"), **tag})
        for seed, model in by_seed.items():
            runs.append({**slics_clip.summarise(slics_clip.evaluate(s, queries, pool, model=model, k=k),
                                                dataset, rs.backbone, "S-SLiCS", seed), **tag})
        runs.append({**slics_clip.summarise(slics_clip.evaluate(s, queries, pool, k=k), dataset, rs.backbone, "UF"),
                     **tag})
    out.update(models=models, runs=pd.DataFrame(runs))
    if which == "titok":
        out["lut"] = lut_agreement(rs, models["S-SLiCS"], out["qpool"], out["Xhat"], int(cfg["lut_check_queries"]),
                                   int(params["seed"]), k)
    return out


def results_table(runs: pd.DataFrame) -> pd.DataFrame:
    """Mean (and std over seeds) mAP@20 per dataset, pool and method, as :func:`slics_clip.table2`."""
    frames = []
    for pool_kind, part in runs.groupby("pool", sort=False):
        frames.append(slics_clip.table2(part).assign(pool=pool_kind))
    t = pd.concat(frames, ignore_index=True)
    return t[["dataset", "backbone", "pool", "method", "map_general", "map_sub", "map_general_std", "map_sub_std",
              "n_runs"]]


def paper_layout(table: pd.DataFrame, which: str) -> pd.DataFrame:
    """The paper's layout: one row per (dataset, retrieval), one column per method (and pool)."""
    rows = []
    for dataset in dict.fromkeys(table["dataset"]):
        for retrieval in ("general", "sub"):
            row = {"dataset": slics_clip.DATASET_LABEL[dataset], "retrieval": retrieval}
            for _, r in table[table["dataset"] == dataset].iterrows():
                col = r["method"] if which == "dino" else f"{r['method']} ({r['pool']})"
                row[col] = r[f"map_{retrieval}"]
            rows.append(row)
    return pd.DataFrame(rows)


def paper_comparison(table: pd.DataFrame, paper: dict, which: str) -> pd.DataFrame:
    """The values the paper's prose states beside this run's (dense pool), one row per statement."""
    t = table[table["pool"] == "dense"].set_index(["dataset", "method"])
    rows = []

    def add(what, dataset, retrieval, value, run, sentence):
        rows.append({"statement": what, "dataset": slics_clip.DATASET_LABEL[dataset], "retrieval": retrieval,
                     "paper": np.nan if value is None else float(value), "run": float(run), "source": sentence})

    for dataset in dict.fromkeys(table["dataset"]):
        s, u, v = (t.loc[(dataset, m)] for m in ("S-SLiCS", "UF", "S-SVD"))
        add("S-SLiCS", dataset, "general", paper["s_slics_general"].get(dataset), s["map_general"],
            paper["s_slics_sentence"])
        if which == "titok":
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


def metrics(table: pd.DataFrame, results: dict, which: str) -> dict:
    """The metrics file: every table number by dataset, pool and method, the chosen K, TiTok's extras."""
    out = {}
    for _, r in table.iterrows():
        entry = {"map_general": r["map_general"], "map_sub": r["map_sub"], "n_runs": int(r["n_runs"])}
        if r["n_runs"] > 1:
            entry.update(map_general_std=r["map_general_std"], map_sub_std=r["map_sub_std"])
        out.setdefault(r["dataset"], {}).setdefault(r["pool"], {})[r["method"]] = entry
    for dataset, res in results.items():
        out[dataset]["K"] = int(res["K"])
        if which == "titok":
            out[dataset]["lut_agreement"] = res["lut"]["agreement"]
            out[dataset]["codebook_size"] = res["codebook"]["codebook_size"]
    return out


def describe(params: dict, which: str) -> str:
    """Markdown: where this run's embeddings come from."""
    if params["profile"] == "demo":
        what = ("read as 32 tokens of 12 numbers, each token normalised, with a codebook of "
                f"{params[SECTIONS[which]]['codebook_size']} unit codewords learned by seeded k-means on the "
                "training tokens" if which == "titok" else "normalised")
        return (f"**Demo profile: this is not {'TiTok' if which == 'titok' else 'DINOv2'}.** The images are "
                "the demo world's simulated MIRFlickr25K / COCO vectors (384-d, simulated from each image's "
                f"real labels by stage `embed_<dataset>`), {what}, with no mean removed. It exercises the "
                "protocol" + (" and the quantised pool" if which == "titok" else "") + "; the numbers say "
                "nothing about the real backbone.")
    return (f"**Full profile**: the real images embedded by `{FULL_BACKBONE[which]}` "
            "(`slics.embedding.vision`), normalised as the paper, no mean removed.")
