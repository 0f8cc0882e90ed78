"""Texts routed by length: a model taught on sentences reads short texts, a model taught on
whole reviews reads the rest. A review classifier has never been told what one sentence says,
and a model taught sentences gives up some of its accuracy on reviews (BENCHMARKS.md,
"Sentences"); routed, each reads what it was taught on. ``routed.json`` in a folder names the
members (paths relative to the folder, so it moves with them) and the most words each takes but
the last::

    {"routes": [{"model": "sentences", "max_words": 40},
                {"model": "../imdb-reviews"}]}

A text goes to the first route whose ``max_words`` its word count (whitespace-separated words of
the cleaned text) does not pass; the last takes every other. Unlike a cascade's, each text is
scored by one member only, so the folder costs no more than its members. Members that hold the
same n-gram model share it, loaded once. ``sentiment route`` writes such a folder
(:func:`save_routed`).
"""

from __future__ import annotations

import copy
import os
from collections.abc import Sequence
from pathlib import Path

import numpy as np

from ..jsonio import read_json, write_json
from ..text.clean import cleaned
from .cascade import known_words, share_ngram_parts
from .decisions import Answers, to_results
from .folder import LoadOptions, write_model_file
from .protocol import Refusing, require, supports

ROUTED_FILE = "routed.json"


def route_specs(spec: dict) -> list[dict]:
    """``routed.json``'s routes, checked: two or more, each but the last with a ``max_words``
    (a positive whole number, rising from route to route), the last with none."""
    routes = [dict(route) for route in spec.get("routes", [])]
    if len(routes) < 2:
        raise ValueError(f"a routed model has two routes or more, not {len(routes)}")
    limits = [route.get("max_words") for route in routes[:-1]]
    if not all(isinstance(limit, int) and not isinstance(limit, bool) and limit >= 1
               for limit in limits):
        raise ValueError(f"each route but the last takes texts of at most max_words words, a "
                         f"positive whole number: {routes}")
    if limits != sorted(set(limits)):
        raise ValueError(f"the routes' max_words must rise from route to route: {limits}")
    if "max_words" in routes[-1]:
        raise ValueError("the last route takes every longer text: it has no max_words")
    return routes


def word_counts(texts: Sequence[str]) -> np.ndarray:
    """Each text's words (whitespace-separated, after cleaning), ``(N,)``."""
    return np.array([len(text.split()) for text in cleaned(texts)], dtype=np.int64)


