"""The ``embed`` stage: cached embeddings under ``data/embeddings/<backbone>/<dataset>/``.

The multi-label retrieval sets (``python -m slics.embedding.embed mirflickr25k`` / ``coco``, DVC
stages ``embed_mirflickr25k`` / ``embed_coco``) are embedded by
:mod:`slics.embedding.embed_multilabel`; this module's command line dispatches to it.

Command line: ``python -m slics.embedding.embed cifar10`` (DVC stage ``embed_cifar10``) reads
``params.yaml`` (``profile``, ``seed``, ``embed``, ``demo_world``) and writes into
``data/embeddings/<backbone>/cifar10/``, all float64 with unit rows unless said:

* ``cifar10_images.npy``   (10000, d): CIFAR-10 test images (simulated for ``demo``)
* ``cifar10_labels.npy``   (10000,) int64 class ids
* ``cifar10_classes.npy``  (10, d): the class prompts, ``prompt_template`` of each class name
* ``concepts.npy``         (n_concepts, d): the prompt of every concept of
  :func:`slics.data.concepts.load_concepts`, in its order
* ``laion10k_vocab.npy``   (10000, d): the prompt of every word of the LAION-10k
  vocabulary (the last 10,000 lines of SpLiCE's ``laion.txt``, in file order, so the
  most frequent word is last). Words are embedded *with* the prompt template, like
  the concepts, so that word, concept and class embeddings are comparable.
* demo only: ``placement_vocab.npy`` (V, d) and ``placement_words.txt``, the words that place
  simulated images (disjoint from everything above, embedded bare;
  :func:`slics.embedding.simulator.placement_vocabulary`), and ``descriptors.npy`` (10, k)
  int64, each class's descriptor words among them.
* ``manifest.json``: backbone, profile, seed, template, shapes and a few sanity
  statistics (zero-shot accuracy, mean cosines).

Each dataset stage owns its folder (a DVC output), so the concept and vocabulary
embeddings are written by every stage that needs them and no two stages share an
output. Read arrays back with :func:`load_embeddings`.

Profiles: ``demo`` needs backbone ``demo`` (all-MiniLM-L6-v2 text tower, simulated
images, see :mod:`slics.embedding.simulator`); ``full`` needs a CLIP backbone
(``clip-vit-b32`` or ``clip-rn50``) and the real CIFAR-10 test set. In the full
profile the weights and the data are checked before anything is computed, so an
offline machine fails at once with instructions.
"""

from __future__ import annotations

from ..utils.errors import EXIT_ERROR

import argparse
import sys
import time
from pathlib import Path

import numpy as np

from ..utils.config import data_dir, load_params
from ..utils.io import atomic_dir, check_writable, load_npy, save_npy, write_json, write_text

DATASETS = ("cifar10", "mirflickr25k", "coco")   # the last two: slics.embedding.embed_multilabel
VOCAB_RESOURCE, VOCAB_FILE = "splice_vocab", "splice/vocab/laion.txt"


def vocab_size() -> int:
    """Words of the LAION vocabulary: the registry's ``_expected.laion_vocab_size`` (10,000)."""
    from ..data.resources import expected

    return int(expected("laion_vocab_size"))


def embeddings_dir(backbone: str, dataset: str = "cifar10") -> Path:
    """``data/embeddings/<backbone>/<dataset>``: the output folder of stage ``embed_<dataset>``."""
    return data_dir() / "embeddings" / backbone / dataset


def load_embeddings(backbone: str, name: str, dataset: str = "cifar10") -> np.ndarray:
    """Load ``data/embeddings/<backbone>/<dataset>/<name>.npy``.

    E.g. ``load_embeddings("demo", "cifar10_images")``; names: ``cifar10_images``,
    ``cifar10_labels``, ``cifar10_classes``, ``concepts``, ``laion10k_vocab``.
    """
    name = name[:-4] if name.endswith(".npy") else name
    return load_npy(embeddings_dir(backbone, dataset) / f"{name}.npy", what=f"{backbone} embedding '{name}'",
                    how_to_make=f"run `dvc repro embed_{dataset}` (or `python -m slics.embedding.embed {dataset}`)")


def check_profile(profile: str, backbone: str) -> None:
    """Raise a ValueError unless ``backbone`` is an embed-stage backbone of ``profile`` (the registry says)."""
    from .registry import backbone_names, embed_backbones, get_spec

    if profile not in ("demo", "full"):
        raise ValueError(f"Unknown profile '{profile}' in params.yaml; valid profiles: demo, full.")
    allowed = embed_backbones(profile)
    if backbone not in allowed:
        if backbone not in backbone_names():
            hint = f"'{backbone}' is not a registered backbone"
        else:
            spec = get_spec(backbone)
            hint = (f"'{backbone}' has no text tower" if not spec.text_tower
                    else f"'{backbone}' belongs to profile '{spec.profile}'")
        raise ValueError(
            f"params.yaml sets profile '{profile}' with embed.backbone '{backbone}', but {hint}. "
            f"Profile '{profile}' needs embed.backbone: {' or '.join(allowed)}."
        )


