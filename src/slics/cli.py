"""The ``slics`` command line: SLiCS on your own embeddings, without writing Python.

Verbs (``slics <verb> --help`` lists every option):

* ``fit``: learn a model from embeddings and multi-hot labels (or, ``--unsupervised``, from
  zero-shot pseudo-labels given concept names) and save it (:mod:`slics.model_io`).
* ``caption``: the words each concept's subspace reconstructs best (:mod:`slics.captions`).
* ``components``: every row's component in each of its concepts (full disentanglement).
* ``retrieve``: concept-filtered top-k of query embeddings in a pool (:mod:`slics.retrieval`).

``components`` and ``retrieve`` also read a chunked store (a zarr folder or a folder of ``.npy``
shards) and run on Dask workers (``--workers N`` for a local cluster, ``--scheduler ADDRESS``
for a running one; :mod:`slics.distributed.cli`).
* ``evaluate``: mAP@k, general and sub-label, of any of the six methods on a user's split.

Inputs: embeddings as ``.npy``, ``.npz`` (``FILE.npz:KEY`` when it holds several arrays) or
``.parquet`` (numeric columns, or one column of vectors); labels as CSV with a header of
concept names and 0/1 values, one row per embedding; word and concept lists as text, one per
line. Every input is checked before any work starts, and outputs are written atomically:
an error leaves no file behind. Nothing read or written is a pickle.

Errors the user can fix are printed as ``slics <verb>: error: <message>`` with exit status 2
(``--debug`` shows the traceback).
"""

from __future__ import annotations

import argparse
import csv
import io
import sys
import warnings
from pathlib import Path

import numpy as np
import pandas as pd

from . import __version__
from .utils.io import numpy_file_kind

__all__ = ["main", "InputError"]

PREPROCESS = ("centre", "unit", "tokens", "none")
METHODS = ("UF", "S-SVD", "S-SLiCS", "U-SLiCS", "SpLiCE", "F-SpLiCE")
NEEDS_TEXT = {"U-SLiCS", "SpLiCE", "F-SpLiCE"}      # concept-name embeddings
NEEDS_VOCAB = {"SpLiCE", "F-SpLiCE"}               # word embeddings
SPLITS = ("train", "val", "query", "pool")


class InputError(ValueError):
    """An input the command line cannot use; its message names the file and the fix."""


# --------------------------------------------------------------------------- reading inputs
def _split_key(spec: str) -> tuple[Path, str | None]:
    """``FILE.npz:KEY`` -> (FILE.npz, KEY); anything else -> (path, None)."""
    head, sep, key = spec.rpartition(":")
    if sep and head.endswith(".npz") and key:
        return Path(head), key
    return Path(spec), None


def _exists(path: Path, what: str) -> None:
    if path.is_dir():
        raise InputError(f"{what} file {str(path)!r} is a folder; give the path of a file.")
    if not path.is_file():
        raise FileNotFoundError(f"{what} file {str(path)!r} does not exist.")


def _read_text(path: str, what: str) -> str:
    """A text input as str: UTF-8, with the byte-order mark that spreadsheet programs write removed
    (it would otherwise stick to the first name); other encodings are refused with the fix."""
    p = Path(path)
    _exists(p, what)
    try:
        return p.read_bytes().decode("utf-8-sig")
    except UnicodeDecodeError as exc:
        line = p.read_bytes()[:exc.start].count(b"\n") + 1
        raise InputError(f"{what} file {path!r} is not UTF-8 text (line {line}: {exc.reason}); save it as UTF-8 "
                         f"(e.g. iconv -f latin1 -t utf-8).") from None


