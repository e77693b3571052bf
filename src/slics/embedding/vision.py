"""Image-only backbones of the SLiCS paper's section 4.4: DINOv2 ViT-B/14 and the TiTok-L-32 tokenizer.

Both return float64 arrays, one row per image, with the paper's normalisation and no mean
removal (section 4.1):

* ``dinov2-vitb14``: timm ``vit_base_patch14_dinov2.lvd142m`` (the official DINOv2 ViT-B/14
  weights, hub repository ``timm/vit_base_patch14_dinov2.lvd142m``), the 768-d CLS token
  after the final norm, L2-normalised. timm's default input is 518 pixels; the model is
  built with ``img_size=224`` (timm resamples the position embeddings on loading, bicubic)
  and fed DINOv2's evaluation transform: resize the shorter side to 256 (bicubic), centre
  crop 224, ImageNet mean and std.
* ``titok-l32``: the encoder of TiTok-L-32 (Yu et al., 2024; bytedance ``1d-tokenizer``),
  a ViT-L (width 1024, 24 layers, 16 heads, patches of 16) over a 256-pixel image in
  [0, 1] (no mean/std) plus 32 learned latent tokens, each mapped by a 1x1 convolution to
  12 numbers: the embedding is the 32 tokens *before quantisation*, each L2-normalised (as
  the tokenizer's own quantiser does before its nearest-codeword search), concatenated
  (384 numbers, norm ``sqrt(32)``). ``1d-tokenizer`` has no pip package, so the encoder is
  re-implemented here with the same parameter names as the reference code
  (``TITOK_SOURCE``), so that the hub checkpoint ``yucornetto/tokenizer_titok_l32_imagenet``
  loads into it; its quantiser codebook (4,096 x 12, normalised) is :meth:`TiTokBackbone.codebook`.

Weights come from the Hugging Face cache; offline without them both raise
:class:`~slics.embedding.encoders.BackboneUnavailableError` before building anything.
``pretrained=False`` builds the architecture with random weights (the tests).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from .encoders import (HF_HOST, BackboneUnavailableError, _default_device, unit_rows, can_reach,
                       encode_image_batches, offline_mode)

DINO_TIMM_NAME = "vit_base_patch14_dinov2.lvd142m"
DINO_HUB_REPO = "timm/vit_base_patch14_dinov2.lvd142m"
DINO_TRANSFORM = {"resize": 256, "crop": 224, "interpolation": "bicubic",
                  "mean": (0.485, 0.456, 0.406), "std": (0.229, 0.224, 0.225)}

# The reference implementation and the checkpoint of TiTok-L-32.
TITOK_SOURCE = {"repository": "https://github.com/bytedance/1d-tokenizer",
                "revision": "10113ad343ff9d96f966423edede76ba990599d0",       # modeling/modules/blocks.py, titok.py
                "files": ["modeling/modules/blocks.py", "modeling/titok.py", "configs/titok_l32.yaml"]}
TITOK_HUB_REPO = "yucornetto/tokenizer_titok_l32_imagenet"
TITOK_WEIGHTS = ("model.safetensors", "pytorch_model.bin")
TITOK_RESOURCE = ("titok_l32", "titok/tokenizer_titok_l32_imagenet/model.safetensors")   # resources.yaml


def _hub_file(repo: str, names) -> str | None:
    """Local path of the first of ``names`` of hub ``repo`` that is in the cache, else None."""
    from huggingface_hub import try_to_load_from_cache

    for name in names:
        found = try_to_load_from_cache(repo, name)
        if isinstance(found, str):
            return found
    return None


def resolve_hub_weights(repo: str, names, what: str) -> str:
    """The cached weights file of ``repo``, downloaded when online; raises at once when offline."""
    found = _hub_file(repo, names)
    if found:
        return found
    if offline_mode() or not can_reach(HF_HOST):
        why = "offline mode is set" if offline_mode() else f"{HF_HOST} cannot be reached"
        raise BackboneUnavailableError(
            f"The {what} weights ({repo}) are not in the Hugging Face cache and {why}. Download them on a "
            f"connected machine with\n    huggingface-cli download {repo}\nthen copy ~/.cache/huggingface/hub "
            "(or $HF_HOME/hub) to this machine.")
    from huggingface_hub import hf_hub_download

    errors = []
    for name in names:
        try:
            return hf_hub_download(repo, name)
        except Exception as err:              # the next file name
            errors.append(f"{name}: {err}")
    raise BackboneUnavailableError(f"could not download the {what} weights from {repo}: {'; '.join(errors)}")


def titok_weights() -> str:
    """The TiTok-L-32 checkpoint: the Hugging Face cache, else the registered resource (``titok_l32``).

    Offline with neither, raises :class:`BackboneUnavailableError` at once; online, the resource
    is fetched (mirror first, then its URL; its sha256, not registered yet, is pinned on first use).
    """
    found = _hub_file(TITOK_HUB_REPO, TITOK_WEIGHTS)
    if found:
        return found
    from ..data.resources import external_dir, resource_path

    name, member = TITOK_RESOURCE
    local = external_dir() / member
    if local.is_file():
        return str(local)
    if offline_mode():
        raise BackboneUnavailableError(
            f"The TiTok-L-32 weights ({TITOK_HUB_REPO}) are not in the Hugging Face cache nor at {local}, and "
            f"offline mode is set. Download them on a connected machine with\n    huggingface-cli download "
            f"{TITOK_HUB_REPO}\n(or `python -m slics.data.resources fetch {name}`) and copy them here.")
    return str(resource_path(name, member))


# --------------------------------------------------------------------------------------------- DINOv2

def dino_transform():
    """DINOv2's evaluation transform: resize 256 (bicubic), centre crop 224, ImageNet mean/std."""
    from torchvision import transforms as T

    t = DINO_TRANSFORM
    return T.Compose([T.Resize(t["resize"], interpolation=T.InterpolationMode.BICUBIC, antialias=True),
                      T.CenterCrop(t["crop"]), T.ToTensor(), T.Normalize(t["mean"], t["std"])])


