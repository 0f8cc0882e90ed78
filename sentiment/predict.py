"""Prediction: ``predict(text_or_texts)`` with a saved sentiment model, pipeline-style.

Explanations are in :mod:`sentiment.explain`, worker threads in :mod:`sentiment.workers`, the
rules from probabilities to labels in :mod:`sentiment.decisions`."""

from __future__ import annotations

import copy
import functools
import os
import threading
from collections.abc import Iterable, Mapping, Sequence
from pathlib import Path

import numpy as np
import torch

from .batching import cut_batches, pad_batch
from .checkpoint import ENSEMBLE_FILE, load_pretrained
from .config import Config
from .data import clean_text
from .decisions import probabilities, to_results
from .heads import SentimentClassifier
from .precision import autocast, autocast_dtype, resolve_device
from .tokenize import Tokenizer
from .vocab import Vocab

# The classifier shipped inside the package (MODEL_CARD.md): predict's default model.
SHIPPED_MODEL = Path(__file__).parent / "models" / "imdb"
# A text is cut to its first MAX_CHARS characters and MAX_TEXT_TOKENS tokens before scoring, so
# that a very long input (say 1 MB) keeps time and memory bounded. IMDB's longest review has
# ~2,800 tokens. (A batch's token budget is another thing: ``max_tokens``.)
MAX_CHARS = 100_000
MAX_TEXT_TOKENS = 5_000


class SentimentModel:
    """A loaded classifier with its vocabulary and preprocessing, ready to score texts."""

    def __init__(self, model: SentimentClassifier, vocab: Vocab, config: Config, path: str = ""):
        if config.task != "sentiment":
            raise ValueError(f"{path or 'model'} is a {config.task!r} model, not a sentiment model")
        self.model = model.eval()
        self.vocab = vocab
        self.config = config
        self.path = path
        self.labels = list(config.model.head.labels)
        self.tokenizer = Tokenizer(lowercase=config.data.lowercase)
        self.tokenizing = threading.Lock()  # spaCy's vocabulary is shared: one thread at a time
        self.max_length = min(config.data.max_length or MAX_TEXT_TOKENS, MAX_TEXT_TOKENS)

    @property
    def device(self) -> torch.device:
        return next(self.model.parameters()).device

    def tokens(self, texts: Sequence[str]) -> list[list[str]]:
        """The tokens the model reads of each text (cleaned, cut to MAX_CHARS / max_length)."""
        cleaned = [clean_text(text[:MAX_CHARS]) for text in texts]
        with self.tokenizing:
            tokenized = self.tokenizer.pipe(cleaned)
        return [tokens[: self.max_length] for tokens in tokenized]

    def encode(self, texts: Sequence[str]) -> list[list[int]]:
        return [self.vocab.encode(tokens) for tokens in self.tokens(texts)]

    def score(self, texts: Sequence[str], batch_size: int = 64, mixed_precision: bool = True,
              all_scores: bool = False, max_tokens: int | None = None) -> list[dict]:
        """``{"label", "score"}`` (and ``"scores"``) per text, in input order; the texts are
        taken as given (:func:`predict` checks them first). ``max_tokens``: see
        :func:`score_ids`."""
        return self.score_encoded(self.encode(texts), batch_size, mixed_precision, all_scores,
                                  max_tokens)

    def score_encoded(self, ids: Sequence[Sequence[int]], batch_size: int = 64,
                      mixed_precision: bool = True, all_scores: bool = False,
                      max_tokens: int | None = None) -> list[dict]:
        """:meth:`score` of texts already :meth:`encode`-d."""
        scores = score_ids(self.model, ids, batch_size, self.vocab.pad_index or 0,
                           mixed_precision=mixed_precision, max_tokens=max_tokens)
        return to_results(scores, self.labels, all_scores)

    def explain(self, text: str, steps: int = 32, max_tokens: int | None = None) -> dict:
        """Which words pushed ``text``'s label: :func:`sentiment.explain.explain`."""
        from .explain import explain

        return explain(self, text, steps, max_tokens)

    @property
    def num_classes(self) -> int:
        return getattr(self.model, "num_classes", 2)

    def __repr__(self) -> str:
        return f"SentimentModel(path={self.path!r}, vocab_size={len(self.vocab)})"