def _read_array(spec: str, what: str) -> np.ndarray:
    path, key = _split_key(spec)
    _exists(path, what)
    suffix = path.suffix.lower()
    if suffix in (".npy", ".npz"):
        kind = numpy_file_kind(path)
        if kind is None:
            raise InputError(f"{what} file {str(path)!r} is not a NumPy file: its first bytes are neither a .npy "
                             f"header nor a .npz (zip) archive; write it with numpy.save or numpy.savez.")
        if kind == "pickle":
            raise InputError(f"{what} file {str(path)!r} holds Python objects (a pickle); slics reads only plain "
                             f"numeric arrays.")
    try:
        if suffix == ".npy":
            return np.load(path, allow_pickle=False)
        if suffix == ".npz":
            with np.load(path, allow_pickle=False) as z:
                if key is None:
                    if len(z.files) != 1:
                        raise InputError(f"{what} file {str(path)!r} holds the arrays {z.files}; name one as "
                                         f"{path}:KEY.")
                    key = z.files[0]
                if key not in z.files:
                    raise InputError(f"{what} file {str(path)!r} has no array {key!r}; it holds {z.files}.")
                return z[key]
        if suffix == ".parquet":
            return _read_parquet(path, what)
    except InputError:
        raise
    except ValueError as exc:
        if "pickle" in str(exc).lower():
            raise InputError(f"{what} file {str(path)!r} holds Python objects (a pickle); slics reads only plain "
                             f"numeric arrays.") from None
        raise InputError(f"{what} file {str(path)!r} cannot be read: {exc}") from None
    except (OSError, EOFError) as exc:
        raise InputError(f"{what} file {str(path)!r} cannot be read: {exc}") from None
    raise InputError(f"{what} file {str(path)!r}: unsupported type {suffix or '(none)'}; use .npy, .npz or .parquet.")


def _read_parquet(path: Path, what: str) -> np.ndarray:
    try:
        df = pd.read_parquet(path)
    except ImportError:
        raise InputError(f"reading {what} from {str(path)!r} needs a parquet engine: pip install pyarrow "
                         f"(or save the array as .npy).") from None
    if df.shape[1] == 1 and df.dtypes.iloc[0] == object:
        try:
            return np.stack([np.asarray(v, dtype=np.float64) for v in df.iloc[:, 0]])
        except (ValueError, TypeError) as exc:
            raise InputError(f"{what} file {str(path)!r}: its column is not one vector per row ({exc}).") from None
    bad = [c for c in df.columns if not pd.api.types.is_numeric_dtype(df[c])]
    if bad:
        raise InputError(f"{what} file {str(path)!r}: column(s) {bad[:5]} are not numeric; keep only the "
                         f"embedding dimensions (or one column of vectors).")
    return df.to_numpy(dtype=np.float64)


def read_embeddings(spec: str, what: str = "embeddings", n_cols: int | None = None) -> np.ndarray:
    """A finite float64 (n, d) matrix from ``spec``, or an :class:`InputError` naming the file."""
    from .utils.validation import check_matrix

    X = _read_array(spec, what)
    try:
        return check_matrix(X, what, n_cols=n_cols)
    except ValueError as exc:
        raise InputError(f"{what} ({spec}): {exc}") from None


def read_embeddings_array(X, what: str, n_cols: int | None = None) -> np.ndarray:
    """``X`` checked as :func:`read_embeddings` checks a file's array."""
    from .utils.validation import check_matrix

    try:
        return check_matrix(X, what, n_cols=n_cols)
    except ValueError as exc:
        raise InputError(str(exc)) from None


def read_lines(path: str, what: str) -> list[str]:
    """Non-empty, stripped lines of a UTF-8 text file (unique)."""
    lines = [ln.strip() for ln in _read_text(path, what).splitlines()]
    lines = [ln for ln in lines if ln]
    if not lines:
        raise InputError(f"{what} file {path!r} is empty; write one entry per line.")
    return lines


def _read_csv(text: str, path: str, what: str) -> pd.DataFrame:
    """A CSV input's cells as strings; a malformed row is named with the file."""
    try:
        return pd.read_csv(io.StringIO(text), dtype=str, keep_default_na=False)
    except (pd.errors.ParserError, pd.errors.EmptyDataError) as exc:
        raise InputError(f"{what} file {path!r} is not a well-formed CSV: {str(exc).strip()}") from None


def _unique(names, what: str, path: str) -> None:
    seen = {n for n in names if list(names).count(n) > 1}
    if seen:
        raise InputError(f"{what} {path!r} repeats the name(s) {sorted(seen)[:5]}; names must be unique.")


