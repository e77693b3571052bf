"""Image generation from embeddings with Stable unCLIP (optional; the SLiCS paper, section 3.7 and Fig. 11).

Stable Diffusion's unCLIP variant ``stabilityai/stable-diffusion-2-1-unclip-small`` is
conditioned on a CLIP ViT-L/14 *image* embedding (768 numbers) instead of, or beside, a
text prompt: :func:`generate_from_embeddings` passes an aligned concept component as that
embedding (``image_embeds`` of diffusers' ``StableUnCLIPImg2ImgPipeline``) with an empty
text prompt, which is how an image embedding becomes the prompt here.

This is an optional, full-profile step: it needs the extra ``diffusers`` package
(``pip install -e '.[diffusion]'``) and about 5 GB of weights from the Hugging Face hub.
Offline without the weights in the hub cache, :func:`load_unclip_pipeline` raises
:class:`~slics.embedding.encoders.BackboneUnavailableError` at once with the command that
downloads them. The tests run :func:`generate_from_embeddings` on a tiny pipeline with
random weights built from configs (no download).
"""

from __future__ import annotations

import numpy as np

from .encoders import BackboneUnavailableError, _default_device, offline_mode

UNCLIP_MODEL = "stabilityai/stable-diffusion-2-1-unclip-small"


def require_diffusers():
    """The ``diffusers`` module, or a clear error saying how to install the optional extra."""
    try:
        import diffusers
    except ImportError as err:
        raise BackboneUnavailableError(
            "Image generation needs the optional package diffusers: `pip install -e '.[diffusion]'` "
            "(or `pip install diffusers`).") from err
    return diffusers


def load_unclip_pipeline(model: str = UNCLIP_MODEL, revision: str | None = None, device=None):
    """Stable unCLIP from the Hugging Face cache (downloaded when online); fails fast offline."""
    diffusers = require_diffusers()
    from huggingface_hub import snapshot_download

    try:
        path = snapshot_download(model, revision=revision, local_files_only=True)
    except Exception as err:                      # not in the cache
        if offline_mode():
            raise BackboneUnavailableError(
                f"The weights of {model} are not in the Hugging Face cache and offline mode is set. "
                f"Download them on a connected machine with\n    huggingface-cli download {model}"
                + (f" --revision {revision}" if revision else "")
                + "\nthen copy ~/.cache/huggingface/hub to this machine.") from err
        from .encoders import HF_HOST, can_reach

        if not can_reach(HF_HOST):
            raise BackboneUnavailableError(f"{model} is not cached and {HF_HOST} cannot be reached.") from err
        path = snapshot_download(model, revision=revision)
    pipe = diffusers.StableUnCLIPImg2ImgPipeline.from_pretrained(path)
    return pipe.to(_default_device(device))


def generate_from_embeddings(pipe, embeddings, *, seed: int = 0, n_steps: int = 25, guidance_scale: float = 10.0,
                             noise_level: int = 0, height: int | None = None, width: int | None = None,
                             output_type: str = "pil"):
    """One image per row of ``embeddings`` (n, e), the rows used as the pipeline's image embeddings.

    Seeded: each image ``i`` draws its initial latents from ``torch.Generator().manual_seed(seed + i)``,
    so a row's image does not depend on the other rows. ``e`` must be the pipeline's
    conditioning width (``unet.config.projection_class_embeddings_input_dim / 2``).
    """
    import torch

    E = np.asarray(embeddings, dtype=np.float32)
    if E.ndim != 2:
        raise ValueError(f"embeddings must be a 2-D array (images, dims), got shape {E.shape}.")
    width_in = int(pipe.unet.config.projection_class_embeddings_input_dim) // 2
    if E.shape[1] != width_in:
        raise ValueError(f"embeddings have {E.shape[1]} dims but the pipeline is conditioned on {width_in}.")
    device = pipe.device
    dtype = pipe.unet.dtype
    images = []
    for i, row in enumerate(E):
        generator = torch.Generator(device="cpu").manual_seed(int(seed) + i)
        out = pipe(image_embeds=torch.from_numpy(row[None]).to(device=device, dtype=dtype), prompt="",
                   num_inference_steps=int(n_steps), guidance_scale=float(guidance_scale),
                   noise_level=int(noise_level), generator=generator, height=height, width=width,
                   output_type=output_type)
        images.extend(out.images)
    return images
