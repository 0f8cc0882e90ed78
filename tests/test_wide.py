"""Wide and deep (sentiment.kinds.wide): a classifier joined to an n-gram model in one folder,
scored the same way by predict, evaluate, file scoring, explanations and its ONNX export."""

from __future__ import annotations

import json
import shutil

import numpy as np
import pytest
from conftest import printed_without, synthetic_reviews

from sentiment import load_model, predict
from sentiment.data.sources import clean_text
from sentiment.kinds.decisions import log_odds
from sentiment.kinds.ngram import LinearModel
from sentiment.kinds.wide import WIDE_FILE, Wide
from sentiment.train.stacking import build_wide


def test_build_records_a_head_fitted_on_validation_and_a_pruned_ngram_model(wide_model,
                                                                          trained_model):
    output, record = wide_model
    assert record["wide"]["ngrams"] == 300 < record["wide"]["of"]
    assert record["validation"]["n"] > 0
    assert 0.0 <= record["validation"]["joined_cross_validated"] <= 1.0
    assert json.loads((output / WIDE_FILE).read_text())["deep_weight"] == record["deep_weight"]
    assert len(LinearModel.load(output / "wide").ngrams) == 300
    with pytest.raises(ValueError, match="already wide and deep"):
        build_wide(output, output.parent / "again")


def test_wide_and_deep_scores_are_the_two_joined_by_the_head(wide_model, trained_model):
    """predict on the folder = sigmoid(a * the deep model's log-odds + b * the n-gram model's +
    c), each part computed on its own from the folders it was built from."""
    output, record = wide_model
    texts = [r["text"] for r in synthetic_reviews(40, seed=31)] + ["I hated it.", "Superb!"]
    deep = np.asarray([r["scores"]["positive"] for r in
                       predict(texts, model=trained_model, all_scores=True,
                               mixed_precision=False)])
    linear = LinearModel.load(output / "wide")
    ngram = linear.logits([clean_text(t) for t in texts])
    expected = 1 / (1 + np.exp(-(record["deep_weight"] * log_odds(deep)
                                 + record["wide_weight"] * ngram + record["bias"])))
    joined = np.asarray([r["scores"]["positive"] for r in
                         predict(texts, model=output, all_scores=True, mixed_precision=False)])
    np.testing.assert_allclose(joined, expected, atol=1e-6)
    assert not np.allclose(joined, deep, atol=1e-3)  # the wide part changes the scores
    model = load_model(output)
    with pytest.raises(ValueError, match="wide and deep"):
        model.score_encoded(model.encode(texts))


def test_pruned_model_keeps_the_largest_weights_and_saves_without_torch_tensors(tmp_path):
    rows = synthetic_reviews(300, seed=5)
    model = LinearModel.fit("nb_lr", [r["text"] for r in rows], [r["label"] for r in rows])
    small = model.pruned(20)
    assert len(small.ngrams) == 20
    kept = {g: w for g, w in zip(small.ngrams, small.weight, strict=True)}
    threshold = np.sort(np.abs(model.weight))[-20]
    assert all(abs(w) >= threshold for w in kept.values())
    assert all(model.weight[model.ngrams.index(g)] == w for g, w in kept.items())
    texts = [r["text"] for r in synthetic_reviews(30, seed=6)]
    np.testing.assert_allclose(LinearModel.load(small.save(tmp_path / "small")).logits(texts),
                               small.logits(texts))
    with pytest.raises(ValueError, match="at least one"):
        model.pruned(0)


