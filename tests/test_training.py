from __future__ import annotations

import copy
import json

import pytest
import torch

from sentiment.config import Config, HeadConfig, ModelConfig, ReviewData, TrainConfig
from sentiment.data.batching import SequenceBatches
from sentiment.kinds.checkpoint import load_pretrained, save_pretrained
from sentiment.nn.core import CoreConfig, RNNCore
from sentiment.nn.heads import SentimentClassifier
from sentiment.runtime.precision import (
    autocast,
    autocast_dtype,
    cpu_has_native_bf16,
    resolve_device,
)
from sentiment.text.vocab import Vocab
from sentiment.train.loop import Optimization, run_epoch, train


def toy_data(n=256, seed=0):
    """Class 1 sequences contain token 3, class 0 sequences token 4."""
    generator = torch.Generator().manual_seed(seed)
    sequences, labels = [], []
    for i in range(n):
        length = int(torch.randint(3, 15, (1,), generator=generator))
        seq = torch.randint(5, 20, (length,), generator=generator).tolist()
        seq[int(torch.randint(0, length, (1,), generator=generator))] = 3 if i % 2 else 4
        sequences.append(seq)
        labels.append(i % 2)
    return sequences, labels


def make_model():
    torch.manual_seed(0)
    return SentimentClassifier(RNNCore(CoreConfig(vocab_size=20, embed_dim=8, hidden_dim=8,
                                                  num_layers=1, dropout=0.0, input_dropout=0.0)),
                               HeadConfig(output_dropout=0.0, pooling="concat"))


def config_of(model) -> Config:
    return Config("sentiment", ReviewData(), ModelConfig(core=model.core.config, head=model.config))


def batches(seed=0, shuffle=True):
    sequences, labels = toy_data(seed=seed)
    return SequenceBatches(sequences, labels, batch_size=32, shuffle=shuffle)


def run(tmp_path, epochs, **kwargs):
    config = TrainConfig(epochs=epochs, lr=1e-2, progress=False, patience=None, **kwargs)
    model = make_model()
    history = train(model, batches(), batches(1, False), config, tmp_path)
    return model, history


def test_learns_keeps_best_and_writes_metrics(tmp_path):
    model, history = run(tmp_path, 6)
    assert history[-1]["valid_accuracy"] > 0.9
    lines = [json.loads(x) for x in (tmp_path / "metrics.jsonl").read_text().splitlines()]
    assert [r["epoch"] for r in lines] == list(range(1, 7))
    assert {"train_loss", "valid_accuracy", "train_tokens_per_s", "train_padding_share"} <= set(
        lines[0])
    assert (tmp_path / "checkpoint" / "state.json").exists()


def test_resume_continues_where_it_stopped(tmp_path):
    straight, _ = run(tmp_path / "straight", 4)
    run(tmp_path / "resumed", 2)  # "interrupted" after two epochs
    resumed, history = run(tmp_path / "resumed", 4)
    assert [r["epoch"] for r in history] == [3, 4]
    lines = (tmp_path / "resumed" / "metrics.jsonl").read_text().splitlines()
    assert [json.loads(x)["epoch"] for x in lines] == [1, 2, 3, 4]
    for a, b in zip(straight.state_dict().values(), resumed.state_dict().values(), strict=True):
        torch.testing.assert_close(a, b)


def test_seeded_runs_are_identical(tmp_path):
    a, _ = run(tmp_path / "a", 2)
    b, _ = run(tmp_path / "b", 2)
    for x, y in zip(a.parameters(), b.parameters(), strict=True):
        assert torch.equal(x, y)


