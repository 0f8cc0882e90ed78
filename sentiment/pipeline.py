"""The sentiment pipeline end to end: data -> tokens -> vocabulary -> vectors -> train -> report."""

from __future__ import annotations

import json
import logging
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path

import datasets
import numpy as np
import torch
from datasets.fingerprint import Hasher

from .batching import SequenceBatches
from .checkpoint import save_pretrained
from .core import CoreConfig
from .data import DEFAULT_SOURCE, load_reviews, split_validation
from .evaluate import baseline_tfidf, write_report
from .heads import SentimentClassifier
from .predict import score_ids
from .tokenize import Tokenizer, tokenize_dataset
from .training import TrainConfig, config_from_preset, train
from .vectors import DEFAULT_VECTORS, load_vectors
from .vocab import Vocab

logger = logging.getLogger(__name__)


@dataclass
class SentimentConfig:
    """Everything ``scripts/train_sentiment.py`` controls."""

    data: str = DEFAULT_SOURCE
    vectors: str | None = DEFAULT_VECTORS
    output: str = "runs/sentiment"
    lowercase: bool = True
    max_vocab: int = 10_000
    min_freq: int = 1
    max_length: int | None = None
    valid_fraction: float = 0.1
    train_limit: int | None = None
    test_limit: int | None = None
    embed_dim: int = 100
    hidden_dim: int = 256
    num_layers: int = 2
    rnn_type: str = "lstm"
    bidirectional: bool = True
    dropout: float = 0.5
    pooling: str = "concat"
    padding_mode: str = "auto"
    freeze_embeddings: bool = False
    batch_size: int = 64
    bucket: bool = True
    num_proc: int | None = None
    baseline: bool = True
    evaluate: bool = True
    train: TrainConfig = field(default_factory=TrainConfig)


PRESETS = {
    "default": {},
    "tiny": {
        "vectors": None, "max_vocab": 2_000, "embed_dim": 32, "hidden_dim": 32, "num_layers": 1,
        "train_limit": 2_000, "test_limit": 500, "max_length": 200, "batch_size": 32,
        "train": {"epochs": 3, "lr": 3e-3, "patience": None},
    },
}


def make_config(preset: str = "default", **overrides) -> SentimentConfig:
    """A config from a preset plus overrides; unknown names raise a ValueError naming them."""
    return config_from_preset(SentimentConfig, PRESETS, preset, overrides)


def _subsample(dataset: datasets.Dataset, limit: int | None, seed: int) -> datasets.Dataset:
    if limit is None or limit >= len(dataset):
        return dataset
    return dataset.shuffle(seed=seed).select(range(limit)).flatten_indices()


def numericalize(dataset: datasets.Dataset, vocab: Vocab) -> list[list[int]]:
    """Token ids for every row, cached on disk by the dataset's and the vocabulary's fingerprint."""
    fingerprint = Hasher.hash((dataset._fingerprint, "ids-v1", vocab.itos))
    with_ids = dataset.map(
        lambda batch: {"ids": [vocab.encode(tokens) for tokens in batch["tokens"]]},
        batched=True, batch_size=1000, new_fingerprint=fingerprint,
        features=datasets.Features({**dataset.features,
                                    "ids": datasets.Sequence(datasets.Value("int32"))}),
        desc="numericalize",
    )
    if len(with_ids) == 0:
        return []
    column = with_ids.data.column("ids").combine_chunks()
    offsets = column.offsets.to_numpy()
    values = column.flatten().to_numpy().astype(np.int64)
    return np.split(values, offsets[1:-1] - offsets[0])


@dataclass
class PreparedData:
    """Tokenized splits, vocabulary and ids, ready for batching."""

    train: datasets.Dataset
    valid: datasets.Dataset
    test: datasets.Dataset
    vocab: Vocab
    tokenizer: Tokenizer
    ids: dict = field(default_factory=dict)
    seconds: dict = field(default_factory=dict)


def prepare_data(config: SentimentConfig, vocab: Vocab | None = None) -> PreparedData:
    """Load, tokenize (cached), split, build the vocabulary (unless given), numericalize."""
    seconds = {}
    start = time.perf_counter()
    splits = load_reviews(config.data)
    seed = config.train.seed
    train_split = _subsample(splits["train"], config.train_limit, seed)
    test_split = _subsample(splits["test"], config.test_limit, seed)
    tokenizer = Tokenizer(lowercase=config.lowercase)
    seconds["load"] = time.perf_counter() - start
    start = time.perf_counter()
    train_split = tokenize_dataset(train_split, tokenizer, config.num_proc)
    test_split = tokenize_dataset(test_split, tokenizer, config.num_proc)
    seconds["tokenize"] = time.perf_counter() - start
    train_part, valid_part = split_validation(train_split, config.valid_fraction, seed)
    start = time.perf_counter()
    if vocab is None:
        vocab = Vocab.build(train_part["tokens"], config.max_vocab, config.min_freq)
    seconds["vocab"] = time.perf_counter() - start
    start = time.perf_counter()
    ids = {name: numericalize(split, vocab)
           for name, split in (("train", train_part), ("valid", valid_part), ("test", test_split))}
    seconds["numericalize"] = time.perf_counter() - start
    logger.info("data: %d train, %d validation, %d test reviews; vocabulary %d; %s",
                len(train_part), len(valid_part), len(test_split), len(vocab),
                ", ".join(f"{k} {v:.1f}s" for k, v in seconds.items()))
    return PreparedData(train_part, valid_part, test_split, vocab, tokenizer, ids, seconds)


