"""The evaluation report: metrics, calibration, baseline, plots (report.json, report.md, PNGs).

A report's files carry its split: ``report.json``, ``report.md`` and the plots for the test
split (the names cards and exports read), ``report-valid.json``, ``report-valid.md``,
``confusion_matrix-valid.png``... for another (:func:`report_suffix`), so that no report
replaces another split's."""

from __future__ import annotations

import json
import logging
import math
import time
from collections.abc import Sequence
from pathlib import Path

import numpy as np
from matplotlib.figure import Figure
from scipy.stats import binomtest
from sklearn.linear_model import LogisticRegression
from sklearn.metrics import (
    ConfusionMatrixDisplay,
    RocCurveDisplay,
    classification_report,
    confusion_matrix,
    f1_score,
    roc_auc_score,
)

from ..config import DEFAULT_LABELS
from ..jsonio import write_json
from ..kinds.decisions import class_probs, predicted_classes
from ..kinds.ngram import LinearModel, ngram_vectorizer
from .checklist import checklist_markdown

logger = logging.getLogger(__name__)
LENGTH_BUCKETS = (0, 128, 256, 512, 1024, math.inf)


def wilson_interval(correct: int, n: int, z: float = 1.96) -> tuple[float, float]:
    """95% Wilson score interval for a proportion."""
    if n == 0:
        return (float("nan"), float("nan"))
    p = correct / n
    centre = (p + z * z / (2 * n)) / (1 + z * z / n)
    half = z * math.sqrt(p * (1 - p) / n + z * z / (4 * n * n)) / (1 + z * z / n)
    return (centre - half, centre + half)


def paired_comparison(labels, predicted, other) -> dict:
    """This model against another on the same examples (paired): the accuracy difference with
    its 95% interval (Wald, on the discordant pairs) and McNemar's exact p-value. Overlapping
    per-model intervals hide that both models are scored on the same reviews; the paired
    interval is the one that says whether one is better."""
    labels, predicted, other = (np.asarray(x) for x in (labels, predicted, other))
    n = len(labels)
    right, other_right = predicted == labels, other == labels
    only_this, only_other = int((right & ~other_right).sum()), int((~right & other_right).sum())
    difference = (only_this - only_other) / n
    se = math.sqrt(max(only_this + only_other - (only_this - only_other) ** 2 / n, 0.0)) / n
    discordant = only_this + only_other
    p_value = float(binomtest(only_this, discordant, 0.5).pvalue) if discordant else 1.0
    return {"difference": difference, "difference_ci95": [difference - 1.96 * se,
                                                          difference + 1.96 * se],
            "only_this_right": only_this, "only_other_right": only_other,
            "mcnemar_p": p_value}


def calibration(labels: np.ndarray, probs: np.ndarray, bins: int = 10) -> dict:
    """Expected calibration error of the predicted label's confidence, with per-bin figures.
    ``probs``: P(positive) ``(N,)`` for two classes, or ``(N, C)``."""
    probs = class_probs(probs)
    predicted = predicted_classes(probs)
    confidence = probs[np.arange(len(probs)), predicted]
    correct = (predicted == np.asarray(labels)).astype(float)
    edges = np.linspace(1.0 / probs.shape[1], 1.0, bins + 1)
    which = np.clip(np.digitize(confidence, edges[1:-1]), 0, bins - 1)
    table, ece = [], 0.0
    for b in range(bins):
        mask = which == b
        if not mask.any():
            continue
        acc, conf = float(correct[mask].mean()), float(confidence[mask].mean())
        ece += mask.mean() * abs(acc - conf)
        table.append({"low": float(edges[b]), "high": float(edges[b + 1]), "count": int(mask.sum()),
                      "accuracy": acc, "confidence": conf})
    return {"ece": float(ece), "bins": table}


TFIDF_NAME = "TF-IDF (1-2-grams, sublinear tf, min_df 2) + LogisticRegression(C=16)"
NBLR_NAME = "NB-weighted binary 1-3-grams + LogisticRegression (NBSVM-style, Wang & Manning 2012)"


def _binary(labels: Sequence[int]) -> bool:
    """Two classes labelled 0 and 1 (what :class:`LinearModel` fits), or fewer."""
    return set(np.asarray(labels).tolist()) <= {0, 1}


