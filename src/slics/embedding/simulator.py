"""The demo world: a generative model of images, rendered into each demo backbone's space.

The ``demo`` profile runs offline, where no image encoder is available, so its images are
**simulated**. The model has two parts: *scenes* (what is in an image) and *renderings*
(how a backbone sees a scene). Neither reads a word, template or vector that a method or an
evaluation of the compendium reads, so no method can find its own inputs in the images:

* **Placement vocabulary** (:func:`placement_vocabulary`): the ``placement_words`` words of
  SpLiCE's ``laion.txt`` just *below* the LAION-10k (which SpLiCE, F-SpLiCE and the word
  captions read), alphabetic, with every word removed that is a LAION-10k word, a Flickr30k
  concept noun (the dictionary of section 2), a label or class name of any dataset, a word of
  any prompt template, or a morphological copy of a label word (a word that begins or ends
  with one: ``doggie``, ``spaceship``). Words are embedded bare (:data:`PLACEMENT_TEMPLATE`,
  a template no prompt set uses).
* **Descriptors** (:func:`label_descriptors`): each label's ``n_descriptors`` placement words
  nearest to its bare name (``cat`` -> ``feline``, ``kitties``, ``meow``, ...). The name
  only *selects* them; the label's name, prompt and zero-shot templates never enter an image.
* **Scenes** (:func:`draw_scenes`): an item has the labels of a real label vector (a
  CIFAR-10 class; MIRFlickr25K's 24 or COCO's 80 annotation columns). For each of its labels
  it draws a weight ``w`` (uniform in ``label_weight``), a core weight ``a`` (uniform in
  ``core_weight``) and a non-negative Dirichlet mix ``m`` (``descriptor_concentration``)
  of the label's descriptors; and ``n_clutter`` random placement words with weights
  ``c`` (uniform in ``clutter_weight``) as background.
* **Renderings** (:func:`render_scenes`): a backbone has its own vector ``f(v)`` for every
  placement word ``v``. A scene becomes

  ``x = sum_l w_l * unit(a_l * unit(mean_k f(d_lk)) + sum_k m_lk f(d_lk)) + sum_j c_j f(n_j) + o + e``,

  then ``x / ||x||``, where ``o`` is the backbone's shared offset and ``e`` its
  Gaussian noise of expected length ``noise_std``. Backbone ``demo`` (CLIP's part) uses
  the text tower's own word vectors, so its images are *aligned* with text, and its offset
  is a **modality gap**: ``gap_norm`` along a random direction orthogonal to the mean text
  embedding and to every label's core, minus ``gap_text_offset`` along that mean, so
  images sit in a cone of their own as with CLIP. The image-only demo backbones
  (:mod:`slics.embedding.demo_spaces`) render the same scenes through their own seeded
  maps: ``demo-dino`` in a 768-d space with no text alignment, ``demo-titok`` as 32
  compressed tokens of 12 numbers dominated by appearance.

With the constants of ``params.yaml`` the demo's measured statistics (zero-shot accuracy,
cosines) are in each embed stage's ``manifest.json``. Every constant is in the
``demo_world`` block of ``params.yaml``; :func:`describe` renders the paragraph the
notebooks show. Draws come from ``numpy.random.Generator``\\ s seeded by ``seed``: the same
seed gives the same bytes.
"""

from __future__ import annotations

import re
from dataclasses import asdict, dataclass, fields

import numpy as np

from ..core.normalise import normalise_rows
from ..utils.validation import check_labels, check_matrix

CIFAR10_N_CLASSES = 10
PLACEMENT_TEMPLATE = "{}"        # bare words: no prompt set of a method or an evaluation uses it
_WORD = re.compile(r"[a-z]{3,}")


def _pair(value, name: str) -> tuple[float, float]:
    try:
        lo, hi = (float(v) for v in value)
    except (TypeError, ValueError):
        raise ValueError(f"demo_world.{name} must be a [low, high] pair of numbers, got {value!r}.") from None
    if not (np.isfinite(lo) and np.isfinite(hi) and 0 <= lo <= hi):
        raise ValueError(f"demo_world.{name} must satisfy 0 <= low <= high (finite), got [{lo}, {hi}].")
    return lo, hi


_PAIRS = ("core_weight", "label_weight", "clutter_weight")
_COUNTS = ("n_per_class", "placement_words", "n_descriptors", "visual_dim", "titok_appearance_rank")
_NONNEG = ("gap_norm", "gap_text_offset", "noise_std", "visual_nonlinearity", "dino_offset",
           "dino_noise_std", "titok_appearance_std", "titok_nonlinearity")


