"""Ensembles: one model folder that averages saved classifiers' probabilities."""

from __future__ import annotations

import json
import shutil

import numpy as np
import pytest

from sentiment import load_model, predict
from sentiment.cli import main as commands
from sentiment.kinds.checkpoint import save_ensemble
from sentiment.train.evaluation import evaluate_saved_model
from sentiment.train.recipe import make_config, train_sentiment

TEXTS = ["the movie was dull and boring", "a superb and moving story, loved it",
         "the plot was long but the music was great", "worst film, a waste"]


@pytest.fixture(scope="module")
def members(synthetic_dir, trained_model, tmp_path_factory):
    """The shared tiny model and a second one of another width (same data, seed, vocabulary)."""
    other = tmp_path_factory.mktemp("other")
    train_sentiment(make_config("tiny", data=str(synthetic_dir), output=str(other), epochs=2,
                                hidden_dim=16, progress=False, baseline=False, num_proc=1))
    return trained_model, other


@pytest.fixture(scope="module")
def ensemble_dir(members, tmp_path_factory):
    output = tmp_path_factory.mktemp("ensemble") / "both"
    assert commands.run("ensemble", ["--models", *map(str, members), "--output",
                                     str(output)]) == 0
    return output


def _positive(model, texts):
    return np.array([r["scores"]["positive"] for r in predict(
        texts, model=model, all_scores=True, mixed_precision=False)])


def test_ensemble_scores_the_mean_of_its_members(members, ensemble_dir):
    expected = (_positive(members[0], TEXTS) + _positive(members[1], TEXTS)) / 2
    got = _positive(ensemble_dir, TEXTS)
    np.testing.assert_allclose(got, expected, atol=1e-5)
    labels = [r["label"] for r in predict(TEXTS, model=ensemble_dir)]
    assert labels == ["positive" if p >= 0.5 else "negative" for p in expected]
    assert json.loads((ensemble_dir / "ensemble.json").read_text())["members"] == [
        "member-0", "member-1"]


def test_ensemble_explains_with_attributions_that_add_up(ensemble_dir):
    model = load_model(ensemble_dir)
    explained = model.explain(TEXTS[0])
    assert explained["label"] == predict(TEXTS[0], model=ensemble_dir)["label"] == "negative"
    total = sum(w["attribution"] for w in explained["words"])
    assert total == pytest.approx(explained["logit"] - explained["baseline_logit"], rel=0.05,
                                  abs=0.05)
    top = sorted(explained["words"], key=lambda w: -w["weight"])[:2]
    assert {w["token"] for w in top} == {"dull", "boring"}


def test_ensemble_evaluates_and_exports_like_a_model(ensemble_dir, synthetic_dir, tmp_path):
    report = evaluate_saved_model(ensemble_dir, data=str(synthetic_dir), output=tmp_path / "r",
                                  baseline=False, mixed_precision=False)
    assert report["n"] == 200 and report["accuracy"] > 0.9
    half = tmp_path / "half"
    assert commands.run("ensemble", ["--models", str(ensemble_dir / "member-0"),
                                     str(ensemble_dir / "member-1"), "--output", str(half),
                                     "--dtype", "float16"]) == 0
    np.testing.assert_allclose(_positive(half, TEXTS), _positive(ensemble_dir, TEXTS),
                               atol=5e-3)


def test_members_must_share_vocabulary_and_labels(members, tmp_path, capsys):
    changed = tmp_path / "changed"
    shutil.copytree(members[1], changed)
    tokens = json.loads((changed / "vocab.json").read_text())["itos"]
    tokens[2], tokens[3] = tokens[3], tokens[2]  # two words' ids swapped
    (changed / "vocab.json").write_text(json.dumps({"itos": tokens}))
    with pytest.raises(ValueError, match="another vocabulary"):
        save_ensemble([members[0], changed], tmp_path / "bad")
    assert not (tmp_path / "bad").exists()  # checked before anything is written
    relabelled = tmp_path / "relabelled"
    shutil.copytree(members[1], relabelled)
    config = json.loads((relabelled / "config.json").read_text())
    config["model"]["head"]["labels"] = ["bad", "good"]
    (relabelled / "config.json").write_text(json.dumps(config))
    assert commands.run("ensemble", ["--models", str(members[0]), str(relabelled),
                                     "--output", str(tmp_path / "bad")]) == 1
    assert "labels" in capsys.readouterr().err
    with pytest.raises(SystemExit):  # argparse's usage error, exit status 2
        commands.run("ensemble", ["--models", str(members[0]), "--output",
                                  str(tmp_path / "one")])
    assert "two or more" in capsys.readouterr().err



