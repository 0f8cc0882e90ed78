"""Scoring a classifier's split and writing its report: at the end of training
(:func:`evaluate_model`), for a saved model on its own split (``sentiment evaluate``:
:func:`evaluate_saved_model`) and on labelled data of another domain
(:func:`evaluate_cross_domain`). The data is prepared exactly as training prepared it
(:func:`sentiment.train.prepare.prepare_data`), so the report reads the same reviews.

A report on the validation split goes to ``report-valid.json`` / ``report-valid.md`` (and
plots named likewise) beside the test split's ``report.json``, never over it; every report
names its split and data in its header and holds the sentence section
(:mod:`sentiment.report.sentences`)."""

from __future__ import annotations

import logging
import time
from collections.abc import Sequence
from dataclasses import replace
from pathlib import Path

import datasets
import numpy as np
from torch import nn

from ..config import DEFAULT_LABELS, Config, apply_overrides
from ..data.lengths import cut
from ..data.sources import FetchError, RowRules, load_unlabelled, map_onto_labels, read_labelled
from ..kinds.decisions import class_probs, predicted_classes
from ..kinds.lstm import SentimentModel, score_ids
from ..kinds.protocol import require, supports
from ..kinds.registry import load_model
from ..report.checklist import model_checklist
from ..report.metrics import fit_baselines, report_suffix, write_report
from ..report.sentences import sentence_section
from ..runtime.memory import trim_heap
from ..text.vocab import Vocab
from .prepare import PreparedData, classifier_splits, prepare_data

logger = logging.getLogger(__name__)
# the training reviews the baselines are fitted on when the scored reviews are bounded (--limit):
# a stratified, seeded sample; fitted on all of IMDB's they took most of a short run's time
# (BENCHMARKS.md, "Current figures": sentiment evaluate --limit 200)
BOUNDED_BASELINES = 2000


def evaluate_model(
    model,
    data: PreparedData,
    output_dir: str | Path,
    config: Config,
    split: str = "test",
    extra: dict | None = None,
    mixed_precision: bool = True,
    *,
    classifier=None,
    baseline_limit: int | None = None,
    sentences: str | None = "dev",
    suffix: str | None = None,
) -> dict:
    """Score ``split`` and write the report (with the linear baselines fitted on train) into
    ``output_dir`` (``suffix``: its file names' ending, by default the split's):
    ``report.json`` / ``report.md`` for the test split, ``report-valid.*`` for
    the validation split (:func:`~sentiment.report.metrics.report_suffix`).
    ``model``: a PyTorch classifier module (at the end of training), or a loaded classifier
    scored as ``predict`` scores it: on the same ids where it scores ids, else on the texts
    (a cascade: each member its own way). ``classifier``: the loaded model whose module
    ``model`` is (its ``answers.json`` sets the sentence section's band and flag); without it
    a bare module is wrapped as one. ``baseline_limit``: fit the baselines on a stratified, seeded
    sample of that many training reviews (None: all). ``sentences``: the half of the sentence
    sets the report reads (``dev``; ``heldout`` only for a shipped candidate's one report;
    None: no sentence section)."""
    dataset = data.test if split == "test" else data.valid
    start = time.perf_counter()
    probs = _split_probabilities(model, data, config, split, mixed_precision)
    extra = {"split": split, "data": config.data.source, "scoring_seconds":
             time.perf_counter() - start, **(extra or {})}
    if split == "test" and config.data.test_limit is not None:
        extra["limit"] = config.data.test_limit
    baselines = None
    if config.train.baseline:
        baselines, extra["baselines_fitted_on"] = _fitted_baselines(
            data.train, dataset["text"], baseline_limit, config.split_seed)
    output_dir = Path(output_dir)
    if split == "test":
        extra["deduplicated"] = deduplicated(dataset, probs, baselines,
                                             seen_elsewhere(data, config))
    extra.update(_reader_sections(model, classifier, data.vocab, config, sentences,
                                  mixed_precision))
    report = write_report(
        output_dir, dataset["label"], probs, dataset["text"], [len(x) for x in data.ids[split]],
        baselines, metrics_path=output_dir / "metrics.jsonl", extra=extra,
        label_names=config.model.head.labels,
        suffix=report_suffix(split) if suffix is None else suffix,
    )
    _log_accuracy(split, report)
    return report


