"""Length-bucketed batches of variable-length sequences, and the padding collate."""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from dataclasses import dataclass

import numpy as np
import torch


@dataclass
class Batch:
    """Padded inputs ``(B, T)``, true lengths ``(B,)`` and targets, all on one device."""

    inputs: torch.Tensor
    lengths: torch.Tensor | None
    targets: torch.Tensor | None = None
    num_tokens: int = 0
    # For stateful language-model batches: whether the hidden state continues from the last one.
    continues: bool = False

    def to(self, device: torch.device | str) -> Batch:
        move = lambda t: None if t is None else t.to(device, non_blocking=True)  # noqa: E731
        return Batch(
            move(self.inputs), move(self.lengths), move(self.targets), self.num_tokens,
            self.continues,
        )


def pad_batch(
    sequences: Sequence[Sequence[int]],
    pad_index: int = 0,
    max_length: int | None = None,
    targets: Sequence[float] | None = None,
) -> Batch:
    """Pad id sequences to the longest (after truncation to ``max_length``) in the batch.

    Empty sequences are given one pad token and length 1, so that every row has a valid state.
    """
    if max_length is not None:
        sequences = [seq[:max_length] for seq in sequences]
    lengths = [max(len(seq), 1) for seq in sequences]
    inputs = torch.full((len(sequences), max(lengths)), pad_index, dtype=torch.long)
    for row, seq in enumerate(sequences):
        if len(seq):
            inputs[row, : len(seq)] = torch.as_tensor(seq, dtype=torch.long)
    target_tensor = None if targets is None else torch.as_tensor(targets, dtype=torch.float32)
    return Batch(
        inputs, torch.as_tensor(lengths, dtype=torch.long), target_tensor, int(sum(lengths))
    )


class BucketSampler:
    """Batches of indices with similar lengths, in a new random order every epoch.

    Indices are shuffled, cut into pools of ``pool_size`` batches, sorted by length inside each
    pool and cut into batches; then the order of all batches is shuffled. With ``bucket=False``
    batches are plain random (the reference the benchmark compares against).
    """

    def __init__(
        self,
        lengths: Sequence[int],
        batch_size: int,
        pool_size: int = 100,
        shuffle: bool = True,
        bucket: bool = True,
        seed: int = 0,
    ):
        if batch_size < 1:
            raise ValueError(f"batch_size must be >= 1, got {batch_size}")
        self.lengths = np.asarray(lengths)
        self.batch_size = batch_size
        self.pool_size = pool_size
        self.shuffle = shuffle
        self.bucket = bucket
        self.seed = seed
        self.epoch = 0

    def __len__(self) -> int:
        return -(-len(self.lengths) // self.batch_size)

    def set_epoch(self, epoch: int) -> None:
        self.epoch = epoch

    def batches(self) -> list[np.ndarray]:
        """The batches of one epoch (deterministic given seed and epoch)."""
        rng = np.random.default_rng((self.seed, self.epoch))
        order = rng.permutation(len(self.lengths)) if self.shuffle else np.arange(len(self.lengths))
        if self.bucket:
            pool = self.batch_size * self.pool_size
            pools = [order[i : i + pool] for i in range(0, len(order), pool)]
            order = np.concatenate(
                [p[np.argsort(self.lengths[p], kind="stable")] for p in pools]
            ) if pools else order
        batches = [order[i : i + self.batch_size] for i in range(0, len(order), self.batch_size)]
        if self.shuffle:
            batches = [batches[i] for i in rng.permutation(len(batches))]
        return batches

    def __iter__(self) -> Iterator[np.ndarray]:
        yield from self.batches()

    def padding_share(self, max_length: int | None = None) -> float:
        """Share of padded positions over the batches of the current epoch."""
        lengths = self.lengths if max_length is None else np.minimum(self.lengths, max_length)
        lengths = np.maximum(lengths, 1)
        real = padded = 0
        for batch in self.batches():
            real += lengths[batch].sum()
            padded += lengths[batch].max() * len(batch)
        return float(1 - real / padded) if padded else 0.0


class SequenceBatches:
    """An iterable of padded :class:`Batch` es over id sequences and labels, one epoch a pass."""

    def __init__(
        self,
        sequences: Sequence[Sequence[int]],
        labels: Sequence[float] | None,
        batch_size: int,
        pad_index: int = 0,
        max_length: int | None = None,
        shuffle: bool = True,
        bucket: bool = True,
        seed: int = 0,
    ):
        self.sequences = sequences
        self.labels = None if labels is None else np.asarray(labels, dtype=np.float32)
        self.pad_index = pad_index
        self.max_length = max_length
        self.sampler = BucketSampler(
            [len(s) for s in sequences], batch_size, shuffle=shuffle, bucket=bucket, seed=seed
        )

    def __len__(self) -> int:
        return len(self.sampler)

    def set_epoch(self, epoch: int) -> None:
        self.sampler.set_epoch(epoch)

    def padding_share(self) -> float:
        return self.sampler.padding_share(self.max_length)

    def __iter__(self) -> Iterator[Batch]:
        for indices in self.sampler:
            targets = None if self.labels is None else self.labels[indices]
            yield pad_batch(
                [self.sequences[i] for i in indices], self.pad_index, self.max_length, targets
            )
