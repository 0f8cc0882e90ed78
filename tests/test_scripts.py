from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]


def script(name, *args, stdin=None):
    result = subprocess.run([sys.executable, str(ROOT / "scripts" / name), *map(str, args)],
                            capture_output=True, text=True, input=stdin, timeout=600,
                            env={**os.environ, "SENTIMENT_NO_TCMALLOC": "1"})
    assert result.returncode == 0, result.stderr[-3000:]
    return result.stdout


@pytest.mark.parametrize("name", ["train_sentiment.py", "evaluate.py", "predict.py"])
def test_help_lists_options(name):
    assert "--model" in script(name, "--help") or "--output" in script(name, "--help")


def test_train_evaluate_predict_end_to_end(synthetic_dir, tmp_path):
    output = tmp_path / "run"
    summary = json.loads(script("train_sentiment.py", "--preset", "tiny", "--data", synthetic_dir,
                                "--output", output, "--epochs", 4, "--no-progress"))
    assert summary["test_accuracy"] > 0.9 and summary["baseline_accuracy"] > 0.9
    for name in ("config.json", "vocab.json", "model.safetensors", "metrics.jsonl",
                 "report.json", "report.md", "roc.png"):
        assert (output / name).exists(), name
    evaluated = json.loads(script("evaluate.py", "--model", output, "--data", synthetic_dir,
                                  "--output", tmp_path / "eval", "--no-baseline"))
    assert evaluated["accuracy"] == pytest.approx(summary["test_accuracy"])
    lines = script("predict.py", "--model", output, "Brilliant and moving.", "Awful, dull.")
    labels = [json.loads(line)["label"] for line in lines.splitlines()]
    assert labels == ["positive", "negative"]
    piped = script("predict.py", "--model", output, stdin="Superb!\n\nThe worst.\n")
    assert [json.loads(x)["label"] for x in piped.splitlines()] == ["positive", "negative"]


def test_bad_option_is_rejected():
    result = subprocess.run([sys.executable, str(ROOT / "scripts" / "train_sentiment.py"),
                             "--epochs", "many"], capture_output=True, text=True)
    assert result.returncode != 0 and "--epochs" in result.stderr
    result = subprocess.run([sys.executable, str(ROOT / "scripts" / "predict.py"),
                             "--model", "/nonexistent", "hi"], capture_output=True, text=True)
    assert result.returncode != 0 and "train_sentiment.py" in result.stderr