def _reader_sections(model, classifier, vocab: Vocab, config: Config, sentences: str | None,
                     mixed_precision: bool) -> dict:
    """The report's sections that read short texts through the loaded classifier (a bare
    module wrapped as one): the CheckList suite (negative/positive models) and the sentences."""
    reader = classifier if classifier is not None else model
    if isinstance(reader, nn.Module):
        reader = SentimentModel(reader, vocab, config)
    found = {}
    if list(config.model.head.labels) == list(DEFAULT_LABELS):
        found["behaviour"] = behaviour(reader, vocab, config, mixed_precision)
    if sentences is not None:
        found["sentences"] = sentence_section(reader, sentences, batch_size=config.data.batch_size,
                                              mixed_precision=mixed_precision)
    return found


def baseline_sample(train: datasets.Dataset, limit: int | None, seed: int) -> datasets.Dataset:
    """``limit`` training reviews, stratified by label and seeded (all of them without a limit
    or with fewer): what the baselines are fitted on."""
    if limit is None or limit >= len(train):
        return train
    from sklearn.model_selection import train_test_split

    keep, _ = train_test_split(np.arange(len(train)), train_size=limit, random_state=seed,
                               stratify=np.asarray(train["label"]))
    return train.select(np.sort(keep))


def _fitted_baselines(train: datasets.Dataset, texts, limit: int | None, seed: int
                      ) -> tuple[dict, dict]:
    """The linear baselines fitted on ``train`` (at most ``limit`` of its reviews:
    :func:`baseline_sample`) and scored on ``texts``, and what they were fitted on."""
    start = time.perf_counter()
    trim_heap()
    sample = baseline_sample(train, limit, seed)
    baselines = fit_baselines(sample["text"], sample["label"], texts)
    how = ("all of them" if len(sample) == len(train) else
           f"a stratified sample seeded with {seed}: --baseline-limit {len(sample)}")
    logger.info("baselines fitted on %d of %d training reviews and scored in %.1fs",
                len(sample), len(train), time.perf_counter() - start)
    return baselines, {"reviews": len(sample), "of": len(train), "how": how}


def resolve_baseline_limit(baseline_limit: int | str | None, limit: int | None) -> int | None:
    """How many training reviews the baselines of ``sentiment evaluate`` are fitted on:
    ``"auto"`` is :data:`BOUNDED_BASELINES` when the scored reviews are bounded (``limit``),
    else all (None); a number is that number."""
    if baseline_limit == "auto":
        return BOUNDED_BASELINES if limit is not None else None
    if baseline_limit is not None and (isinstance(baseline_limit, bool)
                                       or not isinstance(baseline_limit, int)
                                       or baseline_limit < 1):
        raise ValueError(f"baseline_limit is 'auto', None (all) or a count >= 1, not "
                         f"{baseline_limit!r}")
    return baseline_limit


def _split_probabilities(model, data: PreparedData, config: Config, split: str,
                         mixed_precision: bool) -> np.ndarray:
    dataset = data.test if split == "test" else data.valid
    if isinstance(model, nn.Module):  # a bare PyTorch module, as training left it
        # the training's token budget: 64 of the longest reviews in one batch grew the peak
        # several times over (BENCHMARKS.md, "Inference: predict, files, serving")
        return score_ids(model, data.ids[split], config.data.batch_size,
                         data.vocab.pad_index or 0, config.data.max_length, mixed_precision,
                         config.data.max_tokens, keep=config.data.keep)
    if not supports(model, "score_ids"):
        return model.text_probabilities(list(dataset["text"]), config.data.batch_size,
                                        mixed_precision)
    limit = config.data.max_length  # as score_ids cuts them
    return model.with_wide(model.probabilities(
        [cut(ids, limit, config.data.keep) for ids in data.ids[split]],
        config.data.batch_size, mixed_precision=mixed_precision), dataset["text"])


