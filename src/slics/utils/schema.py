"""What ``params.yaml`` may hold, checked up front, with messages that name the key.

Every stage loads its parameters through :func:`slics.utils.config.load_params`, which calls
:func:`validate`, so a bad value fails in about a second, before any model loads or any data is
read, with one line per problem: the key path, the bad value and what is allowed.
``python -m slics.utils.schema`` checks the file on its own (``make reproduce`` runs it first).

The schema is data: a nested dict whose leaves are small spec objects. A section added to
``params.yaml`` needs its entry here; an unknown key is an error (usually a typo).
"""

from __future__ import annotations

import math
import sys
from dataclasses import dataclass


class ParamsError(ValueError):
    """``params.yaml`` does not match the schema; the message lists every problem."""


@dataclass(frozen=True)
class Num:
    lo: float | None = None
    hi: float | None = None
    integer: bool = False
    lo_open: bool = False

    def check(self, value) -> str | None:
        kind = "an integer" if self.integer else "a number"
        if isinstance(value, bool) or not isinstance(value, (int, float)) or not math.isfinite(value):
            return f"must be {kind}"
        if self.integer and not float(value).is_integer():
            return f"must be {kind} (no fraction)"
        if self.lo is not None and (value < self.lo or (self.lo_open and value == self.lo)):
            return f"must be {'>' if self.lo_open else '>='} {self.lo}"
        if self.hi is not None and value > self.hi:
            return f"must be <= {self.hi}"
        return None


@dataclass(frozen=True)
class Str:
    choices: tuple[str, ...] = ()
    contains: str = ""

    def check(self, value) -> str | None:
        if not isinstance(value, str) or not value:
            return "must be a non-empty string"
        if self.choices and value not in self.choices:
            return f"must be one of {', '.join(self.choices)}"
        if self.contains and self.contains not in value:
            return f"must contain {self.contains!r}"
        return None


@dataclass(frozen=True)
class Template:
    """A prompt template: exactly one ``{}`` and nothing else ``str.format`` would read."""

    def check(self, value) -> str | None:
        if not isinstance(value, str) or value.count("{}") != 1:
            return "must be a string with exactly one '{}' (where the word goes)"
        try:
            value.format("x")
        except (IndexError, KeyError, ValueError) as err:
            return f"is not a valid template ({type(err).__name__}: {err}); write a literal brace as {{{{ or }}}}"
        return None


@dataclass(frozen=True)
class Bool:
    def check(self, value) -> str | None:
        return None if isinstance(value, bool) else "must be true or false"


@dataclass(frozen=True)
class List:
    item: object
    min_len: int = 1
    length: int | None = None

    def check(self, value) -> str | None:
        if not isinstance(value, list):
            return "must be a list"
        if self.length is not None and len(value) != self.length:
            return f"must have exactly {self.length} entries"
        if len(value) < self.min_len:
            return f"must have at least {self.min_len} entr{'y' if self.min_len == 1 else 'ies'}"
        return None


@dataclass(frozen=True)
class Range:
    """A ``[low, high]`` pair of numbers with low <= high."""
    lo: float | None = None

    def check(self, value) -> str | None:
        if (not isinstance(value, list) or len(value) != 2
                or any(Num(self.lo).check(v) for v in value) or value[0] > value[1]):
            bound = f", both >= {self.lo}" if self.lo is not None else ""
            return f"must be [low, high] with low <= high{bound}"
        return None


@dataclass(frozen=True)
class AnyOf:
    """A value that matches at least one of several specs."""
    options: tuple

    def check(self, value) -> str | None:
        found = [option.check(value) for option in self.options]
        return None if any(f is None for f in found) else " or ".join(found)


@dataclass(frozen=True)
class Maybe:
    """``null`` or a value matching ``spec`` (e.g. a batch size where null means full batch)."""
    spec: object

    def check(self, value) -> str | None:
        if value is None:
            return None
        message = self.spec.check(value)
        return f"{message} (or null)" if message else None


