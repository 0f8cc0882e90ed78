"""Where a call's texts are cut into batches: the greedy cut against the least-cost one.

    python -m benchmarks.batch_cuts --data ../shared/data/imdb --models imdb imdb-onnx \\
        --sizes 12 64 --rounds 3

A call's texts are sorted by length and cut into batches. The greedy cut fills each batch up to
its rows and padded tokens (:func:`~sentiment.data.lengths.cut_batches`); the least-cost cut
(:func:`~sentiment.data.lengths.least_cost_batches`, the default) chooses the cuts that cost least
in all, an RNN step costing ``STEP_ROWS`` rows' worth whatever its rows. The texts of a call
arriving together (a served batch: a few long reviews among short ones) are where the two differ.
For each model and call size this scores the first ``--reviews`` test reviews in calls of that
many texts in file order (arrival order), both ways in alternating rounds, on ``--threads``
threads, and reports reviews/s and the largest difference between their probabilities.
"""

from __future__ import annotations

import argparse
import json
import time

import numpy as np
import pyarrow.parquet as pq
import torch

from sentiment.data import lengths
from sentiment.kinds.registry import load_model

CUTS = {"greedy": None, "least-cost": lengths.STEP_ROWS}


def scorers(model) -> list:
    """The models that cut batches inside ``model``: itself, or a composite's members."""
    if hasattr(model, "step_rows"):
        return [model]
    members = getattr(model, "stages", None) or getattr(model, "members", None) or []
    return [scorer for member in members for scorer in scorers(member)]


def timed(model, texts: list[str], size: int, step_rows: float | None) -> tuple[float, np.ndarray]:
    """Reviews/s scoring ``texts`` in calls of ``size``, cut as ``step_rows`` says, and the
    probabilities."""
    inside = scorers(model)
    saved = [scorer.step_rows for scorer in inside]
    for scorer in inside:
        scorer.step_rows = step_rows
    try:
        start = time.perf_counter()
        probabilities = np.concatenate([
            model.text_probabilities(texts[i : i + size], batch_size=64)
            for i in range(0, len(texts), size)])
        return len(texts) / (time.perf_counter() - start), probabilities
    finally:
        for scorer, rows in zip(inside, saved):
            scorer.step_rows = rows


def compare(model, texts: list[str], size: int, rounds: int) -> dict:
    """Per cut, reviews/s in each round (the cuts alternate), and max |ΔP| between them."""
    model.text_probabilities(texts[:size])  # warm
    rates: dict[str, list[float]] = {name: [] for name in CUTS}
    probabilities = {}
    for _ in range(rounds):
        for name, step_rows in CUTS.items():
            rate, probabilities[name] = timed(model, texts, size, step_rows)
            rates[name].append(round(rate, 1))
    difference = float(np.abs(probabilities["greedy"] - probabilities["least-cost"]).max())
    return {"reviews_per_s": rates, "max_abs_dp": difference,
            "speedup_median": round(float(np.median(rates["least-cost"])
                                          / np.median(rates["greedy"])), 3)}


def main(argv: list[str] | None = None) -> dict:
    parser = argparse.ArgumentParser(description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--data", default="../shared/data/imdb")
    parser.add_argument("--models", nargs="+", default=["imdb"])
    parser.add_argument("--sizes", type=int, nargs="+", default=[12, 64],
                        help="texts per call")
    parser.add_argument("--reviews", type=int, default=600)
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--threads", type=int, default=1,
                        help="torch threads (a served batch runs on one of two)")
    parser.add_argument("--output", default=None, help="also write the results here (JSON)")
    args = parser.parse_args(argv)
    torch.set_num_threads(args.threads)
    texts = pq.read_table(f"{args.data}/test.parquet", columns=["text"]).column(
        "text").to_pylist()[: args.reviews]
    results = {"step_rows": lengths.STEP_ROWS, "threads": args.threads, "models": {}}
    for name in args.models:
        model = load_model(name)
        results["models"][name] = {str(size): compare(model, texts, size, args.rounds)
                                   for size in args.sizes}
        print(json.dumps({name: results["models"][name]}))
    if args.output:
        with open(args.output, "w", encoding="utf-8") as file:
            json.dump(results, file, indent=2)
    return results


if __name__ == "__main__":
    main()
