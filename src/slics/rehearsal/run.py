"""Prepare a scratch project and run every stage of ``dvc.yaml`` in it (see :mod:`slics.rehearsal`).

The scratch folder holds ``project/`` (the run's ``SLICS_ROOT``: ``dvc.yaml``, ``notebooks/``,
``reference/``, a tiny ``params.yaml``, and the ``data/`` and ``results/`` the stages write),
``mirror/`` (the ``SLICS_DATA_MIRROR``: fixtures, and links to the project's small real inputs),
``hub/`` (the Hugging Face cache of random weights), ``registry.yaml`` (``SLICS_RESOURCES``) and
``logs/``. It must not lie inside the project's own ``data/`` or ``results/``, and a folder that
holds anything but an earlier rehearsal is refused, so a rehearsal never mixes with real data.
"""

from __future__ import annotations

import copy
import os
import shutil
import subprocess
import sys
import time
from pathlib import Path

import yaml

from ..data.resources import EXPECTED_KEY, MIRROR_ENV, _raw_registry
from ..utils.config import project_root
from .fixtures import FixtureSizes, write_fixtures

MARKER = ".slics-rehearsal"
# What the full profile writes beyond dvc.yaml's outputs (DVC cannot declare an output only one profile
# writes): the image-grid figures and the embedding caches of sections 4.4 and 3.7, with their manifests,
# for each {dataset} of the stage's section of params.yaml (SECTION) and stage 07's two spaces.
FULL_ONLY = {
    "03_slics_clip": ["results/figures/slics_clip_qualitative_{dataset}.png"],
    "05_slics_titok": ["results/figures/slics_titok_qualitative_{dataset}.png"]
    + [f"data/embeddings/titok-l32/{{dataset}}/{f}" for f in ("images.npy", "images.manifest.json", "codebook.npy")],
    "06_slics_dino": ["results/figures/slics_dino_qualitative_{dataset}.png"]
    + [f"data/embeddings/dinov2-vitb14/{{dataset}}/{f}" for f in ("images.npy", "images.manifest.json")],
    "07_image_to_prompt": [f"data/embeddings/{{{key}}}/flickr30k/{f}" for key in ("source_backbone", "target_backbone")
                           for f in ("images.npy", "images.manifest.json")],
}
SECTION = {"03_slics_clip": "slics_clip", "05_slics_titok": "slics_titok", "06_slics_dino": "slics_dino"}
# Sections 4.4.1 and 4.4.2 each rehearse one of the two datasets (each dataset's loader, caches and
# fits run in the embed stages and in stage 03): a TiTok-L-32 image costs about 2 s on one core.
BACKBONE_DATASETS = {"slics_titok": ["coco"], "slics_dino": ["mirflickr25k"]}
COPIED = ("dvc.yaml", "notebooks", "reference")


class RehearsalError(RuntimeError):
    """The rehearsal could not be prepared, or a stage failed."""


def tiny_params(params: dict, backbone: str = "clip-vit-b32", batch_size: int = 16,
                target_backbone: str | None = None) -> dict:
    """The project's ``params.yaml`` at fixture scale in profile ``full`` (every other value kept).

    ``target_backbone``: stage 07's target space instead of ``image_to_prompt.full.target_backbone``
    (None keeps it).
    """
    p = copy.deepcopy(params)
    p["profile"] = "full"
    p["embed"].update(backbone=backbone, batch_size=batch_size)
    p["concepts"]["n_nouns"] = 15
    p["ista_clip"].update(lambdas=[0.05, 0.1], n_iter=5, gap_images=10, exact_images=5, convergence_images=5,
                          convergence_n_iter=10, top_lambda=0.05, n_top_concepts=5, n_examples=2,
                          n_example_concepts=3)
    for name in ("mirflickr25k", "coco"):
        p["datasets"][name]["splits"]["full"] = {"n_train": 12, "n_val": 4, "n_query": 4}
    fit = {"k": 5, "n_iter": 2, "k_grid": [2, 3],          # K >= 2: Fig. 3 plots two atoms
           "batch_size": {"mirflickr25k": None, "coco": 8},
           "seeds": {"mirflickr25k": [0], "coco": [0]}}
    p["slics_clip"].update(fit, n_caption_words=3, tsne_images=10)
    p["slics_clip"]["backbones"]["full"] = list(dict.fromkeys([backbone, *p["slics_clip"]["backbones"]["full"]]))
    p["slics_clip"]["splice"].update(n_queries=None, n_pool=None)
    p["slics_titok"].update(fit, codebook_size=8, kmeans_max_iter=5, lut_check_queries=4)
    p["slics_dino"].update(fit)
    for section, datasets in BACKBONE_DATASETS.items():
        p[section]["datasets"] = list(datasets)
    p["image_to_prompt"].update(n_train=520, n_test=12, train_sizes=[512, 520])
    p["image_to_prompt"]["full"]["images_dir"] = "data/external/flickr30k/images"
    if target_backbone is not None:
        p["image_to_prompt"]["full"]["target_backbone"] = target_backbone
    return p


