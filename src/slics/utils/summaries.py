"""Small, flat metrics files for ``dvc metrics show``: a few headline numbers per section.

Each section's notebook writes a detailed, nested ``results/metrics/<section>.json`` (hundreds
of values: every method, dataset, lambda and noise level). ``dvc metrics show`` prints every
metrics file as one table row with a column per value, so those files are declared as plain
outputs, and this module copies a handful of headline values from each into
``results/metrics/<section>_summary.json``: flat, short keys, a table that fits a terminal
(``dvc metrics show results/metrics/slics_clip_summary.json``).

``python -m slics.utils.summaries`` (the ``metrics_summary`` stage) writes every summary. Values
are copied, not recomputed, so they carry their section's stated precision.
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

from .config import load_params, results_dir
from .io import write_text

# section -> {short key: path of keys into the detailed JSON}. ``{backbone}`` stands for
# ``embed.backbone``: Table 2 has a key ``<dataset>/<backbone>`` per backbone of the profile (two in
# full), and the headline is the primary one.
SUMMARIES: dict[str, dict[str, tuple[str, ...]]] = {
    "robustness": {
        "mean": ("estimates", "mean", "numerical"),
        "median": ("estimates", "median", "numerical"),
        "mode": ("estimates", "mode", "numerical"),
        "bd_mean": ("empirical_breakdown_fraction", "mean"),
        "bd_median": ("empirical_breakdown_fraction", "median"),
        "bd_mode": ("empirical_breakdown_fraction", "mode"),
    },
    "concepts": {
        "concepts": ("n_concepts",),
        "nouns": ("n_nouns",),
        "captions": ("n_captions",),
        "images": ("n_images",),
    },
    "ista_clip": {  # sparse_*: ISTA on every image at lambda = 0.05, the report's reconstruction
        "dense_acc": ("dense_accuracy",),
        "sparse_acc": ("sweep", "ista_all", "0.05", "accuracy_A_w_plus_mu_c"),
        "sparse_nnz": ("sweep", "ista_all", "0.05", "mean_nonzeros"),
        "obj_exact": ("convergence", "exact_objective"),
        "obj_fista": ("convergence", "fista_objective_final"),
        "obj_ista": ("convergence", "ista_objective_at_n_iter"),
    },
    "slics_clip": {
        "mir_gen": ("mirflickr25k/{backbone}", "S-SLiCS", "map_general"),
        "mir_sub": ("mirflickr25k/{backbone}", "S-SLiCS", "map_sub"),
        "mir_uf_gen": ("mirflickr25k/{backbone}", "UF", "map_general"),
        "coco_gen": ("coco/{backbone}", "S-SLiCS", "map_general"),
        "coco_sub": ("coco/{backbone}", "S-SLiCS", "map_sub"),
        "coco_uf_gen": ("coco/{backbone}", "UF", "map_general"),
    },
    "slics_titok": {
        "mir_gen": ("mirflickr25k", "dense", "S-SLiCS", "map_general"),
        "mir_sub": ("mirflickr25k", "dense", "S-SLiCS", "map_sub"),
        "mir_pq_gen": ("mirflickr25k", "quantised", "S-SLiCS", "map_general"),
        "coco_gen": ("coco", "dense", "S-SLiCS", "map_general"),
        "coco_sub": ("coco", "dense", "S-SLiCS", "map_sub"),
        "coco_pq_gen": ("coco", "quantised", "S-SLiCS", "map_general"),
    },
    "slics_dino": {
        "mir_gen": ("mirflickr25k", "dense", "S-SLiCS", "map_general"),
        "mir_sub": ("mirflickr25k", "dense", "S-SLiCS", "map_sub"),
        "mir_uf_gen": ("mirflickr25k", "dense", "UF", "map_general"),
        "coco_gen": ("coco", "dense", "S-SLiCS", "map_general"),
        "coco_sub": ("coco", "dense", "S-SLiCS", "map_sub"),
        "coco_uf_gen": ("coco", "dense", "UF", "map_general"),
    },
    "image_to_prompt": {
        "noise": ("main", "noise"),
        "rot_error": ("main", "procrustes_rotation_error"),
        "mse_vs_ls": ("main", "procrustes_over_least_squares_mse"),
    },
}


# Keys that only one profile's detailed metrics have: section 3.7's planted rotation (its error and
# noise level) exists in the demo world alone, so the full profile's summary leaves them out.
PROFILE_KEYS: dict[str, dict[str, str]] = {"image_to_prompt": {"noise": "demo", "rot_error": "demo"}}


def _lookup(detail: dict, path: tuple[str, ...], section: str, backbone: str):
    node = detail
    for depth, key in enumerate(path):
        key = key.replace("{backbone}", backbone)
        if not isinstance(node, dict) or key not in node:
            where = ".".join(path[:depth]) or "the top level"
            raise KeyError(
                f"results/metrics/{section}.json has no {key!r} under {where} "
                f"(it has {sorted(node)[:8] if isinstance(node, dict) else type(node).__name__}); "
                f"update SUMMARIES[{section!r}] in slics/utils/summaries.py to the new layout."
            )
        node = node[key]
    return node


def summarise(section: str, detail: dict, backbone: str = "demo", skip=()) -> dict:
    """The flat headline dictionary of ``section`` picked from its detailed metrics ``detail``;
    ``backbone`` (``embed.backbone``) picks the headline backbone where a section has several, and
    the keys of the datasets in ``skip`` (those the section's ``datasets`` leave out) are left out."""
    if section not in SUMMARIES:
        raise ValueError(f"section={section!r} has no summary; choose one of {sorted(SUMMARIES)}.")
    profile = detail.get("profile", "demo")
    only = PROFILE_KEYS.get(section, {})
    return {key: _lookup(detail, path, section, backbone) for key, path in SUMMARIES[section].items()
            if only.get(key, profile) == profile and path[0].split("/")[0] not in skip}


def skipped_datasets(params: dict) -> dict[str, set[str]]:
    """{section: the datasets of the other sections that its own ``datasets`` leave out}."""
    ran = {s: set(params[s]["datasets"]) for s in SUMMARIES if isinstance(params.get(s), dict)
           and "datasets" in params[s]}
    every = set().union(*ran.values())
    return {s: every - ran.get(s, every) for s in SUMMARIES}


def summary_path(section: str, root: Path | None = None) -> Path:
    return (root or results_dir()) / "metrics" / f"{section}_summary.json"


def write_summaries(root: Path | None = None, backbone: str | None = None) -> list[Path]:
    """Write ``<section>_summary.json`` beside each section's detailed metrics file; ``backbone``
    defaults to ``embed.backbone`` of ``params.yaml``."""
    root = root or results_dir()
    params = load_params()
    backbone = backbone or params["embed"]["backbone"]
    skip = skipped_datasets(params)
    written = []
    for section in SUMMARIES:
        source = root / "metrics" / f"{section}.json"
        if not source.is_file():
            raise FileNotFoundError(f"{source} does not exist; run its stage first (`dvc repro`).")
        summary = summarise(section, json.loads(source.read_text(encoding="utf-8")), backbone, skip[section])
        written.append(write_text(summary_path(section, root), json.dumps(summary, indent=2) + "\n"))
    return written


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.parse_args(argv)
    try:
        written = write_summaries()
    except (FileNotFoundError, KeyError, ValueError) as err:  # ValueError: ConfigError, ParamsError
        print(f"error: {err}", file=sys.stderr)
        return 1
    print(f"wrote {len(written)} summaries under {written[0].parent}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
