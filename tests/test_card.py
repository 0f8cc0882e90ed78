"""card.json is generated from an evaluation report, never written by hand."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

from sentiment.report.card import build_card

ROOT = Path(__file__).resolve().parents[1]
PROVENANCE = {"weights": "float16", "data": "synthetic", "commands": ["sentiment train"],
              "selected_on": "validation", "test_reads": [{"date": "2026-12-02", "what": "x"}]}


def test_export_writes_the_card_from_the_report(trained_model, synthetic_dir, tmp_path):
    from sentiment.train.evaluation import evaluate_saved_model

    report = evaluate_saved_model(trained_model, str(synthetic_dir), output=tmp_path / "report")
    (tmp_path / "provenance.json").write_text(json.dumps(PROVENANCE))
    result = subprocess.run(
        [sys.executable, str(ROOT / "scripts" / "export_model.py"), str(trained_model),
         str(tmp_path / "shipped"), "--report", str(tmp_path / "report" / "report.json"),
         "--provenance", str(tmp_path / "provenance.json")],
        capture_output=True, text=True, timeout=300)
    assert result.returncode == 0, result.stderr
    card = json.loads((tmp_path / "shipped" / "card.json").read_text())
    assert card["test_accuracy"] == report["accuracy"] and card["n_test"] == report["n"]
    assert card["baselines"]["tfidf_lr"]["accuracy"] == report["baselines"][0]["accuracy"]
    assert card["test_reads_count"] == 1 and card["commands"] == ["sentiment train"]


def test_a_card_needs_a_test_report_and_its_test_reads():
    report = {"split": "valid", "accuracy": 0.9, "accuracy_ci95": [0.8, 0.95], "n": 10,
              "roc_auc": 0.9, "macro_f1": 0.9, "calibration": {"ece": 0.1}}
    with pytest.raises(ValueError, match="test split"):
        build_card(report, PROVENANCE)
    report["split"] = "test"
    assert build_card(report, PROVENANCE)["test_accuracy"] == 0.9
    with pytest.raises(ValueError, match="test_reads"):
        build_card(report, {**PROVENANCE, "test_reads": []})
    with pytest.raises(ValueError, match="selected_on"):
        build_card(report, {k: v for k, v in PROVENANCE.items() if k != "selected_on"})


TRAINED_AS_CARDS_SAY = ("dropout", "input_dropout", "output_dropout", "ema_decay", "adversarial",
                        "lr", "schedule", "warmup", "max_tokens", "batch_size", "hidden_dim",
                        "num_layers", "embed_dim", "temperature", "hard_weight")


@pytest.mark.parametrize("name", ["imdb/sentences", "imdb/reviews", "imdb-fast"])
def test_a_shipped_cards_training_command_gives_its_models_settings(name):
    """The card's training command, parsed with today's defaults, yields the settings the shipped
    model was trained with: a change of a default must spell the old value out in the card."""
    import shlex

    from sentiment.cli.options import parse_config
    from sentiment.config import Config, leaf_fields
    from sentiment.train import recipe as pipeline

    folder = ROOT / "sentiment" / "models" / name
    card = json.loads((folder / "card.json").read_text())
    exported = next(c.split()[2] for c in card["commands"]  # "... export_model.py RUN FOLDER"
                    if "export_model.py" in c and "--card-only" not in c)
    command = next(c for c in card["commands"]
                   if "train_sentiment.py" in c and f"--output {exported}" in c)
    argv = shlex.split(command)[2:]
    parsed = parse_config("", pipeline.PRESETS, pipeline.make_config, argv=argv)
    saved = Config.from_dict(json.loads((folder / "config.json").read_text()))

    def value(config, name):
        section, field = leaf_fields(config)[name]
        return getattr(section, field.name)

    for name in TRAINED_AS_CARDS_SAY:
        if parsed.model.encoder and name in ("hidden_dim", "num_layers", "embed_dim"):
            continue  # an encoder's architecture comes from the encoder
        assert value(parsed, name) == value(saved, name), name
