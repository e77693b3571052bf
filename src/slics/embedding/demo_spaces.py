"""The image-only demo backbones: the demo world's scenes seen through their own maps.

Backbones ``demo-dino`` and ``demo-titok`` (:mod:`slics.embedding.registry`) have no text tower.
They render the *same* scenes as backbone ``demo`` (redrawn from the same seed and label
vectors, :func:`slics.embedding.simulator.draw_scenes`), but with their own word vectors:

* a seeded random feature map of the placement words' text embeddings,
  ``f(v) = unit(tanh(g * G e_v))`` with ``G`` standard Gaussian (``visual_dim`` x 384) and
  gain ``g = visual_nonlinearity``: nearby words stay nearby, yet nothing in the space lines
  up with the text tower, so zero-shot pseudo-labels, SpLiCE and word captions have nothing
  to read (as with DINOv2 and TiTok);
* ``demo-dino``: the scene rendered with these vectors in ``visual_dim`` (768, as DINOv2
  ViT-B/14) dimensions, a shared offset of length ``dino_offset`` along a random direction
  (which its "unit" protocol does not remove) and noise of length ``dino_noise_std``;
* ``demo-titok``: the scene rendered with another seeded map plus an *appearance* term of
  length ``titok_appearance_std`` on ``titok_appearance_rank`` fixed random directions (a
  tokenizer trained to reconstruct pixels keeps what an image looks like, colour and layout,
  not only what is in it; images that look alike are near each other whatever they show), then
  compressed to the registry's 32 tokens of 12
  numbers, ``tanh(titok_nonlinearity * B x)`` with ``B`` standard Gaussian (384 x
  ``visual_dim``): a 2x compressive, tokenised space.

The arrays are computed on demand (a second or two) from the ``demo`` backbone's files of the
embed stages: the placement vocabulary (``cifar10/placement_vocab.npy``) and each label's
descriptor words (``<dataset>/descriptors.npy``).
"""

from __future__ import annotations

import numpy as np

from ..core.normalise import normalise_rows
from .simulator import SimulatorParams, draw_scenes, render_scenes

TEXT_BACKBONE = "demo"           # whose placement vocabulary, descriptors and scenes are rendered
_STREAM = {"demo-dino": 1, "demo-titok": 2}    # each backbone's own random maps and noise


def visual_word_vectors(text_emb, dim: int, gain: float, rng: np.random.Generator) -> np.ndarray:
    """``unit(tanh(gain * G e))`` for every row ``e`` of ``text_emb``; ``G`` standard Gaussian (dim, d)."""
    E = normalise_rows(np.asarray(text_emb, dtype=np.float64))
    G = rng.standard_normal((dim, E.shape[1]))
    return normalise_rows(np.tanh(gain * (E @ G.T)))


def appearance(n: int, dim: int, rank: int, norm: float, rng: np.random.Generator) -> np.ndarray:
    """(n, dim) appearance of each item: Gaussian coordinates on ``rank`` fixed random directions
    (colour, layout, texture vary along few axes, shared by all images), expected length ``norm``."""
    basis = np.linalg.qr(rng.standard_normal((dim, rank)))[0]           # (dim, rank), orthonormal columns
    return (rng.standard_normal((n, rank)) * (norm / np.sqrt(rank))) @ basis.T


def render_image_only(backbone: str, labels, placement_emb, descriptors, params, seed: int) -> np.ndarray:
    """Images of an image-only demo backbone (``demo-dino`` or ``demo-titok``): float64 (n, dim)."""
    from .registry import get_spec

    if backbone not in _STREAM:
        raise ValueError(f"backbone {backbone!r} has no demo rendering; expected one of {sorted(_STREAM)}.")
    p = params if isinstance(params, SimulatorParams) else SimulatorParams.from_dict(params)
    scenes = draw_scenes(labels, np.shape(placement_emb)[0], p, int(seed))
    rng = np.random.default_rng([int(seed), _STREAM[backbone]])
    words = visual_word_vectors(placement_emb, p.visual_dim, p.visual_nonlinearity, rng)
    if backbone == "demo-dino":
        offset = p.dino_offset * normalise_rows(rng.standard_normal(p.visual_dim))
        return render_scenes(scenes, words, descriptors, offset, p.dino_noise_std, rng)
    X = render_scenes(scenes, words, descriptors, np.zeros(p.visual_dim), 0.0, rng, normalise=False)
    X = normalise_rows(X + appearance(scenes.n_items, p.visual_dim, p.titok_appearance_rank,
                                      p.titok_appearance_std, rng))
    dim = get_spec(backbone).dim
    B = rng.standard_normal((dim, p.visual_dim))
    return np.tanh(p.titok_nonlinearity * (X @ B.T))


def demo_images(dataset: str, params: dict, backbone: str) -> np.ndarray:
    """The image-only demo backbone's embeddings of ``dataset``'s labelled images, in the order of
    the embed stage's ``split.csv``."""
    from .embed import load_embeddings
    from .embed_multilabel import load_labels

    data = load_labels(dataset, params["profile"])
    placement = load_embeddings(TEXT_BACKBONE, "placement_vocab", "cifar10")
    descriptors = load_embeddings(TEXT_BACKBONE, "descriptors", dataset)
    return render_image_only(backbone, data.labels, placement, descriptors, params["demo_world"],
                             int(params["seed"]))
