"""Concept dictionary: the most frequent nouns of the Flickr30k captions plus class names.

Rule, per caption of the configured splits (all five caption files each), in the report's
order (section 2.2.2: "break down the captions into individual words using tokenization,
remove punctuation, numerical values, and stopwords ..., and identify nouns using
Part-of-Speech (POS) tagging"), ``order: filter_then_tag`` (the default):

1. ``nltk.word_tokenize`` on the caption as written;
2. keep the tokens that are ``str.isalpha()``, >= 2 characters and, lower-cased, not an
   NLTK English stopword (this drops punctuation, numbers, ``'s`` and hyphenated compounds
   such as ``t-shirt``);
3. tag what is left, as written (case kept), with NLTK's English perceptron tagger (the one
   ``nltk.pos_tag_sents`` uses, loaded once per process) and keep tags ``NN*`` (NN, NNS,
   NNP, NNPS; plurals such as "people", "men" kept as is, no lemmatisation), lower-cased.

The alternative ``order: tag_then_filter`` tags the full token sequence first (the tagger
then sees the caption's real context) and applies the same filter after. The tagger reads a
word's neighbours, so the two orders tag some words differently and their top-``n_nouns``
lists differ slightly; ``python -m slics.data.concepts`` counts both (one tokenisation, two
taggings) and writes the comparison.

Take the ``n_nouns`` most frequent nouns of the chosen order (ties alphabetically) and
append the ``extra`` words (the CIFAR-10 class names) not among them.
``python -m slics.data.concepts`` (DVC stage ``concepts``) writes ``results/tables/concepts.{csv,md}``
(the dictionary), ``concepts_orders.{csv,md}`` (the nouns on which the two orders disagree),
``concepts_report_overlap.{csv,md}`` (the report's Table 3 concepts under each order) and
``results/metrics/concepts.json`` (caption and image counts, list sizes, overlaps).
"""

from __future__ import annotations

import argparse
import gzip
import os
from collections import Counter
from contextlib import nullcontext
from functools import lru_cache, partial
from multiprocessing import get_context
from pathlib import Path
from typing import Iterable, Sequence

import pandas as pd
from nltk import word_tokenize
from nltk.corpus import stopwords
from nltk.tag import PerceptronTagger
from tqdm import tqdm

from ..utils.config import load_params, results_dir, upstream_results_dir
from ..utils.io import write_table
from .resources import ensure_nltk, fetch
from .tagging import BatchTagger

N_CAPTION_FILES = 5
TABLE_STEM = "concepts"
COLUMNS = ["rank", "concept", "count", "source", "is_class"]


def _split_files(split: str) -> list[Path]:
    paths = fetch("flickr30k")
    files = [p for k in range(1, N_CAPTION_FILES + 1) for p in paths if p.name == f"{split}.{k}.en.gz"]
    if len(files) != N_CAPTION_FILES:
        known = sorted({p.name.split(".")[0] for p in paths if p.name.endswith(".en.gz")})
        raise ValueError(f"Unknown Flickr30k split '{split}'; known splits: {', '.join(known)}.")
    return files


def read_captions(sources: Iterable[str | Path]) -> list[str]:
    """Read captions from Flickr30k split names or gzip caption files.

    Parameters
    ----------
    sources : iterable of str or Path
        Split names (``"train"``, ``"val"``, ``"test_2016"``: all five caption files
        of the split, fetched from resource ``flickr30k``) or gzip text files with
        one caption per line (a ``Path``, or a str ending in ``.gz``).

    Returns
    -------
    list of str
        The non-blank captions, stripped, in file order.
    """
    captions: list[str] = []
    for source in [sources] if isinstance(sources, (str, Path)) else sources:
        is_file = isinstance(source, Path) or str(source).endswith(".gz")
        for path in [Path(source)] if is_file else _split_files(str(source)):
            with gzip.open(path, "rt", encoding="utf-8") as fh:
                captions.extend(line.strip() for line in fh if line.strip())
    return captions


@lru_cache(maxsize=1)
def _stopwords() -> frozenset[str]:
    return frozenset(stopwords.words("english"))


@lru_cache(maxsize=1)
def _tagger() -> BatchTagger:
    """NLTK's English perceptron tagger, tagging many captions at once (loaded once per process)."""
    return BatchTagger(PerceptronTagger())


ORDERS = ("filter_then_tag", "tag_then_filter")
DEFAULT_ORDER = ORDERS[0]   # the report's order (section 2.2.2)