def test_ensemble_is_served_and_scores_files(ensemble_dir, tmp_path):
    pytest.importorskip("fastapi")
    from fastapi.testclient import TestClient

    from sentiment.serve.app import create_app

    with TestClient(create_app(ensemble_dir)) as client:
        body = client.post("/predict", json={"text": TEXTS}).json()
        assert [r["label"] for r in body] == [r["label"] for r in predict(TEXTS,
                                                                          model=ensemble_dir)]
        assert client.post("/explain", json={"text": TEXTS[1]}).json()["label"] == "positive"
    source = tmp_path / "in.csv"
    source.write_text("review\n" + "\n".join(f'"{t}"' for t in TEXTS) + "\n")
    assert commands.run("predict", ["--model", str(ensemble_dir), "--input", str(source),
                                    "--text-column", "review", "--output",
                                    str(tmp_path / "out.csv")]) == 0
    assert (tmp_path / "out.csv").read_text().count("\n") == len(TEXTS) + 1


def test_a_damaged_ensemble_file_is_named(ensemble_dir, tmp_path):
    broken = tmp_path / "broken"
    shutil.copytree(ensemble_dir, broken)
    (broken / "ensemble.json").write_text(json.dumps({"members": ["member-0"]}))
    with pytest.raises(ValueError, match="ensemble.json is damaged"):
        load_model(broken)
    (broken / "ensemble.json").write_text("{not json")
    with pytest.raises(ValueError, match="ensemble.json is damaged"):
        load_model(broken)


def test_average_weights_writes_one_model_with_the_mean_of_the_weights(members, tmp_path, capsys):
    from safetensors.torch import load_file, save_file

    first = members[0]
    scaled = tmp_path / "scaled"  # the same model with every float weight tripled
    shutil.copytree(first, scaled)
    weights = load_file(str(first / "model.safetensors"))
    save_file({k: v * 3 if v.is_floating_point() else v for k, v in weights.items()},
              str(scaled / "model.safetensors"))
    soup = tmp_path / "soup"
    assert commands.run("ensemble", ["--average", "weights", "--models", str(first),
                                     str(scaled), "--output", str(soup)]) == 0
    written = json.loads(capsys.readouterr().out)
    assert written["average"] == "weights" and written["members"] == 2
    averaged = load_file(str(soup / "model.safetensors"))
    assert set(averaged) == set(weights)
    for name, tensor in weights.items():
        expected = tensor * 2 if tensor.is_floating_point() else tensor
        np.testing.assert_allclose(averaged[name].numpy(), expected.numpy(), rtol=1e-6)
    assert not (soup / "ensemble.json").exists()  # one model, not an ensemble
    assert json.loads((soup / "average.json").read_text())["sources"] == [str(first), str(scaled)]
    # a model averaged with itself scores as it does
    itself = tmp_path / "itself"
    assert commands.run("ensemble", ["--average", "weights", "--models", str(first), str(first),
                                     "--output", str(itself)]) == 0
    np.testing.assert_allclose(_positive(itself, TEXTS), _positive(first, TEXTS), atol=1e-6)


def test_average_weights_refuses_models_of_another_shape(members, tmp_path, capsys):
    code = commands.run("ensemble", ["--average", "weights", "--models", *map(str, members),
                                     "--output", str(tmp_path / "soup")])
    assert code == 1
    assert "another architecture" in capsys.readouterr().err
    assert not (tmp_path / "soup").exists()
