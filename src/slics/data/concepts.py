"""Concept dictionary: the most frequent nouns of the Flickr30k captions plus class names.

Rule, per caption of the configured splits (all five caption files each):
``nltk.word_tokenize`` on the caption as written, then NLTK's English perceptron
tagger (the one ``nltk.pos_tag_sents`` uses, loaded once per process) -- tagging
needs sentence context, so it precedes any dropping. Keep tags ``NN*`` (NN, NNS,
NNP, NNPS; plurals such as "people", "men" kept as is, no lemmatisation);
lower-case; keep ``str.isalpha()`` tokens of >= 2 characters that are not NLTK
English stopwords (this drops punctuation, numbers, ``'s`` and hyphenated
compounds such as ``t-shirt``). Take the ``n_nouns`` most frequent (ties
alphabetically) and append the ``extra`` words (CIFAR-10 classes) not among them.
``python -m slics.data.concepts`` (DVC stage ``concepts``) writes ``results/tables/concepts.{csv,md}``.
"""

from __future__ import annotations

import argparse
import gzip
import os
from collections import Counter
from contextlib import nullcontext
from functools import lru_cache
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


_tagger = lru_cache(maxsize=1)(PerceptronTagger)  # loaded once per process, on first use


def keep_token(word: str, tag: str) -> str | None:
    """Return the lower-cased noun ``word`` if it passes the rule, else None."""
    word = word.lower()
    keep = tag.startswith("NN") and len(word) >= 2 and word.isalpha() and word not in _stopwords()
    return word if keep else None


def _count_batch(captions: Sequence[str]) -> Counter:
    tagged = [_tagger().tag(word_tokenize(c)) for c in captions]
    return Counter(w for sent in tagged for w in (keep_token(*pair) for pair in sent) if w)


def count_nouns(captions: Sequence[str], batch_size: int = 2000, n_jobs: int = 1,
                progress: bool = False) -> Counter:
    """Count the nouns of ``captions`` by the module's rule (call ``ensure_nltk()`` first).

    Parameters
    ----------
    captions : sequence of str
        Captions, each tagged as one sentence context.
    batch_size : int
        Captions per work unit (one progress step, one worker task).
    n_jobs : int
        Worker processes; the counts do not depend on it.
    progress : bool
        Show a tqdm progress bar over batches.

    Returns
    -------
    collections.Counter
        Noun -> number of occurrences.
    """
    captions = list(captions)
    if not captions:
        raise ValueError("No captions to count nouns in; check the splits or files given.")
    if batch_size < 1 or n_jobs < 1:
        raise ValueError(f"batch_size and n_jobs must be >= 1, got {batch_size} and {n_jobs}.")
    batches = [captions[i:i + batch_size] for i in range(0, len(captions), batch_size)]
    bar = dict(total=len(batches), desc="POS-tagging captions", unit="batch", disable=not progress)
    counts: Counter = Counter()
    n_jobs = min(n_jobs, len(batches))
    with get_context().Pool(n_jobs) if n_jobs > 1 else nullcontext() as pool:
        parts = pool.imap_unordered(_count_batch, batches) if pool else map(_count_batch, batches)
        for part in tqdm(parts, **bar):
            counts.update(part)
    return counts


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
        Words to add (lower-cased, deduplicated), in order, unless already present.
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


def load_concepts(path: str | Path | None = None) -> list[str]:
    """Read the concept words back from the table written by the CLI."""
    path = Path(path) if path else upstream_results_dir() / "tables" / f"{TABLE_STEM}.csv"
    if not path.is_file():
        raise FileNotFoundError(f"The concept table {path} is missing; run `dvc repro concepts` "
                                "(or `python -m slics.data.concepts`) to create it.")
    return pd.read_csv(path, keep_default_na=False)["concept"].astype(str).tolist()


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--params", default=None, help="params.yaml to read (default: project's)")
    parser.add_argument("--jobs", type=int, default=os.cpu_count() or 1, help="worker processes")
    args = parser.parse_args(argv)
    cfg = load_params(args.params)["concepts"]
    ensure_nltk()
    captions = read_captions(cfg["splits"])
    counts = count_nouns(captions, n_jobs=args.jobs, progress=True)
    df = build_concept_list(counts, int(cfg["n_nouns"]), cfg.get("extra", []))
    n_top, splits = int((df["source"] == "flickr30k").sum()), ", ".join(cfg["splits"])
    caption = (f"Concept dictionary: the {n_top} most frequent nouns of {len(captions):,} English "
               f"Flickr30k captions (Multi30k task 2; splits {splits}; NLTK word_tokenize + pos_tag, "
               "tags NN*, lower-cased, alphabetic, >= 2 letters, no English stopwords; ties alphabetical)"
               f" plus {len(df) - n_top} CIFAR-10 class names not among them: {len(df)} concepts.")
    write_table(df, results_dir() / "tables" / TABLE_STEM, decimals=0, caption=caption)
    csv_path = results_dir() / "tables" / f"{TABLE_STEM}.csv"
    print(f"{len(df)} concepts ({n_top} nouns + {len(df) - n_top} extra) -> {csv_path}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
