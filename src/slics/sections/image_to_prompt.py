"""Section 3.7 of the SLiCS paper: aligning image spaces for image-to-prompt generation.

The notebook ``07_image_to_prompt`` calls these functions. Stable Diffusion 1.x is conditioned
on CLIP ViT-L/14 (its text encoder), while the concept components of SLiCS live in another
space (ViT-B/32); an orthogonal Procrustes map (:mod:`slics.core.alignment`) fitted on the two
embeddings of the same images carries a component across, and the aligned component becomes
the prompt (Ding et al., 2023; :mod:`slics.sections.image_generation`).

* **demo** (offline): the two spaces are the demo world's image vectors (the CIFAR-10
  stand-in of :mod:`slics.embedding.simulator`) and the same vectors after a known,
  seeded random rotation plus isotropic noise (then renormalised). The question the demo
  answers is whether Procrustes recovers the planted rotation from a training subset,
  and how it compares with the identity (no alignment) and an unconstrained
  least-squares map on held-out rows, across noise levels and training sizes.
* **full**: CLIP ViT-B/32 and ViT-L/14 (open_clip, OpenAI weights) image embeddings of
  the Flickr30k images, 512 and 768 dimensions: the map is semi-orthogonal and the
  identity baseline does not exist (reported as n/a). Generating images from aligned
  concept components (the paper's Fig. 11: Ding et al.'s image-to-prompt conversion for Stable
  Diffusion, or Stable unCLIP) is an optional step (:mod:`slics.sections.image_generation`,
  ``image_to_prompt.generation.enabled``), never run by the demo pipeline.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd

from ..core.alignment import (LeastSquaresAlignment, ProcrustesAlignment, alignment_errors, random_rotation,
                              rotation_error)

METHODS = ("identity", "least squares", "Procrustes")
# Printed precision (README, "Reproduction contract").
DECIMALS = {"noise": 2, "mse": 4, "relative_error": 4, "mean_cosine": 4, "top1_match": 4,
            "rotation_error": 4, "train_mse": 4, "*": 4}
# Images per batch when the full profile encodes Flickr30k. A constant, not `embed.batch_size`: stage
# 07 does not declare `embed`, and declaring it would change the demo notebook's injected parameters.
IMAGE_BATCH_SIZE = 64


def _unit(X: np.ndarray) -> np.ndarray:
    return X / np.linalg.norm(X, axis=1, keepdims=True)


def demo_target_space(X, noise: float, seed: int) -> tuple[np.ndarray, np.ndarray]:
    """The second demo space: ``normalise(X R0 + e)``, with ``R0`` a seeded Haar rotation.

    ``e`` is isotropic Gaussian noise of expected norm about ``noise`` (standard deviation
    ``noise / sqrt(d)`` per coordinate), drawn with the same seed. Returns ``(Y, R0)``.
    """
    X = np.asarray(X, dtype=np.float64)
    d = X.shape[1]
    R0 = random_rotation(d, seed)
    rng = np.random.default_rng([int(seed), 1])
    Y = X @ R0 + (float(noise) / np.sqrt(d)) * rng.standard_normal(X.shape)
    return _unit(Y), R0


def split_rows(n: int, n_train: int, n_test: int, seed: int) -> tuple[np.ndarray, np.ndarray]:
    """A seeded split of ``n`` rows: ``n_train`` fitting rows and ``n_test`` disjoint held-out rows (sorted).

    The held-out rows are the last ``n_test`` of one seeded permutation, so they do not
    change with ``n_train``.
    """
    if int(n_train) < 1 or int(n_test) < 1 or int(n_train) + int(n_test) > int(n):
        raise ValueError(f"{n} rows cannot hold n_train = {n_train} and n_test = {n_test} (both >= 1).")
    perm = np.random.default_rng([int(seed), 2]).permutation(int(n))
    return np.sort(perm[:n_train]), np.sort(perm[n - n_test:])


def fit_maps(X, Y) -> dict:
    """The maps compared: identity (only when the dimensions agree), least squares, Procrustes."""
    maps = {}
    if X.shape[1] == Y.shape[1]:
        maps["identity"] = np.eye(X.shape[1])
    maps["least squares"] = LeastSquaresAlignment().fit(X, Y).map_
    maps["Procrustes"] = ProcrustesAlignment().fit(X, Y).map_
    return maps


def compare_maps(X, Y, train, test, R_true=None) -> pd.DataFrame:
    """Held-out errors of every map fitted on ``train`` rows (one row per method, identity n/a if absent)."""
    X, Y = np.asarray(X, dtype=np.float64), np.asarray(Y, dtype=np.float64)
    maps = fit_maps(X[train], Y[train])
    rows = []
    for method in METHODS:
        row = {"method": method}
        if method in maps:
            M = maps[method]
            row.update(alignment_errors(X[test] @ M, Y[test]))
            row["train_mse"] = alignment_errors(X[train] @ M, Y[train])["mse"]
            if R_true is not None:
                row["rotation_error"] = rotation_error(M, R_true)
        rows.append(row)
    cols = ["method", "mse", "relative_error", "mean_cosine", "top1_match", "train_mse"]
    cols += ["rotation_error"] if R_true is not None else []
    return pd.DataFrame(rows).reindex(columns=cols)


def space_pairs(params: dict) -> list[dict]:
    """The (source, target) pairs to align: per noise level in the demo, the real pair in full.

    Each entry: ``noise`` (NaN in full), ``X`` (source rows), ``Y`` (target rows of the same
    images) and ``R_true`` (the planted rotation; None in full).
    """
    cfg, seed = params["image_to_prompt"], int(params["seed"])
    if params["profile"] == "demo":
        X = load_demo_source()
        pairs = []
        for noise in cfg["noise_levels"]:
            Y, R0 = demo_target_space(X, noise, seed)
            pairs.append({"noise": float(noise), "X": X, "Y": Y, "R_true": R0})
        return pairs
    X, Y = full_embeddings(params)
    return [{"noise": float("nan"), "X": X, "Y": Y, "R_true": None}]


def load_demo_source() -> np.ndarray:
    """The demo world's image vectors (the CIFAR-10 stand-in of stage ``embed_cifar10``), float64."""
    from ..embedding.embed import load_embeddings

    return load_embeddings("demo", "cifar10_images").astype(np.float64)


