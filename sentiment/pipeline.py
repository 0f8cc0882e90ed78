"""The sentiment pipeline end to end: data -> tokens -> vocabulary -> vectors -> train -> report."""

from __future__ import annotations

import logging
import time
from collections.abc import Sequence
from dataclasses import asdict, dataclass, field, replace
from pathlib import Path

import datasets
import numpy as np
import torch
from datasets.fingerprint import Hasher

from .batching import SequenceBatches
from .checkpoint import load_core_weights, save_pretrained, transfer_core
from .config import DEFAULT_LABELS, Config, ReviewData, apply_overrides, preset_config
from .data import (
    label_names,
    load_reviews,
    load_unlabelled,
    map_onto_labels,
    read_labelled,
    split_validation,
)
from .distributed import is_main, main_process_first
from .evaluate import fit_baselines, write_report
from .heads import SentimentClassifier, build_model
from .predict import score_ids
from .tokenize import Tokenizer, tokenize_dataset
from .training import train
from .vectors import load_vectors
from .vocab import Vocab

logger = logging.getLogger(__name__)
# What a classifier takes from its encoder's core: the architecture (its dropouts stay its own).
ENCODER_FIELDS = ("vocab_size", "embed_dim", "hidden_dim", "num_layers", "rnn_type",
                  "bidirectional", "layout", "input_type", "pad_index")


PRESETS = {
    # (a) a batch holds at most 64 reviews and 16,384 padded tokens: long reviews come in fewer
    # rows, so a full IMDB epoch peaks at 1.6 GB of RSS instead of 4.8 (BENCHMARKS.md, Session 5);
    # (b) lighter dropout (0.2 on the embeddings, 0.3 between layers) and a moving average of the
    # weights (up to 10 epochs, patience 3): from scratch 0.9094 on IMDB test against 0.9002
    # (BENCHMARKS.md, Session 10)
    "default": {"max_tokens": 16_384, "input_dropout": 0.2, "dropout": 0.3, "ema_decay": 0.998},
    "tiny": {
        "vectors": None, "max_vocab": 2_000, "embed_dim": 32, "hidden_dim": 32, "num_layers": 1,
        "train_limit": 2_000, "test_limit": 500, "max_length": 200, "batch_size": 32,
        "epochs": 3, "lr": 3e-3, "patience": None,
    },
}


def make_config(preset: str = "default", **overrides) -> Config:
    """A sentiment config from a preset plus overrides (option names: ``data``, ``hidden_dim``,
    ``epochs``...); unknown names raise a ValueError naming them."""
    return preset_config("sentiment", PRESETS, preset, **overrides)


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


def check_classes(split: datasets.Dataset, origin: str) -> None:
    """Every class the split names must be in it, twice at least (one for the validation
    split); checked before any work, not after training."""
    names = label_names(split)
    counts = np.bincount(np.asarray(split["label"], dtype=np.int64), minlength=len(names))
    scarce = [f"{name}: {int(counts[label])}" for label, name in enumerate(names)
              if counts[label] < 2]
    if scarce:
        raise ValueError(f"{origin}: a classifier needs every class at least twice in its "
                         f"training data; label counts {', '.join(scarce)} "
                         f"(of {len(split)} rows)")


def classifier_splits(data: ReviewData, seed: int) -> dict[str, datasets.Dataset]:
    """The classifier's ``train`` / ``valid`` / ``test`` reviews, exactly as ``data`` and
    ``seed`` define them: the same call on a saved config gives the same split."""
    splits = load_reviews(data.source, data.text_column, data.label_column, data.test_fraction,
                          seed, data.train_split, data.test_split)
    train_split = _subsample(splits["train"], data.train_limit, seed)
    check_classes(train_split, f"{data.source} (training split)")
    test_split = _subsample(splits["test"], data.test_limit, seed)
    train_part, valid_part = split_validation(train_split, data.valid_fraction, seed)
    return {"train": train_part, "valid": valid_part, "test": test_split}


def prepare_data(config: Config, vocab: Vocab | None = None) -> PreparedData:
    """Load and split, tokenize (cached), build the vocabulary (unless given), numericalize."""
    data, seconds = config.data, {}
    start = time.perf_counter()
    splits = classifier_splits(data, config.train.seed)
    tokenizer = Tokenizer(lowercase=data.lowercase)
    seconds["load"] = time.perf_counter() - start
    start = time.perf_counter()
    splits = {name: tokenize_dataset(split, tokenizer, data.num_proc)
              for name, split in splits.items()}
    seconds["tokenize"] = time.perf_counter() - start
    start = time.perf_counter()
    if vocab is None:
        vocab = Vocab.build(splits["train"]["tokens"], data.max_vocab, data.min_freq)
    seconds["vocab"] = time.perf_counter() - start
    start = time.perf_counter()
    ids = {name: numericalize(split, vocab) for name, split in splits.items()}
    seconds["numericalize"] = time.perf_counter() - start
    logger.info("data: %d train, %d validation, %d test reviews; vocabulary %d; %s",
                len(splits["train"]), len(splits["valid"]), len(splits["test"]), len(vocab),
                ", ".join(f"{k} {v:.1f}s" for k, v in seconds.items()))
    return PreparedData(splits["train"], splits["valid"], splits["test"], vocab, tokenizer, ids,
                        seconds)


