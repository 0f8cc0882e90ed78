"""Length-bucketed batches of variable-length sequences, and the padding collate."""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from typing import Protocol

import numpy as np
import torch

from ..data.lengths import cut, cut_batches
from ..runtime.distributed import rank, shard_indices, world_size


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


class BatchSource(Protocol):
    """What the training loop needs of its training batches: one epoch per pass, reshuffled by
    ``set_epoch``, and the share of padded positions (None when nothing is padded)."""

    def __len__(self) -> int: ...

    def __iter__(self) -> Iterator[Batch]: ...

    def set_epoch(self, epoch: int) -> None: ...

    def padding_share(self) -> float | None: ...


def pad_batch(
    sequences: Sequence[Sequence[int]],
    pad_index: int = 0,
    max_length: int | None = None,
    targets: Sequence[float] | None = None,
    keep: str = "start",
) -> Batch:
    """Pad id sequences to the longest (after truncation to ``max_length``, keeping each one's
    start or end: :func:`cut`) in the batch.

    Empty sequences are given one pad token and length 1, so that every row has a valid state.
    """
    if max_length is not None:
        sequences = [cut(seq, max_length, keep) for seq in sequences]
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

    ``max_tokens`` (a token budget, as fairseq batches): a batch also ends before its padded size
    ``rows x longest`` would pass the budget, so long reviews come in smaller batches and the
    activations of one step are bounded. A single sequence longer than the budget is a batch of
    its own (truncate with ``max_length`` to bound it too).
    """

    def __init__(
        self,
        lengths: Sequence[int],
        batch_size: int,
        pool_size: int = 100,
        shuffle: bool = True,
        bucket: bool = True,
        seed: int = 0,
        max_tokens: int | None = None,
    ):
        if batch_size < 1:
            raise ValueError(f"batch_size must be >= 1, got {batch_size}")
        if max_tokens is not None and max_tokens < 1:
            raise ValueError(f"max_tokens must be >= 1, got {max_tokens}")
        self.lengths = np.maximum(np.asarray(lengths, dtype=np.int64), 1)
        self.max_tokens = max_tokens
        self.batch_size = batch_size
        self.pool_size = pool_size
        self.shuffle = shuffle
        self.bucket = bucket
        self.seed = seed
        self.epoch = 0

    def __len__(self) -> int:
        if self.max_tokens is None:
            return -(-len(self.lengths) // self.batch_size)
        return len(self.batches())  # this epoch's count; epochs differ by a batch or two

    def set_epoch(self, epoch: int) -> None:
        self.epoch = epoch

    def _cut(self, order: np.ndarray) -> list[np.ndarray]:
        return cut_batches(order, self.lengths, self.batch_size, self.max_tokens)

    def batches(self) -> list[np.ndarray]:
        """The batches of one epoch (deterministic given seed and epoch)."""
        rng = np.random.default_rng((self.seed, self.epoch))
        order = rng.permutation(len(self.lengths)) if self.shuffle else np.arange(len(self.lengths))
        pool = self.batch_size * self.pool_size
        pools = [order[i : i + pool] for i in range(0, len(order), pool)]
        if self.bucket:
            batches = [b for p in pools for b in self._cut(p[np.argsort(self.lengths[p],
                                                                           kind="stable")])]
        else:
            batches = self._cut(order)
        if self.shuffle:
            batches = [batches[i] for i in rng.permutation(len(batches))]
        return batches

    def __iter__(self) -> Iterator[np.ndarray]:
        yield from self.batches()

    def padding_share(self, max_length: int | None = None) -> float:
        """Share of padded positions over the batches of the current epoch."""
        lengths = self.lengths if max_length is None else np.minimum(self.lengths, max_length)
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
        max_tokens: int | None = None,
        equal_shards: bool | None = None,
        keep: str = "start",
    ):
        self.sequences = sequences
        self.keep = keep
        # under torchrun: the same number of batches on every rank (training), or all of them
        # (evaluation); by default, training when shuffled
        self.equal_shards = shuffle if equal_shards is None else equal_shards
        self.labels = None if labels is None else np.asarray(labels, dtype=np.float32)
        self.pad_index = pad_index
        self.max_length = max_length
        lengths = [len(s) for s in sequences]
        if max_length is not None:
            lengths = np.minimum(lengths, max_length)
        self.sampler = BucketSampler(lengths, batch_size, shuffle=shuffle, bucket=bucket,
                                     seed=seed, max_tokens=max_tokens)

    def __len__(self) -> int:
        return len(shard_indices(len(self.sampler), self.equal_shards))

    def set_epoch(self, epoch: int) -> None:
        self.sampler.set_epoch(epoch)

    def padding_share(self) -> float:
        return self.sampler.padding_share(self.max_length)

    def __iter__(self) -> Iterator[Batch]:
        """This process's batches: all of them, or under torchrun every ``world_size``-th
        batch of the epoch's (same, seeded) order from this rank's position."""
        batches = list(self.sampler)
        for position in shard_indices(len(batches), self.equal_shards):
            indices = batches[position]
            targets = None if self.labels is None else self.labels[indices]
            yield pad_batch(
                [self.sequences[i] for i in indices], self.pad_index, self.max_length, targets,
                self.keep,
            )


class StreamBatches:
    """d2l's two iterators over one long id stream: ``sequential`` (TBPTT) or ``random``.

    Sequential partitioning lays the stream out in ``batch_size`` rows and walks them
    ``num_steps`` at a time, so row ``b`` of batch ``i + 1`` continues row ``b`` of batch ``i``
    and the hidden state is carried over, detached (truncated backpropagation through time)::

        text  a b c d e f g h i j k l m n o p q r s t u v w x    (batch_size 2, num_steps 3)
        row 0 [a b c][d e f][g h i] ...    targets: the same, one symbol later
        row 1 [m n o][p q r][s t u] ...

    Random sampling takes windows at random positions and starts every batch from a zero state.

    Each epoch starts at a random offset in ``[0, num_steps)`` (as d2l does), seeded by
    ``(seed, epoch)``; ``offset=False`` starts at 0 (validation).
    """

    def __init__(self, corpus: np.ndarray, batch_size: int, num_steps: int,
                 sampling: str = "sequential", seed: int = 0, offset: bool = True):
        if sampling not in ("sequential", "random"):
            raise ValueError(f"sampling must be 'sequential' or 'random', got {sampling!r}")
        if batch_size < 1 or num_steps < 1:
            raise ValueError("batch_size and num_steps must be >= 1")
        needed = batch_size * num_steps + num_steps + 1 if offset else batch_size * num_steps + 1
        if len(corpus) < needed:
            raise ValueError(
                f"text too short: {len(corpus)} symbols, but one batch of {batch_size} x "
                f"{num_steps} needs at least {needed}; lower --batch-size or --num-steps"
            )
        self.corpus = torch.as_tensor(np.asarray(corpus), dtype=torch.long)
        self.batch_size, self.num_steps, self.sampling = batch_size, num_steps, sampling
        self.seed, self.epoch, self.offset = seed, 0, offset

    def set_epoch(self, epoch: int) -> None:
        self.epoch = epoch

    def padding_share(self) -> None:
        return None  # windows of a stream are never padded

    def _start(self, rng: np.random.Generator) -> int:
        return int(rng.integers(0, self.num_steps)) if self.offset else 0

    def _part(self) -> torch.Tensor:
        """This process's contiguous share of the stream (all of it in one process), so that
        sequential batches still continue each other on every rank."""
        world = world_size()
        if world == 1:
            return self.corpus
        part = len(self.corpus) // world
        return self.corpus[rank() * part : (rank() + 1) * part]

    def __len__(self) -> int:
        usable = len(self._part()) - (self.num_steps if self.offset else 0) - 1
        if self.sampling == "sequential":
            return (usable // self.batch_size) // self.num_steps
        return (usable // self.num_steps) // self.batch_size

    def __iter__(self) -> Iterator[Batch]:
        rng = np.random.default_rng((self.seed, self.epoch))
        corpus, steps, size = self._part()[self._start(rng):], self.num_steps, self.batch_size
        if self.sampling == "sequential":
            num_tokens = ((len(corpus) - 1) // size) * size
            inputs = corpus[:num_tokens].view(size, -1)  # (B, L)
            targets = corpus[1 : num_tokens + 1].view(size, -1)
            for i, start in enumerate(range(0, (inputs.size(1) // steps) * steps, steps)):
                yield Batch(inputs[:, start : start + steps], None,
                            targets[:, start : start + steps], size * steps, continues=i > 0)
        else:
            starts = np.arange(0, ((len(corpus) - 1) // steps) * steps, steps)
            rng.shuffle(starts)
            for i in range(0, (len(starts) // size) * size, size):
                chosen = torch.as_tensor(starts[i : i + size]).unsqueeze(1) + torch.arange(steps)
                yield Batch(corpus[chosen], None, corpus[chosen + 1], size * steps)
