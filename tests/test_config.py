"""The one config: round trip through config.json, unique option names, the evaluation split,
moving a core between heads, and a library without import-time side effects."""

from __future__ import annotations

import json
import subprocess
import sys

import pytest
import torch

from sentiment.config import Config, apply_overrides, leaf_fields
from sentiment.kinds.checkpoint import load_pretrained, read_config, save_pretrained, transfer_core
from sentiment.nn.core import CoreConfig, RNNCore
from sentiment.nn.heads import build_model
from sentiment.text.vocab import Vocab
from sentiment.train import charlm, evaluation, prepare, pretrain
from sentiment.train import recipe as pipeline


@pytest.mark.parametrize("make_config", [pipeline.make_config, charlm.make_config,
                                         pretrain.make_config])
def test_config_round_trips_and_names_each_option_once(make_config):
    config = make_config()
    assert Config.from_dict(json.loads(json.dumps(config.to_dict()))) == config
    names = leaf_fields(config)  # raises on a name declared in two sections
    assert {"data", "hidden_dim", "epochs", "pooling", "layout"} <= set(names) or "text" in names
    with pytest.raises(ValueError, match="unknown option 'bogus'"):
        apply_overrides(config, {"bogus": 1})


def test_same_names_for_the_same_things_in_every_task():
    sentiment, char = pipeline.make_config(), charlm.make_config()
    shared = {"hidden_dim", "num_layers", "rnn_type", "embed_dim", "input_type", "dropout",
              "batch_size", "valid_fraction", "epochs", "lr", "output"}
    assert shared <= set(leaf_fields(sentiment)) & set(leaf_fields(char))


def test_bad_values_name_the_option():
    with pytest.raises(ValueError, match="layout"):
        pipeline.make_config(layout="diagonal")
    with pytest.raises(ValueError, match="schedule"):
        pipeline.make_config(schedule="stepwise")
    with pytest.raises(ValueError, match="format_version"):
        Config.from_dict({"task": "sentiment", "format_version": 1})


@pytest.mark.parametrize("make_config", [pipeline.make_config, charlm.make_config,
                                         pretrain.make_config])
def test_every_option_has_a_purpose_and_every_refused_word_its_choices(make_config):
    """Each field a command offers says what it is for (metadata "help", the line in --help);
    a field whose section refuses a word it does not know lists the words it takes, and takes
    each of them."""
    import typing

    config = make_config()
    for name, (section, f) in leaf_fields(config, task_only=True).items():
        assert len(f.metadata.get("help", "")) > 10, name
        if typing.get_type_hints(type(section))[f.name] is not str:
            continue
        choices = f.metadata.get("choices")
        try:
            apply_overrides(config, {name: "no-such-value"})
        except ValueError:
            assert choices, f"{name} refuses words but lists no choices"
        for choice in choices or ():
            apply_overrides(config, {name: choice})


def test_tiny_presets_bound_what_they_read():
    """Issue 42: --preset tiny is a minute's toy for every review task, with a teacher too (it
    scored and trained on all 50,000 unlabelled reviews: 26 minutes on 2 busy cores): each
    bounds its labelled, test and unlabelled reviews and the tokens it reads of each."""
    for data in (pipeline.make_config("tiny").data, pretrain.make_config("tiny").data):
        assert data.train_limit <= 2_000 and data.unlabelled_limit <= 2_000
        assert data.max_length <= 200
    assert pipeline.make_config("tiny").data.test_limit <= 500


def test_saved_config_rebuilds_the_model(tmp_path):
    config = pipeline.make_config("tiny", vocab_size=40)
    model = build_model("sentiment", config.model).eval()
    vocab = Vocab([f"t{i}" for i in range(40)])
    save_pretrained(model, tmp_path, vocab, config)
    assert read_config(tmp_path) == config
    loaded, _, _ = load_pretrained(tmp_path)
    for a, b in zip(model.state_dict().values(), loaded.state_dict().values(), strict=True):
        assert torch.equal(a, b)