def baseline_tfidf(
    train_texts: Sequence[str], train_labels: Sequence[int], test_texts: Sequence[str]
) -> np.ndarray:
    """TF-IDF (1-2-grams, sublinear tf, min_df 2) + LogisticRegression(C=16): P(positive) from
    :class:`LinearModel`'s ``tfidf_lr``, or ``(N, C)`` class probabilities for more than two
    classes (multinomial, on the same features)."""
    if _binary(train_labels):
        return LinearModel.fit("tfidf_lr", train_texts, train_labels).probs(test_texts)
    # float64, as before: lbfgs on float32 moved 16 of 1,000 3-class IMDB predictions
    vectorizer = ngram_vectorizer("tfidf_lr").set_params(dtype=np.float64)
    classifier = LogisticRegression(C=16, max_iter=1000, solver="lbfgs")  # multinomial
    classifier.fit(vectorizer.fit_transform(train_texts), train_labels)
    return classifier.predict_proba(vectorizer.transform(test_texts))


def baseline_nblr(
    train_texts: Sequence[str], train_labels: Sequence[int], test_texts: Sequence[str]
) -> np.ndarray:
    """Naive-Bayes-weighted binary 1-3-grams + logistic regression (Wang & Manning's NBSVM
    with an LR in place of the SVM), :class:`LinearModel`'s ``nb_lr``: P(positive)."""
    return LinearModel.fit("nb_lr", train_texts, train_labels).probs(test_texts)


BASELINES = {"tfidf_lr": (TFIDF_NAME, baseline_tfidf), "nb_lr": (NBLR_NAME, baseline_nblr)}


def fit_baselines(
    train_texts: Sequence[str], train_labels: Sequence[int], test_texts: Sequence[str]
) -> dict[str, np.ndarray]:
    """P(positive) on ``test_texts`` of every linear baseline, fitted on the training texts
    (class probabilities with more than two classes, where NB-LR, binary by design, is left
    out)."""
    binary = _binary(train_labels)
    return {key: fit(train_texts, train_labels, test_texts)
            for key, (_, fit) in BASELINES.items() if binary or key != "nb_lr"}


def accuracy_by_length(labels, probs, lengths) -> list[dict]:
    rows = []
    correct = predicted_classes(class_probs(probs)) == labels
    for low, high in zip(LENGTH_BUCKETS[:-1], LENGTH_BUCKETS[1:], strict=True):
        mask = (lengths > low) & (lengths <= high)
        if mask.any():
            rows.append({"tokens": f"{low + 1}-{high if high < math.inf else ''}",
                         "count": int(mask.sum()), "accuracy": float(correct[mask].mean())})
    return rows


def build_report(
    labels: Sequence[int],
    probs: Sequence[float],
    texts: Sequence[str],
    lengths: Sequence[int],
    baselines: dict[str, Sequence[float]] | None = None,
    num_wrong: int = 5,
    label_names: Sequence[str] = DEFAULT_LABELS,
) -> dict:
    """All figures of the report as a JSON-ready dictionary.

    ``baselines``: P(positive) of each baseline by key (:data:`BASELINES`), or a bare sequence
    for one unnamed baseline."""
    label_names = list(label_names)
    labels, probs, lengths = np.asarray(labels), np.asarray(probs), np.asarray(lengths)
    matrix = class_probs(probs)  # (N, C)
    classes = list(range(matrix.shape[1]))
    predicted = predicted_classes(matrix)
    n, correct = len(labels), int((predicted == labels).sum())
    report = {
        "n": n,
        "accuracy": correct / n,
        "accuracy_ci95": list(wilson_interval(correct, n)),
        "roc_auc": _roc_auc(labels, matrix),
        "macro_f1": float(f1_score(labels, predicted, labels=classes, average="macro",
                                   zero_division=0)),
        "classes": classification_report(labels, predicted, labels=classes,
                                         target_names=label_names, output_dict=True,
                                         zero_division=0),
        "confusion_matrix": confusion_matrix(labels, predicted, labels=classes).tolist(),
        "accuracy_by_length": accuracy_by_length(labels, probs, lengths),
        "calibration": calibration(labels, probs),
        "most_confidently_wrong": _most_confidently_wrong(labels, matrix, texts, num_wrong,
                                                          label_names),
        "label_names": label_names,
    }
    if baselines is not None:
        if not isinstance(baselines, dict):
            baselines = {"tfidf_lr": baselines}
        report["baselines"] = [_baseline_figures(key, baseline_probs, labels, predicted)
                               for key, baseline_probs in baselines.items()]
        report["baseline"] = report["baselines"][0]  # the first (TF-IDF), as before
    return report


def baseline_summary(report: dict) -> dict:
    """What a command prints of ``report``'s baselines: the best one's accuracy
    (``baseline_accuracy``, None without baselines) and each one's by name."""
    accuracies = {b["short_name"]: b["accuracy"] for b in report.get("baselines", [])}
    return {"baseline_accuracy": max(accuracies.values(), default=None), "baselines": accuracies}


