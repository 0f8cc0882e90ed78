from __future__ import annotations

import asyncio
import copy
import json
import os
import sys

import numpy as np
import pytest

from benchmarks.suite import BenchmarkConfig, format_table, run_benchmark
from sentiment.runtime.precision import cpu_bfloat16_faster


def test_benchmark_runs_every_part_and_writes_json(synthetic_dir, tmp_path, monkeypatch):
    monkeypatch.setenv("SENTIMENT_NO_TCMALLOC", "1")
    text = tmp_path / "text.txt"
    text.write_text("the time traveller smiled round at us. " * 800)
    config = BenchmarkConfig(data=str(synthetic_dir), text=str(text), device="cpu", quick=True,
                             train_batches=2, predict_reviews=40,
                             output_dir=str(tmp_path / "out"))
    results = run_benchmark(config, log=lambda message: None)
    saved = json.loads(open(results["path"]).read())
    assert os.path.dirname(results["path"]) == str(tmp_path / "out")
    package, reference = saved["train_package"], saved["train_reference"]
    assert package["padding_share"] < reference["padding_share"]
    assert package["tokens"] > 0 and reference["tokens"] > 0
    assert saved["ratios"]["train_package_over_reference"] > 0
    native = "bfloat16" if cpu_bfloat16_faster(training=True) else "float32"
    assert package["precision"] == native and reference["precision"] == "float32"
    assert saved["train_package-fp32"]["precision"] == "float32"
    assert saved["predict_fp32"]["mixed_precision"] is False
    assert saved["charlm"]["package_precision"] == native
    assert saved["predict"]["latency_p50_ms"] > 0 and saved["predict"]["batch_reviews"] == 40
    assert saved["lm_output"]["full_tokens_per_s"] > 0
    assert saved["lm_output"]["adaptive_tokens_per_s"] > 0
    assert saved["charlm"]["package_tokens_per_s"] > 0 and saved["charlm"]["naive_tokens_per_s"] > 0
    assert saved["preprocess_cached"]["seconds_tokenize"] < saved["preprocess_cold"][
        "seconds_tokenize"]
    table = format_table(saved)
    assert "package ÷ reference" in table and "≥ 10×" in table


def test_ensemble_averages_its_members_probabilities(synthetic_dir, trained_model, tmp_path):
    from benchmarks import ensemble
    from sentiment import predict
    from sentiment.train.recipe import make_config, train_sentiment

    other = tmp_path / "other"
    train_sentiment(make_config("tiny", data=str(synthetic_dir), output=str(other), epochs=2,
                                hidden_dim=16, seed=3, progress=False, baseline=False,
                                num_proc=1))
    (report,) = ensemble.main(["--models", str(trained_model), str(other), "--data",
                               str(synthetic_dir), "--output", str(tmp_path / "ens")])
    saved = json.loads((tmp_path / "ens" / "report.json").read_text())
    assert saved["accuracy"] == report["accuracy"]
    members = saved["members"]
    for member, folder in zip(members, (trained_model, other), strict=True):
        own = json.loads((folder / "report.json").read_text())  # the member's own test report
        assert abs(member["accuracy"] - own["accuracy"]) < 0.011  # bf16 vs the report's run
    # the ensemble's call is the mean of the two models' probabilities, text by text
    rows = [json.loads(line) for line in (synthetic_dir / "test.jsonl").read_text().splitlines()]
    texts, labels = [r["text"] for r in rows], [r["label"] for r in rows]
    scores = [[r["scores"]["positive"] for r in predict(texts, model=m, all_scores=True)]
              for m in (trained_model, other)]
    mean = (np.asarray(scores[0]) + np.asarray(scores[1])) / 2
    expected = float(((mean >= 0.5).astype(int) == np.asarray(labels)).mean())
    assert abs(saved["accuracy"] - expected) < 0.011
    assert {b["short_name"] for b in saved["baselines"]} == {"tfidf_lr", "nb_lr"}
    assert "ensemble_vs_member" in members[0]
    # groups: every model scored once, one report per group
    reports = ensemble.main(["--models", str(trained_model), str(other), str(other), "--groups",
                             "0,1", "1,2", "--data", str(synthetic_dir), "--no-baseline",
                             "--output", str(tmp_path / "groups")])
    assert reports[0]["accuracy"] == saved["accuracy"]
    assert reports[1]["accuracy"] == members[1]["accuracy"]  # a model with itself
    assert (tmp_path / "groups" / f"{trained_model.name}+other" / "report.json").exists()