class DinoV2Backbone:
    """DINOv2 ViT-B/14 through timm: ``encode_images`` gives unit 768-d CLS embeddings."""

    dim = 768

    def __init__(self, pretrained: bool = True, device=None, name: str = "DINOv2 ViT-B/14"):
        import timm

        self.name = name
        self.device = _default_device(device)
        kwargs = dict(img_size=DINO_TRANSFORM["crop"], num_classes=0, global_pool="token")
        if pretrained:
            path = resolve_hub_weights(DINO_HUB_REPO, ("model.safetensors", "pytorch_model.bin"), "DINOv2 ViT-B/14")
            kwargs.update(pretrained=True, pretrained_cfg_overlay={"file": path})
        self.model = timm.create_model(DINO_TIMM_NAME, **kwargs).eval().to(self.device)
        if self.model.num_features != self.dim:
            raise RuntimeError(f"{DINO_TIMM_NAME} gives {self.model.num_features}-d features, expected {self.dim}.")
        self.transform = dino_transform()

    def encode_images(self, images, batch_size: int = 64, progress: bool = True) -> np.ndarray:
        """Unit CLS embeddings (n, 768) of PIL images."""
        X = encode_image_batches(lambda x: self.model(x.to(self.device)), self.transform, images, batch_size, progress, self.name)
        return unit_rows(X)


# ---------------------------------------------------------------------------------------------- TiTok

@dataclass(frozen=True)
class TiTokConfig:
    """Encoder sizes of a TiTok tokenizer (TiTok-L-32 by default)."""

    image_size: int = 256
    patch_size: int = 16
    width: int = 1024
    layers: int = 24
    heads: int = 16
    n_tokens: int = 32
    token_size: int = 12
    codebook_size: int = 4096