def _text_backbones(profile: str) -> tuple[str, ...]:
    from ..embedding.registry import embed_backbones

    return embed_backbones(profile)


def _spec(name: str):
    from ..embedding.registry import get_spec

    return get_spec(name)


def _backbones(profile: str, **kwargs) -> tuple[str, ...]:
    from ..embedding.registry import backbone_names

    return backbone_names(profile=profile, **kwargs)


def _embed_backbones() -> tuple[str, ...]:
    """Backbones that can run the embed stages, from the registry (a text tower and an image source)."""
    return _text_backbones("demo") + _text_backbones("full")


POSITIVE = Num(0, lo_open=True)
NONNEG = Num(0)
COUNT = Num(1, integer=True)
FRACTION = Num(0, 1)

# The SLiCS fit and retrieval keys shared by the sections on CLIP, TiTok and DINOv2.
SLICS_FIT = {
    "datasets": List(Str(("mirflickr25k", "coco"))),
    "k": COUNT,
    "n_iter": Num(0, integer=True),
    "k_grid": List(COUNT),
    "batch_size": {"mirflickr25k": Maybe(COUNT), "coco": Maybe(COUNT)},
    "seeds": {"mirflickr25k": List(Num(0, integer=True)), "coco": List(Num(0, integer=True))},
}

SCHEMA = {
    "profile": Str(("demo", "full")),
    "seed": Num(0, 2**32 - 1, integer=True),
    "robustness": {
        "observations": List(Num()),
        "true_value": Num(),
        "grid": {"start": Num(), "stop": Num(), "step": POSITIVE},
        "l0_tolerance": NONNEG,
        "breakdown": {
            "n_observations": COUNT,
            "inlier_value": Num(),
            "outlier_magnitudes": List(Num()),
            "fixed_fraction": FRACTION,
            "fractions": List(FRACTION),
            "fixed_magnitude": Num(),
        },
    },
    "embed": {
        "backbone": Str(_embed_backbones()),
        "batch_size": COUNT,
        "prompt_template": Template(),
    },
    "concepts": {
        "n_nouns": COUNT,
        "splits": List(Str()),  # Multi30k split names (train, val, test_2016, ...) or caption files
        "order": Str(("filter_then_tag", "tag_then_filter")),
        "extra": AnyOf((Str(("cifar10",)), List(Str(), min_len=0))),  # a dataset's class names, or words
    },
    "ista_clip": {
        "lambdas": List(POSITIVE),
        "lr": POSITIVE,
        "n_iter": COUNT,
        "gap_images": COUNT,
        "exact_images": COUNT,
        "convergence_images": COUNT,
        "convergence_n_iter": COUNT,
        "fista_tol": POSITIVE,
        "top_lambda": POSITIVE,
        "n_top_concepts": COUNT,
        "n_examples": COUNT,
        "n_example_concepts": COUNT,
    },
    "datasets": {
        "zero_shot_templates": List(Template()),
        **{name: {"splits": {profile: {"n_train": COUNT, "n_val": COUNT, "n_query": COUNT}
                             for profile in ("demo", "full")}}
           for name in ("mirflickr25k", "coco")},
    },
    "slics_clip": {
        **SLICS_FIT,
        "backbones": {"demo": List(Str(_text_backbones("demo"))), "full": List(Str(_text_backbones("full")))},
        "n_pseudo_labels": COUNT,
        "splice": {"lam": POSITIVE, "n_queries": Maybe(COUNT), "n_pool": Maybe(COUNT)},
        "n_caption_words": COUNT,
        "tsne_images": COUNT,
    },
    "demo_world": {
        "n_per_class": COUNT,
        "placement_words": COUNT,
        "n_descriptors": COUNT,
        "descriptor_concentration": POSITIVE,
        "core_weight": Range(0),
        "label_weight": Range(0),
        "n_clutter": Num(0, integer=True),
        "clutter_weight": Range(0),
        "gap_norm": NONNEG,
        "gap_text_offset": NONNEG,
        "noise_std": NONNEG,
        "visual_dim": COUNT,
        "visual_nonlinearity": NONNEG,
        "dino_offset": NONNEG,
        "dino_noise_std": NONNEG,
        "titok_appearance_std": NONNEG,
        "titok_appearance_rank": COUNT,
        "titok_nonlinearity": NONNEG,
    },
    **{key: {
        **SLICS_FIT,
        "n_qualitative": COUNT,
        **extra,
        "backbone": {"demo": Str(_backbones("demo")), "full": Str(_backbones("full"))},
    } for key, extra in (("slics_titok", {"codebook_size": COUNT, "kmeans_max_iter": COUNT,
                                          "lut_check_queries": COUNT}),
                         ("slics_dino", {}))},
    "image_to_prompt": {
        "n_train": COUNT,
        "n_test": COUNT,
        "noise_levels": List(NONNEG),
        "noise": NONNEG,
        "train_sizes": List(COUNT),
        "full": {"images_dir": Str(), "source_backbone": Str(_backbones("full", text_tower=True)),
                 "target_backbone": Str(_backbones("full", text_tower=True))},
        "generation": {
            "enabled": Bool(),
            "method": Str(("ding2023", "unclip")),
            "model": {"ding2023": Str(), "unclip": Str()},
            "n_queries": COUNT,
            "n_steps": COUNT,
            "guidance_scale": NONNEG,
            "pinv_atol": NONNEG,
            "noise_level": Num(0, integer=True),
        },
    },
}