def test_early_stopping_stops_when_patience_runs_out_and_keeps_the_best_epoch(tmp_path,
                                                                             monkeypatch):
    """Validation scripted to peak at epoch 2: with patience 2 the run stops after epoch 4
    (two epochs without progress) and ends with epoch 2's weights, saved and in memory."""
    from safetensors.torch import load_file

    from sentiment.train import loop as training

    scripted = iter([0.6, 0.8, 0.7, 0.75, 0.9, 0.95])
    seen = []  # the judged weights at each epoch's validation

    def validate(judged, *args):
        seen.append(copy.deepcopy(judged.state_dict()))
        accuracy = next(scripted)
        return {"valid_accuracy": accuracy, "valid_loss": 1 - accuracy}

    monkeypatch.setattr(training, "validate", validate)
    model = make_model()
    config = TrainConfig(epochs=6, lr=1e-2, progress=False, patience=2)
    save = lambda m, d: save_pretrained(m, d, Vocab([f"t{i}" for i in range(20)]),  # noqa: E731
                                        config_of(m))
    history = train(model, batches(), batches(1, False), config, tmp_path, save_best=save)
    assert [r["epoch"] for r in history] == [1, 2, 3, 4]
    assert [r.get("best", False) for r in history] == [True, True, False, False]
    saved = load_file(str(tmp_path / "model.safetensors"))
    for name, value in model.state_dict().items():
        torch.testing.assert_close(value, seen[1][name])  # epoch 2's, not the last
        torch.testing.assert_close(saved[name], seen[1][name])
    assert any(not torch.equal(seen[1][name], seen[3][name]) for name in seen[1])
    # without patience the same script runs every epoch and keeps the last, best one
    scripted = iter([0.6, 0.8, 0.7, 0.75, 0.9, 0.95])
    config = TrainConfig(epochs=6, lr=1e-2, progress=False, patience=None)
    assert len(train(make_model(), batches(), batches(1, False), config, tmp_path / "all")) == 6


def test_a_tie_on_the_metric_goes_to_the_lower_validation_loss():
    from sentiment.train.loop import Progress, select_best

    progress = Progress()
    assert select_best(progress, 0.5, "max", loss=0.70)
    assert select_best(progress, 0.7, "max", loss=0.69)  # a lucky early peak
    assert not select_best(progress, 0.6, "max", loss=0.68)
    assert not select_best(progress, 0.7, "max", loss=0.695)  # tied, worse loss: no progress
    assert progress.bad_epochs == 2
    assert select_best(progress, 0.7, "max", loss=0.66)  # tied, better loss: progress
    assert progress.bad_epochs == 0 and progress.best_loss == 0.66
    assert not select_best(progress, 0.69, "max", loss=0.1)  # the metric still comes first
    restored = Progress(**progress.to_dict())  # what a checkpoint keeps
    assert not select_best(restored, 0.7, "max", loss=0.67)
    assert select_best(restored, 0.7, "max", loss=0.65)
    lowest = Progress()
    assert select_best(lowest, 2.0, "min", loss=2.0)
    assert not select_best(lowest, 2.0, "min", loss=2.0)


def test_save_load_round_trip(tmp_path):
    model = make_model().eval()
    vocab = Vocab([f"t{i}" for i in range(20)])
    save_pretrained(model, tmp_path, vocab, config_of(model))
    loaded, loaded_vocab, config = load_pretrained(tmp_path)
    assert loaded_vocab.itos == vocab.itos and config.model.head.pooling == "concat"
    batch = next(iter(batches(shuffle=False)))
    torch.testing.assert_close(model(batch).logits, loaded(batch).logits)


def test_bad_settings():
    with pytest.raises(ValueError, match="optimizer"):
        TrainConfig(optimizer="rmsprop")
    if not torch.cuda.is_available():
        with pytest.raises(ValueError, match="CUDA is not available"):
            resolve_device("cuda")


def test_time_budget_stops_between_epochs(tmp_path):
    config = TrainConfig(epochs=20, progress=False, patience=None, max_minutes=1e-6)
    history = train(make_model(), batches(), batches(1, False), config, tmp_path)
    assert len(history) == 1


def test_presets_and_unknown_options():
    from sentiment.train import charlm
    from sentiment.train import recipe as pipeline

    assert pipeline.make_config("tiny", epochs=2).train.epochs == 2
    assert charlm.make_config("d2l").train.optimizer == "sgd"
    with pytest.raises(ValueError, match="unknown option 'bogus'"):
        pipeline.make_config(bogus=1)
    with pytest.raises(ValueError, match="unknown preset"):
        charlm.make_config("huge")


def test_resume_ends_with_the_best_weights_not_the_last(tmp_path):
    from safetensors.torch import save_model

    vocab = Vocab([f"t{i}" for i in range(20)])
    config = TrainConfig(epochs=2, lr=1e-2, progress=False, patience=None)
    save = lambda m, d: save_pretrained(m, d, vocab, config_of(m))  # noqa: E731
    train(make_model(), batches(), batches(1, False), config, tmp_path, save_best=save)
    worse = make_model()
    with torch.no_grad():
        for p in worse.parameters():
            p.normal_()
    save_model(worse, str(tmp_path / "checkpoint" / "model.safetensors"))  # a worse last epoch
    resumed = make_model()
    assert train(resumed, batches(), batches(1, False), config, tmp_path, save_best=save) == []
    best, _, _ = load_pretrained(tmp_path)
    for a, b in zip(resumed.state_dict().values(), best.state_dict().values(), strict=True):
        torch.testing.assert_close(a, b)