def check_workdir(workdir: Path) -> Path:
    """``workdir`` resolved; refuse the project's data or results folders and foreign folders."""
    workdir = Path(workdir).resolve()
    try:
        root = project_root()
    except FileNotFoundError:
        root = None
    if root is not None:
        for protected in (root / "data", root / "results", root):
            if workdir == protected.resolve() or protected.resolve() in workdir.parents and protected != root:
                raise RehearsalError(f"the rehearsal folder {workdir} lies in {protected}; choose a scratch "
                                     "folder outside the project's data/ and results/ (the default is a temp dir).")
    if workdir.exists() and any(workdir.iterdir()) and not (workdir / MARKER).is_file():
        raise RehearsalError(f"{workdir} is not empty and holds no earlier rehearsal ({MARKER}); "
                             "choose an empty or new folder.")
    return workdir


def _real_source(mirror_path: str, root: Path) -> Path | None:
    """A real copy of a small registered input: the user's mirror, else the project's fetched one."""
    candidates = []
    if os.environ.get(MIRROR_ENV):
        candidates.append(Path(os.environ[MIRROR_ENV]) / mirror_path)
    candidates.append(root / "data" / "external" / mirror_path)
    return next((c.resolve() for c in candidates if c.is_file()), None)


def prepare(workdir: Path, sizes: FixtureSizes = FixtureSizes(), backbone: str = "clip-vit-b32",
            weights: bool = True, log=print, target_backbone: str | None = None) -> dict:
    """Write the scratch project, fixtures, registry and weights; return the run's environment."""
    workdir = check_workdir(workdir)
    root = project_root()
    project, mirror, hub = workdir / "project", workdir / "mirror", workdir / "hub"
    workdir.mkdir(parents=True, exist_ok=True)
    (workdir / MARKER).write_text("a rehearsal of the full profile (python -m slics.rehearsal)\n")
    for sub in (project, mirror):
        shutil.rmtree(sub, ignore_errors=True)
    project.mkdir(parents=True)
    for name in COPIED:
        src = root / name
        (shutil.copytree if src.is_dir() else shutil.copyfile)(src, project / name)
    params = yaml.safe_load((root / "params.yaml").read_text(encoding="utf-8"))
    (project / "params.yaml").write_text(yaml.safe_dump(tiny_params(params, backbone, target_backbone=target_backbone),
                                                       sort_keys=False))

    t = time.perf_counter()
    sums, expected = write_fixtures(mirror, project / "data" / "external" / "flickr30k" / "images", sizes)
    registry = _raw_registry(Path(__file__).resolve().parents[1] / "data" / "resources.yaml")
    missing = []
    for name, entry in registry.items():
        if name == EXPECTED_KEY:
            continue
        for item in entry["files"]:
            if item["mirror"] in sums:
                item["sha256"] = sums[item["mirror"]]
            elif entry.get("profile") != "full":          # a small real input: linked into the mirror
                source = _real_source(item["mirror"], root)
                if source is None:
                    missing.append(item["mirror"])
                    continue
                (mirror / item["mirror"]).parent.mkdir(parents=True, exist_ok=True)
                os.symlink(source, mirror / item["mirror"])
    if missing:
        raise RehearsalError(f"the small real inputs {missing[:3]} (and {max(len(missing) - 3, 0)} more) are "
                             f"neither in ${MIRROR_ENV} nor in the project's data/external; run `make inputs` "
                             "(or set the mirror) first.")
    registry[EXPECTED_KEY].update(expected)
    (workdir / "registry.yaml").write_text(yaml.safe_dump(registry, sort_keys=False))
    log(f"fixtures: {len(sums)} files in {mirror} ({time.perf_counter() - t:.0f} s)")
    if weights:
        from .weights import write_weights

        t = time.perf_counter()
        written = write_weights(hub, yaml.safe_load((project / "params.yaml").read_text(encoding="utf-8")))
        log(f"random weights: {', '.join(written)} in {hub} ({time.perf_counter() - t:.0f} s)")
    return environment(workdir)