def read_labels(path: str, n_rows: int, what: str = "labels") -> tuple[list[str], np.ndarray]:
    """Concept names (the CSV header) and the boolean (n_rows, C) label matrix."""
    text = _read_text(path, what)
    header = next(csv.reader(io.StringIO(text, newline="")), None)
    if not header:
        raise InputError(f"{what} file {path!r} is empty; it needs a header of concept names and one 0/1 row "
                         f"per embedding.")
    names = [h.strip() for h in header]
    if any(not n for n in names):
        raise InputError(f"{what} file {path!r} has an empty column name in its header.")
    _unique(names, f"the header of {what} file", path)
    df = _read_csv(text, path, what)
    if len(df) != n_rows:
        raise InputError(f"{what} file {path!r} has {len(df)} rows but the embeddings have {n_rows}; row i of the "
                         f"labels must describe embedding i.")
    values = df.to_numpy()
    ok = np.isin(values, ("0", "1"))
    if not ok.all():
        r, c = np.argwhere(~ok)[0]
        raise InputError(f"{what} file {path!r}: row {r + 2}, column {names[c]!r} holds {values[r, c]!r}; "
                         f"labels must be 0 or 1.")
    return names, values == "1"


def read_split(path: str, n_rows: int) -> np.ndarray:
    """One of train / val / query / pool per row: ``.npy`` of strings, CSV with a ``split``
    column, or a text file with one name per line."""
    p = Path(path)
    _exists(p, "split")
    if p.suffix.lower() == ".npy":
        split = np.asarray(_read_array(path, "split")).astype(str)
    elif p.suffix.lower() == ".csv":
        df = _read_csv(_read_text(path, "split"), path, "split")
        if "split" not in df.columns:
            raise InputError(f"split file {path!r} needs a column named 'split' (it has {list(df.columns)}).")
        split = df["split"].to_numpy(dtype=str)
    else:
        split = np.array([ln.strip() for ln in _read_text(path, "split").splitlines() if ln.strip()])
    if split.shape != (n_rows,):
        raise InputError(f"split file {path!r} has {split.size} entries but the embeddings have {n_rows} rows.")
    unknown = sorted(set(split.tolist()) - set(SPLITS))
    if unknown:
        raise InputError(f"split file {path!r} holds unknown name(s) {unknown[:5]}; use {', '.join(SPLITS)}.")
    for part in ("train", "query", "pool"):
        if not np.any(split == part):
            raise InputError(f"split file {path!r} has no '{part}' rows; evaluation needs train, query and pool rows.")
    return split


def read_sub_labels(path: str, n_rows: int, concepts: list[str]):
    """Sub-labels from a CSV whose header names ``concept/sub-label`` columns."""
    names, S = read_labels(path, n_rows, "sub-labels")
    parent = []
    for name in names:
        concept, sep, _ = name.partition("/")
        if not sep or concept not in concepts:
            raise InputError(f"sub-labels file {path!r}: column {name!r} must be named '<concept>/<sub-label>' with "
                             f"a concept of the labels file ({', '.join(concepts)}).")
        parent.append(concepts.index(concept))
    return names, S, np.asarray(parent, dtype=np.int64)


# --------------------------------------------------------------------------- preprocessing
def preprocess_fit(X: np.ndarray, kind: str, n_tokens: int | None):
    """Embeddings prepared for fitting (:mod:`slics.preprocess`), and the image mean removed
    (``"centre"``: the mean of the unit rows) or None."""
    from .preprocess import image_mean

    mean = image_mean(X) if kind == "centre" else None
    return _prepare(X, kind, mean, n_tokens), mean


def _prepare(X: np.ndarray, kind: str, mean, n_tokens: int | None) -> np.ndarray:
    from .preprocess import preprocess

    return X if kind == "none" else preprocess(X, kind, mean=mean, n_tokens=n_tokens)


def prepare_for(model, X: np.ndarray) -> np.ndarray:
    """``X`` prepared as the model's training embeddings were (the kind stored in the model file)."""
    return _prepare(X, model.preprocessing_, model.image_mean_, model.n_tokens_)


def _check_tokens(kind: str, n_tokens, d: int) -> None:
    if kind == "tokens":
        if n_tokens is None:
            raise InputError("--preprocess tokens needs --n-tokens (the number of equal slices of each row).")
        if n_tokens < 1 or d % n_tokens:
            raise InputError(f"--n-tokens {n_tokens} must divide the embedding dimension {d}.")
    elif n_tokens is not None:
        raise InputError(f"--n-tokens goes with --preprocess tokens, not {kind}.")