@dataclass(frozen=True)
class SimulatorParams:
    """Constants of the demo world (the ``demo_world`` block of ``params.yaml``)."""

    n_per_class: int = 1000                              # CIFAR-10 stand-in: items per class
    placement_words: int = 8000                          # laion.txt words just below the LAION-10k
    n_descriptors: int = 30                              # placement words that describe a label
    descriptor_concentration: float = 0.2                # Dirichlet alpha of an item's descriptor mix
    core_weight: tuple[float, float] = (0.5, 2.0)        # range of a, the weight of a label's core
    label_weight: tuple[float, float] = (0.1, 2.0)       # range of w, each label's weight
    n_clutter: int = 3                                   # background words per item
    clutter_weight: tuple[float, float] = (0.0, 0.8)     # range of each background word's weight
    gap_norm: float = 1.5                                # demo: gap along a random direction ⟂ text
    gap_text_offset: float = 1.3                         # demo: gap pulled back along the text mean
    noise_std: float = 0.9                               # demo: expected length of the noise
    visual_dim: int = 768                                # demo-dino: dimension of its space
    visual_nonlinearity: float = 2.0                     # image-only maps: gain inside tanh
    dino_offset: float = 1.0                             # demo-dino: length of its shared offset
    dino_noise_std: float = 0.9                          # demo-dino: expected length of its noise
    titok_appearance_std: float = 4.0                    # demo-titok: length of the appearance term
    titok_appearance_rank: int = 16                      # demo-titok: directions the appearance varies on
    titok_nonlinearity: float = 1.0                      # demo-titok: gain inside the token tanh

    def __post_init__(self):
        for name in _COUNTS:
            value = getattr(self, name)
            if isinstance(value, bool) or int(value) != value or value < 1:
                raise ValueError(f"demo_world.{name} must be a positive integer, got {value!r}.")
        if isinstance(self.n_clutter, bool) or int(self.n_clutter) != self.n_clutter or self.n_clutter < 0:
            raise ValueError(f"demo_world.n_clutter must be a non-negative integer, got {self.n_clutter!r}.")
        for name in _PAIRS:
            object.__setattr__(self, name, _pair(getattr(self, name), name))
        if self.label_weight[0] <= 0:
            raise ValueError(f"demo_world.label_weight must be positive (low > 0), got {self.label_weight}.")
        if not (np.isfinite(self.descriptor_concentration) and self.descriptor_concentration > 0):
            raise ValueError("demo_world.descriptor_concentration must be a positive number, "
                             f"got {self.descriptor_concentration!r}.")
        for name in _NONNEG:
            value = float(getattr(self, name))
            if not (np.isfinite(value) and value >= 0):
                raise ValueError(f"demo_world.{name} must be a finite non-negative number, got {value!r}.")
            object.__setattr__(self, name, value)
        for name in (*_COUNTS, "n_clutter"):
            object.__setattr__(self, name, int(getattr(self, name)))
        object.__setattr__(self, "descriptor_concentration", float(self.descriptor_concentration))

    @classmethod
    def from_dict(cls, params: dict | None) -> "SimulatorParams":
        """Build from the ``demo_world`` block; unknown keys are an error (typos do not pass silently)."""
        params = dict(params or {})
        known = {f.name for f in fields(cls)}
        unknown = sorted(set(params) - known)
        if unknown:
            raise ValueError(f"Unknown demo_world key(s): {', '.join(unknown)}. Known keys: "
                             f"{', '.join(sorted(known))}.")
        return cls(**params)

    def to_dict(self) -> dict:
        return {k: list(v) if isinstance(v, tuple) else v for k, v in asdict(self).items()}


def _params(params) -> SimulatorParams:
    return params if isinstance(params, SimulatorParams) else SimulatorParams.from_dict(params)


def _rng(random_state) -> np.random.Generator:
    if isinstance(random_state, np.random.Generator):
        return random_state
    if random_state is None or isinstance(random_state, (bool, np.bool_)) or \
            not isinstance(random_state, (int, np.integer)):
        raise ValueError(f"random_state must be an integer seed or a numpy Generator, got {random_state!r}; "
                         "the demo world must be reproducible.")
    return np.random.default_rng(int(random_state))


