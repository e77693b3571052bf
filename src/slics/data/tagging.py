"""NLTK's English averaged-perceptron POS tagger, applied to many sentences at once, same tags.

``nltk.tag.PerceptronTagger.tag`` scores one token at a time in Python: for each of its 14
features it adds the feature's weight of every class to a dict of scores (about 400 float
additions in the interpreter a token). The concept stage tags the 155,070 Flickr30k captions
twice (once per mining order), and that loop was most of its time (``benchmarks/profile_pipeline.py``).

:class:`BatchTagger` reads the same model (weights, tag dictionary, classes) and tags a list of
sentences position by position: the tokens at position ``t`` of every sentence are scored together,
their features' weight rows gathered from one dense ``(features, classes)`` array. The result is
the tagger's, bit for bit:

- features, their strings and their order are :meth:`PerceptronTagger._get_features`'s (rebuilt
  here, as the tagger builds them: from the normalised context and the two previous tags);
- each class's score is the sum of the features' weights in the same order, starting from 0.0;
  a feature without a weight for the class adds 0.0, which leaves a float unchanged;
- the best class is the highest score, ties to the alphabetically last class name (the tagger's
  ``max(classes, key=(score, label))``);
- a word of the tag dictionary takes its tag without scoring, and feeds the next tokens' features.

``tests/test_concepts.py`` checks the tags against ``PerceptronTagger.tag`` on real captions and
on generated token lists.
"""

from __future__ import annotations

from typing import Sequence

import numpy as np


class BatchTagger:
    """Tags lists of tokens as ``tagger.tag`` does (default: NLTK's English perceptron tagger)."""

    def __init__(self, tagger=None):
        if tagger is None:
            from nltk.tag import PerceptronTagger

            tagger = PerceptronTagger()
        self._tagger = tagger
        self.classes = sorted(tagger.classes)
        column = {label: c for c, label in enumerate(self.classes)}
        weights = tagger.model.weights
        self.features = {feature: r for r, feature in enumerate(weights, 1)}   # row 0: a feature without weights
        self.rows = np.zeros((len(weights) + 1, len(self.classes)))
        for feature, r in self.features.items():
            for label, weight in weights[feature].items():
                self.rows[r, column[label]] = weight
        self.tagdict = tagger.tagdict
        self.start, self.end = list(tagger.START), list(tagger.END)

    def tag_sents(self, sentences: Sequence[Sequence[str]]) -> list[list[str]]:
        """The tags of every sentence (a list of token strings), as ``tagger.tag`` gives them."""
        sentences = [list(s) for s in sentences]
        normalise = self._tagger.normalize
        contexts = [self.start + [normalise(w) for w in s] + self.end for s in sentences]
        tags: list[list[str]] = [[] for _ in sentences]
        prev = [self.start[0]] * len(sentences)
        prev2 = [self.start[1]] * len(sentences)
        longest = max((len(s) for s in sentences), default=0)
        for i in range(longest):
            alive = [n for n, s in enumerate(sentences) if len(s) > i]
            scored, index = [], []
            for n in alive:
                word = sentences[n][i]
                if self.tagdict.get(word):
                    continue
                scored.append(n)
                index.append(self._feature_rows(i + 2, word, contexts[n], prev[n], prev2[n]))
            best = self._best(np.array(index, dtype=np.int64).reshape(len(scored), -1)) if scored else []
            found = dict(zip(scored, best))
            for n in alive:
                tag = found[n] if n in found else self.tagdict[sentences[n][i]]
                tags[n].append(tag)
                prev2[n], prev[n] = prev[n], tag
        return tags

    def _feature_rows(self, i, word, context, prev, prev2) -> list[int]:
        """Rows of :meth:`PerceptronTagger._get_features`'s features, in its order (``i`` is the
        token's index in ``context``, after the two start symbols)."""
        get = self.features.get
        return [get(f, 0) for f in (
            "bias",
            "i suffix " + word[-3:],
            "i pref1 " + (word[0] if word else ""),
            "i-1 tag " + prev,
            "i-2 tag " + prev2,
            "i tag+i-2 tag " + prev + " " + prev2,
            "i word " + context[i],
            "i-1 tag+i word " + prev + " " + context[i],
            "i-1 word " + context[i - 1],
            "i-1 suffix " + context[i - 1][-3:],
            "i-2 word " + context[i - 2],
            "i+1 word " + context[i + 1],
            "i+1 suffix " + context[i + 1][-3:],
            "i+2 word " + context[i + 2],
        )]

    def _best(self, index: np.ndarray) -> list[str]:
        """The best class of each row of feature rows ``index``: scores summed feature by feature
        (the tagger's order), ties to the last class name."""
        scores = np.zeros((index.shape[0], len(self.classes)))
        for f in range(index.shape[1]):
            scores += self.rows[index[:, f]]
        top = scores == scores.max(axis=1, keepdims=True)
        last = len(self.classes) - 1 - np.argmax(top[:, ::-1], axis=1)
        return [self.classes[c] for c in last]
