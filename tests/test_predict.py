from __future__ import annotations

import importlib

import numpy as np
import pytest
from conftest import run_python, synthetic_reviews

from sentiment import load_model, predict
from sentiment.kinds.base import MAX_CHARS


def test_contract_single_and_list(trained_model):
    single = predict("A wonderful, moving film.", model=trained_model)
    assert set(single) == {"label", "score"} and single["label"] == "positive"
    assert isinstance(single["score"], float) and 0.5 <= single["score"] <= 1.0
    texts = ["Dull and awful.", "Loved it, brilliant!", "The worst waste of time.", "Superb."]
    results = predict(texts, model=trained_model, batch_size=3)
    assert [r["label"] for r in results] == ["negative", "positive", "negative", "positive"]
    for text, result in zip(texts, results, strict=True):  # order restored after length sorting
        assert predict(text, model=trained_model) == pytest.approx(result)
    assert predict([], model=trained_model) == []


def test_any_iterable_of_strings(trained_model):
    import numpy as np

    texts = ["Dull and awful.", "Loved it, brilliant!", "Superb."]
    expected = predict(texts, model=trained_model)
    for given in (tuple(texts), (t for t in texts), np.array(texts), iter(texts)):
        assert predict(given, model=trained_model) == expected, type(given)
    pandas = pytest.importorskip("pandas")
    assert predict(pandas.Series(texts, index=[7, 3, 5]), model=trained_model) == expected


def test_bad_input(trained_model):
    with pytest.raises(TypeError, match="int"):
        predict(42, model=trained_model)
    for wrong in (b"bytes", {"a": 1}, 3.5):
        with pytest.raises(TypeError, match=type(wrong).__name__):
            predict(wrong, model=trained_model)
    with pytest.raises(TypeError, match="position 2"):
        predict(np_strings_then_int(), model=trained_model)
    with pytest.raises(TypeError, match="position 1"):
        predict(["fine", None], model=trained_model)
    with pytest.raises(ValueError, match="empty"):
        predict("   \n", model=trained_model)
    with pytest.raises(ValueError, match="position 0"):
        predict([""], model=trained_model)


def np_strings_then_int():
    yield from ("fine", "good")
    yield 3


