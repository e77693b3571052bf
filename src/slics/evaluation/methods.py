"""Retrieval methods of the SLiCS paper's Tables 2-4, one small object each.

A method is fitted on a retrieval set (:class:`slics.embedding.retrieval_set.RetrievalSet`,
learning from its training rows) and then gives, for any query and candidate rows, the
inputs that :func:`slics.core.retrieval.filtered_retrieval` takes: the query representation
and its per-concept transform, the candidate vectors and theirs. A new method is one class
registered with :func:`register_method`; :func:`slics.evaluation.evaluate` runs any list of
them by name.

=========== ===================================================================================
``UF``       unfiltered: ``q`` against ``c`` (the same ranking for every concept)
``S-SVD``    the S-SLiCS initialisation alone (``n_iter=0``): ``project(q, j)`` against ``c``
``S-SLiCS``  supervised SLiCS, ``n_iter`` iterations
``U-SLiCS``  SLiCS on zero-shot pseudo-labels (top ``n_pseudo_labels`` concepts of every training
             row by cosine between its original embedding and the concept-name embeddings)
``SpLiCE``   ``w(q) V`` against ``w(c) V`` (non-negative lasso codes over the centred vocabulary)
``F-SpLiCE`` ``w(q)_{G_j} V_{G_j}`` (the words grouped to concept ``j``) against ``w(c) V``
=========== ===================================================================================

:class:`Quantised` wraps any of them to score a product-quantised candidate pool (TiTok's
Table 3). How the paper's lost symbols were read: the filtered score is
``cos(D_j^T w_j(q), c)`` with ``w_j(q)`` the NNLS coefficients of ``q`` on concept ``j``'s
atoms alone (eq. 3, "partial disentanglement"); ``query="full"`` takes the concept-``j``
component of the NNLS fit on all the query's labelled concepts (Fig. 7), and
``project_pool=True`` projects the candidates too (the ablation).
"""

from __future__ import annotations

import inspect
import warnings
from dataclasses import dataclass, field
from typing import Callable, ClassVar

import numpy as np

from ..core.retrieval import Transform

__all__ = ["RetrievalInputs", "FittedMethod", "RetrievalMethod", "Unfiltered", "SLiCSMethod", "ConceptSubsetModel",
           "SpLiCEMethod",
           "QuantisedCandidates", "Quantised", "register_method", "get_method", "method_names"]


@dataclass
class RetrievalInputs:
    """The arguments of :func:`slics.core.retrieval.filtered_retrieval` that a method sets."""

    query_emb: np.ndarray
    pool_emb: np.ndarray
    transform_query: Transform | None = None
    transform_pool: Transform | None = None


@dataclass
class FittedMethod:
    """A method fitted on one retrieval set.

    Attributes
    ----------
    name : str
        The method's name in tables.
    inputs : callable ``(queries, pool) -> RetrievalInputs``
        Filtered retrieval's inputs for row indices of the set.
    model : object, optional
        What was learnt (a ``SLiCS`` or ``SpLiCE`` estimator), for figures and captions.
    encode : callable ``rows -> codes``, optional
        The method's per-row representation where it has one (SpLiCE's sparse codes).
    notes : list of str
        What the fit had to leave out, in words (e.g. a concept without pseudo-labels).
    """

    name: str
    inputs: Callable[[np.ndarray, np.ndarray], RetrievalInputs]
    model: object = None
    encode: Callable[[np.ndarray], object] | None = None
    notes: list = field(default_factory=list)


class RetrievalMethod:
    """Base class: ``fit(rs, cache=None)`` returns a :class:`FittedMethod`.

    ``cache`` is a dict shared by the methods of one evaluation, for work that several of
    them reuse (the SpLiCE codes of SpLiCE and F-SpLiCE).
    """

    name: ClassVar[str] = ""

    def fit(self, rs, cache: dict | None = None) -> FittedMethod:  # pragma: no cover - interface
        raise NotImplementedError


class Unfiltered(RetrievalMethod):
    """``UF``: the embeddings themselves, the same ranking for every concept."""

    name = "UF"

    def fit(self, rs, cache=None) -> FittedMethod:
        return FittedMethod(self.name, lambda q, p: RetrievalInputs(rs.X[q], rs.X[p]))


