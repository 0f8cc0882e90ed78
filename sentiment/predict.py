"""Prediction: ``predict(text_or_texts)`` with a saved sentiment model, pipeline-style."""

from __future__ import annotations

import contextlib
import copy
import functools
import os
import threading
from collections.abc import Iterable, Mapping, Sequence
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import numpy as np
import torch

from .batching import pad_batch
from .checkpoint import ENSEMBLE_FILE, load_pretrained
from .config import Config
from .data import clean_text
from .heads import SentimentClassifier
from .precision import autocast, autocast_dtype, resolve_device
from .tokenize import Tokenizer
from .vocab import Vocab

DEFAULT_MODEL_DIR = "runs/sentiment"  # where training writes a classifier
# The classifier shipped inside the package (MODEL_CARD.md): predict's default model.
SHIPPED_MODEL = Path(__file__).parent / "models" / "imdb"
# A text is cut to its first MAX_CHARS characters and MAX_TOKENS tokens before scoring, so that
# a very long input (say 1 MB) keeps time and memory bounded. IMDB's longest review has ~2,800.
MAX_CHARS = 100_000
MAX_TOKENS = 5_000


def default_workers(device: torch.device) -> int:
    """How many batches to score at once on ``device``, each on its share of torch's threads:
    two one-thread workers on a CPU (one tokenizes while the other is in the model; 2.3x the
    served requests/s of one two-thread worker on 2 cores, BENCHMARKS.md), one on a GPU."""
    return 2 if device.type == "cpu" and torch.get_num_threads() >= 2 else 1


