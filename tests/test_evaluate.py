from __future__ import annotations

import json

import numpy as np
import pytest

from sentiment.evaluate import build_report, calibration, wilson_interval, write_report


def test_wilson_interval():
    low, high = wilson_interval(90, 100)
    assert low == pytest.approx(0.8256, abs=1e-3) and high == pytest.approx(0.9448, abs=1e-3)


def test_calibration_of_a_perfectly_calibrated_and_an_overconfident_model():
    labels = np.array([1] * 8 + [0] * 2)
    assert calibration(labels, np.full(10, 0.8))["ece"] == pytest.approx(0.0)
    assert calibration(labels, np.full(10, 1.0))["ece"] == pytest.approx(0.2)


def test_report_figures_and_files(tmp_path):
    labels = [0, 0, 1, 1, 1, 0]
    probs = [0.1, 0.9, 0.8, 0.7, 0.4, 0.2]
    texts = [f"review {i}" for i in range(6)]
    report = build_report(labels, probs, texts, [10, 200, 300, 600, 1500, 50], [0.2] * 6)
    assert report["accuracy"] == pytest.approx(4 / 6) and report["n"] == 6
    assert report["confusion_matrix"] == [[2, 1], [1, 2]]
    assert report["most_confidently_wrong"][0]["text"] == "review 1"
    assert report["baseline"]["accuracy"] == pytest.approx(0.5)
    assert sum(r["count"] for r in report["accuracy_by_length"]) == 6
    (tmp_path / "metrics.jsonl").write_text(json.dumps(
        {"epoch": 1, "train_loss": 0.5, "valid_loss": 0.6, "train_accuracy": 0.7,
         "valid_accuracy": 0.6}) + "\n")
    write_report(tmp_path, labels, probs, texts, [1] * 6, [0.2] * 6, tmp_path / "metrics.jsonl")
    saved = json.loads((tmp_path / "report.json").read_text())
    assert saved["accuracy"] == pytest.approx(4 / 6) and "baseline" in saved
    for name in ("report.md", "training_curves.png", "confusion_matrix.png", "roc.png",
                 "reliability.png"):
        assert (tmp_path / name).stat().st_size > 0
    assert "Against the baseline" in (tmp_path / "report.md").read_text()
