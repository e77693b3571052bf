"""The demo world's generative model: determinism, shapes, its formula, validation and realism."""

from __future__ import annotations

import numpy as np
import pytest
from scipy.spatial.distance import cdist

from slics.core.normalise import normalise_rows as _unit
from slics.core.zero_shot import zero_shot_accuracy
from slics.data.cifar import CIFAR10_CLASSES as CLASSES
from slics.embedding.demo_spaces import render_image_only
from slics.embedding.simulator import (SimulatorParams, cifar10_demo_labels, describe, draw_scenes,
                                       label_descriptors, one_hot, placement_vocabulary, render_scenes,
                                       simulate_cifar10, simulate_images)
from slics.utils.config import load_params


@pytest.fixture(scope="module")
def world():
    return SimulatorParams.from_dict({**load_params()["demo_world"], "n_descriptors": 6})


@pytest.fixture(scope="module")
def toy(world):
    """Random unit 'text' embeddings: 4 label names and 300 placement words, d = 32."""
    rng = np.random.default_rng(123)
    names, placement = _unit(rng.standard_normal((4, 32))), _unit(rng.standard_normal((300, 32)))
    return dict(placement_emb=placement, descriptors=label_descriptors(names, placement, world.n_descriptors))


def _labels(n=200, c=4, seed=0):
    rng = np.random.default_rng(seed)
    Y = rng.random((n, c)) < 0.3
    Y[np.arange(n), rng.integers(0, c, n)] = True        # at least one label each
    return Y


def test_params_block_is_valid_and_round_trips():
    world = SimulatorParams.from_dict(load_params()["demo_world"])
    assert SimulatorParams.from_dict(world.to_dict()) == world
    assert world.n_per_class == 1000