def worker_pool(workers: int, name: str, threads: int | None = None) -> ThreadPoolExecutor:
    """``workers`` threads for scoring side by side; with more than one, each runs torch on
    ``threads`` threads (default: an equal share of torch's; the count is per thread)."""
    if workers < 1:
        raise ValueError(f"workers must be >= 1, got {workers}")
    if workers > 1 and threads is None:
        threads = max(1, torch.get_num_threads() // workers)
    return ThreadPoolExecutor(workers, thread_name_prefix=name,
                              initializer=torch.set_num_threads if threads else None,
                              initargs=(threads,) if threads else ())


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
        self.max_length = min(config.data.max_length or MAX_TOKENS, MAX_TOKENS)

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

    def explain(self, text: str, steps: int = 32) -> dict:
        """The label and score of ``text`` and which words pushed it there: ``"words"``, one
        ``{"token", "weight"}`` per token in order; ``weight`` > 0 pushed toward the predicted
        label, < 0 away from it, scaled so that the strongest is ±1.

        Integrated gradients (Sundararajan et al., 2017) of the predicted label's logit with
        respect to the word embeddings, from an all-zero embedding, in ``steps`` points scored
        as one batch (one forward and one backward pass, float32). The raw attributions add up
        to the logit's change from that baseline (``"logit"`` and ``"baseline_logit"``), so
        they account for the score rather than just its local slope. Words outside the
        vocabulary are ``<unk>`` to the model and shown as written.
        """
        # an ensemble's members each have their embedding: all are scaled along the same path,
        # so the attributions add up to the change of the ensemble's logit
        embeddings = getattr(self.model, "embeddings", None) or [self.model.core.embedding]
        if any(embedding is None for embedding in embeddings):
            raise ValueError("explanations need a model with a word embedding")
        tokens = self.tokens([text])[0]
        ids = self.vocab.encode(tokens)
        batch = pad_batch([ids] * (steps + 2), self.vocab.pad_index or 0).to(self.device)
        # row 0: the text; row 1: the baseline (zero embeddings); rows 2..: the embeddings scaled
        # by the midpoints of ``steps`` equal steps between them
        alphas = torch.cat([torch.tensor([1.0, 0.0]), (torch.arange(steps) + 0.5) / steps])
        alphas = alphas.to(self.device)
        captured = []  # (scaled embeddings, the text's embeddings) per embedding

        def scale(module, inputs, output):
            scaled = (alphas[:, None, None] * output.detach()).requires_grad_()
            captured.append((scaled, output.detach()[0]))
            return scaled

        hooks = [embedding.register_forward_hook(scale) for embedding in embeddings]
        no_cudnn = (torch.backends.cudnn.flags(enabled=False) if self.device.type == "cuda"
                    else contextlib.nullcontext())  # cuDNN's RNN backward needs train mode
        try:
            with torch.enable_grad(), no_cudnn:
                logits = self.model(batch).logits.float()
                probs = class_probs(_to_probs(logits[:1].detach(), self.num_classes)
                                    .cpu().numpy())
                predicted = int(predicted_classes(probs)[0])
                if self.num_classes == 2:  # one logit: positive's; negative's is its opposite
                    target = logits if predicted == 1 else -logits
                else:
                    target = logits[:, predicted]
                target[2:].sum().backward()
        finally:
            for hook in hooks:
                hook.remove()
            self.model.zero_grad(set_to_none=True)
        raw = sum((scaled.grad[2:].mean(0) * embedded).sum(-1) for scaled, embedded in captured)
        raw = raw[: len(ids)].cpu()
        weights = raw / raw.abs().max().clamp_min(1e-12)
        return {"label": self.labels[predicted], "score": float(probs[0, predicted]),
                "logit": float(target[0].detach()), "baseline_logit": float(target[1].detach()),
                "words": [{"token": token, "weight": round(float(w), 4),
                           "attribution": float(a)}
                          for token, w, a in zip(tokens, weights.tolist(), raw.tolist(),
                                                 strict=True)]}

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
        for indices in length_batches(order, lengths, batch_size, max_tokens):
            batch = pad_batch([sequences[i] for i in indices], pad_index, max_length).to(device)
            scores[indices] = _to_probs(model(batch).logits.float(), classes).cpu().numpy()
    return scores


def _to_probs(logits: torch.Tensor, classes: int) -> torch.Tensor:
    """A binary model's P(second label) from its one logit; else the softmax over classes."""
    return torch.sigmoid(logits) if classes == 2 else torch.softmax(logits, dim=-1)


def length_batches(order: np.ndarray, lengths: Sequence[int], batch_size: int,
                   max_tokens: int | None = None) -> list[np.ndarray]:
    """``order`` (indices sorted by ``lengths``) cut into consecutive batches of at most
    ``batch_size`` rows and, with ``max_tokens``, at most that many padded tokens (a longer
    sequence alone is a batch of its own)."""
    batches, start = [], 0
    while start < len(order):
        end = min(start + batch_size, len(order))
        if max_tokens is not None:
            end = start + 1
            while (end < len(order) and end - start < batch_size
                   and (end - start + 1) * lengths[order[end]] <= max_tokens):
                end += 1
        batches.append(order[start:end])
        start = end
    return batches


def class_probs(scores: np.ndarray) -> np.ndarray:
    """``(N, C)`` probabilities from :func:`score_ids`' output (``(N,)`` for two classes)."""
    scores = np.asarray(scores, dtype=np.float64)
    return np.stack([1.0 - scores, scores], axis=1) if scores.ndim == 1 else scores


def predicted_classes(probs: np.ndarray) -> np.ndarray:
    """The predicted class per row of ``(N, C)`` probabilities (ties at 0.5 go to the second of
    two classes, as a binary threshold would)."""
    if probs.shape[1] == 2:
        return (probs[:, 1] >= 0.5).astype(int)
    return probs.argmax(axis=1)


def to_results(scores: np.ndarray, labels: list[str], all_scores: bool = False) -> list[dict]:
    """``{"label", "score"}`` per text (``"scores"``: every label's probability, too)."""
    probs = class_probs(scores)
    results = []
    for row, label_id in zip(probs, predicted_classes(probs), strict=True):
        result = {"label": labels[label_id], "score": float(row[label_id])}
        if all_scores:
            result["scores"] = {name: float(p) for name, p in zip(labels, row, strict=True)}
        results.append(result)
    return results


def _is_model_folder(path: Path) -> bool:
    return (path / "config.json").is_file() or (path / ENSEMBLE_FILE).is_file()


def _resolve_model_path(model: str | Path | None) -> Path:
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
    model, vocab, config = load_pretrained(path, device=device)
    return SentimentModel(model, vocab, config, path)


def load_model(
    model: str | Path | None = None, device: str | torch.device | None = None
) -> SentimentModel:
    """Load (and cache per path and device) a saved sentiment model.

    The path is ``model``, else ``$SENTIMENT_MODEL``, else the model shipped with the package
    (:data:`SHIPPED_MODEL`, described in MODEL_CARD.md).
    """
    path = _resolve_model_path(model)
    resolved = resolve_device(device or "auto")
    # a model saved again at the same path is loaded again
    mtime = max((p.stat().st_mtime for p in path.glob("**/model.safetensors")), default=0.0)
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
    ``MAX_CHARS`` characters or ``MAX_TOKENS`` tokens are truncated. ``mixed_precision=False``
    scores in float32 even where the device has a faster lower precision (bfloat16 on CPUs with
    native bf16; scores then differ in the third decimal).
    """
    texts, single = as_texts(text_or_texts)
    if batch_size < 1:
        raise ValueError(f"batch_size must be >= 1, got {batch_size}")
    if not isinstance(model, SentimentModel):
        model = load_model(model, device)
    elif device is not None and resolve_device(device) != model.device:
        model = on_device(model, resolve_device(device))
    if not texts:
        return []
    results = model.score(texts, batch_size, mixed_precision, all_scores)
    return results[0] if single else results