def seen_elsewhere(data: PreparedData, config: Config) -> set[str]:
    """Every text of the training file and of the unlabelled reviews (``data.unlabelled``, or
    those beside the source when it has them): a test review identical to one of them may have
    been seen in training. A single file has none beside it (read as unlabelled, it would be
    itself, test rows and all)."""
    texts = set(data.train["text"]) | set(data.valid["text"])
    given, source = config.data.unlabelled, config.data.source
    alone = ("deduplicated the test split against the training file (no unlabelled reviews "
             "beside %s)")
    if given is None and Path(source).is_file():
        logger.info(alone, source)
        return texts
    try:
        texts |= set(load_unlabelled(given or source, config.data.unlabelled_column)["text"])
    except (OSError, ValueError) as error:
        if given is None and isinstance(error, FileNotFoundError):  # a folder without any
            logger.info(alone, source)
        else:  # unlabelled reviews named, or there, that could not be read: say why
            logger.warning("deduplicated the test split against the training file only: %s",
                           error)
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


def behaviour(model, vocab: Vocab, config: Config, mixed_precision: bool = True) -> dict:
    """The CheckList suite (:mod:`sentiment.report.checklist`) on a negative/positive classifier
    (a loaded one, or a bare PyTorch module), scored as ``predict`` scores texts."""
    if isinstance(model, nn.Module):
        model = SentimentModel(model, vocab, config)
    return model_checklist(model, mixed_precision)


def _log_accuracy(where: str, report: dict) -> None:
    logger.info("%s accuracy %.4f (n=%d)%s", where, report["accuracy"], report["n"],
                "".join(f"; {b['short_name']} {b['accuracy']:.4f}"
                        for b in report.get("baselines", [])))


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
    baseline_limit: int | str | None = "auto",
    sentences: str | None = "dev",
) -> dict:
    """Report on a saved model, with the data preprocessed and split exactly as its
    ``config.json`` says (``data`` may point to another copy of the same source;
    ``test_limit`` scores only that many test reviews). ``baseline_limit``: the training
    reviews the baselines are fitted on (:func:`resolve_baseline_limit`: by default
    :data:`BOUNDED_BASELINES` with a ``test_limit``, else all). ``sentences``: the half of the
    sentence sets read (:func:`evaluate_model`)."""
    if split not in ("test", "valid"):
        raise ValueError(f"split must be 'test' or 'valid', got {split!r}")
    loaded = load_model(model_dir, device)
    require(loaded, "evaluate", "compare it with python -m benchmarks.paired --models MODEL ... "
                                "on a split's file")
    overrides = {"batch_size": batch_size, "baseline": baseline}
    if test_limit is not None:
        overrides["test_limit"] = test_limit
    if data is not None:
        overrides["data"] = data
    config = apply_overrides(loaded.config, overrides)
    prepared = prepare_data(config, vocab=loaded.vocab)
    # an LSTM alone: its module, on the training's token budget; any other kind (ONNX, wide and
    # deep, a cascade): the loaded model itself, scored as predict scores it
    scored = (loaded.model if loaded.kind in ("lstm", "ensemble") and loaded.wide is None
              else loaded)
    # a quick report on a sample never replaces the whole split's: report-limit200.*
    limited = "" if test_limit is None or split != "test" else f"-limit{test_limit}"
    return evaluate_model(scored, prepared, output or model_dir, config, split,
                          extra={"model": str(model_dir)}, mixed_precision=mixed_precision,
                          classifier=loaded, sentences=sentences,
                          baseline_limit=resolve_baseline_limit(baseline_limit, test_limit),
                          suffix=report_suffix(split) + limited)


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
    baseline_limit: int | str | None = "auto",
    sentences: str | None = "dev",
) -> dict:
    """Report on how a saved model does on labelled data it was not trained on: every row of a
    file (or a folder's / hub dataset's ``split``), its columns and label values mapped onto the
    model's labels (:func:`~sentiment.data.sources.map_onto_labels`). The linear baselines are
    fitted on the model's *own* training reviews and scored on the same rows, so they cross
    domains too.
    ``limit``: score only the first that many rows. ``train_data``: where the model's training
    data is when not where its config says (a local copy of a hub dataset, say); without it at
    hand the report has no baselines and says why. ``baseline_limit``: how many of those
    reviews (:func:`resolve_baseline_limit`: by default :data:`BOUNDED_BASELINES` with a
    ``limit``, else all). The report's files are ``report.json`` / ``report.md`` in
    ``output``, ``report-SPLIT.*`` for another ``split`` than test of a folder or hub dataset.
    ``sentences``: the half of the sentence sets read (:func:`evaluate_model`)."""
    loaded = load_model(model_dir, device)
    rows, origin = read_labelled(data, text_column, label_column, split, rules)
    rows, mapped = map_onto_labels(rows, origin, loaded.labels, label_map, skip_labels)
    if limit is not None:
        rows = rows.select(range(min(limit, len(rows))))
    texts = rows["text"]
    start = time.perf_counter()
    probs, lengths = _scored(loaded, texts, batch_size, mixed_precision)
    seconds = time.perf_counter() - start
    baselines, extra = (_own_baselines(loaded, train_data, texts,
                                       resolve_baseline_limit(baseline_limit, limit))
                        if baseline else (None, {}))
    if sentences is not None:
        extra["sentences"] = sentence_section(loaded, sentences, batch_size=batch_size,
                                              mixed_precision=mixed_precision)
    report = write_report(
        output, rows["label"], probs, texts, lengths, baselines,
        extra={"split": "cross-domain", "model": str(model_dir), "data": origin,
               "trained_on": loaded.config.data.source, "label_mapping": mapped,
               "scoring_seconds": seconds, **({"limit": limit} if limit is not None else {}),
               **extra},
        label_names=loaded.labels,
        suffix="" if Path(data).is_file() else report_suffix(split),
    )
    _log_accuracy(origin, report)
    return report


