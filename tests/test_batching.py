from __future__ import annotations

import numpy as np
import pytest

from sentiment.config import ReviewData
from sentiment.data.batching import BucketSampler, SequenceBatches, pad_batch
from sentiment.data.lengths import cut


def test_pad_batch_lengths_and_truncation():
    batch = pad_batch([[5, 6, 7], [8], []], pad_index=0, max_length=2, targets=[1, 0, 1])
    assert batch.inputs.tolist() == [[5, 6], [8, 0], [0, 0]]
    assert batch.lengths.tolist() == [2, 1, 1]
    assert batch.targets.tolist() == [1.0, 0.0, 1.0]
    assert batch.num_tokens == 4


def test_truncation_keeps_a_long_sequence_start_or_end():
    assert cut([1, 2, 3, 4, 5], 3) == [1, 2, 3]
    assert cut([1, 2, 3, 4, 5], 3, "end") == [3, 4, 5]
    assert cut([1, 2], 3, "end") == [1, 2] and cut([1, 2, 3], None, "end") == [1, 2, 3]
    batch = pad_batch([[5, 6, 7], [8], []], pad_index=0, max_length=2, keep="end")
    assert batch.inputs.tolist() == [[6, 7], [8, 0], [0, 0]]
    batches = SequenceBatches([list(range(1, 301))] * 3, [1, 0, 1], batch_size=8,
                              max_length=100, shuffle=False, keep="end")  # as training reads
    assert [b.inputs[0, [0, -1]].tolist() for b in batches] == [[201, 300]]
    with pytest.raises(ValueError, match="keep must be one of"):
        ReviewData(keep="middle")


def test_bucket_sampler_covers_every_index_once_per_epoch():
    lengths = np.random.default_rng(0).integers(10, 1000, size=1000)
    sampler = BucketSampler(lengths, batch_size=32, pool_size=10, seed=1)
    first = sampler.batches()
    assert len(first) == len(sampler) == 32
    assert sorted(np.concatenate(first).tolist()) == list(range(1000))
    assert [b.tolist() for b in sampler.batches()] == [b.tolist() for b in first]
    sampler.set_epoch(1)
    assert [b.tolist() for b in sampler.batches()] != [b.tolist() for b in first]


def test_bucketing_cuts_padding():
    lengths = np.random.default_rng(0).lognormal(5.3, 0.7, size=5000).astype(int) + 1
    bucketed = BucketSampler(lengths, 64, seed=0).padding_share()
    plain = BucketSampler(lengths, 64, bucket=False, seed=0).padding_share()
    assert bucketed < 0.05 < 0.3 < plain


def test_unshuffled_keeps_every_example_and_rejects_bad_size():
    batches = SequenceBatches([[1] * n for n in (3, 1, 2)], [0, 1, 0], batch_size=2, shuffle=False)
    seen = [batch.lengths.tolist() for batch in batches]
    assert sorted(sum(seen, [])) == [1, 2, 3]
    with pytest.raises(ValueError):
        BucketSampler([1, 2], batch_size=0)


def test_token_budget_bounds_every_batch_and_keeps_every_index():
    lengths = np.random.default_rng(0).lognormal(5.3, 0.9, size=3000).astype(int) + 1
    lengths[:3] = [5000, 2000, 1]  # one longer than the budget: a batch of its own
    sampler = BucketSampler(lengths, 64, seed=0, max_tokens=4096)
    batches = sampler.batches()
    assert len(batches) == len(sampler)
    assert sorted(np.concatenate(batches).tolist()) == list(range(3000))
    for batch in batches:
        assert len(batch) <= 64
        assert lengths[batch].max() * len(batch) <= 4096 or len(batch) == 1
    assert [b.tolist() for b in batches if 0 in b] == [[0]]
    # short reviews still fill whole batches; long ones come in fewer rows
    sizes = {int(lengths[b].max()): len(b) for b in batches}
    assert max(sizes.values()) == 64 and sizes[max(sizes)] == 1
    assert sampler.padding_share() < 0.05
    unbounded = BucketSampler(lengths, 64, seed=0)
    assert len(unbounded) == 47 and len(sampler) > len(unbounded)
    with pytest.raises(ValueError, match="max_tokens"):
        BucketSampler(lengths, 64, max_tokens=0)


def test_token_budget_counts_truncated_lengths():
    batches = SequenceBatches([[1] * 300] * 10, None, batch_size=8, max_length=100,
                              max_tokens=400, shuffle=False)
    shapes = [tuple(batch.inputs.shape) for batch in batches]
    assert shapes == [(4, 100), (4, 100), (2, 100)]
