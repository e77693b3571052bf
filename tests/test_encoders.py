"""Backbones: the demo text tower, the open_clip code path (random weights) and fail-fast offline."""

from __future__ import annotations

import time

import numpy as np
import pytest
import torch
from PIL import Image

from slics.embedding import encoders
from slics.embedding.encoders import BackboneUnavailableError, ModelIntegrityError, OpenClipBackbone, cached_weights
from slics.embedding.registry import get_spec, load_backbone as get_backbone


@pytest.fixture(scope="module")
def demo():
    return get_backbone("demo")


def test_demo_text_encoder_unit_float64_deterministic(demo):
    prompts = ["a photo of a cat", "a photo of a kitten", "a photo of a truck"]
    E = demo.encode_text(prompts)
    assert demo.name == "demo" and demo.dim == 384          # the registry names it
    assert E.shape == (3, 384) and E.dtype == np.float64
    np.testing.assert_allclose(np.linalg.norm(E, axis=1), 1.0, atol=1e-12)
    # the model itself runs in float64 (the precision contract of slics.embedding.encoders):
    # padding a prompt into a batch then changes it by rounding alone, far below float32's 1e-7
    assert {p.dtype for p in demo.model.parameters()} == {torch.float64}
    np.testing.assert_allclose(demo.encode_text(prompts, batch_size=1), E, atol=1e-12)
    assert demo.encode_text(prompts).tobytes() == E.tobytes()
    assert E[0] @ E[1] > E[0] @ E[2] + 0.1        # a real text model: cat is nearer kitten than truck


def test_demo_checks_the_weights_sha256(monkeypatch):
    assert encoders.minilm_path().name == "model"
    monkeypatch.setattr(encoders, "MINILM_SHA256", "0" * 64)
    with pytest.raises(ModelIntegrityError, match="sha256 mismatch .*model.safetensors"):
        get_backbone("demo")


def test_prompt_and_backbone_errors(demo):
    with pytest.raises(ValueError, match="empty list of prompts"):
        demo.encode_text([])
    with pytest.raises(TypeError, match="not a single string"):
        demo.encode_text("a photo of a cat")
    with pytest.raises(ValueError, match="batch_size"):
        demo.encode_text(["x"], batch_size=0)
    with pytest.raises(NotImplementedError, match="simulator"):
        demo.encode_images([Image.new("RGB", (32, 32))])
    with pytest.raises(ValueError, match="unknown backbone 'clip-vit-h14'; registered backbones: demo, clip-vit-b32"):
        get_backbone("clip-vit-h14")


def _synthetic_images():
    rng = np.random.default_rng(0)
    return [Image.fromarray(rng.integers(0, 256, (32, 32, 3), dtype=np.uint8)),
            Image.fromarray(rng.integers(0, 256, (48, 64, 3), dtype=np.uint8)),   # non-square
            Image.fromarray(rng.integers(0, 256, (40, 40), dtype=np.uint8))]      # greyscale


@pytest.fixture(scope="module")
def random_clip():
    import torch

    torch.manual_seed(0)
    return OpenClipBackbone("ViT-B-32", pretrained=None, device="cpu", name="test-vit-b32")


def test_open_clip_random_weights_encode(random_clip):
    assert random_clip.dim == 512
    T = random_clip.encode_text(["a photo of a cat", "a photo of a dog"])
    X = random_clip.encode_images(_synthetic_images(), batch_size=2, progress=False)
    for A, n in ((T, 2), (X, 3)):
        assert A.shape == (n, 512) and A.dtype == np.float64
        np.testing.assert_allclose(np.linalg.norm(A, axis=1), 1.0, atol=1e-5)
    # batching does not change results; (image, label) datasets are accepted
    X_one = random_clip.encode_images([(im, 0) for im in _synthetic_images()], batch_size=8, progress=False)
    np.testing.assert_allclose(X, X_one, atol=1e-5)


