"""The teacher -> student path on tiny data: linear members saved without pickles, stacking
fitted on validation, soft labels on unlabelled reviews that hold no validation or test text."""

from __future__ import annotations

import json
import shutil

import numpy as np
import pytest
from conftest import synthetic_reviews, write_jsonl

from sentiment.kinds.ngram import LinearModel
from sentiment.kinds.registry import load_folder
from sentiment.kinds.stack import Teacher
from sentiment.train import prepare, pretrain
from sentiment.train import recipe as pipeline
from sentiment.train.distill import distillation_set, short_crops, teacher_logits
from sentiment.train.stacking import build_teacher


@pytest.mark.parametrize("kind", ["nb_lr", "tfidf_lr"])
def test_linear_member_saved_and_loaded_scores_the_same(kind, synthetic_dir, tmp_path):
    from sentiment.data.sources import load_reviews
    from sentiment.report.metrics import baseline_nblr, baseline_tfidf

    splits = load_reviews(synthetic_dir)
    texts, labels = splits["train"]["text"], splits["train"]["label"]
    model = LinearModel.fit(kind, texts, labels)
    model.save(tmp_path / kind)
    assert not list(tmp_path.glob(f"{kind}/*.pkl")) and not list(tmp_path.glob(f"{kind}/*.pickle"))
    loaded = LinearModel.load(tmp_path / kind)
    test = splits["test"]["text"]
    np.testing.assert_allclose(loaded.probs(test), model.probs(test), rtol=1e-6)
    # the same model as the report's baseline
    baseline = (baseline_nblr if kind == "nb_lr" else baseline_tfidf)(texts, labels, test)
    np.testing.assert_allclose(model.probs(test), baseline, atol=1e-4)
    assert ((model.probs(test) > 0.5) == np.asarray(splits["test"]["label"])).mean() > 0.9


@pytest.fixture(scope="module")
def duplicated_dir(tmp_path_factory):
    """Synthetic data whose unsupervised file holds copies of test and training reviews, and
    whose train file holds a copy of a test review (as IMDB's files do)."""
    folder = tmp_path_factory.mktemp("duplicated")
    train, test = synthetic_reviews(600, seed=11), synthetic_reviews(100, seed=12)
    train[5] = dict(test[0])  # a test review in the train file
    unlabelled = [{"text": r["text"], "label": -1} for r in synthetic_reviews(300, seed=13)]
    unlabelled += [{"text": r["text"], "label": -1} for r in test[:20]]
    unlabelled += [{"text": r["text"], "label": -1} for r in train[:40]]
    write_jsonl(folder / "train.jsonl", train)
    write_jsonl(folder / "test.jsonl", test)
    write_jsonl(folder / "unsupervised.jsonl", unlabelled)
    return folder


def held_out(folder):
    config = pipeline.make_config("tiny", data=str(folder))
    splits = prepare.classifier_splits(config.data, 0)
    return set(splits["valid"]["text"]) | set(splits["test"]["text"]), splits


def test_lm_corpus_and_unlabelled_reviews_hold_no_validation_or_test_text(duplicated_dir):
    forbidden, splits = held_out(duplicated_dir)
    unlabelled = prepare.unlabelled_reviews(pipeline.make_config("tiny", data=str(duplicated_dir)))
    assert len(unlabelled) < 360 and not set(unlabelled["text"]) & forbidden
    # validation copies among the unlabelled ones exist, so the test exercises both splits
    copies = [r["text"] for r in json_lines(duplicated_dir / "unsupervised.jsonl")]
    assert set(copies) & set(splits["valid"]["text"]) and set(copies) & set(splits["test"]["text"])
    config = pretrain.make_config("tiny", data=str(duplicated_dir), lm_valid_reviews=20,
                                  num_proc=1)
    train_texts, valid_texts = pretrain.corpus_texts(config)
    assert not (set(train_texts["text"]) | set(valid_texts["text"])) & forbidden


def json_lines(path):
    from sentiment.data.sources import clean_text

    return [{**json.loads(line), "text": clean_text(json.loads(line)["text"])}
            for line in path.read_text().splitlines()]


def test_short_crops_are_consecutive_sentences_of_the_texts():
    texts = ["One two three. Four five six seven! Eight nine ten? Eleven twelve thirteen.",
             "Alpha beta gamma delta. Epsilon zeta eta.", "Too short."]
    crops = short_crops(texts, 6, seed=3)
    assert len(crops) == len(set(crops)) == 6 and crops == short_crops(texts, 6, seed=3)
    for crop in crops:
        assert 3 <= len(crop.split()) and any(crop in text for text in texts)
        assert crop[-1] in ".!?" and crop[0].isupper()  # whole sentences
    assert "Too short." not in crops
    assert any(crop.count(".") + crop.count("!") + crop.count("?") > 1 for crop in crops)
    # asked for more than the texts hold: all there are, once each
    assert len(short_crops(texts, 100, seed=0)) < 100
    with pytest.raises(ValueError, match="needs a teacher"):
        pipeline.make_config("tiny", crops=10)


