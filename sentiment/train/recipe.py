"""The sentiment pipeline end to end: data -> tokens -> vocabulary -> vectors -> train -> report."""

from __future__ import annotations

import logging
import time
from collections.abc import Sequence
from dataclasses import dataclass, field, replace
from pathlib import Path

import datasets
import numpy as np

from ..cli.options import trim_heap
from ..config import DEFAULT_LABELS, Config, apply_overrides, preset_config
from ..data.batching import SequenceBatches
from ..data.lengths import cut
from ..data.sources import (
    RowRules,
    label_names,
    load_unlabelled,
    map_onto_labels,
    read_labelled,
)
from ..inference.predict import SentimentModel, TextModel, score_ids
from ..kinds.checkpoint import load_core_weights, save_pretrained
from ..kinds.decisions import class_probs, predicted_classes
from ..nn.heads import SentimentClassifier
from ..report.checklist import model_checklist
from ..report.metrics import fit_baselines, write_report
from ..runtime.distributed import is_main, main_process_first
from ..text.tokenize import Tokenizer, tokenize_dataset
from ..text.vocab import Vocab
from ..train.loop import train
from ..train.phrases import check_labels, phrases
from ..train.prepare import (
    build_task_model,
    classifier_splits,
    numericalize,
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
        # the regularisation it was built with: with the full model's 0.5 dropout (chosen on
        # IMDB's validation split) tests/test_distill.py's tiny student fell to its bound
        "dropout": 0.3, "input_dropout": 0.2, "ema_decay": 0.998,
    },
}


def make_config(preset: str = "default", **overrides) -> Config:
    """A sentiment config from a preset plus overrides (option names: ``data``, ``hidden_dim``,
    ``epochs``...); unknown names raise a ValueError naming them."""
    return preset_config("sentiment", PRESETS, preset, **overrides)


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


def prepare_data(config: Config, vocab: Vocab | None = None) -> PreparedData:
    """Load and split, tokenize (cached), build the vocabulary (unless given), numericalize."""
    data, seconds = config.data, {}
    start = time.perf_counter()
    splits = classifier_splits(data, config.split_seed)
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


def unlabelled_batches(config: Config, vocab: Vocab) -> SequenceBatches:
    """Batches of :func:`unlabelled_reviews` in the classifier's vocabulary, for virtual
    adversarial training; no validation or test text can be among them."""
    ids = token_ids(config, unlabelled_reviews(config), vocab)
    logger.info("virtual adversarial training on %d unlabelled reviews", len(ids))
    return review_batches(config, ids, None, True, vocab.pad_index or 0, seed_offset=1)


def evaluate_model(
    model: SentimentClassifier | TextModel,
    data: PreparedData,
    output_dir: str | Path,
    config: Config,
    split: str = "test",
    extra: dict | None = None,
    mixed_precision: bool = True,
) -> dict:
    """Score ``split`` and write the report (with the linear baselines fitted on train).
    ``model``: a PyTorch classifier, or a loaded model of another format (an ONNX export),
    scored on the same ids as ``predict`` scores them."""
    dataset = data.test if split == "test" else data.valid
    start = time.perf_counter()
    if isinstance(model, TextModel) and model.reads_texts:  # a cascade: each member its way
        probs = model.text_probabilities(list(dataset["text"]), config.data.batch_size,
                                         mixed_precision)
    elif isinstance(model, TextModel):
        limit = config.data.max_length  # as score_ids cuts them
        probs = model.with_wide(model.probabilities(
            [cut(ids, limit, config.data.keep) for ids in data.ids[split]],
            config.data.batch_size, mixed_precision=mixed_precision), dataset["text"])
    else:
        # the training's token budget: 64 of the longest reviews in one batch grew the peak
        # by 764 MB against 143 (BENCHMARKS.md, "Memory of scoring")
        probs = score_ids(model, data.ids[split], config.data.batch_size,
                          data.vocab.pad_index or 0, config.data.max_length, mixed_precision,
                          config.data.max_tokens, keep=config.data.keep)
    seconds = time.perf_counter() - start
    baselines = None
    if config.train.baseline:
        start_baseline = time.perf_counter()
        trim_heap()
        baselines = fit_baselines(data.train["text"], data.train["label"], dataset["text"])
        logger.info("baselines fitted and scored in %.1fs", time.perf_counter() - start_baseline)
    output_dir = Path(output_dir)
    if split == "test":
        extra = {**(extra or {}), "deduplicated": deduplicated(
            dataset, probs, baselines, seen_elsewhere(data, config))}
    if list(config.model.head.labels) == list(DEFAULT_LABELS):
        extra = {**(extra or {}), "behaviour": behaviour(model, data.vocab, config,
                                                          mixed_precision)}
    report = write_report(
        output_dir, dataset["label"], probs, dataset["text"], [len(x) for x in data.ids[split]],
        baselines, metrics_path=output_dir / "metrics.jsonl",
        extra={"split": split, "scoring_seconds": seconds, **(extra or {})},
        label_names=config.model.head.labels,
    )
    _log_accuracy(split, report)
    return report