def score_ids(
    model: SentimentClassifier,
    sequences: Sequence[Sequence[int]],
    batch_size: int = 64,
    pad_index: int = 0,
    max_length: int | None = None,
    mixed_precision: bool = True,
    max_tokens: int | None = None,
) -> np.ndarray:
    """Class probabilities per id sequence, batched sorted by length, input order kept: a
    binary model's probability of its second label (*positive*) as shape ``(N,)``, a
    multi-class model's softmax as ``(N, C)`` (:func:`class_probs` makes both ``(N, C)``).

    ``mixed_precision``: run the RNN in the device's fast lower precision where it has one
    (:func:`~sentiment.precision.autocast_dtype`); the head and the probabilities stay float32.
    ``max_tokens``: a batch also ends before its padded size (rows × longest) would pass this,
    so that a few long texts do not pad many short ones.
    """
    device = next(model.parameters()).device
    lengths = [max(len(s), 1) for s in sequences]
    order = np.argsort(lengths, kind="stable")
    classes = getattr(model, "num_classes", 2)
    shape = (len(sequences),) if classes == 2 else (len(sequences), classes)
    scores = np.empty(shape, dtype=np.float64)
    model.eval()
    with torch.inference_mode(), autocast(device, autocast_dtype(device, mixed_precision)):
        for indices in cut_batches(order, lengths, batch_size, max_tokens):
            batch = pad_batch([sequences[i] for i in indices], pad_index, max_length).to(device)
            scores[indices] = probabilities(model(batch).logits.float(), classes).cpu().numpy()
    return scores


# what makes a folder a model: an LSTM (config.json), an ensemble, a linear n-gram model or a
# stacked teacher (sentiment.teacher.TextScoringModel)
MODEL_FILES = ("config.json", ENSEMBLE_FILE, "linear.json", "stack.json")


def _is_model_folder(path: Path) -> bool:
    return any((path / name).is_file() for name in MODEL_FILES)


def resolve_model_path(model: str | Path | None) -> Path:
    """``model``, else ``$SENTIMENT_MODEL``, else the shipped model."""
    path = Path(model or os.environ.get("SENTIMENT_MODEL") or SHIPPED_MODEL)
    if not _is_model_folder(path):
        raise FileNotFoundError(
            f"no trained sentiment model at {str(path)!r}. Train one with "
            f"`sentiment train --output {path}` (python scripts/train_sentiment.py in a checkout), "
            "or point to one with predict(..., model=PATH) or the SENTIMENT_MODEL environment "
            "variable."
        )
    return path.resolve()


@functools.lru_cache(maxsize=8)
def _load_cached(path: str, device: str, mtime: float) -> SentimentModel:
    if not (Path(path) / "config.json").is_file() and not (Path(path) / ENSEMBLE_FILE).is_file():
        from .teacher import TextScoringModel

        return TextScoringModel(path)
    model, vocab, config = load_pretrained(path, device=device)
    return SentimentModel(model, vocab, config, path)


def load_model(
    model: str | Path | None = None, device: str | torch.device | None = None
) -> SentimentModel:
    """Load (and cache per path and device) a saved sentiment model.

    The path is ``model``, else ``$SENTIMENT_MODEL``, else the model shipped with the package
    (:data:`SHIPPED_MODEL`, described in MODEL_CARD.md).
    """
    path = resolve_model_path(model)
    resolved = resolve_device(device or "auto")
    # a model saved again at the same path is loaded again
    mtime = max((p.stat().st_mtime for p in path.glob("**/*.safetensors")), default=0.0)
    return _load_cached(str(path), str(resolved), mtime)


def on_device(model: SentimentModel, device: torch.device) -> SentimentModel:
    """``model`` on ``device``, leaving ``model`` itself (maybe cached and shared) where it is:
    the cached copy for that device when the model came from a folder, else a moved copy."""
    if model.path and _is_model_folder(Path(model.path)):
        return load_model(model.path, device)
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
    model: str | Path | SentimentModel | None = None,
    batch_size: int = 64,
    device: str | torch.device | None = None,
    mixed_precision: bool = True,
    all_scores: bool = False,
) -> dict | list[dict]:
    """Sentiment of one text (a dict) or of many (a list of dicts, in input order).

    ``text_or_texts``: a string, or any iterable of strings -- a list, tuple, generator,
    pandas Series or NumPy array of str. Each result is ``{"label": one of the model's labels,
    "score": probability of that label}``; ``all_scores=True`` adds ``"scores"``, every label's
    probability. Raises ``TypeError`` for anything else (naming what
    it got) and ``ValueError`` for an empty or whitespace-only text. Texts longer than
    ``MAX_CHARS`` characters or ``MAX_TEXT_TOKENS`` tokens are truncated. ``mixed_precision=False``
    scores in float32 even where the device has a faster lower precision (bfloat16 on CPUs with
    native bf16; scores then differ in the third decimal).
    """
    texts, single = as_texts(text_or_texts)
    if batch_size < 1:
        raise ValueError(f"batch_size must be >= 1, got {batch_size}")
    if model is None or isinstance(model, (str, Path)):
        model = load_model(model, device)
    elif device is not None and resolve_device(device) != model.device:
        model = on_device(model, resolve_device(device))
    if not texts:
        return []
    results = model.score(texts, batch_size, mixed_precision, all_scores)
    return results[0] if single else results