def make_prompts(template: str, words) -> list[str]:
    """``template.format(word)`` for every word; the template must hold exactly one ``{}``."""
    if not isinstance(template, str) or template.count("{}") != 1:
        raise ValueError(f"embed.prompt_template must contain exactly one '{{}}', got {template!r}.")
    return [template.format(w) for w in words]


def laion_lines() -> list[str]:
    """Every line of SpLiCE's ``laion.txt`` (37,445 words, most frequent last)."""
    from ..data.resources import resource_path

    return resource_path(VOCAB_RESOURCE, VOCAB_FILE).read_text(encoding="utf-8").splitlines()


def laion10k_words() -> list[str]:
    """The LAION-10k vocabulary: the last 10,000 lines of SpLiCE's ``laion.txt`` (most frequent last)."""
    lines = laion_lines()
    size = vocab_size()
    words = lines[-size:]
    if len(words) != size or any(not w.strip() for w in words):
        raise ValueError(f"{VOCAB_FILE} should end with {size} non-empty words.")
    return words


def _stats(images: np.ndarray, labels: np.ndarray, class_emb: np.ndarray) -> dict:
    """Zero-shot accuracy and mean cosines (float64; all image pairs in O(n d))."""
    from ..core.zero_shot import zero_shot_accuracy

    X, T = images.astype(np.float64), class_emb.astype(np.float64)
    n = X.shape[0]
    total = X.sum(axis=0)
    sims = X @ T.T
    return {
        "zero_shot_accuracy": zero_shot_accuracy(X, T, labels),
        "mean_image_image_cos": float((total @ total - n) / (n * (n - 1))) if n > 1 else float("nan"),
        "mean_image_text_cos_own_class": float(sims[np.arange(n), labels].mean()),
        "mean_image_text_cos_all_classes": float(sims.mean()),
    }


