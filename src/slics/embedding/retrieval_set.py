"""A retrieval set: one dataset's cached embeddings under one backbone, its labels and its split.

:func:`load_set` reads what an ``embed_<dataset>`` stage wrote (``images.npy``,
``general_text.npy``, ``split.csv``) with the labels, checks that they describe the same
images in the same order, and preprocesses the embeddings as the SLiCS paper (section 4.1):
normalise, subtract the image mean, renormalise. The mean is SpLiCE's precomputed CLIP image
mean in the full profile and the mean of the normalised training embeddings in the demo.
The original embeddings are kept beside (zero-shot pseudo-labels use them). Every section
of the retrieval experiments (CLIP, TiTok, DINOv2, image-to-prompt) reads its data here.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pandas as pd

from ..core.zero_shot import normalise_rows
from ..data.multilabel import MultiLabelSet


@dataclass
class RetrievalSet:
    """One dataset under one backbone, preprocessed, with its split and labels (rows aligned)."""

    dataset: str
    backbone: str
    X: np.ndarray             # (n, d) preprocessed: normalised, image mean removed, renormalised
    X_raw: np.ndarray         # (n, d) the original unit embeddings (zero-shot pseudo-labels)
    split: np.ndarray         # (n,) train / val / query / pool
    data: MultiLabelSet
    general_text: np.ndarray  # (C, d) template-averaged concept-name embeddings
    vocab: np.ndarray         # (10000, d) LAION-10k word embeddings
    mean: np.ndarray          # (d,) the image mean that was removed

    def rows(self, name: str) -> np.ndarray:
        return np.flatnonzero(self.split == name)


def image_mean(X_unit: np.ndarray, split: np.ndarray, profile: str, backbone: str) -> np.ndarray:
    """The image mean removed before decomposing: SpLiCE's precomputed CLIP mean (full) or
    the mean of the normalised training embeddings (demo: the simulator has no such file)."""
    if profile == "demo":
        return X_unit[split == "train"].astype(np.float64).mean(axis=0)
    import torch

    from ..data.resources import resource_path

    model = {"clip-vit-b32": "ViT-B-32", "clip-rn50": "RN50"}[backbone]
    path = resource_path("splice_means", f"splice/means/clip_{model}_image.pt")
    return torch.load(path, map_location="cpu", weights_only=True).double().numpy().reshape(-1)


def preprocess(X, mean) -> np.ndarray:
    """Normalise, subtract ``mean``, renormalise (float64 rows)."""
    return normalise_rows(normalise_rows(np.asarray(X, dtype=np.float64)) - mean)


def load_set(dataset: str, params: dict) -> RetrievalSet:
    """Read ``data/embeddings/<backbone>/<dataset>/`` and the labels, aligned by ``split.csv``."""
    from .embed import embeddings_dir, load_embeddings
    from .embed_multilabel import load_labels

    backbone, profile = params["embed"]["backbone"], params["profile"]
    path = embeddings_dir(backbone, dataset) / "split.csv"
    if not path.is_file():
        raise FileNotFoundError(f"The split of {dataset} under backbone {backbone} ({path}) is missing: the "
                                f"stage embed_{dataset} has not run for this backbone and profile. Run "
                                f"`dvc repro embed_{dataset}` (or `python -m slics.embedding.embed {dataset}`).")
    table = pd.read_csv(path, keep_default_na=False)
    data = load_labels(dataset, profile)
    if tuple(table["image"]) != data.image_ids:
        raise ValueError(f"split.csv of {dataset} does not match its labels; rerun `dvc repro embed_{dataset}`.")
    X_raw = load_embeddings(backbone, "images", dataset)
    split = table["split"].to_numpy(dtype=object)
    mean = image_mean(X_raw, split, profile, backbone)
    return RetrievalSet(dataset, backbone, preprocess(X_raw, mean), X_raw, split, data,
                        load_embeddings(backbone, "general_text", dataset),
                        load_embeddings(backbone, "laion10k_vocab", "cifar10"), mean)