def cifar10_demo_labels(n_per_class: int = 1000) -> np.ndarray:
    """Class ids of the CIFAR-10 stand-in: ``i % 10`` for item ``i`` (int64, ``10 * n_per_class``).

    The classes cycle, so every prefix of the set is (nearly) balanced.
    """
    if isinstance(n_per_class, bool) or int(n_per_class) != n_per_class or n_per_class < 1:
        raise ValueError(f"n_per_class must be a positive integer, got {n_per_class!r}.")
    return np.tile(np.arange(CIFAR10_N_CLASSES, dtype=np.int64), int(n_per_class))


def one_hot(labels, n_classes: int) -> np.ndarray:
    """Boolean (n, n_classes) label matrix of integer class ids."""
    labels = np.asarray(labels)
    if labels.ndim != 1 or not np.issubdtype(labels.dtype, np.integer):
        raise ValueError(f"labels must be a 1-D array of integer class ids, got {labels.dtype} {labels.shape}.")
    if labels.size and (labels.min() < 0 or labels.max() >= n_classes):
        raise ValueError(f"class ids must be in [0, {n_classes}).")
    Y = np.zeros((labels.size, n_classes), dtype=bool)
    Y[np.arange(labels.size), labels] = True
    return Y


# --------------------------------------------------------------------------- words that place images
def label_words() -> tuple[str, ...]:
    """Every label and class name of the compendium's datasets, as lower-case words."""
    from ..data.cifar import CIFAR10_CLASSES
    from ..data.coco import CATEGORY_NAMES, SUPERCATEGORIES
    from ..data.mirflickr import LABELS38

    names = (*CIFAR10_CLASSES, *CATEGORY_NAMES, *SUPERCATEGORIES, *(n.removesuffix("_r1") for n in LABELS38))
    return tuple(dict.fromkeys(w for n in names for w in re.split(r"[\s_]+", n.lower()) if w))


def reserved_words(read_sets, templates) -> set[str]:
    """The words a method or an evaluation reads: every word of ``read_sets`` and of ``templates``,
    and every label word; none of them may place an image."""
    words = {w.lower() for group in read_sets for w in group}
    words |= {w for t in templates for w in re.findall(r"[a-z]+", t.lower())}
    return words | set(label_words())


def placement_vocabulary(lines, reserved, size: int, skip_last: int) -> list[str]:
    """The placement words: of the ``size`` lines of ``lines`` above the last ``skip_last`` (the
    LAION-10k), the alphabetic ones that are not ``reserved`` and are no morphological copy of a
    label word (begin or end with one of 3+ letters)."""
    if len(lines) < skip_last + size:
        raise ValueError(f"demo_world.placement_words={size} needs {skip_last + size} vocabulary lines, "
                         f"the file has {len(lines)}; lower demo_world.placement_words.")
    stems = [w for w in label_words() if len(w) >= 3]
    window = lines[len(lines) - skip_last - size:len(lines) - skip_last]
    return [w for w in window if _WORD.fullmatch(w) and w not in reserved
            and not any(w.startswith(s) or w.endswith(s) for s in stems)]


def label_descriptors(name_emb, placement_emb, k: int) -> np.ndarray:
    """Indices (C, k) of the ``k`` placement rows most cosine-similar to each label name (ties: lower index)."""
    name_emb, placement_emb = check_matrix(name_emb, "name_emb"), check_matrix(placement_emb, "placement_emb")
    if k > placement_emb.shape[0]:
        raise ValueError(f"demo_world.n_descriptors={k} needs at least {k} placement words, got "
                         f"{placement_emb.shape[0]}; lower n_descriptors or raise placement_words.")
    sims = normalise_rows(name_emb) @ normalise_rows(placement_emb).T
    return np.argsort(-sims, axis=1, kind="stable")[:, :k]


# --------------------------------------------------------------------------- scenes and their renderings
@dataclass(frozen=True)
class Scenes:
    """What is in each item: one row per (item, label) pair, in row-major order of the label matrix."""

    n_items: int
    items: np.ndarray               # (P,) item of each pair
    labels: np.ndarray              # (P,) label of each pair
    label_weights: np.ndarray       # (P,) w
    core_weights: np.ndarray        # (P,) a
    mix: np.ndarray                 # (P, k) Dirichlet mix of the label's descriptors
    clutter_index: np.ndarray       # (n, n_clutter) placement words in the background
    clutter_weights: np.ndarray     # (n, n_clutter) c


