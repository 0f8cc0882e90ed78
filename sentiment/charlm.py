"""Character-level language models (d2l ch. 8-9, char-rnn) on the shared core and training loop.

The text becomes one long id sequence. Sequential partitioning (``sampling="sequential"``)
lays it out in ``batch_size`` rows and walks them ``num_steps`` at a time, so row ``b`` of batch
``i + 1`` continues row ``b`` of batch ``i`` and the hidden state is carried over, detached
(truncated backpropagation through time)::

    text  a b c d e f g h i j k l m n o p q r s t u v w x    (batch_size 2, num_steps 3)
    row 0 [a b c][d e f][g h i] ...    targets: the same, one character later
    row 1 [m n o][p q r][s t u] ...

Random sampling (``sampling="random"``) takes subsequences at random positions and starts every
batch from a zero state.
"""

from __future__ import annotations

import json
import logging
import math
import re
import time
import warnings
from collections.abc import Iterator, Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path

import numpy as np
import torch

from .batching import Batch
from .checkpoint import load_pretrained, save_pretrained
from .core import CoreConfig
from .heads import LanguageModel
from .training import TrainConfig, config_from_preset, train
from .vocab import UNK, Vocab

logger = logging.getLogger(__name__)
MODES = ("raw", "d2l")
_NOT_LETTER = re.compile("[^a-z]+")


def preprocess(text: str, mode: str) -> str:
    """``raw``: unchanged. ``d2l``: lower-case letters and spaces only (as d2l's Time Machine)."""
    if mode not in MODES:
        raise ValueError(f"mode must be one of {MODES}, got {mode!r}")
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


