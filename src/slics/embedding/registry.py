"""The backbone registry: the one place that names every backbone of the compendium.

A backbone is an entry (:class:`BackboneSpec`) that says what its embeddings are: their
dimension, the paper's preprocessing of them (section 4.1), whether it has a text tower
(zero-shot pseudo-labels, SpLiCE's vocabulary, word captions need one), where its image
embeddings come from, and how to build its encoder. Every other module asks the registry;
adding a backbone is one :func:`register_backbone` call plus its loader::

    from slics.embedding.registry import BackboneSpec, register_backbone

    register_backbone(BackboneSpec(name="my-vit", dim=768, preprocessing="unit",
                                   loader="my_package.encoders:load_my_vit"))

where ``load_my_vit(spec, *, pretrained, device)`` returns an object with ``encode_images``.

Preprocessing kinds (:mod:`slics.preprocess` applies them):

* ``"centre"``: unit rows, subtract an image mean, renormalise (CLIP; the mean is SpLiCE's
  precomputed one where ``mean_resource`` names it, else the mean of the training rows);
* ``"tokens"``: each of ``n_tokens`` equal slices of a row normalised (TiTok); no mean;
* ``"unit"``: unit rows, no mean (DINOv2).

Image sources: ``"encoder"`` (the loader's ``encode_images`` on real images),
``"simulated"`` (the demo world, :mod:`slics.embedding.simulator`; the image-only demo
backbones render its scenes on demand, :mod:`slics.embedding.demo_spaces`), ``"files"``
(embeddings a user brings), or the name of another backbone whose cached image embeddings
stand in.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from importlib import import_module

PREPROCESSING = ("centre", "tokens", "unit")
PROFILES = ("demo", "full", "any")


@dataclass(frozen=True)
class BackboneSpec:
    """One backbone: what its embeddings are and how to get them.

    Parameters
    ----------
    name : str
        Registry key (also the folder under ``data/embeddings/``).
    dim : int or None
        Embedding dimension (None: taken from the files, for ``precomputed``).
    preprocessing : {"centre", "tokens", "unit"}
        The paper's preprocessing of its image embeddings (see the module docstring).
    loader : str or None
        ``"module:attribute"`` of a callable ``(spec, *, pretrained: bool, device) -> encoder``
        whose result has ``name``, ``dim``, ``encode_images`` (and ``encode_text`` when
        ``text_tower``); None when the embeddings are not computed by the compendium.
    text_tower : bool
        Whether the encoder embeds text in the image space.
    profile : {"demo", "full", "any"}
        The ``params.yaml`` profile the backbone belongs to.
    images : str
        Where image embeddings come from: ``"encoder"``, ``"simulated"``, ``"files"``, or
        the name of the backbone whose cached embeddings stand in.
    n_tokens : int, optional
        Tokens per row for ``preprocessing="tokens"`` (rows are ``n_tokens`` equal slices).
    mean_resource : str, optional
        Resource member (``splice_means`` in ``slics.data.resources``) holding the precomputed
        image mean removed by ``"centre"``; default the mean of the training rows.
    label : str, optional
        How tables name the backbone (default ``name``).
    paper_case : str, optional
        How the SLiCS paper names it in its cases ("RN", "ViT": "MIR/ViT"), where it does.
    title : str, optional
        The model in words, for notebooks and the README.
    options : dict, optional
        Loader arguments (e.g. open_clip's model name and pretrained tag).
    """

    name: str
    dim: int | None
    preprocessing: str
    loader: str | None = None
    text_tower: bool = False
    profile: str = "full"
    images: str = "encoder"
    n_tokens: int | None = None
    mean_resource: str | None = None
    label: str | None = None
    paper_case: str | None = None
    title: str = ""
    options: dict = field(default_factory=dict)

    def __post_init__(self):
        if self.preprocessing not in PREPROCESSING:
            raise ValueError(f"backbone {self.name!r}: preprocessing must be one of {PREPROCESSING}, "
                             f"got {self.preprocessing!r}.")
        if self.profile not in PROFILES:
            raise ValueError(f"backbone {self.name!r}: profile must be one of {PROFILES}, got {self.profile!r}.")
        if (self.preprocessing == "tokens") != (self.n_tokens is not None):
            raise ValueError(f"backbone {self.name!r}: n_tokens is required with preprocessing='tokens' "
                             "and only then.")
        if self.dim is not None and self.n_tokens and self.dim % self.n_tokens:
            raise ValueError(f"backbone {self.name!r}: dim {self.dim} is not a multiple of n_tokens {self.n_tokens}.")

    @property
    def display(self) -> str:
        return self.label or self.name

    @property
    def quantisable(self) -> bool:
        """Whether its rows are tokens that a product quantiser can code (TiTok's pool)."""
        return self.preprocessing == "tokens"

    def weights_file(self) -> str | None:
        """The pretrained weights file cached on this machine (``options["weights"]``, a
        ``"module:function"`` of ``spec``), or None when there is none or it is not cached."""
        ref = self.options.get("weights")
        if ref is None:
            return None
        module, _, attr = ref.partition(":")
        found = getattr(import_module(module), attr)(self)
        return None if found is None else str(found)

    def load(self, pretrained: bool = True, device=None):
        """Build the encoder (``pretrained=False``: the architecture with random weights)."""
        if self.loader is None:
            raise ValueError(f"backbone {self.name!r} has no encoder in the compendium: its embeddings come "
                             f"from {self.images}.")
        module, _, attr = self.loader.partition(":")
        encoder = getattr(import_module(module), attr)(self, pretrained=pretrained, device=device)
        if self.dim is not None and int(encoder.dim) != self.dim:
            raise ValueError(f"backbone {self.name!r}: its encoder gives {encoder.dim}-d embeddings, "
                             f"the registry says {self.dim}; fix the entry or the loader.")
        return encoder


_REGISTRY: dict[str, BackboneSpec] = {}


def register_backbone(spec: BackboneSpec, *, replace: bool = False) -> BackboneSpec:
    """Add ``spec`` to the registry (``replace=True`` to redefine an existing name)."""
    if not isinstance(spec, BackboneSpec):
        raise TypeError(f"spec must be a BackboneSpec, got {type(spec).__name__}.")
    if spec.name in _REGISTRY and not replace:
        raise ValueError(f"backbone {spec.name!r} is already registered; pass replace=True to redefine it.")
    _REGISTRY[spec.name] = spec
    return spec


def unregister_backbone(name: str) -> None:
    """Remove ``name`` (tests that register a temporary backbone)."""
    _REGISTRY.pop(name, None)


def get_spec(name: str) -> BackboneSpec:
    """The entry called ``name``; a ValueError lists the registered names otherwise."""
    try:
        return _REGISTRY[name]
    except (KeyError, TypeError):
        raise ValueError(f"unknown backbone {name!r}; registered backbones: {', '.join(_REGISTRY)}.") from None


def backbone_names(*, profile: str | None = None, text_tower: bool | None = None,
                   images: str | None = None) -> tuple[str, ...]:
    """Registered names, optionally only those of a profile (``"any"`` entries match every
    profile), with or without a text tower, or with a given image source."""
    return tuple(n for n, s in _REGISTRY.items()
                 if (profile is None or s.profile in (profile, "any"))
                 and (text_tower is None or s.text_tower == text_tower)
                 and (images is None or s.images == images))


def embed_backbones(profile: str) -> tuple[str, ...]:
    """The backbones of ``profile`` that can run the embed stages: a text tower and images of their own."""
    return tuple(n for n, s in _REGISTRY.items()
                 if s.profile == profile and s.text_tower and s.images in ("simulated", "encoder"))


def load_backbone(name: str, *, pretrained: bool = True, device=None):
    """The encoder of backbone ``name`` (see :meth:`BackboneSpec.load`)."""
    return get_spec(name).load(pretrained=pretrained, device=device)


def embeddings_source(name: str) -> str:
    """The backbone whose cached image embeddings ``name`` reads (itself unless it stands in)."""
    spec = get_spec(name)
    return spec.images if spec.images in _REGISTRY else spec.name


# --------------------------------------------------------------------------- the compendium's backbones
_OPEN_CLIP_WEIGHTS = "slics.embedding.encoders:open_clip_weights_file"
for _spec in (
    BackboneSpec("demo", 384, "centre", loader="slics.embedding.encoders:load_minilm", text_tower=True,
                 profile="demo", images="simulated",
                 title="all-MiniLM-L6-v2 text tower (real), images simulated by the demo world"),
    BackboneSpec("clip-vit-b32", 512, "centre", loader="slics.embedding.encoders:load_open_clip", text_tower=True,
                 mean_resource="splice/means/clip_ViT-B-32_image.pt", title="open_clip ViT-B-32, OpenAI weights",
                 paper_case="ViT",
                 options={"model": "ViT-B-32", "pretrained": "openai", "weights": _OPEN_CLIP_WEIGHTS}),
    BackboneSpec("clip-rn50", 1024, "centre", loader="slics.embedding.encoders:load_open_clip", text_tower=True,
                 mean_resource="splice/means/clip_RN50_image.pt", title="open_clip RN50, OpenAI weights", paper_case="RN",
                 options={"model": "RN50", "pretrained": "openai", "weights": _OPEN_CLIP_WEIGHTS}),
    BackboneSpec("clip-vit-l14", 768, "centre", loader="slics.embedding.encoders:load_open_clip", text_tower=True,
                 title="open_clip ViT-L-14, OpenAI weights (Stable Diffusion's conditioning space)",
                 options={"model": "ViT-L-14", "pretrained": "openai", "weights": _OPEN_CLIP_WEIGHTS}),
    BackboneSpec("titok-l32", 384, "tokens", loader="slics.embedding.vision:load_titok", n_tokens=32,
                 title="TiTok-L-32 tokenizer: 32 pre-quantisation tokens of 12 numbers",
                 options={"weights": "slics.embedding.vision:titok_weights_file"}),
    BackboneSpec("dinov2-vitb14", 768, "unit", loader="slics.embedding.vision:load_dinov2",
                 title="DINOv2 ViT-B/14 (timm), CLS token",
                 options={"weights": "slics.embedding.vision:dinov2_weights_file"}),
    BackboneSpec("demo-titok", 384, "tokens", profile="demo", images="simulated", n_tokens=32,
                 label="demo-titok", title="the demo world's scenes as 32 compressed tokens of 12 numbers, "
                 "appearance-dominated, no text tower (slics.embedding.demo_spaces; not TiTok)"),
    BackboneSpec("demo-dino", 768, "unit", profile="demo", images="simulated", label="demo-dino",
                 title="the demo world's scenes in a 768-d space of their own, no text tower "
                 "(slics.embedding.demo_spaces; not DINOv2)"),
    BackboneSpec("precomputed", None, "centre", profile="any", images="files",
                 title="embeddings you bring as files (any model)"),
):
    register_backbone(_spec)
del _spec