def test_tiny_teacher_and_student(duplicated_dir, tmp_path):
    members = []
    for seed in (0, 1):  # two tiny BiLSTMs of one split (the split's seed is the config's)
        output = tmp_path / f"lstm{seed}"
        pipeline.train_sentiment(pipeline.make_config(
            "tiny", data=str(duplicated_dir), output=str(output), epochs=2, hidden_dim=16,
            progress=False, evaluate=False, num_proc=1, **({"lr": 5e-3} if seed else {})))
        members.append(output)
    teacher = build_teacher(members, ["nb_lr"], tmp_path / "teacher")
    assert len(teacher.members) == 3 and len(teacher.coef) == 3
    assert set(teacher.validation["members"]) == {"lstm0", "lstm1", "linear-nb_lr"}
    assert 0.5 < teacher.validation["stack_cross_validated"] <= 1
    loaded = Teacher.load(tmp_path / "teacher", load_folder)
    forbidden, splits = held_out(duplicated_dir)
    texts = splits["valid"]["text"][:20]
    np.testing.assert_allclose(loaded.logits(texts), teacher.logits(texts))
    # the student: soft labels on the unlabelled reviews, none of them a validation/test text
    config = pipeline.make_config("tiny", data=str(duplicated_dir), output=str(tmp_path / "st"),
                                  teacher=str(tmp_path / "teacher"), epochs=4, progress=False,
                                  num_proc=1, temperature=2.0, hard_weight=0.5, crops=50,
                                  sentences=30)
    data = prepare.prepare_data(config)
    ids, targets, summary = distillation_set(config, data.train, data.ids["train"], data.vocab)
    assert summary["labelled"] == len(data.train) and 300 < summary["unlabelled"] < 360
    assert summary["crops"] == 50 and summary["sentences"]["sentences"] == 30
    assert len(ids) == len(targets) == summary["labelled"] + summary["unlabelled"] + 50 + 30
    reviews = ids[len(data.train): -80]
    assert max(len(c) for c in ids[-80:]) < max(len(r) for r in reviews)  # short ones last
    labels = np.asarray(data.train["label"])
    labelled = targets[: len(labels)]
    assert np.all((labelled >= 0.5 * labels) & (labelled <= 0.5 + 0.5 * labels))
    assert 0 < targets[len(labels):].min() and targets[len(labels):].max() < 1
    # --no-distil-reviews: the labelled reviews keep their own labels, no unlabelled review
    # joins, and the same sentences come with the same in-context targets
    sentences_only = pipeline.make_config(
        "tiny", data=str(duplicated_dir), output=str(tmp_path / "so"), num_proc=1,
        teacher=str(tmp_path / "teacher"), temperature=2.0, sentences=30, distil_reviews=False)
    only_ids, only_targets, only_summary = distillation_set(
        sentences_only, data.train, data.ids["train"], data.vocab)
    assert only_summary["unlabelled"] == 0 and only_summary["reviews_distilled"] is False
    assert len(only_ids) == len(only_targets) == len(labels) + 30
    np.testing.assert_array_equal(only_targets[: len(labels)], labels)
    np.testing.assert_allclose(only_targets[len(labels):], targets[-30:], rtol=1e-5)
    assert all(np.array_equal(a, b) for a, b in zip(only_ids[-30:], ids[-30:], strict=True))
    with pytest.raises(ValueError, match="no-distil-reviews"):
        pipeline.make_config("tiny", teacher=str(tmp_path / "teacher"), distil_reviews=False)
    result = pipeline.train_sentiment(config)
    assert result["distillation"]["unlabelled"] == summary["unlabelled"]
    assert result["report"]["accuracy"] > 0.8
    # the 20 test reviews copied into the train and unsupervised files are set aside too
    dedup = result["report"]["deduplicated"]
    assert (dedup["removed"], dedup["n"]) == (20, 80) and 0 < dedup["accuracy"] <= 1
    assert (tmp_path / "st" / "teacher_logits.npz").exists()  # a resumed run scores no more
    # a student on another split is a clear error
    other = pipeline.make_config("tiny", data=str(duplicated_dir), teacher=str(tmp_path /
                                 "teacher"), valid_fraction=0.2, output=str(tmp_path / "x"))
    with pytest.raises(ValueError, match="valid_fraction"):
        distillation_set(other, data.train, data.ids["train"], data.vocab)
    # a replicate with another seed: refused on the split that seed carves, accepted with the
    # teacher's split seed, and then it reads the teacher's validation reviews
    replicate = dict(data=str(duplicated_dir), teacher=str(tmp_path / "teacher"), seed=1,
                     output=str(tmp_path / "r"), num_proc=1)
    with pytest.raises(ValueError, match="seed"):
        distillation_set(pipeline.make_config("tiny", **replicate), data.train,
                         data.ids["train"], data.vocab)
    assert (prepare.classifier_splits(pipeline.make_config("tiny", **replicate).data, 1)
            ["valid"]["text"] != data.valid["text"])
    same_split = pipeline.make_config("tiny", split_seed=0, **replicate)
    replicate_data = prepare.prepare_data(same_split)
    assert list(replicate_data.valid["text"]) == list(data.valid["text"])
    assert distillation_set(same_split, replicate_data.train, replicate_data.ids["train"],
                            replicate_data.vocab)[2]["unlabelled"] == summary["unlabelled"]
    # the cached scores belong to that teacher: one built again in the same folder scores again
    cache = tmp_path / "cache.npz"
    np.testing.assert_allclose(teacher_logits(str(tmp_path / "teacher"), texts, cache),
                               loaded.logits(texts))
    rebuilt = build_teacher(members[1:], ["tfidf_lr"], tmp_path / "teacher")
    np.testing.assert_allclose(teacher_logits(str(tmp_path / "teacher"), texts, cache),
                               rebuilt.logits(texts))
    # a member overwritten by another model: the stacking weights no longer apply
    shutil.copy(members[0] / "model.safetensors", members[1] / "model.safetensors")
    with pytest.raises(ValueError, match="changed since the teacher was fitted"):
        Teacher.load(tmp_path / "teacher").logits(texts)