def embed_cifar10(params: dict | None = None, concepts: list[str] | None = None,
                  out_dir: str | Path | None = None, device=None, progress: bool = True,
                  vocab_words: list[str] | None = None, placement_lines: list[str] | None = None) -> dict:
    """Compute and save the CIFAR-10, concept and vocabulary embeddings; return the manifest.

    ``params`` defaults to ``params.yaml``; ``concepts`` to :func:`slics.data.concepts.load_concepts`;
    ``out_dir`` to ``data/embeddings/<backbone>/cifar10``; ``vocab_words`` to :func:`laion10k_words`
    and ``placement_lines`` (demo) to :func:`laion_lines` (tests pass smaller lists).
    """
    from ..data.cifar import CIFAR10_CLASSES
    from .registry import load_backbone

    params = load_params() if params is None else params
    profile, seed = params["profile"], params["seed"]
    cfg = params["embed"]
    name, template, batch_size = cfg["backbone"], cfg["prompt_template"], int(cfg["batch_size"])
    check_profile(profile, name)
    make_prompts(template, ["x"])
    check_writable((Path(out_dir) if out_dir is not None else embeddings_dir(name, "cifar10")).parent)
    timings: dict[str, float] = {}
    t0 = time.perf_counter()

    if profile == "full":  # fail fast, before any model is built or text encoded
        from ..data.cifar import ensure_cifar10
        from .encoders import check_clip_available

        check_clip_available(name)
        ensure_cifar10()
    else:
        from .simulator import SimulatorParams

        sim_params = SimulatorParams.from_dict(params.get("demo_world"))
    if concepts is None:
        from ..data.concepts import load_concepts

        concepts = load_concepts()
    if not concepts:
        raise ValueError("The concept list is empty; rebuild it with `dvc repro concepts`.")
    words = laion10k_words() if vocab_words is None else list(vocab_words)

    backbone = load_backbone(name, device=device)
    timings["load_backbone_s"] = time.perf_counter() - t0

    def encode(label, texts):
        t = time.perf_counter()
        emb = backbone.encode_text(make_prompts(template, texts), batch_size=batch_size, progress=progress)
        timings[f"encode_{label}_s"] = time.perf_counter() - t
        return emb

    class_emb = encode("classes", CIFAR10_CLASSES)
    concept_emb = encode("concepts", concepts)
    vocab_emb = encode("vocab", words)

    t = time.perf_counter()
    extra_arrays, extra_texts = {}, {}
    if profile == "demo":
        from .simulator import (PLACEMENT_TEMPLATE, label_descriptors, placement_vocabulary, reserved_words,
                                simulate_cifar10)

        reserved = reserved_words([words, concepts], [template, *params["datasets"]["zero_shot_templates"]])
        lines, skip = (laion_lines(), vocab_size()) if placement_lines is None else (placement_lines, 0)
        placement = placement_vocabulary(lines, reserved, sim_params.placement_words, skip)
        placement_emb = backbone.encode_text(make_prompts(PLACEMENT_TEMPLATE, placement), batch_size=batch_size,
                                             progress=progress)
        descriptors = label_descriptors(backbone.encode_text(list(CIFAR10_CLASSES)), placement_emb,
                                        sim_params.n_descriptors)
        timings["encode_placement_s"] = time.perf_counter() - t
        images, labels = simulate_cifar10(placement_emb, descriptors, sim_params, seed)
        timings["simulate_images_s"] = time.perf_counter() - t
        extra_arrays = {"placement_vocab": placement_emb, "descriptors": descriptors.astype(np.int64)}
        extra_texts = {"placement_words.txt": "\n".join(placement) + "\n"}
    else:
        from ..data.cifar import load_cifar10_test

        dataset, labels, _ = load_cifar10_test()
        images = backbone.encode_images(dataset, batch_size=batch_size, progress=progress)
        timings["encode_images_s"] = time.perf_counter() - t

    out = Path(out_dir) if out_dir is not None else embeddings_dir(name, "cifar10")
    arrays = {"cifar10_images": images, "cifar10_labels": np.asarray(labels, dtype=np.int64),
              "cifar10_classes": class_emb, "concepts": concept_emb, "laion10k_vocab": vocab_emb, **extra_arrays}
    timings["total_s"] = time.perf_counter() - t0

    manifest = {
        "dataset": "cifar10",
        "backbone": name,
        "profile": profile,
        "seed": seed,
        "dim": int(backbone.dim),
        "prompt_template": template,
        "images": "simulated (slics.embedding.simulator)" if profile == "demo" else "CIFAR-10 test set (torchvision files)",
        "class_names": list(CIFAR10_CLASSES),
        "n_concepts": len(concepts),
        "vocab": (f"LAION-10k: last {vocab_size()} lines of {VOCAB_FILE}, embedded with the prompt template"
                  if vocab_words is None else f"{len(words)} words given by the caller"),
        "files": {f"{k}.npy": {"shape": list(v.shape), "dtype": str(v.dtype)} for k, v in arrays.items()},
        "checks": _stats(images, arrays["cifar10_labels"], class_emb),
    }
    if profile == "demo":
        manifest["demo_world"] = sim_params.to_dict()
    with atomic_dir(out) as staging:  # all files or none: a failure keeps the previous embeddings
        for key, array in arrays.items():
            save_npy(staging / f"{key}.npy", array)
        for file, text in extra_texts.items():
            write_text(staging / file, text)
        write_json(staging / "manifest.json", manifest, decimals=4)
    manifest["timings"] = {k: round(v, 2) for k, v in timings.items()}  # returned, not written (not stable)
    return manifest


def main(argv: list[str] | None = None) -> int:
    from ..data.cifar import CifarUnavailableError
    from .encoders import BackboneUnavailableError, ModelIntegrityError

    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("dataset", choices=DATASETS)
    parser.add_argument("--params", default=None, help="params.yaml to read (default: the project's)")
    parser.add_argument("--device", default=None, help="torch device for CLIP (default: cuda if available)")
    args = parser.parse_args(argv)
    from ..data.resources import ResourceError

    try:
        if args.dataset != "cifar10":
            from .embed_multilabel import embed_multilabel

            manifest = embed_multilabel(args.dataset, load_params(args.params), device=args.device)
            print(f"{manifest['backbone']} ({manifest['profile']}): {args.dataset}, {manifest['n_images']} "
                  f"images, splits {manifest['splits']}, in {embeddings_dir(manifest['backbone'], args.dataset)}")
            return 0
        manifest = embed_cifar10(load_params(args.params), device=args.device)
    except (BackboneUnavailableError, CifarUnavailableError, ModelIntegrityError, ResourceError,
            FileNotFoundError, ValueError) as err:
        print(f"error: {err}", file=sys.stderr)
        return EXIT_ERROR
    checks = manifest["checks"]
    print(f"{manifest['backbone']} ({manifest['profile']}): wrote {len(manifest['files'])} arrays to "
          f"{embeddings_dir(manifest['backbone'], 'cifar10')}; zero-shot accuracy {checks['zero_shot_accuracy']:.3f}, "
          f"mean image-image cos {checks['mean_image_image_cos']:.3f}, image-text cos (own class) "
          f"{checks['mean_image_text_cos_own_class']:.3f}; timings {manifest['timings']}")
    return 0


if __name__ == "__main__":
    from slics.utils.errors import run_main

    sys.exit(run_main(main))
