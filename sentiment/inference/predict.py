"""Prediction: ``predict(text_or_texts)`` with a saved sentiment model, pipeline-style.

Any classifier kind (:mod:`sentiment.kinds.registry`) is scored through the one protocol
(:class:`sentiment.kinds.protocol.TextClassifier`). This module imports without torch, so that an
install without it (docs/inference.md) scores exported ONNX models through the same
``predict``."""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from pathlib import Path

from ..kinds.protocol import TextClassifier, supports
from ..kinds.registry import is_model_folder, load_model
from .answers import answer


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


def loaded(model: str | Path | TextClassifier | None, device=None,
           quantize: str = "none") -> TextClassifier:
    """``model`` loaded (a folder, a shipped model's name or None: :func:`load_model`), or a
    loaded model checked against ``quantize`` and moved to ``device`` where it can move."""
    if model is None or isinstance(model, (str, Path)):
        return load_model(model, device, quantize)
    current = model.quantize if supports(model, "quantize") else "none"
    if quantize != current:
        raise ValueError(f"{model!r} is loaded with quantize={current!r}; load it with "
                         f"load_model(..., quantize={quantize!r}) instead")
    if device is not None and supports(model, "move"):
        from ..runtime.precision import resolve_device

        if resolve_device(device) != model.device:  # the cached copy there, else a moved one
            if model.path and is_model_folder(model.path):
                return load_model(model.path, resolve_device(device), model.quantize)
            return model.moved_to(resolve_device(device))
    return model


def predict(
    text_or_texts: str | Iterable[str],
    model: str | Path | TextClassifier | None = None,
    batch_size: int = 64,
    device: str | None = None,
    mixed_precision: bool = True,
    all_scores: bool = False,
    quantize: str = "none",
    neutral="default",
    reading: bool = False,
) -> dict | list[dict]:
    """Sentiment of one text (a dict) or of many (a list of dicts, in input order).

    ``text_or_texts``: a string, or any iterable of strings -- a list, tuple, generator,
    pandas Series or NumPy array of str. Each result is ``{"label": one of the model's labels,
    "score": probability of that label}``; ``all_scores=True`` adds ``"scores"``, every label's
    probability. Raises ``TypeError`` for anything else (naming what it got) and ``ValueError``
    for an empty or whitespace-only text. Texts longer than ``MAX_CHARS`` characters or
    ``MAX_TEXT_TOKENS`` tokens are truncated (:mod:`sentiment.kinds.base`).
    ``mixed_precision=False`` scores in float32 where the default would use a faster lower
    precision (bfloat16 on CPUs where it measured faster; scores then differ in the third
    decimal). ``quantize="int8"`` scores with dynamic int8 LSTM weights (:func:`load_model`).
    ``model`` may be any saved classifier: an LSTM, an ONNX export (scored with ONNX Runtime),
    an n-gram model, a teacher or a cascade.

    ``neutral``: a binary model's answer is ``"neutral"`` where its probability lies inside a
    band: ``"default"`` the model's own (its ``answers.json``; none where it has none), a
    half-width ``w`` for ``(0.5 - w, 0.5 + w)``, a ``(low, high)`` pair, or None for none. A
    text whose share of words the model knows is under its threshold (another language,
    gibberish) is flagged: ``"flag": "unreadable"`` and ``"known"``, the share;
    ``reading=True`` gives every answer its ``"known"`` share
    (:mod:`sentiment.inference.answers`).
    """
    texts, single = as_texts(text_or_texts)
    if batch_size < 1:
        raise ValueError(f"batch_size must be >= 1, got {batch_size}")
    model = loaded(model, device, quantize)
    if not texts:
        return []
    results = answer(model.score(texts, batch_size, mixed_precision, all_scores), texts, model,
                     neutral, reading)
    return results[0] if single else results
