"""slics.data.tagging.BatchTagger gives NLTK's PerceptronTagger.tag's tags, sentence by sentence."""

import numpy as np
import pytest
from hypothesis import given, settings, strategies as st
from nltk.tag import PerceptronTagger

from slics.data.resources import ensure_nltk
from slics.data.tagging import BatchTagger


@pytest.fixture(scope="module")
def taggers():
    ensure_nltk()
    nltk_tagger = PerceptronTagger()
    return nltk_tagger, BatchTagger(nltk_tagger)


def nltk_tags(tagger, sentences):
    """The tags of ``tagger.tag``, sentence by sentence."""
    return [[tag for _, tag in tagger.tag(list(s))] for s in sentences]


# words the tag dictionary holds, words it does not, and what the tagger's normalisation rewrites
WORDS = ["the", "The", "a", "dog", "dogs", "runs", "run", "red", "Red", "man", "in", "on", "blue", "shirt",
         "t-shirt", "-dash", "1999", "2024", "12", "3D", "o'clock", "'s", ".", ",", "!", "?", "New", "York",
         "quickly", "zyxwv", "Qwerty", "flies", "jet", "water", "over", "x", "I", "is", "are", "playing", "wearing",
         "an", "and", "of", "to", "ZZZ", "é", "naïve", "e-mail", "1/2", "10:30", "%", "$", "and/or", "can't"]


@settings(max_examples=60, deadline=None)
@given(st.lists(st.lists(st.one_of(st.sampled_from(WORDS), st.text(min_size=1, max_size=6)), max_size=25),
                min_size=1, max_size=12))
def test_same_tags_as_nltk_on_generated_sentences(taggers, sentences):
    """Sentences of mixed lengths (empty ones too), with tag-dictionary words, unknown words,
    hyphens, years, digits and arbitrary text."""
    nltk_tagger, batch = taggers
    assert batch.tag_sents(sentences) == nltk_tags(nltk_tagger, sentences)


def test_ties_go_to_the_last_class_name_as_in_nltk():
    """A model whose classes tie on every score: the tagger takes the alphabetically last class
    (its max over (score, label)); so must the batched scores, whatever the classes' order."""
    tagger = PerceptronTagger(load=False)
    tagger.classes = {"NN", "VB", "JJ", "DT"}
    tagger.tagdict = {"the": "DT"}
    tagger.model.classes = tagger.classes
    tagger.model.weights = {"bias": {"NN": 1.0, "VB": 1.0, "JJ": 0.5},
                            "i word dog": {"NN": 0.25, "JJ": 0.75},
                            "i-1 tag DT": {"JJ": 0.5, "VB": 0.5}}
    sentences = [["dog"], ["the", "dog"], ["cat"], ["the", "cat", "dog"], []]
    expected = nltk_tags(tagger, sentences)
    assert expected[0] == ["NN"]        # "dog": JJ and NN tie at 1.25 (VB 1.0): NN, the later name
    assert expected[2] == ["VB"]        # "cat": NN and VB tie at 1.0: VB
    assert BatchTagger(tagger).tag_sents(sentences) == expected


def test_scores_are_summed_in_the_taggers_order():
    """Weights whose sum depends on the order of the additions (in float64): the batched scores
    add them feature by feature, in the order the tagger builds its features."""
    tagger = PerceptronTagger(load=False)
    tagger.classes = {"A", "B"}
    tagger.tagdict = {}
    tagger.model.classes = tagger.classes
    # A: (1 + 1e16) - 1e16 = 0 in the tagger's order (bias, suffix, ..., word: the 1 is lost), but
    # 1 in the reverse order; B: 0.5. So the tag is B only if the additions keep the tagger's order
    tagger.model.weights = {"bias": {"A": 1.0}, "i suffix dog": {"A": 1e16}, "i word dog": {"A": -1e16},
                            "i pref1 d": {"B": 0.5}}
    assert (1.0 + 1e16) - 1e16 == 0.0 and (-1e16 + 1e16) + 1.0 == 1.0
    expected = nltk_tags(tagger, [["dog"]])
    assert expected == [["B"]]
    assert BatchTagger(tagger).tag_sents([["dog"]]) == expected