def test_inference_benchmark_times_each_variant_at_each_token_budget(synthetic_dir, trained_model,
                                                                     tmp_path, monkeypatch):
    """``--max-tokens none N`` puts the old plain batches and the budget in the same run, as
    ``VARIANT@BUDGET``; the budget reaches the batching and changes the batches, not the
    scores."""
    import pyarrow as pa
    import pyarrow.parquet as pq

    from benchmarks import inference

    scoring = sys.modules["sentiment.kinds.lstm"]  # where a PyTorch model's batches are cut
    budgets = []
    batching = scoring.score_in_length_order

    def recording(sequences, classes, batch_size, max_tokens, score_batch, **options):
        budgets.append(max_tokens)
        return batching(sequences, classes, batch_size, max_tokens, score_batch, **options)

    monkeypatch.setattr(scoring, "score_in_length_order", recording)

    rows = [json.loads(line) for line in (synthetic_dir / "test.jsonl").read_text().splitlines()]
    pq.write_table(pa.table({"text": [r["text"] for r in rows]}), tmp_path / "test.parquet")
    result = inference.main(["--data", str(tmp_path), "--model", str(trained_model),
                             "--reviews", "150", "--rounds", "1", "--variants", "float32",
                             "--max-tokens", "none", "200", "--no-accuracy"])
    assert set(result["forward_reviews_per_s"]) == {"float32@none", "float32@200"}
    assert all(rate[0] > 0 for rate in result["predict_reviews_per_s"].values())
    assert result["label_agreement_with_float32"]["float32@200"] == 1.0
    assert result["max_abs_difference_from_float32"]["float32@200"] < 1e-5
    assert set(budgets) == {None, 200}


def test_inference_benchmark_times_onnx_runtime_both_ways(synthetic_dir, trained_model, tmp_path):
    """``onnx-int8`` (one single-threaded run per core) beside ``onnx-int8-serial`` (the scorer
    before: one run on every core): the same int8 graph, so scores within int8's tolerance of
    float32 both ways (a two-thread run sums in another order: ~2e-3 apart on real reviews)."""
    pytest.importorskip("onnxruntime")
    import pyarrow as pa
    import pyarrow.parquet as pq

    from benchmarks import inference

    rows = [json.loads(line) for line in (synthetic_dir / "test.jsonl").read_text().splitlines()]
    pq.write_table(pa.table({"text": [r["text"] for r in rows]}), tmp_path / "test.parquet")
    result = inference.main(["--data", str(tmp_path), "--model", str(trained_model),
                             "--reviews", "150", "--rounds", "1", "--variants", "float32",
                             "onnx-int8", "onnx-int8-serial", "--no-accuracy"])
    differences = result["max_abs_difference_from_float32"]
    assert result["agreement_reference"] == "float32"
    assert set(differences) == {"float32", "onnx-int8", "onnx-int8-serial"}
    assert differences["onnx-int8"] < 0.05 and differences["onnx-int8-serial"] < 0.05
    agreement = result["label_agreement_with_float32"]
    assert agreement["onnx-int8"] >= 0.99 and agreement["onnx-int8-serial"] >= 0.99
    assert all(rate[0] > 0 for rate in result["forward_reviews_per_s"].values())


