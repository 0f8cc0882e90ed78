"""Character-level language models (d2l ch. 8-9, char-rnn) on the shared core and training loop.

The text becomes one long id sequence, read in windows by
:class:`~sentiment.data.batching.StreamBatches`: sequentially with the state carried over (truncated
BPTT, ``sampling="sequential"``) or at random positions from a zero state (``"random"``).
"""

from __future__ import annotations

import json
import logging
import math
import re
import time
import warnings
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch
from matplotlib.figure import Figure

from ..config import TEXT_MODES, Config, preset_config
from ..data.batching import Batch
from ..data.batching import StreamBatches as CharBatches
from ..kinds.checkpoint import load_pretrained, save_pretrained
from ..nn.heads import LanguageModel
from ..runtime.distributed import is_main
from ..text.tokenize import Tokenizer
from ..text.vocab import EOS, UNK, Vocab
from ..train.loop import train
from ..train.prepare import build_task_model

logger = logging.getLogger(__name__)
_NOT_LETTER = re.compile("[^a-z]+")


def preprocess(text: str, mode: str) -> str:
    """``raw``: unchanged. ``d2l``: lower-case letters and spaces only (as d2l's Time Machine)."""
    if mode not in TEXT_MODES:
        raise ValueError(f"mode must be one of {TEXT_MODES}, got {mode!r}")
    return text if mode == "raw" else _NOT_LETTER.sub(" ", text.lower())


def read_texts(paths: str | Path | Sequence[str | Path]) -> str:
    """The concatenated UTF-8 text of one or several files."""
    paths = [paths] if isinstance(paths, str | Path) else list(paths)
    if not paths:
        raise ValueError("no text files given")
    texts = []
    for path in paths:
        if not Path(path).is_file():
            raise FileNotFoundError(f"no text file at {path}")
        texts.append(Path(path).read_text(encoding="utf-8"))
    return "\n".join(texts)


def build_char_vocab(text: str, mode: str) -> Vocab:
    """``d2l``: ``<unk>``, space, a-z (28 symbols). ``raw``: every character of the text, sorted."""
    if mode == "d2l":
        return Vocab([UNK, " ", *"abcdefghijklmnopqrstuvwxyz"])
    return Vocab(sorted(set(text)))


def encode_text(text: str, vocab: Vocab) -> np.ndarray:
    return np.asarray(vocab.encode(list(text)), dtype=np.int64)


def split_corpus(ids: np.ndarray, valid_fraction: float) -> tuple[np.ndarray, np.ndarray]:
    """The first part for training and the last ``valid_fraction`` for validation."""
    if not 0.0 <= valid_fraction < 1.0:
        raise ValueError(f"valid_fraction must be in [0, 1), got {valid_fraction}")
    cut = len(ids) - int(round(len(ids) * valid_fraction))
    return ids[:cut], ids[cut:]


PRESETS = {
    "default": {"output": "runs/charlm", "embed_dim": 64, "dropout": 0.0, "input_dropout": 0.0,
                "output_dropout": 0.0, "bidirectional": False, "batch_size": 32,
                "num_steps": 35, "vectors": None, "patience": None, "pad_index": None,
                "ema_decay": 0.0},
    "d2l": {"mode": "d2l", "rnn_type": "lstm", "hidden_dim": 256, "num_layers": 1,
            "input_type": "onehot", "batch_size": 32, "num_steps": 35, "sampling": "sequential",
            "optimizer": "sgd", "lr": 1.0, "clip": 1.0, "epochs": 500},
    "tiny": {"mode": "d2l", "hidden_dim": 32, "num_layers": 1, "input_type": "onehot",
             "batch_size": 16, "num_steps": 16, "optimizer": "adam", "lr": 1e-2, "clip": 1.0,
             "epochs": 3},
    "shakespeare": {"mode": "raw", "rnn_type": "lstm", "hidden_dim": 384, "num_layers": 2,
                    "input_type": "embedding", "embed_dim": 64, "dropout": 0.2,
                    "output_dropout": 0.2, "batch_size": 64, "num_steps": 100,
                    "optimizer": "adam", "lr": 2e-3, "clip": 1.0, "epochs": 50,
                    "max_minutes": 30},
}