def draw_scenes(labels, n_placement: int, params, random_state) -> Scenes:
    """Draw the scenes of items with the binary ``labels`` (n, C); see the module docstring."""
    p = _params(params)
    if np.ndim(labels) != 2:
        raise ValueError(f"labels must be a binary (n_items, n_labels) matrix, got shape {np.shape(labels)}; "
                         "use one_hot() for integer class ids.")
    Y = check_labels(labels, np.shape(labels)[0], "labels")
    if Y.shape[0] == 0:
        raise ValueError("labels has no rows; there is nothing to simulate.")
    empty = np.flatnonzero(~Y.any(axis=1))
    if empty.size:
        raise ValueError(f"{empty.size} item(s) have no label (first: row {empty[0]}); every simulated "
                         "image needs at least one label.")
    rng = _rng(random_state)
    items, labs = np.nonzero(Y)
    n_pairs = items.size
    weights = rng.uniform(*p.label_weight, size=n_pairs)
    core = rng.uniform(*p.core_weight, size=n_pairs)
    mix = rng.gamma(p.descriptor_concentration, size=(n_pairs, p.n_descriptors))
    mix /= np.maximum(mix.sum(axis=1, keepdims=True), np.finfo(float).tiny)   # Dirichlet, rows sum to 1
    clutter_idx = rng.integers(0, n_placement, size=(Y.shape[0], p.n_clutter))
    clutter_w = rng.uniform(*p.clutter_weight, size=(Y.shape[0], p.n_clutter))
    return Scenes(Y.shape[0], items, labs, weights, core, mix, clutter_idx, clutter_w)


def render_scenes(scenes: Scenes, word_vectors, descriptors, offset, noise_std: float,
                  rng: np.random.Generator, normalise: bool = True) -> np.ndarray:
    """Render ``scenes`` with one vector per placement word (``word_vectors``, (V, D)); float64 (n, D).

    ``descriptors`` (C, k) indexes each label's descriptor words; ``offset`` (D,) is shared by every
    item; the noise is Gaussian with expected length about ``noise_std``.
    """
    W = normalise_rows(check_matrix(word_vectors, "word_vectors"))
    descriptors = np.asarray(descriptors)
    if descriptors.shape[1] != scenes.mix.shape[1]:
        raise ValueError(f"descriptors has {descriptors.shape[1]} words per label but the scenes mix "
                         f"{scenes.mix.shape[1]}; draw the scenes with the same n_descriptors.")
    n, d = scenes.n_items, W.shape[1]
    X = np.zeros((n, d))
    for c in np.unique(scenes.labels):                   # loop over labels, not items
        rows = np.flatnonzero(scenes.labels == c)
        P = W[descriptors[c]]                                                    # (k, D)
        core = normalise_rows(P.mean(axis=0))
        directions = scenes.core_weights[rows, None] * core + scenes.mix[rows] @ P
        X[scenes.items[rows]] += scenes.label_weights[rows, None] * normalise_rows(directions)
    if scenes.clutter_index.shape[1]:
        X += np.einsum("nj,njd->nd", scenes.clutter_weights, W[scenes.clutter_index])
    X += offset + rng.standard_normal((n, d)) * (noise_std / np.sqrt(d))
    return normalise_rows(X) if normalise else X


def modality_gap(text_emb: np.ndarray, norm: float, text_offset: float,
                 rng: np.random.Generator, cores: np.ndarray | None = None) -> np.ndarray:
    """The shared gap vector ``norm * r - text_offset * m``.

    ``m`` is the unit mean of ``text_emb`` and ``r`` a random unit vector orthogonal to ``m`` and to
    the rows of ``cores`` (the labels' cores): images move out of the text cone, into a cone of
    their own, and the random part favours no label.
    """
    d = text_emb.shape[1]
    centre = normalise_rows(text_emb.mean(axis=0))
    span = centre[:, None] if cores is None else np.column_stack([centre, cores.T])
    if span.shape[1] >= d:
        raise ValueError(f"The modality gap needs fewer labels ({span.shape[1] - 1}) than dimensions ({d}).")
    basis, _ = np.linalg.qr(span)
    r = rng.standard_normal(d)
    r -= basis @ (basis.T @ r)
    return norm * normalise_rows(r) - text_offset * centre


