"""A confidence cascade: a fast model scores every text, and the texts it is unsure of go on to a
slower, more accurate one, and so on to the last. ``cascade.json`` in a folder names the stages
(paths relative to the folder, so it can move with them) and each one's threshold but the
last's::

    {"stages": [{"model": "../imdb-ngram", "threshold": 0.99},
                {"model": "fast", "threshold": 0.9},
                {"model": "../imdb-onnx"}]}

A text keeps a stage's label and score when that score (the probability of its label) is at
least the stage's threshold; otherwise the next stage scores it, and the last one's stands.
A two-stage folder may be written the older way, ``{"fast": ..., "full": ..., "threshold": t}``.
The stages must be binary and share their labels. Stages that hold the same n-gram model (an
n-gram model and a wide-and-deep model whose wide part is that one; :mod:`sentiment.kinds.wide`)
share it, loaded once, and a text's n-gram log-odds are computed once however many of them read
it. ``sentiment cascade`` chooses the thresholds on the last model's validation reviews
(:func:`sentiment.train.thresholds.validation_sweep`) and writes the folder
(:func:`sentiment.train.thresholds.save_cascade`)."""

from __future__ import annotations

import hashlib
from collections.abc import Sequence
from pathlib import Path

import numpy as np

from ..jsonio import read_json
from ..text.clean import cleaned
from .decisions import Answers, sigmoid, to_results
from .folder import LoadOptions
from .protocol import Refusing, supports

CASCADE_FILE = "cascade.json"


def stage_specs(spec: dict) -> list[dict]:
    """``cascade.json``'s stages, ``[{"model": path, "threshold": t}, ..., {"model": path}]``,
    from either way of writing it (``stages``, or the older ``fast``/``full``/``threshold``)."""
    if "stages" in spec:
        stages = [dict(stage) for stage in spec["stages"]]
    else:
        stages = [{"model": spec["fast"], "threshold": spec["threshold"]}, {"model": spec["full"]}]
    if len(stages) < 2:
        raise ValueError(f"a cascade has two stages or more, not {len(stages)}")
    for stage in stages[:-1]:
        if not 0.5 <= float(stage.get("threshold", -1)) <= 1.0:
            raise ValueError(f"each stage but the last has a threshold, a probability in "
                             f"[0.5, 1]: {stage}")
    if "threshold" in stages[-1]:
        raise ValueError("the last stage answers every text it gets: it has no threshold")
    return stages


def members(path: Path, spec: dict, load_member, options: LoadOptions = LoadOptions()) -> list:
    """The stages' models ``spec`` names (relative to ``path``), in order, loaded with
    ``load_member`` (the registry's loader) and checked to make a cascade."""
    stages = [load_member((path / stage["model"]).resolve(), options)
              for stage in stage_specs(spec)]
    for member in stages:
        if member.kind == "cascade" or len(member.labels) != 2:
            raise ValueError(f"a cascade's members are binary classifiers; {member.path} is not")
    if not supports(stages[-1], "evaluate"):  # its config names the data split evaluate reads
        raise ValueError(f"a cascade's full model is a classifier folder (an LSTM, its export "
                         f"or a wide-and-deep model), and it is the last stage; "
                         f"{stages[-1].path} is an n-gram or stacked model")
    for member in stages[1:]:
        if member.labels != stages[0].labels:
            raise ValueError(f"a cascade's members must share their labels: "
                             f"{stages[0].labels} against {member.labels}")
    return stages


def ngram_part(model):
    """The linear n-gram model a stage reads (an n-gram model's own, a wide-and-deep model's
    wide part), or None."""
    wide = getattr(model, "wide", None)
    return wide.linear if wide is not None else getattr(model, "linear", None)


def share_ngram_parts(stages: Sequence) -> list:
    """Each stage's n-gram model (or None), one object for stages whose n-gram models are the
    same (n-grams, weights and bias): later stages are given the first one's, so its table is
    built once and its scores can be reused."""
    seen: dict[str, object] = {}
    parts = []
    for model in stages:
        part = ngram_part(model)
        if part is not None and getattr(part, "kind", "") == "nb_lr":
            digest = hashlib.sha256("\n".join(part.ngrams).encode("utf-8"))
            digest.update(np.ascontiguousarray(part.weight, dtype=np.float32).tobytes())
            digest.update(repr(float(part.bias)).encode())
            part = seen.setdefault(digest.hexdigest(), part)
            if getattr(model, "wide", None) is not None:
                model.wide.linear = part
            else:
                model.linear, model.logits = part, part.logits
        parts.append(part)
    return parts


def known_words(members: Sequence) -> frozenset[str]:
    """The words a composite knows: its members' vocabularies (an n-gram member's tokens are no
    vocabulary: its n-grams hold rare words of every kind, and would hide foreign text); all
    members' words where none has a vocabulary."""
    readers = [member for member in members if getattr(member, "vocab", None) is not None]
    return frozenset().union(*(frozenset(member.words) for member in readers or members))


