"""The demo image simulator: determinism, shapes, validation and realistic behaviour."""

from __future__ import annotations

import numpy as np
import pytest

from slics.utils.config import load_params
from slics.embedding.simulator import (SimulatorParams, cifar10_demo_labels, describe, label_neighbours, one_hot,
                             simulate_cifar10, simulate_images)
from slics.core.normalise import normalise_rows as _unit
from slics.core.zero_shot import zero_shot_accuracy
from slics.data.cifar import CIFAR10_CLASSES as CLASSES


@pytest.fixture(scope="module")
def toy():
    """Random unit embeddings: 4 labels, 300 vocabulary words, 50 clutter nouns, d = 32."""
    rng = np.random.default_rng(123)
    return dict(label_emb=_unit(rng.standard_normal((4, 32))),
                vocab_emb=_unit(rng.standard_normal((300, 32))),
                clutter_emb=_unit(rng.standard_normal((50, 32))))


@pytest.fixture(scope="module")
def world():
    return SimulatorParams.from_dict(load_params()["demo_world"])


def _labels(n=200, c=4, seed=0):
    rng = np.random.default_rng(seed)
    Y = rng.random((n, c)) < 0.3
    Y[np.arange(n), rng.integers(0, c, n)] = True        # at least one label each
    return Y


def test_params_block_is_valid_and_round_trips(world):
    assert SimulatorParams.from_dict(world.to_dict()) == world
    assert world.n_per_class == 1000


@pytest.mark.parametrize("bad, match", [
    ({"gap_nrom": 1.0}, "Unknown demo_world key"),
    ({"label_weight": [1.0, 0.5]}, "low <= high"),
    ({"label_weight": [0.0, 1.0]}, "must be positive"),
    ({"n_neighbours": 0}, "positive integer"),
    ({"noise_std": -1}, "non-negative"),
    ({"neighbour_concentration": 0}, "positive number"),
])
def test_params_validation(bad, match):
    with pytest.raises(ValueError, match=match):
        SimulatorParams.from_dict(bad)


def test_shapes_dtype_unit_norm_and_determinism(toy, world):
    Y = _labels()
    X1 = simulate_images(Y, **toy, params=world, random_state=7)
    X2 = simulate_images(Y, **toy, params=world, random_state=7)
    X3 = simulate_images(Y, **toy, params=world, random_state=8)
    assert X1.shape == (200, 32) and X1.dtype == np.float64
    np.testing.assert_allclose(np.linalg.norm(X1, axis=1), 1.0, atol=1e-6)
    assert X1.tobytes() == X2.tobytes()
    assert not np.allclose(X1, X3)


def test_mixture_weights_are_non_negative(toy, world):
    Y = _labels()
    _, d = simulate_images(Y, **toy, params=world, random_state=3, return_details=True)
    assert d["items"].size == Y.sum()                        # one row per (item, label) pair
    assert np.all(d["label_weights"] >= world.label_weight[0]) and np.all(d["label_weights"] > 0)
    assert np.all(d["neighbour_mix"] >= 0)
    np.testing.assert_allclose(d["neighbour_mix"].sum(axis=1), 1.0)
    assert np.all(d["neighbour_spread"] >= 0)
    assert np.all(d["clutter_weights"] >= 0) and d["clutter_index"].shape == (200, world.n_clutter)
    mean_text = _unit(toy["vocab_emb"]).mean(axis=0)
    gap_orth = d["gap"] + world.gap_text_offset * mean_text / np.linalg.norm(mean_text)
    np.testing.assert_allclose(np.linalg.norm(gap_orth), world.gap_norm, rtol=1e-9)


def test_no_noise_no_clutter_gives_the_label_direction(toy):
    """With every extra term off, an item with one label is exactly its label prompt."""
    p = SimulatorParams(n_neighbours=5, neighbour_spread=(0, 0), label_weight=(1, 1), n_clutter=0,
                        gap_norm=0, gap_text_offset=0, noise_std=0)
    X = simulate_images(one_hot(np.array([2, 0, 3]), 4), toy["label_emb"], toy["vocab_emb"], None, p, 0)
    np.testing.assert_allclose(X, toy["label_emb"][[2, 0, 3]], atol=1e-6)


def test_neighbours_skip_the_label_itself(toy):
    vocab = np.vstack([toy["label_emb"][0], toy["vocab_emb"]])    # the label's own word is row 0
    nn = label_neighbours(toy["label_emb"], vocab, 5)
    assert nn.shape == (4, 5) and 0 not in nn[0]


def test_input_errors(toy, world):
    with pytest.raises(ValueError, match="no label"):
        simulate_images(np.zeros((3, 4), bool), **toy, params=world, random_state=0)
    with pytest.raises(ValueError, match="columns"):
        simulate_images(np.ones((3, 5), bool), **toy, params=world, random_state=0)
    with pytest.raises(ValueError, match="one_hot"):
        simulate_images(np.array([0, 1, 2]), **toy, params=world, random_state=0)
    with pytest.raises(ValueError, match="reproducible"):
        simulate_images(_labels(), **toy, params=world, random_state=None)


def test_cifar10_demo_labels():
    y = cifar10_demo_labels()
    assert y.shape == (10_000,) and y.dtype == np.int64
    assert np.all(np.bincount(y) == 1000)
    assert np.all(np.bincount(y[:100]) == 10)                 # prefixes are balanced


def test_describe_says_simulated(world):
    text = describe(world)
    assert "simulated" in text and "10,000 items" in text and "params.yaml" in text


@pytest.fixture(scope="module")
def minilm_world():
    """Real MiniLM embeddings at a reduced scale: 10 class prompts, the 1,000 most frequent
    LAION words, and the least frequent 300 of those as clutter nouns."""
    from slics.embedding.embed import laion10k_words, make_prompts
    from slics.embedding.registry import load_backbone

    backbone = load_backbone("demo")
    template = load_params()["embed"]["prompt_template"]
    words = laion10k_words()[-1000:]
    vocab_emb = backbone.encode_text(make_prompts(template, words))
    clutter = [i for i, w in enumerate(words[:300]) if w not in CLASSES]
    return dict(label_emb=backbone.encode_text(make_prompts(template, CLASSES)), vocab_emb=vocab_emb,
                clutter_emb=vocab_emb[clutter])


def test_demo_world_is_realistic(minilm_world, world):
    """Zero-shot accuracy well below 100% and image-text cosines well below image-image ones."""
    p = SimulatorParams.from_dict({**world.to_dict(), "n_per_class": 100})
    X, y = simulate_cifar10(**minilm_world, params=p, random_state=0)
    T = minilm_world["label_emb"]
    acc = zero_shot_accuracy(X, T, y)
    assert 0.70 <= acc <= 0.95, acc          # 10k items and the full vocabulary: ~0.89
    S = X.astype(np.float64) @ X.T
    image_image = S[~np.eye(len(X), dtype=bool)].mean()
    image_text_own = (X * T[y]).sum(axis=1).mean()
    assert 0.45 <= image_image <= 0.85, image_image
    assert 0.15 <= image_text_own <= 0.45, image_text_own
    assert image_image > image_text_own + 0.2
    same = y[:, None] == y[None]
    assert S[same & ~np.eye(len(X), dtype=bool)].mean() > S[~same].mean()   # classes cluster
