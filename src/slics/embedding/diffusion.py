"""Image generation from CLIP image embeddings (optional; the SLiCS paper, section 3.7 and Fig. 11).

Two ways to make an image embedding the condition of Stable Diffusion:

* ``ding2023`` (the paper's): :func:`ding2023_prompt_embeds` converts a CLIP ViT-L/14 image
  embedding into the *prompt* of a text-conditioned Stable Diffusion 1.x (whose text encoder is
  ViT-L/14's) in closed form, with the pseudo-inverse of CLIP's text projection (Ding et al.,
  "The CLIP Model is Secretly an Image-to-Prompt Converter", NeurIPS 2023, arXiv 2305.12716);
  :func:`generate_from_prompt_embeds` runs ``StableDiffusionPipeline`` on it.
* ``unclip``: Stable unCLIP (``stabilityai/stable-diffusion-2-1-unclip-small``) is conditioned
  on a ViT-L/14 *image* embedding directly (``image_embeds`` of diffusers'
  ``StableUnCLIPImg2ImgPipeline``, with an empty text prompt): :func:`generate_from_embeddings`.

This is an optional, full-profile step: it needs the extra ``diffusers`` package
(``pip install -e '.[diffusion]'``) and gigabytes of weights from the Hugging Face hub.
Offline without the weights in the hub cache, :func:`load_pipeline` raises
:class:`~slics.embedding.encoders.BackboneUnavailableError` at once with the command that
downloads them. The tests run both paths on tiny pipelines with random weights built from
configs (no download).
"""

from __future__ import annotations

import numpy as np

from ..utils.validation import check_choice, check_int, check_matrix, check_positive
from .encoders import BackboneUnavailableError, _default_device, offline_mode

UNCLIP_MODEL = "stabilityai/stable-diffusion-2-1-unclip-small"
SD_MODEL = "CompVis/stable-diffusion-v1-4"          # SD 1.x: conditioned on CLIP ViT-L/14's text encoder
METHODS = ("ding2023", "unclip")                     # image_to_prompt.generation.method
PIPELINES = {"ding2023": "StableDiffusionPipeline", "unclip": "StableUnCLIPImg2ImgPipeline"}


def require_diffusers():
    """The ``diffusers`` module, or a clear error saying how to install the optional extra."""
    try:
        import diffusers
    except ImportError as err:
        raise BackboneUnavailableError(
            "Image generation needs the optional package diffusers: `pip install -e '.[diffusion]'` "
            "(or `pip install diffusers`).") from err
    return diffusers


def _snapshot(model: str, revision: str | None) -> str:
    """The local folder of ``model`` in the Hugging Face cache (downloaded when online); fails fast offline."""
    from huggingface_hub import snapshot_download

    try:
        return snapshot_download(model, revision=revision, local_files_only=True)
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
        return snapshot_download(model, revision=revision)


def load_pipeline(method: str = "ding2023", model: str | None = None, revision: str | None = None, device=None):
    """The diffusers pipeline of a generation ``method`` (``ding2023``: Stable Diffusion 1.x, text-conditioned;
    ``unclip``: Stable unCLIP), from the Hugging Face cache; fails fast offline without the weights."""
    method = check_choice(method, "method", METHODS)
    diffusers = require_diffusers()
    path = _snapshot(model or (SD_MODEL if method == "ding2023" else UNCLIP_MODEL), revision)
    pipe = getattr(diffusers, PIPELINES[method]).from_pretrained(path)
    return pipe.to(_default_device(device))


def load_unclip_pipeline(model: str = UNCLIP_MODEL, revision: str | None = None, device=None):
    """Stable unCLIP from the Hugging Face cache (downloaded when online); fails fast offline."""
    return load_pipeline("unclip", model, revision, device)