def test_evaluate_explain_and_files_score_the_joined_model(wide_model, synthetic_dir, tmp_path):
    from sentiment.inference.files import score_file
    from sentiment.train.evaluation import evaluate_cross_domain, evaluate_saved_model
    from sentiment.train.prepare import classifier_splits

    output, _ = wide_model
    model = load_model(output)
    report = evaluate_saved_model(output, split="valid", output=tmp_path / "report",
                                  baseline=False, mixed_precision=False)
    valid = classifier_splits(model.config.data, model.config.split_seed)["valid"]
    labels = [r["label"] == "positive" for r in
              predict(valid["text"], model=output, mixed_precision=False)]
    assert report["accuracy"] == pytest.approx(np.mean(np.asarray(labels) == valid["label"]))
    crossed = evaluate_cross_domain(output, synthetic_dir / "test.jsonl", tmp_path / "cross",
                                    baseline=False, mixed_precision=False)
    rows = [json.loads(line) for line in (synthetic_dir / "test.jsonl").read_text().splitlines()]
    labels = [r["label"] == "positive" for r in
              predict([r["text"] for r in rows], model=output, mixed_precision=False)]
    assert crossed["accuracy"] == pytest.approx(np.mean(np.asarray(labels) ==
                                                        [r["label"] for r in rows]))

    text = "The plot was dull and the acting awful, but the music was superb."
    explained = model.explain(text)
    assert explained["label"] == predict(text, model=output)["label"]
    assert explained["score"] == pytest.approx(predict(text, model=output)["score"], abs=0.01)
    total = sum(w["attribution"] for w in explained["words"])
    assert total == pytest.approx(explained["logit"] - explained["baseline_logit"], abs=0.1)

    source = tmp_path / "in.csv"
    texts = [r["text"] for r in synthetic_reviews(50, seed=41)]
    source.write_text("text\n" + "".join(f'"{t}"\n' for t in texts))
    score_file(source, tmp_path / "out.csv", model=output, progress=False)
    import pandas as pd

    scored = pd.read_csv(tmp_path / "out.csv")
    expected = predict(texts, model=output)
    assert list(scored["predicted_label"]) == [r["label"] for r in expected]
    np.testing.assert_allclose(scored["predicted_score"], [r["score"] for r in expected],
                               atol=1e-5)


def test_onnx_and_float16_exports_carry_the_wide_part(wide_model, tmp_path):
    pytest.importorskip("onnxruntime")
    from sentiment.kinds.checkpoint import export_model
    from sentiment.kinds.export import export_onnx

    output, _ = wide_model
    texts = [r["text"] for r in synthetic_reviews(40, seed=52)]
    expected = np.asarray([r["scores"]["positive"] for r in
                           predict(texts, model=output, all_scores=True, mixed_precision=False)])
    export_onnx(output, tmp_path / "onnx")
    assert Wide.load(tmp_path / "onnx") is not None
    exported = np.asarray([r["scores"]["positive"] for r in
                           predict(texts, model=tmp_path / "onnx", all_scores=True)])
    np.testing.assert_allclose(exported, expected, atol=1e-4)  # the export's own tolerance
    export_model(output, tmp_path / "half", "float16")
    assert Wide.load(tmp_path / "half") is not None
    # an install without torch or scikit-learn scores the export with its n-gram part
    code = ("import json, sys; from sentiment import predict; "
            f"print(json.dumps([predict({texts[:5]!r}, model={str(tmp_path / 'onnx')!r}, "
            "all_scores=True), 'torch' in sys.modules]))")
    scored, torch_loaded = printed_without(tmp_path, ("torch", "sklearn", "scipy"), code)
    assert not torch_loaded
    np.testing.assert_allclose([r["scores"]["positive"] for r in scored], exported[:5],
                               atol=1e-9)


def test_command_line_builds_a_wide_model(trained_model, tmp_path):
    from sentiment.cli.main import run

    assert run("wide", ["--model", str(trained_model), "--output", str(tmp_path / "w"),
                        "--ngrams", "0"]) == 0
    record = json.loads((tmp_path / "w" / WIDE_FILE).read_text())
    assert record["wide"]["ngrams"] == record["wide"]["of"]
    shutil.copytree(trained_model, tmp_path / "here")  # made wide where it is
    assert run("wide", ["--model", str(tmp_path / "here"), "--output", str(tmp_path / "here"),
                        "--ngrams", "50"]) == 0
    assert Wide.load(tmp_path / "here").linear.weight.size == 50
    assert run("wide", ["--model", str(tmp_path / "missing"), "--output",
                        str(tmp_path / "x")]) == 1
    # another wide model's n-gram model, joined as it is (then the two can share it)
    assert run("wide", ["--model", str(trained_model), "--output", str(tmp_path / "joined"),
                        "--ngram-model", str(tmp_path / "here" / "wide")]) == 0
    for name in ("ngrams.json", "linear.safetensors", "linear.json"):
        assert ((tmp_path / "joined" / "wide" / name).read_bytes()
                == (tmp_path / "here" / "wide" / name).read_bytes())
    assert "n-gram model of" in json.loads((tmp_path / "joined" / WIDE_FILE).read_text())[
        "wide"]["fitted_on"]


