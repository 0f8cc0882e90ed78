"""The learning curve's distilled rows: a teacher built from the size's own labels only, a
student trained from it, both read on the same test reviews; nothing trained twice."""

from __future__ import annotations

import json
import sys

from benchmarks import learning_curve


def test_distilled_rows_use_a_teacher_of_the_same_labels(trained_model, synthetic_dir, tmp_path,
                                                         monkeypatch):
    output = tmp_path / "curve"
    argv = ["learning_curve", "--data", str(synthetic_dir), "--encoder", str(trained_model),
            "--sizes", "400", "--variants", "distilled", "--test-limit", "100",
            "--epochs", "1", "--unlabelled-limit", "150", "--output", str(output),
            "--student-options", "--epochs 1 --patience none --hard-weight 0.3"]
    monkeypatch.setattr(sys, "argv", argv)
    learning_curve.main()
    rows = json.loads((output / "curve.json").read_text())
    assert [(r["size"], r["variant"]) for r in rows] == [(400, "distilled")]
    row = rows[0]
    assert 0.5 < row["accuracy"] <= 1 and row["n_test"] == 100
    assert 0 < row["nb_lr"] <= 1 and 0 < row["tfidf_lr"] <= 1
    # the teacher: the size's pretrained classifier (trained first, since it was missing)
    # and the two linear members, stacked on the subset's 40 validation reviews
    stack = json.loads((output / "teacher-400" / "stack.json").read_text())
    assert [m.rsplit("/", 1)[-1] for m in stack["members"]] == [
        "pretrained-400", "linear-nb_lr", "linear-tfidf_lr"]
    assert stack["split"]["train_limit"] == 400 and stack["validation"]["n"] == 40
    assert row["teacher_validation"] == stack["validation"]
    assert (output / "pretrained-400" / "report.json").exists()
    # the student: the teacher's soft labels on 150 unlabelled reviews, its own options
    student = json.loads((output / "distilled-400" / "config.json").read_text())
    assert student["train"]["teacher"] == str(output / "teacher-400")
    assert student["train"]["hard_weight"] == 0.3 and student["train"]["epochs"] == 1
    assert student["data"]["unlabelled_limit"] == 150 and student["data"]["train_limit"] == 400
    report = json.loads((output / "distilled-400" / "report.json").read_text())
    assert report["training"]["distillation"]["unlabelled"] == 150
    table = (output / "curve.md").read_text()
    assert "distilled (own teacher)" in table and f"{row['accuracy']:.4f}" in table
    # a second run reuses every model: nothing is trained again
    stamps = {p: p.stat().st_mtime_ns for p in output.rglob("*.safetensors")}
    learning_curve.main()
    assert {p: p.stat().st_mtime_ns for p in output.rglob("*.safetensors")} == stamps