def build_classifier(config: Config, vocab: Vocab) -> tuple[SentimentClassifier, Config, dict]:
    """The classifier and its resolved config (vocabulary size and embedding width filled in).

    With ``model.encoder`` the core's architecture and weights come from that saved model (whose
    vocabulary ``vocab`` must be); otherwise the embedding starts from ``model.vectors``."""
    stats: dict = {}
    matrix = None
    core = replace(config.model.core, vocab_size=len(vocab), pad_index=vocab.pad_index)
    directions = config.model.encoder_directions
    if config.model.encoder:
        encoder_core, _, _ = load_core_weights(config.model.encoder)
        architecture = {name: getattr(encoder_core, name) for name in ENCODER_FIELDS}
        if directions != "both":
            if not encoder_core.separate:
                raise ValueError(f"encoder_directions={directions!r} takes one stack of a "
                                 f"bidirectional encoder with layout='separate'; the core in "
                                 f"{config.model.encoder} is not one")
            architecture.update(bidirectional=False, reverse=directions == "backward")
        core = replace(core, **architecture)
    elif directions != "both":
        raise ValueError("encoder_directions needs an encoder (a separate-layout language model)")
    elif config.model.vectors:
        matrix, vector_stats = load_vectors(config.model.vectors, vocab, seed=config.train.seed)
        core = replace(core, embed_dim=vector_stats.dim)
        stats = asdict(vector_stats)
    config = replace(config, model=replace(config.model, core=core))
    torch.manual_seed(config.train.seed)
    model = build_model("sentiment", config.model)
    if config.model.encoder:
        transfer_core(model.core, vocab, config.model.encoder, directions)
        logger.info("core initialised from %s", config.model.encoder)
    elif matrix is not None:
        model.core.load_embeddings(torch.from_numpy(matrix))
    return model, config, stats


def batches_for(config: Config, ids, labels, shuffle: bool, pad_index: int) -> SequenceBatches:
    data = config.data
    return SequenceBatches(ids, labels, data.batch_size, pad_index, data.max_length,
                           shuffle=shuffle, bucket=data.bucket, seed=config.train.seed,
                           max_tokens=data.max_tokens)


def unlabelled_reviews(config: Config) -> datasets.Dataset:
    """The run's unlabelled reviews: ``data.unlabelled``, else the unsupervised split beside
    ``data.source`` (IMDB's 50,000), shuffled by the run's seed, at most
    ``data.unlabelled_limit`` of them. No labelled split is read."""
    data = config.data
    reviews = load_unlabelled(data.unlabelled or data.source, data.unlabelled_column)
    reviews = reviews.shuffle(seed=config.train.seed).flatten_indices()
    if data.unlabelled_limit is not None:
        reviews = reviews.select(range(min(data.unlabelled_limit, len(reviews))))
    return reviews


def unlabelled_batches(config: Config, vocab: Vocab) -> SequenceBatches:
    """Batches of :func:`unlabelled_reviews` in the classifier's vocabulary, for virtual
    adversarial training; no validation or test text can be among them."""
    data = config.data
    reviews = unlabelled_reviews(config)
    tokenized = tokenize_dataset(reviews, Tokenizer(lowercase=data.lowercase), data.num_proc)
    ids = numericalize(tokenized, vocab)
    logger.info("virtual adversarial training on %d unlabelled reviews", len(ids))
    return SequenceBatches(ids, None, data.batch_size, vocab.pad_index or 0, data.max_length,
                           shuffle=True, bucket=data.bucket, seed=config.train.seed + 1,
                           max_tokens=data.max_tokens)


def evaluate_model(
    model: SentimentClassifier,
    data: PreparedData,
    output_dir: str | Path,
    config: Config,
    split: str = "test",
    extra: dict | None = None,
    mixed_precision: bool = True,
) -> dict:
    """Score ``split`` and write the report (with the linear baselines fitted on train)."""
    dataset = data.test if split == "test" else data.valid
    start = time.perf_counter()
    probs = score_ids(model, data.ids[split], config.data.batch_size, data.vocab.pad_index or 0,
                      config.data.max_length, mixed_precision)
    seconds = time.perf_counter() - start
    baselines = None
    if config.train.baseline:
        start_baseline = time.perf_counter()
        baselines = fit_baselines(data.train["text"], data.train["label"], dataset["text"])
        logger.info("baselines fitted and scored in %.1fs", time.perf_counter() - start_baseline)
    output_dir = Path(output_dir)
    report = write_report(
        output_dir, dataset["label"], probs, dataset["text"], [len(x) for x in data.ids[split]],
        baselines, metrics_path=output_dir / "metrics.jsonl",
        extra={"split": split, "scoring_seconds": seconds, **(extra or {})},
        label_names=config.model.head.labels,
    )
    _log_accuracy(split, report)
    return report