def test_autocast_dtype_per_device(monkeypatch, tmp_path):
    """CUDA: float16. CPU: bfloat16 only where it measured faster than float32 on this CPU
    (an Intel Xeon with native bf16 measured it slower), the measurement cached per machine."""
    from sentiment.runtime import precision

    assert autocast_dtype(torch.device("cuda"), True) == torch.float16
    assert autocast_dtype(torch.device("cuda"), False) is None
    assert autocast_dtype(torch.device("cpu"), False) is None
    monkeypatch.setattr(precision, "CACHE_DIR", tmp_path)
    monkeypatch.delenv("SENTIMENT_CPU_PRECISION", raising=False)
    calls = []

    def measured(winner):
        def measure(training):
            calls.append(training)
            return {"dtype": winner, "float32_s": 1.0, "bfloat16_s": 1.0, "cpu": "test"}
        return measure

    def fresh(native, winner):
        precision.cpu_bfloat16_faster.cache_clear()
        monkeypatch.setattr(precision, "cpu_has_native_bf16", lambda: native)
        monkeypatch.setattr(precision, "measure_cpu_precision", measured(winner))

    fresh(False, "bfloat16")
    assert autocast_dtype(torch.device("cpu"), True) is None  # emulated bf16: never measured
    assert calls == []
    fresh(True, "float32")  # native bf16 that measures slower (the Xeon)
    assert autocast_dtype(torch.device("cpu"), True) is None
    assert calls == [False]
    fresh(True, "bfloat16")  # cached: the inference answer stands, training is measured
    assert autocast_dtype(torch.device("cpu"), True) is None
    assert autocast_dtype(torch.device("cpu"), True, training=True) == torch.bfloat16
    assert calls == [False, True]
    monkeypatch.setenv("SENTIMENT_CPU_PRECISION", "bfloat16")
    fresh(True, "float32")
    assert autocast_dtype(torch.device("cpu"), True) == torch.bfloat16
    monkeypatch.setenv("SENTIMENT_CPU_PRECISION", "fast")
    fresh(True, "float32")
    with pytest.raises(ValueError, match="SENTIMENT_CPU_PRECISION"):
        autocast_dtype(torch.device("cpu"), True)
    precision.cpu_bfloat16_faster.cache_clear()


@pytest.mark.skipif(not cpu_has_native_bf16(),
                    reason="oneDNN has no bf16 LSTM on a CPU without bf16 instructions (the "
                           "package trains and scores in float32 there, unmeasured)")
def test_cpu_precision_measurement_times_both():
    from sentiment.runtime.precision import measure_cpu_precision

    result = measure_cpu_precision(training=False)
    assert result["dtype"] in ("float32", "bfloat16") and result["float32_s"] > 0
    assert (result["dtype"] == "bfloat16") == (result["bfloat16_s"] < result["float32_s"])


@pytest.mark.skipif(not cpu_has_native_bf16(),
                    reason="oneDNN has no bf16 LSTM on a CPU without bf16 instructions (the "
                           "package trains and scores in float32 there, unmeasured)")
def test_bfloat16_autocast_learns_and_keeps_a_float32_head():
    """Forced bf16 (emulated where the CPU lacks it): the RNN runs in bf16, logits and loss are
    float32, weights and gradients stay float32, and the model learns the toy task."""
    model = make_model()
    optimizer = torch.optim.Adam(model.parameters(), lr=1e-2)
    device = torch.device("cpu")
    first = run_epoch(model, batches(), device, torch.bfloat16, Optimization(optimizer),
                      progress=False)
    for epoch in range(5):
        last = run_epoch(model, batches(), device, torch.bfloat16, Optimization(optimizer),
                         progress=False)
    assert last["loss"] < 0.5 * first["loss"] and last["accuracy"] > 0.9
    assert all(p.dtype == torch.float32 for p in model.parameters())
    batch = next(iter(batches(1, False)))
    with torch.inference_mode(), autocast(device, torch.bfloat16):
        output = model(batch)
        core = model.core(batch.inputs, batch.lengths)
    assert core.outputs.dtype == torch.bfloat16  # the RNN did run in bf16
    assert output.logits.dtype == torch.float32 and output.loss.dtype == torch.float32
    with torch.inference_mode():
        exact = model(batch).logits
    assert torch.allclose(output.logits, exact, atol=0.05)


