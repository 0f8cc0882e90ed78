from __future__ import annotations

import json

import numpy as np
import pytest

from sentiment.report.metrics import (
    build_report,
    calibration,
    paired_comparison,
    wilson_interval,
    write_report,
)


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


def test_paired_comparison_counts_discordant_pairs_and_tests_them():
    labels = np.array([1, 0] * 500)
    this = labels.copy()
    other = labels.copy()
    this[:30] = 1 - this[:30]  # this model wrong on 30 reviews
    other[30:90] = 1 - other[30:90]  # the other wrong on 60 others
    result = paired_comparison(labels, this, other)
    assert result["only_this_right"] == 60 and result["only_other_right"] == 30
    assert result["difference"] == pytest.approx(0.03)
    low, high = result["difference_ci95"]
    assert 0 < low < 0.03 < high  # se = sqrt(90 - 900/1000)/1000
    assert low == pytest.approx(0.03 - 1.96 * np.sqrt(90 - 0.9) / 1000)
    assert result["mcnemar_p"] == pytest.approx(0.002060, abs=1e-6)  # exact binomial, 60 of 90
    same = paired_comparison(labels, this, this)
    assert same["difference"] == 0 and same["mcnemar_p"] == 1.0
    report = build_report(labels, this.astype(float), ["t"] * 1000, [5] * 1000,
                          {"tfidf_lr": other.astype(float)})
    assert report["baseline"]["model_vs_baseline"]["only_this_right"] == 60


def test_reports_score_in_token_budgeted_batches(trained_model, synthetic_dir, tmp_path,
                                                 monkeypatch):
    """A report scores in batches cut by the model's token budget, as training does: without
    one, 64 of IMDB's longest reviews made one ~160,000-token batch (764 MB more at its peak,
    BENCHMARKS.md), and the scores are the same either way."""
    from sentiment.kinds import lstm
    from sentiment.kinds.checkpoint import read_config
    from sentiment.train import evaluation

    budgets, real = [], evaluation.score_ids

    def recording(*args, **kwargs):
        budgets.append(kwargs.get("max_tokens", args[6] if len(args) > 6 else None))
        return real(*args, **kwargs)

    monkeypatch.setattr(evaluation, "score_ids", recording)  # a bare module, as trained
    monkeypatch.setattr(lstm, "score_ids", recording)  # a loaded model (cross-domain)
    budget = read_config(trained_model).data.max_tokens
    assert budget
    saved = evaluation.evaluate_saved_model(trained_model, str(synthetic_dir), baseline=False,
                                          output=tmp_path / "saved")
    crossed = evaluation.evaluate_cross_domain(trained_model, synthetic_dir / "test.jsonl",
                                             tmp_path / "cross", baseline=False)
    # the saved model's split, the cross-domain rows and the CheckList suite: every batch cut
    assert len(budgets) >= 2 and set(budgets) == {budget}, budgets
    assert saved["accuracy"] == crossed["accuracy"]