def test_inference_benchmark_times_an_export_at_each_batch_shape(synthetic_dir, trained_model,
                                                                 tmp_path):
    """An ONNX folder as ``--model`` is timed as it is (``export``), at every batch size and
    budget (``export@ROWSxBUDGET``): the shapes change the batches, not the float32 scores; a
    PyTorch variant is refused for such a folder, and ``export`` for a PyTorch model. With
    ``--ort-config``, also on sessions with those configuration entries."""
    pytest.importorskip("onnxruntime")
    import pyarrow as pa
    import pyarrow.parquet as pq

    from benchmarks import inference
    from sentiment.kinds.export import export_onnx
    from sentiment.kinds.onnx import inference_session

    rows = [json.loads(line) for line in (synthetic_dir / "test.jsonl").read_text().splitlines()]
    pq.write_table(pa.table({"text": [r["text"] for r in rows]}), tmp_path / "test.parquet")
    folder = tmp_path / "onnx"
    export_onnx(trained_model, folder)
    result = inference.main(["--data", str(tmp_path), "--model", str(folder), "--reviews", "150",
                             "--rounds", "1", "--batch-sizes", "4", "64", "--max-tokens", "none",
                             "300", "--no-accuracy"])
    names = {f"export@{rows}x{budget}" for rows in (4, 64) for budget in ("none", "300")}
    assert set(result["forward_reviews_per_s"]) == names
    assert result["agreement_reference"] == "export@4xnone"
    assert max(result["max_abs_difference_from_float32"].values()) < 1e-5
    assert all(rate[0] > 0 for rate in result["predict_reviews_per_s"].values())
    for model, variants in ((folder, ["float32"]), (trained_model, ["export"])):
        with pytest.raises(SystemExit):
            inference.main(["--data", str(tmp_path), "--model", str(model), "--variants",
                            *variants, "--no-accuracy"])
    # ONNX Runtime's session options, in turns with the folder as it is: the same scores
    entries = ["session.set_denormal_as_zero=1", "session.intra_op.allow_spinning=0"]
    result = inference.main(["--data", str(tmp_path), "--model", str(folder), "--reviews", "150",
                             "--rounds", "1", "--no-accuracy", "--ort-config", *entries])
    assert result["ort_config"] == dict(entry.split("=") for entry in entries)
    assert set(result["forward_reviews_per_s"]) == {"export", "export-configured"}
    assert result["max_abs_difference_from_float32"]["export-configured"] < 1e-5
    options = inference_session(folder / "model.onnx", 1, result["ort_config"]
                                ).get_session_options()
    assert options.get_session_config_entry("session.set_denormal_as_zero") == "1"
    for bad in (["--model", str(trained_model), "--ort-config", entries[0]],  # not ONNX
                ["--model", str(folder), "--ort-config", "session.set_denormal_as_zero"],
                ["--model", str(folder), "--variants", "export", "export-configured"]):
        with pytest.raises(SystemExit):
            inference.main(["--data", str(tmp_path), "--no-accuracy", *bad])


def test_phrase_labels_counts_the_reviews_with_each_phrase_and_their_positive_share():
    from benchmarks.phrase_labels import phrase_label_shares

    texts = ["It was NOT BAD at all.", "not bad, but dull", "Great.", "not bad!"]
    result = phrase_label_shares(texts, [1, 0, 1, 1], ["not bad", "great", "missing"])
    assert result["not bad"]["reviews"] == 3
    assert result["not bad"]["positive_share"] == 2 / 3
    low, high = result["not bad"]["positive_share_ci95"]
    assert low < 2 / 3 < high
    assert result["great"] == {"reviews": 1, "positive_share": 1.0,
                               "positive_share_ci95": result["great"]["positive_share_ci95"]}
    assert result["missing"]["reviews"] == 0 and result["missing"]["positive_share"] is None


def test_review_crops_are_short_pieces_of_the_reviews_with_their_labels():
    from benchmarks.short_texts import review_crops

    texts = ["A fine film. The cast is great and the plot moves. I loved every minute of it.",
             "Dull. The worst two hours I have spent in a cinema this year, without doubt.",
             "one long run-on text without any sentence end " * 20]
    crops, labels = review_crops(texts, [1, 0, 1], count=5, seed=0)
    assert len(crops) == 2  # the third text has no crop of 3-60 words
    for crop, label in zip(crops, labels, strict=True):
        source = next(i for i, text in enumerate(texts) if crop in text)
        assert label == [1, 0, 1][source] and 3 <= len(crop.split()) <= 60
    assert review_crops(texts, [1, 0, 1], count=5, seed=0)[0] == crops  # seeded


def test_short_texts_benchmark_scores_crops_of_validation_reviews(synthetic_dir, trained_model,
                                                                   tmp_path):
    from benchmarks import short_texts

    result = short_texts.main(["--data", str(synthetic_dir), "--models", str(trained_model),
                               "--crops", "50", "--stack"])
    assert result["crops"] == 50 and 3 <= result["crop_words_mean"] <= 60
    accuracy = result["accuracy_on_crops"][str(trained_model)]
    assert 0.5 < accuracy <= 1.0  # the tiny model reads synthetic sentences well
    assert result["accuracy_on_reviews"][str(trained_model)] > 0.9
    stack = result["stack"]  # one member: a positive weight on its log-odds
    assert list(stack["weights"]) == [str(trained_model)]
    assert stack["weights"][str(trained_model)] > 0
    assert 0.5 < stack["crops_cross_validated"] <= 1 and stack["accuracy_on_reviews"] > 0.9
    assert "negated negative is positive" in stack["checklist"]