# Dimension of the source space that section 3.7 fits its maps in, per profile: the demo text tower
# (all-MiniLM-L6-v2) and CLIP ViT-B/32 (slics.sections.image_to_prompt.SOURCE_BACKBONE). Below it no
# map is unique, so a training size under it fails here rather than after the images are encoded.
def _alignment_source_dim(p) -> int:
    """The dimension of section 3.7's source space: the demo's vectors, or the full profile's source backbone."""
    name = "demo" if p["profile"] == "demo" else p["image_to_prompt"]["full"]["source_backbone"]
    return int(_spec(name).dim)

# Relations between keys that a per-key spec cannot state: (check, key named in the message, message).
CROSS_CHECKS = [
    (lambda p: p["ista_clip"]["top_lambda"] in p["ista_clip"]["lambdas"], "ista_clip.top_lambda",
     "must be one of ista_clip.lambdas"),
    (lambda p: p["ista_clip"]["n_iter"] <= p["ista_clip"]["convergence_n_iter"], "ista_clip.n_iter",
     "must be <= ista_clip.convergence_n_iter (the convergence figure reads ISTA's objective at n_iter)"),
    (lambda p: _spec(p["slics_titok"]["backbone"][p["profile"]]).quantisable, "slics_titok.backbone",
     "must name a backbone of tokens (preprocessing 'tokens' in slics.embedding.registry): the section "
     "quantises its candidate pool"),
    (lambda p: p["robustness"]["grid"]["start"] < p["robustness"]["grid"]["stop"], "robustness.grid.start",
     "must be < robustness.grid.stop"),
    (lambda p: _grid_bytes(p) <= MEMORY_BUDGET, "robustness.grid.step",
     lambda p: (f"= {p['robustness']['grid']['step']!r} makes a grid of {_grid_points(p):.3g} points whose loss "
                f"landscapes need about {_grid_bytes(p) / 2**30:.3g} GiB (budget {MEMORY_BUDGET / 2**30:.0f} GiB); "
                f"use a step of at least {_min_step(p):.3g}")),
    (lambda p: p["embed"]["backbone"] in _text_backbones(p["profile"]), "embed.backbone",
     "must be a backbone of the profile it runs in (slics.embedding.registry): " + "; ".join(
         f"the {profile} profile takes {', '.join(_text_backbones(profile))}" for profile in ("demo", "full"))),
    (lambda p: p["embed"]["backbone"] in p["slics_clip"]["backbones"][p["profile"]], "slics_clip.backbones",
     lambda p: (f"must include embed.backbone ({p['embed']['backbone']!r}) in the {p['profile']} profile: its "
                "embed stages' files are Table 2's first backbone; the others are encoded by stage 03")),
    (lambda p: len(set(p["slics_clip"]["backbones"][p["profile"]])) == len(p["slics_clip"]["backbones"][p["profile"]]),
     "slics_clip.backbones", "must not name a backbone twice"),
    (lambda p: min(p["image_to_prompt"]["train_sizes"]) >= _alignment_source_dim(p), "image_to_prompt.train_sizes",
     lambda p: (f"must all be >= the dimension of the profile's source space ({p['profile']} "
                f"{_alignment_source_dim(p)}); below it the maps are not unique")),
]


