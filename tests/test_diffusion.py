"""Image-to-prompt generation on tiny randomly initialised pipelines (no weights): Stable unCLIP, and
Stable Diffusion with the Ding et al. (2023) image-to-prompt conversion."""

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


def tiny_parts(folder, **unet_options):
    """Tokenizer, CLIP text encoder, UNet and VAE of a tiny Stable Diffusion (random weights, seeded)."""
    import torch
    from diffusers import AutoencoderKL, UNet2DConditionModel
    from transformers import CLIPTextConfig, CLIPTextModel

    torch.manual_seed(0)
    tokenizer = tiny_tokenizer(folder)
    text_encoder = CLIPTextModel(CLIPTextConfig(
        bos_token_id=0, eos_token_id=1, pad_token_id=1, hidden_size=EMB, projection_dim=EMB, intermediate_size=37,
        num_attention_heads=4, num_hidden_layers=2, vocab_size=len(tokenizer), max_position_embeddings=77))
    unet = UNet2DConditionModel(
        sample_size=8, in_channels=4, out_channels=4, down_block_types=("CrossAttnDownBlock2D", "DownBlock2D"),
        up_block_types=("UpBlock2D", "CrossAttnUpBlock2D"), block_out_channels=(32, 64), attention_head_dim=(2, 4),
        cross_attention_dim=EMB, layers_per_block=1, norm_num_groups=8, **unet_options)
    vae = AutoencoderKL(block_out_channels=(16, 16), in_channels=3, out_channels=3, latent_channels=4,
                        down_block_types=("DownEncoderBlock2D", "DownEncoderBlock2D"),
                        up_block_types=("UpDecoderBlock2D", "UpDecoderBlock2D"), norm_num_groups=8)
    return tokenizer, text_encoder, unet, vae


def tiny_unclip(folder):
    from diffusers import DDIMScheduler, DDPMScheduler, StableUnCLIPImg2ImgPipeline
    from diffusers.pipelines.stable_diffusion.stable_unclip_image_normalizer import StableUnCLIPImageNormalizer
    from transformers import CLIPImageProcessor, CLIPVisionConfig, CLIPVisionModelWithProjection

    tokenizer, text_encoder, unet, vae = tiny_parts(
        folder, class_embed_type="projection", projection_class_embeddings_input_dim=2 * EMB, upcast_attention=True,
        use_linear_projection=True)
    image_encoder = CLIPVisionModelWithProjection(CLIPVisionConfig(
        hidden_size=EMB, projection_dim=EMB, num_hidden_layers=2, num_attention_heads=4, image_size=32,
        intermediate_size=37, patch_size=4))
    return StableUnCLIPImg2ImgPipeline(
        feature_extractor=CLIPImageProcessor(crop_size=32, size=32), image_encoder=image_encoder,
        image_normalizer=StableUnCLIPImageNormalizer(embedding_dim=EMB),
        image_noising_scheduler=DDPMScheduler(beta_schedule="squaredcos_cap_v2"),
        tokenizer=tokenizer, text_encoder=text_encoder, unet=unet,
        scheduler=DDIMScheduler(beta_schedule="scaled_linear", beta_start=0.00085, beta_end=0.012,
                                prediction_type="v_prediction", set_alpha_to_one=False, steps_offset=1),
        vae=vae).to("cpu")


def tiny_sd(folder):
    """A tiny text-conditioned ``StableDiffusionPipeline`` (SD 1.x layout: epsilon prediction, no safety checker)."""
    from diffusers import DDIMScheduler, StableDiffusionPipeline

    tokenizer, text_encoder, unet, vae = tiny_parts(folder)
    return StableDiffusionPipeline(
        vae=vae, text_encoder=text_encoder, tokenizer=tokenizer, unet=unet,
        scheduler=DDIMScheduler(beta_schedule="scaled_linear", beta_start=0.00085, beta_end=0.012,
                                clip_sample=False, set_alpha_to_one=False, steps_offset=1),
        safety_checker=None, feature_extractor=None, requires_safety_checker=False).to("cpu")


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


# ------------------------------------------------------------------ Ding et al. (2023): image to prompt

PROJ = 24          # the text projection's output width e (< h = EMB: a wide W_t of full row rank)