# --------------------------------------------------------------------------- outputs
def _check_out(path: str | None, suffixes: tuple[str, ...], flag: str = "--out") -> Path | None:
    if path is None:
        return None
    p = Path(path)
    if p.suffix.lower() not in suffixes:
        raise InputError(f"{flag} {path!r}: the file type is chosen by its suffix; use one of {', '.join(suffixes)}.")
    if p.is_dir():
        raise InputError(f"{flag} {path!r} is a folder; give a file name.")
    return p


def _write_table(df: pd.DataFrame, out: Path | None, floatfmt: str = ".4f") -> None:
    from .utils.io import write_text

    if out is not None and out.suffix.lower() == ".csv":
        text = df.to_csv(index=False, lineterminator="\n", float_format="%" + floatfmt)
    else:
        text = df.to_markdown(index=False, floatfmt=floatfmt) + "\n"
    if out is None:
        sys.stdout.write(text)
    else:
        write_text(out, text)
        _say(f"wrote {out}")


def _say(message: str) -> None:
    print(message, file=sys.stderr)


def _load(path: str):
    from .model_io import load_model

    return load_model(path)


def _concept_index(model, names: list[str]) -> list[int]:
    known = list(model.concept_names_)
    unknown = [n for n in names if n not in known]
    if unknown:
        raise InputError(f"unknown concept name(s) {unknown}; the model's concepts are: {', '.join(known)}.")
    return [known.index(n) for n in names]


def _labels_for(model, path: str, n_rows: int) -> np.ndarray:
    """A labels CSV for ``model``: the same concept names (any column order), reordered to the model's."""
    names, Y = read_labels(path, n_rows)
    idx = _concept_index(model, names)
    missing = [c for c in model.concept_names_ if c not in names]
    if missing:
        raise InputError(f"labels file {path!r} lacks the model's concept(s) {missing}; its header must name "
                         f"every concept of the model.")
    out = np.zeros((n_rows, len(model.concept_names_)), dtype=bool)
    out[:, idx] = Y
    return out


def _text_tower(name: str, d: int):
    """The registry entry of backbone ``name``, checked (text tower, dimension ``d``) before it is loaded."""
    from .embedding.registry import backbone_names, get_spec

    spec = get_spec(name)
    towers = ", ".join(backbone_names(text_tower=True))
    if not spec.text_tower:
        raise InputError(f"backbone {name!r} has no text tower to embed concept names; pass --concept-embeddings "
                         f"or choose one of: {towers}.")
    if spec.dim is not None and spec.dim != d:
        raise InputError(f"the {name!r} text tower gives {spec.dim}-d embeddings but the image embeddings are "
                         f"{d}-d; embed the concept names with the backbone that made the images and pass them "
                         f"with --concept-embeddings.")
    return spec


def _concept_text(args, names: list[str], d: int) -> np.ndarray:
    """Concept-name embeddings: a file, or the backbone's text tower."""
    if args.concept_embeddings:
        T = read_embeddings(args.concept_embeddings, "concept embeddings", n_cols=d)
        if T.shape[0] != len(names):
            raise InputError(f"concept embeddings ({args.concept_embeddings}) have {T.shape[0]} rows for "
                             f"{len(names)} concept names; row j must embed concept j.")
        return T
    T = _text_tower(args.backbone, d).load().encode_text(list(names))
    return read_embeddings_array(T, f"the {args.backbone!r} text tower's embeddings", d)