TITOK_L32 = TiTokConfig()


def _titok_modules(cfg: TiTokConfig):
    """The TiTok encoder as torch modules, parameter names as in the reference implementation."""
    import torch
    from torch import nn

    class Block(nn.Module):
        def __init__(self, width, heads):
            super().__init__()
            self.ln_1 = nn.LayerNorm(width)
            self.attn = nn.MultiheadAttention(width, heads)
            self.ln_2 = nn.LayerNorm(width)
            self.mlp = nn.Sequential()
            self.mlp.add_module("c_fc", nn.Linear(width, 4 * width))
            self.mlp.add_module("gelu", nn.GELU())
            self.mlp.add_module("c_proj", nn.Linear(4 * width, width))

        def forward(self, x):                     # x: (L, N, D)
            h = self.ln_1(x)
            x = x + self.attn(h, h, h, need_weights=False)[0]
            return x + self.mlp(self.ln_2(x))

    class Encoder(nn.Module):
        def __init__(self):
            super().__init__()
            grid = cfg.image_size // cfg.patch_size
            self.grid = grid
            scale = cfg.width ** -0.5
            self.patch_embed = nn.Conv2d(3, cfg.width, kernel_size=cfg.patch_size, stride=cfg.patch_size)
            self.class_embedding = nn.Parameter(scale * torch.randn(1, cfg.width))
            self.positional_embedding = nn.Parameter(scale * torch.randn(grid ** 2 + 1, cfg.width))
            self.latent_token_positional_embedding = nn.Parameter(scale * torch.randn(cfg.n_tokens, cfg.width))
            self.ln_pre = nn.LayerNorm(cfg.width)
            self.transformer = nn.ModuleList([Block(cfg.width, cfg.heads) for _ in range(cfg.layers)])
            self.ln_post = nn.LayerNorm(cfg.width)
            self.conv_out = nn.Conv2d(cfg.width, cfg.token_size, kernel_size=1)

        def forward(self, pixels, latent_tokens):
            n = pixels.shape[0]
            x = self.patch_embed(pixels).flatten(2).permute(0, 2, 1)            # (N, grid^2, D)
            x = torch.cat([self.class_embedding.expand(n, -1, -1), x], dim=1) + self.positional_embedding
            lat = latent_tokens.expand(n, -1, -1) + self.latent_token_positional_embedding
            x = self.ln_pre(torch.cat([x, lat], dim=1)).permute(1, 0, 2)        # (L, N, D)
            for block in self.transformer:
                x = block(x)
            lat = self.ln_post(x.permute(1, 0, 2)[:, 1 + self.grid ** 2:])     # (N, T, D)
            # The released checkpoints are "legacy": the (N, T, D) tokens are *reshaped* (not
            # permuted) to (N, D, T, 1) before the 1x1 convolution, exactly as the reference code.
            lat = self.conv_out(lat.reshape(n, cfg.width, cfg.n_tokens, 1))
            return lat.reshape(n, cfg.token_size, cfg.n_tokens).permute(0, 2, 1)   # (N, T, token_size)

    class Quantiser(nn.Module):
        def __init__(self):
            super().__init__()
            self.embedding = nn.Embedding(cfg.codebook_size, cfg.token_size)

    class TiTokEncoderModel(nn.Module):
        def __init__(self):
            super().__init__()
            self.latent_tokens = nn.Parameter(cfg.width ** -0.5 * torch.randn(cfg.n_tokens, cfg.width))
            self.encoder = Encoder()
            self.quantize = Quantiser()

        def forward(self, pixels):
            return self.encoder(pixels, self.latent_tokens)

    return TiTokEncoderModel()


def titok_transform(image_size: int = 256):
    """TiTok's input: shorter side resized to ``image_size`` (bicubic), centre crop, pixels in [0, 1]."""
    from torchvision import transforms as T

    return T.Compose([T.Resize(image_size, interpolation=T.InterpolationMode.BICUBIC, antialias=True),
                      T.CenterCrop(image_size), T.ToTensor()])