def _log_accuracy(where: str, report: dict) -> None:
    logger.info("%s accuracy %.4f (n=%d)%s", where, report["accuracy"], report["n"],
                "".join(f"; {b['short_name']} {b['accuracy']:.4f}"
                        for b in report.get("baselines", [])))


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
    model, config, vector_stats = build_classifier(config, data.vocab)
    pad = data.vocab.pad_index or 0
    train_batches = batches_for(config, data.ids["train"], data.train["label"], True, pad)
    valid_batches = batches_for(config, data.ids["valid"], data.valid["label"], False, pad)
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
               "vectors": vector_stats, "preprocessing_seconds": data.seconds}
    if config.train.evaluate and is_main():  # the report: once, by rank 0
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


def evaluate_saved_model(
    model_dir: str | Path,
    data: str | None = None,
    split: str = "test",
    output: str | Path | None = None,
    batch_size: int = 64,
    baseline: bool = True,
    device: str = "auto",
    test_limit: int | None = None,
    mixed_precision: bool = True,
) -> dict:
    """Report on a saved model, with the data preprocessed and split exactly as its
    ``config.json`` says (``data`` may point to another copy of the same source;
    ``test_limit`` scores only that many test reviews)."""
    from .predict import load_model

    if split not in ("test", "valid"):
        raise ValueError(f"split must be 'test' or 'valid', got {split!r}")
    loaded = load_model(model_dir, device)
    overrides = {"batch_size": batch_size, "baseline": baseline}
    if test_limit is not None:
        overrides["test_limit"] = test_limit
    if data is not None:
        overrides["data"] = data
    config = apply_overrides(loaded.config, overrides)
    prepared = prepare_data(config, vocab=loaded.vocab)
    return evaluate_model(loaded.model, prepared, output or model_dir, config, split,
                          extra={"model": str(model_dir)}, mixed_precision=mixed_precision)


def evaluate_cross_domain(
    model_dir: str | Path,
    data: str | Path,
    output: str | Path,
    text_column: str = "text",
    label_column: str = "label",
    label_map: dict[str, str] | None = None,
    skip_labels: Sequence[str] = (),
    split: str = "test",
    batch_size: int = 64,
    baseline: bool = True,
    device: str = "auto",
    limit: int | None = None,
    mixed_precision: bool = True,
    train_data: str | None = None,
) -> dict:
    """Report on how a saved model does on labelled data it was not trained on: every row of a
    file (or a folder's / hub dataset's ``split``), its columns and label values mapped onto the
    model's labels (:func:`~sentiment.data.map_onto_labels`). The linear baselines are fitted on
    the model's *own* training reviews and scored on the same rows, so they cross domains too.
    ``limit``: score only the first that many rows. ``train_data``: where the model's training
    data is when not where its config says (a local copy of a hub dataset, say); without it at
    hand the report has no baselines and says why."""
    from .predict import load_model

    loaded = load_model(model_dir, device)
    rows, origin = read_labelled(data, text_column, label_column, split)
    rows, mapped = map_onto_labels(rows, origin, loaded.labels, label_map, skip_labels)
    if limit is not None:
        rows = rows.select(range(min(limit, len(rows))))
    texts = rows["text"]
    start = time.perf_counter()
    ids = loaded.encode(texts)
    probs = score_ids(loaded.model, ids, batch_size, loaded.vocab.pad_index or 0,
                      mixed_precision=mixed_precision)
    seconds = time.perf_counter() - start
    baselines, extra = None, {}
    if baseline:
        own_data = loaded.config.data
        if train_data is not None:
            own_data = replace(own_data, source=str(train_data))
        source = own_data.source
        try:
            own = classifier_splits(own_data, loaded.config.train.seed)["train"]
        except OSError as error:  # missing file, no network: the model travelled without it
            extra["baseline_error"] = f"the model's training data {source} is not at hand: {error}"
            logger.warning("no baselines: %s (point --train-data at a copy, or --no-baseline)",
                           extra["baseline_error"])
        else:
            logger.info("baselines: fitted on the model's own %d training reviews from %s",
                        len(own), source)
            baselines = fit_baselines(own["text"], own["label"], texts)
    report = write_report(
        output, rows["label"], probs, texts, [len(x) for x in ids], baselines,
        extra={"split": "cross-domain", "model": str(model_dir), "data": origin,
               "trained_on": loaded.config.data.source, "label_mapping": mapped,
               "scoring_seconds": seconds, **extra},
        label_names=loaded.labels,
    )
    _log_accuracy(origin, report)
    return report