def test_ngram_table_sums_what_the_vectorizer_counts(tmp_path):
    """NB-LR's fast path equals scikit-learn's binary 1-3-gram features times the weights:
    n-grams never span two texts, a repeated n-gram counts once, tokens in no kept n-gram
    (a pruned model) end the n-grams around them, an empty text scores its bias."""
    rows = synthetic_reviews(400, seed=7)
    model = LinearModel.fit("nb_lr", [r["text"] for r in rows], [r["label"] for r in rows])
    texts = [r["text"] for r in synthetic_reviews(60, seed=8)] + [
        "", "!!", "great great great great", "zzz great movie zzz", "movie", "the the",
        "Not bad at all! Not bad at all?", "wonderful", "boring plot"]
    for kept in (model, model.pruned(40), model.pruned(1)):
        expected = np.asarray(kept.vectorizer.transform(texts) @ kept.weight,
                              dtype=np.float64) + kept.bias
        np.testing.assert_allclose(kept.logits(texts), expected, atol=1e-5)
        # one text at a time gives the same as all together (nothing leaks across texts)
        np.testing.assert_allclose([kept.logits([t])[0] for t in texts], kept.logits(texts),
                                   atol=1e-12)
    assert model.logits([""])[0] == pytest.approx(model.bias)


def test_ngram_table_codes_each_shipped_ngram_as_its_token_ids_in_base_b():
    """The table built in one pass over all n-grams (0.15 s for the shipped model's 200,000,
    against 0.7 s one n-gram at a time) holds each n-gram's code by its definition: its tokens'
    ids, numbered from 1 in order of first appearance, as digits in base ``len(ids) + 1``; and
    it refuses n-grams longer than three tokens."""
    from sentiment.kinds.ngram import NgramTable
    from sentiment.kinds.registry import SHIPPED_MODEL

    linear = LinearModel.load(SHIPPED_MODEL / "reviews" / "wide")
    table = NgramTable(linear.ngrams, linear.weight)
    ids: dict[str, int] = {}
    for ngram in linear.ngrams:
        for token in ngram.split(" "):
            ids.setdefault(token, len(ids) + 1)
    assert list(table.ids.items()) == list(ids.items()) and table.base == len(ids) + 1
    codes = []
    for ngram in linear.ngrams:
        code = 0
        for token in ngram.split(" "):
            code = code * table.base + ids[token]
        codes.append(code)
    order = np.argsort(codes)
    np.testing.assert_array_equal(table.codes, np.asarray(codes, dtype=np.int64)[order])
    np.testing.assert_array_equal(table.weight, np.asarray(linear.weight, np.float64)[order])
    assert NgramTable([], np.zeros(0)).sums(["a film", ""]).tolist() == [0.0, 0.0]
    with pytest.raises(ValueError, match="1-3-grams"):
        NgramTable(["a b c d"], np.ones(1))


def test_ensembles_and_averages_refuse_a_wide_member(wide_model, trained_model, tmp_path):
    """Combining a wide folder's LSTM with others would silently drop its n-gram part."""
    from sentiment.kinds.checkpoint import average_weights, save_ensemble

    output, _ = wide_model
    with pytest.raises(ValueError, match="wide and deep"):
        save_ensemble([trained_model, output], tmp_path / "ensemble")
    with pytest.raises(ValueError, match="wide and deep"):
        average_weights([output, trained_model], tmp_path / "soup")


