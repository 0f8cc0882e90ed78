"""Prediction: ``predict(text_or_texts)`` with a saved sentiment model, pipeline-style.

Explanations are in :mod:`sentiment.kinds.explain`, worker threads in :mod:`sentiment.runtime.workers`, the
rules from probabilities to labels in :mod:`sentiment.kinds.decisions`, the ONNX Runtime scorer in
:mod:`sentiment.kinds.onnx`. This module imports without torch, so that an install without it
(docs/inference.md) scores exported ONNX models through the same ``predict``."""

from __future__ import annotations

import copy
import functools
import logging
import os
from collections.abc import Iterable, Mapping, Sequence
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np

from ..config import ENSEMBLE_FILE, ONNX_FILE, Config
from ..data.lengths import cut, score_in_length_order
from ..kinds.decisions import to_results
from ..kinds.wide import Wide
from ..text.clean import clean_text
from ..text.tokenize import Tokenizer
from ..text.vocab import Vocab

try:
    import torch
except ImportError:  # an install without torch scores ONNX models only (docs/inference.md)
    torch = None

if TYPE_CHECKING:
    from ..nn.heads import SentimentClassifier

logger = logging.getLogger(__name__)

# The classifier shipped inside the package (MODEL_CARD.md): predict's default model.
SHIPPED_MODEL = Path(__file__).parents[1] / "models" / "imdb"
# the models shipped inside the package, by name: predict(..., model="imdb-fast")
SHIPPED_MODELS = {path.name: path for path in sorted(SHIPPED_MODEL.parent.iterdir())
                  if path.is_dir()} if SHIPPED_MODEL.parent.is_dir() else {}
QUANTIZE = ("none", "int8")  # predict(..., quantize=...): int8 = dynamic int8 LSTM weights
# A text is cut to its first MAX_CHARS characters and MAX_TEXT_TOKENS tokens before scoring, so
# that a very long input (say 1 MB) keeps time and memory bounded. IMDB's longest review has
# ~2,800 tokens. (A batch's token budget is another thing: ``max_tokens``.)
MAX_CHARS = 100_000
MAX_TEXT_TOKENS = 5_000
# a scoring batch also ends before its padded size (rows x longest) passes this many tokens:
# the shipped model scored the first 2,000 IMDB test reviews 1.38-1.49x faster with it than in
# plain batches of 64, with half the memory growth (BENCHMARKS.md, inference); None: no budget
SCORE_MAX_TOKENS = 16_384


