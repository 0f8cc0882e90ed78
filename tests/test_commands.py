"""The ``sentiment`` command: subcommands, help, and one-line errors for user mistakes."""

from __future__ import annotations

import json
import os
import re
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


def help_entries(text: str) -> dict[str, tuple[str, str, str]]:
    """``--help`` output as ``{flag: (heading, invocation, help)}``, each flag under the heading
    (``options``, ``data``...) it is printed beneath."""
    entries, heading, current = {}, None, None
    for line in text.splitlines():
        if re.fullmatch(r"\S[^:]*:", line):
            heading, current = line[:-1], None
        elif re.match(r"  -", line):
            invocation, _, words = line.strip().partition("  ")
            current = [heading, invocation, words.strip()]
            for flag in re.findall(r"--?[\w-]+", invocation):
                entries.setdefault(flag, current)
        elif current is not None and line.startswith(" " * 6):
            current[2] = f"{current[2]} {line.strip()}".strip()
        elif not line.strip():
            current = None
    return {flag: tuple(entry) for flag, entry in entries.items()}


@pytest.mark.parametrize("name, module", [("train", "recipe"), ("pretrain", "pretrain"),
                                          ("train-charlm", "charlm")])
def test_training_help_explains_each_option_under_its_groups_heading(name, module, capsys):
    """Issue 42: each option of a training command says what it is for beyond its default,
    each choice option lists its values, and the options sit under the headings data, model,
    training and output, by the config section they belong to."""
    import importlib

    from sentiment.cli.options import OPTION_GROUPS, SECTION_GROUPS
    from sentiment.config import leaf_fields, sections

    with pytest.raises(SystemExit):
        commands.main([name, "--help"])
    out = capsys.readouterr().out
    entries = help_entries(out)
    for flag, (_, invocation, words) in entries.items():
        purpose = re.sub(r"\(default: [^)]*\)$", "", words).strip()
        assert len(purpose) > 10, (flag, invocation, words)
    config = importlib.import_module(f"sentiment.train.{module}").make_config()
    paths = {id(section): path for path, section in sections(config).items()}
    for option, (section, f) in leaf_fields(config, task_only=True).items():
        heading, invocation, words = entries["--" + option.replace("_", "-")]
        assert heading == (f.metadata.get("group") or SECTION_GROUPS[paths[id(section)]]), option
        if f.metadata.get("choices"):
            assert "{" + ",".join(f.metadata["choices"]) + "}" in invocation, option
    assert [h for h in OPTION_GROUPS if f"\n{h}:\n" in out] == list(OPTION_GROUPS)
    assert "--preset" in entries and "--verbose" in entries and "[OPTION ...]" in out
    assert "default: []" not in out and "default: None" not in out


def test_labels_help_says_what_labels_does(capsys):
    """--labels names the two classes of 0/1 (or neg/pos) data; data with other labels keeps
    its own names (the README's promise), and the help shows the default as one types it."""
    with pytest.raises(SystemExit):
        commands.main(["train", "--help"])
    _, _, words = help_entries(capsys.readouterr().out)["--labels"]
    assert "0/1" in words and "its own names" in words
    assert words.endswith("(default: negative positive)") and "['negative'" not in words


def test_no_progress_silences_datasets_bars_too(monkeypatch):
    """--no-progress turns datasets' bars off; --progress turns them on where stderr is a
    terminal, and leaves them off in a log file or a pipe (as tqdm's own bars)."""
    import sys

    import datasets

    from sentiment.cli.options import parse_config
    from sentiment.train import recipe as pipeline

    try:
        for terminal in (True, False):
            monkeypatch.setattr(sys.stderr, "isatty", lambda t=terminal: t, raising=False)
            parse_config("", pipeline.PRESETS, pipeline.make_config, argv=["--progress"])
            assert datasets.is_progress_bar_enabled() == terminal
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
    monkeypatch.setenv("HF_ENDPOINT", "https://192.0.2.1")  # a mirror that does not answer
    for name in network.PROXIES:
        monkeypatch.delenv(name, raising=False)
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
        (own / name).write_bytes((SHIPPED_MODELS["imdb"] / "reviews" / name).read_bytes())
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
        assert "--threads" in shown, name
    assert commands.main(["predict", ""]) == 1
    err = capsys.readouterr().err.strip()
    assert err.startswith("sentiment predict: error: text") and "empty" in err
    assert "\n" not in err and "usage" not in err


