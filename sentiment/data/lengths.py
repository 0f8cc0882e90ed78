"""Length-sorted scoring batches, without torch: the PyTorch and the ONNX Runtime scorers cut
the same batches and put the scores back in input order the same way."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from concurrent.futures import ThreadPoolExecutor

import numpy as np

# An LSTM step's cost that does not grow with its rows, in rows: scoring r rows for T steps costs
# about T * (STEP_ROWS + r) (BENCHMARKS.md, "cutting a batch where it costs least"). A model's
# ``step_rows`` (this by default; None: the greedy cut of cut_batches) says how its batches are cut
STEP_ROWS = 1.0


def cut(sequence: Sequence, max_length: int | None, keep: str = "start") -> Sequence:
    """``sequence``'s first (``keep="start"``) or last (``"end"``) ``max_length`` items; all of
    it when ``max_length`` is None or it is no longer."""
    if max_length is None or len(sequence) <= max_length:
        return sequence
    return sequence[:max_length] if keep == "start" else sequence[len(sequence) - max_length:]


def length_order(sequences: Sequence[Sequence[int]]) -> tuple[list[int], np.ndarray]:
    """``(lengths, order)``: each sequence's length (at least 1, as padded) and the indices
    sorted by it (stable)."""
    lengths = [max(len(s), 1) for s in sequences]
    return lengths, np.argsort(lengths, kind="stable")


def cut_batches(order: np.ndarray, lengths: Sequence[int] | np.ndarray, batch_size: int,
                max_tokens: int | None = None) -> list[np.ndarray]:
    """``order`` (indices into ``lengths``) cut into consecutive batches of at most
    ``batch_size`` rows and, with ``max_tokens``, at most that many padded positions (the
    longest row times the rows); a longer sequence alone is a batch of its own."""
    if max_tokens is None:
        return [order[i : i + batch_size] for i in range(0, len(order), batch_size)]
    batches, start, longest = [], 0, 0
    for i, length in enumerate(np.asarray(lengths)[order]):
        rows = i - start
        longest_with = max(longest, int(length))
        if rows and (rows == batch_size or longest_with * (rows + 1) > max_tokens):
            batches.append(order[start:i])
            start, longest_with = i, int(length)
        longest = longest_with
    if start < len(order):
        batches.append(order[start:])
    return batches


def least_cost_batches(order: np.ndarray, lengths: Sequence[int] | np.ndarray, batch_size: int,
                       max_tokens: int | None = None, step_rows: float = STEP_ROWS
                       ) -> list[np.ndarray]:
    """``order`` (indices into ``lengths``, sorted by length) cut into the consecutive batches
    that cost least in all, where a batch of ``r`` rows padded to ``T`` steps costs
    ``T * (step_rows + r)``: each step of an RNN costs the same ``step_rows`` rows' worth
    whatever the rows (:data:`STEP_ROWS`). Within :func:`cut_batches`' limits (rows, padded
    tokens; a longer sequence alone). A few long texts among short ones, a served batch, get a
    batch of their own instead of padding the rest to their length; texts of like lengths stay
    together (predict's sorted batches are cut as before)."""
    ends = np.asarray(lengths)[order]  # ascending: a batch's last row is its longest
    count = len(ends)
    cost, start = np.zeros(count + 1), np.zeros(count + 1, dtype=np.int64)
    for stop in range(1, count + 1):
        longest = int(ends[stop - 1])
        rows = min(batch_size, stop)
        if max_tokens is not None:
            rows = max(1, min(rows, max_tokens // longest))
        first = np.arange(stop - rows, stop)  # where a batch ending at stop may start
        totals = cost[first] + longest * (step_rows + (stop - first))
        best = int(np.argmin(totals))  # ties: the longest batch
        cost[stop], start[stop] = totals[best], first[best]
    batches, stop = [], count
    while stop > 0:
        batches.append(order[start[stop]:stop])
        stop = int(start[stop])
    return batches[::-1]


def score_in_length_order(sequences: Sequence[Sequence[int]], classes: int, batch_size: int,
                          max_tokens: int | None,
                          score_batch: Callable[[np.ndarray, list[int]], np.ndarray],
                          workers: int = 1, step_rows: float | None = STEP_ROWS) -> np.ndarray:
    """Class probabilities of ``sequences`` scored in length-sorted batches, in input order:
    ``(N,)`` for two classes (P(second)), ``(N, C)`` otherwise. ``score_batch(indices,
    lengths)`` scores the sequences at ``indices`` (``lengths``: every sequence's, at least 1).
    ``workers`` > 1: that many batches are scored at once on threads (for a ``score_batch``
    that releases the GIL, such as ONNX Runtime's ``run``), each taking the next batch.
    ``step_rows``: the batches are cut where they cost least (:func:`least_cost_batches`), or
    greedily with None (:func:`cut_batches`)."""
    lengths, order = length_order(sequences)
    shape = (len(sequences),) if classes == 2 else (len(sequences), classes)
    scores = np.empty(shape, dtype=np.float64)
    batches = (cut_batches(order, lengths, batch_size, max_tokens) if step_rows is None
               else least_cost_batches(order, lengths, batch_size, max_tokens, step_rows))
    if workers > 1 and len(batches) > 1:
        with ThreadPoolExecutor(min(workers, len(batches)),
                                thread_name_prefix="sentiment-batch") as pool:
            for indices, batch_scores in zip(batches, pool.map(
                    lambda indices: score_batch(indices, lengths), batches)):
                scores[indices] = batch_scores
        return scores
    for indices in batches:
        scores[indices] = score_batch(indices, lengths)
    return scores
