"""torchrun: batches sharded across ranks, identical weights, one writer, resume on another N.

The integration tests launch 2 Gloo processes on the CPU with ``torch.distributed.run``."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import textwrap

import numpy as np
import pytest

from sentiment.data.batching import SequenceBatches, StreamBatches
from sentiment.runtime import distributed

RUN = [sys.executable, "-m", "torch.distributed.run", "--standalone", "--nproc_per_node", "2"]


def _as_rank(monkeypatch, rank: int, world: int) -> None:
    monkeypatch.setattr(distributed, "is_distributed", lambda: True)
    monkeypatch.setattr(distributed, "rank", lambda: rank)
    monkeypatch.setattr(distributed, "world_size", lambda: world)
    import sentiment.data.batching as batching

    monkeypatch.setattr(batching, "rank", lambda: rank)
    monkeypatch.setattr(batching, "world_size", lambda: world)


def _batches(shuffle: bool = True) -> SequenceBatches:
    rng = np.random.default_rng(0)
    sequences = [list(range(1, int(n) + 1)) for n in rng.integers(5, 300, size=333)]
    return SequenceBatches(sequences, [i % 2 for i in range(333)], 16, shuffle=shuffle, seed=3)


def _rows(batches) -> list[tuple]:
    return [tuple(map(tuple, b.inputs.tolist())) for b in batches]


def test_buckets_are_sharded_disjoint_equal_and_deterministic(monkeypatch):
    whole = _batches()
    whole.set_epoch(2)
    everything = _rows(whole)
    shards = []
    for rank in (0, 1, 2):
        _as_rank(monkeypatch, rank, 3)
        batches = _batches()
        batches.set_epoch(2)
        shards.append(_rows(batches))
        assert len(shards[-1]) == len(batches) == len(everything) // 3
        assert _rows(batches) == shards[-1]  # the same epoch gives the same shard
        assert batches.padding_share() <= 0.05
    seen = [row for shard in shards for row in shard]
    assert len(seen) == len(set(seen)) >= len(everything) - 2  # disjoint; at most 2 left out
    assert set(seen) <= set(everything)
    _as_rank(monkeypatch, 1, 3)
    batches = _batches()
    batches.set_epoch(3)
    assert _rows(batches) != shards[1]  # another epoch, another order
    evaluation = []
    for rank in (0, 1, 2):  # evaluation keeps every batch: the shards add up to the whole
        _as_rank(monkeypatch, rank, 3)
        evaluation += _rows(_batches(shuffle=False))
    monkeypatch.undo()
    assert sorted(evaluation) == sorted(_rows(_batches(shuffle=False)))


def test_streams_are_split_into_contiguous_parts(monkeypatch):
    stream = np.arange(10_000)
    parts = []
    for rank in (0, 1):
        _as_rank(monkeypatch, rank, 2)
        batches = StreamBatches(stream, 4, 10, "sequential", offset=False)
        first = [b.inputs for b in batches]
        parts.append(np.concatenate([b.reshape(-1) for b in first]))
        assert len(first) == len(batches)
        assert (first[1][:, 0] == first[0][:, -1] + 1).all()  # batches continue each other
    assert parts[0].max() < 5_000 <= parts[1].min()


SCRIPT = textwrap.dedent("""
    import hashlib, json, logging, sys
    from pathlib import Path
    from sentiment.runtime import distributed
    from sentiment.train import recipe as pipeline
    from sentiment.train import prepare
    from sentiment.train.loop import train

    data_dir, output, epochs, batch_size = sys.argv[1], Path(sys.argv[2]), int(sys.argv[3]), \\
        int(sys.argv[4])
    logging.basicConfig(level=logging.INFO)
    distributed.init_from_env("cpu")
    extra = json.loads(sys.argv[5]) if len(sys.argv) > 5 else {}
    config = pipeline.make_config("tiny", data=data_dir, output=str(output), epochs=epochs,
                                  batch_size=batch_size, progress=False, num_proc=1,
                                  baseline=False, device="cpu", **extra)
    with distributed.main_process_first():
        data = prepare.prepare_data(config)
        unlabelled = (pipeline.unlabelled_batches(config, data.vocab)
                      if config.train.virtual_adversarial else None)
    model, config, _ = prepare.build_task_model(config, data.vocab)
    train_batches = prepare.review_batches(config, data.ids["train"], data.train["label"], True, 0)
    valid_batches = prepare.review_batches(config, data.ids["valid"], data.valid["label"], False, 0)
    history = train(model, train_batches, valid_batches, config.train, output,
                    unlabelled=unlabelled)
    digest = hashlib.sha256(b"".join(t.detach().float().numpy().tobytes()
                                     for t in model.state_dict().values())).hexdigest()
    (output / f"rank{distributed.rank()}.json").write_text(json.dumps(
        {"digest": digest, "history": history, "world": distributed.world_size()}))
    distributed.cleanup()
