"""Word-level language-model pretraining of the shared core on unlabelled reviews.

The line of Dai & Le (2015) and ULMFiT (Howard & Ruder, 2018): teach the core the language of
reviews first, then fine-tune it as the classifier (``train_sentiment.py --encoder``). The
classifier's core is bidirectional, so the LM is ELMo's biLM: in the ``separate`` layout each
direction is its own stack; the forward stack predicts the next word and the backward stack the
previous one, in the same pass, through one shared adaptive softmax.

The corpus is IMDB's unlabelled reviews plus the classifier's *training* reviews, taken from the
classifier's own split (:func:`~sentiment.train.prepare.classifier_splits`), so no validation
or test review is ever read. It is tokenized as the classifier tokenizes, mapped through one
vocabulary built from it (which the fine-tuned classifier then uses), and joined into one stream
with ``<eos>`` after each review. Training reads whole reviews, length-bucketed as the classifier
reads them (``lm_sequences="reviews"``), or random windows of ``num_steps`` words of that
stream (``"windows"``). A slice of the unlabelled reviews (``lm_valid_reviews``) is held out for
perplexity.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path

import datasets
import numpy as np

from ..config import DEFAULT_VECTORS, Config, preset_config
from ..data.batching import Batch, BatchSource, StreamBatches
from ..kinds.checkpoint import save_pretrained
from ..runtime.distributed import main_process_first
from ..text.tokenize import Tokenizer, tokenize_dataset
from ..text.vocab import EOS, PAD, UNK, Vocab
from ..train.loop import train
from ..train.prepare import (
    build_task_model,
    classifier_splits,
    held_out_texts,
    numericalize,
    review_batches,
    unlabelled_reviews,
    without_texts,
)

logger = logging.getLogger(__name__)

PRESETS = {
    "default": {"output": "runs/lm", "layout": "separate", "output_layer": "adaptive",
                "cutoffs": [2_000, 6_000], "batch_size": 64, "num_steps": 100, "max_tokens": 16_384,
                "dropout": 0.2, "input_dropout": 0.1, "output_dropout": 0.2,
                "vectors": DEFAULT_VECTORS, "epochs": 3, "lr": 2e-3, "schedule": "cosine",
                "warmup": 0.01, "patience": None, "ema_decay": 0.0},
    # the classifier's tiny split (train_limit) and reading (max_length 200), 1,000 unlabelled
    # reviews, in batches of 32: whole reviews in batches of 16 ran at 2.8k tokens/s on 2 busy
    # cores, 6 minutes an epoch (issue 42)
    "tiny": {"vectors": None, "max_vocab": 2_000, "embed_dim": 32, "hidden_dim": 32,
             "num_layers": 2, "train_limit": 2_000, "unlabelled_limit": 1_000,
             "max_length": 200, "lm_valid_reviews": 200, "batch_size": 32, "num_steps": 32,
             "cutoffs": [500], "epochs": 2, "lr": 3e-3, "schedule": "constant", "warmup": 0.0},
}


def make_config(preset: str = "default", **overrides) -> Config:
    """A word-LM config from a preset plus overrides; unknown names raise a ValueError."""
    return preset_config("word-lm", PRESETS, preset, **overrides)


@dataclass
class Corpus:
    """The LM's training and held-out reviews (tokenized), its vocabulary and id streams."""

    train: datasets.Dataset
    valid: datasets.Dataset
    vocab: Vocab
    train_stream: np.ndarray
    valid_stream: np.ndarray
    train_ids: list[np.ndarray]
    valid_ids: list[np.ndarray]