def test_learning_rate_schedules():
    from sentiment.train.loop import lr_factor

    warm = TrainConfig(schedule="linear", warmup=0.1)
    assert [round(lr_factor(warm, s, 100), 3) for s in (0, 4, 9)] == [0.1, 0.5, 1.0]
    assert lr_factor(warm, 55, 100) == pytest.approx(0.5, abs=0.01)
    assert lr_factor(warm, 99, 100) < 0.02
    cosine = TrainConfig(schedule="cosine")
    assert lr_factor(cosine, 0, 100) == 1.0 and lr_factor(cosine, 50, 100) == pytest.approx(0.5)
    assert lr_factor(TrainConfig(), 99, 100) == 1.0  # constant: off by default


def test_schedule_is_applied_and_resumed(tmp_path):
    _, history = run(tmp_path, 3, schedule="linear")
    rates = [r["lr"] for r in history]
    assert rates[0] > rates[1] > rates[2] >= 0
    straight, _ = run(tmp_path / "straight", 3, schedule="cosine")
    _, first = run(tmp_path / "resumed", 3, schedule="cosine", max_minutes=1e-6)  # "interrupted"
    assert len(first) == 1
    resumed, _ = run(tmp_path / "resumed", 3, schedule="cosine")
    for a, b in zip(straight.state_dict().values(), resumed.state_dict().values(), strict=True):
        torch.testing.assert_close(a, b)


def test_discriminative_rates_and_gradual_unfreezing(tmp_path):
    from sentiment.train.loop import build_optimizer, layer_groups

    model = make_model()
    optimizer = build_optimizer(model, TrainConfig(lr=1.0, layer_lr_decay=0.5))
    assert [g["lr"] for g in optimizer.param_groups] == [1.0, 0.5, 0.25]  # head, layer, embed
    assert len(layer_groups(model)) == 3
    model = make_model()
    before = {k: v.clone() for k, v in model.state_dict().items()}
    config = TrainConfig(epochs=1, lr=1e-2, progress=False, patience=None, unfreeze=True)
    train(model, batches(), batches(1, False), config, tmp_path)
    after = model.state_dict()
    assert all(torch.equal(before[k], after[k]) for k in before if k.startswith("core."))
    assert not torch.equal(before["fc.weight"], after["fc.weight"])  # epoch 1: the head only
    assert all(p.requires_grad for p in model.parameters())  # nothing left frozen


def test_adversarial_push_has_its_size_raises_the_loss_and_is_removed(tmp_path):
    from sentiment.train.adversarial import AdversarialEmbedding

    model = make_model()
    train(model, batches(), batches(1, False), TrainConfig(epochs=2, lr=1e-2, progress=False,
                                                           patience=None), tmp_path / "a")
    model.eval()  # no dropout: the clean and the pushed pass differ only by the push
    batch = next(iter(batches(2, False)))
    adversary = AdversarialEmbedding(model.core.embedding, 0.5)
    clean = model(batch)
    clean.loss.backward()
    embedded = adversary.captured.detach()
    assert adversary.perturb()
    norms = adversary.push.norm(dim=(1, 2))
    torch.testing.assert_close(norms, 0.5 * embedded.norm(dim=(1, 2)))
    with torch.no_grad():
        pushed = model(batch)
        # the same push in a random direction raises the loss far less than along the gradient
        adversary.push = adversary.push[:, torch.randperm(adversary.push.size(1))]
        shuffled = model(batch)
    adversary.remove()
    assert pushed.loss > shuffled.loss and pushed.loss > clean.loss
    assert not model.core.embedding._forward_hooks
    with torch.no_grad():
        torch.testing.assert_close(model(batch).loss, clean.loss)  # no push once removed


def test_adversarial_training_learns_and_changes_the_steps(tmp_path):
    plain, _ = run(tmp_path / "plain", 3)
    pushed, history = run(tmp_path / "pushed", 3, adversarial=0.1)
    assert history[-1]["valid_accuracy"] > 0.9
    assert not pushed.core.embedding._forward_hooks  # the hook goes with the run
    differs = [not torch.allclose(a, b) for a, b in
               zip(plain.state_dict().values(), pushed.state_dict().values(), strict=True)]
    assert any(differs)


