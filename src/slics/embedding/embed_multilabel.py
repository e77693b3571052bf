"""Embed stages of the multi-label retrieval sets: ``embed_mirflickr25k`` and ``embed_coco``.

``python -m slics.embedding.embed mirflickr25k`` (or ``coco``) reads ``params.yaml``
(``profile``, ``seed``, ``embed``, ``demo_world``, ``datasets``) and writes into
``data/embeddings/<backbone>/<dataset>/``:

* ``images.npy``        (n, d) float64 unit rows: every image with a general label, in the
  order of ``split.csv`` (simulated in the demo profile, real CLIP image embeddings in full)
* ``split.csv``         image name and split (``train``/``val``/``query``/``pool``), seeded by
  ``seed`` and sized by ``datasets.<dataset>.splits.<profile>`` (:mod:`slics.data.splits`)
* ``general_text.npy``  (C, d): each general concept's name under every template of
  ``datasets.zero_shot_templates``, embedded, averaged and renormalised (zero-shot
  pseudo-labels of U-SLiCS, concept groups of F-SpLiCE)
* ``manifest.json``

The LAION-10k word embeddings (SpLiCE's vocabulary, the word captions) are not recomputed:
sections read them from the ``embed_cifar10`` stage's folder of the same backbone
(``laion10k_vocab.npy``); in the demo this stage reads the placement words from there
(``placement_vocab.npy``), so it depends on that stage.

Demo: each image is simulated (:func:`slics.embedding.simulator.simulate_images`) from its
real label vector, the raw annotation columns (MIRFlickr25K: the 24 "potential"
labels; COCO: the 80 categories): each label's descriptor words (``descriptors.npy``) are
the placement words of ``embed_cifar10`` nearest to its bare name ("plant_life" -> "plant
life"). Full: open_clip RN50 or ViT-B/32 on the images in the dataset's zip archive
(:mod:`slics.data.images`).
"""

from __future__ import annotations

import time
from pathlib import Path

import numpy as np

from ..data.multilabel import MultiLabelSet, prompt_name
from ..data.splits import make_split, split_table
from ..utils.config import load_params
from ..utils.io import atomic_dir, check_writable, save_npy, write_json, write_text

DATASETS = ("mirflickr25k", "coco")


def load_labels(dataset: str, profile: str) -> MultiLabelSet:
    """The labelled images of ``dataset`` for ``profile``, unlabelled ones dropped."""
    if dataset == "mirflickr25k":
        from ..data.mirflickr import load_mirflickr25k

        data = load_mirflickr25k()
    elif dataset == "coco":
        from ..data.coco import load_coco

        data = load_coco(profile)
    else:
        raise ValueError(f"unknown dataset {dataset!r}; expected one of {DATASETS}.")
    return data.drop_unlabelled()


def dataset_split(data: MultiLabelSet, params: dict, dataset: str) -> np.ndarray:
    """The seeded split of ``data`` with the sizes of ``datasets.<dataset>.splits.<profile>``."""
    sizes = params["datasets"][dataset]["splits"][params["profile"]]
    return make_split(len(data), int(sizes["n_train"]), int(sizes["n_val"]), int(sizes["n_query"]),
                      int(params["seed"]))


def template_text_embeddings(backbone, names, templates, batch_size: int = 256) -> np.ndarray:
    """(len(names), d): each name under every template, embedded, averaged, renormalised."""
    from .embed import make_prompts

    templates = list(templates)
    if not templates:
        raise ValueError("datasets.zero_shot_templates must hold at least one template.")
    words = [prompt_name(n) for n in names]
    emb = np.stack([backbone.encode_text(make_prompts(t, words), batch_size=batch_size) for t in templates])
    mean = emb.astype(np.float64).mean(axis=0)
    return mean / np.linalg.norm(mean, axis=1, keepdims=True)


