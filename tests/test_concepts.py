import gzip
import os
from collections import Counter
from pathlib import Path

import pandas as pd
import pytest
import yaml

from slics.data import concepts
from slics.data.cifar import CIFAR10_CLASSES
from slics.utils.config import data_dir, project_root
from slics.data.resources import MIRROR_ENV, ensure_nltk

CAPTIONS = [
    "Two dogs play in the park.",
    "A man in a red shirt rides a bike.",
    "3 people wait at 10 o'clock for a bus.",
    "A woman's dog runs on the beach.",
]
ORDER_CAPTIONS = ["A jet flies over the water."]


@pytest.fixture(scope="module", autouse=True)
def nltk_data():
    return ensure_nltk()


def test_count_nouns_exact_in_both_orders():
    tag_first = concepts.count_nouns(CAPTIONS, order="tag_then_filter")
    assert tag_first == Counter({"dogs": 1, "park": 1, "man": 1, "shirt": 1, "bike": 1,
                                 "people": 1, "bus": 1, "woman": 1, "dog": 1, "beach": 1})
    # the report's order tags "man red shirt rides bike": without "a" and "in" around them the
    # tagger reads "red shirt" as modifiers and "rides" as the noun
    filter_first = concepts.count_nouns(CAPTIONS, order="filter_then_tag")
    assert filter_first == Counter({"dogs": 1, "park": 1, "man": 1, "rides": 1,
                                    "people": 1, "bus": 1, "woman": 1, "dog": 1, "beach": 1})
    assert concepts.count_nouns(CAPTIONS) == filter_first        # the default is the report's order
    # verbs, adjectives, numbers, punctuation, possessive and "o'clock" are gone in both orders
    for counts in (tag_first, filter_first):
        for word in ["play", "runs", "wait", "red", "3", "10", "o'clock", "'s", ".", "two"]:
            assert word not in counts


def test_same_as_nltk_pos_tag_sents_in_both_orders():
    import nltk

    tokens = [nltk.word_tokenize(c) for c in CAPTIONS + ORDER_CAPTIONS]
    tagged = nltk.pos_tag_sents(tokens)
    expected = Counter(w for sent in tagged for w in (concepts.keep_token(*p) for p in sent) if w)
    assert concepts.count_nouns(CAPTIONS + ORDER_CAPTIONS, order="tag_then_filter") == expected
    filtered = nltk.pos_tag_sents([[t for t in sent if concepts.keep_word(t)] for sent in tokens])
    expected = Counter(w.lower() for sent in filtered for w, tag in sent if tag.startswith("NN"))
    assert concepts.count_nouns(CAPTIONS + ORDER_CAPTIONS, order="filter_then_tag") == expected


def test_orders_differ_on_a_small_fixture():
    counts = concepts.count_nouns_by_order(ORDER_CAPTIONS + CAPTIONS)
    assert counts["filter_then_tag"]["jet"] == 1 and counts["tag_then_filter"]["jet"] == 1
    assert counts["filter_then_tag"]["flies"] == 1 and "flies" not in counts["tag_then_filter"]
    diff = concepts.order_difference(counts, n_nouns=len(counts["tag_then_filter"]))
    only = dict(zip(diff["concept"], diff["only_in"]))
    assert only == {"rides": "filter_then_tag", "flies": "filter_then_tag",
                    "shirt": "tag_then_filter", "bike": "tag_then_filter"}
    row = diff.set_index("concept").loc["shirt"]
    assert row["count_filter_then_tag"] == 0 and row["count_tag_then_filter"] == 1
    with pytest.raises(ValueError, match="Unknown concept-mining order"):
        concepts.count_nouns(CAPTIONS, order="tag_only")


def test_report_overlap_and_ranks():
    counts = {"filter_then_tag": Counter({"dog": 3, "jet": 2, "cat": 2, "man": 1}),
              "tag_then_filter": Counter({"dog": 3, "man": 2, "cat": 1})}
    assert concepts.noun_ranks(counts["filter_then_tag"], ["dog", "cat", "jet", "puppies"]) == [1, 2, 3, 5]
    table = concepts.report_overlap(counts, n_nouns=2, extra=["frog"], report_concepts=["jet", "frog", "puppies"])
    assert table["in_dictionary_filter_then_tag"].tolist() == [False, True, False]   # top 2: dog, cat (tie by name)
    assert table["in_dictionary_tag_then_filter"].tolist() == [False, True, False]
    assert table["count_filter_then_tag"].tolist() == [2, 0, 0]
    assert table["rank_filter_then_tag"].tolist() == [3, 5, 5]