def ding2023_prompt_embeds(image_embeds, text_projection, template_embeds, eos_position: int, *,
                           atol: float = 0.0):
    r"""CLIP image embeddings as the prompt of a text-conditioned Stable Diffusion (Ding et al., 2023).

    CLIP's text embedding of a prompt is :math:`t = W_t\,\mathrm{LN}(h_{eos})`: the text projection
    :math:`W_t` (``e x h``) applied to the end-of-text token's last hidden state after the final
    layer norm, which is the token-level feature Stable Diffusion's UNet cross-attends to. An image
    embedding :math:`v` lives in the same ``e``-dimensional space as :math:`t`, so the token feature
    whose projection is :math:`v` is found in closed form with the pseudo-inverse, and that feature
    replaces the prompt's end-of-text and padding tokens. For every row :math:`v_i`

    .. math::

        u_i = v_i / \|v_i\|,\qquad g_i = W_t^{+} u_i,\qquad
        c_i = s\, g_i / \|g_i\|,\quad s = \|T_{eos}\|,\qquad
        P_i[p] = T[p]\ (p < eos),\quad P_i[p] = c_i\ (p \ge eos),

    with :math:`T` the encoder's output (77 x h, after the final layer norm) for the template
    prompt. When :math:`W_t` has full row rank and ``atol`` drops no singular value,
    :math:`W_t c_i = (s/\|g_i\|)\,u_i`: projecting the converted token back gives the input's
    direction exactly (the tests check it).

    What Ding et al. specify: that the conversion is a linear projection matrix in closed form,
    obtained from CLIP's own (text) projection, mapping the image embedding to the prompt
    embedding of the text encoder Stable Diffusion reads (their abstract; the SLiCS paper cites
    it for this step). The details below follow our reading and public re-implementations of
    their method, not a quotation of it: the Moore-Penrose pseudo-inverse :math:`W_t^+`, the
    converted token placed after the start token of the empty prompt (the end-of-text position
    and the padding after it). Our choices: the image embedding is normalised first and the
    converted token rescaled to the template's own end-of-text feature norm ``s`` (a scale has to
    be chosen: :math:`W_t^+ u` has no natural norm; ``s`` is the norm of a real token feature the
    UNet saw in training); ``atol`` defaults to the plain pseudo-inverse (only singular values
    below ``max(e, h)`` machine epsilons times the largest are dropped, ``torch.linalg.pinv``'s
    default), while public implementations of the method truncate at 0.3, which Fig. 11 follows
    (``image_to_prompt.generation.pinv_atol: 0.3``); a non-empty template keeps its words
    before the end-of-text token as the encoder gives them.

    Parameters
    ----------
    image_embeds : array or tensor of shape (n, e)
        CLIP ViT-L/14 image embeddings (here Procrustes-aligned concept components); any norm,
        none zero.
    text_projection : array or tensor of shape (e, h)
        :math:`W_t` as ``transformers`` stores it (``CLIPTextModelWithProjection.text_projection.weight``);
        open_clip's ``model.text_projection`` is its transpose.
    template_embeds : tensor of shape (L, h) or (1, L, h)
        The text encoder's last hidden state (after the final layer norm) for the template
        prompt, e.g. from :func:`template_prompt`.
    eos_position : int
        Index of the template's end-of-text token (1 for the empty prompt).
    atol : float, default 0.0
        Singular values of :math:`W_t` at or below ``atol`` are left out of the pseudo-inverse.

    Returns
    -------
    torch.Tensor of shape (n, L, h)
        ``prompt_embeds`` for ``StableDiffusionPipeline`` (dtype and device of ``template_embeds``).
    """
    import torch

    T = torch.as_tensor(template_embeds)
    T = T[0] if T.ndim == 3 and T.shape[0] == 1 else T
    if T.ndim != 2:
        raise ValueError(f"template_embeds must have shape (L, h) or (1, L, h), got {tuple(torch.as_tensor(template_embeds).shape)}.")
    L, h = T.shape
    eos = check_int(eos_position, "eos_position", minimum=0, maximum=L - 1)
    W = torch.as_tensor(check_matrix(np.asarray(torch.as_tensor(text_projection).detach().cpu(), dtype=np.float64),
                                     "text_projection"))
    if W.shape[1] != h:
        raise ValueError(f"text_projection has shape {tuple(W.shape)}: its {W.shape[1]} columns must be the text "
                         f"encoder's hidden width {h} (transformers stores (e, h); transpose open_clip's).")
    V = torch.as_tensor(check_matrix(np.asarray(torch.as_tensor(image_embeds).detach().cpu(), dtype=np.float64),
                                     "image_embeds", n_cols=W.shape[0]))
    norms = V.norm(dim=1, keepdim=True)
    if bool((norms == 0).any()):
        raise ValueError("image_embeds has a zero row: a zero embedding has no direction to convert.")
    atol = check_positive(atol, "atol", allow_zero=True)
    pinv = torch.linalg.pinv(W, atol=atol) if atol > 0 else torch.linalg.pinv(W)
    G = (V / norms) @ pinv.T                                         # g_i = W_t^+ u_i, as rows
    s = T[eos].detach().to(torch.float64).norm()
    C = (s * G / G.norm(dim=1, keepdim=True)).to(dtype=T.dtype, device=T.device)
    P = T.detach().unsqueeze(0).repeat(V.shape[0], 1, 1)
    P[:, eos:] = C[:, None, :]
    return P