class CharBatches:
    """d2l's two iterators over a corpus of ids: ``sequential`` (TBPTT) or ``random``.

    Each epoch starts at a random offset in ``[0, num_steps)`` (as d2l does), seeded by
    ``(seed, epoch)``; ``offset=False`` starts at 0 (validation).
    """

    def __init__(self, corpus: np.ndarray, batch_size: int, num_steps: int,
                 sampling: str = "sequential", seed: int = 0, offset: bool = True):
        if sampling not in ("sequential", "random"):
            raise ValueError(f"sampling must be 'sequential' or 'random', got {sampling!r}")
        if batch_size < 1 or num_steps < 1:
            raise ValueError("batch_size and num_steps must be >= 1")
        needed = batch_size * num_steps + num_steps + 1 if offset else batch_size * num_steps + 1
        if len(corpus) < needed:
            raise ValueError(
                f"text too short: {len(corpus)} symbols, but one batch of {batch_size} x "
                f"{num_steps} needs at least {needed}; lower --batch-size or --num-steps"
            )
        self.corpus = torch.as_tensor(np.asarray(corpus), dtype=torch.long)
        self.batch_size, self.num_steps, self.sampling = batch_size, num_steps, sampling
        self.seed, self.epoch, self.offset = seed, 0, offset

    def set_epoch(self, epoch: int) -> None:
        self.epoch = epoch

    def _start(self, rng: np.random.Generator) -> int:
        return int(rng.integers(0, self.num_steps)) if self.offset else 0

    def __len__(self) -> int:
        usable = len(self.corpus) - (self.num_steps if self.offset else 0) - 1
        if self.sampling == "sequential":
            return (usable // self.batch_size) // self.num_steps
        return (usable // self.num_steps) // self.batch_size

    def __iter__(self) -> Iterator[Batch]:
        rng = np.random.default_rng((self.seed, self.epoch))
        corpus, steps, size = self.corpus[self._start(rng):], self.num_steps, self.batch_size
        if self.sampling == "sequential":
            num_tokens = ((len(corpus) - 1) // size) * size
            inputs = corpus[:num_tokens].view(size, -1)  # (B, L)
            targets = corpus[1 : num_tokens + 1].view(size, -1)
            for i, start in enumerate(range(0, (inputs.size(1) // steps) * steps, steps)):
                yield Batch(inputs[:, start : start + steps], None,
                            targets[:, start : start + steps], size * steps, continues=i > 0)
        else:
            starts = np.arange(0, ((len(corpus) - 1) // steps) * steps, steps)
            rng.shuffle(starts)
            for i in range(0, (len(starts) // size) * size, size):
                chosen = torch.as_tensor(starts[i : i + size]).unsqueeze(1) + torch.arange(steps)
                yield Batch(corpus[chosen], None, corpus[chosen + 1], size * steps)


@dataclass
class CharLMConfig:
    """Everything ``scripts/train_charlm.py`` controls."""

    text: list[str] = field(default_factory=list)
    output: str = "runs/charlm"
    mode: str = "raw"
    rnn: str = "lstm"
    hidden: int = 256
    layers: int = 2
    input: str = "embedding"
    embed_dim: int = 64
    dropout: float = 0.0
    tie_weights: bool = False
    batch_size: int = 32
    num_steps: int = 35
    sampling: str = "sequential"
    valid_fraction: float = 0.1
    train: TrainConfig = field(default_factory=lambda: TrainConfig(patience=None))


PRESETS = {
    "default": {},
    "d2l": {"mode": "d2l", "rnn": "lstm", "hidden": 256, "layers": 1, "input": "onehot",
            "batch_size": 32, "num_steps": 35, "sampling": "sequential",
            "train": {"optimizer": "sgd", "lr": 1.0, "clip": 1.0, "epochs": 500,
                      "patience": None}},
    "tiny": {"mode": "d2l", "hidden": 32, "layers": 1, "input": "onehot", "batch_size": 16,
             "num_steps": 16,
             "train": {"optimizer": "adam", "lr": 1e-2, "clip": 1.0, "epochs": 3,
                       "patience": None}},
    "shakespeare": {"mode": "raw", "rnn": "lstm", "hidden": 384, "layers": 2,
                    "input": "embedding", "embed_dim": 64, "dropout": 0.2, "batch_size": 64,
                    "num_steps": 100,
                    "train": {"optimizer": "adam", "lr": 2e-3, "clip": 1.0, "epochs": 50,
                              "max_minutes": 30, "patience": None}},
}


def make_config(preset: str = "default", **overrides) -> CharLMConfig:
    """A config from a preset plus overrides; unknown names raise a ValueError naming them."""
    return config_from_preset(CharLMConfig, PRESETS, preset, overrides, {"patience": None})


def build_language_model(config: CharLMConfig, vocab_size: int) -> LanguageModel:
    core = CoreConfig(
        vocab_size=vocab_size, embed_dim=config.embed_dim, hidden_dim=config.hidden,
        num_layers=config.layers, rnn_type=config.rnn, bidirectional=False,
        dropout=config.dropout, input_dropout=0.0, input_type=config.input, pad_index=None,
    )
    torch.manual_seed(config.train.seed)
    return LanguageModel(core, tie_weights=config.tie_weights, dropout=config.dropout)


def plot_perplexity(metrics_path: Path, output: Path) -> None:
    """Training and validation perplexity per epoch (what d2l's Animator showed)."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    records = [json.loads(line) for line in metrics_path.read_text().splitlines() if line]
    fig, ax = plt.subplots(figsize=(6, 4))
    epochs = [r["epoch"] for r in records]
    for split in ("train", "valid"):
        ax.plot(epochs, [r[f"{split}_perplexity"] for r in records], label=split)
    ax.set(xlabel="epoch", ylabel="perplexity", yscale="log", title="perplexity")
    ax.legend()
    fig.tight_layout()
    fig.savefig(output, dpi=100)
    plt.close(fig)


def train_language_model(config: CharLMConfig) -> dict:
    """Train a character LM on ``config.text``; saves the best model on validation perplexity."""
    text = preprocess(read_texts(config.text), config.mode)
    vocab = build_char_vocab(text, config.mode)
    train_ids, valid_ids = split_corpus(encode_text(text, vocab), config.valid_fraction)
    train_batches = CharBatches(train_ids, config.batch_size, config.num_steps, config.sampling,
                                config.train.seed)
    if len(valid_ids) == 0:
        raise ValueError("valid_fraction is 0: perplexity needs held-out text")
    valid_rows = max(1, min(config.batch_size, (len(valid_ids) - 1) // config.num_steps))
    valid_batches = CharBatches(valid_ids, valid_rows, config.num_steps, "sequential",
                                offset=False)
    model = build_language_model(config, len(vocab))
    output = Path(config.output)
    output.mkdir(parents=True, exist_ok=True)
    (output / "train_config.json").write_text(json.dumps(asdict(config), indent=2))
    preprocessing = {"mode": config.mode, "valid_fraction": config.valid_fraction}
    logger.info("%s: %d training and %d validation symbols, vocabulary %d",
                ", ".join(map(str, config.text)), len(train_ids), len(valid_ids), len(vocab))
    start = time.perf_counter()
    history = train(model, train_batches, valid_batches, config.train, output,
                    save_best=lambda m, d: save_pretrained(m, d, vocab, preprocessing))
    seconds = time.perf_counter() - start
    if (output / "metrics.jsonl").exists():
        plot_perplexity(output / "metrics.jsonl", output / "perplexity.png")
    best = min(history, key=lambda r: r["valid_perplexity"]) if history else {}
    return {"epochs_run": len(history), "train_seconds": seconds, "best": best,
            "last": history[-1] if history else {}}


@dataclass
class CharLanguageModel:
    """A loaded character LM: the model, its vocabulary and its preprocessing mode."""

    model: LanguageModel
    vocab: Vocab
    mode: str

    @property
    def device(self) -> torch.device:
        return next(self.model.parameters()).device


def load_language_model(path: str | Path, device: str = "cpu") -> CharLanguageModel:
    model, vocab, config = load_pretrained(path, device=device)
    if model.task != LanguageModel.task:
        raise ValueError(f"{path} is a {model.task!r} model, not a language model")
    return CharLanguageModel(model, vocab, config["preprocessing"]["mode"])


def _prefix_ids(lm: CharLanguageModel, prefix: str) -> list[int]:
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
    """``prefix`` followed by ``num_chars`` generated characters.

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
        start = next((c for c in ("\n", " ") if c in lm.vocab.stoi), lm.vocab.itos[0])
        ids = [lm.vocab.stoi[start]]
    generator = torch.Generator().manual_seed(seed) if seed is not None else None
    model, device = lm.model.eval(), lm.device
    out = []
    with torch.inference_mode():
        inputs = torch.tensor([ids], device=device)
        state = None
        for _ in range(num_chars):
            result = model(Batch(inputs, None), state)
            state, logits = result.state, result.logits[0, -1].float().cpu()  # (V,)
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
    return prefix + "".join(out)
