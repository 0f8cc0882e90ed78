"""Texts routed by length (sentiment.kinds.routed): short texts to one model, long ones to
another, as a model folder like any other."""

from __future__ import annotations

import json
import shutil

import numpy as np
import pytest
from conftest import synthetic_reviews

from sentiment import load_model, predict
from sentiment.cli import main as commands
from sentiment.kinds.protocol import CapabilityError, require, supports
from sentiment.kinds.registry import load_folder
from sentiment.kinds.routed import RoutedModel, save_routed, word_counts

SHORT = ["Dull and awful.", "Loved it, brilliant!", "A superb film.", "Boring.",
         "the movie was long and the plot was dull"]


@pytest.fixture(scope="module")
def texts() -> list[str]:
    return SHORT + [row["text"] for row in synthetic_reviews(40, seed=73)]


@pytest.fixture(scope="module")
def routed(trained_model, wide_model, tmp_path_factory):
    """Texts of at most 9 words to the tiny model, the rest to the wide one on it."""
    return save_routed([trained_model, wide_model[0]], [9],
                       tmp_path_factory.mktemp("routed") / "routed", load_folder)


def test_each_text_is_scored_by_the_model_its_length_routes_it_to(routed, trained_model,
                                                                   wide_model, texts):
    model = load_model(routed)
    assert isinstance(model, RoutedModel) and model.kind == "routed"
    short = word_counts(texts) <= 9
    assert short[:len(SHORT)].all() and not short[len(SHORT):].all()  # both routes used
    np.testing.assert_array_equal(model.routes(texts), np.where(short, 0, 1))
    expected = np.where(short, load_model(trained_model).text_probabilities(texts),
                        load_model(wide_model[0]).text_probabilities(texts))
    np.testing.assert_allclose(model.text_probabilities(texts), expected, atol=1e-6)
    results = predict(texts, model=routed, all_scores=True)
    np.testing.assert_allclose([r["scores"][model.labels[1]] for r in results], expected,
                               atol=1e-6)
    assert predict(texts[0], model=routed)["label"] == model.labels[int(expected[0] >= 0.5)]
    # only the long texts, only the short ones, none: the same answers, in order
    np.testing.assert_allclose(model.text_probabilities(texts[len(SHORT):]),
                               expected[len(SHORT):], atol=1e-6)
    np.testing.assert_allclose(model.text_probabilities(SHORT), expected[:len(SHORT)],
                               atol=1e-6)
    assert model.text_probabilities([]).shape == (0,)


def test_words_are_counted_after_cleaning():
    assert word_counts(["One two<br /><br />three.", "  spaced   out  ", ""]).tolist() == [3, 2, 0]


def test_explain_is_the_routed_members_own(routed, trained_model, wide_model):
    model = load_model(routed)
    assert supports(model, "explain") and supports(model, "evaluate")
    short = "the plot was dull and boring"
    long = " ".join(["the movie was long and the plot was dull and boring"] * 2)
    for text, route, member in ((short, 0, trained_model), (long, 1, wide_model[0])):
        explained = model.explain(text, steps=8)
        own = load_model(member).explain(text, steps=8)
        assert explained["route"] == route
        assert [w["token"] for w in explained["words"]] == [w["token"] for w in own["words"]]
        assert explained["score"] == pytest.approx(own["score"], abs=1e-6)


def test_a_routed_folder_moves_with_its_members_and_refuses_bad_ones(trained_model, wide_model,
                                                                     texts, tmp_path):
    root = tmp_path / "here"
    shutil.copytree(trained_model, root / "short")
    shutil.copytree(wide_model[0], root / "long")
    save_routed([root / "short", root / "long"], [9], root / "routed", load_folder)
    spec = json.loads((root / "routed" / "routed.json").read_text())
    assert spec == {"routes": [{"model": "../short", "max_words": 9}, {"model": "../long"}]}
    expected = load_model(root / "routed").text_probabilities(texts)
    root.rename(tmp_path / "moved")
    np.testing.assert_allclose(load_model(tmp_path / "moved" / "routed").text_probabilities(
        texts), expected, atol=1e-6)
    with pytest.raises(ValueError, match="max_words"):
        save_routed([trained_model, wide_model[0]], [9, 20], tmp_path / "bad", load_folder)
    bad = tmp_path / "falling"
    bad.mkdir()
    (bad / "routed.json").write_text(json.dumps({"routes": [
        {"model": str(trained_model), "max_words": 20},
        {"model": str(trained_model), "max_words": 5}, {"model": str(wide_model[0])}]}))
    (bad / "model.json").write_text(json.dumps({"kind": "routed", "format_version": 1}))
    with pytest.raises(ValueError, match="rise"):
        load_model(bad)
    with pytest.raises(FileNotFoundError):  # a member that is not there: nothing left behind
        save_routed([trained_model, tmp_path / "nowhere"], [9], tmp_path / "lost", load_folder)
    assert not (tmp_path / "lost").exists()
    with pytest.raises(ValueError, match="holds a model already"):  # never over a model
        save_routed([trained_model, wide_model[0]], [9], tmp_path / "moved" / "routed",
                    load_folder)
    (bad / "routed.json").write_text(json.dumps({"routes": [
        {"model": str(trained_model), "max_words": True}, {"model": str(wide_model[0])}]}))
    with pytest.raises(ValueError, match="positive whole number"):
        load_model(bad)