def make_config(preset: str = "default", **overrides) -> Config:
    """A char-LM config from a preset plus overrides (option names: ``text``, ``hidden_dim``,
    ``epochs``...); unknown names raise a ValueError naming them."""
    return preset_config("char-lm", PRESETS, preset, **overrides)


def plot_perplexity(metrics_path: Path, output: Path) -> None:
    """Training and validation perplexity per epoch (what d2l's Animator showed)."""
    records = [json.loads(line) for line in metrics_path.read_text().splitlines() if line]
    fig = Figure(figsize=(6, 4))
    ax = fig.subplots()
    epochs = [r["epoch"] for r in records]
    for split in ("train", "valid"):
        ax.plot(epochs, [r[f"{split}_perplexity"] for r in records], label=split)
    ax.set(xlabel="epoch", ylabel="perplexity", yscale="log", title="perplexity")
    ax.legend()
    fig.tight_layout()
    fig.savefig(output, dpi=100)


def train_language_model(config: Config) -> dict:
    """Train a character LM on ``config.data.source``; saves the best model on validation
    perplexity."""
    data = config.data
    text = preprocess(read_texts(data.source), data.mode)
    vocab = build_char_vocab(text, data.mode)
    train_ids, valid_ids = split_corpus(encode_text(text, vocab), data.valid_fraction)
    train_batches = CharBatches(train_ids, data.batch_size, data.num_steps, data.sampling,
                                config.train.seed)
    if len(valid_ids) == 0:
        raise ValueError("valid_fraction is 0: perplexity needs held-out text")
    valid_rows = max(1, min(data.batch_size, (len(valid_ids) - 1) // data.num_steps))
    valid_batches = CharBatches(valid_ids, valid_rows, data.num_steps, "sequential",
                                offset=False)
    model, config, _ = build_task_model(config, vocab)
    output = Path(config.train.output)
    output.mkdir(parents=True, exist_ok=True)
    logger.info("%s: %d training and %d validation symbols, vocabulary %d",
                ", ".join(map(str, data.source)), len(train_ids), len(valid_ids), len(vocab))
    start = time.perf_counter()
    history = train(model, train_batches, valid_batches, config.train, output,
                    save_best=lambda m, d: save_pretrained(m, d, vocab, config))
    seconds = time.perf_counter() - start
    if (output / "metrics.jsonl").exists() and is_main():
        plot_perplexity(output / "metrics.jsonl", output / "perplexity.png")
    best = min(history, key=lambda r: r["valid_perplexity"]) if history else {}
    return {"epochs_run": len(history), "train_seconds": seconds, "best": best,
            "last": history[-1] if history else {}}


def summary_line(summary: dict) -> dict:
    """What ``sentiment train-charlm`` prints of :func:`train_language_model`'s summary."""
    best = summary["best"]
    return {"epochs_run": summary["epochs_run"],
            "train_seconds": round(summary["train_seconds"], 1), "best_epoch": best.get("epoch"),
            "valid_loss_nats": best.get("valid_loss"),
            "valid_perplexity": best.get("valid_perplexity"),
            "train_perplexity": summary["last"].get("train_perplexity")}


@dataclass
class CharLanguageModel:
    """A loaded language model: the model, its vocabulary and its preprocessing mode
    (``raw``/``d2l`` characters, or ``words``: spaCy tokens, as the word LM was trained)."""

    model: LanguageModel
    vocab: Vocab
    mode: str
    tokenizer: Tokenizer | None = None

    @property
    def device(self) -> torch.device:
        return next(self.model.parameters()).device


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
