"""Linear n-gram classifiers as models of their own: NB-weighted binary 1-3-grams + logistic
regression (NBSVM-style, Wang & Manning 2012) and TF-IDF 1-2-grams + logistic regression, the
report's two baselines, fitted once and saved without pickles.

A saved linear model is a folder: ``linear.json`` (the kind, the vectorizer's settings and the
labels), ``ngrams.json`` (the n-grams, in feature order) and ``linear.safetensors`` (one weight
per n-gram, the bias, and TF-IDF's idf). For NB-LR the weight is already the logistic
regression's coefficient times the n-gram's log-count ratio, so scoring is a sum of the weights
of the n-grams a text holds (:class:`NgramTable`, NumPy alone: an install without torch or
scikit-learn scores a wide-and-deep export); fitting and TF-IDF use scikit-learn.
"""

from __future__ import annotations

import itertools
import json
import re
from collections.abc import Sequence
from dataclasses import dataclass
from functools import cached_property
from pathlib import Path

import numpy as np
from safetensors.numpy import load_file, save_file

from ..jsonio import write_json
from .decisions import sigmoid
from .folder import read_config, write_model_file
from .logit import LogitModel

LINEAR_FILE = "linear.json"
KINDS = ("nb_lr", "tfidf_lr")
NB_TOKENS = r"(?u)\b\w+\b|[!?]"
LOW_BITS = (1 << 22) - 1  # NgramTable's bitmap of the codes' low bits (4 MB)


def ngram_vectorizer(kind: str, vocabulary: dict[str, int] | None = None):
    """``kind``'s scikit-learn vectorizer: fitted with min_df 2, or fixed to ``vocabulary``."""
    from sklearn.feature_extraction.text import CountVectorizer, TfidfVectorizer

    if kind == "nb_lr":
        return CountVectorizer(ngram_range=(1, 3), binary=True, min_df=1 if vocabulary else 2,
                               lowercase=True, token_pattern=NB_TOKENS, vocabulary=vocabulary,
                               dtype=np.float32)
    return TfidfVectorizer(ngram_range=(1, 2), sublinear_tf=True, min_df=1 if vocabulary else 2,
                           lowercase=True, vocabulary=vocabulary, dtype=np.float32)