def test_adversarial_needs_an_embedding_and_a_sane_size(tmp_path):
    from sentiment.train.adversarial import AdversarialEmbedding

    with pytest.raises(ValueError, match="word embedding"):
        AdversarialEmbedding(None, 0.1)
    with pytest.raises(ValueError, match="adversarial"):
        TrainConfig(adversarial=-0.1)


def unlabelled_batches(n=256, seed=5, batch_size=32, shuffle=True):
    sequences, _ = toy_data(n, seed=seed)
    return SequenceBatches(sequences, None, batch_size=batch_size, shuffle=shuffle)


def test_virtual_push_changes_the_prediction_most_and_never_reads_labels(tmp_path):
    import torch.nn.functional as F

    from sentiment.train.adversarial import AdversarialEmbedding, VirtualAdversary

    model = make_model()
    train(model, batches(), batches(1, False), TrainConfig(epochs=2, lr=1e-2, progress=False,
                                                           patience=None), tmp_path / "a")
    model.eval()  # no dropout: the clean and the pushed pass differ only by the push
    sequences, labels = toy_data(32, seed=6)
    adversary = AdversarialEmbedding(model.core.embedding, 0.0)
    virtual = VirtualAdversary(adversary, 0.5, SequenceBatches(sequences, None, 32, shuffle=False))
    pushes = []
    perturb = adversary.perturb

    def spy(*args, **kwargs):
        done = perturb(*args, **kwargs)
        pushes.append(adversary.push.clone())
        return done

    adversary.perturb = spy
    loss = virtual.loss(model, None, torch.device("cpu"), None)
    batch = next(iter(SequenceBatches(sequences, None, 32, shuffle=False)))
    with torch.no_grad():
        embedded = model.core.embedding(batch.inputs)
        torch.testing.assert_close(pushes[0].norm(dim=(1, 2)), 0.5 * embedded.norm(dim=(1, 2)))
        clean = torch.sigmoid(model(batch).logits)

        def kl(push):
            adversary.push = push
            pushed = model(batch).logits
            adversary.clear()
            return (clean * (clean.log() - F.logsigmoid(pushed))
                    + (1 - clean) * ((1 - clean).log() - F.logsigmoid(-pushed))).mean()

        torch.testing.assert_close(loss.detach(), kl(pushes[0]), rtol=1e-4, atol=1e-6)
        # a push of the same size in a random direction changes the prediction far less
        noise = torch.randn(pushes[0].shape, generator=torch.Generator().manual_seed(0))
        noise *= pushes[0].norm(dim=(1, 2), keepdim=True) / noise.norm(dim=(1, 2), keepdim=True)
        random = kl(noise)
    assert loss > 5 * random > 0
    # labels in the unlabelled stream change nothing: the loss never reads them
    labelled = VirtualAdversary(adversary, 0.5, SequenceBatches(sequences, labels, 32,
                                                                shuffle=False))
    torch.testing.assert_close(labelled.loss(model, None, torch.device("cpu"), None), loss)
    adversary.remove()


def test_virtual_adversarial_training_learns_and_needs_unlabelled_reviews(tmp_path):
    from sentiment.train.adversarial import AdversarialEmbedding, VirtualAdversary

    plain, _ = run(tmp_path / "plain", 5)
    config = TrainConfig(epochs=5, lr=1e-2, progress=False, patience=None,
                         virtual_adversarial=0.1)
    model = make_model()
    stream = unlabelled_batches(n=64)  # 2 batches: the stream is used up and reshuffled
    history = train(model, batches(), batches(1, False), config, tmp_path / "virtual",
                    unlabelled=stream)
    assert history[-1]["valid_accuracy"] > 0.9
    assert all(record["train_virtual_loss"] > 0 for record in history)
    assert not model.core.embedding._forward_hooks  # the hook goes with the run
    assert any(not torch.allclose(a, b) for a, b in
               zip(plain.state_dict().values(), model.state_dict().values(), strict=True))
    with pytest.raises(ValueError, match="unlabelled"):
        train(make_model(), batches(), batches(1, False), config, tmp_path / "none")
    with pytest.raises(ValueError, match="unlabelled"):
        VirtualAdversary(AdversarialEmbedding(make_model().core.embedding, 0.0), 0.1,
                         unlabelled_batches(n=0))
    with pytest.raises(ValueError, match="virtual_adversarial"):
        TrainConfig(virtual_adversarial=1.5)
    from sentiment.nn.heads import LanguageModel

    language_model = LanguageModel(RNNCore(CoreConfig(vocab_size=20, embed_dim=8, hidden_dim=8,
                                                      num_layers=1, bidirectional=False)))
    with pytest.raises(ValueError, match="classifiers"):
        train(language_model, batches(), batches(1, False), config, tmp_path / "lm",
              unlabelled=stream)