def _most_confidently_wrong(labels: np.ndarray, matrix: np.ndarray, texts: Sequence[str],
                            num_wrong: int, label_names: list[str]) -> list[dict]:
    """The ``num_wrong`` wrong predictions of highest confidence, their texts cut at 300."""
    predicted = predicted_classes(matrix)
    confidence = matrix[np.arange(len(labels)), predicted]
    wrong = np.flatnonzero(predicted != labels)
    wrong = wrong[np.argsort(-confidence[wrong])][:num_wrong]
    return [{"label": label_names[labels[i]], "predicted": label_names[predicted[i]],
             "score": float(confidence[i]),
             "text": texts[i][:300] + ("…" if len(texts[i]) > 300 else "")}
            for i in wrong]


def _baseline_figures(key: str, probs, labels: np.ndarray, predicted: np.ndarray) -> dict:
    """One baseline's accuracy, interval and ROC AUC, and this model against it (paired)."""
    matrix = class_probs(probs)
    baseline_predicted = predicted_classes(matrix)
    n, correct = len(labels), int((baseline_predicted == labels).sum())
    return {
        "short_name": key,
        "name": BASELINES[key][0] if key in BASELINES else key,
        "accuracy": correct / n,
        "accuracy_ci95": list(wilson_interval(correct, n)),
        "roc_auc": _roc_auc(labels, matrix),
        "model_vs_baseline": paired_comparison(labels, predicted, baseline_predicted),
    }


def _roc_auc(labels: np.ndarray, probs: np.ndarray) -> float | None:
    """ROC AUC (one-vs-rest, macro, for more than two classes); None unless every class is
    present."""
    if len(set(labels.tolist())) != probs.shape[1]:
        return None
    if probs.shape[1] == 2:
        return float(roc_auc_score(labels, probs[:, 1]))
    return float(roc_auc_score(labels, probs, multi_class="ovr"))


def report_suffix(split: str | None) -> str:
    """What a report's file names carry for ``split``: nothing for the test split (and a report
    that names none), ``-valid`` for the validation split."""
    return "" if split in (None, "test") else f"-{split}"


def plot_report(report: dict, labels, probs, output_dir: Path, metrics_path: Path | None,
                suffix: str = "") -> list:
    """Write the PNG plots (each name ending in ``suffix``); returns their file names."""
    written = []
    saved = _plot_saver(output_dir, suffix, written)
    if metrics_path is not None and metrics_path.exists():
        records = [json.loads(line) for line in metrics_path.read_text().splitlines() if line]
        if records:
            epochs = [r["epoch"] for r in records]
            fig = Figure(figsize=(10, 4))
            ax_loss, ax_acc = fig.subplots(1, 2)
            for split in ("train", "valid"):
                ax_loss.plot(epochs, [r[f"{split}_loss"] for r in records], marker="o", label=split)
                key = f"{split}_accuracy"
                if key in records[0]:
                    ax_acc.plot(epochs, [r[key] for r in records], marker="o", label=split)
            ax_loss.set(xlabel="epoch", ylabel="loss", title="loss")
            ax_acc.set(xlabel="epoch", ylabel="accuracy", title="accuracy")
            ax_loss.legend()
            ax_acc.legend()
            fig.tight_layout()
            saved(fig, "training_curves")
    labels, probs = np.asarray(labels), np.asarray(probs)
    fig = Figure(figsize=(4, 4))
    ax = fig.subplots()
    ConfusionMatrixDisplay(np.asarray(report["confusion_matrix"]),
                           display_labels=report["label_names"]).plot(ax=ax, colorbar=False)
    fig.tight_layout()
    saved(fig, "confusion_matrix")
    if report["roc_auc"] is not None and probs.ndim == 1:
        fig = Figure(figsize=(4, 4))
        ax = fig.subplots()
        RocCurveDisplay.from_predictions(labels, probs, ax=ax, name="BiLSTM")
        fig.tight_layout()
        saved(fig, "roc")
    fig = Figure(figsize=(4, 4))
    ax = fig.subplots()
    bins = report["calibration"]["bins"]
    floor = 1.0 / len(report["label_names"])
    ax.plot([floor, 1], [floor, 1], linestyle="--", color="grey", label="perfect")
    ax.plot([b["confidence"] for b in bins], [b["accuracy"] for b in bins], marker="o",
            label=f"model (ECE {report['calibration']['ece']:.3f})")
    ax.set(xlabel="confidence", ylabel="accuracy", title="reliability")
    ax.legend()
    fig.tight_layout()
    saved(fig, "reliability")
    return written