def _check_order(order: str) -> str:
    if order not in ORDERS:
        raise ValueError(f"Unknown concept-mining order {order!r}; choose one of {ORDERS}.")
    return order


def keep_word(word: str) -> str | None:
    """Return the lower-cased ``word`` if it survives the filter (alphabetic, >= 2 letters, no stopword)."""
    word = word.lower()
    return word if len(word) >= 2 and word.isalpha() and word not in _stopwords() else None


def keep_token(word: str, tag: str) -> str | None:
    """Return the lower-cased noun ``word`` if it is tagged ``NN*`` and passes :func:`keep_word`."""
    return keep_word(word) if tag.startswith("NN") else None


def caption_nouns(tokens: Sequence[Sequence[str]], order: str = DEFAULT_ORDER) -> list[list[str]]:
    """The nouns of each tokenised caption, mined in ``order`` (see the module docstring)."""
    if _check_order(order) == "filter_then_tag":
        tokens = [[t for t in sent if keep_word(t)] for sent in tokens]
    return [[w for w in (keep_token(*pair) for pair in zip(sent, tags)) if w]
            for sent, tags in zip(tokens, _tagger().tag_sents(tokens))]


def _count_batch(captions: Sequence[str], orders: tuple[str, ...]) -> tuple[Counter, ...]:
    tokens = [word_tokenize(c) for c in captions]
    return tuple(Counter(w for nouns in caption_nouns(tokens, order) for w in nouns) for order in orders)


def count_nouns_by_order(captions: Sequence[str], orders: Sequence[str] = ORDERS, batch_size: int = 2000,
                         n_jobs: int = 1, progress: bool = False) -> dict[str, Counter]:
    """Count the nouns of ``captions`` under each mining order (call ``ensure_nltk()`` first).

    Parameters
    ----------
    captions : sequence of str
        Captions, each tagged as one sentence context.
    orders : sequence of str
        Mining orders among :data:`ORDERS`; every caption is tokenised once for all of them.
    batch_size : int
        Captions per work unit (one progress step, one worker task).
    n_jobs : int
        Worker processes; the counts do not depend on it.
    progress : bool
        Show a tqdm progress bar over batches.

    Returns
    -------
    dict of str to collections.Counter
        Order -> (noun -> number of occurrences).
    """
    captions = list(captions)
    orders = tuple(_check_order(o) for o in orders)
    if not captions:
        raise ValueError("No captions to count nouns in; check the splits or files given.")
    if batch_size < 1 or n_jobs < 1:
        raise ValueError(f"batch_size and n_jobs must be >= 1, got {batch_size} and {n_jobs}.")
    batches = [captions[i:i + batch_size] for i in range(0, len(captions), batch_size)]
    bar = dict(total=len(batches), desc="POS-tagging captions", unit="batch", disable=not progress)
    counts = {order: Counter() for order in orders}
    n_jobs = min(n_jobs, len(batches))
    work = partial(_count_batch, orders=orders)
    with get_context().Pool(n_jobs) if n_jobs > 1 else nullcontext() as pool:
        parts = pool.imap_unordered(work, batches) if pool else map(work, batches)
        for part in tqdm(parts, **bar):
            for order, counter in zip(orders, part):
                counts[order].update(counter)
    return counts


def count_nouns(captions: Sequence[str], order: str = DEFAULT_ORDER, **kwargs) -> Counter:
    """Count the nouns of ``captions`` mined in ``order`` (keywords as :func:`count_nouns_by_order`)."""
    return count_nouns_by_order(captions, (order,), **kwargs)[order]


def build_concept_list(counter: Counter, n_nouns: int = 1000, extra: Sequence[str] = (),
                       extra_source: str = "cifar10") -> pd.DataFrame:
    """Take the ``n_nouns`` most frequent nouns and append the ``extra`` words.

    Parameters
    ----------
    counter : collections.Counter
        Noun counts, e.g. from :func:`count_nouns`.
    n_nouns : int
        How many nouns to keep (all of them if there are fewer).
    extra : sequence of str
        Words to add (lower-cased, deduplicated), in order, unless already present
        (:func:`extra_words` resolves the ``concepts.extra`` parameter).
    extra_source : str
        ``source`` label of the appended words.

    Returns
    -------
    pandas.DataFrame
        Columns ``rank`` (from 1), ``concept``, ``count`` (in ``counter``, 0 if
        absent), ``source`` (``"flickr30k"`` or ``extra_source``) and ``is_class``
        (True for every ``extra`` word, also one already among the nouns). Nouns
        first, by count descending, ties alphabetically; then the appended words.
    """
    if isinstance(n_nouns, bool) or not isinstance(n_nouns, int) or n_nouns < 1:
        raise ValueError(f"n_nouns must be a positive integer, got {n_nouns!r}.")
    if not counter:
        raise ValueError("The noun counter is empty; there is nothing to build concepts from.")
    nouns = sorted(counter.items(), key=lambda kv: (-kv[1], kv[0]))[:n_nouns]
    extra = list(dict.fromkeys(w.strip().lower() for w in extra))
    top = {word for word, _ in nouns}
    rows = [(word, count, "flickr30k") for word, count in nouns]
    rows += [(word, counter.get(word, 0), extra_source) for word in extra if word not in top]
    df = pd.DataFrame(rows, columns=["concept", "count", "source"])
    df.insert(0, "rank", range(1, len(df) + 1))
    df["is_class"] = df["concept"].isin(extra)
    return df[COLUMNS]