def test_unicode_emoji_html_and_huge_text(trained_model):
    results = predict(["Brilliant 😀 ☃ naïve café", "<b>awful</b><br />boring", "x" * 10],
                      model=trained_model)
    assert len(results) == 3
    huge = "wonderful film " * (1_000_000 // 15)  # ~1 MB
    assert len(huge) > MAX_CHARS and predict(huge, model=trained_model)["label"] == "positive"


def test_a_huge_text_keeps_memory_bounded():
    """A 1 MB text through the shipped model (no max_length of its own), measured in a fresh
    process: this one's peak (ru_maxrss) is already raised by earlier tests and could hide any
    growth. Cut to MAX_CHARS and MAX_TEXT_TOKENS it grew the peak by 47 MB in 0.3 s; uncut (its
    133,000 tokens) by 973 MB in 15 s (2026-12-02, machine A)."""
    grown = run_python("""
import json, resource
from sentiment import predict
predict("a warm-up film")
before = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
predict("wonderful film " * (1_000_000 // 15))
after = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
print(json.dumps({"grown_mb": (after - before) / 1024}))
""")["grown_mb"]
    assert grown < 300


def test_a_first_prediction_imports_neither_datasets_nor_scikit_learn():
    """Scoring text needs neither: importing ``datasets`` was ~0.9 s of a first prediction's
    ~2 s in a torch-free install (scikit-learn: the n-gram part scores without it). Each
    shipped model, in a fresh process."""
    loaded = run_python("""
import json, sys
from sentiment import predict
from sentiment.kinds.registry import SHIPPED_MODELS
for name in sorted(SHIPPED_MODELS):
    assert predict("A fine film.", model=name)["label"] in ("negative", "positive")
print(json.dumps(sorted(m for m in ("datasets", "sklearn") if m in sys.modules)))
""")
    assert loaded == []


def test_model_resolution_and_cache(trained_model, monkeypatch, tmp_path):
    monkeypatch.setenv("SENTIMENT_MODEL", str(trained_model))
    assert predict("Superb!")["label"] == "positive"
    assert load_model() is load_model(trained_model)
    loaded = load_model(trained_model)
    assert predict("Superb!", model=loaded) == predict("Superb!", model=trained_model)
    monkeypatch.delenv("SENTIMENT_MODEL")
    module = importlib.import_module("sentiment.kinds.registry")
    monkeypatch.setattr(module, "SHIPPED_MODEL", tmp_path / "no-model")
    with pytest.raises(FileNotFoundError, match="sentiment train"):
        predict("Superb!")


def test_mixed_precision_scores_match_float32(trained_model):
    texts = ["A wonderful, moving film.", "Dull and awful.", "The plot was long but superb.",
             "the movie film story actor plot scene " * 40 + "boring"]
    mixed = predict(texts, model=trained_model, mixed_precision=True)
    exact = predict(texts, model=trained_model, mixed_precision=False)
    for m, e in zip(mixed, exact, strict=True):
        assert m["label"] == e["label"] and m["score"] == pytest.approx(e["score"], abs=0.02)


def test_label_names_come_from_the_saved_config(trained_model, tmp_path):
    import json
    import shutil

    folder = tmp_path / "relabelled"
    shutil.copytree(trained_model, folder)
    config = json.loads((folder / "config.json").read_text())
    config["model"]["head"]["labels"] = ["thumbs down", "thumbs up"]
    (folder / "config.json").write_text(json.dumps(config))
    assert predict("Loved it, brilliant!", model=folder)["label"] == "thumbs up"
    assert predict("Dull and awful.", model=folder)["label"] == "thumbs down"


def test_a_cached_model_is_never_moved_for_another_caller(trained_model):
    import copy

    import torch

    from sentiment.inference.predict import loaded

    cached = load_model(trained_model, "cpu")
    assert loaded(cached, "cpu") is cached  # the per-device cache
    detached = copy.copy(cached)
    detached.path = ""  # a model object that did not come from a folder
    moved = detached.moved_to(torch.device("cpu"))
    assert moved is not detached and moved.model is not cached.model
    assert load_model(trained_model, "cpu") is cached and cached.device.type == "cpu"


def test_length_batches_keep_to_rows_and_padded_tokens():
    from sentiment.data.batching import cut_batches

    rng = np.random.default_rng(0)
    lengths = rng.integers(1, 900, size=500).tolist()
    order = np.argsort(lengths, kind="stable")
    for batch_size, budget in ((64, None), (64, 4096), (16, 1000), (64, 500)):
        batches = cut_batches(order, lengths, batch_size, budget)
        assert np.array_equal(np.concatenate(batches), order)  # every row once, in order
        assert all(len(b) <= batch_size for b in batches)
        if budget is not None:  # a row longer than the budget is a batch of its own
            assert all(len(b) * max(lengths[i] for i in b) <= budget or len(b) == 1
                       for b in batches)
    assert len(cut_batches(order, lengths, 64, 4096)) > len(cut_batches(order, lengths, 64))


def test_least_cost_batches_are_the_cheapest_cut_within_the_limits():
    """Checked against every cut of small sorted inputs: the least total of
    longest * (step_rows + rows), each batch within its rows and padded tokens (a longer
    sequence alone), every index once, in order."""
    import itertools

    from sentiment.data.lengths import least_cost_batches

    def cost(batches, lengths, step_rows):
        return sum(max(lengths[i] for i in b) * (step_rows + len(b)) for b in batches)

    rng = np.random.default_rng(2)
    for trial in range(120):
        lengths = rng.integers(1, 60, size=int(rng.integers(1, 9))).tolist()
        order = np.argsort(lengths, kind="stable")
        rows, budget = int(rng.integers(1, 6)), None if trial % 2 else int(rng.integers(20, 200))
        step_rows = float(rng.choice([0.0, 1.0, 2.0, 5.0]))
        cheapest = None
        for cuts in itertools.product([False, True], repeat=len(order) - 1):
            bounds = [0, *[k + 1 for k, cut in enumerate(cuts) if cut], len(order)]
            batches = [order[a:b] for a, b in itertools.pairwise(bounds)]
            if all(len(b) <= rows and (budget is None or len(b) == 1
                                       or len(b) * max(lengths[i] for i in b) <= budget)
                   for b in batches):
                total = cost(batches, lengths, step_rows)
                cheapest = total if cheapest is None else min(cheapest, total)
        found = least_cost_batches(order, lengths, rows, budget, step_rows)
        assert np.array_equal(np.concatenate(found), order)
        assert cost(found, lengths, step_rows) == pytest.approx(cheapest)
    # a few long texts among short ones get a batch of their own; like lengths stay together
    lengths = [90, 92, 94, 96, 98, 100, 100, 900]
    order = np.argsort(lengths, kind="stable")
    assert [len(b) for b in least_cost_batches(order, lengths, 64, 16384, 1.0)] == [7, 1]
    assert [len(b) for b in least_cost_batches(order, [100] * 8, 64, 16384, 1.0)] == [8]


def test_batches_scored_on_worker_threads_come_back_in_input_order():
    import threading
    import time

    from sentiment.data.lengths import score_in_length_order

    rng = np.random.default_rng(1)
    sequences = [list(range(n)) for n in rng.integers(1, 300, size=400)]
    threads, running, most = set(), [0], [0]
    lock = threading.Lock()

    def score_batch(indices, lengths):  # the probability is a function of the row
        with lock:
            running[0] += 1
            most[0] = max(most[0], running[0])
        threads.add(threading.current_thread().name)
        time.sleep(0.002)  # long enough for the other workers to start theirs
        with lock:
            running[0] -= 1
        return np.asarray([(lengths[i] * 7 + i) % 1000 / 1000 for i in indices])

    serial = score_in_length_order(sequences, 2, 16, 2048, score_batch)
    assert threads == {threading.current_thread().name} and most[0] == 1
    expected = [(max(len(s), 1) * 7 + i) % 1000 / 1000 for i, s in enumerate(sequences)]
    np.testing.assert_array_equal(serial, expected)
    threads.clear()
    concurrent = score_in_length_order(sequences, 2, 16, 2048, score_batch, workers=3)
    np.testing.assert_array_equal(concurrent, expected)
    assert len(threads) == 3 and most[0] == 3  # three batches at once, on three threads


def test_a_token_budget_does_not_change_the_scores(trained_model):
    from sentiment.kinds.lstm import score_ids

    model = load_model(trained_model)
    ids = model.encode([r["text"] for r in synthetic_reviews(120, seed=9)])
    plain = score_ids(model.model, ids, 64, mixed_precision=False)
    budget = score_ids(model.model, ids, 64, mixed_precision=False, max_tokens=300)
    np.testing.assert_allclose(budget, plain, atol=1e-5)


def test_shipped_models_by_name(monkeypatch):
    from sentiment.kinds.registry import SHIPPED_MODEL, SHIPPED_MODELS, resolve_model_path

    assert SHIPPED_MODELS["imdb"] == SHIPPED_MODEL
    assert resolve_model_path("imdb") == SHIPPED_MODEL.resolve()
    monkeypatch.delenv("SENTIMENT_MODEL", raising=False)
    assert predict("A wonderful film.", model="imdb") == predict("A wonderful film.")
    with pytest.raises(FileNotFoundError, match="no trained sentiment model"):
        resolve_model_path("imdb-nonexistent")


def test_predict_and_file_scoring_cut_batches_by_a_token_budget(trained_model, tmp_path,
                                                                 monkeypatch):
    """predict and file scoring end a batch before its padded size passes SCORE_MAX_TOKENS
    (1.4-1.5x faster than plain batches of 64 on IMDB reviews, with less memory; BENCHMARKS.md),
    and the scores are those of plain batches."""
    import importlib

    import pandas as pd

    from sentiment.inference.files import score_file
    from sentiment.kinds.base import SCORE_MAX_TOKENS
    from sentiment.kinds.lstm import score_ids

    predict_module = importlib.import_module("sentiment.kinds.lstm")  # where PyTorch batches
    budgets, real = [], predict_module.score_in_length_order

    def recording(sequences, classes, batch_size, max_tokens, score_batch, **options):
        budgets.append(max_tokens)
        return real(sequences, classes, batch_size, max_tokens, score_batch, **options)

    monkeypatch.setattr(predict_module, "score_in_length_order", recording)
    texts = [r["text"] for r in synthetic_reviews(80, seed=4)]
    results = predict(texts, model=trained_model, mixed_precision=False, all_scores=True)
    pd.DataFrame({"review": texts}).to_csv(tmp_path / "in.csv", index=False)
    score_file(tmp_path / "in.csv", tmp_path / "out.csv", "review", str(trained_model),
               progress=False)
    assert SCORE_MAX_TOKENS and budgets == [SCORE_MAX_TOKENS, SCORE_MAX_TOKENS]
    model = load_model(trained_model)
    plain = score_ids(model.model, model.encode(texts), 64, mixed_precision=False)
    np.testing.assert_allclose([r["scores"]["positive"] for r in results], plain, atol=1e-6)