def test_convolutional_tower_runs_channels_last_with_the_same_embeddings(random_clip):
    """RN50's image tower runs in channels-last layout (faster on CPU); the plain layout of the same
    open_clip model, run here directly, gives the same unit embeddings to float32 rounding."""
    import torch

    torch.manual_seed(1)
    rn50 = OpenClipBackbone("RN50", pretrained=None, device="cpu", name="test-rn50")
    assert rn50.channels_last and not random_clip.channels_last      # ViT's patch conv is a plain reshape
    images = _synthetic_images()
    X = rn50.encode_images(images, batch_size=2, progress=False)
    rn50.model.visual.to(memory_format=torch.contiguous_format)
    pixels = torch.stack([rn50.preprocess(im.convert("RGB")) for im in images])
    assert pixels.is_contiguous()
    with torch.inference_mode():
        plain = rn50.model.encode_image(pixels).double().numpy()
    plain /= np.linalg.norm(plain, axis=1, keepdims=True)
    np.testing.assert_allclose(X, plain, atol=1e-5)
    assert X.shape == (3, 1024)


def test_open_clip_preprocessing_is_224_clip_normalised(random_clip):
    pixels = random_clip.preprocess(Image.new("RGB", (32, 32), (255, 255, 255)))
    assert tuple(pixels.shape) == (3, 224, 224)
    mean, std = np.array([0.48145466, 0.4578275, 0.40821073]), np.array([0.26862954, 0.26130258, 0.27577711])
    np.testing.assert_allclose(pixels[:, 0, 0].numpy(), (1 - mean) / std, rtol=1e-5)


def test_open_clip_offline_without_weights_fails_fast(tmp_path, monkeypatch):
    import open_clip  # noqa: F401  (imported before timing)

    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    start = time.perf_counter()
    with pytest.raises(BackboneUnavailableError,
                       match=r"create_model_and_transforms\('ViT-B-32', pretrained='openai'\)"):
        OpenClipBackbone("ViT-B-32", "openai", device="cpu", cache_dir=tmp_path)
    assert time.perf_counter() - start < 5


def test_unreachable_hub_fails_fast_too(tmp_path, monkeypatch):
    for var in encoders.OFFLINE_VARS:
        monkeypatch.delenv(var, raising=False)
    monkeypatch.setattr(encoders, "can_reach", lambda host, *a, **k: False)
    with pytest.raises(BackboneUnavailableError, match="(?s)cannot be reached.*'RN50'"):
        OpenClipBackbone("RN50", "openai", device="cpu", cache_dir=tmp_path)


def test_cached_weights_are_found_in_the_hub_cache(tmp_path):
    """The fail-fast check looks where open_clip downloads to (safetensors first)."""
    assert cached_weights("ViT-B-32", "openai", tmp_path) is None
    repo = tmp_path / "models--timm--vit_base_patch32_clip_224.openai"
    snap = repo / "snapshots" / "abc123"
    snap.mkdir(parents=True)
    (repo / "refs").mkdir()
    (repo / "refs" / "main").write_text("abc123")
    (snap / "open_clip_pytorch_model.bin").write_bytes(b"x")
    assert cached_weights("ViT-B-32", "openai", tmp_path) == snap / "open_clip_pytorch_model.bin"
    (snap / "open_clip_model.safetensors").write_bytes(b"x")
    assert cached_weights("ViT-B-32", "openai", tmp_path) == snap / "open_clip_model.safetensors"


def test_openai_tag_is_built_with_its_quickgelu_and_preprocessing(tmp_path, monkeypatch):
    """open_clip 3 builds plain ViT-B-32/RN50 with nn.GELU, but OpenAI's weights need QuickGELU:
    the backbone must pass the tag's settings, and load the cached file without any download."""
    import open_clip
    import torch

    calls = {}

    class FakeModel:
        visual = torch.nn.Sequential()       # open_clip models have an image tower

        def eval(self):
            return self

        def encode_text(self, tokens):
            return torch.ones(tokens.shape[0], 7)

    def fake_create(model_name, **kwargs):
        calls.update(kwargs, model_name=model_name)
        return FakeModel(), None, "preprocess"

    weights = tmp_path / "open_clip_model.safetensors"
    monkeypatch.setattr(encoders, "cached_weights", lambda *a, **k: weights)
    monkeypatch.setattr(open_clip, "create_model_and_transforms", fake_create)
    backbone = encoders.load_open_clip(get_spec("clip-rn50"), device="cpu")   # the registry's loader (the fake has dim 7)
    assert calls["model_name"] == "RN50" and calls["pretrained"] == str(weights)
    assert calls["force_quick_gelu"] is True
    assert calls["image_interpolation"] == "bicubic" and calls["image_resize_mode"] == "shortest"
    np.testing.assert_allclose(calls["image_mean"], (0.48145466, 0.4578275, 0.40821073))
    assert backbone.name == "clip-rn50" and backbone.dim == 7
