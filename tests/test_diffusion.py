"""Image-to-prompt generation path on a tiny randomly initialised Stable unCLIP pipeline (no weights)."""

import json

import numpy as np
import pytest

diffusers = pytest.importorskip("diffusers")
transformers = pytest.importorskip("transformers")

from slics.embedding.diffusion import generate_from_embeddings, load_unclip_pipeline  # noqa: E402
from slics.embedding.encoders import BackboneUnavailableError  # noqa: E402

EMB = 32


def tiny_tokenizer(folder):
    """A CLIP BPE tokenizer over a tiny vocabulary (enough for the empty prompt)."""
    from transformers import CLIPTokenizer

    letters = [chr(c) for c in range(ord("a"), ord("z") + 1)]
    vocab = {"<|startoftext|>": 0, "<|endoftext|>": 1, "!": 2}
    for ch in letters:
        vocab.setdefault(ch, len(vocab))
        vocab.setdefault(ch + "</w>", len(vocab))
    (folder / "vocab.json").write_text(json.dumps(vocab))
    (folder / "merges.txt").write_text("#version: 0.2\n")
    return CLIPTokenizer(str(folder / "vocab.json"), str(folder / "merges.txt"), model_max_length=77)


def tiny_unclip(folder):
    import torch
    from diffusers import AutoencoderKL, DDIMScheduler, DDPMScheduler, StableUnCLIPImg2ImgPipeline, UNet2DConditionModel
    from diffusers.pipelines.stable_diffusion.stable_unclip_image_normalizer import StableUnCLIPImageNormalizer
    from transformers import (CLIPImageProcessor, CLIPTextConfig, CLIPTextModel, CLIPVisionConfig,
                              CLIPVisionModelWithProjection)

    torch.manual_seed(0)
    tokenizer = tiny_tokenizer(folder)
    text_encoder = CLIPTextModel(CLIPTextConfig(
        bos_token_id=0, eos_token_id=1, pad_token_id=1, hidden_size=EMB, projection_dim=EMB, intermediate_size=37,
        num_attention_heads=4, num_hidden_layers=2, vocab_size=len(tokenizer), max_position_embeddings=77))
    image_encoder = CLIPVisionModelWithProjection(CLIPVisionConfig(
        hidden_size=EMB, projection_dim=EMB, num_hidden_layers=2, num_attention_heads=4, image_size=32,
        intermediate_size=37, patch_size=4))
    unet = UNet2DConditionModel(
        sample_size=8, in_channels=4, out_channels=4, down_block_types=("CrossAttnDownBlock2D", "DownBlock2D"),
        up_block_types=("UpBlock2D", "CrossAttnUpBlock2D"), block_out_channels=(32, 64), attention_head_dim=(2, 4),
        class_embed_type="projection", projection_class_embeddings_input_dim=2 * EMB, cross_attention_dim=EMB,
        layers_per_block=1, upcast_attention=True, use_linear_projection=True, norm_num_groups=8)
    vae = AutoencoderKL(block_out_channels=(16, 16), in_channels=3, out_channels=3, latent_channels=4,
                        down_block_types=("DownEncoderBlock2D", "DownEncoderBlock2D"),
                        up_block_types=("UpDecoderBlock2D", "UpDecoderBlock2D"), norm_num_groups=8)
    return StableUnCLIPImg2ImgPipeline(
        feature_extractor=CLIPImageProcessor(crop_size=32, size=32), image_encoder=image_encoder,
        image_normalizer=StableUnCLIPImageNormalizer(embedding_dim=EMB),
        image_noising_scheduler=DDPMScheduler(beta_schedule="squaredcos_cap_v2"),
        tokenizer=tokenizer, text_encoder=text_encoder, unet=unet,
        scheduler=DDIMScheduler(beta_schedule="scaled_linear", beta_start=0.00085, beta_end=0.012,
                                prediction_type="v_prediction", set_alpha_to_one=False, steps_offset=1),
        vae=vae).to("cpu")


@pytest.fixture(scope="module")
def pipe(tmp_path_factory):
    return tiny_unclip(tmp_path_factory.mktemp("tok"))


def test_generation_from_embeddings_runs_and_is_seeded(pipe):
    rng = np.random.default_rng(0)
    E = rng.standard_normal((2, EMB)).astype(np.float32)
    imgs = generate_from_embeddings(pipe, E, seed=3, n_steps=2, guidance_scale=2.0, output_type="np")
    assert len(imgs) == 2 and imgs[0].shape == (16, 16, 3)
    assert np.all(np.isfinite(imgs[0])) and imgs[0].min() >= 0 and imgs[0].max() <= 1
    again = generate_from_embeddings(pipe, E[1:], seed=4, n_steps=2, guidance_scale=2.0, output_type="np")
    np.testing.assert_allclose(again[0], imgs[1], atol=1e-5)   # row i's image depends on seed + i only
    other = generate_from_embeddings(pipe, -E[1:], seed=4, n_steps=2, guidance_scale=2.0, output_type="np")
    assert not np.allclose(other[0], imgs[1])                  # the embedding conditions the image


def test_generation_checks_the_embedding_width(pipe):
    with pytest.raises(ValueError, match="conditioned on 32"):
        generate_from_embeddings(pipe, np.zeros((1, 5)), n_steps=1)


def test_unclip_weights_fail_fast_offline(monkeypatch, tmp_path):
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    monkeypatch.setenv("HF_HUB_CACHE", str(tmp_path))
    with pytest.raises(BackboneUnavailableError, match="huggingface-cli download"):
        load_unclip_pipeline()
