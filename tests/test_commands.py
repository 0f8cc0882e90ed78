"""The ``sentiment`` command: subcommands, help, and one-line errors for user mistakes."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from sentiment.cli import main as commands


@pytest.mark.parametrize("name", sorted(commands.COMMANDS))
def test_every_command_has_help(name, capsys):
    with pytest.raises(SystemExit) as exit_info:
        commands.main([name, "--help"])
    assert exit_info.value.code == 0
    assert f"sentiment {name}" in capsys.readouterr().out


def test_top_level_help_lists_the_commands(capsys):
    assert commands.main(["--help"]) == 0
    out = capsys.readouterr().out
    assert all(name in out for name in commands.COMMANDS)
    assert commands.main([]) == 2


def test_version(capsys):
    from importlib.metadata import version

    with pytest.raises(SystemExit) as exit_info:
        commands.main(["--version"])
    assert exit_info.value.code == 0
    assert capsys.readouterr().out.strip() == f"sentiment {version('sentiment-lstm')}"


def test_each_training_command_offers_only_its_own_flags(capsys):
    def flags(name):
        with pytest.raises(SystemExit):
            commands.main([name, "--help"])
        return capsys.readouterr().out

    charlm, classifier, word_lm = flags("train-charlm"), flags("train"), flags("pretrain")
    for flag in ("--labels", "--pooling", "--adversarial", "--encoder", "--vectors",
                 "--evaluate", "--vocab-size", "--test-limit"):
        assert flag not in charlm
    for flag in ("--labels", "--pooling", "--adversarial", "--encoder", "--vectors"):
        assert flag in classifier
    assert "--cutoffs" in word_lm and "--cutoffs" not in classifier
    assert "--adversarial" not in word_lm and "--lm-sequences" not in classifier
    assert "``" not in charlm + classifier + word_lm and "../shared" not in classifier


def test_no_progress_silences_datasets_bars_too():
    import datasets

    from sentiment.cli.options import parse_config
    from sentiment.train import recipe as pipeline

    try:
        parse_config("", pipeline.PRESETS, pipeline.make_config, argv=["--progress"])
        assert datasets.is_progress_bar_enabled()
        parse_config("", pipeline.PRESETS, pipeline.make_config, argv=["--no-progress"])
        assert not datasets.is_progress_bar_enabled()
    finally:
        datasets.enable_progress_bars()


def test_no_network_is_one_line_naming_the_offline_way(tmp_path, capsys, monkeypatch):
    import datasets.config
    import huggingface_hub.constants

    monkeypatch.setenv("HF_HUB_OFFLINE", "1")  # as without network: datasets cannot reach it
    # the libraries read the variable when first imported: where an earlier test imported them,
    # only their flags say offline (else this waited ~20 s on a real connection's timeout)
    monkeypatch.setattr(datasets.config, "HF_HUB_OFFLINE", True)
    monkeypatch.setattr(huggingface_hub.constants, "HF_HUB_OFFLINE", True)
    monkeypatch.setenv("HF_DATASETS_CACHE", str(tmp_path / "hf"))
    assert commands.main(["train", "--data", "nobody-has/this-dataset", "--output",
                          str(tmp_path / "run"), "--no-progress"]) == 1
    err = capsys.readouterr().err.strip()
    assert err.startswith("sentiment train: error: could not load nobody-has/this-dataset")
    assert "--data" in err and "\n" not in err and "Traceback" not in err


def test_without_a_network_commands_fail_at_once(tmp_path, capsys, monkeypatch):
    """No network: the hub is not retried for half a minute; one line says which local-data
    flag to use, within seconds (the unreachable host here is TEST-NET-1, RFC 5737)."""
    import time

    from sentiment.runtime import network

    for name in network.OFFLINE_VARIABLES:
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setattr(network, "HUB", "192.0.2.1")
    start = time.perf_counter()
    assert network.reachable("192.0.2.1", timeout=0.5) is False
    assert commands.main(["train", "--preset", "tiny", "--output", str(tmp_path / "run"),
                          "--no-progress"]) == 1
    assert time.perf_counter() - start < 8
    err = capsys.readouterr().err.strip()
    assert err.startswith("sentiment train: error: could not load stanfordnlp/imdb: 192.0.2.1 "
                          "cannot be reached")
    assert "point --data at a local copy" in err and "\n" not in err


def test_user_mistakes_are_one_line_and_exit_1(tmp_path, capsys):
    assert commands.main(["predict", "--model", str(tmp_path / "missing"), "hi"]) == 1
    err = capsys.readouterr().err.strip()
    assert err.startswith("sentiment predict: error:") and "missing" in err
    assert "\n" not in err and "Traceback" not in err
    assert commands.main(["generate", "--model", str(tmp_path)]) == 1
    assert "Traceback" not in capsys.readouterr().err
    with pytest.raises(SystemExit) as exit_info:  # argparse: usage and exit status 2
        commands.main(["train", "--epochs", "many"])
    assert exit_info.value.code == 2 and "--epochs" in capsys.readouterr().err
    with pytest.raises(SystemExit):
        commands.main(["no-such-command"])


def test_python_dash_m_trains_and_predicts(synthetic_dir, tmp_path):
    env = {**os.environ, "SENTIMENT_NO_TCMALLOC": "1"}
    run = lambda *args: subprocess.run(  # noqa: E731
        [sys.executable, "-m", "sentiment", *map(str, args)], capture_output=True, text=True,
        env=env, timeout=600)
    trained = run("train", "--preset", "tiny", "--data", synthetic_dir, "--output", tmp_path,
                  "--epochs", 3, "--no-progress", "--no-baseline", "--num-proc", 1)
    assert trained.returncode == 0, trained.stderr[-2000:]
    assert json.loads(trained.stdout)["test_accuracy"] > 0.8
    predicted = run("predict", "--model", tmp_path, "Brilliant and moving.")
    assert json.loads(predicted.stdout)["label"] == "positive"
    missing = run("evaluate", "--model", tmp_path / "nope")
    assert missing.returncode == 1 and "Traceback" not in missing.stderr


def test_main_called_from_python_never_re_executes(monkeypatch):
    """use_tcmalloc re-executes the process; from a test or a library call that would replace
    the caller (the test run) with a training run, wherever tcmalloc is installed."""
    import sentiment.cli.options

    def forbidden():
        raise AssertionError("main([...]) tried to re-execute the process")

    monkeypatch.setattr(sentiment.cli.options, "use_tcmalloc", forbidden)
    with pytest.raises(SystemExit):  # argparse rejects the value, after the allocator choice
        commands.main(["train", "--epochs", "many"])


def test_evaluate_writes_a_shipped_models_report_outside_the_package(monkeypatch, tmp_path,
                                                                      capsys):
    """A model shipped in the package (imdb, imdb-fast, imdb-onnx) is evaluated into runs/, not
    into the installed package's folder; a model of one's own into its folder, as before."""
    import sentiment.train.evaluation
    from sentiment.kinds.registry import SHIPPED_MODELS

    written: list[str] = []

    def evaluated(model, data, split, output, *args, **kwargs):
        written.append(str(output))
        return {"accuracy": 0.5, "n": 2}

    def cross_domain(model, data, output, *args, **kwargs):
        written.append(str(output))
        return {"accuracy": 0.5, "n": 2}

    monkeypatch.setattr(sentiment.train.evaluation, "evaluate_saved_model", evaluated)
    monkeypatch.setattr(sentiment.train.evaluation, "evaluate_cross_domain", cross_domain)
    monkeypatch.chdir(tmp_path)
    assert {"imdb", "imdb-fast", "imdb-onnx", "imdb-cascade"} <= set(SHIPPED_MODELS)
    for name in ("imdb", "imdb-fast", "imdb-onnx", "imdb-cascade"):
        commands.main(["evaluate", "--model", name, "--no-baseline"])
    own = tmp_path / "mine"
    own.mkdir()
    for name in ("config.json", "vocab.json", "model.safetensors"):
        (own / name).write_bytes((SHIPPED_MODELS["imdb"] / name).read_bytes())
    commands.main(["evaluate", "--model", str(own), "--no-baseline"])
    commands.main(["evaluate", "--model", "imdb-fast", "--cross-domain", "other.csv"])
    assert written == ["runs/shipped-report", "runs/shipped-report-imdb-fast",
                       "runs/shipped-report-imdb-onnx", "runs/shipped-report-imdb-cascade",
                       str(own.resolve()),
                       str(Path("runs/shipped-report-imdb-fast") / "cross-domain-other")]
    capsys.readouterr()


def test_every_command_takes_the_common_flags_and_an_empty_text_is_one_line(capsys):
    """--no-progress and --verbose on every command; an empty text given is a user mistake
    (exit 1, one line), not a usage error (2)."""
    from sentiment.cli.main import COMMANDS

    for name in COMMANDS:
        with pytest.raises(SystemExit) as exit_info:
            commands.main([name, "--help"])
        shown = capsys.readouterr().out
        assert exit_info.value.code == 0 and "--no-progress" in shown and "--verbose" in shown
    assert commands.main(["predict", ""]) == 1
    err = capsys.readouterr().err.strip()
    assert err.startswith("sentiment predict: error: text") and "empty" in err
    assert "\n" not in err and "usage" not in err
