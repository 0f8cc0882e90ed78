from __future__ import annotations

import json
import math
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import torch
from conftest import TEXTS, needs, run_python

from sentiment.data.batching import Batch
from sentiment.nn.core import RNNCore
from sentiment.nn.heads import LanguageModel, SentimentClassifier
from sentiment.text.vocab import Vocab
from sentiment.train import charlm
from sentiment.train.charlm import (
    CharBatches,
    build_char_vocab,
    generate,
    load_language_model,
    make_config,
    preprocess,
    train_language_model,
)
from sentiment.train.loop import run_epoch, train
from sentiment.train.prepare import build_task_model

ROOT = Path(__file__).resolve().parents[1]


def test_d2l_preprocessing_and_vocab():
    assert preprocess("The Time-Machine, 1895!", "d2l") == "the time machine "
    vocab = build_char_vocab("abc", "d2l")
    assert len(vocab) == 28 and vocab.unk_index == 0
    assert build_char_vocab("hello", "raw").itos == ["e", "h", "l", "o"]
    with pytest.raises(ValueError, match="mode"):
        preprocess("x", "bytes")


def test_sequential_batches_are_contiguous_and_shifted():
    corpus = np.arange(100)
    batches = CharBatches(corpus, batch_size=2, num_steps=5, offset=False)
    seen = list(batches)
    assert len(seen) == len(batches) == 9  # rows of 49 symbols, 5 at a time
    for batch in seen:
        assert torch.equal(batch.targets, batch.inputs + 1)
    assert seen[0].inputs.tolist() == [[0, 1, 2, 3, 4], [49, 50, 51, 52, 53]]
    for previous, current in zip(seen, seen[1:], strict=False):
        assert torch.equal(current.inputs[:, 0], previous.inputs[:, -1] + 1)
        assert current.continues
    assert not seen[0].continues


def test_random_batches_cover_disjoint_windows_and_reset_state():
    batches = CharBatches(np.arange(200), batch_size=3, num_steps=6, sampling="random", seed=1)
    starts = []
    for batch in batches:
        assert not batch.continues and torch.equal(batch.targets, batch.inputs + 1)
        assert (batch.inputs[:, 1:] - batch.inputs[:, :-1] == 1).all()
        starts += batch.inputs[:, 0].tolist()
    assert len(starts) == len(set(starts)) == 3 * len(batches)
    batches.set_epoch(1)
    assert [b.inputs[:, 0].tolist() for b in batches] != [starts[i:i + 3] for i in range(0, 9, 3)]


def test_too_short_text_is_a_clear_error():
    with pytest.raises(ValueError, match="text too short"):
        CharBatches(np.arange(20), batch_size=4, num_steps=10)


def tiny_lm(vocab_size=5, hidden=16):
    config = make_config("tiny", hidden_dim=hidden, input_type="onehot")
    return build_task_model(config, Vocab([chr(97 + i) for i in range(vocab_size)]))[0]


def test_uniform_model_perplexity_equals_vocabulary_size():
    model = tiny_lm(vocab_size=7)
    with torch.no_grad():
        model.decoder.weight.zero_()
        model.decoder.bias.zero_()
    batches = CharBatches(np.random.default_rng(0).integers(0, 7, 500), 4, 10, offset=False)
    metrics = run_epoch(model, batches, torch.device("cpu"), progress=False)
    assert metrics["perplexity"] == pytest.approx(7.0, rel=1e-5)
    assert metrics["bits_per_char"] == pytest.approx(math.log2(7), rel=1e-5)


def test_detached_state_keeps_memory_flat():
    """Truncated BPTT must not keep each batch's graph alive: the peak RSS of a fresh process
    (this one's is already raised by earlier tests) stays level over 450 carried batches."""
    usage = run_python("""
import json, resource
import numpy as np
import torch
from sentiment.data.batching import StreamBatches
from sentiment.train.charlm import make_config
from sentiment.train.prepare import build_task_model
from sentiment.train.loop import Optimization, run_epoch
from sentiment.text.vocab import Vocab

config = make_config("tiny", hidden_dim=64, input_type="onehot")
model = build_task_model(config, Vocab([chr(97 + i) for i in range(10)]))[0]
optimization = Optimization(torch.optim.SGD(model.parameters(), lr=0.1))
batches = StreamBatches(np.random.default_rng(0).integers(0, 10, 200_000), 8, 20, offset=False)
usage = []
for chunk in range(3):
    limited = [b for _, b in zip(range(150), batches)]
    for b in limited:
        b.continues = True
    run_epoch(model, limited, torch.device("cpu"), optimization=optimization, progress=False)
    usage.append(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss)
print(json.dumps(usage))
""")
    assert usage[2] - usage[0] < 50 * 1024  # KiB: no graph kept alive across batches


