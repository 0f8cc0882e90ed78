"""The model shipped in the package: works with no set-up, still scores what its card says."""

from __future__ import annotations

import importlib
import json

import numpy as np
import pytest
from conftest import IMDB, needs

from sentiment import load_model, predict
from sentiment.kinds.registry import SHIPPED_MODEL, SHIPPED_MODELS

# every model shipped inside the package (imdb, and imdb-fast where it ships): each has its card
EVERY_MODEL = pytest.mark.parametrize("name", sorted(SHIPPED_MODELS))
# how far the whole test split's accuracy may be from the card's: 50 of 25,000 reviews, for
# the precision of another CPU (see the test)
TOLERANCE = 0.002


def test_predict_works_with_no_path_or_environment(monkeypatch):
    monkeypatch.delenv("SENTIMENT_MODEL", raising=False)
    assert predict("A wonderful film, moving and beautifully acted.")["label"] == "positive"
    assert predict("A dull, boring waste of two hours.")["label"] == "negative"
    assert load_model().path == str(SHIPPED_MODEL.resolve())
    module = importlib.import_module("sentiment.kinds.registry")
    assert module.SHIPPED_MODEL.is_dir()


@EVERY_MODEL
def test_shipped_files_are_small_and_complete(name):
    shipped = SHIPPED_MODELS[name]
    names = {f.name for f in shipped.iterdir()}
    assert "card.json" in names
    folders = [shipped]
    if "ensemble.json" in names:  # an ensemble: every member a complete model folder
        members = json.loads((shipped / "ensemble.json").read_text())["members"]
        folders = [shipped / name for name in members]
        assert len(folders) >= 2
    if "cascade.json" in names:  # a cascade: stages inside it, or other shipped models beside
        from sentiment.kinds.cascade import stage_specs

        stages = stage_specs(json.loads((shipped / "cascade.json").read_text()))
        folders = [(shipped / stage["model"]).resolve() for stage in stages]
        assert all(folder.parent in (shipped.resolve(), shipped.resolve().parent)
                   for folder in folders)
        assert folders[-1].parent == shipped.resolve().parent  # the full one: another shipped model
    if "routed.json" in names:  # a routed model: its members inside it
        routes = json.loads((shipped / "routed.json").read_text())["routes"]
        folders = [(shipped / route["model"]).resolve() for route in routes]
        assert len(folders) >= 2 and all(folder.parent == shipped.resolve() for folder in folders)
    for folder in folders:  # weights in safetensors, or an ONNX graph (imdb-onnx)
        files = {f.name for f in folder.iterdir()}
        if "linear.json" in files:  # an n-gram model (imdb-ngram): its weights and n-grams
            assert {"config.json", "linear.safetensors", "ngrams.json"} <= files, folder
        else:
            assert {"config.json", "vocab.json"} <= files, folder
            assert {"model.safetensors", "model.onnx"} & files, folder
        assert predict("A wonderful, moving film.", model=folder)["label"] == "positive"
    total = sum(f.stat().st_size for f in shipped.rglob("*") if f.is_file())
    assert total <= 15 * 2**20
    assert predict("A dull, boring waste of two hours.", model=name)["label"] == "negative"


@pytest.mark.slow
@needs(IMDB)
@EVERY_MODEL
def test_accuracy_on_the_whole_test_split_matches_the_card(name):
    """All 25,000 test reviews, scored by predict as a user would: the accuracy must equal the
    card's within TOLERANCE. The card is generated from a report on the same reviews, so only
    the precision on another CPU can move it (bfloat16 autocast or float32; the float16 and
    float32 copies of the weights differ on 2 reviews). A model one point worse (250 reviews)
    fails."""
    import pyarrow.parquet as pq

    card = json.loads((SHIPPED_MODELS[name] / "card.json").read_text())
    test = pq.read_table(IMDB / "test.parquet").to_pydict()
    assert card["n_test"] == len(test["text"])
    results = predict(test["text"], model=name, batch_size=64)
    predicted = np.asarray([r["label"] == "positive" for r in results], dtype=int)
    accuracy = float((predicted == np.asarray(test["label"])).mean())
    assert abs(accuracy - card["test_accuracy"]) <= TOLERANCE, (accuracy, card["test_accuracy"])