@pytest.mark.parametrize("bad, match", [
    ({"gap_nrom": 1.0}, "Unknown demo_world key"),
    ({"label_weight": [1.0, 0.5]}, "low <= high"),
    ({"label_weight": [0.0, 1.0]}, "must be positive"),
    ({"n_descriptors": 0}, "positive integer"),
    ({"placement_words": 2.5}, "positive integer"),
    ({"noise_std": -1}, "non-negative"),
    ({"dino_noise_std": float("nan")}, "non-negative"),
    ({"descriptor_concentration": 0}, "positive number"),
    ({"core_weight": [1]}, "pair"),
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
    np.testing.assert_allclose(np.linalg.norm(X1, axis=1), 1.0, atol=1e-12)
    assert X1.tobytes() == X2.tobytes()
    assert not np.allclose(X1, X3)


def test_scene_draws_are_in_their_ranges(toy, world):
    Y = _labels()
    _, d = simulate_images(Y, **toy, params=world, random_state=3, return_details=True)
    s = d["scenes"]
    assert s.items.size == Y.sum() and np.array_equal(np.c_[s.items, s.labels], np.argwhere(Y))
    for values, (lo, hi) in ((s.label_weights, world.label_weight), (s.core_weights, world.core_weight),
                             (s.clutter_weights, world.clutter_weight)):
        assert np.all((values >= lo) & (values <= hi))
    assert np.all(s.mix >= 0)
    np.testing.assert_allclose(s.mix.sum(axis=1), 1.0)
    assert s.clutter_index.shape == (200, world.n_clutter) and s.clutter_index.max() < 300
    mean_text = toy["placement_emb"].mean(axis=0)
    gap_orth = d["gap"] + world.gap_text_offset * mean_text / np.linalg.norm(mean_text)
    np.testing.assert_allclose(np.linalg.norm(gap_orth), world.gap_norm, rtol=1e-9)
    cores = _unit(toy["placement_emb"][toy["descriptors"]].mean(axis=1))
    np.testing.assert_allclose(cores @ gap_orth, 0, atol=1e-12)          # the gap favours no label


def test_rendering_follows_its_formula(toy, world):
    """One item, rendered by hand from the module docstring's formula, without the library's loop."""
    Y = _labels(n=30)
    rng = np.random.default_rng(0)
    scenes = draw_scenes(Y, 300, world, 5)
    offset = rng.standard_normal(32)
    X = render_scenes(scenes, toy["placement_emb"], toy["descriptors"], offset, 0.0, rng, normalise=False)
    W = toy["placement_emb"]
    for i in (0, 7, 29):
        x = offset.copy()
        for pair in np.flatnonzero(scenes.items == i):
            P = W[toy["descriptors"][scenes.labels[pair]]]
            core = P.mean(axis=0) / np.linalg.norm(P.mean(axis=0))
            u = scenes.core_weights[pair] * core + scenes.mix[pair] @ P
            x += scenes.label_weights[pair] * u / np.linalg.norm(u)
        x += sum(c * W[j] for c, j in zip(scenes.clutter_weights[i], scenes.clutter_index[i]))
        np.testing.assert_allclose(X[i], x, rtol=1e-12, atol=1e-12)


def test_descriptors_are_the_nearest_placement_words(toy, world):
    rng = np.random.default_rng(4)
    names, placement = rng.standard_normal((5, 32)), rng.standard_normal((80, 32))
    got = label_descriptors(names, placement, 7)
    want = np.argsort(cdist(names, placement, metric="cosine"), axis=1, kind="stable")[:, :7]   # scipy's convention
    assert np.array_equal(got, want)
    with pytest.raises(ValueError, match="n_descriptors=81"):
        label_descriptors(names, placement, 81)


def test_placement_vocabulary_skips_reserved_words_and_label_copies():
    lines = ["tiger", "zebra", "doggie", "spaceship", "Upper", "x1", "meow", "feline", "tabby", "reserved",
             "kitties", "the", "cat", "dog"]            # the last two stand for the LAION-10k
    words = placement_vocabulary(lines, {"reserved", "the"}, size=12, skip_last=2)
    assert words == ["tiger", "meow", "feline", "tabby", "kitties"]    # zebra: a COCO label; doggie, spaceship: copies
    with pytest.raises(ValueError, match="placement_words=20"):
        placement_vocabulary(lines, set(), size=20, skip_last=2)


def test_input_errors(toy, world):
    with pytest.raises(ValueError, match="no label"):
        simulate_images(np.zeros((3, 4), bool), **toy, params=world, random_state=0)
    with pytest.raises(ValueError, match="one row per label"):
        simulate_images(np.ones((3, 5), bool), **toy, params=world, random_state=0)
    with pytest.raises(ValueError, match="one_hot"):
        draw_scenes(np.array([0, 1, 2]), 10, world, 0)
    with pytest.raises(ValueError, match="reproducible"):
        simulate_images(_labels(), **toy, params=world, random_state=None)


def test_cifar10_demo_labels():
    y = cifar10_demo_labels(3)
    assert y.dtype == np.int64 and y.tolist() == list(range(10)) * 3
    with pytest.raises(ValueError):
        cifar10_demo_labels(0)


def test_describe_says_simulated():
    text = describe(load_params()["demo_world"])
    assert "simulated" in text and "10,000 items" in text and "params.yaml" in text


def test_image_only_spaces_render_the_same_scenes_in_their_own_maps(world):
    """demo-dino: 768-d unit rows; demo-titok: 32 tokens of 12 numbers in (-1, 1); both deterministic,
    both keep the labels recoverable (nearest class centroid far above chance), neither equals another."""
    rng = np.random.default_rng(9)
    names, placement = _unit(rng.standard_normal((4, 384))), _unit(rng.standard_normal((400, 384)))
    desc = label_descriptors(names, placement, world.n_descriptors)
    y = np.arange(400) % 4
    Y = one_hot(y, 4)
    dino = render_image_only("demo-dino", Y, placement, desc, world, 0)
    titok = render_image_only("demo-titok", Y, placement, desc, world, 0)
    assert dino.shape == (400, world.visual_dim) and titok.shape == (400, 384)
    np.testing.assert_allclose(np.linalg.norm(dino, axis=1), 1.0, atol=1e-12)
    assert np.all(np.abs(titok) < 1)
    assert render_image_only("demo-dino", Y, placement, desc, world, 0).tobytes() == dino.tobytes()
    for X in (dino, titok):
        train, test = np.arange(400) < 200, np.arange(400) >= 200
        centroids = np.stack([X[train & (y == c)].mean(axis=0) for c in range(4)])
        accuracy = np.mean(np.argmin(cdist(X[test], centroids), axis=1) == y[test])
        assert accuracy > 0.6, accuracy
    with pytest.raises(ValueError, match="no demo rendering"):
        render_image_only("demo", Y, placement, desc, world, 0)


@pytest.fixture(scope="module")
def minilm_world():
    """Real MiniLM embeddings at a reduced scale: the 10 class names and 2,000 placement words."""
    from slics.embedding.embed import laion_lines, laion10k_words
    from slics.embedding.registry import load_backbone
    from slics.embedding.simulator import reserved_words

    backbone = load_backbone("demo")
    words = placement_vocabulary(laion_lines(), reserved_words([laion10k_words()], []), 2000, 10_000)
    return backbone, backbone.encode_text(words)


def test_demo_world_is_realistic(minilm_world):
    """Zero-shot accuracy well below 100% and image-text cosines well below image-image ones."""
    backbone, placement = minilm_world
    p = SimulatorParams.from_dict({**load_params()["demo_world"], "n_per_class": 100})
    descriptors = label_descriptors(backbone.encode_text(list(CLASSES)), placement, p.n_descriptors)
    X, y = simulate_cifar10(placement, descriptors, p, random_state=0)
    T = backbone.encode_text([f"a photo of a {c}" for c in CLASSES])
    acc = zero_shot_accuracy(X, T, y)
    assert 0.5 <= acc <= 0.97, acc
    S = X @ X.T
    off_diagonal = ~np.eye(len(X), dtype=bool)
    image_image = S[off_diagonal].mean()
    image_text_own = (X * T[y]).sum(axis=1).mean()
    assert 0.35 <= image_image <= 0.85, image_image
    assert 0.1 <= image_text_own <= 0.45, image_text_own
    assert image_image > image_text_own + 0.15
    same = y[:, None] == y[None]
    assert S[same & off_diagonal].mean() > S[~same].mean()   # classes cluster