@dataclass
class LinearModel:
    """A fitted binary n-gram classifier: P(second label) = sigmoid(features @ weight + bias)."""

    kind: str
    ngrams: list[str]
    weight: np.ndarray  # (F,)
    bias: float
    labels: list[str]
    idf: np.ndarray | None = None  # TF-IDF's

    @classmethod
    def fit(cls, kind: str, texts: Sequence[str], labels: Sequence[int],
            label_names: Sequence[str] = ("negative", "positive")) -> LinearModel:
        """Fit ``kind`` (``nb_lr`` or ``tfidf_lr``) on labelled texts (two classes)."""
        from scipy import sparse
        from sklearn.linear_model import LogisticRegression

        if kind not in KINDS:
            raise ValueError(f"kind must be one of {KINDS}, got {kind!r}")
        labels = np.asarray(labels)
        if set(labels.tolist()) - {0, 1}:
            raise ValueError("a linear n-gram model here is binary: labels 0 and 1")
        vectorizer = ngram_vectorizer(kind)
        features = vectorizer.fit_transform(texts)
        ngrams = [None] * len(vectorizer.vocabulary_)
        for ngram, column in vectorizer.vocabulary_.items():
            ngrams[column] = ngram
        if kind == "nb_lr":
            positive = 1.0 + np.asarray(features[labels == 1].sum(axis=0)).ravel()
            negative = 1.0 + np.asarray(features[labels == 0].sum(axis=0)).ravel()
            ratio = np.log((positive / positive.sum()) / (negative / negative.sum()))
            classifier = LogisticRegression(C=1.0, max_iter=1000, solver="liblinear", dual=True)
            classifier.fit(features @ sparse.diags(ratio), labels)
            weight, idf = classifier.coef_.ravel() * ratio, None
        else:
            classifier = LogisticRegression(C=16, max_iter=1000, solver="liblinear")
            classifier.fit(features, labels)
            weight, idf = classifier.coef_.ravel(), vectorizer.idf_
        return cls(kind, ngrams, weight.astype(np.float32), float(classifier.intercept_[0]),
                   list(label_names), None if idf is None else idf.astype(np.float32))

    @cached_property
    def vectorizer(self):
        """The fitted vectorizer, built once per model (its n-gram table takes ~0.15 s per
        200,000 n-grams: a served model must not build it for every request). Its transform
        only reads it, so threads may share it."""
        vectorizer = ngram_vectorizer(self.kind, {g: i for i, g in enumerate(self.ngrams)})
        if self.idf is not None:
            vectorizer.idf_ = self.idf
        vectorizer.transform([""])  # settles the fixed vocabulary before any thread reads it
        return vectorizer

    @cached_property
    def ngram_table(self) -> NgramTable:
        return NgramTable(self.ngrams, self.weight)

    def logits(self, texts: Sequence[str]) -> np.ndarray:
        """The log-odds of the second label for each text, ``(N,)``. NB-LR's binary features
        are summed by :class:`NgramTable` (the same figure as scikit-learn's vectorizer to
        float32 rounding, several times faster); TF-IDF's go through its vectorizer."""
        if self.kind == "nb_lr":
            return self.ngram_table.sums(texts) + self.bias
        return (np.asarray(self.vectorizer.transform(texts) @ self.weight, dtype=np.float64)
                + self.bias)

    def pruned(self, ngrams: int) -> LinearModel:
        """This model with only its ``ngrams`` n-grams of largest absolute weight (in their
        order; the bias kept): a smaller model whose scores drop the smallest terms."""
        if ngrams < 1:
            raise ValueError(f"keep at least one n-gram, not {ngrams}")
        keep = np.sort(np.argsort(-np.abs(self.weight), kind="stable")[:ngrams])
        return LinearModel(self.kind, [self.ngrams[i] for i in keep], self.weight[keep],
                           self.bias, list(self.labels),
                           None if self.idf is None else self.idf[keep])

    def probs(self, texts: Sequence[str]) -> np.ndarray:
        """P(second label) for each text, ``(N,)``."""
        return sigmoid(self.logits(texts))

    def save(self, directory: str | Path) -> Path:
        directory = Path(directory)
        directory.mkdir(parents=True, exist_ok=True)
        tensors = {"weight": np.ascontiguousarray(self.weight, dtype=np.float32),
                   "bias": np.array([self.bias], dtype=np.float64)}
        if self.idf is not None:
            tensors["idf"] = np.ascontiguousarray(self.idf, dtype=np.float32)
        save_file(tensors, str(directory / "linear.safetensors"))
        write_json(directory / "ngrams.json", self.ngrams, indent=None)
        write_json(directory / LINEAR_FILE, {"kind": self.kind, "labels": self.labels,
                                             "features": len(self.ngrams)})
        write_model_file(directory, "ngram")
        return directory

    @classmethod
    def load(cls, directory: str | Path) -> LinearModel:
        directory = Path(directory)
        spec = json.loads((directory / LINEAR_FILE).read_text(encoding="utf-8"))
        tensors = load_file(str(directory / "linear.safetensors"))
        ngrams = json.loads((directory / "ngrams.json").read_text(encoding="utf-8"))
        if len(ngrams) != spec["features"] or tensors["weight"].size != len(ngrams):
            raise ValueError(f"{directory}: {len(ngrams)} n-grams, {tensors['weight'].size} "
                             f"weights, {spec['features']} features in {LINEAR_FILE}")
        idf = tensors.get("idf")
        return cls(spec["kind"], ngrams, tensors["weight"], float(tensors["bias"][0]),
                   spec["labels"], idf)


class _ZeroMissing(dict):
    """A token's id, 0 for a token in no kept n-gram."""

    def __missing__(self, token: str) -> int:
        return 0