class TextModel:
    """What every scorer of texts shares: its labels and preprocessing. ``score_encoded`` is
    the scorer's own (PyTorch here, ONNX Runtime in :mod:`sentiment.kinds.onnx`)."""

    reads_texts = False  # True: scored from the texts alone, not ids (sentiment.kinds.cascade)

    def __init__(self, vocab: Vocab, config: Config, path: str = ""):
        if config.task != "sentiment":
            raise ValueError(f"{path or 'model'} is a {config.task!r} model, not a sentiment model")
        self.vocab = vocab
        self.config = config
        self.path = path
        self.labels = list(config.model.head.labels)
        self.tokenizer = Tokenizer(lowercase=config.data.lowercase)
        self.max_length = min(config.data.max_length or MAX_TEXT_TOKENS, MAX_TEXT_TOKENS)
        self.keep = config.data.keep  # a long text's start or end
        # a wide-and-deep folder's n-gram model and head (sentiment.kinds.wide), else None
        self.wide = Wide.load(path) if path else None

    def tokens(self, texts: Sequence[str]) -> list[list[str]]:
        """The tokens the model reads of each text (cleaned, cut to MAX_CHARS characters, then
        to max_length tokens: its first, or with ``data.keep="end"`` its last)."""
        cleaned = [clean_text(text[:MAX_CHARS]) for text in texts]
        tokenized = self.tokenizer.pipe(cleaned)  # one thread at a time (sentiment.text.tokenize)
        return [cut(tokens, self.max_length, self.keep) for tokens in tokenized]

    def encode(self, texts: Sequence[str]) -> list[list[int]]:
        return [self.vocab.encode(tokens) for tokens in self.tokens(texts)]

    def text_probabilities(self, texts: Sequence[str], batch_size: int = 64,
                           mixed_precision: bool = True, **budget) -> np.ndarray:
        """The model's probabilities of ``texts`` as :meth:`score` computes them (``(N,)`` for
        two classes: P(second label)), the n-gram part joined where there is one.
        ``max_tokens`` (in ``budget``): the batch budget, else the model's own default."""
        wide = None if self.wide is None else self.wide.logits(texts)
        return self.joined(self.probabilities(self.encode(texts), batch_size,
                                              mixed_precision=mixed_precision, **budget), wide)

    def score(self, texts: Sequence[str], batch_size: int = 64, mixed_precision: bool = True,
              all_scores: bool = False, max_tokens: int | None = SCORE_MAX_TOKENS
              ) -> list[dict]:
        """``{"label", "score"}`` (and ``"scores"``) per text, in input order; the texts are
        taken as given (:func:`predict` checks them first). ``max_tokens``: see
        :func:`score_ids`."""
        wide = None if self.wide is None else self.wide.logits(texts)
        return self.score_encoded(self.encode(texts), batch_size, mixed_precision, all_scores,
                                  max_tokens, wide)

    def score_encoded(self, ids: Sequence[Sequence[int]], batch_size: int = 64,
                      mixed_precision: bool = True, all_scores: bool = False,
                      max_tokens: int | None = SCORE_MAX_TOKENS,
                      wide: np.ndarray | None = None) -> list[dict]:
        """:meth:`score` of texts already :meth:`encode`-d (``wide``: a wide-and-deep model's
        n-gram log-odds of the same texts, ``self.wide.logits(texts)``)."""
        raise NotImplementedError

    def joined(self, probs: np.ndarray, wide: np.ndarray | None) -> np.ndarray:
        """The model's probabilities from its deep part's: joined with the n-gram log-odds
        ``wide`` when the model is wide and deep (which needs them)."""
        if self.wide is None:
            if wide is not None:
                raise ValueError(f"{self.path} is not a wide-and-deep model: no n-gram scores "
                                 "to join")
            return probs
        if wide is None:
            raise ValueError(f"{self.path} is wide and deep: its scores need the texts' n-gram "
                             "log-odds (score(texts), or wide=model.wide.logits(texts))")
        return self.wide.probabilities(probs, wide)

    def with_wide(self, probs: np.ndarray, texts: Sequence[str]) -> np.ndarray:
        """:meth:`joined` for the texts themselves: their n-gram log-odds scored here when the
        model is wide and deep, ``probs`` as they are otherwise."""
        return self.joined(probs, None if self.wide is None else self.wide.logits(texts))


class SentimentModel(TextModel):
    """A loaded PyTorch classifier with its vocabulary and preprocessing, ready to score texts.
    ``quantize="int8"``: its LSTMs with dynamic int8 weights (CPU only)."""

    def __init__(self, model: SentimentClassifier, vocab: Vocab, config: Config, path: str = "",
                 quantize: str = "none"):
        super().__init__(vocab, config, path)
        self.model = self.float_model = model.eval()  # explanations need float weights
        self.quantize = quantize
        if quantize == "int8":
            self.model = quantize_int8(self.model)

    @property
    def device(self) -> torch.device:
        return next(self.model.parameters()).device

    def score_encoded(self, ids: Sequence[Sequence[int]], batch_size: int = 64,
                      mixed_precision: bool = True, all_scores: bool = False,
                      max_tokens: int | None = SCORE_MAX_TOKENS,
                      wide: np.ndarray | None = None) -> list[dict]:
        """:meth:`score` of texts already :meth:`encode`-d."""
        scores = self.probabilities(ids, batch_size, max_tokens, mixed_precision)
        return to_results(self.joined(scores, wide), self.labels, all_scores)

    def probabilities(self, ids: Sequence[Sequence[int]], batch_size: int = 64,
                      max_tokens: int | None = SCORE_MAX_TOKENS,
                      mixed_precision: bool = True) -> np.ndarray:
        """The deep model's probabilities (:func:`score_ids`), before any wide part."""
        return score_ids(self.model, ids, batch_size, self.vocab.pad_index or 0,
                         mixed_precision=mixed_precision and self.quantize == "none",
                         max_tokens=max_tokens)

    def explain(self, text: str, steps: int = 32, max_tokens: int | None = None) -> dict:
        """Which words pushed ``text``'s label: :func:`sentiment.kinds.explain.explain`."""
        from ..kinds.explain import explain

        if self.quantize != "none":  # gradients go through the float weights
            float_twin = copy.copy(self)
            float_twin.model, float_twin.quantize = self.float_model, "none"
            return explain(float_twin, text, steps, max_tokens)
        return explain(self, text, steps, max_tokens)

    @property
    def num_classes(self) -> int:
        return getattr(self.model, "num_classes", 2)

    def __repr__(self) -> str:
        quantized = "" if self.quantize == "none" else f", quantize={self.quantize!r}"
        return f"SentimentModel(path={self.path!r}, vocab_size={len(self.vocab)}{quantized})"