@pytest.fixture(scope="module")
def sd(tmp_path_factory):
    return tiny_sd(tmp_path_factory.mktemp("tok_sd"))


def _numpy_conversion(V, W, T, eos, atol=0.0):
    """The formula of ding2023_prompt_embeds in numpy: SVD pseudo-inverse, written out independently."""
    U, S, Vt = np.linalg.svd(W, full_matrices=False)
    cutoff = atol if atol > 0 else max(W.shape) * np.finfo(float).eps * S.max()
    keep = S > cutoff
    pinv = (Vt[keep].T / S[keep]) @ U[:, keep].T
    out = np.repeat(T[None], len(V), axis=0)
    for i, v in enumerate(V):
        g = pinv @ (v / np.linalg.norm(v))
        out[i, eos:] = np.linalg.norm(T[eos]) * g / np.linalg.norm(g)
    return out


def test_ding2023_conversion_matches_numpy_and_projects_back_to_the_input(sd):
    from slics.embedding.diffusion import ding2023_prompt_embeds, template_prompt

    rng = np.random.default_rng(1)
    W = rng.standard_normal((PROJ, EMB))
    V = rng.standard_normal((3, PROJ)) * np.array([[0.5], [3.0], [40.0]])
    T, eos = template_prompt(sd, "")
    assert eos == 1 and T.shape == (77, EMB)
    P = ding2023_prompt_embeds(V, W, T, eos)
    assert tuple(P.shape) == (3, 77, EMB)
    Tn = T.double().numpy()
    np.testing.assert_allclose(P.double().numpy(), _numpy_conversion(V, W, Tn, eos), rtol=1e-5, atol=1e-5)
    np.testing.assert_allclose(P.double().numpy()[:, :eos], np.repeat(Tn[None, :eos], 3, axis=0))   # SOS kept
    tokens = P.double().numpy()[:, eos]
    back = tokens @ W.T                                     # W_t c_i: the CLIP text embedding of the token
    cos = np.sum(back * V, axis=1) / np.linalg.norm(back, axis=1) / np.linalg.norm(V, axis=1)
    np.testing.assert_allclose(cos, 1.0, atol=1e-6)         # the input's direction, whatever its norm
    np.testing.assert_allclose(np.linalg.norm(tokens, axis=1), np.linalg.norm(Tn[eos]), rtol=1e-6)
    # the minimum-norm preimage: the token lies in W_t's row space (no component W_t cannot see)
    null = np.linalg.svd(W)[2][PROJ:]
    np.testing.assert_allclose(tokens @ null.T, 0.0, atol=1e-5)


def test_ding2023_conversion_of_a_text_embedding_gives_back_its_own_token(sd):
    """A square, invertible W_t (as ViT-L/14's 768 x 768): converting CLIP's *text* embedding of a prompt
    recovers that prompt's own end-of-text token feature (its direction; the norm is the template's)."""
    import torch
    from transformers import CLIPTextModelWithProjection

    from slics.embedding.diffusion import ding2023_prompt_embeds, template_prompt

    torch.manual_seed(4)
    clip = CLIPTextModelWithProjection(sd.text_encoder.config)      # projection_dim = hidden: square W_t
    encoder = sd.text_encoder                                       # the pipeline's own encoder (transformers 4: .text_model)
    clip.text_model.load_state_dict(getattr(encoder, "text_model", encoder).state_dict())
    ids = sd.tokenizer("a b", padding="max_length", max_length=77, return_tensors="pt").input_ids
    with torch.inference_mode():
        out = clip(ids)
    token = out.last_hidden_state[0, 3].double().numpy()            # SOS, a, b, EOS: after the final layer norm
    W = clip.text_projection.weight.detach().double().numpy()
    np.testing.assert_allclose(out.text_embeds[0].double().numpy(), W @ token, rtol=1e-5, atol=1e-6)
    T, eos = template_prompt(sd, "")
    P = ding2023_prompt_embeds(out.text_embeds, W, T, eos)[0].double().numpy()
    s = np.linalg.norm(T[eos].double().numpy())
    np.testing.assert_allclose(P[eos:], np.repeat((s * token / np.linalg.norm(token))[None], 77 - eos, axis=0),
                               rtol=1e-4, atol=1e-5)


