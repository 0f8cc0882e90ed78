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
    shown = script(name, "--help")  # one run: each imports the package (~6 s)
    assert "--model" in shown or "--output" in shown


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


def test_tcmalloc_re_exec_depends_on_opt_out_and_ram(monkeypatch, tmp_path):
    from types import SimpleNamespace

    from sentiment.cli import options as cli

    library = tmp_path / "libtcmalloc_minimal.so.4"
    library.write_bytes(b"")
    monkeypatch.setattr(cli, "TCMALLOC_PATHS", (str(library),))
    calls = []
    monkeypatch.setattr(cli.os, "execve", lambda exe, argv, env: calls.append(env["LD_PRELOAD"]))
    monkeypatch.delenv("LD_PRELOAD", raising=False)
    monkeypatch.delenv("SENTIMENT_NO_TCMALLOC", raising=False)
    monkeypatch.delenv("SENTIMENT_TCMALLOC", raising=False)

    def ram(gib):
        memory = SimpleNamespace(total=gib * 2**30)
        monkeypatch.setattr(cli.psutil, "virtual_memory", lambda: memory)

    ram(64)
    cli.use_tcmalloc()
    assert calls == [str(library)]
    ram(8)  # too little RAM for tcmalloc's retained memory: glibc stays
    cli.use_tcmalloc()
    assert len(calls) == 1
    monkeypatch.setenv("SENTIMENT_TCMALLOC", "1")  # unless asked for
    cli.use_tcmalloc()
    assert len(calls) == 2
    ram(64)
    monkeypatch.setenv("SENTIMENT_NO_TCMALLOC", "1")
    cli.use_tcmalloc()
    assert len(calls) == 2


def test_profile_step_times_each_precision():
    from sentiment.runtime.precision import cpu_has_native_bf16

    out = script("profile_step.py", "--repeats", "1")
    lines = [line for line in out.splitlines() if "tokens/s" in line]
    names = [line.split("  ")[0].strip() for line in lines]
    assert names == (["float32", "bfloat16"] if cpu_has_native_bf16() else ["float32"])
    assert all(float(line.split()[-2]) > 0 for line in lines)


def test_every_scripts_help_keeps_its_examples_and_names_files_that_exist():
    """A docstring shown as --help keeps its examples' line continuations (a plain string ate
    them into runs of spaces) and names only files that exist."""
    import ast
    import re

    root = Path(__file__).resolve().parents[1]
    for path in sorted((root / "scripts").glob("*.py")):
        doc = ast.get_docstring(ast.parse(path.read_text()), clean=False) or ""
        assert not re.search(r"\S {6,}--", doc), path.name
        for named in re.findall(r"(?:benchmarks|docs|sentiment)/[\w./-]+\.(?:json|md|py)", doc):
            assert (root / named).exists(), (path.name, named)