def environment(workdir: Path) -> dict:
    """The stages' environment: the scratch project, mirror, registry and hub cache, offline."""
    workdir = Path(workdir).resolve()
    if not (workdir / MARKER).is_file() or not (workdir / "registry.yaml").is_file():
        raise RehearsalError(f"{workdir} holds no prepared rehearsal; run without --reuse first.")
    env = {k: v for k, v in os.environ.items() if k not in ("SLICS_RESULTS_DIR", "SLICS_DATA_DIR")}
    env.update(SLICS_ROOT=str(workdir / "project"), SLICS_DATA_MIRROR=str(workdir / "mirror"),
               SLICS_RESOURCES=str(workdir / "registry.yaml"), HF_HOME=str(workdir / "hf_home"),
               HF_HUB_CACHE=str(workdir / "hub"), HF_HUB_OFFLINE="1", SLICS_OFFLINE="1",
               TRANSFORMERS_OFFLINE="1", MPLBACKEND="Agg")
    return env


def stage_outputs(stage: dict) -> list[str]:
    """Every file or folder a stage declares (outs, metrics, plots), with params interpolated later."""
    found = []
    for key in ("outs", "metrics", "plots"):
        for entry in stage.get(key, []):
            found.append(entry if isinstance(entry, str) else next(iter(entry)))
    return found


def full_only(stage: str, params: dict) -> list[str]:
    """The outputs that ``stage`` writes in profile ``full`` beyond its ``dvc.yaml`` ones, for ``params``."""
    datasets = params[SECTION[stage]]["datasets"] if stage in SECTION else [None]
    return [o.format(dataset=d, **params["image_to_prompt"]["full"]) for o in FULL_ONLY.get(stage, [])
            for d in datasets]


def run_stages(workdir: Path, env: dict, only=None, log=print) -> list[dict]:
    """Run the stage commands of the scratch ``dvc.yaml`` in order; raise on the first failure."""
    project = Path(workdir) / "project"
    stages = yaml.safe_load((project / "dvc.yaml").read_text())["stages"]
    params = yaml.safe_load((project / "params.yaml").read_text())
    logs = Path(workdir) / "logs"
    logs.mkdir(exist_ok=True)
    unknown = sorted(set(only or ()) - set(stages))
    if unknown:
        raise RehearsalError(f"dvc.yaml has no stage(s) {unknown}; its stages: {', '.join(stages)}.")
    names = [n for n in stages if only is None or n in only]
    report = []
    for i, name in enumerate(names, 1):
        cmd = stages[name]["cmd"]
        t = time.perf_counter()
        log(f"[{i}/{len(names)}] {name}: {cmd}")
        with open(logs / f"{name}.log", "w") as out:
            proc = subprocess.run(cmd, shell=True, cwd=project, env=env, stdout=out, stderr=subprocess.STDOUT)
        seconds = time.perf_counter() - t
        if proc.returncode != 0:
            tail = "\n".join((logs / f"{name}.log").read_text(errors="replace").splitlines()[-25:])
            raise RehearsalError(f"stage {name} failed (exit {proc.returncode}, {seconds:.0f} s); the end of "
                                 f"{logs / f'{name}.log'}:\n{tail}")
        declared = [o.replace("${embed.backbone}", params["embed"]["backbone"]) for o in stage_outputs(stages[name])]
        declared += full_only(name, params)
        absent = [o for o in declared if not (project / o).exists()]
        if absent:
            raise RehearsalError(f"stage {name} ran but did not write {absent[:5]} ({len(absent)} expected "
                                 "output(s) missing).")
        report.append({"stage": name, "seconds": round(seconds, 1), "outputs": len(declared)})
        log(f"    ok in {seconds:.0f} s, {len(declared)} expected output(s) present")
    return report