def test_ding2023_conversion_truncation_and_template(sd):
    from slics.embedding.diffusion import ding2023_prompt_embeds, template_prompt

    rng = np.random.default_rng(2)
    U, _, Vt = np.linalg.svd(rng.standard_normal((PROJ, EMB)), full_matrices=False)
    S = np.geomspace(5.0, 0.01, PROJ)
    W = (U * S) @ Vt
    V = rng.standard_normal((2, PROJ))
    T, eos = template_prompt(sd, "a b")
    assert eos == 3                                          # SOS, a, b, EOS: the words stay
    P = ding2023_prompt_embeds(V, W, T, eos, atol=0.3)
    np.testing.assert_allclose(P.double().numpy(), _numpy_conversion(V, W, T.double().numpy(), eos, atol=0.3),
                               rtol=1e-5, atol=1e-5)
    np.testing.assert_allclose(P[:, :eos].numpy(), np.repeat(T[None, :eos].numpy(), 2, axis=0))
    with pytest.raises(ValueError, match="zero row"):
        ding2023_prompt_embeds(np.zeros((1, PROJ)), W, T, eos)
    with pytest.raises(ValueError, match="hidden width"):
        ding2023_prompt_embeds(V, W.T, T, eos)
    with pytest.raises(ValueError, match="columns"):
        ding2023_prompt_embeds(np.ones((1, 5)), W, T, eos)


def test_generation_from_prompt_embeds_is_seeded_and_conditioned(sd):
    from slics.embedding.diffusion import ding2023_prompt_embeds, generate_from_prompt_embeds, template_prompt

    rng = np.random.default_rng(3)
    W, V = rng.standard_normal((PROJ, EMB)), rng.standard_normal((2, PROJ))
    P = ding2023_prompt_embeds(V, W, *template_prompt(sd))
    imgs = generate_from_prompt_embeds(sd, P, seed=5, n_steps=2, guidance_scale=2.0, output_type="np")
    assert len(imgs) == 2 and imgs[0].shape == (16, 16, 3) and np.all(np.isfinite(imgs[0]))
    again = generate_from_prompt_embeds(sd, P[1:], seed=6, n_steps=2, guidance_scale=2.0, output_type="np")
    np.testing.assert_allclose(again[0], imgs[1], atol=1e-5)
    other = ding2023_prompt_embeds(-V[1:], W, *template_prompt(sd))
    assert not np.allclose(generate_from_prompt_embeds(sd, other, seed=6, n_steps=2, guidance_scale=2.0,
                                                       output_type="np")[0], imgs[1])
    with pytest.raises(ValueError, match="shape"):
        generate_from_prompt_embeds(sd, P[:, :, :5], n_steps=1)


def test_sd_weights_fail_fast_offline(monkeypatch, tmp_path):
    from slics.embedding.diffusion import load_pipeline

    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    monkeypatch.setenv("HF_HUB_CACHE", str(tmp_path))
    with pytest.raises(BackboneUnavailableError, match="stable-diffusion-v1-4"):
        load_pipeline("ding2023")
    with pytest.raises(ValueError, match="method"):
        load_pipeline("dalle")