def simulate_images(labels, placement_emb, descriptors, params, random_state, return_details: bool = False):
    """Images of backbone ``demo`` (text-aligned): float64 (n, d) with unit rows.

    Parameters
    ----------
    labels : (n, C) binary matrix
        Labels of each item (one-hot for CIFAR-10; several per item for multi-label sets).
        Every item needs at least one label.
    placement_emb : (V, d)
        Text embeddings of the placement words (:func:`placement_vocabulary`, embedded bare).
    descriptors : (C, k) int
        Each label's descriptor words (:func:`label_descriptors`).
    params : dict or SimulatorParams
        The ``demo_world`` block.
    random_state : int or numpy Generator
        Seeds the scenes, then the gap and the noise (the image-only backbones redraw the same
        scenes from the same seed).
    return_details : bool
        Also return the scenes and the gap vector.
    """
    p = _params(params)
    placement_emb = normalise_rows(check_matrix(placement_emb, "placement_emb"))
    descriptors = np.asarray(descriptors)
    if descriptors.ndim != 2 or descriptors.shape[0] != np.shape(labels)[-1]:
        raise ValueError(f"descriptors must hold one row per label column ({np.shape(labels)[-1]}), "
                         f"got shape {descriptors.shape}.")
    rng = _rng(random_state)
    scenes = draw_scenes(labels, placement_emb.shape[0], p, rng)
    cores = normalise_rows(placement_emb[descriptors].mean(axis=1))
    gap = modality_gap(placement_emb, p.gap_norm, p.gap_text_offset, rng, cores)
    X = render_scenes(scenes, placement_emb, descriptors, gap, p.noise_std, rng)
    return (X, {"scenes": scenes, "gap": gap}) if return_details else X


def simulate_cifar10(placement_emb, descriptors, params, random_state):
    """The CIFAR-10 stand-in: ``(images (10 * n_per_class, d) float64, labels int64)``."""
    p = _params(params)
    labels = cifar10_demo_labels(p.n_per_class)
    X = simulate_images(one_hot(labels, CIFAR10_N_CLASSES), placement_emb, descriptors, p, random_state)
    return X, labels


def describe(params=None) -> str:
    """A Markdown paragraph for the notebooks: demo images are simulated, and how."""
    p = _params(params)
    n_items = CIFAR10_N_CLASSES * p.n_per_class
    return (
        "**The demo images are simulated, not real photographs.** The `demo` profile runs offline, "
        "where no image encoder is available, so it uses a real text encoder "
        "(sentence-transformers `all-MiniLM-L6-v2`, 384 dimensions) and a seeded generative model of "
        f"images (the CIFAR-10 stand-in has {n_items:,} items, {p.n_per_class:,} per class). "
        "An image is a *scene*: for each of its labels, a weight drawn uniformly from "
        f"[{p.label_weight[0]:g}, {p.label_weight[1]:g}] times a mix of the label's {p.n_descriptors} "
        "*descriptor words* (its core, weighted by a draw from "
        f"[{p.core_weight[0]:g}, {p.core_weight[1]:g}], plus a Dirichlet (alpha = "
        f"{p.descriptor_concentration:g}) mix, so images of a class vary: a cat leans towards "
        f"\"feline\", \"kitties\" or \"meow\"); {p.n_clutter} random background words, each weighted in "
        f"[{p.clutter_weight[0]:g}, {p.clutter_weight[1]:g}]; a shared offset and noise. The descriptor "
        f"and background words come from the {p.placement_words:,} words of SpLiCE's `laion.txt` just "
        "below the LAION-10k, with every word removed that a method or an evaluation reads (the "
        "LAION-10k, the Flickr30k concept nouns, label names and their derived forms, prompt "
        "templates): no method finds its own vocabulary, prompts or labels inside an image. "
        "The `demo` backbone renders scenes with the text tower's word vectors and a \"modality gap\" "
        f"offset ({p.gap_norm:g} along a random direction orthogonal to the text, {p.gap_text_offset:g} "
        f"back along the mean text direction; noise about {p.noise_std:g}), so images are aligned with "
        "text but sit in a cone of their own, as with CLIP. The image-only stand-ins for DINOv2 and "
        "TiTok render the same scenes through their own random maps (no text alignment; TiTok: 32 "
        "compressed tokens dominated by appearance). All constants are in the `demo_world` block of "
        "`params.yaml`. Numbers from the demo show how the methods behave on data with this "
        "structure; they are not results on real images. Switch `profile` to `full` to run the real "
        "models on real images."
    )