def test_a_routed_model_with_a_member_that_cannot_explain_refuses(trained_model, wide_model,
                                                                  tmp_path):
    ngram = wide_model[0] / "wide"  # the wide model's n-gram part: a model of its own
    folder = save_routed([ngram, trained_model], [9], tmp_path / "routed", load_folder)
    model = load_model(folder)
    with pytest.raises(CapabilityError, match=r"\(routed model\) cannot explain"):
        require(model, "explain")
    assert model.text_probabilities(["Loved it."]).shape == (1,)
    # the words it knows are its vocabulary's: an n-gram member's tokens would hide foreign text
    assert model.words == frozenset(load_model(trained_model).words)


def test_the_route_command_writes_a_folder(trained_model, wide_model, tmp_path, capsys):
    out = tmp_path / "routed"
    assert commands.main(["route", "--models", str(trained_model), str(wide_model[0]),
                          "--max-words", "9", "--output", str(out)]) == 0
    printed = json.loads(capsys.readouterr().out)
    assert printed["max_words"] == [9] and load_model(out).kind == "routed"
    with pytest.raises(SystemExit):  # a --max-words per model but the last
        commands.main(["route", "--models", str(trained_model), str(wide_model[0]),
                       "--max-words", "9", "20", "--output", str(tmp_path / "x")])
    assert "one per model but the last" in capsys.readouterr().err


def test_torch_threads_are_set_for_a_composite_with_a_torch_member(routed, wide_model):
    from sentiment.kinds.registry import scored_by_torch

    assert scored_by_torch(routed) and scored_by_torch(wide_model[0])
    assert not scored_by_torch(wide_model[0] / "wide")  # the n-gram part alone: NumPy


def test_int8_quantizes_each_member(routed, trained_model, wide_model, texts):
    model = load_model(routed, "cpu", quantize="int8")
    assert model.quantize == "int8" and all(m.quantize == "int8" for m in model.members)
    expected = np.where(word_counts(texts) <= 9,
                        load_model(trained_model, "cpu", "int8").text_probabilities(texts),
                        load_model(wide_model[0], "cpu", "int8").text_probabilities(texts))
    predicted = predict(texts, model=routed, device="cpu", quantize="int8", all_scores=True)
    # dynamic int8 scales each batch's activations by its own range: the routed members'
    # batches hold other texts than the members' own call, so agreement is to 1e-3, not exact
    np.testing.assert_allclose(model.text_probabilities(texts), expected, atol=1e-3)
    np.testing.assert_allclose([r["scores"]["positive"] for r in predicted], expected,
                               atol=1e-3)


def test_a_served_routed_model_scores_and_explains_by_its_members(routed, trained_model,
                                                                    wide_model):
    pytest.importorskip("fastapi")
    from fastapi.testclient import TestClient

    from sentiment.serve.app import ServeConfig, create_app

    short = "the plot was dull and boring"
    long = " ".join(["the movie was long and the plot was dull and boring"] * 2)
    with TestClient(create_app(str(routed), ServeConfig())) as client:
        served = client.post("/predict", json={"text": [short, long]})
        assert served.status_code == 200
        expected = predict([short, long], model=routed)
        assert [r["label"] for r in served.json()] == [r["label"] for r in expected]
        assert [r["score"] for r in served.json()] == pytest.approx([r["score"] for r in expected])
        for text, route, member in ((short, 0, trained_model), (long, 1, wide_model[0])):
            explained = client.post("/explain", json={"text": text})
            assert explained.status_code == 200, explained.text
            body = explained.json()
            own = load_model(member).explain(text)
            assert body["route"] == route and body["label"] == own["label"]
            assert [w["token"] for w in body["words"]] == [w["token"] for w in own["words"]]


def test_a_routed_model_is_evaluated_on_another_labelled_file(routed, texts, tmp_path):
    import pandas as pd

    from sentiment.train.evaluation import evaluate_cross_domain

    rows = synthetic_reviews(60, seed=74)
    frame = pd.DataFrame({"review": [SHORT[1], SHORT[0]] + [r["text"] for r in rows],
                          "stars": ["pos", "neg"] + [["neg", "pos"][r["label"]] for r in rows]})
    frame.to_csv(tmp_path / "other.csv", index=False)
    report = evaluate_cross_domain(routed, tmp_path / "other.csv", tmp_path / "out", "review",
                                   "stars", baseline=False, sentences=None)
    assert report["n"] == 62 and report["accuracy"] > 0.9
    expected = load_model(routed).text_probabilities(frame["review"].tolist())
    assert report["accuracy"] == pytest.approx(
        float(((expected >= 0.5) == (frame["stars"] == "pos")).mean()))