class NgramScores:
    """Texts' n-gram log-odds under each shared n-gram model, computed once per text and model
    within one call (``index``: the texts' positions in that call)."""

    def __init__(self, texts: Sequence[str]):
        self.texts, self.known = texts, {}

    def logits(self, part, index: np.ndarray) -> np.ndarray:
        values, done = self.known.setdefault(id(part), (np.zeros(len(self.texts)),
                                                        np.zeros(len(self.texts), dtype=bool)))
        todo = index[~done[index]]
        if len(todo):
            values[todo] = part.logits(cleaned([self.texts[i] for i in todo]))
            done[todo] = True
        return values[index]


class CascadeModel(Refusing):
    """A loaded cascade (see the module): ``score`` as every model's. Its config and
    vocabulary are its last model's (what ``sentiment evaluate`` reads the data split from);
    each stage reads the texts its own way."""

    kind = "cascade"
    capabilities = frozenset({"evaluate"})  # on its full model's split
    refusals = {"explain": "explain one of its members instead",
                "quantize": "quantize its members instead",
                "score_ids": "each member encodes texts its own way"}
    num_classes = 2
    answers = Answers()  # its folder's answers.json, set when loaded (sentiment.kinds.registry)

    def __init__(self, path: str | Path, load_member, options: LoadOptions = LoadOptions()):
        path = Path(path)
        spec = read_json(path / CASCADE_FILE)
        self.thresholds = [float(stage["threshold"]) for stage in stage_specs(spec)[:-1]]
        self.stages = members(path, spec, load_member, options)
        self.ngram_parts = share_ngram_parts(self.stages)
        self.fast, self.full = self.stages[0], self.stages[-1]
        self.path, self.labels = str(path), list(self.full.labels)
        self.words = known_words(self.stages)
        self.config, self.vocab, self.device = self.full.config, self.full.vocab, self.full.device

    @property
    def threshold(self) -> float:
        """The first stage's threshold (a two-stage cascade's only one)."""
        return self.thresholds[0]

    def text_probabilities(self, texts: Sequence[str], batch_size: int = 64,
                           mixed_precision: bool = True, **budget) -> np.ndarray:
        """P(second label) per text, ``(N,)``: the first stage's where it is sure enough, the
        next one's where that one is, and so on. ``max_tokens`` (in ``budget``): every
        stage's batch budget, else each its own default."""
        return self.routed(texts, batch_size, mixed_precision, **budget)[0]

    def routed(self, texts: Sequence[str], batch_size: int = 64, mixed_precision: bool = True,
               **budget) -> tuple[np.ndarray, np.ndarray]:
        """``(probabilities, stage)``: :meth:`text_probabilities` and the stage (0, 1, ...)
        whose score each text kept."""
        texts = list(texts)
        probs, stage = np.zeros(len(texts)), np.zeros(len(texts), dtype=np.int64)
        pending, ngrams = np.arange(len(texts)), NgramScores(texts)
        for k, model in enumerate(self.stages):
            probs[pending] = self._stage(k, model, texts, pending, ngrams, batch_size,
                                         mixed_precision, **budget)
            stage[pending] = k
            if k == len(self.thresholds):
                break
            pending = pending[np.maximum(probs[pending], 1.0 - probs[pending])
                              < self.thresholds[k]]
            if not len(pending):
                break
        return probs, stage

    def _stage(self, k: int, model, texts: list[str], index: np.ndarray, ngrams: NgramScores,
               batch_size: int, mixed_precision: bool, **budget) -> np.ndarray:
        """Stage ``k``'s probabilities of the texts at ``index``, its n-gram log-odds (if it
        reads any) taken from ``ngrams``."""
        part, chosen = self.ngram_parts[k], [texts[i] for i in index]
        if part is None:
            return model.text_probabilities(chosen, batch_size, mixed_precision, **budget)
        logits = ngrams.logits(part, index)
        if getattr(model, "wide", None) is None:  # the n-gram model itself
            return sigmoid(logits)
        return model.text_probabilities(chosen, batch_size, mixed_precision, wide_logits=logits,
                                        **budget)

    def escalated(self, texts: Sequence[str], batch_size: int = 64,
                  mixed_precision: bool = True, **budget) -> tuple[np.ndarray, np.ndarray]:
        """``(probabilities, sent)``: :meth:`text_probabilities` and which texts the first
        stage sent on."""
        probs, stage = self.routed(texts, batch_size, mixed_precision, **budget)
        return probs, stage > 0

    def score(self, texts: Sequence[str], batch_size: int = 64, mixed_precision: bool = True,
              all_scores: bool = False, **budget) -> list[dict]:
        return to_results(self.text_probabilities(texts, batch_size, mixed_precision, **budget),
                          self.labels, all_scores)

    @classmethod
    def load(cls, folder: Path, kind: str, options: LoadOptions, members=None
             ) -> CascadeModel:
        """The registry's loader of ``cascade`` folders (``members``: the registry's own
        loader, for the stages); the members say where they run."""
        return cls(folder, members, options)

    def __repr__(self) -> str:
        return (f"CascadeModel(path={self.path!r}, stages={[m.path for m in self.stages]!r}, "
                f"thresholds={self.thresholds})")


MODEL = CascadeModel