def extra_words(extra: str | Sequence[str]) -> tuple[str, ...]:
    """Resolve ``concepts.extra``: a dataset name (``"cifar10"``: its class names) or a list of words."""
    if isinstance(extra, str):
        if extra != "cifar10":
            raise ValueError(f"Unknown extra concept set {extra!r}; give 'cifar10' or a list of words.")
        from .cifar import CIFAR10_CLASSES

        return CIFAR10_CLASSES
    return tuple(extra)


def noun_ranks(counter: Counter, words: Sequence[str]) -> list[int]:
    """Rank (from 1) each word would hold in ``counter``'s order (count descending, ties alphabetically).

    A word absent from ``counter`` is ranked after every counted word.
    """
    keys = sorted(counter.items(), key=lambda kv: (-kv[1], kv[0]))
    position = {word: i + 1 for i, (word, _) in enumerate(keys)}
    return [position.get(w, len(keys) + 1) for w in words]


def order_difference(counts: dict[str, Counter], n_nouns: int) -> pd.DataFrame:
    """The nouns in the top ``n_nouns`` of one mining order but not of the other, with both ranks.

    Columns ``concept``, ``only_in`` (the order whose list has it), and ``rank_<order>`` /
    ``count_<order>`` for both orders; sorted by ``only_in``, then by rank in that order.
    """
    first, second = ORDERS
    tops = {o: set(w for w, _ in sorted(counts[o].items(), key=lambda kv: (-kv[1], kv[0]))[:n_nouns])
            for o in ORDERS}
    rows = [(w, o) for o, other in ((first, second), (second, first)) for w in tops[o] - tops[other]]
    df = pd.DataFrame(rows, columns=["concept", "only_in"])
    for o in ORDERS:
        df[f"rank_{o}"] = noun_ranks(counts[o], df["concept"].tolist())
        df[f"count_{o}"] = [counts[o].get(w, 0) for w in df["concept"]]
    df["_rank"] = [r1 if o == first else r2 for o, r1, r2 in
                   zip(df["only_in"], df[f"rank_{first}"], df[f"rank_{second}"])]
    return df.sort_values(["only_in", "_rank"], kind="stable").drop(columns="_rank").reset_index(drop=True)


def report_overlap(counts: dict[str, Counter], n_nouns: int, extra: Sequence[str],
                   report_concepts: Sequence[str]) -> pd.DataFrame:
    """Where each of the report's concepts (its Table 3) stands in the dictionary of each order.

    Columns ``report_rank``, ``concept``, and per order ``in_dictionary_<order>`` (among the
    top ``n_nouns`` nouns or the ``extra`` words), ``rank_<order>`` and ``count_<order>``.
    """
    df = pd.DataFrame({"report_rank": range(1, len(report_concepts) + 1), "concept": list(report_concepts)})
    for o in ORDERS:
        dictionary = set(build_concept_list(counts[o], n_nouns, extra)["concept"])
        df[f"in_dictionary_{o}"] = df["concept"].isin(dictionary)
        df[f"rank_{o}"] = noun_ranks(counts[o], df["concept"].tolist())
        df[f"count_{o}"] = [counts[o].get(w, 0) for w in df["concept"]]
    return df


def load_concepts(path: str | Path | None = None) -> list[str]:
    """Read the concept words back from the table written by the CLI."""
    path = Path(path) if path else upstream_results_dir() / "tables" / f"{TABLE_STEM}.csv"
    if not path.is_file():
        raise FileNotFoundError(f"The concept table {path} is missing; run `dvc repro concepts` "
                                "(or `python -m slics.data.concepts`) to create it.")
    return pd.read_csv(path, keep_default_na=False)["concept"].astype(str).tolist()


