"""The model shipped in the package: works with no set-up, still scores what its card says."""

from __future__ import annotations

import importlib
import json

import numpy as np
import pytest
from conftest import IMDB, needs

from sentiment import load_model, predict
from sentiment.predict import SHIPPED_MODEL

CARD = SHIPPED_MODEL / "card.json"
# test reviews scored here (seeded sample of the 25,000; all of them take minutes on 2 cores)
SAMPLE = 3_000


def test_predict_works_with_no_path_or_environment(monkeypatch):
    monkeypatch.delenv("SENTIMENT_MODEL", raising=False)
    assert predict("A wonderful film, moving and beautifully acted.")["label"] == "positive"
    assert predict("A dull, boring waste of two hours.")["label"] == "negative"
    assert load_model().path == str(SHIPPED_MODEL.resolve())
    module = importlib.import_module("sentiment.predict")
    assert module.SHIPPED_MODEL.is_dir()


def test_shipped_files_are_small_and_complete():
    names = {f.name for f in SHIPPED_MODEL.iterdir()}
    assert "card.json" in names
    folders = [SHIPPED_MODEL]
    if "ensemble.json" in names:  # an ensemble: every member a complete model folder
        members = json.loads((SHIPPED_MODEL / "ensemble.json").read_text())["members"]
        folders = [SHIPPED_MODEL / name for name in members]
        assert len(folders) >= 2
    for folder in folders:
        assert {"config.json", "vocab.json", "model.safetensors"} <= {
            f.name for f in folder.iterdir()}, folder
        if folder != SHIPPED_MODEL:  # a member alone is a model (the card's faster choice)
            assert predict("A wonderful, moving film.", model=folder)["label"] == "positive"
    total = sum(f.stat().st_size for f in SHIPPED_MODEL.rglob("*") if f.is_file())
    assert total <= 15 * 2**20


@needs(IMDB)
def test_accuracy_on_real_test_reviews_matches_the_card():
    """The card's test accuracy minus its interval is the floor, widened by the sample's own
    95% sampling error (the card's figure is on all 25,000 test reviews)."""
    import pyarrow.parquet as pq

    card = json.loads(CARD.read_text())
    test = pq.read_table(IMDB / "test.parquet").to_pydict()
    chosen = np.random.default_rng(0).choice(len(test["text"]), SAMPLE, replace=False)
    texts = [test["text"][i] for i in chosen]
    labels = np.asarray([test["label"][i] for i in chosen])
    results = predict(texts, batch_size=64)
    predicted = np.asarray([r["label"] == "positive" for r in results], dtype=int)
    accuracy = float((predicted == labels).mean())
    low, _ = card["test_accuracy_ci95"]
    p = card["test_accuracy"]
    sampling = 1.96 * np.sqrt(p * (1 - p) / SAMPLE)
    assert accuracy >= low - sampling, (accuracy, card["test_accuracy"])


@needs(IMDB / "test.parquet")
def test_shipped_model_cross_domain_on_renamed_real_reviews(tmp_path):
    """Real reviews in a file of another shape (``review``/``sentiment``, pos/neg) go through
    the cross-domain evaluation with their columns and spellings mapped."""
    import pandas as pd

    from sentiment.pipeline import evaluate_cross_domain

    frame = pd.read_parquet(IMDB / "test.parquet").sample(300, random_state=0)
    frame = pd.DataFrame({"sentiment": frame["label"].map({0: "neg", 1: "pos"}),
                          "review": frame["text"]})
    frame.to_csv(tmp_path / "reviews.csv", index=False)
    report = evaluate_cross_domain(SHIPPED_MODEL, tmp_path / "reviews.csv", tmp_path / "out",
                                   "review", "sentiment", baseline=False)
    assert report["n"] == 300 and report["accuracy"] > 0.85
    assert report["label_mapping"] == {"neg": "negative", "pos": "positive"}


@needs(IMDB / "test.parquet")
def test_shipped_model_explanations_add_up_on_real_reviews():
    """Integrated gradients on real reviews: the words' attributions account for the logit's
    change from the baseline, and the label and score are predict's."""
    import pyarrow.parquet as pq

    model = load_model()
    texts = pq.read_table(IMDB / "test.parquet", columns=["text"]).slice(0, 6)["text"].to_pylist()
    for text in texts:
        explained = model.explain(text)
        expected = predict(text, model=model)
        assert explained["label"] == expected["label"]
        assert explained["score"] == pytest.approx(expected["score"], abs=0.03)
        change = explained["logit"] - explained["baseline_logit"]
        total = sum(w["attribution"] for w in explained["words"])
        assert total == pytest.approx(change, rel=0.1, abs=0.1)