# --------------------------------------------------------------------------- verbs
def cmd_fit(args) -> int:
    from .core.dictionary import SLiCS
    from .core.zero_shot import zero_shot_pseudo_labels
    from .model_io import save_model

    out = _check_out(args.out, (".npz",))
    X = read_embeddings(args.embeddings)
    n, d = X.shape
    _check_tokens(args.preprocess, args.n_tokens, d)
    if args.labels:
        if args.concepts or args.concept_embeddings:
            raise InputError("--concepts and --concept-embeddings go with --unsupervised, not with --labels.")
        names, Y = read_labels(args.labels, n)
        supervision = {"labels": Path(args.labels).name}
    else:
        if not args.concepts:
            raise InputError("--unsupervised needs --concepts (a text file of concept names, one per line).")
        names = read_lines(args.concepts, "concepts")
        _unique(names, "concepts file", args.concepts)
        if not 1 <= args.n_pseudo_labels <= len(names):
            raise InputError(f"--n-pseudo-labels must be between 1 and the number of concepts ({len(names)}), "
                             f"got {args.n_pseudo_labels}.")
        T = _concept_text(args, names, d)
        Y = zero_shot_pseudo_labels(X, T, k=args.n_pseudo_labels)
        source = Path(args.concept_embeddings).name if args.concept_embeddings else f"backbone {args.backbone}"
        supervision = {"zero_shot": source, "n_pseudo_labels": args.n_pseudo_labels}
    empty = [name for name, col in zip(names, Y.T) if not col.any()]
    if empty:
        raise InputError(f"no embedding has the concept(s) {empty}; drop them from the "
                         f"{'labels' if args.labels else 'concepts'} file or add labelled embeddings.")
    Z, mean = preprocess_fit(X, args.preprocess, args.n_tokens)
    model = SLiCS(n_atoms=args.n_atoms, n_iter=args.n_iter, batch_size=args.batch_size, random_state=args.seed)
    model.fit(Z, Y)
    save_model(model, out, concept_names=names, preprocessing=args.preprocess, image_mean=mean,
               n_tokens=args.n_tokens, metadata={"embeddings": Path(args.embeddings).name, **supervision})
    err = model.error_history_
    _say(f"fitted {len(names)} concepts x {args.n_atoms} atoms on {n} rows ({d}-d); relative error "
         f"{err[0]:.4f} -> {err[-1]:.4f}; wrote {out}")
    return 0


def cmd_caption(args) -> int:
    from .captions import word_captions

    out = _check_out(args.out, (".csv", ".md"))
    model = _load(args.model)
    words = read_lines(args.words, "words")
    V = read_embeddings(args.vocab_embeddings, "vocabulary embeddings", n_cols=model.n_features_in_)
    if V.shape[0] != len(words):
        raise InputError(f"the words file has {len(words)} words but the vocabulary embeddings have {V.shape[0]} "
                         f"rows; row i must embed word i.")
    if not 1 <= args.n_words <= len(words):
        raise InputError(f"--n-words must be between 1 and the vocabulary size ({len(words)}), got {args.n_words}.")
    caps = word_captions(model, V, words, n_words=args.n_words, centre=not args.no_centre)
    _write_table(pd.DataFrame({"concept": list(caps), "words": [", ".join(w) for w in caps.values()]}), out)
    return 0


def cmd_components(args) -> int:
    from .distributed import cli as on_dask
    from .utils.io import atomic_path

    if on_dask.wanted(args, args.embeddings):     # a chunked store, or a cluster asked for
        return on_dask.components(args, _load(args.model))
    out = _check_out(args.out, (".npy", ".npz"))
    model = _load(args.model)
    X = read_embeddings(args.embeddings, n_cols=model.n_features_in_)
    Y = _labels_for(model, args.labels, X.shape[0])
    comps = model.components(prepare_for(model, X), Y)
    with atomic_path(out) as tmp:
        with open(tmp, "wb") as fh:
            if out.suffix.lower() == ".npy":
                np.save(fh, comps, allow_pickle=False)
            else:
                np.savez(fh, components=comps, concept_names=np.array(model.concept_names_))
    _say(f"wrote {out}: components of shape {comps.shape} (rows, concepts, features)")
    return 0


def cmd_retrieve(args) -> int:
    from .core.normalise import normalise_rows
    from .retrieval import top_k

    from .distributed import cli as on_dask

    out = _check_out(args.out, (".csv", ".md"))
    model = _load(args.model)
    concepts = _concept_index(model, args.concept)
    sharded = on_dask.wanted(args, args.pool)     # a chunked store, or a cluster asked for
    if not sharded:
        P = read_embeddings(args.pool, "pool embeddings", n_cols=model.n_features_in_)
        if not 1 <= args.k <= P.shape[0]:
            raise InputError(f"-k must be between 1 and the pool size ({P.shape[0]}), got {args.k}.")
        P = normalise_rows(prepare_for(model, P))
    Q = prepare_for(model, read_embeddings(args.queries, "query embeddings", n_cols=model.n_features_in_))
    projections = []
    for name, j in zip(args.concept, concepts):
        F = normalise_rows(model.project(Q, j))
        zero = int(np.sum(~F.any(axis=1)))
        if zero:
            warnings.warn(f"{zero} of {len(F)} queries have no component in concept {name!r} (their projection "
                          f"is zero): they score 0 against every candidate, ranked in pool order.")
        projections.append(F)
    if sharded:      # one pass over the pool for every concept's projections
        found = on_dask.retrieve(args, model, np.concatenate(projections))
        tops, scores = (a.reshape(len(concepts), Q.shape[0], -1) for a in found)
    else:
        tops = [top_k(F, P, args.k) for F in projections]
        scores = [np.einsum("qd,qkd->qk", F, P[top]) for F, top in zip(projections, tops)]
    frames = []
    for name, top, score in zip(args.concept, tops, scores):
        m = Q.shape[0]
        frames.append(pd.DataFrame({"query": np.repeat(np.arange(m), args.k), "concept": name,
                                    "rank": np.tile(np.arange(1, args.k + 1), m), "index": top.ravel(),
                                    "score": score.ravel()}))
    _write_table(pd.concat(frames, ignore_index=True), out, floatfmt=".6f")
    return 0


