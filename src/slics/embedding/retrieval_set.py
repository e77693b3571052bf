"""A retrieval set: one dataset's embeddings under one backbone, its labels and its split.

:func:`load_set` reads what the compendium cached for a dataset and a backbone of the
registry (:mod:`slics.embedding.registry`) and preprocesses the embeddings as the SLiCS
paper (section 4.1) says for that backbone (:mod:`slics.preprocess`): CLIP-like backbones
are normalised, centred by an image mean (SpLiCE's precomputed one where the registry names
it, else the mean of the training rows) and renormalised; TiTok's tokens are normalised one
by one; DINOv2's rows are normalised. The original embeddings are kept beside (zero-shot
pseudo-labels use them). :meth:`RetrievalSet.from_arrays` builds one from a user's arrays.

Where the embeddings come from, by the backbone's ``images``:

* ``"simulated"`` / ``"encoder"`` with a text tower: the ``embed_<dataset>`` stage's files
  (``images.npy``, ``general_text.npy``, ``split.csv``; the LAION-10k words from ``embed_cifar10``);
* another backbone's name (the demo's TiTok and DINOv2 protocols): that backbone's files;
* ``"encoder"`` without a text tower (TiTok, DINOv2): the real images encoded once and cached
  with a manifest (:func:`encoded_images`).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pandas as pd

from ..data.multilabel import MultiLabelSet
from ..utils.validation import check_indices, check_labels, check_matrix, check_names
from .registry import embeddings_source, get_spec

SPLITS = ("train", "val", "query", "pool")


@dataclass
class RetrievalSet:
    """One dataset under one backbone, preprocessed, with its split and labels (rows aligned)."""

    dataset: str
    backbone: str
    X: np.ndarray             # (n, d) preprocessed as the backbone's entry says
    X_raw: np.ndarray         # (n, d) the embeddings as given (zero-shot pseudo-labels)
    split: np.ndarray         # (n,) train / val / query / pool
    data: MultiLabelSet
    general_text: np.ndarray | None  # (C, d) template-averaged concept-name embeddings (text tower)
    vocab: np.ndarray | None         # (V, d) word embeddings (SpLiCE's vocabulary, word captions)
    mean: np.ndarray          # (d,) the image mean that was removed (zeros: none)

    def rows(self, name: str) -> np.ndarray:
        """Row indices of split ``name`` (``train``, ``val``, ``query`` or ``pool``)."""
        if name not in SPLITS:
            raise ValueError(f"split name must be one of {SPLITS}, got {name!r}.")
        return np.flatnonzero(self.split == name)

    @classmethod
    def from_arrays(cls, X, general, split, *, general_names, sub=None, sub_parent=None, sub_names=None,
                    general_text=None, vocab=None, backbone: str = "precomputed", preprocessing: str | None = None,
                    n_tokens: int | None = None, dataset: str = "user", image_ids=None) -> "RetrievalSet":
        """A retrieval set from a user's arrays, preprocessed as ``backbone`` (or ``preprocessing``) says.

        Parameters
        ----------
        X : array of shape (n, d)
            Embeddings as the model gives them.
        general : binary array of shape (n, C)
            General concepts of every row (supervision and general relevance).
        split : array of shape (n,)
            ``"train"``, ``"val"``, ``"query"`` or ``"pool"`` per row.
        general_names : sequence of C str
        sub, sub_parent, sub_names : optional
            Sub-labels (n, S), the general concept of each (S,), and their names; default none.
        general_text : array of shape (C, d), optional
            Concept-name embeddings of a text tower (U-SLiCS pseudo-labels, F-SpLiCE groups).
        vocab : array of shape (V, d), optional
            Word embeddings (SpLiCE's dictionary, word captions).
        backbone : str, default "precomputed"
            Registry name whose preprocessing applies (``precomputed``: centring by the mean
            of the training rows).
        preprocessing : {"centre", "tokens", "unit"}, optional
            Overrides the backbone's kind (``n_tokens`` with ``"tokens"``).

        Returns
        -------
        RetrievalSet
        """
        from ..preprocess import image_mean, preprocess

        X = check_matrix(X, "X")
        n, d = X.shape
        Y = check_labels(general, n, "general")
        names = tuple(check_names(general_names, "general_names", unique=True))
        if len(names) != Y.shape[1]:
            raise ValueError(f"general_names has {len(names)} names for {Y.shape[1]} label columns.")
        split = np.asarray(split, dtype=object)
        if split.shape != (n,):
            raise ValueError(f"split must hold one entry per row of X ({n}), got shape {split.shape}.")
        unknown = sorted(set(split) - set(SPLITS))
        if unknown:
            raise ValueError(f"split holds unknown names {unknown[:5]}; use {', '.join(SPLITS)}.")
        for part in ("train", "query", "pool"):
            if not np.any(split == part):
                raise ValueError(f"split has no '{part}' rows; filtered retrieval needs train, query and pool rows.")
        if sub is None:
            S, parent, snames = np.zeros((n, 0), dtype=bool), np.zeros(0, dtype=np.int64), ()
        else:
            S = check_labels(sub, n, "sub")
            parent = check_indices(sub_parent, "sub_parent", Y.shape[1])       # no truncation, no wrap-around
            snames = tuple(check_names(sub_names, "sub_names", n=S.shape[1]) if sub_names is not None
                           else (str(s) for s in range(S.shape[1])))
        ids = tuple(str(i) for i in (image_ids if image_ids is not None else range(n)))
        data = MultiLabelSet(ids, Y, names, Y, names, S, snames, parent)
        for what, E in (("general_text", general_text), ("vocab", vocab)):
            if E is not None:
                check_matrix(E, what, n_cols=d)
        if general_text is not None and np.asarray(general_text).shape[0] != len(names):
            raise ValueError(f"general_text has {np.asarray(general_text).shape[0]} rows for {len(names)} concepts.")
        spec = get_spec(backbone)
        kind = preprocessing or spec.preprocessing
        mean = image_mean(X[split == "train"]) if kind == "centre" else np.zeros(d)
        Xp = preprocess(X, kind, mean=mean, n_tokens=n_tokens or spec.n_tokens)
        as_array = (lambda E: None if E is None else check_matrix(E, "embeddings"))
        return cls(dataset, spec.display, Xp, X, split, data, as_array(general_text), as_array(vocab), mean)


def split_path(backbone: str, dataset: str):
    from .embed import embeddings_dir

    return embeddings_dir(backbone, dataset) / "split.csv"


def _check_split_exists(backbone: str, dataset: str) -> None:
    path = split_path(backbone, dataset)
    if not path.is_file():
        raise FileNotFoundError(f"The split of {dataset} under backbone {backbone} ({path}) is missing: the "
                                f"stage embed_{dataset} has not run for this backbone and profile. Run "
                                f"`dvc repro embed_{dataset}` (or `python -m slics.embedding.embed {dataset}`).")


def read_split(backbone: str, dataset: str, data: MultiLabelSet) -> np.ndarray:
    """The split written by stage ``embed_<dataset>``, checked against the labels' image ids."""
    _check_split_exists(backbone, dataset)
    path = split_path(backbone, dataset)
    table = pd.read_csv(path, keep_default_na=False)
    if list(table.columns[:2]) != ["image", "split"]:
        raise ValueError(f"{path} must have the columns image, split; rerun `dvc repro embed_{dataset}`.")
    if tuple(table["image"]) != data.image_ids:
        raise ValueError(f"split.csv of {dataset} does not match its labels; rerun `dvc repro embed_{dataset}`.")
    return table["split"].to_numpy(dtype=object)


def load_set(dataset: str, params: dict, backbone: str | None = None) -> RetrievalSet:
    """The retrieval set of ``dataset`` under ``backbone`` (default ``embed.backbone``), preprocessed."""
    from ..preprocess import backbone_mean, centre, image_mean, preprocess
    from .embed import load_embeddings
    from .embed_multilabel import load_labels

    backbone = params["embed"]["backbone"] if backbone is None else backbone
    spec = get_spec(backbone)
    profile = params["profile"]
    source = embeddings_source(backbone)
    if get_spec(source).text_tower:          # an embed stage's files: fail on a missing split before any labels load
        _check_split_exists(source, dataset)
    data = load_labels(dataset, profile)
    if get_spec(source).text_tower:
        split = read_split(source, dataset, data)
        X_raw = load_embeddings(source, "images", dataset)
        general_text = load_embeddings(source, "general_text", dataset)
        vocab = load_embeddings(source, "laion10k_vocab", "cifar10")
    else:                                    # an image-only encoder, same seeded split as the embed stages
        from .embed_multilabel import dataset_split

        X_raw, general_text, vocab = encoded_images(dataset, params, source), None, None
        split = dataset_split(data, params, dataset)
    if spec.preprocessing == "centre":
        mean = backbone_mean(source)
        mean = image_mean(X_raw[split == "train"]) if mean is None else mean
        X = centre(X_raw, mean)
    else:
        X, mean = preprocess(X_raw, spec.preprocessing, n_tokens=spec.n_tokens), np.zeros(X_raw.shape[1])
    if not spec.text_tower:                  # no text tower: nothing to pseudo-label or caption with
        general_text = vocab = None
    return RetrievalSet(dataset, spec.display, X, X_raw, split, data, general_text, vocab, mean)


def encoded_images(dataset: str, params: dict, backbone: str, device=None) -> np.ndarray:
    """Image embeddings of ``dataset``'s labelled images under an image-only ``backbone``, cached.

    Computed once from the dataset's image archive by the registry's encoder and saved under
    ``data/embeddings/<backbone>/<dataset>/images.npy`` with a manifest (:mod:`slics.embedding.cache`:
    rows, image ids, backbone, weights), recomputed when the manifest does not match (beside it, a
    product quantiser's codebook where the encoder has one: ``codebook.npy``). Offline without
    weights or image archive this fails before any model is built.
    """
    from ..data.images import ZipImages, ensure_archive
    from ..utils.io import save_npy
    from .cache import cached_array, weights_tag
    from .embed import embeddings_dir
    from .embed_multilabel import load_labels
    from .registry import load_backbone

    if get_spec(backbone).images == "simulated":     # the demo world's image-only backbones
        from .demo_spaces import demo_images

        return demo_images(dataset, params, backbone)
    data = load_labels(dataset, params["profile"])
    path = embeddings_dir(backbone, dataset) / "images.npy"

    def encode():
        archive = ensure_archive(dataset)
        model = load_backbone(backbone, pretrained=True, device=device)
        X = model.encode_images(ZipImages(archive, data.image_ids), batch_size=int(params["embed"]["batch_size"]))
        if hasattr(model, "codebook"):
            save_npy(path.with_name("codebook.npy"), model.codebook())
        return X

    return cached_array(path, data.image_ids, backbone, weights_tag(get_spec(backbone).weights_file()), encode)