def test_extra_words_resolves_the_class_names():
    from slics.data.cifar import CIFAR10_CLASSES

    assert concepts.extra_words("cifar10") == CIFAR10_CLASSES
    assert concepts.extra_words(["dog", "cat"]) == ("dog", "cat")
    with pytest.raises(ValueError, match="Unknown extra"):
        concepts.extra_words("imagenet")


def test_plurals_kept_and_counts_add_up():
    counts = concepts.count_nouns(["A dog and two dogs.", "The dog sleeps.", "Men and women."])
    assert counts["dog"] == 2 and counts["dogs"] == 1
    assert counts["men"] == 1 and counts["women"] == 1


def test_keep_token_rule():
    assert concepts.keep_token("Dogs", "NNS") == "dogs"
    assert concepts.keep_token("Paris", "NNP") == "paris"
    for word, tag in [("rides", "VBZ"), ("red", "JJ"), ("The", "NN"), ("Here", "NN"), ("10", "CD"),
                      ("3D", "NN"), ("t-shirt", "NN"), ("o'clock", "NN"), ("x", "NN"), (".", ".")]:
        assert concepts.keep_token(word, tag) is None, word


def test_batches_and_jobs_do_not_change_counts():
    captions = CAPTIONS * 3
    one = concepts.count_nouns(captions)
    assert concepts.count_nouns(captions, batch_size=2) == one
    assert concepts.count_nouns(captions, batch_size=3, n_jobs=2) == one
    assert one["dog"] == 3


def test_count_nouns_rejects_empty_input():
    with pytest.raises(ValueError, match="No captions"):
        concepts.count_nouns([])
    with pytest.raises(ValueError, match="batch_size"):
        concepts.count_nouns(CAPTIONS, batch_size=0)


def test_build_concept_list_order_ties_and_extras():
    counter = Counter({"man": 5, "woman": 5, "dog": 3, "shirt": 3, "bike": 1, "cat": 1})
    df = concepts.build_concept_list(counter, n_nouns=4, extra=["dog", "cat", "frog", "Cat"])
    assert list(df.columns) == concepts.COLUMNS
    assert df["concept"].tolist() == ["man", "woman", "dog", "shirt", "cat", "frog"]
    assert df["count"].tolist() == [5, 5, 3, 3, 1, 0]
    assert df["rank"].tolist() == [1, 2, 3, 4, 5, 6]
    assert df["source"].tolist() == ["flickr30k"] * 4 + ["cifar10"] * 2
    assert df["is_class"].tolist() == [False, False, True, False, True, True]
    assert df["concept"].is_unique


def test_build_concept_list_truncation_and_errors():
    counter = Counter({f"w{chr(97 + i)}": 100 - i for i in range(20)})
    assert len(concepts.build_concept_list(counter, n_nouns=7)) == 7
    assert len(concepts.build_concept_list(counter, n_nouns=50)) == 20
    for bad in [0, -3, 1.5, True]:
        with pytest.raises(ValueError, match="n_nouns"):
            concepts.build_concept_list(counter, n_nouns=bad)
    with pytest.raises(ValueError, match="empty"):
        concepts.build_concept_list(Counter(), n_nouns=5)


