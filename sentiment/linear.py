"""Linear n-gram classifiers as models of their own: NB-weighted binary 1-3-grams + logistic
regression (NBSVM-style, Wang & Manning 2012) and TF-IDF 1-2-grams + logistic regression, the
report's two baselines, fitted once and saved without pickles.

A saved linear model is a folder: ``linear.json`` (the kind, the vectorizer's settings and the
labels), ``ngrams.json`` (the n-grams, in feature order) and ``linear.safetensors`` (one weight
per n-gram, the bias, and TF-IDF's idf). For NB-LR the weight is already the logistic
regression's coefficient times the n-gram's log-count ratio, so scoring is one sparse product.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from dataclasses import dataclass
from functools import cached_property
from pathlib import Path

import numpy as np
from safetensors.numpy import load_file, save_file
from scipy import sparse
from sklearn.feature_extraction.text import CountVectorizer, TfidfVectorizer
from sklearn.linear_model import LogisticRegression

LINEAR_FILE = "linear.json"
KINDS = ("nb_lr", "tfidf_lr")
NB_TOKENS = r"(?u)\b\w+\b|[!?]"


def _vectorizer(kind: str, vocabulary: dict[str, int] | None = None):
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
        if kind not in KINDS:
            raise ValueError(f"kind must be one of {KINDS}, got {kind!r}")
        labels = np.asarray(labels)
        if set(labels.tolist()) - {0, 1}:
            raise ValueError("a linear n-gram model here is binary: labels 0 and 1")
        vectorizer = _vectorizer(kind)
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
        vectorizer = _vectorizer(self.kind, {g: i for i, g in enumerate(self.ngrams)})
        if self.idf is not None:
            vectorizer.idf_ = self.idf
        vectorizer.transform([""])  # settles the fixed vocabulary before any thread reads it
        return vectorizer

    def logits(self, texts: Sequence[str]) -> np.ndarray:
        """The log-odds of the second label for each text, ``(N,)``."""
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
        return 1.0 / (1.0 + np.exp(-self.logits(texts)))

    def save(self, directory: str | Path) -> Path:
        directory = Path(directory)
        directory.mkdir(parents=True, exist_ok=True)
        tensors = {"weight": np.ascontiguousarray(self.weight, dtype=np.float32),
                   "bias": np.array([self.bias], dtype=np.float64)}
        if self.idf is not None:
            tensors["idf"] = np.ascontiguousarray(self.idf, dtype=np.float32)
        save_file(tensors, str(directory / "linear.safetensors"))
        (directory / "ngrams.json").write_text(json.dumps(self.ngrams, ensure_ascii=False),
                                               encoding="utf-8")
        (directory / LINEAR_FILE).write_text(json.dumps(
            {"kind": self.kind, "labels": self.labels, "features": len(self.ngrams)}, indent=2))
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


def is_linear(directory: str | Path) -> bool:
    return (Path(directory) / LINEAR_FILE).is_file()