def template_prompt(pipe, template: str = ""):
    """The text encoder's output for ``template`` (L, h) and the index of its end-of-text token.

    As ``StableDiffusionPipeline`` encodes a prompt: padded to the tokenizer's length, the
    encoder's last hidden state (after the final layer norm).
    """
    import torch

    tok = pipe.tokenizer
    ids = tok(template, padding="max_length", max_length=tok.model_max_length, truncation=True,
              return_tensors="pt").input_ids
    eos = torch.nonzero(ids[0] == tok.eos_token_id)
    if eos.numel() == 0:
        raise ValueError(f"the template {template!r} fills all {tok.model_max_length} tokens: no end-of-text token.")
    with torch.inference_mode():
        hidden = pipe.text_encoder(ids.to(pipe.device))[0][0]
    return hidden, int(eos[0, 0])


def _seeded_images(call, n: int, seed: int) -> list:
    """``call(i, generator)`` for every row ``i``, each with ``torch.Generator().manual_seed(seed + i)``."""
    import torch

    images = []
    for i in range(n):
        images.extend(call(i, torch.Generator(device="cpu").manual_seed(int(seed) + i)).images)
    return images


def generate_from_prompt_embeds(pipe, prompt_embeds, *, seed: int = 0, n_steps: int = 25,
                                guidance_scale: float = 7.5, height: int | None = None, width: int | None = None,
                                output_type: str = "pil"):
    """One image per prompt of ``prompt_embeds`` (n, L, h) with a text-conditioned ``StableDiffusionPipeline``.

    Seeded as :func:`generate_from_embeddings`: image ``i`` depends on ``seed + i`` and its own
    prompt only. The negative prompt is the pipeline's default (the empty prompt).
    """
    import torch

    P = torch.as_tensor(prompt_embeds)
    width_in = int(pipe.text_encoder.config.hidden_size)
    if P.ndim != 3 or P.shape[2] != width_in:
        raise ValueError(f"prompt_embeds must have shape (n, tokens, {width_in}), got {tuple(P.shape)}.")
    P = P.to(device=pipe.device, dtype=pipe.text_encoder.dtype)
    return _seeded_images(lambda i, g: pipe(prompt_embeds=P[i:i + 1], num_inference_steps=int(n_steps),
                                            guidance_scale=float(guidance_scale), generator=g, height=height,
                                            width=width, output_type=output_type), P.shape[0], seed)


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
    row = lambda i: torch.from_numpy(E[i:i + 1]).to(device=pipe.device, dtype=pipe.unet.dtype)  # noqa: E731
    return _seeded_images(lambda i, g: pipe(image_embeds=row(i), prompt="", num_inference_steps=int(n_steps),
                                            guidance_scale=float(guidance_scale), noise_level=int(noise_level),
                                            generator=g, height=height, width=width, output_type=output_type),
                          E.shape[0], seed)
