"""A confidence cascade (sentiment.kinds.cascade): the fast model's call where it is sure, the full
model's elsewhere, as a model folder like any other."""

from __future__ import annotations

import json
import shutil
import subprocess
import sys

import numpy as np
import pytest
from conftest import IMDB, needs, synthetic_reviews

from sentiment import load_model, predict
from sentiment.kinds.cascade import CascadeModel
from sentiment.kinds.protocol import CapabilityError, require
from sentiment.train.thresholds import save_cascade


@pytest.fixture(scope="module")
def members(trained_model, wide_model):
    """Two binary models of the same labels: the tiny model and a wide-and-deep one on it."""
    return trained_model, wide_model[0]


@pytest.fixture(scope="module")
def texts() -> list[str]:
    return [row["text"] for row in synthetic_reviews(120, seed=71)]


def _positive(model, texts):
    return load_model(model).text_probabilities(texts)


def test_each_text_takes_the_fast_models_call_where_it_is_sure(members, texts, tmp_path):
    fast, full = members
    fast_p, full_p = _positive(fast, texts), _positive(full, texts)
    sure = np.maximum(fast_p, 1 - fast_p)
    threshold = float(np.median(sure))  # about half the texts each way
    folder = save_cascade([fast, full], [threshold], tmp_path / "cascade")
    model = load_model(folder)
    assert isinstance(model, CascadeModel) and model.threshold == threshold
    probs, sent = model.escalated(texts)
    np.testing.assert_array_equal(sent, sure < threshold)
    assert 0 < sent.sum() < len(texts)  # both members score some
    np.testing.assert_allclose(probs, np.where(sent, full_p, fast_p), atol=1e-6)
    results = predict(texts, model=folder, all_scores=True)
    assert [r["label"] for r in results] == [model.labels[int(p >= 0.5)] for p in probs]
    np.testing.assert_allclose([r["scores"][model.labels[1]] for r in results], probs,
                               atol=1e-6)
    # the extremes: every text to the fast model, or every one to the full model
    always_fast = load_model(save_cascade([fast, full], [0.5], tmp_path / "fast"))
    np.testing.assert_allclose(always_fast.text_probabilities(texts), fast_p, atol=1e-6)
    always_full = load_model(save_cascade([fast, full], [1.0], tmp_path / "full"))
    np.testing.assert_allclose(always_full.text_probabilities(texts), full_p, atol=1e-6)


def test_a_cascade_folder_moves_with_its_members_and_refuses_bad_ones(members, texts, tmp_path):
    fast, full = members
    root = tmp_path / "here"
    shutil.copytree(fast, root / "fast")
    shutil.copytree(full, root / "full")
    save_cascade([root / "fast", root / "full"], [0.9], root / "cascade")
    spec = json.loads((root / "cascade" / "cascade.json").read_text())
    assert spec == {"stages": [{"model": "../fast", "threshold": 0.9},  # relative: it moves
                               {"model": "../full"}]}
    moved = tmp_path / "moved"
    root.rename(moved)
    expected = load_model(save_cascade([fast, full], [0.9], tmp_path / "ref")).text_probabilities(
        texts)
    np.testing.assert_allclose(load_model(moved / "cascade").text_probabilities(texts),
                               expected, atol=1e-6)
    with pytest.raises(ValueError, match="threshold"):
        save_cascade([fast, full], [0.4], tmp_path / "low")
    with pytest.raises(ValueError, match="binary classifiers"):  # no cascade of cascades
        save_cascade([moved / "cascade", full], [0.9], tmp_path / "nested")
    assert not (tmp_path / "nested" / "cascade.json").exists()
    with pytest.raises(CapabilityError, match=r"\(cascade model\) cannot explain"):
        require(load_model(moved / "cascade"), "explain")


def test_a_cascade_is_a_model_for_the_command_line_and_evaluate(members, synthetic_dir,
                                                                tmp_path):
    fast, full = members
    folder = save_cascade([fast, full], [0.9], tmp_path / "cascade")
    done = subprocess.run([sys.executable, "-m", "sentiment", "predict", "--model", str(folder),
                           "A wonderful, moving film."], capture_output=True, text=True,
                          timeout=300)
    assert done.returncode == 0, done.stderr[-2000:]
    assert json.loads(done.stdout) == {
        "text": "A wonderful, moving film.",
        **predict("A wonderful, moving film.", model=folder)}
    from sentiment.train.evaluation import evaluate_saved_model

    report = evaluate_saved_model(folder, str(synthetic_dir), "test", tmp_path / "report",
                                  baseline=False)
    rows = [json.loads(line) for line in (synthetic_dir / "test.jsonl").read_text().splitlines()]
    probs = load_model(folder).text_probabilities([r["text"] for r in rows])
    expected = float(((probs >= 0.5).astype(int) == np.asarray([r["label"] for r in rows])).mean())
    assert report["n"] == len(rows) and report["accuracy"] == pytest.approx(expected)