def test_profile_scoring_times_the_ngram_part_and_an_onnx_forward(wide_model, tmp_path):
    """benchmarks.profile_scoring on a wide-and-deep folder and its ONNX export: the n-gram
    part is a phase of its own, the export's forward pass one call (core and head)."""
    pytest.importorskip("onnxruntime")
    import pyarrow as pa
    import pyarrow.parquet as pq

    from benchmarks import profile_scoring
    from sentiment.kinds.export import export_onnx

    output, _ = wide_model
    export_onnx(output, tmp_path / "onnx")
    pq.write_table(pa.Table.from_pylist(synthetic_reviews(80, seed=53)),
                   tmp_path / "test.parquet")
    result = profile_scoring.main(["--data", str(tmp_path), "--models", str(output),
                                   str(tmp_path / "onnx"), "--reviews", "80", "--ort-profile"])
    torch_profile, onnx_profile = result["models"]
    # ONNX Runtime's own profile, for the export only: its operator types' shares, the
    # export's per-direction LSTMs among them
    assert "ort_node_share" not in torch_profile
    shares = onnx_profile["ort_node_share"]
    assert sum(shares.values()) == pytest.approx(1.0) and "LSTM" in shares
    assert 0 < shares["LSTM"] < 1
    common = {"clean", "tokenize", "vocabulary lookup", "wide n-grams"}
    assert set(torch_profile["seconds"]) == common | {"recurrent core", "head"}
    assert set(onnx_profile["seconds"]) == common | {"forward (ONNX Runtime)"}
    assert onnx_profile["precision"] == "as exported (ONNX)"
    assert "core_gflop_per_s" not in onnx_profile and torch_profile["core_gflop_per_s"] > 0
    for profiled in result["models"]:
        assert profiled["seconds"]["wide n-grams"] > 0 and profiled["predict_s"] > 0
        assert sum(profiled["share"].values()) == pytest.approx(1.0)


def test_an_ngram_model_scores_without_torch_spacy_or_scikit_learn(tmp_path):
    """An n-gram folder (the shipped model's wide part, and the shipped imdb-ngram, the same
    files with the config of its split) is numpy alone: predict scores it where torch, spaCy and
    scikit-learn are not installed, as it scores it here."""
    from conftest import printed_without

    from sentiment.kinds.registry import SHIPPED_MODEL, SHIPPED_MODELS

    texts = ["A wonderful, moving film.", "Dull and far too long."]
    for folder in (SHIPPED_MODEL / "reviews" / "wide", SHIPPED_MODELS["imdb-ngram"]):
        code = ("import json, sys; from sentiment import predict; "
                f"r = predict({texts!r}, model={str(folder)!r}); "
                "print(json.dumps([r, sorted(m for m in ('torch', 'spacy', 'sklearn', "
                "'datasets') if m in sys.modules)]))")
        scored, loaded = printed_without(tmp_path, ("torch", "spacy", "scikit-learn"), code)
        assert loaded == []
        assert scored == predict(texts, model=folder)
    assert load_model("imdb-ngram").capabilities == frozenset({"evaluate"})
    for name in ("linear.json", "linear.safetensors", "ngrams.json"):  # one n-gram part for all
        for other in (SHIPPED_MODEL / "reviews" / "wide", SHIPPED_MODELS["imdb-fast"] / "wide"):
            assert (SHIPPED_MODELS["imdb-ngram"] / name).read_bytes() == (
                other / name).read_bytes(), (other, name)


def test_an_ngram_folder_with_its_split_is_evaluated_like_any_model(wide_model, trained_model,
                                                                   synthetic_dir, tmp_path):
    """An n-gram folder that carries the config of the split it was fitted on (as the shipped
    imdb-ngram does) has the evaluate capability: the report scores that split's test reviews as
    predict does; without the config it is refused with the reason."""
    from sentiment.kinds.protocol import CapabilityError
    from sentiment.train.evaluation import evaluate_saved_model

    folder = tmp_path / "ngram"
    shutil.copytree(wide_model[0] / "wide", folder)
    with pytest.raises(CapabilityError, match="ngram model"):
        evaluate_saved_model(folder, str(synthetic_dir), "test", tmp_path / "refused",
                             baseline=False)
    shutil.copy(trained_model / "config.json", folder / "config.json")
    report = evaluate_saved_model(folder, str(synthetic_dir), "test", tmp_path / "report",
                                  baseline=False)
    rows = [json.loads(line) for line in (synthetic_dir / "test.jsonl").read_text().splitlines()]
    probs = load_model(folder).text_probabilities([r["text"] for r in rows])
    expected = float(((probs >= 0.5).astype(int) == np.array([r["label"] for r in rows])).mean())
    assert report["n"] == len(rows) and report["accuracy"] == pytest.approx(expected)
    assert report["split"] == "test" and "behaviour" in report