def _plot_saver(output_dir: Path, suffix: str, written: list):
    """A function that saves a figure as ``NAME{suffix}.png`` and notes the name."""
    def save(fig: Figure, name: str) -> None:
        fig.savefig(output_dir / f"{name}{suffix}.png", dpi=100)
        written.append(f"{name}{suffix}.png")
    return save


def _fmt(value: float | None) -> str:
    return "—" if value is None else f"{value:.4f}"


def report_markdown(report: dict) -> str:
    """report.md: the headline figures, the baselines, the tables and the extra sections."""
    low, high = report["accuracy_ci95"]
    lines = [
        *_header_lines(report),
        f"- examples: {report['n']}",
        f"- **accuracy: {report['accuracy']:.4f}** (95% CI {low:.4f}–{high:.4f})",
        f"- ROC AUC: {report['roc_auc']:.4f}" if report["roc_auc"] is not None else "- ROC AUC: —",
        f"- macro-F1: {report['macro_f1']:.4f}",
        f"- expected calibration error: {report['calibration']['ece']:.4f}",
    ]
    if report.get("baselines"):
        lines += _baseline_lines(report)
    lines += _table_lines(report)
    lines += ["", "## Most confidently wrong", ""]
    for item in report["most_confidently_wrong"]:
        text = item["text"].replace("\n", " ").replace("|", "\\|")
        lines.append(f"- true **{item['label']}**, predicted {item['predicted']} "
                     f"(score {item['score']:.3f}): {text}")
    lines += ["", "Plots: " + ", ".join(report.get("plots", [])), ""]
    if report.get("deduplicated"):
        dedup = report["deduplicated"]
        lines += ["", "## Test reviews seen nowhere else", "",
                  f"{dedup['removed']} test reviews are identical to a text of the training "
                  f"file or the unlabelled reviews; on the other {dedup['n']}: accuracy "
                  f"{dedup['accuracy']:.4f}"
                  + "".join(f", {name} {value:.4f}" for name, value in dedup["baselines"].items())
                  + "."]
    if report.get("behaviour"):
        lines += ["", "## Behaviour on short texts (CheckList)", "",
                  checklist_markdown(report["behaviour"])]
    if report.get("sentences"):
        lines += _sentence_lines(report["sentences"])
    return "\n".join(lines)


def _header_lines(report: dict) -> list[str]:
    """report.md's title and what was read: the split and the data (for a cross-domain report,
    the file or split scored and the data the model was trained on), and the model."""
    split, data = report.get("split"), report.get("data")
    if split == "cross-domain":
        lines = [f"# Evaluation report: cross-domain, {data}", "",
                 f"- split: cross-domain (every row of {data}); the model was trained on "
                 f"{report.get('trained_on', 'data not named')}"]
    else:
        title = f"{split} split" if split else "one split"
        lines = [f"# Evaluation report: {title}" + (f" of {data}" if data else ""), "",
                 f"- split: {split or 'not named'}"]
        if data:
            limit = report.get("limit")
            lines.append(f"- data: {data}" + (f" (a seeded sample of {limit} of the split's "
                                              "reviews: --limit)" if limit else ""))
    if report.get("model"):
        lines.append(f"- model: {report['model']}")
    return lines


def _sentence_lines(section: dict) -> list[str]:
    """report.md's sentence section (:mod:`sentiment.report.sentences`)."""
    lines = ["", f"## Sentences (benchmarks/sentences, {section['half']} half)", ""]
    if section.get("skipped"):
        return lines + [f"Skipped: {section['skipped']}."]
    lines.append("- lines read: " + ", ".join(f"{n} {name}"
                                              for name, n in section["lines"].items()))
    if section.get("note"):
        lines.append(f"- {section['note']}")
    if section.get("opinions"):
        opinions = section["opinions"]
        lines.append(f"- opinions: accuracy {_fmt(opinions['accuracy'])} (two labels, no band), "
                     f"expected calibration error {_fmt(opinions['ece'])}")
    flags = section["unreadable"]
    lines.append(f"- flagged unreadable (known words under {flags['below']}): "
                 f"{_fmt(flags['foreign'])} of {flags['n_foreign']} foreign lines, "
                 f"{_fmt(flags['english'])} of {flags['n_english']} English lines")
    if section.get("neutral"):
        neutral = section["neutral"]
        own = neutral["model_band"]
        lines += ["", "Facts inside a neutral band (P(positive) strictly inside it), among the "
                  "English lines:", "", "| band | precision | recall | opinions outside and "
                  "right |", "| --- | --- | --- | --- |",
                  "| the model's own: " + ("no band | — | — | — |" if own is None else
                                           _band_cells(own))]
        lines += [f"| half-width {row['half_width']}: {_band_cells(row)}"
                  for row in neutral["by_half_width"]]
    return lines