class RoutedModel(Refusing):
    """A loaded routed model (see the module): ``score`` as every model's; ``explain`` by the
    member that scores the text. Its config and vocabulary are its last member's (what
    ``sentiment evaluate`` reads the data split from)."""

    kind = "routed"
    # narrowed to what every member can do when loaded; quantize="int8" quantizes each member
    capabilities = frozenset({"explain", "evaluate", "quantize"})
    refusals = {"export": "export its members instead",
                "quantize": "one of its members cannot be quantized",
                "score_ids": "each member encodes texts its own way",
                "move": "load it again with the device",
                "explain": "one of its members cannot explain",
                "evaluate": "its last member names no data split"}
    answers = Answers()  # its folder's answers.json, set when loaded (sentiment.kinds.registry)

    def __init__(self, path: str | Path, load_member, options: LoadOptions = LoadOptions()):
        path = Path(path)
        routes = route_specs(read_json(path / ROUTED_FILE))
        self.limits = np.array([route["max_words"] for route in routes[:-1]], dtype=np.int64)
        self.members = [load_member((path / route["model"]).resolve(), options)
                        for route in routes]
        labels = self.members[0].labels
        for member in self.members:
            if not hasattr(member, "text_probabilities") or member.labels != labels:
                raise ValueError(f"a routed model's members are classifiers sharing their "
                                 f"labels; {member.path} is not one of {labels}")
        share_ngram_parts(self.members)
        self.path, self.labels, self.num_classes = str(path), list(labels), len(labels)
        self.capabilities = frozenset(
            name for name in ("explain", "quantize")
            if all(supports(member, name) for member in self.members)
        ) | ({"evaluate"} if supports(self.members[-1], "evaluate") else set())
        self.quantize = options.quantize
        self.words = known_words(self.members)
        last = self.members[-1]
        self.config, self.vocab = getattr(last, "config", None), getattr(last, "vocab", None)
        self.device = getattr(last, "device", None)

    def routes(self, texts: Sequence[str]) -> np.ndarray:
        """The member (0, 1, ...) that reads each text, ``(N,)``."""
        return np.searchsorted(self.limits, word_counts(texts), side="left")

    def text_probabilities(self, texts: Sequence[str], batch_size: int = 64,
                           mixed_precision: bool = True, **budget) -> np.ndarray:
        """Each text's probabilities (``(N,)`` for two labels: P(second label)) by the member
        its length routes it to."""
        texts = list(texts)
        routes, probs = self.routes(texts), None
        for k, member in enumerate(self.members):
            index = np.flatnonzero(routes == k)
            if not len(index):
                continue
            scored = np.asarray(member.text_probabilities([texts[i] for i in index], batch_size,
                                                          mixed_precision, **budget))
            if probs is None:
                probs = np.zeros((len(texts), *scored.shape[1:]))
            probs[index] = scored
        if probs is None:  # no texts
            return np.zeros((0,) if self.num_classes == 2 else (0, self.num_classes))
        return probs

    def score(self, texts: Sequence[str], batch_size: int = 64, mixed_precision: bool = True,
              all_scores: bool = False, **budget) -> list[dict]:
        return to_results(self.text_probabilities(texts, batch_size, mixed_precision, **budget),
                          self.labels, all_scores)

    def explaining_copy(self) -> RoutedModel:
        """A copy whose members' weights are their own, to explain beside scoring."""
        twin = copy.copy(self)
        twin.members = [member.explaining_copy() for member in self.members]
        return twin

    def explain(self, text: str, steps: int = 32, max_tokens: int | None = None) -> dict:
        """Which words pushed ``text``'s label, by the member that scores it (``"route"``: its
        place in ``routed.json``)."""
        require(self, "explain")
        route = int(self.routes([text])[0])
        return {**self.members[route].explain(text, steps, max_tokens), "route": route}

    @classmethod
    def load(cls, folder: Path, kind: str, options: LoadOptions, members=None) -> RoutedModel:
        """The registry's loader of ``routed`` folders (``members``: the registry's own loader)."""
        return cls(folder, members, options)

    def __repr__(self) -> str:
        return (f"RoutedModel(path={self.path!r}, members={[m.path for m in self.members]!r}, "
                f"max_words={self.limits.tolist()})")


def save_routed(models: Sequence[str | Path], max_words: Sequence[int], output: str | Path,
                load_member) -> Path:
    """Write ``output/routed.json``: texts of at most ``max_words[k]`` words to ``models[k]``,
    every longer one to the last model (paths written relative to ``output``). The members are
    loaded with ``load_member`` (the registry's loader) and checked to share their labels; a
    folder that fails to load is not left behind."""
    if len(models) < 2 or len(max_words) != len(models) - 1:
        raise ValueError(f"{len(models)} routed models take {len(models) - 1} max_words "
                         f"(and two models or more), not {len(max_words)}")
    output = Path(output)
    if (output / "model.json").is_file():
        raise ValueError(f"{output} holds a model already: write the routed folder elsewhere")
    made = not output.exists()
    output.mkdir(parents=True, exist_ok=True)
    spec = {"routes": [{"model": os.path.relpath(Path(model).resolve(), output.resolve())}
                       for model in models]}
    for route, limit in zip(spec["routes"], max_words):
        route["max_words"] = int(limit)
    write_json(output / ROUTED_FILE, spec)
    try:
        RoutedModel(output, load_member)
    except Exception:
        (output / ROUTED_FILE).unlink()
        if made:
            output.rmdir()
        raise
    write_model_file(output, "routed")
    return output


MODEL = RoutedModel