def _scored(loaded, texts, batch_size: int, mixed_precision: bool
            ) -> tuple[np.ndarray, list[int]]:
    """``(probabilities, token counts)`` of ``texts``: on the training's token budget where the
    model scores ids, else (a routed model, a cascade) as predict scores it."""
    if supports(loaded, "score_ids"):
        ids = loaded.encode(texts)
        probs = loaded.with_wide(loaded.probabilities(  # wide and deep: the n-gram part too
            ids, batch_size, loaded.config.data.max_tokens, mixed_precision), texts)
        return probs, [len(x) for x in ids]
    return loaded.text_probabilities(texts, batch_size, mixed_precision), _token_counts(
        loaded, texts)


def _token_counts(loaded, texts) -> list[int]:
    """Each text's tokens as a composite's last member (its review model) reads them."""
    members = getattr(loaded, "members", None) or getattr(loaded, "stages", None) or [loaded]
    reader = next((m for m in reversed(members) if hasattr(m, "tokens")), None)
    if reader is None:
        return [len(text.split()) for text in texts]
    return [len(tokens) for tokens in reader.tokens(texts)]


def _own_baselines(loaded, train_data: str | None, texts, limit: int | None
                   ) -> tuple[dict | None, dict]:
    """The linear baselines fitted on ``loaded``'s own training reviews (at most ``limit``:
    :func:`baseline_sample`) and scored on ``texts``, and what they were fitted on; without
    those reviews at hand, none, and the report's note saying why."""
    own_data = loaded.config.data
    if train_data is not None:
        own_data = replace(own_data, source=str(train_data))
    try:
        own = classifier_splits(own_data, loaded.config.split_seed)["train"]
    except OSError as error:  # missing file, no network: the model travelled without it
        cause = error.what if isinstance(error, FetchError) else error  # its advice: --data
        note = (f"the model's training data {own_data.source} is not at hand ({cause}); point "
                "--train-data at a local copy, or give --no-baseline")
        logger.warning("no baselines: %s", note)
        return None, {"baseline_error": note}
    logger.info("baselines: fitted on the model's own training reviews from %s",
                own_data.source)
    baselines, fitted = _fitted_baselines(own, texts, limit, loaded.config.split_seed)
    return baselines, {"baselines_fitted_on": fitted}
