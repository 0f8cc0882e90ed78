"""How a server's dynamic batches should be cut: padding against sequential steps.

    python -m benchmarks.score_batches --data ../shared/data/imdb --group 32 \
        --budgets 4096 8192 16384

A served batch is whatever requests arrived together: reviews of random lengths. Scored as one
padded batch, a few long reviews pad all the short ones (IMDB's lengths are heavy-tailed).
This times, on the same reviews in the same process: random groups of ``--group`` scored as one
batch each (how the server scored them), the same groups cut by a padded-token budget
(``score_ids(max_tokens=...)``), and all reviews sorted together in batches of 64 (``predict``
on a list: the ceiling a server cannot reach, since it cannot wait for all of them). Tokenizing
is left out (the ids are computed once): it is the same in every variant.
"""

from __future__ import annotations

import argparse
import json
import time
from pathlib import Path

import numpy as np
import pyarrow.parquet as pq


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--data", default="../shared/data/imdb")
    parser.add_argument("--model", default=None, help="default: the shipped model")
    parser.add_argument("--reviews", type=int, default=640)
    parser.add_argument("--group", type=int, default=32, help="texts in a served batch")
    parser.add_argument("--budgets", type=int, nargs="+", default=[4096, 8192, 16384])
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--output", default=None)
    args = parser.parse_args()
    from sentiment import load_model
    from sentiment.data.batching import cut_batches
    from sentiment.kinds.lstm import score_ids

    model = load_model(args.model)
    texts = pq.read_table(Path(args.data) / "test.parquet", columns=["text"]).slice(
        0, args.reviews)["text"].to_pylist()
    ids = model.encode(texts)
    lengths = [max(len(x), 1) for x in ids]
    groups = np.array_split(np.random.default_rng(0).permutation(len(ids)),
                            max(1, len(ids) // args.group))
    variants = {"one batch per group": (True, None)}
    variants.update({f"groups, budget {b}": (True, b) for b in args.budgets})
    variants["all sorted, batches of 64"] = (False, None)

    def padded(grouped: bool, budget: int | None) -> int:
        parts = groups if grouped else [np.arange(len(ids))]
        total = 0
        for part in parts:
            order = part[np.argsort([lengths[i] for i in part], kind="stable")]
            for batch in cut_batches(order, lengths, 64 if not grouped else len(part), budget):
                total += len(batch) * max(lengths[i] for i in batch)
        return total

    def run(grouped: bool, budget: int | None) -> float:
        start = time.perf_counter()
        if grouped:
            for part in groups:
                score_ids(model.model, [ids[i] for i in part], len(part), max_tokens=budget)
        else:
            score_ids(model.model, ids, 64)
        return time.perf_counter() - start

    score_ids(model.model, ids[:64], 64)  # warm-up
    seconds = {name: [] for name in variants}
    for _ in range(args.repeats):  # interleaved, so drift on a shared machine hits all alike
        for name, (grouped, budget) in variants.items():
            seconds[name].append(run(grouped, budget))
    real = sum(lengths)
    rows = []
    for name, (grouped, budget) in variants.items():
        best = min(seconds[name])
        rows.append({"variant": name, "reviews_per_s": len(ids) / best,
                     "tokens_per_s": real / best, "padded_tokens": padded(grouped, budget),
                     "real_tokens": real, "seconds": seconds[name]})
    base = rows[0]["reviews_per_s"]
    print(f"| variant ({len(ids)} reviews, groups of {args.group}) | reviews/s | x one batch | "
          "padded / real tokens |")
    print("| --- | --- | --- | --- |")
    for row in rows:
        print(f"| {row['variant']} | {row['reviews_per_s']:.1f} | "
              f"{row['reviews_per_s'] / base:.2f} | {row['padded_tokens'] / real:.2f} |")
    if args.output:
        Path(args.output).write_text(json.dumps(rows, indent=2))


if __name__ == "__main__":
    main()