def quantize_int8(model: SentimentClassifier) -> SentimentClassifier:
    """A copy of ``model`` whose LSTM/GRU/RNN layers hold dynamic int8 weights (activations
    quantized on the fly; the embedding and the float32 head unchanged). CPU only."""
    if next(model.parameters()).device.type != "cpu":
        raise ValueError("int8 quantization runs on the CPU; load the model with device='cpu'")
    import warnings

    from torch.ao.quantization import quantize_dynamic

    with warnings.catch_warnings():  # torch.ao's note that torchao will replace it one day
        warnings.filterwarnings("ignore", message=".*quantize_per_tensor.*deprecated")
        warnings.filterwarnings("ignore", message="torch.ao.quantization is deprecated")
        return quantize_dynamic(copy.deepcopy(model), {torch.nn.LSTM, torch.nn.GRU}, torch.qint8)


def score_ids(
    model: SentimentClassifier,
    sequences: Sequence[Sequence[int]],
    batch_size: int = 64,
    pad_index: int = 0,
    max_length: int | None = None,
    mixed_precision: bool = True,
    max_tokens: int | None = None,
    autocast_to: torch.dtype | None = None,
    keep: str = "start",
) -> np.ndarray:
    """Class probabilities per id sequence, batched sorted by length, input order kept: a
    binary model's probability of its second label (*positive*) as shape ``(N,)``, a
    multi-class model's softmax as ``(N, C)`` (:func:`class_probs` makes both ``(N, C)``).

    ``mixed_precision``: run the RNN in the device's fast lower precision where it has one
    (:func:`~sentiment.runtime.precision.autocast_dtype`); the head and the probabilities stay float32.
    ``max_tokens``: a batch also ends before its padded size (rows × longest) would pass this,
    so that a few long texts do not pad many short ones. ``autocast_to``: this lower precision
    instead of the measured choice (benchmarks compare them). ``keep``: which end of a sequence
    longer than ``max_length`` is read (:func:`sentiment.data.lengths.cut`).
    """
    from ..data.batching import pad_batch
    from ..kinds.decisions import probabilities
    from ..runtime.precision import autocast, autocast_dtype

    device = next(model.parameters()).device
    classes = getattr(model, "num_classes", 2)
    model.eval()

    def score_batch(indices, lengths):
        batch = pad_batch([sequences[i] for i in indices], pad_index, max_length,
                          keep=keep).to(device)
        return probabilities(model(batch).logits.float(), classes).cpu().numpy()

    amp_dtype = autocast_to or autocast_dtype(device, mixed_precision)
    with torch.inference_mode(), autocast(device, amp_dtype):
        return score_in_length_order(sequences, classes, batch_size, max_tokens, score_batch)


# what makes a folder a model: an LSTM (config.json), an ensemble, a linear n-gram model or a
# stacked teacher (sentiment.kinds.stack.TextScoringModel), an exported ONNX model, a cascade of two
# models (sentiment.kinds.cascade)
MODEL_FILES = ("config.json", ENSEMBLE_FILE, "linear.json", "stack.json", ONNX_FILE,
               "cascade.json")


def _is_model_folder(path: Path) -> bool:
    return any((path / name).is_file() for name in MODEL_FILES)


def default_model_path() -> Path:
    """The model scored when none is named and ``$SENTIMENT_MODEL`` is unset: the shipped model,
    or in an install without torch its ONNX export ``imdb-onnx`` (the same model reading each
    text's last 288 tokens; MODEL_CARD.md), which scores without torch."""
    if torch is None and "imdb-onnx" in SHIPPED_MODELS:
        _say_once("torch is not installed: scoring with the shipped model's ONNX export, "
                  "imdb-onnx (MODEL_CARD.md)")
        return SHIPPED_MODELS["imdb-onnx"]
    return SHIPPED_MODEL


