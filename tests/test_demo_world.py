"""The demo world builds in no answer: the words and vectors that place simulated images are
disjoint from every vocabulary, prompt and label set that a method or an evaluation reads.

The read sets are rebuilt here from their sources (SpLiCE's file, the concept table, the label
modules, ``params.yaml``), not from the simulator's own list of reserved words.
"""

from __future__ import annotations

import re

import numpy as np
import pandas as pd
import pytest

from slics.data.cifar import CIFAR10_CLASSES
from slics.data.coco import CATEGORY_NAMES, SUPERCATEGORIES
from slics.data.mirflickr import LABELS38
from slics.embedding.embed import embeddings_dir, laion_lines
from slics.embedding.simulator import PLACEMENT_TEMPLATE, placement_vocabulary, reserved_words
from slics.utils.config import load_params, upstream_results_dir

PARAMS = load_params()
TEMPLATES = [PARAMS["embed"]["prompt_template"], *PARAMS["datasets"]["zero_shot_templates"]]


def _label_words():
    names = [*CIFAR10_CLASSES, *CATEGORY_NAMES, *SUPERCATEGORIES, *LABELS38]
    return {w for n in names for w in re.split(r"[\s_]+", n.lower().replace("_r1", "")) if w}


@pytest.fixture(scope="module")
def read_sets():
    lines = laion_lines()
    concepts = pd.read_csv(upstream_results_dir() / "tables" / "concepts.csv", keep_default_na=False)["concept"]
    return {"LAION-10k (SpLiCE, F-SpLiCE, word captions)": set(lines[-10_000:]),
            "concept nouns (section 2's dictionary)": set(concepts.astype(str)),
            "label and class names": _label_words(),
            "prompt template words": {w for t in TEMPLATES for w in re.findall(r"[a-z]+", t.lower())}}


@pytest.fixture(scope="module")
def placement(read_sets):
    words = placement_vocabulary(laion_lines(), reserved_words(
        [read_sets["LAION-10k (SpLiCE, F-SpLiCE, word captions)"], read_sets["concept nouns (section 2's dictionary)"]],
        TEMPLATES), PARAMS["demo_world"]["placement_words"], 10_000)
    return words


def test_placement_words_are_disjoint_from_every_read_set(placement, read_sets):
    assert len(placement) > 5000
    for name, words in read_sets.items():
        shared = sorted(set(placement) & words)
        assert not shared, f"{len(shared)} placement words are in the {name}: {shared[:10]}"
    for label in (w for w in _label_words() if len(w) >= 3):
        copies = [w for w in placement if w.startswith(label) or w.endswith(label)]
        assert not copies, f"placement words derived from the label word {label!r}: {copies[:5]}"


def test_placement_template_is_no_prompt():
    assert PLACEMENT_TEMPLATE not in TEMPLATES
    assert all(PLACEMENT_TEMPLATE.format("cat") != t.format("cat") for t in TEMPLATES)


def _stage_file(name):
    path = embeddings_dir("demo", "cifar10") / name
    if not path.is_file():
        pytest.skip(f"{path} is not built (make inputs builds it)")
    return path


def test_the_stage_placed_images_with_exactly_these_words(placement):
    assert _stage_file("placement_words.txt").read_text().split("\n")[:-1] == placement


def test_no_vector_that_places_images_is_a_vector_a_method_reads():
    """Row by row: no placement vector equals (cosine >= 0.999) a LAION-10k, concept, class-prompt or
    zero-shot-template vector of the same text tower."""
    P = np.load(_stage_file("placement_vocab.npy"))
    folder = embeddings_dir("demo", "cifar10")
    read = [np.load(folder / f) for f in ("laion10k_vocab.npy", "concepts.npy", "cifar10_classes.npy")]
    for dataset in ("mirflickr25k", "coco"):
        path = embeddings_dir("demo", dataset) / "general_text.npy"
        if path.is_file():
            read.append(np.load(path))
    for R in read:
        assert (P @ R.T).max() < 0.999