class SLiCSMethod(RetrievalMethod):
    """``S-SVD``, ``S-SLiCS`` and ``U-SLiCS``: a SLiCS dictionary learnt on the training rows.

    Parameters
    ----------
    n_atoms : int
        Atoms per concept (the paper's ``K``).
    n_iter : int, default 10
        SLiCS iterations (``0``: the S-SVD initialisation alone).
    batch_size : int, optional
        Mini-batch size (default full batch).
    seed : int, default 0
    labels : {"true", "pseudo"}, default "true"
        Supervision: the set's general labels, or zero-shot pseudo-labels (needs the set's
        concept-name embeddings ``general_text``).
    n_pseudo_labels : int, default 2
        Concepts per training row with ``labels="pseudo"``.
    query : {"partial", "full"}, default "partial"
        Query representation for concept ``j`` (see the module docstring).
    project_pool : bool, default False
        Also project the candidates on concept ``j`` (the ablation).
    model : SLiCS, optional
        An already fitted dictionary to use instead of fitting one.
    name : str, optional
        The name in tables (default from ``n_iter`` and ``labels``).
    """

    def __init__(self, n_atoms: int = 4, n_iter: int = 10, batch_size=None, seed: int = 0, labels: str = "true",
                 n_pseudo_labels: int = 2, query: str = "partial", project_pool: bool = False, model=None,
                 name: str | None = None):
        if labels not in ("true", "pseudo"):
            raise ValueError(f"labels must be 'true' or 'pseudo', got {labels!r}.")
        if query not in ("partial", "full"):
            raise ValueError(f"query must be 'partial' or 'full', got {query!r}.")
        self.n_atoms, self.n_iter, self.batch_size, self.seed = n_atoms, n_iter, batch_size, seed
        self.labels, self.n_pseudo_labels, self.query, self.project_pool = labels, n_pseudo_labels, query, project_pool
        self.model = model
        self.name = name or ("U-SLiCS" if labels == "pseudo" else "S-SVD" if int(n_iter) == 0 else "S-SLiCS")

    def training_labels(self, rs) -> np.ndarray:
        """The supervision of the training rows: true labels or zero-shot pseudo-labels."""
        from ..core.zero_shot import zero_shot_pseudo_labels

        train = rs.rows("train")
        if self.labels == "true":
            return rs.data.general[train]
        if rs.general_text is None:
            raise ValueError(f"{self.name} needs concept-name embeddings (general_text) for its zero-shot "
                             f"pseudo-labels; backbone {rs.backbone!r} has no text tower.")
        return zero_shot_pseudo_labels(rs.X_raw[train], rs.general_text, k=self.n_pseudo_labels)

    def fit(self, rs, cache=None) -> FittedMethod:
        from ..core.dictionary import SLiCS

        model, notes = self.model, []
        if model is None:
            Y = self.training_labels(rs)
            empty = np.flatnonzero(~Y.any(axis=0))
            kept = np.flatnonzero(Y.any(axis=0))
            if empty.size and self.labels == "pseudo":
                # Zero-shot pseudo-labels can leave a concept without a training row: it has nothing
                # to learn atoms from (SLiCS refuses it), so it is skipped and searched unfiltered.
                notes.append(f"{self.name} on {rs.dataset}: no training row is pseudo-labelled with "
                             f"{', '.join(rs.data.general_names[j] for j in empty)}; skipped (those queries are "
                             "searched unfiltered, as UF).")
                warnings.warn(notes[-1], UserWarning, stacklevel=2)
                Y = Y[:, kept]
            model = SLiCS(n_atoms=int(self.n_atoms), n_iter=int(self.n_iter), batch_size=self.batch_size,
                          random_state=self.seed).fit(rs.X[rs.rows("train")], Y)
            if notes:
                model = ConceptSubsetModel(model, kept)
        project = model.project
        if self.query == "full":
            def inputs(q, p):
                comps = model.components(rs.X[q], rs.data.general[q])
                index = np.arange(q.size, dtype=np.float64)[:, None]
                return RetrievalInputs(index, rs.X[p], lambda idx, j: comps[idx[:, 0].astype(np.int64), j])
        else:
            pool_project = ray_exact(model) if self.project_pool else None

            def inputs(q, p):
                return RetrievalInputs(rs.X[q], rs.X[p], project, pool_project)
        return FittedMethod(self.name, inputs, model, notes=notes)


# cosine to an atom above which a projection counts as lying on that atom's ray (rounding leaves ~1e-15)
RAY_COSINE = 1.0 - 1e-12


