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
        "backbone": Str(("demo", "clip-vit-b32", "clip-rn50")),
        "batch_size": COUNT,
        "prompt_template": Str(contains="{}"),
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
        "zero_shot_templates": List(Str(contains="{}")),
        **{name: {"splits": {profile: {"n_train": COUNT, "n_val": COUNT, "n_query": COUNT}
                             for profile in ("demo", "full")}}
           for name in ("mirflickr25k", "coco")},
    },
    "slics_clip": {
        **SLICS_FIT,
        "n_pseudo_labels": COUNT,
        "splice": {"lam": POSITIVE, "n_queries": Maybe(COUNT), "n_pool": Maybe(COUNT)},
        "n_caption_words": COUNT,
        "tsne_images": COUNT,
    },
    "demo_world": {
        "n_per_class": COUNT,
        "n_neighbours": COUNT,
        "neighbour_concentration": POSITIVE,
        "neighbour_spread": Range(0),
        "label_weight": Range(0),
        "n_clutter": Num(0, integer=True),
        "clutter_weight": Range(0),
        "gap_norm": NONNEG,
        "gap_text_offset": NONNEG,
        "noise_std": NONNEG,
    },
    **{key: {
        **SLICS_FIT,
        "n_qualitative": COUNT,
        **extra,
    } for key, extra in (("slics_titok", {"n_tokens": COUNT, "codebook_size": COUNT, "kmeans_max_iter": COUNT,
                                          "lut_check_queries": COUNT}),
                         ("slics_dino", {}))},
    "image_to_prompt": {
        "n_train": COUNT,
        "n_test": COUNT,
        "noise_levels": List(NONNEG),
        "noise": NONNEG,
        "train_sizes": List(COUNT),
        "full": {"images_dir": Str()},
        "generation": {
            "enabled": Bool(),
            "model": Str(),
            "n_steps": COUNT,
            "guidance_scale": NONNEG,
            "noise_level": Num(0, integer=True),
        },
    },
}

# Dimension of the source space that section 3.7 fits its maps in, per profile: the demo text tower
# (all-MiniLM-L6-v2) and CLIP ViT-B/32 (slics.sections.image_to_prompt.SOURCE_BACKBONE). Below it no
# map is unique, so a training size under it fails here rather than after the images are encoded.
ALIGNMENT_SOURCE_DIM = {"demo": 384, "full": 512}

# Relations between keys that a per-key spec cannot state: (check, key named in the message, message).
CROSS_CHECKS = [
    (lambda p: p["ista_clip"]["top_lambda"] in p["ista_clip"]["lambdas"], "ista_clip.top_lambda",
     "must be one of ista_clip.lambdas"),
    (lambda p: p["ista_clip"]["n_iter"] <= p["ista_clip"]["convergence_n_iter"], "ista_clip.n_iter",
     "must be <= ista_clip.convergence_n_iter (the convergence figure reads ISTA's objective at n_iter)"),
    (lambda p: p["robustness"]["grid"]["start"] < p["robustness"]["grid"]["stop"], "robustness.grid.start",
     "must be < robustness.grid.stop"),
    (lambda p: (p["profile"] == "demo") == (p["embed"]["backbone"] == "demo"), "embed.backbone",
     "must be 'demo' in the demo profile and a CLIP model in the full profile"),
    (lambda p: min(p["image_to_prompt"]["train_sizes"]) >= ALIGNMENT_SOURCE_DIM[p["profile"]],
     "image_to_prompt.train_sizes",
     "must all be >= the source dimension of the profile (demo 384, full 512: CLIP ViT-B/32); "
     "below it the maps are not unique"),
]


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
                found.append(f"{key}: {message}")
    return found


def validate(params: dict, source: str = "params.yaml") -> dict:
    """Return ``params`` unchanged, or raise :class:`ParamsError` listing every problem."""
    found = problems(params)
    if found:
        lines = "\n".join(f"  - {line}" for line in found)
        raise ParamsError(f"{source} is not valid ({len(found)} problem(s)):\n{lines}")
    return params


def main() -> int:
    from .config import load_params

    try:
        load_params()
    except ParamsError as err:
        print(f"error: {err}", file=sys.stderr)
        return 1
    print("params.yaml: valid")
    return 0


if __name__ == "__main__":
    sys.exit(main())
