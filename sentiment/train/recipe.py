"""The sentiment pipeline end to end: data -> tokens -> vocabulary -> vectors -> train -> report."""

from __future__ import annotations

import logging
import time
from dataclasses import replace
from pathlib import Path

import numpy as np

from ..config import DEFAULT_LABELS, Config, preset_config
from ..data.batching import SequenceBatches
from ..data.sources import (
    label_names,
)
from ..kinds.checkpoint import load_core_weights, save_pretrained
from ..report.metrics import baseline_summary
from ..runtime.distributed import is_main, main_process_first
from ..runtime.memory import trim_heap
from ..text.vocab import Vocab
from .evaluation import evaluate_model
from .loop import train
from .phrases import check_labels, phrases
from .prepare import (
    build_task_model,
    prepare_data,
    review_batches,
    token_ids,
    unlabelled_reviews,
)

logger = logging.getLogger(__name__)


PRESETS = {
    "default": {},  # the config's own defaults (sentiment.config, sentiment.nn.core)
    "tiny": {
        "vectors": None, "max_vocab": 2_000, "embed_dim": 32, "hidden_dim": 32, "num_layers": 1,
        "train_limit": 2_000, "test_limit": 500, "max_length": 200, "batch_size": 32,
        "epochs": 3, "lr": 3e-3, "patience": None,
        # a teacher's labels and the virtual adversary read this many unlabelled reviews, not
        # IMDB's 50,000 (--teacher took minutes scoring and training on them all; issue 42)
        "unlabelled_limit": 2_000,
        # the regularisation it was built with: with the full model's 0.5 dropout (chosen on
        # IMDB's validation split) tests/test_distill.py's tiny student fell to its bound
        "dropout": 0.3, "input_dropout": 0.2, "ema_decay": 0.998,
    },
}


def make_config(preset: str = "default", **overrides) -> Config:
    """A sentiment config from a preset plus overrides (option names: ``data``, ``hidden_dim``,
    ``epochs``...); unknown names raise a ValueError naming them."""
    return preset_config("sentiment", PRESETS, preset, **overrides)


def unlabelled_batches(config: Config, vocab: Vocab) -> SequenceBatches:
    """Batches of :func:`unlabelled_reviews` in the classifier's vocabulary, for virtual
    adversarial training; no validation or test text can be among them."""
    ids = token_ids(config, unlabelled_reviews(config), vocab)
    logger.info("virtual adversarial training on %d unlabelled reviews", len(ids))
    return review_batches(config, ids, None, True, vocab.pad_index or 0, seed_offset=1)


def with_phrases(config: Config, ids: list, targets, vocab) -> tuple[list, np.ndarray]:
    """The training set followed by ``train.phrases`` template sentences
    (:mod:`sentiment.train.phrases`) with their labels as targets."""
    check_labels(config.model.head.labels)
    texts, labels = phrases(config.train.phrases, config.train.seed)
    logger.info("%d template sentences join %d training texts", len(texts), len(ids))
    return (list(ids) + token_ids(config, texts, vocab),
            np.concatenate([np.asarray(targets, dtype=np.float32), labels]))


def train_sentiment(config: Config) -> dict:
    """Train, keep the best model on validation, save it, and report on the test split."""
    output = Path(config.train.output)
    output.mkdir(parents=True, exist_ok=True)
    vocab = None
    if config.model.encoder:
        _, vocab, _ = load_core_weights(config.model.encoder)
    with main_process_first():  # under torchrun rank 0 fills the tokenization cache
        data = prepare_data(config, vocab)
    names = label_names(data.train)
    if names != list(DEFAULT_LABELS) and names != list(config.model.head.labels):
        logger.info("labels from the data: %s", names)
        config = replace(config, model=replace(config.model, head=replace(
            config.model.head, labels=names)))
    if config.train.phrases:  # before any long work: the data's labels must be theirs
        check_labels(config.model.head.labels)
    model, config, vector_stats = build_task_model(config, data.vocab)
    pad = data.vocab.pad_index or 0
    train_ids, targets, distilled = data.ids["train"], data.train["label"], None
    if config.train.teacher:
        from .distill import distillation_set

        with main_process_first():
            train_ids, targets, distilled = distillation_set(config, data.train, train_ids,
                                                             data.vocab)
    if config.train.phrases:
        train_ids, targets = with_phrases(config, train_ids, targets, data.vocab)
    train_batches = review_batches(config, train_ids, targets, True, pad)
    valid_batches = review_batches(config, data.ids["valid"], data.valid["label"], False, pad)
    unlabelled = None
    if config.train.virtual_adversarial > 0:
        with main_process_first():
            unlabelled = unlabelled_batches(config, data.vocab)
    start = time.perf_counter()
    history = train(
        model, train_batches, valid_batches, config.train, output,
        save_best=lambda m, d: save_pretrained(m, d, data.vocab, config), unlabelled=unlabelled,
    )
    train_seconds = time.perf_counter() - start
    summary = {"train_seconds": train_seconds, "epochs_run": len(history),
               **({"distillation": distilled} if distilled else {}),
               **({"phrases": config.train.phrases} if config.train.phrases else {}),
               "vectors": vector_stats, "preprocessing_seconds": data.seconds}
    if config.train.evaluate and is_main():  # the report: once, by rank 0
        trim_heap()  # the epochs' freed activations, before the report's baselines
        try:
            summary["report"] = evaluate_model(
                model, data, output, config, extra={"training": summary.copy()},
                mixed_precision=config.train.mixed_precision,
            )
        except Exception as error:
            saved = f"training finished and the model is saved in {output}; the report failed"
            logger.error("%s: %s", saved, error)
            if isinstance(error, (ValueError, KeyError, FileNotFoundError)):
                raise type(error)(f"{saved}: {error}") from error
            raise
    return summary


def summary_line(summary: dict) -> dict:
    """What ``sentiment train`` prints of :func:`train_sentiment`'s summary."""
    report = summary.get("report", {})
    return {"epochs_run": summary["epochs_run"],
            "train_seconds": round(summary["train_seconds"], 1),
            "test_accuracy": report.get("accuracy"),
            "test_accuracy_ci95": report.get("accuracy_ci95"),
            **baseline_summary(report)}
