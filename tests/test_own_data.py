"""Your own data: one CSV with its own column names and label spellings, end to end."""

from __future__ import annotations

import csv
import json
import logging
from types import SimpleNamespace

import datasets
import pytest
from conftest import synthetic_reviews

from sentiment import predict
from sentiment.cli import main as commands
from sentiment.data.sources import load_reviews
from sentiment.train import evaluation
from sentiment.train import recipe as pipeline


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


def test_train_evaluate_predict_on_one_csv(one_file, tmp_path, caplog):
    output = tmp_path / "model"
    config = pipeline.make_config("tiny", data=str(one_file), text_column="review",
                                  label_column="sentiment", output=str(output), epochs=4,
                                  progress=False, num_proc=1, baseline=False)
    with caplog.at_level(logging.INFO, logger="sentiment.train.evaluation"):
        summary = pipeline.train_sentiment(config)
    assert summary["report"]["accuracy"] > 0.9 and summary["report"]["n"] == 500
    # one file has no unlabelled reviews beside it: said as that, not as a column error
    assert (f"deduplicated the test split against the training file (no unlabelled reviews "
            f"beside {one_file})") in caplog.text
    assert "no column" not in caplog.text and "--unlabelled-column" not in caplog.text
    saved = json.loads((output / "config.json").read_text())
    assert saved["data"]["text_column"] == "review" and saved["data"]["test_fraction"] == 0.2
    again = evaluation.evaluate_saved_model(output, baseline=False, output=tmp_path / "again")
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


def test_template_sentences_refuse_other_labels(tmp_path):
    """The template sentences are labelled negative / positive: a data set with other labels
    (here "down" / "up", which could mean anything) is refused before any training."""
    given = _write_csv(tmp_path / "thumbs.csv", synthetic_reviews(300, 7), ("down", "up"))
    output = tmp_path / "model"
    config = pipeline.make_config("tiny", data=str(given), text_column="review",
                                  label_column="sentiment", output=str(output), epochs=1,
                                  progress=False, num_proc=1, baseline=False, phrases=40)
    with pytest.raises(ValueError, match=r"this classifier's labels are \['down', 'up'\]"):
        pipeline.train_sentiment(config)
    assert not (output / "model.safetensors").exists()


def test_wrong_column_lists_the_columns(one_file, capsys):
    assert commands.run("train", ["--preset", "tiny", "--data", str(one_file),
                                  "--no-progress"]) == 1
    last = capsys.readouterr().err.strip().splitlines()[-1]
    assert "missing column(s) ['text', 'label']" in last and "'review'" in last
    assert "--text-column" in last


CLASS_WORDS = {"1": ["awful", "worst", "hated"], "2": ["dull", "boring", "weak"],
               "3": ["fine", "okay", "average"], "4": ["good", "nice", "enjoyable"],
               "5": ["brilliant", "superb", "masterpiece"]}
FILLER = "the movie film story actor plot scene was and it this of a to with but".split()


def _graded_reviews(classes: list[str], n: int, seed: int) -> list[dict]:
    import random

    rng = random.Random(seed)
    rows = []
    for i in range(n):
        label = classes[i % len(classes)]
        words = [rng.choice(FILLER) for _ in range(rng.randint(6, 30))]
        for _ in range(rng.randint(1, 3)):
            words.insert(rng.randrange(len(words) + 1), rng.choice(CLASS_WORDS[label]))
        rows.append({"text": " ".join(words) + ".", "stars": label})
    return rows


@pytest.mark.parametrize("classes", [["1", "3", "5"], ["1", "2", "3", "4", "5"]])
def test_multi_class_softmax_head_report_and_predict(classes, tmp_path):
    given = tmp_path / "ratings.jsonl"
    given.write_text("".join(json.dumps(r) + "\n"
                             for r in _graded_reviews(classes, 3000, len(classes))))
    output = tmp_path / "model"
    config = pipeline.make_config("tiny", data=str(given), label_column="stars",
                                  output=str(output), epochs=5, progress=False, num_proc=1)
    summary = pipeline.train_sentiment(config)
    report = summary["report"]
    assert report["label_names"] == classes
    assert len(report["confusion_matrix"]) == len(classes)
    assert set(report["classes"]) >= set(classes) and 0 < report["macro_f1"] <= 1
    assert report["accuracy"] > 0.8 and report["roc_auc"] is not None
    assert [b["short_name"] for b in report["baselines"]] == ["tfidf_lr"]  # NB-LR is binary
    assert report["baselines"][0]["accuracy"] > 0.8
    text = f"the plot was {CLASS_WORDS[classes[-1]][0]} and {CLASS_WORDS[classes[-1]][1]}."
    result = predict(text, model=output, all_scores=True)
    assert result["label"] == classes[-1] and list(result["scores"]) == classes
    assert sum(result["scores"].values()) == pytest.approx(1.0)
    assert result["score"] == pytest.approx(max(result["scores"].values()))
    assert "macro-F1" in (output / "report.md").read_text()