def test_evaluate_valid_uses_the_training_runs_split(synthetic_dir, tmp_path):
    """A model trained on 400 of 2,000 reviews is evaluated on its own 40 validation reviews,
    not on a fresh split of all 2,000 (which would hold its training reviews)."""
    output = tmp_path / "model"
    config = pipeline.make_config("tiny", data=str(synthetic_dir), output=str(output),
                                  train_limit=400, epochs=1, progress=False, evaluate=False,
                                  num_proc=1)
    pipeline.train_sentiment(config)
    trained = prepare.prepare_data(config)
    report = evaluation.evaluate_saved_model(output, split="valid", baseline=False,
                                           output=tmp_path / "eval")
    assert report["n"] == len(trained.valid) == 40
    saved = prepare.prepare_data(read_config(output))
    assert saved.valid["text"] == trained.valid["text"]
    assert not set(saved.valid["text"]) & set(trained.train["text"])


def lm_and_vocab(tmp_path, **core):
    vocab = Vocab(["<pad>", "<unk>", *[f"w{i}" for i in range(30)]])
    config = pretrain.make_config("tiny", vocab_size=len(vocab), embed_dim=8, hidden_dim=8,
                                  **core)
    torch.manual_seed(1)
    model = build_model("word-lm", config.model)
    save_pretrained(model, tmp_path, vocab, config)
    return model, vocab


def test_a_language_models_core_moves_into_the_classifier(tmp_path):
    lm, vocab = lm_and_vocab(tmp_path / "lm")
    config = pipeline.make_config("tiny", encoder=str(tmp_path / "lm"))
    classifier, resolved, _ = prepare.build_task_model(config, vocab)
    assert resolved.model.core.layout == "separate" and resolved.model.core.hidden_dim == 8
    for name, weight in lm.core.state_dict().items():
        assert torch.equal(classifier.core.state_dict()[name], weight), name
    other = Vocab(["<pad>", "<unk>", *[f"v{i}" for i in range(30)]])
    with pytest.raises(ValueError, match="vocabulary"):
        transfer_core(classifier.core, other, tmp_path / "lm")
    wider = RNNCore(CoreConfig(vocab_size=len(vocab), embed_dim=8, hidden_dim=16,
                               layout="separate"))
    with pytest.raises(ValueError, match="shape"):
        transfer_core(wider, vocab, tmp_path / "lm")


def test_importing_the_package_changes_nothing_global():
    code = """
import os, sys, matplotlib, torch
backend = matplotlib.rcParams._get("backend")
threads = torch.get_num_threads()
import sentiment, sentiment.inference.predict
assert "sentiment.train.loop" not in sys.modules, "inference imported the training loop"
import sentiment.train.recipe, sentiment.train.charlm, sentiment.train.pretrain
import sentiment.report.metrics, sentiment.cli.options
assert matplotlib.rcParams._get("backend") == backend, "matplotlib backend changed"
assert torch.get_num_threads() == threads
assert (torch.tensor([1e-39]) * 1.0).item() != 0, "denormals flushed at import"
assert "tcmalloc" not in os.environ.get("LD_PRELOAD", "")
print("clean")
"""
    env = {"PATH": "/usr/bin:/bin", "OMP_NUM_THREADS": "1"}
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, env=env)
    assert result.returncode == 0 and "clean" in result.stdout, result.stderr[-2000:]


def test_training_restores_the_denormal_flag(synthetic_dir, tmp_path):
    torch.set_flush_denormal(False)
    config = pipeline.make_config("tiny", data=str(synthetic_dir), output=str(tmp_path),
                                  train_limit=200, epochs=1, progress=False, evaluate=False,
                                  num_proc=1, device="cpu")
    pipeline.train_sentiment(config)
    assert (torch.tensor([1e-39]) * 1.0).item() != 0
