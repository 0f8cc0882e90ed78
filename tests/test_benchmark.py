from __future__ import annotations

import json
import os

from benchmarks.suite import BenchmarkConfig, format_table, run_benchmark
from sentiment.training import cpu_has_native_bf16


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
    native = "bfloat16" if cpu_has_native_bf16() else "float32"
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