def corpus_texts(config: Config) -> tuple[datasets.Dataset, datasets.Dataset]:
    """``(train, held_out)`` reviews of the LM: the classifier's training reviews plus the
    unlabelled ones (``data.unlabelled``, else beside ``data.source``), minus ``lm_valid_reviews``
    unlabelled reviews held out for perplexity, and minus every text identical to a validation
    or test text of the classifier's split."""
    data, seed = config.data, config.split_seed
    forbidden = held_out_texts(data, seed)
    labelled = without_texts(classifier_splits(data, seed)["train"].select_columns(["text"]),
                             forbidden, "the LM's labelled reviews")
    unlabelled = unlabelled_reviews(config, forbidden)
    held_out = min(data.lm_valid_reviews, len(unlabelled) // 2)
    if held_out < 1:
        raise ValueError("too few unlabelled reviews to hold any out for perplexity")
    valid = unlabelled.select(range(held_out))
    train_texts = datasets.concatenate_datasets(
        [labelled, unlabelled.select(range(held_out, len(unlabelled)))])
    return train_texts, valid


def to_stream(ids: list[np.ndarray], eos: int) -> np.ndarray:
    """One id stream: every review followed by ``<eos>``."""
    pieces = []
    for review in ids:
        pieces += [review, np.asarray([eos], dtype=np.int64)]
    return np.concatenate(pieces) if pieces else np.zeros(0, dtype=np.int64)


def prepare_corpus(config: Config) -> Corpus:
    """Load, tokenize (cached, as the classifier does), build the vocabulary, numericalize."""
    data = config.data
    train_texts, valid_texts = corpus_texts(config)
    tokenizer = Tokenizer(lowercase=data.lowercase)
    train_texts = tokenize_dataset(train_texts, tokenizer, data.num_proc)
    valid_texts = tokenize_dataset(valid_texts, tokenizer, data.num_proc)
    vocab = Vocab.build(train_texts["tokens"], data.max_vocab, data.min_freq,
                        specials=(PAD, UNK, EOS))
    eos = vocab.stoi[EOS]
    ids = [numericalize(split, vocab) for split in (train_texts, valid_texts)]
    streams = [to_stream(split_ids, eos) for split_ids in ids]
    logger.info("LM corpus: %d training reviews (%d tokens), %d held out (%d tokens), "
                "vocabulary %d", len(train_texts), len(streams[0]), len(valid_texts),
                len(streams[1]), len(vocab))
    return Corpus(train_texts, valid_texts, vocab, *streams, *ids)


def lm_batches(config: Config, corpus: Corpus) -> tuple[BatchSource, Iterable[Batch]]:
    """Training and held-out batches as ``data.lm_sequences`` says.

    ``reviews``: whole reviews, length-bucketed and padded (``max_length``, ``max_tokens`` apply)
    exactly as the classifier will read them, each from a zero state. ``windows``: random
    windows of ``num_steps`` words of the joined stream, each from a zero state (a backward stack
    cannot carry its state forward in time). Windows never show the core a sequence longer than
    ``num_steps``; BENCHMARKS.md measures what that does to the classifier reading whole reviews.
    """
    data, seed = config.data, config.train.seed
    if data.lm_sequences == "windows":
        return (StreamBatches(corpus.train_stream, data.batch_size, data.num_steps, "random",
                              seed),
                StreamBatches(corpus.valid_stream, data.batch_size, data.num_steps, "random",
                              seed, offset=False))
    pad = corpus.vocab.pad_index or 0
    train_ids, valid_ids = ([ids for ids in split if len(ids) >= 2]
                            for split in (corpus.train_ids, corpus.valid_ids))
    if not train_ids or not valid_ids:
        raise ValueError("the LM corpus needs reviews of at least two tokens in both parts")
    return (review_batches(config, train_ids, None, True, pad),
            review_batches(config, valid_ids, None, False, pad))


def pretrain_language_model(config: Config) -> dict:
    """Train the word LM; keeps the best on held-out perplexity in ``train.output``."""
    if config.model.core.bidirectional and not config.model.core.separate:
        raise ValueError("a bidirectional language model needs layout='separate'")
    with main_process_first():  # under torchrun rank 0 fills the tokenization cache
        corpus = prepare_corpus(config)
    train_batches, valid_batches = lm_batches(config, corpus)
    model, config, _ = build_task_model(config, corpus.vocab)
    # the output biases start at the word frequencies (a resumed run loads its own weights)
    model.set_output_prior(np.bincount(corpus.train_stream, minlength=len(corpus.vocab)))
    output = Path(config.train.output)
    start = time.perf_counter()
    history = train(model, train_batches, valid_batches, config.train, output,
                    save_best=lambda m, d: save_pretrained(m, d, corpus.vocab, config))
    seconds = time.perf_counter() - start
    best = min(history, key=lambda r: r["valid_perplexity"]) if history else {}
    return {"epochs_run": len(history), "train_seconds": seconds, "best": best,
            "train_tokens": len(corpus.train_stream), "valid_tokens": len(corpus.valid_stream)}


def summary_line(summary: dict) -> dict:
    """What ``sentiment pretrain`` prints of :func:`pretrain_language_model`'s summary."""
    best = summary["best"]
    return {"epochs_run": summary["epochs_run"],
            "train_seconds": round(summary["train_seconds"], 1),
            "train_tokens": summary["train_tokens"], "valid_tokens": summary["valid_tokens"],
            "best_epoch": best.get("epoch"), "valid_perplexity": best.get("valid_perplexity"),
            "valid_forward_perplexity": best.get("valid_forward_perplexity"),
            "valid_backward_perplexity": best.get("valid_backward_perplexity")}