def _star_reviews(path, n=300, seed=11):
    """Another domain's file: columns ``body``/``stars``; 1-2 stars the negative reviews, 4-5 the
    positive ones, 3 a neutral row in between."""
    rows = synthetic_reviews(n, seed)
    with open(path, "w", newline="") as handle:
        writer = csv.writer(handle)
        writer.writerow(["stars", "body", "product"])
        for i, row in enumerate(rows):
            stars = 3 if i % 10 == 0 else (4 + i // 2 % 2 if row["label"] else 1 + i // 2 % 2)
            writer.writerow([stars, row["text"], f"p{i}"])
    return path


def test_cross_domain_evaluation_maps_columns_and_labels(trained_model, synthetic_dir, tmp_path,
                                                         capsys):
    data = _star_reviews(tmp_path / "products.csv")
    assert commands.run("evaluate", [
        "--model", str(trained_model), "--cross-domain", str(data), "--text-column", "body",
        "--label-column", "stars", "--label-map", "1=negative", "2=Negative", "4=positive",
        "5=positive", "--skip-labels", "3"]) == 0
    printed = json.loads(capsys.readouterr().out)
    output = trained_model / "cross-domain-products"
    assert printed["report"] == str(output) and printed["n"] == 270  # 30 neutral rows dropped
    report = json.loads((output / "report.json").read_text())
    assert report["split"] == "cross-domain" and report["data"] == str(data)
    header = (output / "report.md").read_text().splitlines()
    assert header[0] == f"# Evaluation report: cross-domain, {data}"
    assert f"every row of {data}" in header[2] and str(synthetic_dir) in header[2]
    assert report["label_mapping"] == {"1": "negative", "2": "negative", "3": None,
                                       "4": "positive", "5": "positive"}
    assert report["accuracy"] > 0.9  # the sentiment words carry over; the filler is the same
    # the baselines are fitted on the model's own training reviews and scored on these rows
    assert [b["short_name"] for b in report["baselines"]] == ["tfidf_lr", "nb_lr"]
    assert all(b["accuracy"] > 0.9 for b in report["baselines"])
    # the model's own in-domain report is untouched
    assert json.loads((trained_model / "report.json").read_text())["split"] == "test"


def test_cross_domain_names_unmapped_labels_and_bad_maps(trained_model, tmp_path, capsys):
    data = _star_reviews(tmp_path / "products.csv", n=40)
    args = ["--model", str(trained_model), "--cross-domain", str(data), "--text-column", "body",
            "--label-column", "stars", "--no-baseline"]
    assert commands.run("evaluate", args) == 1
    error = capsys.readouterr().err.strip().splitlines()[-1]
    assert "['1', '2', '3', '4', '5']" in error and "--label-map" in error
    assert commands.run("evaluate", args + ["--label-map", "1=awful"]) == 1
    error = capsys.readouterr().err.strip().splitlines()[-1]
    assert "'awful' is not one of the model's labels ['negative', 'positive']" in error
    assert commands.run("evaluate", args + ["--label-map", "1negative"]) == 1
    assert "expected VALUE=LABEL" in capsys.readouterr().err
    assert commands.run("evaluate", args[:4] + ["--text-column", "review"] + args[6:]) == 1
    assert "['stars', 'body', 'product']" in capsys.readouterr().err


def test_cross_domain_without_the_training_data_reports_no_baselines(trained_model, tmp_path):
    import shutil

    moved = tmp_path / "moved"
    shutil.copytree(trained_model, moved, ignore=shutil.ignore_patterns("cross-domain-*"))
    config = json.loads((moved / "config.json").read_text())
    config["data"]["source"] = str(tmp_path / "gone")
    (moved / "config.json").write_text(json.dumps(config))
    rows = synthetic_reviews(60, 3)
    data = tmp_path / "imdb-like.jsonl"
    data.write_text("".join(json.dumps({"review": r["text"],
                                        "sentiment": ["neg", "pos"][r["label"]]}) + "\n"
                            for r in rows))
    report = evaluation.evaluate_cross_domain(moved, data, tmp_path / "out", "review", "sentiment")
    assert report["n"] == 60 and report["accuracy"] > 0.9  # neg/pos map onto IMDB's labels
    assert "baselines" not in report
    assert "is not at hand" in report["baseline_error"]


def test_the_test_split_is_deduplicated_against_what_there_is(tmp_path, caplog):
    """seen_elsewhere: a single file has no unlabelled reviews beside it (read as such it would
    be itself, its test rows included: every test review 'seen'); a folder without an
    unsupervised file neither; unlabelled reviews that cannot be read are named with why."""
    rows = synthetic_reviews(40, 7)
    data = SimpleNamespace(train=datasets.Dataset.from_list(rows[:30]),
                           valid=datasets.Dataset.from_list(rows[30:35]))
    whole = tmp_path / "tickets.csv"
    with open(whole, "w", newline="") as handle:  # a "text" column: readable as unlabelled
        writer = csv.writer(handle)
        writer.writerow(["text", "label"])
        writer.writerows([row["text"], row["label"]] for row in rows)

    def seen(source, **options):
        config = pipeline.make_config("tiny", data=str(source), **options)
        caplog.clear()
        with caplog.at_level(logging.INFO, logger="sentiment.train.evaluation"):
            return evaluation.seen_elsewhere(data, config)

    expected = {row["text"] for row in rows[:35]}
    for source, options in ((whole, {}), (whole, {"text_column": "body"})):
        assert seen(source, **options) == expected  # not the test rows 35-39
        assert caplog.messages == [f"deduplicated the test split against the training file "
                                   f"(no unlabelled reviews beside {whole})"]
    folder = tmp_path / "folder"
    folder.mkdir()
    assert seen(folder) == expected
    assert caplog.messages == [f"deduplicated the test split against the training file (no "
                               f"unlabelled reviews beside {folder})"]
    (folder / "unsupervised.jsonl").write_text(json.dumps({"body": "an unlabelled one"}) + "\n")
    assert seen(folder) == expected
    assert "against the training file only" in caplog.text and "no column" in caplog.text.lower()
    assert seen(folder, unlabelled_column="body") == expected | {"an unlabelled one"}
    assert seen(whole, unlabelled=str(folder / "unsupervised.jsonl"),
                unlabelled_column="body") == expected | {"an unlabelled one"}