def test_linear_model_and_teacher_are_models_for_predict_files_and_serve(synthetic_dir,
                                                                         trained_model,
                                                                         tmp_path):
    import pandas as pd

    from sentiment import predict
    from sentiment.data.sources import load_reviews
    from sentiment.inference.files import score_file

    splits = load_reviews(synthetic_dir)
    folder = LinearModel.fit("nb_lr", splits["train"]["text"], splits["train"]["label"]).save(
        tmp_path / "nb_lr")
    texts = splits["test"]["text"][:40]
    expected = LinearModel.load(folder).probs(texts)
    results = predict(texts, model=folder, all_scores=True)
    np.testing.assert_allclose([r["scores"]["positive"] for r in results], expected, rtol=1e-9)
    assert predict("Loved it, brilliant! A superb, moving film.", model=folder)["label"] == \
        "positive"
    pd.DataFrame({"review": texts}).to_csv(tmp_path / "in.csv", index=False)
    score_file(tmp_path / "in.csv", tmp_path / "out.csv", "review", str(folder), progress=False)
    scored = pd.read_csv(tmp_path / "out.csv")
    assert list(scored["predicted_label"]) == [r["label"] for r in results]
    # a teacher folder is a model too
    teacher = build_teacher([trained_model], ["nb_lr"], tmp_path / "teacher")
    stacked = predict(texts, model=tmp_path / "teacher", all_scores=True)
    logits = teacher.logits(texts)
    np.testing.assert_allclose([r["scores"]["positive"] for r in stacked],
                               1 / (1 + np.exp(-logits)), rtol=1e-6)
    pytest.importorskip("fastapi")
    from fastapi.testclient import TestClient

    from sentiment.serve.app import create_app

    with TestClient(create_app(str(folder))) as client:
        answer = client.post("/predict", json={"text": texts[:3]}).json()
        assert [a["label"] for a in answer] == [r["label"] for r in results[:3]]
        assert client.post("/explain", json={"text": texts[0]}).status_code == 422