def embed_multilabel(dataset: str, params: dict | None = None, out_dir: str | Path | None = None,
                     data: MultiLabelSet | None = None, images=None, placement=None, device=None, progress: bool = True) -> dict:
    """Compute and save the embeddings of ``dataset`` (see the module docstring); return the manifest.

    Tests pass ``data`` (labels), ``images`` (a sequence of PIL images for the full profile),
    and (demo) ``placement``, the placement words' embeddings, to run at tiny scale.
    """
    from .embed import check_profile, embeddings_dir, make_prompts
    from .registry import load_backbone

    params = load_params() if params is None else params
    profile, seed, cfg = params["profile"], int(params["seed"]), params["embed"]
    name, template, batch_size = cfg["backbone"], cfg["prompt_template"], int(cfg["batch_size"])
    check_profile(profile, name)
    check_writable((Path(out_dir) if out_dir is not None else embeddings_dir(name, dataset)).parent)
    t0 = time.perf_counter()
    if profile == "full" and images is None:      # fail fast, before any model is built
        from ..data.images import ensure_archive
        from .encoders import check_clip_available

        check_clip_available(name)
        archive = ensure_archive(dataset)
    data = load_labels(dataset, profile) if data is None else data.drop_unlabelled()
    split = dataset_split(data, params, dataset)
    backbone = load_backbone(name, device=device)
    general_text = template_text_embeddings(backbone, data.general_names,
                                            params["datasets"]["zero_shot_templates"], batch_size)
    if profile == "demo":
        from .simulator import PLACEMENT_TEMPLATE, SimulatorParams, label_descriptors, simulate_images

        sim = SimulatorParams.from_dict(params.get("demo_world"))
        if placement is None:                     # the placement words embedded by embed_cifar10
            from .embed import load_embeddings

            placement = load_embeddings(name, "placement_vocab", "cifar10")
        names = make_prompts(PLACEMENT_TEMPLATE, [prompt_name(n) for n in data.label_names])
        descriptors = label_descriptors(backbone.encode_text(names), placement, sim.n_descriptors)
        X = simulate_images(data.labels, placement, descriptors, sim, seed)
        source = "simulated from each image's label vector (slics.embedding.simulator)"
    else:
        if images is None:
            from ..data.images import ZipImages

            images = ZipImages(archive, data.image_ids)
        if len(images) != len(data):
            raise ValueError(f"{len(images)} images for {len(data)} labelled images.")
        X = backbone.encode_images(images, batch_size=batch_size, progress=progress)
        source = f"real images encoded by {name}"

    out = Path(out_dir) if out_dir is not None else embeddings_dir(name, dataset)
    arrays = {"images": np.ascontiguousarray(X, dtype=np.float64),
              "general_text": np.ascontiguousarray(general_text, dtype=np.float64)}
    if profile == "demo":                        # read by the image-only demo backbones (demo_spaces)
        arrays["descriptors"] = descriptors.astype(np.int64)
    manifest = {
        "dataset": dataset, "backbone": name, "profile": profile, "seed": seed, "dim": int(X.shape[1]),
        "n_images": len(data), "images": source, "prompt_template": template,
        "zero_shot_templates": list(params["datasets"]["zero_shot_templates"]),
        "general_concepts": list(data.general_names), "label_columns": list(data.label_names),
        "splits": {s: int(np.sum(split == s)) for s in ("train", "val", "query", "pool")},
        "files": {f"{k}.npy": {"shape": list(v.shape), "dtype": str(v.dtype)} for k, v in arrays.items()},
        "mean_labels_per_image": float(data.general.sum(axis=1).mean()),
    }
    if profile == "demo":
        manifest["demo_world"] = sim.to_dict()
    with atomic_dir(out) as staging:  # all files or none: a failure keeps the previous embeddings
        for key, array in arrays.items():
            save_npy(staging / f"{key}.npy", array)
        write_text(staging / "split.csv", split_table(data.image_ids, split).to_csv(index=False, lineterminator="\n"))
        write_json(staging / "manifest.json", manifest, decimals=4)
    manifest["total_s"] = round(time.perf_counter() - t0, 1)       # returned, not written
    return manifest


def backbone_embeddings(dataset: str, params: dict, backbone: str) -> None:
    """The files :func:`slics.embedding.retrieval_set.load_set` reads for a Table 2 backbone that is not
    ``embed.backbone`` (``slics_clip.backbones``): ``<backbone>/<dataset>/`` as the embed stage writes
    it, and the LAION-10k prompts under ``<backbone>/cifar10/laion10k_vocab.npy``.

    Stage 03 computes them once and keeps them as a cache (not a DVC output); a key file written after
    the folder (``table2_key.json``: backbone, weights, profile, seed, split sizes, templates) says what
    they were made from, and they are recomputed when this run asks for something else.
    """
    import copy
    import json

    from ..utils.io import write_json
    from .cache import cached_array, weights_tag
    from .embed import embeddings_dir, laion10k_words, make_prompts
    from .registry import get_spec, load_backbone

    spec = get_spec(backbone)
    if not spec.text_tower:
        raise ValueError(f"slics_clip.backbones: {backbone!r} has no text tower; Table 2 needs CLIP backbones.")
    own = copy.deepcopy(params)
    own["embed"]["backbone"] = backbone
    weights = weights_tag(spec.weights_file())
    key = {"backbone": backbone, "weights": weights, "profile": params["profile"], "seed": int(params["seed"]),
           "splits": params["datasets"][dataset]["splits"][params["profile"]],
           "prompt_template": params["embed"]["prompt_template"],
           "zero_shot_templates": list(params["datasets"]["zero_shot_templates"])}
    folder = embeddings_dir(backbone, dataset)
    key_file = folder / "table2_key.json"
    try:
        current = json.loads(key_file.read_text(encoding="utf-8"))
    except (OSError, ValueError):
        current = None
    if current != key:
        embed_multilabel(dataset, own)
        write_json(key_file, key, decimals=0)
    template = params["embed"]["prompt_template"]
    prompts = make_prompts(template, laion10k_words())
    batch_size = int(params["embed"]["batch_size"])
    cached_array(embeddings_dir(backbone, "cifar10") / "laion10k_vocab.npy", prompts, backbone, weights,
                 lambda: load_backbone(backbone).encode_text(prompts, batch_size=batch_size))