def mine_concepts(cfg: dict, n_jobs: int = 1, progress: bool = False) -> dict:
    """Count nouns under both orders and build every concept table of the ``concepts`` params.

    Returns a dict with ``concepts`` (the dictionary under ``cfg["order"]``), ``orders`` (see
    :func:`order_difference`), ``overlap`` (see :func:`report_overlap`, against the report's
    Table 3) and ``summary`` (caption, image and list counts for ``results/metrics/concepts.json``).
    """
    from ..utils.reference import report_table

    order = _check_order(cfg.get("order", DEFAULT_ORDER))
    n_nouns, extra = int(cfg["n_nouns"]), extra_words(cfg.get("extra", ()))
    ensure_nltk()
    captions = read_captions(cfg["splits"])
    counts = count_nouns_by_order(captions, ORDERS, n_jobs=n_jobs, progress=progress)
    concepts = build_concept_list(counts[order], n_nouns, extra)
    orders = order_difference(counts, n_nouns)
    report_concepts = report_table("ista_clip", "table3")["concept"].tolist()
    overlap = report_overlap(counts, n_nouns, extra, report_concepts)
    summary = {
        "order": order, "n_captions": len(captions), "n_images": len(captions) // N_CAPTION_FILES,
        "n_nouns": n_nouns, "n_concepts": len(concepts),
        "n_extra_appended": int((concepts["source"] != "flickr30k").sum()),
        "n_nouns_differing_between_orders": int((orders["only_in"] == ORDERS[0]).sum()),
        **{f"report_table3_in_dictionary_{o}": int(overlap[f"in_dictionary_{o}"].sum()) for o in ORDERS},
        "n_report_table3": len(report_concepts),
    }
    return {"concepts": concepts, "orders": orders, "overlap": overlap, "summary": summary}


def main(argv: list[str] | None = None) -> int:
    from ..utils.io import write_json

    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--params", default=None, help="params.yaml to read (default: project's)")
    parser.add_argument("--jobs", type=int, default=os.cpu_count() or 1, help="worker processes")
    args = parser.parse_args(argv)
    cfg = load_params(args.params)["concepts"]
    mined = mine_concepts(cfg, n_jobs=args.jobs, progress=True)
    df, info = mined["concepts"], mined["summary"]
    n_top, splits = int((df["source"] == "flickr30k").sum()), ", ".join(map(str, cfg["splits"]))
    rule = ("word_tokenize, drop punctuation / numbers / 1-letter tokens / English stopwords, then "
            "pos_tag the rest" if info["order"] == "filter_then_tag" else
            "word_tokenize, pos_tag the full caption, then drop punctuation / numbers / 1-letter "
            "tokens / English stopwords")
    caption = (f"Concept dictionary: the {n_top} most frequent nouns of {info['n_captions']:,} English "
               f"Flickr30k captions of {info['n_images']:,} images (Multi30k task 2; splits {splits}; "
               f"order {info['order']}: {rule}; tags NN*, lower-cased; ties alphabetical)"
               f" plus {len(df) - n_top} class names not among them: {len(df)} concepts.")
    tables = results_dir() / "tables"
    write_table(df, tables / TABLE_STEM, decimals=0, caption=caption)
    first, second = ORDERS
    write_table(mined["orders"], tables / f"{TABLE_STEM}_orders", decimals=0,
                caption=f"The {info['n_nouns_differing_between_orders']} nouns (of the top {info['n_nouns']}) "
                        f"that only one mining order keeps: {first} (the report's) or {second}; "
                        "ranks and counts under both orders.")
    write_table(mined["overlap"], tables / f"{TABLE_STEM}_report_overlap", decimals=0,
                caption=f"The report's Table 3 concepts in the dictionary of each order: "
                        f"{info[f'report_table3_in_dictionary_{first}']} of {info['n_report_table3']} "
                        f"under {first}, {info[f'report_table3_in_dictionary_{second}']} under {second}.")
    write_json(results_dir() / "metrics" / f"{TABLE_STEM}.json", info, decimals=0)
    print(f"{len(df)} concepts ({n_top} nouns + {len(df) - n_top} extra, order {info['order']}) "
          f"-> {tables / (TABLE_STEM + '.csv')}")
    return 0


if __name__ == "__main__":
    from slics.utils.errors import run_main

    raise SystemExit(run_main(main))
