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


WRITERS = {   # registry loader -> writer of random weights where that loader looks
    "slics.embedding.encoders:load_open_clip": lambda cache, spec: open_clip_weights(
        cache, spec.options["model"], spec.options["pretrained"]),
    "slics.embedding.vision:load_dinov2": lambda cache, spec: dino_weights(cache),
    "slics.embedding.vision:load_titok": lambda cache, spec: titok_weights(cache),
}


def full_backbones(params: dict) -> list[str]:
    """The registry backbones whose weights a full-profile run of ``params`` loads."""
    ip = params["image_to_prompt"]["full"]
    names = [params["embed"]["backbone"], ip["source_backbone"], ip["target_backbone"],
             params["slics_titok"]["backbone"]["full"], params["slics_dino"]["backbone"]["full"],
             *params["slics_clip"]["backbones"]["full"]]
    return list(dict.fromkeys(names))


def write_weights(cache: str | Path, params: dict) -> dict[str, Path]:
    """Write every checkpoint a full-profile run of ``params`` loads (the registry says which loader
    each backbone uses); return {backbone: path}."""
    from ..embedding.registry import get_spec

    written = {}
    for name in full_backbones(params):
        spec = get_spec(name)
        if spec.loader not in WRITERS:
            raise ValueError(f"the rehearsal cannot write random weights for backbone {name!r} "
                             f"(loader {spec.loader}); add a writer to slics.rehearsal.weights.WRITERS.")
        written[name] = WRITERS[spec.loader](cache, spec)
    return written
