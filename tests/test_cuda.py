"""CUDA tests: run on a GPU machine, skipped elsewhere (CI has no GPU)."""

from __future__ import annotations

import pytest
import torch

from sentiment import load_model, predict
from sentiment.data.batching import pad_batch
from sentiment.nn.core import CoreConfig, RNNCore
from sentiment.nn.heads import SentimentClassifier
from sentiment.train.recipe import make_config, train_sentiment

pytestmark = [pytest.mark.cuda,
              pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA GPU")]


def test_packed_on_cuda_matches_exact_on_cpu():
    torch.manual_seed(0)
    core = RNNCore(CoreConfig(vocab_size=50, embed_dim=8, hidden_dim=16))
    model = SentimentClassifier(core).eval()
    batch = pad_batch([[3, 4, 5, 6, 7, 8], [9, 10], [11, 12, 13]])
    on_cpu = model(batch).logits
    model.cuda()
    on_gpu = model(batch.to("cuda")).logits.cpu()
    torch.testing.assert_close(on_cpu, on_gpu, rtol=1e-4, atol=1e-4)


def test_trained_on_cuda_with_mixed_precision_loads_on_cpu(synthetic_dir, tmp_path):
    config = make_config("tiny", data=str(synthetic_dir), output=str(tmp_path), epochs=4,
                         device="cuda", progress=False, baseline=False, num_proc=1)
    summary = train_sentiment(config)
    assert summary["report"]["accuracy"] > 0.9
    on_cpu = load_model(tmp_path, device="cpu")
    assert on_cpu.device.type == "cpu"
    texts = ["Brilliant and moving.", "Awful, dull."]
    cpu = predict(texts, model=on_cpu)
    gpu = predict(texts, model=load_model(tmp_path, device="cuda"))
    assert [r["label"] for r in cpu] == [r["label"] for r in gpu] == ["positive", "negative"]
    for a, b in zip(cpu, gpu, strict=True):
        assert a["score"] == pytest.approx(b["score"], abs=1e-3)