@EVERY_MODEL
def test_the_card_is_its_report(name):
    """card.json holds the figures of the report it was generated from and counts every read
    of the test split."""
    card = json.loads((SHIPPED_MODELS[name] / "card.json").read_text())
    assert card["test_reads_count"] == len(card["test_reads"]) >= 1
    low, high = card["test_accuracy_ci95"]
    assert low < card["test_accuracy"] < high
    assert {"tfidf_lr", "nb_lr"} <= set(card["baselines"])


@needs(IMDB / "test.parquet")
def test_shipped_model_cross_domain_on_renamed_real_reviews(tmp_path):
    """Real reviews in a file of another shape (``review``/``sentiment``, pos/neg) go through
    the cross-domain evaluation with their columns and spellings mapped."""
    import pandas as pd

    from sentiment.train.evaluation import evaluate_cross_domain

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


@EVERY_MODEL
def test_every_shipped_folder_declares_its_kind(name):
    """Each shipped folder (and each folder inside it: members, n-gram parts) names its kind in
    model.json, and the registry loads it as that kind."""
    from sentiment.kinds.registry import MODEL_FILE, kind_of

    shipped = SHIPPED_MODELS[name]
    expected = {"imdb": "routed", "imdb-fast": "wide", "imdb-onnx": "onnx",
                "imdb-cascade": "cascade", "imdb-ngram": "ngram"}
    assert json.loads((shipped / MODEL_FILE).read_text()) == {"kind": expected[name],
                                                               "format_version": 1}
    assert load_model(name).kind == expected[name]
    inside = {"ngram", "onnx"} | ({"wide"} if expected[name] == "routed" else set())  # members
    for folder in (p for p in shipped.rglob("*") if p.is_dir()):
        assert (folder / MODEL_FILE).is_file(), folder
        assert kind_of(folder) in inside, folder


# a routed folder came after model.json: it has no form without it
@pytest.mark.parametrize("name", sorted(n for n in SHIPPED_MODELS
                                        if not (SHIPPED_MODELS[n] / "routed.json").is_file()))
def test_a_copy_without_model_json_loads_as_before(name, tmp_path, caplog):
    """A folder saved before model.json existed (today's shipped folders with it removed, and
    removed from every folder inside) loads through the legacy path, says so once, and scores
    exactly as the shipped folder does."""
    import logging
    import shutil

    from sentiment.kinds import registry

    shipped = SHIPPED_MODELS[name]
    copy = tmp_path / "models" / name
    shutil.copytree(shipped, copy)
    if name == "imdb-cascade":  # its other stages are shipped beside it: old copies of them too
        for other in ("imdb-onnx", "imdb-ngram"):
            shutil.copytree(SHIPPED_MODELS[other], tmp_path / "models" / other)
    for old in (tmp_path / "models").rglob(registry.MODEL_FILE):
        old.unlink()
    texts = ["A wonderful, moving film.", "Dull and far too long.",
             "The acting was wooden, but the music was lovely.", "I would not see it again."]
    with caplog.at_level(logging.WARNING, logger="sentiment.kinds.registry"):
        legacy = load_model(copy)
        load_model(copy, threads=3)  # loaded again: nothing said twice
    said = [r.getMessage() for r in caplog.records
            if r.getMessage().startswith(f"{copy} has no model.json")]
    assert len(said) == 1, [r.getMessage() for r in caplog.records]
    assert legacy.kind == load_model(name).kind
    np.testing.assert_array_equal(legacy.text_probabilities(texts),
                                  load_model(name).text_probabilities(texts))
