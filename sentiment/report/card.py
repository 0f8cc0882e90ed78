"""A shipped model's ``card.json``, generated from its evaluation report so that the card cannot
drift from the measurement: the figures come from ``report.json`` as written by
``sentiment evaluate``; what no report holds (the commands that made the model, how it was
chosen, every read of the test split) comes from a provenance file written by hand."""

from __future__ import annotations

from pathlib import Path

from ..jsonio import read_json, write_json

PROVENANCE_FIELDS = ("weights", "data", "commands", "selected_on", "test_reads")


def build_card(report: dict, provenance: dict) -> dict:
    """The card: the report's test figures and paired baseline comparisons, then
    ``provenance``. ``provenance["test_reads"]`` lists every read of the test split made while
    developing the model (one ``{"date", "what"}`` each); the card counts them."""
    if report.get("split") != "test":
        raise ValueError(f"a card is made from a report on the test split, not on "
                         f"{report.get('split')!r}")
    missing = [name for name in PROVENANCE_FIELDS if name not in provenance]
    if missing:
        raise ValueError(f"the provenance file lacks {missing}; it needs {list(PROVENANCE_FIELDS)}")
    reads = provenance["test_reads"]
    if not isinstance(reads, list) or not reads:
        raise ValueError("test_reads must list every read of the test split (at least the one "
                         "this card's report made)")
    card = {
        "test_accuracy": report["accuracy"],
        "test_accuracy_ci95": report["accuracy_ci95"],
        "n_test": report["n"],
        "roc_auc": report["roc_auc"],
        "macro_f1": report["macro_f1"],
        "ece": report["calibration"]["ece"],
        "baselines": {
            baseline["short_name"]: {
                "accuracy": baseline["accuracy"],
                "accuracy_ci95": baseline["accuracy_ci95"],
                "model_minus_baseline": baseline["model_vs_baseline"]["difference"],
                "model_minus_baseline_ci95": baseline["model_vs_baseline"]["difference_ci95"],
                "only_model_right": baseline["model_vs_baseline"]["only_this_right"],
                "only_baseline_right": baseline["model_vs_baseline"]["only_other_right"],
                "mcnemar_p": baseline["model_vs_baseline"]["mcnemar_p"],
            } for baseline in report.get("baselines", [])},
        "deduplicated": report.get("deduplicated"),
        "scoring_seconds": report.get("scoring_seconds"),
        "report_created": report.get("created"),
    }
    return {**card, **provenance, "test_reads_count": len(reads)}


def write_card(model_dir: str | Path, report_path: str | Path,
               provenance_path: str | Path) -> Path:
    """Write ``card.json`` into ``model_dir`` from a report and a provenance file."""
    card = build_card(read_json(report_path), read_json(provenance_path))
    return write_json(Path(model_dir) / "card.json", card)