def cmd_evaluate(args) -> int:
    out = _check_out(args.out, (".csv", ".md"))
    methods = [m.strip() for m in args.methods.split(",") if m.strip()]
    unknown = [m for m in methods if m not in METHODS]
    if unknown or not methods:
        raise InputError(f"unknown method(s) {unknown or methods}; choose from {', '.join(METHODS)}.")
    X = read_embeddings(args.embeddings)
    n, d = X.shape
    _check_tokens(args.preprocess, args.n_tokens, d)
    names, Y = read_labels(args.labels, n)
    split = read_split(args.split, n)
    sub = read_sub_labels(args.sub_labels, n, names) if args.sub_labels else None
    need_text = sorted(NEEDS_TEXT & set(methods))
    if need_text and not (args.concept_embeddings or args.backbone):
        raise InputError(f"{', '.join(need_text)} need concept-name embeddings: pass --concept-embeddings FILE "
                         f"(or --backbone NAME to embed the label names).")
    need_vocab = sorted(NEEDS_VOCAB & set(methods))
    if need_vocab and not args.vocab_embeddings:
        raise InputError(f"{', '.join(need_vocab)} need a word vocabulary: pass --vocab-embeddings FILE.")
    if not (np.isfinite(args.lam) and args.lam > 0):
        raise InputError(f"--lam must be a positive number, got {args.lam}.")
    if args.k < 1 or args.k > int(np.sum(split == "pool")):
        raise InputError(f"-k must be between 1 and the number of pool rows ({int(np.sum(split == 'pool'))}), "
                         f"got {args.k}.")
    vocab = read_embeddings(args.vocab_embeddings, "vocabulary embeddings", n_cols=d) if need_vocab else None
    text = _concept_text(args, names, d) if need_text else None

    model = _evaluation_model(args, X, names, split, methods) if args.model else None

    from .embedding.retrieval_set import RetrievalSet
    from .evaluation import SLiCSMethod, evaluate

    kw = {} if sub is None else {"sub": sub[1], "sub_parent": sub[2], "sub_names": sub[0]}
    rs = RetrievalSet.from_arrays(X, Y, split, general_names=names, general_text=text, vocab=vocab,
                                  preprocessing=args.preprocess, n_tokens=args.n_tokens, **kw)
    options = {"n_atoms": args.n_atoms, "n_iter": args.n_iter, "batch_size": args.batch_size, "seed": args.seed,
               "n_pseudo_labels": args.n_pseudo_labels, "lam": args.lam, "progress": sys.stderr.isatty()}
    if model is not None:               # S-SLiCS is the fitted model, not a new fit
        methods = [SLiCSMethod(model.n_atoms, model=model) if m == "S-SLiCS" else m for m in methods]
    table = evaluate(rs, methods, k=args.k, options=options)
    cols = ["method", "map_general", "map_sub", "n_pairs", "n_sub_pairs"]
    table = table[cols].rename(columns={"map_general": f"map@{args.k}_general", "map_sub": f"map@{args.k}_sub"})
    _write_table(table, out)
    return 0