def seen_elsewhere(data: PreparedData, config: Config) -> set[str]:
    """Every text of the training file and of the unlabelled reviews (when the source has
    them): a test review identical to one of them may have been seen in training."""
    texts = set(data.train["text"]) | set(data.valid["text"])
    try:
        texts |= set(load_unlabelled(config.data.unlabelled or config.data.source,
                                     config.data.unlabelled_column)["text"])
    except (OSError, ValueError) as error:  # no unlabelled reviews beside this source
        logger.info("deduplicated test split against the training file only: %s", error)
    return texts


def deduplicated(dataset: datasets.Dataset, probs, baselines: dict | None,
                 seen: set[str]) -> dict:
    """Accuracy of the model (and the baselines) on the test reviews whose text appears
    nowhere in the training file or the unlabelled reviews."""
    keep = np.asarray([text not in seen for text in dataset["text"]])
    labels = np.asarray(dataset["label"])[keep]

    def accuracy(scores) -> float:
        predicted = predicted_classes(class_probs(np.asarray(scores)[keep]))
        return float((predicted == labels).mean()) if len(labels) else float("nan")

    return {"n": int(keep.sum()), "removed": int((~keep).sum()), "accuracy": accuracy(probs),
            "baselines": {name: accuracy(scores) for name, scores in (baselines or {}).items()}}


def behaviour(model: SentimentClassifier | TextModel, vocab: Vocab, config: Config,
              mixed_precision: bool = True) -> dict:
    """The CheckList suite (:mod:`sentiment.report.checklist`) on a negative/positive classifier,
    scored as ``predict`` scores texts."""
    if not isinstance(model, TextModel):
        model = SentimentModel(model, vocab, config)
    return model_checklist(model, mixed_precision)


def _log_accuracy(where: str, report: dict) -> None:
    logger.info("%s accuracy %.4f (n=%d)%s", where, report["accuracy"], report["n"],
                "".join(f"; {b['short_name']} {b['accuracy']:.4f}"
                        for b in report.get("baselines", [])))


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
        from ..train.distill import distillation_set

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
            "baseline_accuracy": report.get("baseline", {}).get("accuracy"),
            "baselines": {b["short_name"]: b["accuracy"] for b in report.get("baselines", [])}}


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
    from ..inference.predict import load_model

    if split not in ("test", "valid"):
        raise ValueError(f"split must be 'test' or 'valid', got {split!r}")
    loaded = load_model(model_dir, device)
    if not isinstance(loaded, TextModel):
        raise ValueError(f"{model_dir} is a {type(loaded).__name__}, which carries no data "
                         "split of its own to evaluate on: compare it with python -m "
                         "benchmarks.paired --models MODEL ... on a split's file")
    overrides = {"batch_size": batch_size, "baseline": baseline}
    if test_limit is not None:
        overrides["test_limit"] = test_limit
    if data is not None:
        overrides["data"] = data
    config = apply_overrides(loaded.config, overrides)
    prepared = prepare_data(config, vocab=loaded.vocab)
    # ONNX or wide and deep: the loaded model itself, scored as predict scores it
    scored = loaded.model if isinstance(loaded, SentimentModel) and loaded.wide is None else loaded
    return evaluate_model(scored, prepared, output or model_dir, config, split,
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
    rules: RowRules = RowRules(),
) -> dict:
    """Report on how a saved model does on labelled data it was not trained on: every row of a
    file (or a folder's / hub dataset's ``split``), its columns and label values mapped onto the
    model's labels (:func:`~sentiment.data.sources.map_onto_labels`). The linear baselines are fitted on
    the model's *own* training reviews and scored on the same rows, so they cross domains too.
    ``limit``: score only the first that many rows. ``train_data``: where the model's training
    data is when not where its config says (a local copy of a hub dataset, say); without it at
    hand the report has no baselines and says why."""
    from ..inference.predict import load_model

    loaded = load_model(model_dir, device)
    rows, origin = read_labelled(data, text_column, label_column, split, rules)
    rows, mapped = map_onto_labels(rows, origin, loaded.labels, label_map, skip_labels)
    if limit is not None:
        rows = rows.select(range(min(limit, len(rows))))
    texts = rows["text"]
    start = time.perf_counter()
    ids = loaded.encode(texts)
    probs = score_ids(loaded.model, ids, batch_size, loaded.vocab.pad_index or 0,
                      mixed_precision=mixed_precision, max_tokens=loaded.config.data.max_tokens)
    probs = loaded.with_wide(probs, texts)  # wide and deep: the n-gram model reads them too
    seconds = time.perf_counter() - start
    baselines, extra = None, {}
    if baseline:
        own_data = loaded.config.data
        if train_data is not None:
            own_data = replace(own_data, source=str(train_data))
        source = own_data.source
        try:
            own = classifier_splits(own_data, loaded.config.split_seed)["train"]
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