def test_cascade_benchmark_chooses_the_fewest_escalations_within_the_tolerance(members,
                                                                               synthetic_dir,
                                                                               tmp_path):
    from benchmarks import cascade
    from sentiment.train.thresholds import choose, sweep

    labels = np.array([1, 0, 1, 0])
    fast = np.array([0.99, 0.6, 0.4, 0.02])  # sure and right, unsure and wrong twice, sure
    full = np.array([0.9, 0.1, 0.8, 0.3])  # right everywhere
    rows = sweep([fast, full], labels, [0.5, 0.7, 0.995])
    assert rows["0.5"] == {"thresholds": [0.5], "accuracy": 0.5, "reaching": [1.0, 0.0]}
    assert rows["0.7"] == {"thresholds": [0.7], "accuracy": 1.0, "reaching": [1.0, 0.5]}
    assert rows["0.995"] == {"thresholds": [0.995], "accuracy": 1.0, "reaching": [1.0, 1.0]}
    assert choose(rows, 1.0, 0.0, [1, 10]) == [0.7]
    assert choose(rows, 1.0, 0.5, [1, 10]) == [0.5]
    assert choose({"0.9": {"thresholds": [0.9], "accuracy": 0.8, "reaching": [1, 1]}}, 1.0,
                  0.1, [1, 1]) is None
    fast_model, full_model = members
    result = cascade.main(["--fast", str(fast_model), "--full", str(full_model), "--data",
                           str(synthetic_dir), "--thresholds", "0.6", "0.99", "--tolerance",
                           "1.0", "--write", str(tmp_path / "chosen")])
    assert result["split"] == "valid" and result["chosen"] == [0.6]
    assert load_model(tmp_path / "chosen").threshold == 0.6


def test_the_cascade_command_chooses_on_validation_or_takes_a_threshold(members, synthetic_dir,
                                                                        tmp_path, capsys):
    from sentiment.cli import main as commands

    fast, full = members
    assert commands.main(["cascade", "--fast", str(fast), "--full", str(full), "--data",
                          str(synthetic_dir), "--tolerance", "1.0", "--thresholds", "0.7",
                          "0.99", "--output", str(tmp_path / "chosen")]) in (None, 0)
    printed = json.loads(capsys.readouterr().out)
    assert printed["threshold"] == printed["chosen"] == [0.7] and printed["split"] == "valid"
    assert load_model(tmp_path / "chosen").threshold == 0.7
    assert commands.main(["cascade", "--fast", str(fast), "--full", str(full), "--threshold",
                          "0.95", "--output", str(tmp_path / "given")]) in (None, 0)
    assert load_model(tmp_path / "given").threshold == 0.95
    capsys.readouterr()
    # none within the tolerance: one line naming the accuracies, nothing written
    assert commands.main(["cascade", "--fast", str(fast), "--full", str(full), "--data",
                          str(synthetic_dir), "--tolerance", "-1", "--output",
                          str(tmp_path / "none")]) == 1
    assert "no threshold" in capsys.readouterr().err
    assert not (tmp_path / "none" / "cascade.json").exists()


def test_a_cascade_serves_and_scores_files_and_ray_batches(members, texts, tmp_path):
    """The server, file scoring and the Ray Data callable take a cascade folder and score as
    predict does; explanations are refused with the reason."""
    import pandas as pd
    from fastapi.testclient import TestClient

    from sentiment.inference.files import BatchScorer, score_file
    from sentiment.serve.app import create_app

    fast, full = members
    folder = save_cascade([fast, full], [0.9], tmp_path / "cascade")
    expected = predict(texts[:20], model=folder)
    with TestClient(create_app(str(folder))) as client:
        answer = client.post("/predict", json={"text": texts[:20]}).json()
        assert [r["label"] for r in answer] == [r["label"] for r in expected]
        np.testing.assert_allclose([r["score"] for r in answer],
                                   [r["score"] for r in expected], atol=1e-6)
        explained = client.post("/explain", json={"text": texts[0]})
        assert explained.status_code == 422 and "cascade" in explained.json()["detail"]
    pd.DataFrame({"review": texts[:20]}).to_csv(tmp_path / "in.csv", index=False)
    score_file(tmp_path / "in.csv", tmp_path / "out.csv", "review", folder, progress=False)
    scored = pd.read_csv(tmp_path / "out.csv")
    assert scored["predicted_label"].tolist() == [r["label"] for r in expected]
    out = BatchScorer(str(folder))(pd.DataFrame({"text": texts[:20]}))
    np.testing.assert_allclose(out["predicted_score"], [r["score"] for r in expected], atol=1e-6)