def alignment_table(pairs: list[dict], n_train: int, n_test: int, seed: int) -> pd.DataFrame:
    """:func:`compare_maps` for every pair (column ``noise`` first; the same rows for every pair)."""
    train, test = split_rows(len(pairs[0]["X"]), n_train, n_test, seed)
    frames = [compare_maps(p["X"], p["Y"], train, test, p["R_true"]).assign(noise=p["noise"]) for p in pairs]
    out = pd.concat(frames, ignore_index=True)
    return out[["noise", *[c for c in out.columns if c != "noise"]]]


def train_size_sweep(X, Y, train_sizes, seed: int, n_test: int, R_true=None) -> pd.DataFrame:
    """Held-out errors of least squares and Procrustes versus training rows.

    The same ``n_test`` held-out rows as :func:`alignment_table` for every size; training rows
    are the first ``n`` of one seeded permutation of the other rows (nested sets). Every size
    must be at least the source dimension: with fewer rows neither map is unique (any
    completion of the unseen directions fits equally), so their held-out errors would depend on
    the LAPACK build and thread count rather than on the data.
    """
    from tqdm import tqdm

    X, Y = np.asarray(X, dtype=np.float64), np.asarray(Y, dtype=np.float64)
    _, test = split_rows(len(X), 1, n_test, seed)
    rest = np.setdiff1d(np.arange(len(X)), test)
    order = np.random.default_rng([int(seed), 3]).permutation(rest)
    rows = []
    if min(train_sizes) < X.shape[1]:
        raise ValueError(f"training sizes must be >= the source dimension {X.shape[1]} (got {min(train_sizes)}): "
                         "with fewer rows the maps are not unique.")
    for n in tqdm(train_sizes, desc="training sizes", disable=None):
        if n > order.size:
            raise ValueError(f"train size {n} exceeds the {order.size} rows outside the held-out set.")
        table = compare_maps(X, Y, np.sort(order[:n]), test, R_true)
        for _, r in table[table["method"] != "identity"].iterrows():
            rows.append({"n_train": int(n), "method": r["method"], "relative_error": r["relative_error"],
                         "top1_match": r["top1_match"],
                         "rotation_error": r["rotation_error"] if R_true is not None else np.nan})
    return pd.DataFrame(rows)


