"""Language models (kind ``lm``): a character model (d2l ch. 8-9, char-rnn) or a word model
(:mod:`sentiment.train.pretrain`), loaded for :func:`generate`: text in, text out. Trained by
:mod:`sentiment.train.charlm` and :mod:`sentiment.train.pretrain`."""

from __future__ import annotations

import math
import re
import warnings
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

import torch

from ..config import TEXT_MODES
from ..data.batching import Batch
from ..nn.heads import LanguageModel
from ..text.tokenize import Tokenizer
from ..text.vocab import EOS, Vocab
from .checkpoint import load_pretrained

if TYPE_CHECKING:
    from .folder import LoadOptions

_NOT_LETTER = re.compile("[^a-z]+")


def preprocess(text: str, mode: str) -> str:
    """``raw``: unchanged. ``d2l``: lower-case letters and spaces only (as d2l's Time Machine)."""
    if mode not in TEXT_MODES:
        raise ValueError(f"mode must be one of {TEXT_MODES}, got {mode!r}")
    return text if mode == "raw" else _NOT_LETTER.sub(" ", text.lower())


@dataclass
class CharLanguageModel:
    """A loaded language model: the model, its vocabulary and its preprocessing mode
    (``raw``/``d2l`` characters, or ``words``: spaCy tokens, as the word LM was trained). It
    generates text; it scores no sentiment (no capability of a classifier)."""

    kind = "lm"
    capabilities = frozenset()
    refusals = {"quantize": "only classifiers are quantized"}

    model: LanguageModel
    vocab: Vocab
    mode: str
    tokenizer: Tokenizer | None = None

    @property
    def device(self) -> torch.device:
        return next(self.model.parameters()).device

    @classmethod
    def load(cls, folder: Path, kind: str, options: LoadOptions, members=None
             ) -> CharLanguageModel:
        """The registry's loader of ``lm`` folders."""
        from ..runtime.precision import resolve_device

        return load_language_model(folder, resolve_device(options.device))


def load_language_model(path: str | Path, device: str = "cpu") -> CharLanguageModel:
    """A saved language model (character or word) ready for :func:`generate`."""
    model, vocab, config = load_pretrained(path, device=device)
    if model.task != LanguageModel.task:
        raise ValueError(f"{path} is a {config.task!r} model, not a language model")
    if config.task == "char-lm":
        return CharLanguageModel(model, vocab, config.data.mode)
    return CharLanguageModel(model, vocab, "words", Tokenizer(lowercase=config.data.lowercase))


def _prefix_ids(lm: CharLanguageModel, prefix: str) -> list[int]:
    if lm.tokenizer is not None:
        return lm.vocab.encode(lm.tokenizer(prefix))
    text = preprocess(prefix, lm.mode) if lm.mode == "d2l" else prefix
    ids, dropped = [], set()
    for char in text:
        if char in lm.vocab.stoi:
            ids.append(lm.vocab.stoi[char])
        elif lm.vocab.unk_index is not None:
            ids.append(lm.vocab.unk_index)
        else:
            dropped.add(char)
    if dropped:
        warnings.warn(f"prefix characters not in the vocabulary were dropped: "
                      f"{''.join(sorted(dropped))!r}", stacklevel=3)
    return ids


def generate(
    lm: CharLanguageModel,
    prefix: str = "",
    num_chars: int = 100,
    temperature: float | None = None,
    top_k: int | None = None,
    seed: int | None = None,
) -> str:
    """``prefix`` followed by ``num_chars`` generated characters (words, space-separated, for a
    word language model).

    The prefix warms the state up (nothing emitted for it); then decoding is greedy when
    ``temperature`` is None (d2l's ``predict``), else sampling from softmax(logits / temperature)
    restricted to the ``top_k`` most likely characters (char-rnn). Characters the model never saw
    map to ``<unk>`` where the vocabulary has one and are dropped, with a warning, otherwise. An
    empty prefix starts from a fresh state, as at the start of a line.
    """
    if not isinstance(prefix, str):
        raise TypeError(f"prefix must be a str, not {type(prefix).__name__}")
    if num_chars < 0:
        raise ValueError(f"num_chars must be >= 0, got {num_chars}")
    if temperature is not None and not temperature > 0:
        raise ValueError(f"temperature must be > 0 (or None for greedy), got {temperature}")
    if top_k is not None and top_k < 1:
        raise ValueError(f"top_k must be >= 1, got {top_k}")
    ids = _prefix_ids(lm, prefix)
    if not ids:
        start = next((c for c in ("\n", " ", EOS) if c in lm.vocab.stoi), lm.vocab.itos[0])
        ids = [lm.vocab.stoi[start]]
    never = [i for i in (lm.vocab.pad_index,) if i is not None and lm.tokenizer is not None]
    generator = torch.Generator().manual_seed(seed) if seed is not None else None
    model, device = lm.model.eval(), lm.device
    out = []
    with torch.inference_mode():
        inputs = torch.tensor([ids], device=device)
        state = None
        for _ in range(num_chars):
            result = model(Batch(inputs, None), state)
            state, logits = result.state, result.logits[0, -1].float().cpu()  # (V,)
            logits[never] = -math.inf
            if temperature is None:
                next_id = int(logits.argmax())
            else:
                logits = logits / temperature
                if top_k is not None and top_k < logits.numel():
                    cutoff = torch.topk(logits, top_k).values[-1]
                    logits = logits.masked_fill(logits < cutoff, -math.inf)
                next_id = int(torch.multinomial(torch.softmax(logits, -1), 1, generator=generator))
            out.append(lm.vocab.itos[next_id])
            inputs = torch.tensor([[next_id]], device=device)
    if lm.tokenizer is not None:
        return " ".join([prefix, *out]) if prefix else " ".join(out)
    return prefix + "".join(out)


MODEL = CharLanguageModel