def test_short_texts_benchmark_stacks_the_lexicon_as_a_member(synthetic_dir, trained_model,
                                                                monkeypatch):
    """``--vader`` joins the lexicon as a member of its own (faked here: vaderSentiment is not
    a test dependency): scored on the crops and the reviews once, weighed by the stack."""
    from benchmarks import short_texts

    calls = []

    def lexicon(texts):  # "positive" when a text says great, else neutral
        calls.append(len(texts))
        return np.array([0.9 if "great" in text.lower() else 0.5 for text in texts])

    monkeypatch.setattr(short_texts, "vader_positive", lexicon)
    result = short_texts.main(["--data", str(synthetic_dir), "--models", str(trained_model),
                               "--crops", "50", "--vader", "--stack"])
    assert set(result["accuracy_on_crops"]) == {str(trained_model), "vader"}
    assert 0 <= result["accuracy_on_reviews"]["vader"] <= 1
    assert list(result["stack"]["weights"]) == [str(trained_model), "vader"]
    assert set(result["vader_checklist"]) == set(result["stack"]["checklist"])
    # crops and reviews once each, then the suite for the lexicon and for the stack
    assert calls[0] == 50 and len(calls) == 4


def test_short_text_stack_weighs_the_member_that_knows_the_labels():
    from benchmarks.short_texts import fit_stack

    rng = np.random.default_rng(0)
    labels = rng.integers(0, 2, 2000)
    knows = (2 * labels - 1) + rng.normal(0, 1.5, 2000)  # a feature that tracks the labels
    noise = rng.normal(0, 2, 2000)  # one that does not
    result, stack = fit_stack(np.stack([knows, noise], 1), labels, ["knows", "noise"])
    # the Bayes weight of ``knows`` is 2 * 1 / 1.5 ** 2 = 0.89; ``noise`` earns none
    assert 0.6 < result["weights"]["knows"] < 1.2 and abs(result["weights"]["noise"]) < 0.1
    assert result["crops_cross_validated"] > 0.7
    assert stack.predict([[3.0, 0.0]])[0] == 1 and stack.predict([[-3.0, 0.0]])[0] == 0


def test_checklist_benchmark_runs_the_suite_on_each_model(trained_model, tmp_path, capsys):
    from benchmarks import checklist
    from sentiment import load_model
    from sentiment.report.checklist import run_checklist

    results = checklist.main(["--models", str(trained_model), "--output",
                              str(tmp_path / "c.json")])
    model = load_model(trained_model)
    direct = run_checklist(lambda t: [r["scores"]["positive"]
                                      for r in model.score(list(t), all_scores=True)])
    assert {k: v["pass_rate"] for k, v in results[str(trained_model)].items()} == {
        k: v["pass_rate"] for k, v in direct.items()}
    saved = json.loads((tmp_path / "c.json").read_text())[str(trained_model)]
    assert {k: v["pass_rate"] for k, v in saved.items()} == {
        k: v["pass_rate"] for k, v in direct.items()}
    assert "negated negative is positive" in capsys.readouterr().out


def test_versions_benchmark_times_a_commit_and_the_working_tree_in_turns(trained_model,
                                                                         tmp_path):
    """Each version runs in its own process from its own folder (a worktree of the commit, then
    this checkout), on the same model and reviews; the worktree is removed afterwards."""
    import subprocess

    import pyarrow as pa
    import pyarrow.parquet as pq
    from conftest import synthetic_reviews

    from benchmarks import versions

    for split, seed in (("test", 31), ("train", 32)):
        pq.write_table(pa.Table.from_pylist(synthetic_reviews(60, seed=seed)),
                       tmp_path / f"{split}.parquet")
    result = versions.main(["--baseline", "HEAD", "--data", str(tmp_path), "--model",
                            str(trained_model), "--current-model", str(trained_model),
                            "--reviews", "60", "--rounds", "1", "--store-reviews", "60",
                            "--output", str(tmp_path / "v.json")])
    head = subprocess.run(["git", "rev-parse", "--short", "HEAD"], cwd=versions.ROOT,
                          capture_output=True, text=True, check=True).stdout.strip()
    assert result["baseline"] == head and result["current_model"] == str(trained_model)
    assert all(rates[0] > 0 for rates in result["reviews_per_s"].values())
    assert len(result["ratio_per_round"]) == 1
    assert json.loads((tmp_path / "v.json").read_text()) == result
    worktrees = subprocess.run(["git", "worktree", "list"], cwd=versions.ROOT,
                               capture_output=True, text=True, check=True).stdout
    assert len(worktrees.strip().splitlines()) == 1