def figure_sweep(sweep: pd.DataFrame, dim: int, identity_error: float | None = None):
    """Held-out relative error and rotation error versus training rows (log x), one line per map."""
    import matplotlib.pyplot as plt

    from ..utils.plotting import BASELINE, MARKERS, PALETTE, legend_outside, value_axis

    planted = sweep["rotation_error"].notna().any()
    fig, axes = plt.subplots(1, 2 if planted else 1, figsize=(10 if planted else 5, 3.8), squeeze=False)
    axes = axes[0]
    for i, (method, part) in enumerate(sweep.groupby("method", sort=False)):
        style = {"marker": MARKERS[i], "color": PALETTE[i], "label": method}
        axes[0].plot(part["n_train"], part["relative_error"], **style)
        if planted:
            axes[1].plot(part["n_train"], part["rotation_error"], **style)
    if identity_error is not None:
        axes[0].axhline(identity_error, **BASELINE, label="identity map")
    titles = ("Held-out relative error", r"Rotation error $\|\hat R - R_0\|_F / \sqrt{d}$")
    for ax, title in zip(axes, titles):
        ax.axvline(dim, color="0.2", lw=0.8, ls=":", label=f"n = d = {dim}")
        value_axis(ax, sorted(set(sweep["n_train"])), "x", fmt="{:.0f}")
        ax.set_xlabel("training rows n")
        ax.set_title(title)
    for ax in axes:
        ax.set_yscale("log")  # the maps differ by factors; the identity baseline sits far above them
    handles, labels = axes[0].get_legend_handles_labels()
    legend_outside(axes[-1], handles=handles, labels=labels)
    fig.suptitle(f"Aligning two image spaces (source dimension d = {dim})")
    fig.tight_layout()
    return fig


def metrics(table: pd.DataFrame, main_noise: float | None) -> dict:
    """The metrics file: held-out errors of every map for every pair, and a summary of the main pair.

    Keys ``noise_<level>`` (demo) or ``flickr30k`` (full), then the method. ``main``: the
    Procrustes rotation error (demo) and the ratio of Procrustes' to least squares' held-out
    MSE at ``main_noise`` (demo) or on the real pair (full).
    """
    out = {}
    for _, r in table.iterrows():
        key = "flickr30k" if pd.isna(r["noise"]) else f"noise_{r['noise']:.2f}"
        out.setdefault(key, {})[r["method"].replace(" ", "_")] = {
            k: (None if pd.isna(r[k]) else float(r[k]))
            for k in ("mse", "mean_cosine", "top1_match", "rotation_error") if k in r}
    main = table if main_noise is None else table[np.isclose(table["noise"], main_noise)]
    main = main.set_index("method")
    out["main"] = {"procrustes_over_least_squares_mse": float(main.loc["Procrustes", "mse"]
                                                              / main.loc["least squares", "mse"])}
    if "rotation_error" in main:
        out["main"]["procrustes_rotation_error"] = float(main.loc["Procrustes", "rotation_error"])
        out["main"]["noise"] = float(main_noise)
    return out