def test_fig11_end_to_end_with_the_chosen_k(sd, tmp_path, monkeypatch):
    """``generate`` on a tiny world: chosen K of section 03, Procrustes map, Ding et al.'s prompts, Fig. 11 PNG."""
    import slics.embedding.diffusion as diffusion
    import slics.embedding.retrieval_set as retrieval_set
    import slics.evaluation as evaluation
    from slics.embedding.retrieval_set import RetrievalSet
    from slics.sections import image_generation as gen
    from slics.sections import image_to_prompt as sec
    from slics.utils.config import load_params

    rng = np.random.default_rng(7)
    n, d_src, C = 60, 16, 3
    Y = np.zeros((n, C), dtype=bool)
    Y[np.arange(n), rng.integers(0, C, n)] = True
    Y[::3, (np.arange(0, n, 3) // 3 + 1) % C] = True               # every third row has two concepts
    atoms = rng.standard_normal((C, d_src))
    X = Y @ atoms + 0.1 * rng.standard_normal((n, d_src))
    split = np.array(["train"] * 30 + ["val"] * 6 + ["query"] * 12 + ["pool"] * 12, dtype=object)
    rs = RetrievalSet.from_arrays(X, Y, split, general_names=["cat", "dog", "car"], dataset="coco",
                                  image_ids=[f"img{i}.jpg" for i in range(n)])
    flickr = rng.standard_normal((80, d_src))
    R0 = np.linalg.qr(rng.standard_normal((PROJ, PROJ)))[0][:d_src]
    flickr_tgt = flickr @ R0 + 0.01 * rng.standard_normal((80, PROJ))
    W = rng.standard_normal((PROJ, EMB))
    fitted_k = []

    class Spy(evaluation.SLiCSMethod):
        def __init__(self, n_atoms, *args, **kwargs):
            fitted_k.append(n_atoms)
            super().__init__(n_atoms, *args, **kwargs)

    monkeypatch.setattr(diffusion, "load_pipeline", lambda method, model, device=None: sd)
    monkeypatch.setattr(sec, "full_embeddings", lambda params, device=None: (flickr, flickr_tgt))
    monkeypatch.setattr(gen, "clip_text_projection", lambda backbone, device=None: W)
    monkeypatch.setattr(gen, "chosen_k", lambda dataset, backbone: {("coco", "clip-vit-b32"): 3}[dataset, backbone])
    monkeypatch.setattr(gen, "query_images", lambda rs_, rows: [rng.random((16, 16, 3)) for _ in rows])
    monkeypatch.setattr(retrieval_set, "load_set", lambda dataset, params, backbone: {"clip-vit-b32": rs}[backbone])
    monkeypatch.setattr(evaluation, "SLiCSMethod", Spy)
    cutoffs = []
    convert = diffusion.ding2023_prompt_embeds

    def spy_convert(*args, atol=0.0):
        cutoffs.append(atol)
        return convert(*args, atol=atol)

    monkeypatch.setattr(diffusion, "ding2023_prompt_embeds", spy_convert)
    monkeypatch.setenv("SLICS_RESULTS_DIR", str(tmp_path))
    params = load_params()
    params.update(profile="full", embed={**params["embed"], "backbone": "clip-vit-b32"})
    params["image_to_prompt"].update(n_train=40, n_test=20)
    params["image_to_prompt"]["generation"].update(enabled=True, n_steps=2, n_queries=2, pinv_atol=0.25)
    dest = gen.generate(params)
    assert dest == tmp_path / "figures" / gen.FIGURE and dest.stat().st_size > 0
    assert fitted_k == [3]                                           # the K stage 03 chose, not k_grid[0]
    assert cutoffs == [0.25, 0.25]                                   # one conversion per query, at pinv_atol
    from PIL import Image

    with Image.open(dest) as img:
        assert img.format == "PNG" and img.width > img.height      # two rows: query + up to two concepts each


def test_fig11_with_the_unclip_alternative(pipe):
    """``method: unclip``: the aligned components, at the norm of the query's own unCLIP embedding."""
    from PIL import Image

    from slics.sections import image_generation as gen

    rng = np.random.default_rng(8)
    R = np.linalg.qr(rng.standard_normal((EMB, EMB)))[0][:10]
    alignment = {"R": R, "source_mean": np.zeros(10), "target_mean": 0.1 * rng.standard_normal(EMB)}
    image = Image.fromarray((rng.random((32, 32, 3)) * 255).astype(np.uint8))
    comps = {"cat": rng.standard_normal(10), "dog": rng.standard_normal(10)}
    cond = gen.conditions("unclip", pipe, np.array(list(comps.values())), alignment, image=image)
    assert cond.shape == (2, EMB)
    np.testing.assert_allclose(np.linalg.norm(cond, axis=1), np.linalg.norm(cond[0]), rtol=1e-5)
    fig = gen.generation_figure(pipe, "unclip", [{"title": "q", "image": image, "components": comps}], alignment,
                                {"n_steps": 2, "guidance_scale": 2.0, "noise_level": 0}, seed=0)
    assert len(fig.axes) == 3
    with pytest.raises(ValueError, match="text_projection"):
        gen.conditions("ding2023", pipe, np.ones((1, 10)), alignment)
    with pytest.raises(ValueError, match="generation.method"):
        gen.conditions("dalle", pipe, np.ones((1, 10)), alignment)