def test_a_valid_report_leaves_the_test_report_alone_and_headers_name_split_and_data(
        trained_model, synthetic_dir, tmp_path):
    """sentiment evaluate --split valid writes report-valid.* beside the test report, whose
    bytes do not change; each report's header names its split and its data (issue 42)."""
    import shutil

    from sentiment.cli import main as commands

    model = tmp_path / "model"
    shutil.copytree(trained_model, model, ignore=shutil.ignore_patterns("cross-domain-*"))
    test_files = ["report.json", "report.md", "confusion_matrix.png", "roc.png",
                  "reliability.png", "training_curves.png"]
    before = {name: (model / name).read_bytes() for name in test_files}
    assert commands.run("evaluate", ["--model", str(model), "--data", str(synthetic_dir),
                                     "--split", "valid", "--no-baseline"]) == 0
    assert {name: (model / name).read_bytes() for name in test_files} == before
    valid = json.loads((model / "report-valid.json").read_text())
    assert valid["split"] == "valid" and valid["data"] == str(synthetic_dir)
    assert valid["plots"] == ["training_curves-valid.png", "confusion_matrix-valid.png",
                              "roc-valid.png", "reliability-valid.png"]
    assert all((model / name).stat().st_size > 0 for name in valid["plots"])
    header = (model / "report-valid.md").read_text().splitlines()[:4]
    assert header[0] == f"# Evaluation report: valid split of {synthetic_dir}"
    assert f"- data: {synthetic_dir}" in header and "- split: valid" in header
    trained = (model / "report.md").read_text().splitlines()
    assert trained[0] == f"# Evaluation report: test split of {synthetic_dir}"
    # a quick report on a sample of the test split never replaces the whole split's
    whole = (model / "report.json").read_text()
    assert commands.run("evaluate", ["--model", str(model), "--data", str(synthetic_dir),
                                     "--limit", "20", "--no-baseline"]) == 0
    quick = (model / "report-limit20.md").read_text().splitlines()
    assert quick[0] == f"# Evaluation report: test split of {synthetic_dir}"
    assert "a seeded sample of 20" in quick[3]
    assert json.loads((model / "report-limit20.json").read_text())["n"] == 20
    assert (model / "report.md").read_text().splitlines() == trained
    assert (model / "report.json").read_text() == whole
    assert json.loads((model / "report-valid.json").read_text()) == valid


def test_baselines_are_bounded_with_a_limit_and_the_report_says_on_how_many(
        trained_model, synthetic_dir, tmp_path):
    from sentiment.train import evaluation

    assert evaluation.resolve_baseline_limit("auto", 200) == evaluation.BOUNDED_BASELINES == 2000
    assert evaluation.resolve_baseline_limit("auto", None) is None
    assert evaluation.resolve_baseline_limit(None, 200) is None
    assert evaluation.resolve_baseline_limit(300, None) == 300
    with pytest.raises(ValueError, match="count >= 1"):
        evaluation.resolve_baseline_limit(0, None)
    report = evaluation.evaluate_saved_model(trained_model, str(synthetic_dir), test_limit=50,
                                             baseline_limit=300, output=tmp_path / "bounded",
                                             sentences=None)
    fitted = report["baselines_fitted_on"]
    assert fitted["reviews"] == 300 and fitted["of"] == 1800 and "stratified" in fitted["how"]
    assert report["n"] == 50 and len(report["baselines"]) == 2 and "sentences" not in report
    assert "Fitted on 300 of the 1,800 training reviews" in (
        tmp_path / "bounded" / "report-limit50.md").read_text()  # a sample's own report
    # the sample: stratified and seeded, the same reviews each time
    from sentiment.train.prepare import classifier_splits

    config = report_config(trained_model)
    train = classifier_splits(config.data, config.split_seed)["train"]
    sample = evaluation.baseline_sample(train, 300, config.split_seed)
    assert sum(sample["label"]) == 150 and sample["text"] == evaluation.baseline_sample(
        train, 300, config.split_seed)["text"]
    # without --limit: every training review (--limit's default bound, 2,000, exceeds 1,800)
    whole = evaluation.evaluate_saved_model(trained_model, str(synthetic_dir), sentences=None,
                                            output=tmp_path / "whole")
    assert whole["baselines_fitted_on"] == {"reviews": 1800, "of": 1800, "how": "all of them"}
    crossed = evaluation.evaluate_cross_domain(trained_model, synthetic_dir / "test.jsonl",
                                               tmp_path / "cross", limit=40, baseline_limit=200,
                                               sentences=None)
    assert crossed["baselines_fitted_on"]["reviews"] == 200 and crossed["n"] == 40


def report_config(folder):
    from sentiment.kinds.checkpoint import read_config

    return read_config(folder)


def test_the_summary_names_the_best_baseline_not_the_first():
    from sentiment.report.metrics import baseline_summary

    report = {"baselines": [{"short_name": "tfidf_lr", "accuracy": 0.852},
                            {"short_name": "nb_lr", "accuracy": 0.872}]}
    assert baseline_summary(report) == {"baseline_accuracy": 0.872,
                                        "baselines": {"tfidf_lr": 0.852, "nb_lr": 0.872}}
    assert baseline_summary({}) == {"baseline_accuracy": None, "baselines": {}}