""")


def _launch(tmp_path, synthetic_dir, output, epochs, batch_size, processes=2, **extra):
    script = tmp_path / "ddp_train.py"
    script.write_text(SCRIPT)
    command = (RUN if processes == 2 else [sys.executable]) + [
        str(script), str(synthetic_dir), str(output), str(epochs), str(batch_size),
        json.dumps(extra)]
    env = {**os.environ, "OMP_NUM_THREADS": "1"}
    result = subprocess.run(command, capture_output=True, text=True, timeout=600, env=env)
    assert result.returncode == 0, result.stderr[-3000:]
    return result


def test_two_processes_train_one_model(synthetic_dir, tmp_path):
    output = tmp_path / "ddp"
    _launch(tmp_path, synthetic_dir, output, 3, 16)
    ranks = [json.loads((output / f"rank{r}.json").read_text()) for r in (0, 1)]
    assert ranks[0]["world"] == 2 and ranks[0]["digest"] == ranks[1]["digest"]
    lines = (output / "metrics.jsonl").read_text().splitlines()
    assert [json.loads(line)["epoch"] for line in lines] == [1, 2, 3]  # one writer
    assert ranks[0]["history"] == ranks[1]["history"]  # reduced metrics: the same everywhere
    # the same global batch (2 x 16) in one process: the loss curve agrees within tolerance
    single = tmp_path / "single"
    _launch(tmp_path, synthetic_dir, single, 3, 32, processes=1)
    one = json.loads((single / "rank0.json").read_text())["history"]
    # (the batches differ: buckets of 16 against 32 reviews, so not step for step)
    for a, b in zip(ranks[0]["history"], one, strict=True):
        assert a["train_loss"] == pytest.approx(b["train_loss"], abs=0.06)
    assert ranks[0]["history"][-1]["valid_accuracy"] > 0.85 and one[-1]["valid_accuracy"] > 0.85
    # every validation review counted once: as many tokens as in one process
    assert ranks[0]["history"][0]["valid_tokens"] == one[0]["valid_tokens"]


def test_two_processes_with_both_adversaries_keep_one_model(synthetic_dir, tmp_path):
    """Each rank pushes its own batches (labelled and unlabelled); every extra backward pass
    goes through the all-reduce, so the ranks' weights stay identical."""
    output = tmp_path / "ddp-adversarial"
    _launch(tmp_path, synthetic_dir, output, 2, 16, adversarial=0.05,
            virtual_adversarial=0.05, unlabelled_limit=200)
    ranks = [json.loads((output / f"rank{r}.json").read_text()) for r in (0, 1)]
    assert ranks[0]["world"] == 2 and ranks[0]["digest"] == ranks[1]["digest"]
    assert ranks[0]["history"][-1]["train_virtual_loss"] > 0
    assert ranks[0]["history"] == ranks[1]["history"]  # the virtual loss reduced like the rest
    assert ranks[0]["history"][-1]["valid_accuracy"] > 0.8


def test_resume_under_two_processes_and_on_another_count(synthetic_dir, tmp_path):
    output = tmp_path / "resumed"
    _launch(tmp_path, synthetic_dir, output, 1, 16)
    second = _launch(tmp_path, synthetic_dir, output, 2, 16)
    assert "resuming after epoch 1" in second.stderr
    third = _launch(tmp_path, synthetic_dir, output, 3, 16, processes=1)  # 2 processes -> 1
    assert "resuming after epoch 2" in third.stderr
    lines = (output / "metrics.jsonl").read_text().splitlines()
    assert [json.loads(line)["epoch"] for line in lines] == [1, 2, 3]
    history = json.loads((output / "rank0.json").read_text())["history"]
    assert [r["epoch"] for r in history] == [3]


def test_one_process_is_unchanged():
    assert not distributed.is_distributed() and distributed.world_size() == 1
    assert distributed.is_main() and list(distributed.shard_indices(5)) == [0, 1, 2, 3, 4]
    assert distributed.all_reduce_sums({"a": 1}) == {"a": 1}
    assert distributed.broadcast("x") == "x"