def _band_cells(row: dict) -> str:
    low, high = row["band"]
    return (f"({low:.2f}, {high:.2f}) | {_fmt(row['precision'])} | {_fmt(row['recall'])} | "
            f"{_fmt(row['opinions_outside_and_right'])} |")


def _baseline_lines(report: dict) -> list[str]:
    """report.md's baseline tables: each model's figures, then this model against each."""
    low, high = report["accuracy_ci95"]
    fitted = report.get("baselines_fitted_on")
    lines = [
        "", "## Against the baselines (fitted on the same training split)", "",
        *([f"Fitted on {fitted['reviews']:,} of the {fitted['of']:,} training reviews "
           f"({fitted['how']}).", ""] if fitted else []),
        "| model | accuracy | 95% CI | ROC AUC |", "| --- | --- | --- | --- |",
        f"| this model | {report['accuracy']:.4f} | {low:.4f}–{high:.4f} | "
        f"{_fmt(report['roc_auc'])} |",
    ]
    lines += [f"| {b['name']} | {b['accuracy']:.4f} | {b['accuracy_ci95'][0]:.4f}–"
              f"{b['accuracy_ci95'][1]:.4f} | {_fmt(b['roc_auc'])} |"
              for b in report["baselines"]]
    lines += ["", "Paired, on the same examples (this model minus the baseline):", "",
              "| baseline | accuracy difference | 95% CI | only this model right | "
              "only the baseline right | McNemar p |", "| --- | --- | --- | --- | --- | --- |"]
    for b in report["baselines"]:
        c = b["model_vs_baseline"]
        lines.append(f"| {b['name']} | {c['difference']:+.4f} | "
                     f"{c['difference_ci95'][0]:+.4f} to {c['difference_ci95'][1]:+.4f} | "
                     f"{c['only_this_right']} | {c['only_other_right']} | "
                     f"{c['mcnemar_p']:.2g} |")
    return lines


def _table_lines(report: dict) -> list[str]:
    """report.md's per-class, confusion-matrix and accuracy-by-length tables."""
    names = report["label_names"]
    lines = ["", "## Per class", "", "| class | precision | recall | F1 | support |",
             "| --- | --- | --- | --- | --- |"]
    for name in names:
        row = report["classes"][name]
        lines.append(f"| {name} | {row['precision']:.4f} | {row['recall']:.4f} | "
                     f"{row['f1-score']:.4f} | {row['support']:.0f} |")
    lines += ["", "## Confusion matrix (rows: true, columns: predicted)", "",
              "| | " + " | ".join(names) + " |", "| --- " * (len(names) + 1) + "|"]
    lines += [f"| {name} | " + " | ".join(str(v) for v in row) + " |"
              for name, row in zip(names, report["confusion_matrix"], strict=True)]
    lines += ["", "## Accuracy by review length (tokens)", "",
              "| tokens | reviews | accuracy |", "| --- | --- | --- |"]
    lines += [f"| {r['tokens']} | {r['count']} | {r['accuracy']:.4f} |"
              for r in report["accuracy_by_length"]]
    return lines


def write_report(
    output_dir: str | Path,
    labels, probs, texts, lengths,
    baselines=None,
    metrics_path: str | Path | None = None,
    extra: dict | None = None,
    label_names: Sequence[str] = DEFAULT_LABELS,
    suffix: str = "",
) -> dict:
    """Build the report and write report.json, report.md and the plots into ``output_dir``,
    each name ending in ``suffix`` (:func:`report_suffix`: ``-valid`` for a report on the
    validation split, so that it replaces no test report)."""
    output_dir = Path(output_dir)
    output_dir.mkdir(parents=True, exist_ok=True)
    report = build_report(labels, probs, texts, lengths, baselines, label_names=label_names)
    report.update(extra or {})
    report["plots"] = plot_report(report, labels, probs, output_dir,
                                  Path(metrics_path) if metrics_path else None, suffix)
    report["created"] = time.strftime("%Y-%m-%dT%H:%M:%S")
    write_json(output_dir / f"report{suffix}.json", report)
    (output_dir / f"report{suffix}.md").write_text(report_markdown(report), encoding="utf-8")
    return report