def test_profile_scoring_times_each_phase_and_the_tokenizer_three_ways(trained_model, tmp_path):
    import pyarrow as pa
    import pyarrow.parquet as pq
    from conftest import synthetic_reviews

    from benchmarks import profile_scoring

    pq.write_table(pa.Table.from_pylist(synthetic_reviews(80, seed=33)),
                   tmp_path / "test.parquet")
    result = profile_scoring.main(["--data", str(tmp_path), "--models", str(trained_model),
                                   "--reviews", "80"])
    profiled = result["models"][0]
    assert profiled["reviews"] == 80 and profiled["tokens"] > 80
    assert set(profiled["seconds"]) == {"clean", "tokenize", "vocabulary lookup",
                                        "recurrent core", "head"}
    assert sum(profiled["share"].values()) == pytest.approx(1.0)
    assert set(profiled["tokenizer_s"]) == {"empty store", "every chunk known",
                                            "spaCy on whole texts"}
    assert all(s > 0 for s in profiled["tokenizer_s"].values())


def test_tokenizer_chunks_benchmark_counts_texts_that_differ_and_chunks_held(tmp_path):
    import pyarrow as pa
    import pyarrow.parquet as pq
    from conftest import synthetic_reviews

    from benchmarks import tokenizer_chunks

    rows = synthetic_reviews(100, seed=34)
    rows[3]["text"] = "It was in shape:) ). I rarely laughed."  # spaCy joins across the space
    for split, part in (("test", rows), ("train", synthetic_reviews(100, seed=35)),
                        ("unsupervised", synthetic_reviews(100, seed=36))):
        pq.write_table(pa.Table.from_pylist(part), tmp_path / f"{split}.parquet")
    result = tokenizer_chunks.main(["--data", str(tmp_path), "--splits", "test",
                                    "--max-chunks", "5", "1000000"])
    test = result["splits"]["test"]
    assert test["texts"] == 100 and test["differing_rows"] == [3]
    assert test["distinct_chunks"] > 50 and test["chunks_differing"] == 0
    held = result["test_chunks_held"]
    assert held[5]["filled_by"] == ["unsupervised", "train"]
    assert 0 < held[5]["held"] < held[1000000]["held"] <= 1


def test_truncation_benchmark_scores_each_length_and_end(trained_model, synthetic_dir):
    from benchmarks import truncation

    result = truncation.main(["--model", str(trained_model), "--data", str(synthetic_dir),
                              "--lengths", "4", "10000", "--rounds", "1", "--limit", "60"])
    names = {"whole", "start 4", "end 4", "start 10000", "end 10000"}
    assert set(result["validation_accuracy"]) == names and result["reviews"] == 60
    assert result["token_share"]["whole"] == 1 and result["token_share"]["end 4"] < 0.5
    assert result["token_share"]["start 4"] == result["token_share"]["end 4"]
    for name in ("start 10000", "end 10000"):  # longer than every review: the whole review
        assert result["labels_changed_from_whole"][name] == 0
        assert result["validation_accuracy"][name] == result["validation_accuracy"]["whole"]
    assert all(len(s) == 1 and s[0] > 0 for s in result["seconds"].values())


def _parquet_reviews(folder, rows):
    """``train.parquet`` and ``test.parquet`` of synthetic reviews in ``folder``."""
    import pyarrow as pa
    import pyarrow.parquet as pq
    from conftest import synthetic_reviews

    folder.mkdir(parents=True, exist_ok=True)
    for split, seed in (("train", 3), ("test", 4)):
        reviews = synthetic_reviews(rows, seed=seed)
        pq.write_table(pa.table({"text": [r["text"] for r in reviews],
                                 "label": [r["label"] for r in reviews]}),
                       folder / f"{split}.parquet")
    return folder