class NgramTable:
    """Binary 1-3-gram features times weights, summed per text without building a feature
    matrix: each text's tokens (NB-LR's lower-cased ``NB_TOKENS``) become ids, its n-grams
    integer codes, and the distinct codes found in the table add their weight. Tokens that
    occur in no kept n-gram end every n-gram they are part of. Read-only once built, so
    threads may share it."""

    def __init__(self, ngrams: Sequence[str], weight: np.ndarray):
        self.pattern = re.compile(NB_TOKENS)
        # every n-gram's tokens in one list (one split, not one per n-gram: a split per n-gram
        # was most of a first prediction; BENCHMARKS.md, "Inference: predict, files, serving")
        sizes = np.fromiter((ngram.count(" ") + 1 for ngram in ngrams), dtype=np.int64,
                            count=len(ngrams))
        tokens = " ".join(ngrams).split(" ") if len(ngrams) else []
        # token -> 1.. in order of first appearance (0: a token in no kept n-gram)
        # (a dict whose misses are 0: sums() looks every token up in one C-level pass)
        self.ids: dict[str, int] = _ZeroMissing(
            (token, i) for i, token in enumerate(dict.fromkeys(tokens), 1))
        self.base = len(self.ids) + 1
        if (len(sizes) and sizes.max() > 3) or self.base ** 3 >= 2 ** 62:
            raise ValueError("NgramTable codes 1-3-grams of fewer than 2**20 tokens")
        token_ids = np.fromiter(map(self.ids.__getitem__, tokens), dtype=np.int64,
                                count=len(tokens))
        starts = np.cumsum(sizes) - sizes
        codes = token_ids[starts]  # each n-gram's first token (a copy: filled in below)
        for k in (1, 2):  # the k-th token after the first, where the n-gram has one
            longer = sizes > k
            codes[longer] = codes[longer] * self.base + token_ids[starts[longer] + k]
        order = np.argsort(codes)
        self.codes, self.weight = codes[order], np.asarray(weight, dtype=np.float64)[order]
        # which low bits a kept code can have: most of a text's n-grams are not kept, and this
        # drops them before the binary search (BENCHMARKS.md, "Reading a review's last 384
        # tokens; the n-gram part's cost")
        self.seen = np.zeros(LOW_BITS + 1, dtype=bool)
        self.seen[self.codes & LOW_BITS] = True

    def sums(self, texts: Sequence[str]) -> np.ndarray:
        """Each text's sum of the weights of the distinct kept n-grams it holds, ``(N,)``.

        A code is its tokens' ids as digits in base ``self.base``; kept n-grams have no 0
        digit. So an n-gram with an unknown token matches nothing, except one whose unknown
        tokens all lead: its code is that of the shorter n-gram after them, which the same
        text holds too, and each text counts each n-gram once (binary features)."""
        findall = self.pattern.findall
        docs = [findall(text.lower()) for text in texts]
        lengths = np.fromiter(map(len, docs), dtype=np.int64, count=len(docs))
        # one C-level pass over every token (a dict whose misses are 0): twice as fast as a
        # comprehension per text (BENCHMARKS.md, "The n-gram model's own path")
        ids = np.fromiter(map(self.ids.__getitem__, itertools.chain.from_iterable(docs)),
                          dtype=np.int64, count=int(lengths.sum()))
        owner = np.repeat(np.arange(len(docs)), lengths)
        codes, owners, code = [ids], [owner], ids
        for n in (2, 3):  # each (n-1)-gram extended by the token after it, within one text
            if len(ids) < n:
                break
            code = code[:-1] * self.base + ids[n - 1:]
            start = owner[: len(ids) - n + 1]
            codes.append(np.where(start == owner[n - 1:], code, 0))  # 0 matches nothing
            owners.append(start)
        codes, owners = np.concatenate(codes), np.concatenate(owners)
        if not len(self.codes):
            return np.zeros(len(docs))
        maybe = self.seen[codes & LOW_BITS]
        codes, owners = codes[maybe], owners[maybe]
        order = np.argsort(codes)  # sorted queries search ~4x faster (cache-friendly)
        codes, owners = codes[order], owners[order]
        slot = np.minimum(np.searchsorted(self.codes, codes), len(self.codes) - 1)
        hit = self.codes[slot] == codes
        # distinct (text, n-gram) pairs: sorted, then each kept where it differs from the one
        # before (NumPy's hash-based np.unique is far slower on these; BENCHMARKS.md, "Reading
        # a review's last 384 tokens; the n-gram part's cost")
        pairs = np.sort(owners[hit] * len(self.codes) + slot[hit])
        pairs = pairs[np.concatenate(([True], pairs[1:] != pairs[:-1]))] if len(pairs) else pairs
        return np.bincount(pairs // len(self.codes), weights=self.weight[pairs % len(self.codes)],
                           minlength=len(docs))


class NgramModel(LogitModel):
    """A saved linear n-gram model, loaded like any classifier (kind ``ngram``). A folder that
    also holds a ``config.json`` (the data and split its n-grams were fitted on: the
    classifier's whose wide part it was, as in the shipped ``imdb-ngram``) can be evaluated on
    that split's test or validation reviews (``sentiment evaluate``); its ``vocab`` is None (the
    report builds one from the training reviews, for lengths)."""

    kind = "ngram"

    def __init__(self, path: str | Path, members=None):
        self.linear = LinearModel.load(path)
        super().__init__(path, self.linear.labels, self.linear.logits)
        # every token of a kept n-gram: its unigrams alone leave out "a", "the", "film"
        self.words = frozenset(" ".join(self.linear.ngrams).split())
        self.config, self.vocab = None, None
        if (Path(path) / "config.json").is_file():
            self.config = read_config(path)
            if list(self.config.model.head.labels) != self.labels:
                raise ValueError(f"{path}: config.json's labels {self.config.model.head.labels} "
                                 f"are not the n-gram model's {self.labels}")
            self.capabilities = frozenset({"evaluate"})


MODEL = NgramModel
