"""DINOv2 and TiTok image backbones on fixture PNGs with random weights; offline failures."""

import numpy as np
import pytest
from PIL import Image

from slics.embedding.encoders import BackboneUnavailableError
from slics.embedding import vision
from slics.embedding.registry import load_backbone
from slics.embedding.vision import (DINO_TRANSFORM, DinoV2Backbone, TiTokBackbone, TiTokConfig, dino_transform,
                                    load_titok_state, titok_transform)

TINY = TiTokConfig(image_size=32, patch_size=8, width=32, layers=2, heads=4, n_tokens=4, token_size=3,
                   codebook_size=16)


@pytest.fixture(scope="module")
def images(tmp_path_factory):
    """Three PNG files of different sizes and aspect ratios, read back as PIL images."""
    folder = tmp_path_factory.mktemp("png")
    rng = np.random.default_rng(0)
    out = []
    for i, (h, w) in enumerate([(300, 200), (180, 260), (256, 256)]):
        arr = rng.integers(0, 256, (h, w, 3), dtype=np.uint8)
        Image.fromarray(arr).save(folder / f"im{i}.png")
        out.append(Image.open(folder / f"im{i}.png"))
    return out


@pytest.fixture
def offline(monkeypatch, tmp_path):
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    monkeypatch.setattr(vision, "_hub_file", lambda repo, names: None)


def test_dino_transform_is_the_official_eval_transform(images):
    x = dino_transform()(images[0].convert("RGB"))
    assert tuple(x.shape) == (3, 224, 224)
    # an image of constant ImageNet-mean colour maps to zeros
    mean = np.array(DINO_TRANSFORM["mean"])
    flat = Image.fromarray(np.full((300, 400, 3), np.round(mean * 255), dtype=np.uint8))
    y = dino_transform()(flat).numpy()
    assert np.abs(y).max() < 0.01


@pytest.mark.slow
def test_dino_random_weights_gives_unit_768d_cls(images):
    model = DinoV2Backbone(pretrained=False, device="cpu")
    assert model.model.patch_embed.img_size == (224, 224)        # not timm's 518 default
    X = model.encode_images(images, batch_size=2, progress=False)
    assert X.shape == (3, 768) and X.dtype == np.float64
    np.testing.assert_allclose(np.linalg.norm(X, axis=1), 1.0, rtol=1e-5)
    # the CLS token of the model's own forward_features, normalised
    import torch

    with torch.inference_mode():
        ref = model.model.forward_features(dino_transform()(images[1].convert("RGB"))[None])[:, 0].numpy()
    np.testing.assert_allclose(X[1], ref[0] / np.linalg.norm(ref[0]), rtol=1e-4, atol=1e-5)


def test_titok_transform_keeps_pixels_in_unit_range(images):
    x = titok_transform(256)(images[1].convert("RGB"))
    assert tuple(x.shape) == (3, 256, 256) and float(x.min()) >= 0 and float(x.max()) <= 1


def test_titok_tokens_are_unit_and_match_a_manual_forward(images):
    import torch

    model = TiTokBackbone(pretrained=False, device="cpu", config=TINY)
    X = model.encode_images(images, batch_size=2, progress=False)
    assert X.shape == (3, TINY.n_tokens * TINY.token_size)
    tokens = X.reshape(3, TINY.n_tokens, TINY.token_size)
    np.testing.assert_allclose(np.linalg.norm(tokens, axis=2), 1.0, rtol=1e-5)
    # independent forward of the reference layout: (N, C, 1, T) -> rearrange to (N, 1, T, C) -> normalise
    enc = model.model.encoder
    with torch.inference_mode():
        px = titok_transform(TINY.image_size)(images[2].convert("RGB"))[None]
        n = 1
        x = enc.patch_embed(px).reshape(n, TINY.width, -1).permute(0, 2, 1)
        x = torch.cat([enc.class_embedding[None].expand(n, -1, -1), x], 1) + enc.positional_embedding
        lat = model.model.latent_tokens[None] + enc.latent_token_positional_embedding
        x = enc.ln_pre(torch.cat([x, lat], 1)).permute(1, 0, 2)
        for blk in enc.transformer:
            x = blk(x)
        lat = enc.ln_post(x.permute(1, 0, 2)[:, 1 + (TINY.image_size // TINY.patch_size) ** 2:])
        z = enc.conv_out(lat.reshape(n, TINY.width, TINY.n_tokens, 1)).reshape(n, TINY.token_size, 1, TINY.n_tokens)
        z = z.permute(0, 2, 3, 1)[0, 0]                                           # (T, C)
        z = torch.nn.functional.normalize(z, dim=-1).numpy()
    np.testing.assert_allclose(tokens[2], z, rtol=1e-4, atol=1e-5)
    C = model.codebook()
    assert C.shape == (16, 3)
    np.testing.assert_allclose(np.linalg.norm(C, axis=1), 1.0, rtol=1e-6)


def test_titok_l32_parameter_names_and_shapes_match_the_reference_checkpoint():
    import torch

    with torch.device("meta"):
        model = vision._titok_modules(vision.TITOK_L32)
    shapes = {k: tuple(v.shape) for k, v in model.state_dict().items()}
    assert shapes["latent_tokens"] == (32, 1024)
    assert shapes["encoder.patch_embed.weight"] == (1024, 3, 16, 16)
    assert shapes["encoder.positional_embedding"] == (257, 1024)
    assert shapes["encoder.transformer.23.attn.in_proj_weight"] == (3072, 1024)
    assert shapes["encoder.transformer.0.mlp.c_fc.weight"] == (4096, 1024)
    assert shapes["encoder.conv_out.weight"] == (12, 1024, 1, 1)
    assert shapes["quantize.embedding.weight"] == (4096, 12)
    assert "encoder.transformer.24.ln_1.weight" not in shapes


def test_titok_state_loading_round_trip_and_errors(tmp_path):
    import torch
    from safetensors.torch import save_file

    src = TiTokBackbone(pretrained=False, device="cpu", config=TINY)
    state = {k: v.clone() + 1.0 for k, v in src.model.state_dict().items()}
    state["decoder.ffn.0.weight"] = torch.zeros(2, 2)                    # decoder keys are ignored
    save_file(state, str(tmp_path / "model.safetensors"))
    dst = vision._titok_modules(TINY)
    load_titok_state(dst, str(tmp_path / "model.safetensors"))
    torch.testing.assert_close(dst.quantize.embedding.weight, state["quantize.embedding.weight"])
    del state["encoder.ln_post.bias"]
    save_file(state, str(tmp_path / "bad.safetensors"))
    with pytest.raises(RuntimeError, match="lacks 1 TiTok encoder parameter"):
        load_titok_state(vision._titok_modules(TINY), str(tmp_path / "bad.safetensors"))


@pytest.mark.parametrize("name", ["dinov2-vitb14", "titok-l32"])
def test_pretrained_backbones_fail_fast_offline(name, offline):
    with pytest.raises(BackboneUnavailableError, match="huggingface-cli download"):
        load_backbone(name)