def test_throughput_benchmark_fills_the_chunk_store_through_a_cascades_stages(
        trained_model, wide_model, tmp_path):
    """A cascade has no tokens of its own: its stages that tokenize fill the store."""
    from benchmarks import throughput
    from sentiment.text import tokenize
    from sentiment.train.thresholds import save_cascade

    data = _parquet_reviews(tmp_path / "data", 60)
    cascade = save_cascade([wide_model[0] / "wide", trained_model, wide_model[0]], [0.9, 0.9],
                           tmp_path / "cascade")
    result = throughput.main(["--data", str(data), "--models", str(cascade), "--reviews", "40",
                              "--rounds", "1", "--store-reviews", "30"])
    assert result["reviews"] == 40 and len(result["reviews_per_s"][str(cascade)]) == 1
    from sentiment import load_model

    stores = throughput._chunk_stores(str(data), 30, [load_model(cascade)])
    assert len(stores[True]) > 0  # its LSTM stages read the 30 training reviews
    assert not throughput._chunk_stores(str(data), 0, [load_model(cascade)])[True]
    tokenize.chunk_store(True).clear()


def test_ngrams_benchmark_times_the_table_as_at_a_commit_beside_todays(wide_model, tmp_path):
    """--against COMMIT: the n-gram table of that commit, timed in the same turns, and whether
    its sums equal today's (HEAD's table is today's, or the working tree's being tested)."""
    from benchmarks import ngrams

    data = _parquet_reviews(tmp_path / "data", 30)
    result = ngrams.main(["--data", str(data), "--model", str(wide_model[0] / "wide"),
                          "--reviews", "30", "--rounds", "1", "--against", "HEAD"])
    timed = result["models"][str(wide_model[0] / "wide")]
    assert set(timed["texts_per_s"]) == {"sklearn", "table", "table@HEAD"}
    assert timed["same_as_before"] is True


def test_serve_load_ceiling_scores_every_text_in_batches_of_the_size(trained_model):
    """The serving benchmark's in-process ceiling scores the same texts in batches of the
    server's mean size, on its workers, each text once (after a warm-up of one batch each)."""
    from benchmarks.serve_load import in_process
    from sentiment import load_model

    model, seen = load_model(trained_model), []
    original = model.score

    def recording(texts, *args, **kwargs):
        seen.append(list(texts))
        return original(texts, *args, **kwargs)

    model.score = recording
    texts = [f"a fine film number {i}" for i in range(23)]
    rate = in_process(model, texts, 5, workers=2, max_tokens=8192)
    assert rate > 0
    timed = seen[2:]  # two warm-up batches, one per worker
    assert sorted(text for batch in timed for text in batch) == sorted(texts)
    assert sorted(len(batch) for batch in timed) == [3, 5, 5, 5, 5]


def test_serve_overhead_posts_every_request_through_the_app_with_a_costless_model(
        trained_model):
    """The fixed-cost benchmark sends each round's requests through the real app (a 200 for
    each, or it raises) and never runs the model it borrows the vocabulary of."""
    pytest.importorskip("fastapi")
    from benchmarks.serve_overhead import Costless, measure
    from sentiment import load_model

    model = copy.copy(load_model(trained_model))  # not the cached one, which others share
    model.score = model.score_encoded = None  # a model call would fail
    texts = ["A fine film.", "Dull and long, a waste of an evening."]
    rows = asyncio.run(measure(model, texts, requests=24, clients=4, rounds=2))
    assert len(rows) == 2 and all(r["requests_per_s"] > 0 and r["cpu_us_per_request"] > 0
                                  for r in rows)
    costless = Costless(model)
    assert costless.score(texts) == [{"label": model.labels[-1], "score": 0.9}] * 2
    assert costless.words is model.words


def test_batch_cuts_times_both_cuts_and_leaves_the_default_as_it_was(trained_model, tmp_path):
    from benchmarks import batch_cuts
    from sentiment import load_model
    from sentiment.data import lengths

    data = _parquet_reviews(tmp_path / "data", 20)
    load_model(trained_model).step_rows = 3.0  # the cached model's own setting, to be kept
    result = batch_cuts.main(["--data", str(data), "--models", str(trained_model), "--sizes",
                              "5", "--reviews", "20", "--rounds", "2"])
    timed = result["models"][str(trained_model)]["5"]
    assert {name: len(rates) for name, rates in timed["reviews_per_s"].items()} == {
        "greedy": 2, "least-cost": 2}
    assert timed["max_abs_dp"] < 0.02  # the same model, other batches (bf16 rounding at most)
    assert load_model(trained_model).step_rows == 3.0  # the cached model's own, put back
    load_model(trained_model).step_rows = lengths.STEP_ROWS