def describe(params: dict) -> str:
    """Markdown: where this run's two spaces come from."""
    cfg = params["image_to_prompt"]
    if params["profile"] == "demo":
        return (f"**Demo profile.** Source space: the demo world's 10,000 simulated CIFAR-10 image vectors "
                f"(384-d, stage `embed_cifar10`). Target space: the same vectors after a seeded Haar-random "
                f"rotation $R_0$ (seed {params['seed']}) plus isotropic Gaussian noise of expected norm "
                f"{', '.join(f'{v:g}' for v in cfg['noise_levels'])}, renormalised. Maps are fitted on "
                f"{cfg['n_train']} rows and measured on {cfg['n_test']} disjoint held-out rows. This tests "
                "the alignment step only; it says nothing about how well real CLIP spaces align.")
    from ..embedding.registry import get_spec

    src, tgt = (get_spec(cfg["full"][key]) for key in ("source_backbone", "target_backbone"))
    return (f"**Full profile.** Image embeddings of the Flickr30k images in `{cfg['full']['images_dir']}` by "
            f"{src.title} ({src.dim}-d, the source) and {tgt.title} ({tgt.dim}-d, the target); maps fitted on {cfg['n_train']} "
            f"images and measured on {cfg['n_test']} held-out images. The dimensions differ, so there is no "
            "identity baseline (n/a) and the Procrustes map has orthonormal rows.")


# ---------------------------------------------------------------------------------- full profile

def flickr30k_image_names() -> list[str]:
    """The Flickr30k image file names of the Multi30k splits (train, val, test_2016), in that order."""
    from ..data.resources import expected, resource_path

    names = []
    for split in ("train", "val", "test_2016"):
        path = resource_path("flickr30k", f"flickr30k/{split}_images.txt")
        names += [line.strip() for line in Path(path).read_text().splitlines() if line.strip()]
    if len(names) != int(expected("flickr30k_images")):
        raise ValueError(f"the Multi30k image lists name {len(names)} images, expected "
                         f"{expected('flickr30k_images')} (registry _expected.flickr30k_images).")
    return names


def check_full_inputs(images_dir: str | Path, backbones=()) -> Path:
    """Fail fast (before any model is built) when the full profile cannot run: images or weights missing."""
    from ..embedding.encoders import check_clip_available

    from ..utils.config import project_root

    folder = Path(images_dir) if images_dir else None
    if folder is not None and not folder.is_absolute():
        folder = project_root() / folder
    if folder is None or not folder.is_dir():
        raise FileNotFoundError(
            f"image_to_prompt.full.images_dir = {str(images_dir)!r} is not a folder. The full profile needs "
            "the Flickr30k JPEGs (flickr30k-images/, e.g. from the official request form at "
            "https://shannon.cs.illinois.edu/DenotationGraph/); set the key to that folder.")
    for name in backbones:
        check_clip_available(name)
    return folder


class _FolderImages:
    def __init__(self, folder: Path, names):
        self.paths = [folder / n for n in names]
        missing = [p for p in self.paths if not p.is_file()]
        if missing:
            raise FileNotFoundError(f"{len(missing)} Flickr30k image(s) missing from {folder} (first: {missing[0].name}).")

    def __len__(self):
        return len(self.paths)

    def __iter__(self):
        from PIL import Image

        for p in self.paths:
            with Image.open(p) as img:
                yield img.convert("RGB")


def full_embeddings(params: dict, device=None) -> tuple[np.ndarray, np.ndarray]:
    """Source and target image embeddings of the Flickr30k images (``image_to_prompt.full``'s
    ``source_backbone`` and ``target_backbone``, registry names), cached under ``data/embeddings``."""
    from ..embedding.embed import embeddings_dir
    from ..embedding.cache import cached_array, weights_tag
    from ..embedding.registry import get_spec, load_backbone

    cfg = params["image_to_prompt"]["full"]
    names = (cfg["source_backbone"], cfg["target_backbone"])
    image_names = flickr30k_image_names()
    arrays = []
    for name in names:
        def encode(name=name):
            images = _FolderImages(check_full_inputs(cfg["images_dir"], names), image_names)
            return load_backbone(name, device=device).encode_images(images, batch_size=IMAGE_BATCH_SIZE)

        path = embeddings_dir(name, "flickr30k") / "images.npy"
        arrays.append(cached_array(path, image_names, name, weights_tag(get_spec(name).weights_file()), encode))
    return tuple(arrays)


def main(argv=None) -> int:
    """``python -m slics.sections.image_to_prompt generate``: the optional Fig. 11 (full profile), made by
    :mod:`slics.sections.image_generation`."""
    from .image_generation import main as generation_main

    return generation_main(argv)


if __name__ == "__main__":
    from slics.utils.errors import run_main

    raise SystemExit(run_main(main))