def test_memorises_a_repeated_string(tmp_path):
    text = tmp_path / "repeat.txt"
    text.write_text("hello world, " * 400)
    config = make_config("tiny", text=[str(text)], mode="raw", output=str(tmp_path / "lm"),
                         hidden_dim=64, epochs=8, progress=False, lr=2e-2)
    summary = train_language_model(config)
    assert summary["best"]["valid_perplexity"] < 1.2
    lm = load_language_model(tmp_path / "lm")
    assert generate(lm, "hello ", 13) == "hello world, hello "


def test_patience_stops_a_language_model_on_validation_perplexity(tmp_path):
    """The held-out text follows other rules than the training text, so validation perplexity
    rises as the model learns: with patience 2 the run stops two epochs after its best one and
    keeps that one. The d2l preset stops so (issue 42: its best epoch was 41 of 500)."""
    text = tmp_path / "shift.txt"
    text.write_text("aab" * 900 + "abb" * 100)  # the last 10% (validation) is the other rule
    config = make_config("tiny", text=[str(text)], mode="raw", output=str(tmp_path / "lm"),
                         epochs=30, patience=2, progress=False, lr=2e-2)
    summary = train_language_model(config)
    assert summary["epochs_run"] == summary["best"]["epoch"] + 2 < 30
    metrics = (tmp_path / "lm" / "metrics.jsonl").read_text().splitlines()
    perplexities = [json.loads(line)["valid_perplexity"] for line in metrics]
    assert min(perplexities) == summary["best"]["valid_perplexity"] < perplexities[-1]
    d2l = make_config("d2l").train
    assert d2l.patience == 5 and d2l.epochs <= 100


@pytest.fixture(scope="module")
def saved_lm(tmp_path_factory):
    folder = tmp_path_factory.mktemp("lm")
    text = folder / "text.txt"
    text.write_text("the quick brown fox jumps over the lazy dog. " * 200)
    config = make_config("tiny", text=[str(text)], output=str(folder / "model"), mode="raw",
                         epochs=2, progress=False)
    train_language_model(config)
    assert (folder / "model" / "perplexity.png").exists()
    return folder / "model"


def test_generation_is_reproducible_and_checked(saved_lm):
    lm = load_language_model(saved_lm)
    assert generate(lm, "the ", 30) == generate(lm, "the ", 30)
    sampled = generate(lm, "the ", 30, temperature=0.8, top_k=5, seed=3)
    assert sampled == generate(lm, "the ", 30, temperature=0.8, top_k=5, seed=3)
    assert len(sampled) == 34 and sampled.startswith("the ")
    assert len(generate(lm, "", 10)) == 10
    with pytest.warns(UserWarning, match="dropped"):
        assert generate(lm, "the Ω", 5).startswith("the Ω")
    for kwargs, message in (({"temperature": 0}, "temperature"), ({"num_chars": -1}, "num_chars"),
                            ({"top_k": 0}, "top_k")):
        with pytest.raises(ValueError, match=message):
            generate(lm, "the", **kwargs)


def test_save_load_generate_is_identical(saved_lm, tmp_path):
    first = load_language_model(saved_lm)
    again = load_language_model(saved_lm)
    assert generate(first, "lazy ", 40, temperature=1.0, seed=0) == generate(
        again, "lazy ", 40, temperature=1.0, seed=0)


def test_classifier_and_language_model_share_core_and_loop():
    import inspect

    from sentiment.nn.heads import build_model
    from sentiment.train import recipe as pipeline

    assert isinstance(tiny_lm().core, RNNCore)
    # one place builds the core; both heads receive it
    assert build_model.__code__.co_names.count("RNNCore") == 1
    assert LanguageModel.__init__.__code__.co_names.count("RNNCore") == 0
    assert SentimentClassifier.__init__.__code__.co_names.count("RNNCore") == 0
    assert charlm.train is train and pipeline.train is train
    assert "train(" in inspect.getsource(charlm.train_language_model)


def test_state_passes_in_and_out():
    model = tiny_lm().eval()
    inputs = torch.tensor([[1, 2, 3, 4]])
    whole = model(Batch(inputs, None)).logits
    first = model(Batch(inputs[:, :2], None))
    second = model(Batch(inputs[:, 2:], None), first.state).logits
    torch.testing.assert_close(whole[:, 2:], second)


@needs(TEXTS / "timemachine.txt")
def test_scripts_on_the_time_machine(tmp_path):
    output = tmp_path / "tm"
    run = subprocess.run([sys.executable, str(ROOT / "scripts" / "train_charlm.py"), "--preset",
                          "tiny", "--text", str(TEXTS / "timemachine.txt"), "--output",
                          str(output), "--no-progress", "--epochs", "2"],
                         capture_output=True, text=True, timeout=600)
    assert run.returncode == 0, run.stderr[-2000:]
    assert '"valid_perplexity"' in run.stdout
    gen = subprocess.run([sys.executable, str(ROOT / "scripts" / "generate.py"), "--model",
                          str(output), "--prefix", "time traveller", "--num-chars", "30",
                          "--temperature", "0.8", "--seed", "0"], capture_output=True, text=True)
    assert gen.returncode == 0 and gen.stdout.startswith("time traveller")
    assert len(gen.stdout.rstrip("\n")) == len("time traveller") + 30