def test_paired_comparison_of_saved_models(trained_model, tmp_path):
    import pyarrow as pa
    import pyarrow.parquet as pq
    from conftest import synthetic_reviews

    from benchmarks import paired

    rows = synthetic_reviews(120, seed=21)
    pq.write_table(pa.Table.from_pylist(rows), tmp_path / "test.parquet")
    linear = LinearModel.fit("nb_lr", [r["text"] for r in synthetic_reviews(600, seed=22)],
                             [r["label"] for r in synthetic_reviews(600, seed=22)]).save(
        tmp_path / "linear")
    result = paired.main(["--data", str(tmp_path), "--models", str(trained_model),
                          str(linear), "--output", str(tmp_path / "paired.json")])
    first, second = result["models"]
    assert result["n"] == 120 and 0.5 < first["accuracy"] <= 1
    comparison = second[f"{trained_model}_vs_this"]
    assert comparison["difference"] == pytest.approx(first["accuracy"] - second["accuracy"])
    assert json.loads((tmp_path / "paired.json").read_text())["models"][0] == first
    from benchmarks import throughput

    timed = throughput.main(["--data", str(tmp_path), "--models", str(trained_model),
                             "--reviews", "50", "--rounds", "1", "--explain-tokens", "8"])
    assert timed["reviews_per_s"][str(trained_model)][0] > 0
    assert timed["explain_longest_s"][str(trained_model)][0] > 0
    from sentiment.data.sources import clean_text
    from sentiment.text import tokenize

    pq.write_table(pa.Table.from_pylist(synthetic_reviews(40, seed=23)), tmp_path / "train.parquet")
    warm = throughput.main(["--data", str(tmp_path), "--models", str(trained_model),
                            "--reviews", "50", "--rounds", "1", "--store-reviews", "40"])
    assert warm["store_reviews"] == 40 and warm["reviews_per_s"][str(trained_model)][0] > 0
    known = set(tokenize.chunk_store(True))
    assert {chunk for row in synthetic_reviews(40, seed=23)
            for chunk in clean_text(row["text"]).split()} <= known


def test_teacher_cache_scores_only_texts_it_has_not_seen(tmp_path, monkeypatch):
    """The cache is per text and per teacher: the same texts score nothing again, a changed set
    (other crops) scores only its new texts, and another teacher's stack scores everything."""
    import sentiment.train.distill as distill

    scored: list[list[str]] = []

    class Fake:
        def logits(self, texts):
            scored.append(list(texts))
            return np.array([len(text) + 0.5 for text in texts])

    monkeypatch.setattr(distill.Teacher, "load", staticmethod(lambda path, *loader: Fake()))
    teacher = tmp_path / "teacher"
    teacher.mkdir()
    (teacher / "stack.json").write_text('{"coef": [1.0]}')
    cache = tmp_path / "run" / "teacher_logits.npz"
    first = ["a review", "another one", "a crop."]
    np.testing.assert_array_equal(teacher_logits(str(teacher), first, cache),
                                  [8.5, 11.5, 7.5])
    assert teacher_logits(str(teacher), first, cache).tolist() == [8.5, 11.5, 7.5]
    assert scored == [first]  # nothing scored the second time
    changed = ["a review", "a new crop, longer", "another one", "a new crop, longer"]
    assert teacher_logits(str(teacher), changed, cache).tolist() == [8.5, 18.5, 11.5, 18.5]
    assert scored[-1] == ["a new crop, longer"]  # once, though it occurs twice
    assert teacher_logits(str(teacher), first + changed, cache).tolist() == [
        8.5, 11.5, 7.5, 8.5, 18.5, 11.5, 18.5]  # the first set is still there
    assert len(scored) == 2
    (teacher / "stack.json").write_text('{"coef": [2.0]}')  # rebuilt: its scores are others
    teacher_logits(str(teacher), first, cache)
    assert scored[-1] == first and len(scored) == 3
    # a stack without its members' fingerprints (an older teacher) is known by its folder too:
    # the same stack elsewhere scores again
    elsewhere = tmp_path / "moved"
    shutil.copytree(teacher, elsewhere)
    teacher_logits(str(elsewhere), first, cache)
    assert len(scored) == 4
    # one with them is known by its stack alone: moved or copied, it finds its scores
    (teacher / "stack.json").write_text('{"coef": [2.0], "fingerprints": ["ab12"]}')
    teacher_logits(str(teacher), first, cache)
    assert len(scored) == 5
    shutil.rmtree(elsewhere)
    teacher.rename(elsewhere)
    assert teacher_logits(str(elsewhere), first, cache).tolist() == [8.5, 11.5, 7.5]
    assert len(scored) == 5  # nothing scored again


def test_model_json_leaves_a_members_fingerprint_as_it_was(trained_model, tmp_path):
    """A teacher recorded its members' fingerprints before model.json existed: declaring a
    member's kind must not change its fingerprint (or every such teacher would refuse to load),
    while a change to its weights does."""
    import shutil

    from sentiment.kinds.folder import MODEL_FILE, write_model_file
    from sentiment.kinds.stack import member_fingerprint

    member = tmp_path / "member"
    shutil.copytree(trained_model, member)
    (member / MODEL_FILE).unlink()
    before = member_fingerprint(member)
    write_model_file(member, "lstm")
    assert member_fingerprint(member) == before
    with open(member / "model.safetensors", "ab") as weights:
        weights.write(b"\0")
    assert member_fingerprint(member) != before