def build_classifier(config: SentimentConfig, vocab: Vocab) -> tuple[SentimentClassifier, dict]:
    """The classifier, with embeddings initialised from the configured vectors (if any)."""
    stats = {}
    matrix = None
    embed_dim = config.embed_dim
    if config.vectors:
        matrix, vector_stats = load_vectors(config.vectors, vocab, seed=config.train.seed)
        embed_dim = vector_stats.dim
        stats = asdict(vector_stats)
    core = CoreConfig(
        vocab_size=len(vocab), embed_dim=embed_dim, hidden_dim=config.hidden_dim,
        num_layers=config.num_layers, rnn_type=config.rnn_type,
        bidirectional=config.bidirectional, dropout=config.dropout,
        input_dropout=config.dropout, pad_index=vocab.pad_index,
        padding_mode=config.padding_mode,
    )
    torch.manual_seed(config.train.seed)
    model = SentimentClassifier(core, dropout=config.dropout, pooling=config.pooling)
    if matrix is not None:
        model.core.load_embeddings(torch.from_numpy(matrix), freeze=config.freeze_embeddings)
    return model, stats


def preprocessing_config(config: SentimentConfig, tokenizer: Tokenizer) -> dict:
    return {
        "tokenizer": tokenizer.to_dict(),
        "max_length": config.max_length,
        "html_breaks_removed": True,
        "valid_fraction": config.valid_fraction,
        "seed": config.train.seed,
        "vectors": config.vectors,
    }


def batches_for(config: SentimentConfig, ids, labels, shuffle: bool, pad_index: int):
    return SequenceBatches(ids, labels, config.batch_size, pad_index, config.max_length,
                           shuffle=shuffle, bucket=config.bucket, seed=config.train.seed)


def evaluate_model(
    model: SentimentClassifier,
    data: PreparedData,
    output_dir: str | Path,
    batch_size: int = 64,
    baseline: bool = True,
    split: str = "test",
    extra: dict | None = None,
    max_length: int | None = None,
    mixed_precision: bool = True,
) -> dict:
    """Score ``split`` and write the report (with the TF-IDF baseline fitted on train)."""
    dataset = data.test if split == "test" else data.valid
    start = time.perf_counter()
    probs = score_ids(model, data.ids[split], batch_size, data.vocab.pad_index or 0, max_length,
                      mixed_precision)
    seconds = time.perf_counter() - start
    baseline_probs = None
    if baseline:
        start_baseline = time.perf_counter()
        baseline_probs = baseline_tfidf(data.train["text"], data.train["label"], dataset["text"])
        logger.info("baseline fitted and scored in %.1fs", time.perf_counter() - start_baseline)
    output_dir = Path(output_dir)
    report = write_report(
        output_dir, dataset["label"], probs, dataset["text"], [len(x) for x in data.ids[split]],
        baseline_probs, metrics_path=output_dir / "metrics.jsonl",
        extra={"split": split, "scoring_seconds": seconds, **(extra or {})},
    )
    logger.info("%s accuracy %.4f (n=%d)%s", split, report["accuracy"], report["n"],
                f"; baseline {report['baseline']['accuracy']:.4f}" if baseline else "")
    return report


def train_sentiment(config: SentimentConfig) -> dict:
    """Train, keep the best model on validation, save it, and report on the test split."""
    output = Path(config.output)
    output.mkdir(parents=True, exist_ok=True)
    (output / "train_config.json").write_text(json.dumps(asdict(config), indent=2))
    data = prepare_data(config)
    model, vector_stats = build_classifier(config, data.vocab)
    preprocessing = preprocessing_config(config, data.tokenizer)
    pad = data.vocab.pad_index or 0
    train_batches = batches_for(config, data.ids["train"], data.train["label"], True, pad)
    valid_batches = batches_for(config, data.ids["valid"], data.valid["label"], False, pad)
    start = time.perf_counter()
    history = train(
        model, train_batches, valid_batches, config.train, output,
        save_best=lambda m, d: save_pretrained(m, d, data.vocab, preprocessing),
    )
    train_seconds = time.perf_counter() - start
    summary = {"train_seconds": train_seconds, "epochs_run": len(history),
               "vectors": vector_stats, "preprocessing_seconds": data.seconds}
    if config.evaluate:
        summary["report"] = evaluate_model(
            model, data, output, config.batch_size, config.baseline,
            extra={"training": summary.copy()}, max_length=config.max_length,
            mixed_precision=config.train.mixed_precision,
        )
    return summary


def evaluate_saved_model(
    model_dir: str | Path,
    data: str = DEFAULT_SOURCE,
    split: str = "test",
    output: str | Path | None = None,
    batch_size: int = 64,
    baseline: bool = True,
    device: str = "auto",
    test_limit: int | None = None,
    mixed_precision: bool = True,
) -> dict:
    """Report on a saved model, preprocessing the data exactly as it was at training time."""
    from .predict import load_model

    if split not in ("test", "valid"):
        raise ValueError(f"split must be 'test' or 'valid', got {split!r}")
    loaded = load_model(model_dir, device)
    pre = loaded.config["preprocessing"]
    config = make_config(
        data=data, lowercase=pre["tokenizer"]["lowercase"], max_length=pre.get("max_length"),
        valid_fraction=pre.get("valid_fraction", 0.1), seed=pre.get("seed", 0),
        test_limit=test_limit,
    )
    prepared = prepare_data(config, vocab=loaded.vocab)
    return evaluate_model(loaded.model, prepared, output or model_dir, batch_size, baseline,
                          split, extra={"model": str(model_dir)}, max_length=config.max_length,
                          mixed_precision=mixed_precision)
