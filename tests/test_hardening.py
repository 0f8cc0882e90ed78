"""Bad inputs stopped before any work with errors that name the file, the row or the numbers;
mismatched model folders refused; a run failing after training keeps its model."""

from __future__ import annotations

import json
import logging
import shutil

import pytest

from sentiment import predict
from sentiment.cli import main as commands
from sentiment.kinds.registry import load_model
from sentiment.train import evaluation, prepare
from sentiment.train import recipe as pipeline


def _copy(model, tmp_path):
    folder = tmp_path / "model"
    shutil.copytree(model, folder)
    return folder


def test_vocabulary_that_does_not_match_the_weights_is_refused(trained_model, tmp_path):
    folder = _copy(trained_model, tmp_path)
    vocab = json.loads((folder / "vocab.json").read_text())
    size = len(vocab["itos"])
    vocab["itos"] = vocab["itos"][:-7]
    (folder / "vocab.json").write_text(json.dumps(vocab))
    with pytest.raises(ValueError, match=rf"vocab.json has {size - 7} tokens.*{size} rows"):
        predict("fine", model=folder)


def test_edited_config_is_refused_with_the_shapes(trained_model, tmp_path):
    folder = _copy(trained_model, tmp_path)
    config = json.loads((folder / "config.json").read_text())
    hidden = config["model"]["core"]["hidden_dim"]
    config["model"]["core"]["hidden_dim"] = hidden + 3
    (folder / "config.json").write_text(json.dumps(config))
    with pytest.raises(ValueError, match=rf"model.safetensors: core\.\S+ has shape .*{hidden}"):
        load_model(folder)
    config["model"]["core"]["hidden_dim"] = hidden
    config["model"]["core"]["vocab_size"] += 1
    (folder / "config.json").write_text(json.dumps(config))
    with pytest.raises(ValueError, match="config.json says vocab_size"):
        load_model(folder)
    (folder / "config.json").write_text("{not json")
    with pytest.raises(ValueError, match="config.json"):
        load_model(folder)


