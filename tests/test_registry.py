"""The backbone registry and the paper's preprocessing per backbone."""

from __future__ import annotations

import numpy as np
import pytest

from slics import preprocess
from slics.embedding import registry
from slics.embedding.registry import BackboneSpec, get_spec, load_backbone, register_backbone
from slics.evaluation import evaluate


class FakeEncoder:
    """A seeded linear 'image encoder' whose rows are 4 tokens of 6 numbers."""

    def __init__(self, spec, pretrained, device):
        self.name, self.dim = spec.name, spec.dim
        self.W = np.random.default_rng(0 if pretrained else 1).standard_normal((10, spec.dim))

    def encode_images(self, images, batch_size=8, progress=False):
        return np.asarray(images, dtype=np.float64) @ self.W


def load_fake(spec, *, pretrained=True, device=None):
    return FakeEncoder(spec, pretrained, device)


@pytest.fixture
def fake_backbone():
    spec = register_backbone(BackboneSpec("test-fake-tokens", 24, "tokens", loader=f"{__name__}:load_fake",
                                          n_tokens=4, title="a fake tokenised encoder"))
    yield spec
    registry.unregister_backbone(spec.name)


def test_every_entry_is_consistent():
    for name in registry.backbone_names():
        spec = get_spec(name)
        assert spec.preprocessing in preprocess.KINDS
        assert spec.images in ("encoder", "simulated", "files") or spec.images in registry.backbone_names()
    assert registry.embed_backbones("demo") == ("demo",)
    assert set(registry.embed_backbones("full")) >= {"clip-vit-b32", "clip-rn50"}
    assert get_spec("titok-l32").quantisable and not get_spec("dinov2-vitb14").quantisable
    assert registry.embeddings_source("demo-titok") == "demo-titok"      # its own rendering (demo_spaces)
    assert not get_spec("demo-dino").text_tower and get_spec("demo-dino").dim == 768


def test_registry_errors_name_the_problem():
    with pytest.raises(ValueError, match="unknown backbone 'nope'; registered backbones: demo"):
        get_spec("nope")
    with pytest.raises(ValueError, match="already registered"):
        register_backbone(BackboneSpec("demo", 384, "centre"))
    with pytest.raises(ValueError, match="n_tokens is required"):
        BackboneSpec("x", 24, "tokens")
    with pytest.raises(ValueError, match="not a multiple of n_tokens"):
        BackboneSpec("x", 25, "tokens", n_tokens=4)
    with pytest.raises(ValueError, match="preprocessing must be one of"):
        BackboneSpec("x", 24, "whiten")
    with pytest.raises(ValueError, match="has no encoder"):
        load_backbone("precomputed")


def test_a_new_backbone_is_one_entry_and_its_loader(fake_backbone):
    """Registered here and nowhere else: it loads, preprocesses and runs the retrieval evaluation."""
    rng = np.random.default_rng(3)
    n = 240
    general = rng.random((n, 3)) < 0.4
    general[~general.any(axis=1), 0] = True
    images = general @ rng.standard_normal((3, 10)) + 0.3 * rng.standard_normal((n, 10))
    encoder = load_backbone(fake_backbone.name, pretrained=True)
    X = encoder.encode_images(images)
    split = np.array(["train"] * 120 + ["val"] * 20 + ["query"] * 40 + ["pool"] * 60, dtype=object)
    from slics.embedding.retrieval_set import RetrievalSet

    rs = RetrievalSet.from_arrays(X, general, split, general_names=["a", "b", "c"], backbone=fake_backbone.name)
    np.testing.assert_allclose(np.linalg.norm(rs.X.reshape(n, 4, 6), axis=2), 1.0)   # its own preprocessing
    X_pre, mean = preprocess.preprocess_for(X, fake_backbone.name)
    assert X_pre.tobytes() == rs.X.tobytes() and not mean.any()
    table = evaluate(rs, ["UF", "S-SVD", "S-SLiCS"], options={"n_atoms": 2, "n_iter": 2}, k=10).set_index("method")
    assert list(table.index) == ["UF", "S-SVD", "S-SLiCS"]
    assert (table["map_general"] > 0).all() and (table["map_general"] <= 1).all()
    assert table.loc["S-SLiCS", "map_general"] > table.loc["UF", "map_general"]     # filtering helps here
    with pytest.raises(ValueError, match="X has 23 columns but backbone 'test-fake-tokens' gives 24-d"):
        preprocess.preprocess_for(X[:, :23], fake_backbone.name)


def test_centre_follows_its_formula_and_the_mean_of_unit_rows():
    rng = np.random.default_rng(0)
    X = rng.standard_normal((50, 7)) * rng.uniform(0.5, 3, (50, 1))          # rows of any length
    train = np.arange(30)
    got, mean = preprocess.preprocess_for(X, "precomputed", train=train)
    U = X / np.sqrt((X ** 2).sum(axis=1))[:, None]                            # written out, not the helper
    ref_mean = U[train].sum(axis=0) / len(train)
    np.testing.assert_allclose(mean, ref_mean, rtol=1e-12)
    C = U - ref_mean
    np.testing.assert_allclose(got, C / np.sqrt((C ** 2).sum(axis=1))[:, None], rtol=1e-12)
    # rows already of unit length are averaged as they are (bit for bit)
    assert preprocess.image_mean(U).tobytes() == U.mean(axis=0).tobytes()
    with pytest.raises(ValueError, match="needs mean="):
        preprocess.preprocess(X, "centre")
    with pytest.raises(ValueError, match="mean must be a finite vector of length 7"):
        preprocess.centre(X, np.zeros(6))