def test_evaluate_passes_the_baseline_limit_and_the_sentence_half(monkeypatch, tmp_path,
                                                                   capsys):
    """--baseline-limit N|all (default auto: 2,000 with --limit, else all) and --sentences
    dev|heldout reach the evaluation; anything else is a usage error."""
    import sentiment.train.evaluation

    asked: list[dict] = []

    def evaluated(model, data, split, output, *args, **kwargs):
        asked.append(kwargs)
        return {"accuracy": 0.5, "n": 2}

    def cross_domain(model, data, output, *args, **kwargs):
        asked.append({"baseline_limit": args[-2], "sentences": args[-1]})
        return {"accuracy": 0.5, "n": 2}

    monkeypatch.setattr(sentiment.train.evaluation, "evaluate_saved_model", evaluated)
    monkeypatch.setattr(sentiment.train.evaluation, "evaluate_cross_domain", cross_domain)
    monkeypatch.chdir(tmp_path)
    commands.main(["evaluate", "--model", "imdb-fast", "--limit", "200"])
    commands.main(["evaluate", "--model", "imdb-fast", "--baseline-limit", "500",
                   "--sentences", "heldout"])
    commands.main(["evaluate", "--model", "imdb-fast", "--baseline-limit", "all"])
    commands.main(["evaluate", "--model", "imdb-fast", "--cross-domain", "other.csv",
                   "--baseline-limit", "300"])
    assert [(a["baseline_limit"], a["sentences"]) for a in asked] == [
        ("auto", "dev"), (500, "heldout"), (None, "dev"), (300, "dev")]
    capsys.readouterr()
    for bad in (["--baseline-limit", "0"], ["--baseline-limit", "some"],
                ["--sentences", "test"]):
        with pytest.raises(SystemExit) as exit_info:
            commands.main(["evaluate", "--model", "imdb-fast", *bad])
        assert exit_info.value.code == 2
    assert "not a count of reviews: '0'" in capsys.readouterr().err


def test_threads_come_from_the_flag_or_the_environment_and_a_busy_machine_is_named(
        monkeypatch, caplog):
    """--threads N (else $SENTIMENT_THREADS) sets torch's CPU threads; with neither, a machine
    whose load fills its cores gets one warning that says what to do."""
    import logging
    import os

    import torch

    from sentiment.cli.options import set_threads

    before = torch.get_num_threads()
    try:
        set_threads(1)
        assert torch.get_num_threads() == 1
        torch.set_num_threads(before)
        monkeypatch.setenv("SENTIMENT_THREADS", "1")
        set_threads(None)
        assert torch.get_num_threads() == 1
        torch.set_num_threads(before)
        monkeypatch.delenv("SENTIMENT_THREADS")
        monkeypatch.setattr(os, "getloadavg", lambda: (float(os.cpu_count() + 3), 0.0, 0.0))
        with caplog.at_level(logging.WARNING):
            set_threads(None)
        assert "busy" in caplog.text and "--threads 1" in caplog.text
        assert torch.get_num_threads() == before
        with pytest.raises(ValueError, match="--threads must be 1 or more"):
            set_threads(-2)
    finally:
        torch.set_num_threads(before)


def test_export_without_the_onnx_extra_is_one_line_and_writes_nothing(monkeypatch, tmp_path,
                                                                      capsys):
    import importlib.util

    real = importlib.util.find_spec
    monkeypatch.setattr(importlib.util, "find_spec",
                        lambda name, *a: None if name == "onnx" else real(name, *a))
    assert commands.main(["export", "--model", "imdb-fast", "--format", "onnx", "--output",
                          str(tmp_path / "out")]) == 1
    err = capsys.readouterr().err.strip()
    assert "sentiment-lstm[onnx]" in err and "\n" not in err
    assert not (tmp_path / "out").exists()


def test_serve_on_a_port_in_use_is_one_line(capsys):
    import socket

    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        assert commands.main(["serve", "--port", str(port)]) == 1
    err = capsys.readouterr().err.strip()
    assert err.startswith(f"sentiment serve: error: cannot listen on 127.0.0.1:{port}")
    assert "--port" in err and "\n" not in err