def _evaluation_model(args, X: np.ndarray, names, split: np.ndarray, methods):
    """The model of ``evaluate --model``, checked to belong to this split: same features, concepts,
    preprocessing, and (``centre``) the image mean of this split's train rows."""
    from .preprocess import image_mean

    if "S-SLiCS" not in methods:
        raise InputError("--model stands for S-SLiCS: add S-SLiCS to --methods or leave out --model.")
    model = _load(args.model)
    if model.n_features_in_ != X.shape[1]:
        raise InputError(f"the model was fitted on {model.n_features_in_}-d embeddings, these are {X.shape[1]}-d.")
    if tuple(model.concept_names_) != tuple(names):
        raise InputError(f"the model's concepts {list(model.concept_names_)} are not the labels file's {list(names)} "
                         "(same names in the same order).")
    if model.preprocessing_ != args.preprocess or (args.preprocess == "tokens" and model.n_tokens_ != args.n_tokens):
        raise InputError(f"the model was fitted with --preprocess {model.preprocessing_}"
                         f"{f' --n-tokens {model.n_tokens_}' if model.n_tokens_ else ''}; pass the same here.")
    if args.preprocess == "centre":
        mean = image_mean(X[split == "train"])
        if not np.allclose(model.image_mean_, mean, rtol=1e-9, atol=1e-12):
            raise InputError("the model was not fitted on this split's train rows (its image mean differs): "
                             "fit it on exactly the rows marked 'train', or leave out --model.")
    return model


# --------------------------------------------------------------------------- parser
def _positive_int(text: str) -> int:
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected an integer, got {text!r}") from None
    if value < 1:
        raise argparse.ArgumentTypeError(f"expected an integer >= 1, got {value}")
    return value


def _nonneg_int(text: str) -> int:
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected an integer, got {text!r}") from None
    if value < 0:
        raise argparse.ArgumentTypeError(f"expected an integer >= 0, got {value}")
    return value


def _training_options(p, kinds=PREPROCESS) -> None:
    p.add_argument("--n-atoms", type=_positive_int, default=4, help="atoms per concept, K (default 4)")
    p.add_argument("--n-iter", type=_nonneg_int, default=10, help="SLiCS iterations (default 10; 0 = S-SVD)")
    p.add_argument("--batch-size", type=_positive_int, default=None, help="mini-batch size (default full batch)")
    p.add_argument("--seed", type=_nonneg_int, default=0, help="random seed, an integer >= 0 (default 0)")
    p.add_argument("--preprocess", choices=kinds, default="centre",
                   help="centre (the paper's: unit rows, subtract the training mean, unit rows; default), "
                        f"{', '.join(kinds[1:])} (tokens: unit slices, with --n-tokens)")
    p.add_argument("--n-tokens", type=_positive_int, default=None, help="tokens per row for --preprocess tokens")
    p.add_argument("--n-pseudo-labels", type=_positive_int, default=2,
                   help="U-SLiCS: zero-shot concepts per training row (default 2)")