def test_weight_average_is_the_moving_average_of_every_step():
    from sentiment.train.averaging import WeightAverage, weight_average

    model = make_model()
    optimizer = torch.optim.SGD(model.parameters(), lr=0.1)
    average = weight_average(model, 0.5)
    steps = []
    optimizer.register_step_post_hook(
        lambda *_: steps.append([p.detach().clone() for p in model.parameters()]))
    run_epoch(model, batches(), torch.device("cpu"),
              optimization=Optimization(optimizer, hooks=[WeightAverage(average)]), progress=False)
    assert len(steps) == 8  # 256 sequences in batches of 32
    expected = steps[0]  # the first update copies the weights
    for k, step in enumerate(steps[1:], start=1):
        decay = min(0.5, k / (k + 4))  # warming up over the first 4 updates, then 0.5
        expected = [decay * e + (1 - decay) * p for e, p in zip(expected, step, strict=True)]
    for want, got in zip(expected, average.module.parameters(), strict=True):
        torch.testing.assert_close(got, want)
    assert any(not torch.allclose(a, p) for a, p in
               zip(average.module.parameters(), model.parameters(), strict=True))
    assert weight_average(model, 0.0) is None
    with pytest.raises(ValueError, match="ema_decay"):
        TrainConfig(ema_decay=1.0)


def test_training_with_a_weight_average_keeps_saves_and_resumes_it(tmp_path):
    from safetensors.torch import load_file

    model, history = run(tmp_path / "one", 1, ema_decay=0.9)
    record = history[0]
    assert {"valid_accuracy", "valid_unaveraged_accuracy", "valid_unaveraged_loss"} <= set(record)
    assert record["valid_loss"] != record["valid_unaveraged_loss"]
    average = load_file(str(tmp_path / "one" / "checkpoint" / "average.safetensors"))
    last = load_file(str(tmp_path / "one" / "checkpoint" / "model.safetensors"))
    for name, value in model.state_dict().items():  # the run ends with the average, not the last
        torch.testing.assert_close(value, average[f"module.{name}"])
    assert any(not torch.allclose(value, last[name]) for name, value in model.state_dict().items()
               if value.is_floating_point())
    # interrupted after two epochs and resumed: the same average as a run never interrupted
    straight, _ = run(tmp_path / "straight", 4, ema_decay=0.9)
    run(tmp_path / "resumed", 2, ema_decay=0.9)
    resumed, _ = run(tmp_path / "resumed", 4, ema_decay=0.9)
    for a, b in zip(straight.state_dict().values(), resumed.state_dict().values(), strict=True):
        torch.testing.assert_close(a, b)


def test_trim_heap_hands_freed_heap_memory_back():
    """glibc keeps freed small blocks in its heap; trim_heap returns their pages to the kernel
    (what keeps the main command's report from adding its peak on top of training's)."""
    from conftest import run_python

    measured = run_python(
        "import json, psutil\n"
        "from sentiment.runtime.memory import trim_heap\n"
        "rss = lambda: psutil.Process().memory_info().rss / 2**20\n"
        "blocks = [bytearray(64 * 1024) for _ in range(6000)]  # ~375 MB of heap blocks\n"
        "keep = blocks[::50]  # a few survivors pin the heap's top\n"
        "del blocks\n"
        "before = rss()\n"
        "trim_heap()\n"
        "print(json.dumps({'before': before, 'after': rss()}))\n")
    assert measured["before"] - measured["after"] > 200, measured


def test_progress_bars_stay_off_a_log_file(synthetic_dir, tmp_path, capfd):
    """With progress on but stderr not a terminal (a log file, a pipe), the training and
    validation bars write nothing: a tiny run once left a line per batch (28 KB)."""
    from sentiment.train.recipe import make_config, train_sentiment

    config = make_config("tiny", data=str(synthetic_dir), output=str(tmp_path / "run"),
                         epochs=1, progress=True, evaluate=False, num_proc=1, train_limit=400)
    train_sentiment(config)
    err = capfd.readouterr().err
    assert "batch/s" not in err and "s/batch" not in err and "tok_s" not in err
