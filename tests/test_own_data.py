"""Your own data: one CSV with its own column names and label spellings, end to end."""

from __future__ import annotations

import csv
import json

import pytest
from conftest import synthetic_reviews

from sentiment import commands, pipeline, predict
from sentiment.data import load_reviews


def _write_csv(path, rows, names=("negative", "positive")):
    with open(path, "w", newline="") as handle:
        writer = csv.writer(handle)
        writer.writerow(["id", "review", "sentiment"])
        for i, row in enumerate(rows):
            writer.writerow([i, row["text"], names[row["label"]]])
    return path


@pytest.fixture(scope="module")
def one_file(tmp_path_factory):
    return _write_csv(tmp_path_factory.mktemp("own") / "imdb.csv", synthetic_reviews(2500, 5))


def test_single_file_split_is_stratified_seeded_and_recorded(one_file):
    first = load_reviews(one_file, "review", "sentiment", test_fraction=0.2, seed=0)
    again = load_reviews(one_file, "review", "sentiment", test_fraction=0.2, seed=0)
    assert len(first["test"]) == 500 and len(first["train"]) == 2000
    assert first["test"]["text"] == again["test"]["text"]
    assert not set(first["test"]["text"]) & set(first["train"]["text"])
    assert sum(first["test"]["label"]) == 250  # stratified
    assert first["train"].features["label"].names == ["negative", "positive"]
    other = load_reviews(one_file, "review", "sentiment", test_fraction=0.2, seed=1)
    assert other["test"]["text"] != first["test"]["text"]


def test_train_evaluate_predict_on_one_csv(one_file, tmp_path):
    output = tmp_path / "model"
    config = pipeline.make_config("tiny", data=str(one_file), text_column="review",
                                  label_column="sentiment", output=str(output), epochs=4,
                                  progress=False, num_proc=1, baseline=False)
    summary = pipeline.train_sentiment(config)
    assert summary["report"]["accuracy"] > 0.9 and summary["report"]["n"] == 500
    saved = json.loads((output / "config.json").read_text())
    assert saved["data"]["text_column"] == "review" and saved["data"]["test_fraction"] == 0.2
    again = pipeline.evaluate_saved_model(output, baseline=False, output=tmp_path / "again")
    assert again["n"] == 500 and again["accuracy"] == summary["report"]["accuracy"]
    assert predict("Loved it, brilliant!", model=output)["label"] == "positive"


def test_labels_keep_the_data_names(tmp_path):
    given = _write_csv(tmp_path / "thumbs.csv", synthetic_reviews(600, 6), ("down", "up"))
    output = tmp_path / "model"
    config = pipeline.make_config("tiny", data=str(given), text_column="review",
                                  label_column="sentiment", output=str(output), epochs=3,
                                  progress=False, num_proc=1, baseline=False, evaluate=False)
    pipeline.train_sentiment(config)
    assert json.loads((output / "config.json").read_text())["model"]["head"]["labels"] == [
        "down", "up"]
    assert predict("Loved it, brilliant!", model=output)["label"] == "up"
    assert predict("Dull, awful, the worst.", model=output)["label"] == "down"


def test_wrong_column_lists_the_columns(one_file, capsys):
    assert commands.run("train", ["--preset", "tiny", "--data", str(one_file),
                                  "--no-progress"]) == 1
    last = capsys.readouterr().err.strip().splitlines()[-1]
    assert "missing column(s) ['text', 'label']" in last and "'review'" in last
    assert "--text-column" in last