def ray_exact(model) -> Transform:
    """``model.project`` for candidates, with the exact ties of exact arithmetic kept exact.

    A candidate whose cone projection uses one atom alone lies on that atom's ray, and all such
    candidates have the same cosine to any query: a tie. Computed in floating point their
    directions differ in the last bits, so the order among them (and so AP@k) would be set by
    rounding, which differs between machines and BLAS builds. Each of them is replaced by its atom
    (the cosine does not depend on the length), so they tie exactly and go to the lower index, as
    every tie of :func:`slics.core.retrieval.top_k` does.
    """
    from ..core.normalise import normalise_rows

    def transform(X, concept):
        P = np.array(model.project(X, concept), dtype=np.float64)
        atoms = model.dictionary_[model.atom_concept_ == concept]
        if atoms.shape[0] == 0 or P.shape[0] == 0:        # a skipped concept: the rows themselves
            return P
        cos = normalise_rows(P) @ normalise_rows(atoms).T
        best = np.argmax(cos, axis=1)
        on_ray = cos[np.arange(P.shape[0]), best] >= RAY_COSINE
        P[on_ray] = atoms[best[on_ray]]
        return P

    return transform


class ConceptSubsetModel:
    """A SLiCS model fitted on some of the concepts, indexed by the original concepts: a concept it
    skipped has no atoms, and its projection is the query itself (unfiltered, as UF)."""

    def __init__(self, model, concepts):
        self.model = model
        self.index = {int(j): i for i, j in enumerate(concepts)}
        self.dictionary_ = model.dictionary_
        self.atom_concept_ = np.asarray(concepts, dtype=np.int64)[model.atom_concept_]   # original concept ids

    def project(self, X, concept):
        i = self.index.get(int(concept))
        return np.asarray(X, dtype=np.float64) if i is None else self.model.project(X, i)

    def components(self, X, Y):
        raise NotImplementedError("full disentanglement of a model that skipped concepts is not defined; "
                                  "use the partial projection (query='partial').")


class SpLiCEMethod(RetrievalMethod):
    """``SpLiCE`` and ``F-SpLiCE``: sparse non-negative codes over the set's word vocabulary.

    Parameters
    ----------
    lam : float, default 0.25
        l1 weight of the decomposition ``||z - w V||^2 + lam ||w||_1``.
    filtered : bool, default False
        ``True``: F-SpLiCE (the query's words of concept ``j`` only).
    chunk : int, default 2000
        Rows decomposed at a time (one dense (chunk, V) block at a time).
    progress : bool, default False
    """

    def __init__(self, lam: float = 0.25, filtered: bool = False, chunk: int = 2000, progress: bool = False):
        self.lam, self.filtered, self.chunk, self.progress = lam, filtered, chunk, progress
        self.name = "F-SpLiCE" if filtered else "SpLiCE"

    def fit(self, rs, cache=None) -> FittedMethod:
        from ..core.splice import SpLiCE

        if rs.vocab is None or rs.general_text is None:
            raise ValueError(f"{self.name} needs a word vocabulary and concept-name embeddings of a text tower; "
                             f"backbone {rs.backbone!r} has none.")
        cache = {} if cache is None else cache
        key = ("splice", float(self.lam))
        if key not in cache:
            cache[key] = {"model": SpLiCE(lam=self.lam).fit(rs.vocab, rs.general_text), "codes": {}}
        entry = cache[key]
        sp = entry["model"]

        def encode(rows):
            rows = np.asarray(rows)
            tag = rows.tobytes()
            if tag not in entry["codes"]:
                entry["codes"][tag] = self._decompose(sp, rs, rows)
            return entry["codes"][tag]

        def inputs(q, p):
            W = encode(np.concatenate([q, p]))
            Wq, P = W[:q.size], sp.reconstruct(W[q.size:])
            if self.filtered:
                return RetrievalInputs(Wq.toarray(), P, lambda w, j: sp.reconstruct(w, j))
            return RetrievalInputs(sp.reconstruct(Wq), P)

        return FittedMethod(self.name, inputs, sp, encode)

    def _decompose(self, sp, rs, rows):
        """Sparse (len(rows), V) codes, ``chunk`` rows at a time."""
        from scipy import sparse
        from tqdm import tqdm

        gram = sp.gram() if rows.size > self.chunk else None        # one product for every chunk
        blocks = [sparse.csr_matrix(sp.transform(rs.X[rows[s:s + self.chunk]], gram=gram))
                  for s in tqdm(range(0, rows.size, self.chunk), desc=f"SpLiCE {rs.dataset}", unit="chunk",
                                disable=None if self.progress else True)]
        return sparse.vstack(blocks, format="csr") if blocks else sparse.csr_matrix((0, sp.vocab_.shape[0]))