@needs(IMDB / "test.parquet")
def test_shipped_cascade_is_imdb_ngram_then_imdb_fasts_int8_export_then_imdb_onnx():
    """sentiment/models/imdb-cascade: imdb-ngram first, imdb-fast's int8 export (the same
    vocabulary, config and n-gram part) next, the shipped imdb-onnx last, the thresholds the ones
    chosen on validation; the three share one n-gram model, loaded once. On real reviews the fast
    stage scores within int8's tolerance of imdb-fast, and each stage answers some. A new
    imdb-fast shipped without exporting this again fails here."""
    import pyarrow.parquet as pq

    from sentiment.kinds.registry import SHIPPED_MODELS

    shipped, fast = SHIPPED_MODELS["imdb-cascade"], SHIPPED_MODELS["imdb-fast"]
    spec = json.loads((shipped / "cascade.json").read_text())
    assert spec == {"stages": [{"model": "../imdb-ngram", "threshold": 0.95},
                               {"model": "fast", "threshold": 0.9}, {"model": "../imdb-onnx"}]}
    wide = [f"wide/{f.name}" for f in (fast / "wide").iterdir()]
    for name in ("vocab.json", "wide.json", *wide):
        assert (shipped / "fast" / name).read_bytes() == (fast / name).read_bytes(), name
    assert (json.loads((shipped / "fast" / "config.json").read_text())
            == json.loads((fast / "config.json").read_text()))
    record = json.loads((shipped / "fast" / "export.json").read_text())
    assert (record["quantize"], record["source"]) == ("int8", "sentiment/models/imdb-fast")
    table = pq.read_table(IMDB / "test.parquet", columns=["text"])
    reviews = table.take(np.arange(0, 25_000, 125))["text"].to_pylist()  # 200, both labels
    cascade = load_model("imdb-cascade")
    assert [stage.path for stage in (cascade.stages[0], cascade.stages[2])] == [
        str(SHIPPED_MODELS[name].resolve()) for name in ("imdb-ngram", "imdb-onnx")]
    assert cascade.ngram_parts[0] is cascade.ngram_parts[1] is cascade.ngram_parts[2]
    reference = load_model(fast).text_probabilities(reviews, mixed_precision=False)
    scores = cascade.stages[1].text_probabilities(reviews)
    assert np.abs(scores - reference).max() <= 0.05  # int8's tolerance, as tests/test_onnx.py
    assert ((scores >= 0.5) != (reference >= 0.5)).mean() <= 0.01
    probs, stage = cascade.routed(reviews)
    share = np.bincount(stage, minlength=3) / len(reviews)
    # on validation: 69.0% answered by the n-gram stage, 10.6% by the fast one, 20.4% by the last
    assert share[0] > 0.4 and share[1] > 0.02 and 0.05 < share[2] < 0.4


def test_an_ngram_model_can_be_the_fast_one(members, texts, tmp_path):
    """Any binary model may be a member: an NB-LR n-gram model first, the LSTM for the rest."""
    from sentiment.kinds.ngram import LinearModel

    rows = synthetic_reviews(400, seed=5)
    LinearModel.fit("nb_lr", [r["text"] for r in rows], [r["label"] for r in rows],
                    ["negative", "positive"]).save(tmp_path / "nb")
    fast_p = load_model(tmp_path / "nb").text_probabilities(texts)
    labels = [r["label"] for r in predict(texts, model=tmp_path / "nb")]
    assert labels == [["negative", "positive"][int(p >= 0.5)] for p in fast_p]
    model = load_model(save_cascade([tmp_path / "nb", members[1]], [0.8], tmp_path / "cascade"))
    probs, sent = model.escalated(texts)
    np.testing.assert_array_equal(sent, np.maximum(fast_p, 1 - fast_p) < 0.8)
    np.testing.assert_allclose(probs[~sent], fast_p[~sent])
    with pytest.raises(ValueError, match="full model is a classifier"):  # not the other way
        save_cascade([members[1], tmp_path / "nb"], [0.8], tmp_path / "reversed")
    np.testing.assert_allclose(probs[sent], _positive(members[1], [texts[i] for i in
                                                                   np.flatnonzero(sent)]),
                               atol=1e-6)