def test_the_shipped_ngram_model_works_everywhere_a_model_does(tmp_path):
    """imdb-ngram through the command line, file scoring, the server (with its refusal to
    explain) and the Ray Data callable: the same answers as predict."""
    import subprocess
    import sys

    import pandas as pd
    from fastapi.testclient import TestClient

    from sentiment.inference.files import BatchScorer, score_file
    from sentiment.serve.app import create_app

    texts = ["A wonderful, moving film.", "Dull and far too long.", "qwerty zxcv uiop",
             "I would watch it again tomorrow!"]
    expected = predict(texts, model="imdb-ngram")
    assert [r["label"] for r in expected[:2]] == ["positive", "negative"]
    done = subprocess.run([sys.executable, "-m", "sentiment", "predict", "--model", "imdb-ngram",
                           texts[0]], capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, done.stderr[-2000:]
    assert json.loads(done.stdout) == {"text": texts[0], **expected[0]}
    pd.DataFrame({"review": texts}).to_csv(tmp_path / "in.csv", index=False)
    score_file(tmp_path / "in.csv", tmp_path / "out.csv", "review", "imdb-ngram", progress=False)
    scored = pd.read_csv(tmp_path / "out.csv")
    assert scored["predicted_label"].tolist() == [r["label"] for r in expected]
    with TestClient(create_app("imdb-ngram")) as client:
        answer = client.post("/predict", json={"text": texts}).json()
        assert answer == expected
        explained = client.post("/explain", json={"text": texts[0]})
        assert explained.status_code == 422 and "ngram" in explained.json()["detail"]
    out = BatchScorer("imdb-ngram")(pd.DataFrame({"text": texts}))
    np.testing.assert_allclose(out["predicted_score"], [r["score"] for r in expected])


def test_a_wide_folder_may_share_another_folders_ngram_model(wide_model, tmp_path):
    from sentiment.kinds.registry import content_key
    from sentiment.kinds.wide import copy_wide, share_ngrams

    output, _ = wide_model
    texts = [r["text"] for r in synthetic_reviews(20, seed=53)]
    expected = load_model(output).text_probabilities(texts)
    root = tmp_path / "pair"
    shutil.copytree(output, root / "owner")
    shutil.copytree(output, root / "sharer")
    share_ngrams(root / "sharer", root / "owner")
    head = json.loads((root / "sharer" / WIDE_FILE).read_text())
    assert head["ngram_folder"] == "../owner/wide" and len(head["ngram_sha256"]) == 64
    assert not (root / "sharer" / "wide").exists()
    np.testing.assert_allclose(load_model(root / "sharer").text_probabilities(texts), expected,
                               atol=1e-9)
    # the shared files are part of what makes the model: saving them again reloads it
    key = content_key(root / "sharer")
    owner = str((root / "owner" / "wide").resolve())
    assert any(entry[0].startswith(owner) for entry in key)
    shared = root / "owner" / "wide" / "linear.json"
    saved = shared.read_bytes()
    shared.write_bytes(saved + b" ")
    assert content_key(root / "sharer") != key
    # ... and another n-gram model there is refused, not scored with this head
    with pytest.raises(ValueError, match="not the n-gram model its head was fitted with"):
        Wide.load(root / "sharer")
    shared.write_bytes(saved)
    # a copy (an export) holds the n-gram model itself
    (tmp_path / "copy").mkdir()
    assert copy_wide(root / "sharer", tmp_path / "copy")
    assert (tmp_path / "copy" / "wide" / "ngrams.json").is_file()
    assert not {"ngram_folder", "ngram_sha256"} & set(
        json.loads((tmp_path / "copy" / WIDE_FILE).read_text()))
    # two different n-gram models are not shared
    other = root / "other"
    shutil.copytree(output, other)
    (other / "wide" / "linear.json").write_bytes(saved + b" ")
    with pytest.raises(ValueError, match="different n-gram models"):
        share_ngrams(other, root / "owner")
