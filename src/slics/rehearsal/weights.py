"""Random weights for every real architecture, where the loading code looks for the real ones.

Each checkpoint is a ``safetensors`` file of a freshly initialised model (float16, to halve the
disk), written into a Hugging Face hub cache folder in the hub's own layout
(``models--<org>--<name>/snapshots/<revision>/<file>`` and ``refs/main``), so that
``huggingface_hub.try_to_load_from_cache`` finds it offline and the project's loaders
(:func:`slics.embedding.encoders.cached_weights`, :func:`slics.embedding.vision.resolve_hub_weights`,
:func:`slics.embedding.vision.titok_weights`) run unchanged.
"""

from __future__ import annotations

import os
from pathlib import Path

REVISION = "0" * 40        # a fake commit: the snapshot folder the cache's refs/main points at


def hub_path(cache: str | Path, repo: str, filename: str) -> Path:
    """Where the hub cache ``cache`` keeps ``filename`` of model repository ``repo``."""
    return Path(cache) / f"models--{repo.replace('/', '--')}" / "snapshots" / REVISION / filename


def write_hub_file(cache: str | Path, repo: str, filename: str, state_dict) -> Path:
    """Save ``state_dict`` (float16) as ``filename`` of ``repo`` in the hub cache; return its path."""
    from safetensors.torch import save_file

    dest = hub_path(cache, repo, filename)
    dest.parent.mkdir(parents=True, exist_ok=True)
    tensors = {k: (v.half() if v.is_floating_point() else v).contiguous().clone() for k, v in state_dict.items()}
    tmp = dest.with_name(f".{dest.name}.tmp")
    save_file(tensors, str(tmp))
    os.replace(tmp, dest)
    refs = Path(cache) / f"models--{repo.replace('/', '--')}" / "refs" / "main"
    refs.parent.mkdir(parents=True, exist_ok=True)
    refs.write_text(REVISION)
    return dest


def open_clip_weights(cache: str | Path, model_name: str, tag: str = "openai") -> Path:
    """Random weights of open_clip ``model_name`` under the hub name of its ``tag``."""
    import open_clip
    from open_clip.constants import HF_SAFE_WEIGHTS_NAME
    from open_clip.pretrained import get_pretrained_cfg

    cfg = get_pretrained_cfg(model_name, tag)
    repo = cfg["hf_hub"].rstrip("/")
    model = open_clip.create_model(model_name, pretrained=None, force_quick_gelu=bool(cfg.get("quick_gelu")))
    return write_hub_file(cache, repo, HF_SAFE_WEIGHTS_NAME, model.state_dict())


def dino_weights(cache: str | Path) -> Path:
    """Random DINOv2 ViT-B/14 (timm, 518-pixel position grid like the real checkpoint)."""
    import timm

    from ..embedding.vision import DINO_HUB_REPO, DINO_TIMM_NAME

    model = timm.create_model(DINO_TIMM_NAME, pretrained=False, num_classes=0)
    return write_hub_file(cache, DINO_HUB_REPO, "model.safetensors", model.state_dict())


def titok_weights(cache: str | Path) -> Path:
    """Random TiTok-L-32 encoder, latent tokens and codebook, with the reference parameter names."""
    from ..embedding.vision import TITOK_HUB_REPO, TITOK_L32, TITOK_WEIGHTS, _titok_modules

    return write_hub_file(cache, TITOK_HUB_REPO, TITOK_WEIGHTS[0], _titok_modules(TITOK_L32).state_dict())


def write_weights(cache: str | Path, clip_backbone: str = "clip-vit-b32") -> dict[str, Path]:
    """Write every checkpoint the full profile loads: the CLIP model of ``clip_backbone`` and the
    ViT-B/32 and ViT-L/14 of section 3.7, DINOv2 and TiTok; return {name: path}."""
    from ..embedding.encoders import CLIP_BACKBONES
    from ..sections.image_to_prompt import SOURCE_BACKBONE, TARGET_MODEL

    written = {name: open_clip_weights(cache, *CLIP_BACKBONES[name])
               for name in dict.fromkeys((clip_backbone, SOURCE_BACKBONE))}
    written["clip-vit-l14"] = open_clip_weights(cache, *TARGET_MODEL)
    written["dinov2-vitb14"] = dino_weights(cache)
    written["titok-l32"] = titok_weights(cache)
    return written
