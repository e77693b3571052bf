"""The fixes that the full profile's rehearsal needed: checked caches, registry sizes, U-SLiCS skips."""

from __future__ import annotations

import json

import numpy as np
import pytest

from slics.data import resources
from slics.embedding import cache


def test_cache_is_reused_only_for_the_same_images_and_weights(tmp_path):
    path = tmp_path / "images.npy"
    calls = []

    def compute(n):
        def run():
            calls.append(n)
            return np.arange(n * 3, dtype=np.float64).reshape(n, 3)
        return run

    ids = [f"im{i}.jpg" for i in range(5)]
    first = cache.cached_array(path, ids, "titok-l32", "blob:10", compute(5))
    again = cache.cached_array(path, ids, "titok-l32", "blob:10", compute(5))
    assert calls == [5] and np.array_equal(first, again)
    manifest = json.loads(cache.manifest_path(path).read_text())
    assert manifest["n_rows"] == 5 and manifest["ids_sha256"] == cache.ids_sha256(ids)
    # other images (the issue: a 147-row cache accepted for 390 images), reordered ids, other weights
    for other_ids, weights, n in ((ids + ["im9.jpg"], "blob:10", 6), (ids[::-1], "blob:10", 5),
                                  (ids, "blob:11", 5)):
        with pytest.warns(UserWarning, match="not reusing the cache"):
            X = cache.cached_array(path, other_ids, "titok-l32", weights, compute(n))
        assert X.shape[0] == n
    assert calls == [5, 6, 5, 5]
    # unknown weights (not on this machine) do not force a recompute
    cache.cached_array(path, ids, "titok-l32", None, compute(5))
    assert calls == [5, 6, 5, 5]


def test_cache_without_manifest_is_recomputed(tmp_path):
    path = tmp_path / "images.npy"
    np.save(path, np.zeros((147, 3)))                 # an old cache of other images
    with pytest.warns(UserWarning, match="no manifest"):
        X = cache.cached_array(path, [f"im{i}" for i in range(4)], "dinov2-vitb14", None, lambda: np.ones((4, 3)))
    assert X.shape == (4, 3)
    with pytest.raises(ValueError, match="3 rows for 4 images"):
        cache.cached_array(tmp_path / "b.npy", list("abcd"), "x", None, lambda: np.ones((3, 3)))
    assert not (tmp_path / "b.npy").exists()


def test_expected_sizes_come_from_the_registry_and_a_scratch_one_overrides(tmp_path, monkeypatch):
    assert resources.expected("mirflickr25k_images") == 25_000
    assert resources.expected("laion_vocab_size") == 10_000
    assert resources.expected("cifar10_md5")["test_batch"] == "40351d587109b95175f43aff81a1287e"
    assert resources.EXPECTED_KEY not in resources.load_registry()
    scratch = tmp_path / "registry.yaml"
    scratch.write_text("_expected: {laion_vocab_size: 7}\nx:\n  files: [{mirror: a/b.txt, url: u, sha256: null}]\n")
    monkeypatch.setenv(resources.REGISTRY_ENV, str(scratch))
    assert resources.expected("laion_vocab_size") == 7
    assert list(resources.load_registry()) == ["x"]
    monkeypatch.setenv(resources.REGISTRY_ENV, str(tmp_path / "missing.yaml"))
    with pytest.raises(resources.ResourceError, match="missing.yaml"):
        resources.load_registry()


def test_u_slics_skips_a_concept_without_pseudo_labels(monkeypatch):
    from test_slics_clip import _tiny_set

    from slics.captions import word_captions
    from slics.core.dictionary import SLiCS
    from slics.evaluation import SLiCSMethod, retrieval_pairs

    rs = _tiny_set()
    rs.X = rs.X / np.linalg.norm(rs.X, axis=1, keepdims=True)
    train = rs.rows("train")
    pseudo = np.zeros((train.size, 2), dtype=bool)
    pseudo[:, 0] = True                              # concept "b" left empty
    with pytest.raises(ValueError, match="no training samples"):
        SLiCS(n_atoms=2, n_iter=2).fit(rs.X[train], pseudo)
    method = SLiCSMethod(2, 2, labels="pseudo")
    monkeypatch.setattr(method, "training_labels", lambda rs: pseudo)
    with pytest.warns(UserWarning, match="pseudo-labelled with b"):
        fitted = method.fit(rs)
    model = fitted.model
    assert len(fitted.notes) == 1 and "skipped" in fitted.notes[0]
    Q = rs.X[:3]
    assert np.array_equal(model.project(Q, 1), Q)                  # skipped: unfiltered
    assert np.allclose(model.project(Q, 0), model.model.project(Q, 0))
    assert model.atom_concept_.tolist() == [0, 0] and model.dictionary_.shape == (2, rs.X.shape[1])
    captions = word_captions(model, rs.vocab, [f"w{i}" for i in range(20)], n_words=3,
                             concept_names=rs.data.general_names)
    assert len(captions["a"]) == 3 and captions["b"] == []
    assert len(retrieval_pairs(rs, fitted, rs.rows("query"), rs.rows("pool"), k=5)) > 0
    full = SLiCSMethod(2, 2, labels="true").fit(rs)                  # every concept has rows: nothing skipped
    assert type(full.model).__name__ == "SLiCS" and full.notes == []


def test_missing_split_names_the_stage(tmp_path, monkeypatch):
    from slics.embedding.retrieval_set import load_set

    monkeypatch.setenv("SLICS_DATA_DIR", str(tmp_path))
    with pytest.raises(FileNotFoundError, match="embed_coco"):
        load_set("coco", {"profile": "full", "embed": {"backbone": "clip-vit-b32"}})


def test_tsne_on_tiny_sets_caps_perplexity_and_refuses_too_few_points():
    from slics.sections import retrieval_figures as figs

    X = np.random.default_rng(0).standard_normal((6, 4))
    assert figs.tsne_2d(X, perplexity=30, seed=0).shape == (6, 2)      # scikit-learn alone refuses 30 >= 6
    with pytest.raises(ValueError, match="at least 3 points"):
        figs.tsne_2d(X[:2], perplexity=30, seed=0)