def test_cli_writes_table_and_load_concepts_reads_it(tmp_path, monkeypatch):
    captions = tmp_path / "toy.1.en.gz"
    with gzip.open(captions, "wt", encoding="utf-8") as fh:
        fh.write("\n".join(CAPTIONS + ["A man and a dog.", ""]) + "\n")
    params = tmp_path / "params.yaml"
    full = yaml.safe_load((project_root() / "params.yaml").read_text())
    full["concepts"] = {"n_nouns": 3, "splits": [str(captions)], "order": "filter_then_tag", "extra": ["dog", "cat"]}
    params.write_text(yaml.safe_dump(full))
    monkeypatch.setenv("SLICS_RESULTS_DIR", str(tmp_path / "results"))
    table = tmp_path / "results" / "tables" / "concepts.csv"
    with pytest.raises(FileNotFoundError, match="dvc repro concepts"):
        concepts.load_concepts(table)
    assert concepts.main(["--params", str(params), "--jobs", "1"]) == 0
    # dog and man tie at 2, then "beach" is the first of the nouns tied at 1
    assert concepts.load_concepts(table) == ["dog", "man", "beach", "cat"]
    df = pd.read_csv(tmp_path / "results" / "tables" / "concepts.csv")
    assert df["count"].tolist() == [2, 2, 1, 0]
    assert "Flickr30k" in (tmp_path / "results" / "tables" / "concepts.md").read_text()
    import json

    info = json.loads((tmp_path / "results" / "metrics" / "concepts.json").read_text())
    assert info["order"] == "filter_then_tag" and info["n_captions"] == 5 and info["n_images"] == 1
    overlap = pd.read_csv(tmp_path / "results" / "tables" / "concepts_report_overlap.csv")
    assert overlap["concept"].tolist()[:2] == ["cat", "animals"] and len(overlap) == 20
    # "cat" is in the dictionary only as an appended class name
    assert overlap["in_dictionary_filter_then_tag"].tolist()[:2] == [True, False]
    orders = pd.read_csv(tmp_path / "results" / "tables" / "concepts_orders.csv")
    assert set(orders["only_in"]) <= {"filter_then_tag", "tag_then_filter"}


def _mirror_file(name: str) -> Path:
    candidates = [data_dir() / "external" / "flickr30k" / name]
    if os.environ.get(MIRROR_ENV):
        candidates.insert(0, Path(os.environ[MIRROR_ENV]) / "flickr30k" / name)
    for path in candidates:
        if path.is_file():
            return path
    pytest.skip(f"Flickr30k caption file {name} not found: set {MIRROR_ENV} to the data mirror "
                "(CI uses ../shared/data) or run `python -m slics.data.resources fetch flickr30k`.")


def test_real_val_captions_sanity():
    captions = concepts.read_captions([_mirror_file("val.1.en.gz")])
    assert len(captions) == 1014
    counts = concepts.count_nouns(captions)
    df = concepts.build_concept_list(counts, n_nouns=50, extra=CIFAR10_CLASSES)
    top = df["concept"].head(10).tolist()
    assert {"man", "woman"} <= set(top)
    assert "people" in df["concept"].tolist()
    assert all(w.isalpha() and w == w.lower() and len(w) >= 2 for w in counts)
    assert not set(counts) & concepts._stopwords()
    assert df["concept"].is_unique


def test_read_split_names(tmp_path, monkeypatch):
    _mirror_file("val.1.en.gz")
    if not os.environ.get(MIRROR_ENV):
        pytest.skip(f"{MIRROR_ENV} is unset")
    monkeypatch.setenv("SLICS_DATA_DIR", str(tmp_path / "data"))
    assert len(concepts.read_captions(["val"])) == 5 * 1014
    with pytest.raises(ValueError, match="Unknown Flickr30k split 'nope'.*test_2016"):
        concepts.read_captions(["nope"])


def test_load_concepts_reads_the_committed_table_when_results_are_redirected(monkeypatch, tmp_path):
    """SLICS_RESULTS_DIR redirects what a run writes (nbval), never the upstream inputs it reads."""
    from slics.utils.config import upstream_results_dir

    committed = upstream_results_dir() / "tables" / "concepts.csv"
    if not committed.is_file():
        pytest.skip("results/tables/concepts.csv has not been generated (dvc repro concepts)")
    monkeypatch.setenv("SLICS_RESULTS_DIR", str(tmp_path))
    assert concepts.load_concepts() == pd.read_csv(committed, keep_default_na=False)["concept"].tolist()


def test_batched_tagger_gives_nltks_tags_on_real_captions():
    """About 4,100 Flickr30k training captions (every 7th of one caption file), tokenised, in both
    mining orders: every tag of slics.data.tagging.BatchTagger equals PerceptronTagger.tag's
    (tests/test_tagging.py checks generated sentences and ties)."""
    from nltk.tag import PerceptronTagger

    from slics.data.tagging import BatchTagger
    from test_tagging import nltk_tags

    captions = concepts.read_captions([_mirror_file("train.1.en.gz")])[::7]
    assert len(captions) > 4000
    tokens = [concepts.word_tokenize(c) for c in captions]
    reference = PerceptronTagger()
    batch = BatchTagger(reference)
    for sentences in (tokens, [[t for t in s if concepts.keep_word(t)] for s in tokens]):
        assert batch.tag_sents(sentences) == nltk_tags(reference, sentences)