def load_titok_state(model, path: str) -> None:
    """Load the encoder, latent tokens and codebook from a TiTok checkpoint (decoder keys ignored)."""
    import torch

    if path.endswith(".safetensors"):
        from safetensors.torch import load_file

        state = load_file(path)
    else:
        state = torch.load(path, map_location="cpu", weights_only=True)
    wanted = model.state_dict()
    missing = [k for k in wanted if k not in state]
    if missing:
        raise RuntimeError(f"{path} lacks {len(missing)} TiTok encoder parameter(s), e.g. {missing[:3]}: "
                           "not a TiTok-L-32 checkpoint?")
    bad = [k for k in wanted if tuple(state[k].shape) != tuple(wanted[k].shape)]
    if bad:
        raise RuntimeError(f"shape mismatch for {bad[:3]} in {path}.")
    model.load_state_dict({k: state[k] for k in wanted})


class TiTokBackbone:
    """The TiTok-L-32 encoder: ``encode_images`` gives the 32 unit tokens of 12 numbers, concatenated."""

    def __init__(self, pretrained: bool = True, device=None, config: TiTokConfig = TITOK_L32,
                 name: str = "TiTok-L-32"):
        import torch

        self.name = name
        self.config = config
        self.device = _default_device(device)
        self.dim = config.n_tokens * config.token_size
        path = titok_weights() if pretrained else None
        torch.manual_seed(0)
        self.model = _titok_modules(config)
        if path:
            load_titok_state(self.model, path)
        self.model = self.model.eval().to(self.device)
        self.transform = titok_transform(config.image_size)

    def encode_images(self, images, batch_size: int = 32, progress: bool = True) -> np.ndarray:
        """(n, T * token_size): the pre-quantisation tokens of PIL images, each token unit norm."""
        import torch

        def forward(x):
            z = self.model(x.to(self.device))                          # (N, T, token_size)
            return torch.nn.functional.normalize(z, dim=-1).flatten(1)

        X = encode_image_batches(forward, self.transform, images, batch_size, progress, self.name)
        tokens = X.reshape(X.shape[0], self.config.n_tokens, self.config.token_size)
        if not np.all(np.isfinite(tokens)) or np.any(np.linalg.norm(tokens, axis=2) == 0):
            raise FloatingPointError("TiTok returned a zero or non-finite token")
        return np.ascontiguousarray(X, dtype=np.float64)

    def codebook(self) -> np.ndarray:
        """The quantiser's codewords (codebook_size, token_size), L2-normalised as the tokenizer uses them."""
        W = self.model.quantize.embedding.weight.detach().float().cpu().numpy()
        return unit_rows(W)


def load_dinov2(spec, *, pretrained: bool = True, device=None) -> DinoV2Backbone:
    """Registry loader of ``dinov2-vitb14``."""
    return DinoV2Backbone(pretrained=pretrained, device=device, name=spec.name)


def load_titok(spec, *, pretrained: bool = True, device=None) -> TiTokBackbone:
    """Registry loader of ``titok-l32``."""
    return TiTokBackbone(pretrained=pretrained, device=device, name=spec.name)


def dinov2_weights_file(spec) -> str | None:
    """Registry hook: the cached DINOv2 weights file on this machine, or None."""
    return _hub_file(DINO_HUB_REPO, ("model.safetensors", "pytorch_model.bin"))


def titok_weights_file(spec) -> str | None:
    """Registry hook: the cached TiTok-L-32 checkpoint (hub cache or the registered resource), or None."""
    from ..data.resources import external_dir

    local = external_dir() / TITOK_RESOURCE[1]
    return _hub_file(TITOK_HUB_REPO, TITOK_WEIGHTS) or (str(local) if local.is_file() else None)