@functools.cache
def _say_once(message: str) -> None:
    logger.warning(message)  # once a process: which model scores is worth knowing


def resolve_model_path(model: str | Path | None) -> Path:
    """``model`` (a folder, or the name of a shipped model: ``imdb``, ``imdb-fast``,
    ``imdb-onnx``, ``imdb-cascade``), else ``$SENTIMENT_MODEL``, else the default
    (:func:`default_model_path`)."""
    path = Path(model or os.environ.get("SENTIMENT_MODEL") or default_model_path())
    if not _is_model_folder(path) and str(path) in SHIPPED_MODELS:
        path = SHIPPED_MODELS[str(path)]
    if not _is_model_folder(path):
        raise FileNotFoundError(
            f"no trained sentiment model at {str(path)!r}. Train one with "
            f"`sentiment train --output {path}` (python scripts/train_sentiment.py in a checkout), "
            "or point to one with predict(..., model=PATH) or the SENTIMENT_MODEL environment "
            "variable."
        )
    return path.resolve()


@functools.lru_cache(maxsize=8)
def _load_cached(path: str, device: str, mtime: float, quantize: str = "none",
                 threads: int | None = None) -> TextModel:
    from ..kinds.cascade import CascadeModel, is_cascade
    from ..kinds.onnx import OnnxModel, is_onnx

    if is_onnx(path):
        return OnnxModel(path, threads)
    if is_cascade(path):
        return CascadeModel(path, None if device == "auto" else device, threads)
    if not (Path(path) / "config.json").is_file() and not (Path(path) / ENSEMBLE_FILE).is_file():
        from ..kinds.stack import TextScoringModel

        return TextScoringModel(path)
    from ..kinds.checkpoint import load_pretrained

    model, vocab, config = load_pretrained(path, device=device)
    return SentimentModel(model, vocab, config, path, quantize)


def load_model(
    model: str | Path | None = None, device: str | torch.device | None = None,
    quantize: str = "none", threads: int | None = None,
) -> TextModel:
    """Load (and cache per path, device, quantization and threads) a saved sentiment model.

    The path is ``model`` (a folder, or a shipped model's name: ``imdb``, ``imdb-fast``,
    ``imdb-onnx``, ``imdb-cascade``), else ``$SENTIMENT_MODEL``, else the model shipped with
    the package (:data:`SHIPPED_MODEL`, described in MODEL_CARD.md; without torch,
    ``imdb-onnx``). A folder exported to ONNX (``sentiment export --format onnx``) is scored
    with ONNX Runtime, on the CPU, without torch; a cascade (:mod:`sentiment.kinds.cascade`) by its
    two members.
    ``quantize="int8"``: the LSTMs with dynamic int8 weights (a PyTorch model on the CPU).
    ``threads``: the ONNX Runtime session's threads for an exported folder (default: its own
    choice); a PyTorch model runs on torch's threads, which are the process's
    (``torch.set_num_threads``).
    """
    from ..kinds.cascade import is_cascade
    from ..kinds.onnx import is_onnx

    if quantize not in QUANTIZE:
        raise ValueError(f"quantize must be one of {QUANTIZE}, not {quantize!r}")
    path = resolve_model_path(model)
    # a model saved again at the same path is loaded again
    mtime = max((p.stat().st_mtime for pattern in ("**/*.safetensors", "**/" + ONNX_FILE,
                                                   "cascade.json")
                 for p in path.glob(pattern)), default=0.0)
    if is_cascade(path):  # its members say where they run
        if quantize != "none":
            raise ValueError(f"{path} is a cascade: quantize its members instead")
        return _load_cached(str(path), str(device or "auto"), mtime, threads=threads)
    if is_onnx(path):
        if device is not None and str(device) not in ("cpu", "auto"):
            raise ValueError(f"{path} is an ONNX model, scored on the CPU; device {device!r} "
                             "is for PyTorch models")
        if quantize != "none":
            raise ValueError(f"{path} is an ONNX model: quantize it when exporting (sentiment "
                             "export --format onnx --quantize int8)")
        return _load_cached(str(path), "cpu", mtime, threads=threads)
    if torch is None:
        raise ModuleNotFoundError(
            f"{path} is a PyTorch model and torch is not installed: pip install torch, or "
            "score the shipped model's ONNX export (model='imdb-onnx'), or export yours to "
            "ONNX where torch is (sentiment export --format onnx) and score that folder")
    from ..runtime.precision import resolve_device

    resolved = resolve_device(device or "auto")
    if quantize != "none" and resolved.type != "cpu":
        raise ValueError(f"quantize={quantize!r} runs on the CPU, not {resolved}")
    return _load_cached(str(path), str(resolved), mtime, quantize)


