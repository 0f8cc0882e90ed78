"""Character-level language models (d2l ch. 8-9, char-rnn) on the shared core and training loop.

The text becomes one long id sequence, read in windows by
:class:`~sentiment.data.batching.StreamBatches`: sequentially with the state carried over (truncated
BPTT, ``sampling="sequential"``) or at random positions from a zero state (``"random"``).
"""

from __future__ import annotations

import json
import logging
import time
from collections.abc import Sequence
from pathlib import Path

import numpy as np
from matplotlib.figure import Figure

from ..config import Config, preset_config
from ..data.batching import StreamBatches as CharBatches
from ..kinds.checkpoint import save_pretrained
from ..kinds.lm import CharLanguageModel, generate, load_language_model, preprocess
from ..runtime.distributed import is_main
from ..text.vocab import UNK, Vocab
from .loop import train
from .prepare import build_task_model

__all__ = ["CharLanguageModel", "generate", "load_language_model", "preprocess",
           "train_language_model"]

logger = logging.getLogger(__name__)


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
    # d2l's settings, but for its 500 epochs: on the Time Machine validation perplexity was
    # best at epoch 41 (4.81) and rose after (14.6 by epoch 215, the model memorising the book;
    # benchmarks/HISTORY.md), so the run stops 5 epochs without a better one, within 100;
    # --epochs 500 --patience none runs d2l's schedule
    "d2l": {"mode": "d2l", "rnn_type": "lstm", "hidden_dim": 256, "num_layers": 1,
            "input_type": "onehot", "batch_size": 32, "num_steps": 35, "sampling": "sequential",
            "optimizer": "sgd", "lr": 1.0, "clip": 1.0, "epochs": 100, "patience": 5},
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