def _cluster_options(p) -> None:
    g = p.add_argument_group("chunked stores on Dask (a zarr folder or a folder of .npy shards as input; "
                             "docs/scaling.md)")
    g.add_argument("--scheduler", metavar="ADDRESS", help="run on this Dask scheduler (tcp://host:8786)")
    g.add_argument("--workers", type=_positive_int, help="run on a local cluster of this many worker processes")
    g.add_argument("--rows-per-chunk", type=_positive_int, help="rows per block (default: the store's chunks)")


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="slics", description="SLiCS concept subspaces on your own embeddings.")
    parser.add_argument("--version", action="version", version=f"slics {__version__}")
    verbs = parser.add_subparsers(dest="verb", metavar="VERB", required=True)

    def verb(name, help_text):
        p = verbs.add_parser(name, help=help_text, description=help_text)
        p.add_argument("--debug", action="store_true", help="show the traceback of an error")
        return p

    p = verb("fit", "learn a SLiCS model from embeddings and labels (or concept names) and save it")
    p.add_argument("--embeddings", required=True, help=".npy, .npz[:KEY] or .parquet, one row per image")
    sup = p.add_mutually_exclusive_group(required=True)
    sup.add_argument("--labels", help="CSV: header of concept names, one 0/1 row per embedding")
    sup.add_argument("--unsupervised", action="store_true",
                     help="zero-shot pseudo-labels from --concepts (U-SLiCS)")
    p.add_argument("--concepts", help="text file, one concept name per line (with --unsupervised)")
    p.add_argument("--concept-embeddings", help="embeddings of the concept names, row j for concept j")
    p.add_argument("--backbone", default="demo",
                   help="text tower that embeds --concepts when no --concept-embeddings (default demo: MiniLM)")
    _training_options(p)
    p.add_argument("--out", required=True, help="model file to write (.npz)")
    p.set_defaults(func=cmd_fit)

    p = verb("caption", "the words each concept's subspace reconstructs best")
    p.add_argument("--model", required=True, help="model file from `slics fit`")
    p.add_argument("--words", required=True, help="text file, one word per line")
    p.add_argument("--vocab-embeddings", required=True, help="embeddings of the words, row i for word i")
    p.add_argument("--n-words", type=_positive_int, default=5, help="words per concept (default 5)")
    p.add_argument("--no-centre", action="store_true", help="use the word embeddings as given (default: centred)")
    p.add_argument("--out", help="table to write (.csv or .md; default Markdown on stdout)")
    p.set_defaults(func=cmd_caption)

    p = verb("components", "every row's component in each concept (full disentanglement)")
    p.add_argument("--model", required=True)
    p.add_argument("--embeddings", required=True)
    p.add_argument("--labels", required=True, help="CSV with the model's concept names as header")
    p.add_argument("--out", required=True,
                   help=".npy: array (rows, concepts, features); .npz: components and concept_names; "
                        "with a store as --embeddings: NAME.zarr or a folder of .npy shards")
    _cluster_options(p)
    p.set_defaults(func=cmd_components)

    p = verb("retrieve", "concept-filtered top-k of query embeddings in a pool")
    p.add_argument("--model", required=True)
    p.add_argument("--pool", required=True, help="candidate embeddings")
    p.add_argument("--queries", required=True, help="query embeddings")
    p.add_argument("--concept", required=True, action="append", help="concept name (repeat for several)")
    p.add_argument("-k", type=int, default=20, help="results per query (default 20)")
    p.add_argument("--out", help="table to write (.csv or .md; default Markdown on stdout)")
    _cluster_options(p)
    p.add_argument("--backend", choices=("dense", "faiss"), default="dense",
                   help="scoring of a sharded pool: dense (exact, as in memory; default) or faiss (float32)")
    p.set_defaults(func=cmd_retrieve)

    p = verb("evaluate", "mAP@k, general and sub-label, of retrieval methods on your split (your Table 2)")
    p.add_argument("--embeddings", required=True)
    p.add_argument("--labels", required=True, help="CSV: header of concept names, one 0/1 row per embedding")
    p.add_argument("--split", required=True,
                   help="train/val/query/pool per row: .npy of strings, CSV with a 'split' column, or text lines")
    p.add_argument("--sub-labels", help="CSV of 0/1 sub-labels, columns named '<concept>/<sub-label>'")
    p.add_argument("--methods", default="UF,S-SVD,S-SLiCS", help=f"comma-separated subset of {','.join(METHODS)}")
    p.add_argument("--model", help="a model of `slics fit` on this split's train rows: S-SLiCS uses it (no refit)")
    p.add_argument("--concept-embeddings", help="label-name embeddings (U-SLiCS, SpLiCE, F-SpLiCE)")
    p.add_argument("--backbone", default=None, help="text tower that embeds the label names instead (e.g. demo)")
    p.add_argument("--vocab-embeddings", help="word embeddings (SpLiCE, F-SpLiCE)")
    p.add_argument("--lam", type=float, default=0.25, help="SpLiCE's l1 weight (default 0.25)")
    p.add_argument("-k", type=int, default=20, help="mAP@k (default 20)")
    _training_options(p, kinds=("centre", "unit", "tokens"))
    p.add_argument("--out", help="table to write (.csv or .md; default Markdown on stdout)")
    p.set_defaults(func=cmd_evaluate)
    return parser


def _show_warning(verb: str):
    def show(message, category, filename, lineno, file=None, line=None):
        print(f"slics {verb}: warning: {message}", file=sys.stderr)
    return show


def main(argv=None) -> int:
    """Run the command line; returns the exit status (0, or 2 for an input error)."""
    args = build_parser().parse_args(argv)
    with warnings.catch_warnings():
        warnings.showwarning = _show_warning(args.verb)
        try:
            return args.func(args)
        except (ValueError, TypeError, OSError) as exc:     # InputError is a ValueError
            if args.debug:
                raise
            print(f"slics {args.verb}: error: {exc}", file=sys.stderr)
            return 2


if __name__ == "__main__":
    sys.exit(main())