def on_device(model: SentimentModel, device: torch.device) -> SentimentModel:
    """``model`` on ``device``, leaving ``model`` itself (maybe cached and shared) where it is:
    the cached copy for that device when the model came from a folder, else a moved copy."""
    if model.path and _is_model_folder(Path(model.path)):
        return load_model(model.path, device, getattr(model, "quantize", "none"))
    moved = copy.copy(model)
    moved.model = copy.deepcopy(model.model).to(device)
    return moved


def as_texts(text_or_texts) -> tuple[list[str], bool]:
    """``(texts, single)``: one string, or any iterable of strings (list, tuple, generator,
    pandas Series, NumPy array of str) as a list in input order. Anything else is a
    ``TypeError`` naming what it got; an empty or whitespace-only text a ``ValueError``."""
    single = isinstance(text_or_texts, str)
    if single:
        texts = [text_or_texts]
    elif isinstance(text_or_texts, (bytes, bytearray, Mapping)) or not isinstance(
            text_or_texts, Iterable):
        raise TypeError("predict takes a string or an iterable of strings (list, tuple, "
                        "generator, pandas Series, NumPy array of str), not "
                        f"{type(text_or_texts).__name__}")
    else:
        texts = list(text_or_texts)
    for position, text in enumerate(texts):
        where = "" if single else f" at position {position}"
        if not isinstance(text, str):
            raise TypeError(f"text{where} must be a str, not {type(text).__name__}")
        if not text.strip():
            raise ValueError(f"text{where} is empty or whitespace only; nothing to classify")
    return [str(text) for text in texts], single


def predict(
    text_or_texts: str | Iterable[str],
    model: str | Path | TextModel | None = None,
    batch_size: int = 64,
    device: str | torch.device | None = None,
    mixed_precision: bool = True,
    all_scores: bool = False,
    quantize: str = "none",
) -> dict | list[dict]:
    """Sentiment of one text (a dict) or of many (a list of dicts, in input order).

    ``text_or_texts``: a string, or any iterable of strings -- a list, tuple, generator,
    pandas Series or NumPy array of str. Each result is ``{"label": one of the model's labels,
    "score": probability of that label}``; ``all_scores=True`` adds ``"scores"``, every label's
    probability. Raises ``TypeError`` for anything else (naming what
    it got) and ``ValueError`` for an empty or whitespace-only text. Texts longer than
    ``MAX_CHARS`` characters or ``MAX_TEXT_TOKENS`` tokens are truncated. ``mixed_precision=False``
    scores in float32 where the default would use a faster lower precision (bfloat16 on CPUs
    where it measured faster; scores then differ in the third decimal). ``quantize="int8"``
    scores with dynamic int8 LSTM weights (:func:`load_model`). ``model`` may also be a folder
    exported to ONNX, scored with ONNX Runtime (:mod:`sentiment.kinds.onnx`).
    """
    texts, single = as_texts(text_or_texts)
    if batch_size < 1:
        raise ValueError(f"batch_size must be >= 1, got {batch_size}")
    if model is None or isinstance(model, (str, Path)):
        model = load_model(model, device, quantize)
    else:
        if quantize != getattr(model, "quantize", "none"):
            raise ValueError(f"{model!r} is loaded with quantize="
                             f"{getattr(model, 'quantize', 'none')!r}; load it with "
                             f"load_model(..., quantize={quantize!r}) instead")
        if device is not None and isinstance(model, SentimentModel):
            from ..runtime.precision import resolve_device

            if resolve_device(device) != model.device:
                model = on_device(model, resolve_device(device))
    if not texts:
        return []
    results = model.score(texts, batch_size, mixed_precision, all_scores)
    return results[0] if single else results