def test_three_stages_route_each_text_to_the_first_stage_sure_of_it(members, texts, tmp_path):
    """n-gram -> LSTM -> wide and deep: a text keeps the first stage's score that is sure
    enough; the n-gram model and the wide part it shares with the last stage are loaded once,
    and each text's n-gram log-odds computed once (the last stage reuses the first's)."""
    from sentiment.train.thresholds import route

    fast, full = members
    ngram = full / "wide"  # the wide-and-deep model's own n-gram part, a model of its own
    alone = [_positive(m, texts) for m in (ngram, fast, full)]
    sure = [np.maximum(p, 1 - p) for p in alone[:2]]
    thresholds = [float(np.quantile(sure[0], 0.4)), float(np.quantile(sure[1], 0.5))]
    folder = save_cascade([ngram, fast, full], thresholds, tmp_path / "three")
    model = load_model(folder)
    assert model.thresholds == thresholds and len(model.stages) == 3
    assert model.ngram_parts[0] is model.ngram_parts[2] is model.stages[2].wide.linear
    # the words it knows are its vocabularies' (for the unreadable flag), not the n-grams'
    assert model.words == frozenset(model.stages[1].words) | frozenset(model.stages[2].words)
    calls = []
    part = model.ngram_parts[0]
    original = part.logits
    part.logits = lambda batch: calls.append(len(batch)) or original(batch)
    try:
        probs, stage = model.routed(texts)
    finally:
        part.logits = original
    expected, expected_stage = route(alone, thresholds)
    np.testing.assert_array_equal(stage, expected_stage)
    assert set(stage.tolist()) == {0, 1, 2}  # every stage answers some
    np.testing.assert_allclose(probs, expected, atol=1e-6)
    assert calls == [len(texts)]  # once, for every text, though two stages read it
    assert [r["label"] for r in predict(texts, model=folder)] == [
        model.labels[int(p >= 0.5)] for p in probs]


def test_an_older_two_stage_cascade_file_still_loads(members, texts, tmp_path):
    fast, full = members
    folder = save_cascade([fast, full], [0.8], tmp_path / "new")
    old = tmp_path / "old"
    old.mkdir()
    (old / "cascade.json").write_text(json.dumps({"fast": str(fast), "full": str(full),
                                                  "threshold": 0.8}))
    (old / "model.json").write_text((folder / "model.json").read_text())
    np.testing.assert_allclose(load_model(old).text_probabilities(texts),
                               load_model(folder).text_probabilities(texts), atol=1e-9)
    for bad in ([fast], [fast, full, full]):
        with pytest.raises(ValueError, match="threshold"):
            save_cascade(bad, [0.8], tmp_path / "bad")


def test_three_stage_thresholds_are_the_cheapest_within_the_tolerance(members, synthetic_dir,
                                                                      tmp_path, capsys):
    from sentiment.cli import main as commands
    from sentiment.train.thresholds import choose, sweep

    labels = np.array([1, 0, 1, 0])
    first = np.array([0.99, 0.6, 0.6, 0.6])  # sure and right once
    second = np.array([0.5, 0.05, 0.7, 0.95])  # sure: right on the second, wrong on the last
    last = np.array([0.9, 0.1, 0.8, 0.3])  # right everywhere
    rows = sweep([first, second, last], labels, [0.9, 0.99])
    assert rows["0.9,0.9"] == {"thresholds": [0.9, 0.9], "accuracy": 0.75,
                               "reaching": [1.0, 0.75, 0.25]}
    assert rows["0.99,0.99"]["accuracy"] == 1.0
    assert choose(rows, 1.0, 0.0, [1, 2, 100]) == [0.9, 0.99]  # the last stage is dear
    assert choose(rows, 1.0, 0.3, [1, 2, 100]) == [0.9, 0.9]
    fast, full = members
    assert commands.main(["cascade", "--stages", str(full / "wide"), str(fast), str(full),
                          "--data", str(synthetic_dir), "--tolerance", "1.0", "--thresholds",
                          "0.7", "0.99", "--output", str(tmp_path / "three")]) in (None, 0)
    printed = json.loads(capsys.readouterr().out)
    assert len(printed["seconds_per_review"]) == 3 and len(printed["accuracy"]) == 3
    assert printed["threshold"] == printed["chosen"] and len(printed["chosen"]) == 2
    assert load_model(tmp_path / "three").thresholds == printed["chosen"]
    with pytest.raises(SystemExit) as exited:  # one way of naming the models, not two
        commands.main(["cascade", "--stages", str(fast), "--fast", str(fast), "--output",
                       str(tmp_path / "both")])
    assert exited.value.code == 2 and "--stages" in capsys.readouterr().err