class QuantisedCandidates:
    """Candidates coded by a product quantiser: each token replaced by its nearest unit codeword.

    One object per codebook, shared by the methods scored on the same quantised pool; the
    coded pool of given rows is computed once (:class:`slics.core.pq.QuantisedPool`).

    Parameters
    ----------
    codebook : array of shape (codebook_size, token_dim)
        Unit codewords.
    n_tokens : int
        Tokens per row.
    """

    def __init__(self, codebook, n_tokens: int):
        self.codebook, self.n_tokens = np.asarray(codebook, dtype=np.float64), int(n_tokens)
        self._pools: dict = {}
        self._vectors: dict = {}

    def pool(self, rs, rows: np.ndarray):
        """The :class:`~slics.core.pq.QuantisedPool` of ``rows`` of ``rs`` (cached)."""
        from ..core.pq import QuantisedPool

        key = (id(rs), np.asarray(rows).tobytes())
        if key not in self._pools:
            self._pools[key] = QuantisedPool.from_vectors(rs.X[rows], self.codebook, self.n_tokens)
        return self._pools[key]

    def vectors(self, rs, rows: np.ndarray) -> np.ndarray:
        """The dequantised vectors of ``rows`` (cached)."""
        key = (id(rs), np.asarray(rows).tobytes())
        if key not in self._vectors:
            self._vectors[key] = self.pool(rs, rows).vectors()
        return self._vectors[key]


class Quantised(RetrievalMethod):
    """Any method scored against a product-quantised candidate pool (TiTok's Table 3).

    The query side is the base method's; the candidates are
    :meth:`QuantisedCandidates.vectors`.

    Parameters
    ----------
    base : RetrievalMethod or FittedMethod
        The method (or an already fitted one) whose query side is used.
    candidates : QuantisedCandidates
    """

    def __init__(self, base, candidates: QuantisedCandidates):
        self.base, self.candidates = base, candidates
        self.name = f"{base.name} (quantised)"

    def fit(self, rs, cache=None) -> FittedMethod:
        fitted = self.base if isinstance(self.base, FittedMethod) else self.base.fit(rs, cache)

        def inputs(q, p):
            base = fitted.inputs(q, p)
            return RetrievalInputs(base.query_emb, self.candidates.vectors(rs, p), base.transform_query,
                                   base.transform_pool)

        return FittedMethod(self.name, inputs, fitted.model)


_METHODS: dict[str, Callable[..., RetrievalMethod]] = {}


def register_method(name: str, factory: Callable[..., RetrievalMethod], *, replace: bool = False) -> None:
    """Register ``factory`` (a class or a function returning a :class:`RetrievalMethod`) as ``name``."""
    if name in _METHODS and not replace:
        raise ValueError(f"method {name!r} is already registered; pass replace=True to redefine it.")
    _METHODS[name] = factory


def unregister_method(name: str) -> None:
    """Remove ``name`` (tests that register a temporary method)."""
    _METHODS.pop(name, None)


def method_names() -> tuple[str, ...]:
    """The registered method names, in registration order."""
    return tuple(_METHODS)


def get_method(name: str, **options) -> RetrievalMethod:
    """The method ``name`` built with the ``options`` its factory accepts (others are ignored).

    Parameters
    ----------
    name : str
        A registered name (:func:`method_names`).
    **options
        Shared settings, e.g. ``n_atoms``, ``n_iter``, ``batch_size``, ``seed``, ``lam``.

    Returns
    -------
    RetrievalMethod
    """
    try:
        factory = _METHODS[name]
    except KeyError:
        raise ValueError(f"unknown retrieval method {name!r}; registered: {', '.join(_METHODS)}.") from None
    accepted = inspect.signature(factory).parameters
    if not any(p.kind is inspect.Parameter.VAR_KEYWORD for p in accepted.values()):
        options = {k: v for k, v in options.items() if k in accepted}
    return factory(**options)


register_method("UF", Unfiltered)
register_method("S-SVD", lambda n_atoms=4, seed=0, model=None: SLiCSMethod(n_atoms, 0, seed=seed, model=model))
register_method("S-SLiCS", lambda n_atoms=4, n_iter=10, batch_size=None, seed=0, model=None:
                SLiCSMethod(n_atoms, n_iter, batch_size, seed, model=model))
register_method("U-SLiCS", lambda n_atoms=4, n_iter=10, batch_size=None, seed=0, n_pseudo_labels=2, model=None:
                SLiCSMethod(n_atoms, n_iter, batch_size, seed, labels="pseudo", n_pseudo_labels=n_pseudo_labels,
                            model=model))
register_method("SpLiCE", lambda lam=0.25, progress=False: SpLiCEMethod(lam, False, progress=progress))
register_method("F-SpLiCE", lambda lam=0.25, progress=False: SpLiCEMethod(lam, True, progress=progress))