MEMORY_BUDGET = 2 * 2**30   # bytes one array of a stage may take before the schema refuses the value


def _grid_points(p) -> float:
    g = p["robustness"]["grid"]
    return (g["stop"] - g["start"]) / g["step"] + 1


def _grid_bytes(p) -> float:
    """The loss landscapes' residual array: grid points x observations x 8 bytes (x 2 for a temporary)."""
    n_obs = max(len(p["robustness"]["observations"]), p["robustness"]["breakdown"]["n_observations"])
    return _grid_points(p) * n_obs * 8 * 2


def _min_step(p) -> float:
    g = p["robustness"]["grid"]
    return (g["stop"] - g["start"]) / (MEMORY_BUDGET / _grid_bytes(p) * (_grid_points(p) - 1))


def _walk(spec, value, path: str, problems: list[str]) -> None:
    if isinstance(spec, dict):
        if not isinstance(value, dict):
            problems.append(f"{path}: must be a mapping with keys {', '.join(spec)}, got {value!r}")
            return
        for key, sub in spec.items():
            if key not in value:
                problems.append(f"{path + '.' if path else ''}{key}: missing (required)")
            else:
                _walk(sub, value[key], f"{path + '.' if path else ''}{key}", problems)
        for key in value.keys() - spec.keys():
            problems.append(f"{path + '.' if path else ''}{key}: unknown key (a typo? known: {', '.join(spec)})")
        return
    message = spec.check(value)
    if message:
        problems.append(f"{path} = {value!r}: {message}")
    elif isinstance(spec, List):
        for i, item in enumerate(value):
            _walk(spec.item, item, f"{path}[{i}]", problems)


def problems(params: dict) -> list[str]:
    """Every mismatch between ``params`` and the schema, one line each (empty when valid)."""
    found: list[str] = []
    _walk(SCHEMA, params, "", found)
    if not found:
        for check, key, message in CROSS_CHECKS:
            if not check(params):
                found.append(f"{key}: {message(params) if callable(message) else message}")
    return found


def validate(params: dict, source: str = "params.yaml") -> dict:
    """Return ``params`` unchanged, or raise :class:`ParamsError` listing every problem."""
    found = problems(params)
    if found:
        lines = "\n".join(f"  - {line}" for line in found)
        raise ParamsError(f"{source} is not valid ({len(found)} problem(s)):\n{lines}")
    return params


def main(argv: list[str] | None = None) -> int:
    """``python -m slics.utils.schema [PARAMS]``: check a params file (default the project's)."""
    from .config import load_params

    path = (argv or [None])[0]
    load_params(path)
    print(f"{path or 'params.yaml'}: valid")
    return 0


if __name__ == "__main__":
    # Run through the package module, so that the ParamsError raised by load_params is the one
    # the error handler knows (``__main__.ParamsError`` would be another class).
    from slics.utils.errors import run_main
    from slics.utils.schema import main as _main

    sys.exit(run_main(_main))