def test_truncated_weights_name_the_file(trained_model, tmp_path):
    folder = _copy(trained_model, tmp_path)
    weights = folder / "model.safetensors"
    weights.write_bytes(weights.read_bytes()[: weights.stat().st_size // 2])
    with pytest.raises(ValueError, match=r"model.safetensors is damaged or truncated"):
        load_model(folder)
    assert commands.main(["predict", "--model", str(folder), "fine"]) == 1


def _folder(tmp_path, train: str, test: str = "text,label\ngood film,1\nbad film,0\n"):
    folder = tmp_path / "data"
    folder.mkdir()
    (folder / "train.csv").write_text(train)
    (folder / "test.csv").write_text(test)
    return folder


def _splits(folder):
    return prepare.classifier_splits(pipeline.make_config(data=str(folder)).data, seed=0)


def test_rows_without_text_are_skipped_counted_and_named(tmp_path, caplog):
    rows = "".join(f"great film {i},1\nawful film {i},0\n" for i in range(10))
    folder = _folder(tmp_path, "text,label\n" + rows + ",1\n   ,0\n")
    with caplog.at_level(logging.WARNING, logger="sentiment.data.sources"):
        splits = _splits(folder)
    assert len(splits["train"]) + len(splits["valid"]) == 20
    assert "train.csv: skipped 2 of 22 rows with no text (data rows 21, 22)" in caplog.text


def test_empty_files_name_the_file(tmp_path):
    with pytest.raises(ValueError, match=r"train.csv: the train file has no rows"):
        _splits(_folder(tmp_path, "text,label\n"))
    (tmp_path / "data" / "train.csv").write_text("text,label\ngood,1\nbad,0\ngreat,1\nawful,0\n")
    (tmp_path / "data" / "test.csv").write_text("")
    with pytest.raises(ValueError, match=r"test.csv: the test file has no rows"):
        _splits(tmp_path / "data")


def test_single_class_and_bad_labels_stop_before_training(tmp_path):
    folder = _folder(tmp_path, "text,label\ngood,1\nnice,1\ngreat,1\nsuperb,1\n")
    config = pipeline.make_config("tiny", data=str(folder), output=str(tmp_path / "out"),
                                  progress=False, num_proc=1)
    with pytest.raises(ValueError, match=r"at least twice.*negative: 0 \(of 4 rows\)"):
        pipeline.train_sentiment(config)
    assert not (tmp_path / "out" / "model.safetensors").exists()
    (folder / "train.csv").write_text("text,label\ngood,1\nbad,0\nodd,maybe\n")
    with pytest.raises(ValueError, match=r"train.csv: bad label 'maybe' in data row 3"):
        _splits(folder)


def test_a_run_failing_after_training_keeps_its_model(synthetic_dir, tmp_path, monkeypatch):
    def broken_baselines(*args, **kwargs):
        raise ValueError("the baseline fell over")

    monkeypatch.setattr(evaluation, "fit_baselines", broken_baselines)
    config = pipeline.make_config("tiny", data=str(synthetic_dir), output=str(tmp_path / "out"),
                                  epochs=1, progress=False, num_proc=1, train_limit=400)
    with pytest.raises(ValueError, match=r"model is saved in .*out.*the baseline fell over"):
        pipeline.train_sentiment(config)
    assert predict("Loved it, brilliant!", model=tmp_path / "out")["label"] in (
        "positive", "negative")


def test_training_mistakes_are_one_line_from_the_shell(tmp_path, capsys):
    folder = _folder(tmp_path, "review,label\ngood,1\nbad,0\n")
    assert commands.run("train", ["--preset", "tiny", "--data", str(folder), "--output",
                                  str(tmp_path / "out"), "--no-progress"]) == 1
    err = capsys.readouterr().err.strip()  # progress bars of the data loading, then the error
    last = err.splitlines()[-1]
    assert last.startswith("sentiment train: error:") and "missing column" in last
    assert "train.csv" in last and "Traceback" not in err


def test_saved_weights_are_as_readable_as_the_json_beside_them(trained_model, tmp_path):
    """safetensors writes owner-only files; a saved (and shipped) model follows the umask."""
    import os

    from sentiment.kinds.checkpoint import export_model

    previous = os.umask(0o022)
    try:
        target = export_model(trained_model, tmp_path / "exported", "float16")
    finally:
        os.umask(previous)
    weights = (target / "model.safetensors").stat().st_mode & 0o777
    assert weights == (target / "config.json").stat().st_mode & 0o777 == 0o644


def test_training_checkpoints_are_as_readable_as_the_json_beside_them(tmp_path):
    import os

    import torch

    from sentiment.kinds.checkpoint import save_training_state

    model = torch.nn.Linear(2, 1)
    optimizer = torch.optim.Adam(model.parameters())
    model(torch.ones(1, 2)).sum().backward()
    optimizer.step()
    previous = os.umask(0o022)
    try:
        save_training_state(tmp_path / "checkpoint", model, optimizer, {"epoch": 1})
    finally:
        os.umask(previous)
    modes = {p.name: p.stat().st_mode & 0o777 for p in (tmp_path / "checkpoint").iterdir()}
    assert modes == {"state.safetensors": 0o644, "model.safetensors": 0o644, "state.json": 0o644}


SHAPES_GROWTH = """
import os, sys
import psutil, torch
if sys.argv[1] != "sentiment":  # set in the process after torch's import, as sentiment does
    os.environ["ONEDNN_PRIMITIVE_CACHE_CAPACITY"] = sys.argv[1]
import sentiment  # noqa: F401
assert sys.argv[1] != "sentiment" or "ONEDNN_PRIMITIVE_CACHE_CAPACITY" not in os.environ
from sentiment.runtime.memory import cap_kernel_cache
cap_kernel_cache()  # as every command does before it scores or trains
torch.manual_seed(0)
torch.set_num_threads(1)
lstm = torch.nn.LSTM(32, 256, num_layers=2, bidirectional=True, batch_first=True)
x = torch.randn(2, 260, 32)
lstm(x[:, :5])[0].sum().backward()  # warm: the allocator's first growth is not the cache's
start = psutil.Process().memory_info().rss
for length in range(20, 260, 6):  # 40 shapes, as length-bucketed batches bring them
    lstm(x[:, :length])[0].sum().backward()
grown = (psutil.Process().memory_info().rss - start) / 2**20
print(os.environ["ONEDNN_PRIMITIVE_CACHE_CAPACITY"], grown)
"""


def test_varying_batch_shapes_do_not_grow_memory_without_end():
    """oneDNN caches a primitive per input shape (1,024 by default): the cache set in the
    process bounds the growth; the commands set it (256) and keep a user's setting."""
    import os
    import subprocess
    import sys

    def growth(setting):
        env = {k: v for k, v in os.environ.items() if k != "ONEDNN_PRIMITIVE_CACHE_CAPACITY"}
        out = subprocess.run([sys.executable, "-c", SHAPES_GROWTH, setting], check=True,
                             capture_output=True, text=True, env=env).stdout.split()
        return out[0], float(out[1])

    assert growth("sentiment")[0] == "256"
    (few, capped), (theirs, default) = growth("8"), growth("1024")
    assert (few, theirs) == ("8", "1024")
    assert default > 40 and capped < 0.5 * default, (capped, default)
