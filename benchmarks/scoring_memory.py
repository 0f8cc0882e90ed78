"""Peak memory and time of scoring the longest reviews, by batch token budget.

    python -m benchmarks.scoring_memory --data ../shared/data/imdb --reviews 640 \\
        --budgets none 16384 65536

``score_ids`` sorts texts by length and cuts batches of ``--batch-size`` rows, and with
``max_tokens`` also before a batch's padded size passes the budget. Without a budget, 64 of
IMDB's longest reviews (~2,500 tokens) make one batch of ~160,000 tokens, whose LSTM input
projections alone hold hundreds of MB. Each budget runs in a fresh process (the kernel's
high-water mark, ``ru_maxrss``, cannot be reset), scoring the ``--reviews`` longest test reviews
(``--sample first``: the first ones in file order, IMDB's length distribution; tokenized once,
before the mark is read) ``--repeats`` times; it prints the peak's growth over
the process's RSS before scoring, the best time, and the largest difference from the unbudgeted
scores (the budget changes the batching, never a score beyond rounding).
"""

from __future__ import annotations

import argparse
import json
import resource
import subprocess
import sys
import time

import numpy as np


def measure(args, budget: int | None) -> dict:
    import psutil
    import pyarrow.parquet as pq

    from sentiment import load_model
    from sentiment.kinds.lstm import score_ids

    model = load_model(args.model, "cpu")
    texts = pq.read_table(f"{args.data}/test.parquet", columns=["text"])["text"].to_pylist()
    texts = sorted(texts, key=len)[-args.reviews:] if args.sample == "longest" \
        else texts[:args.reviews]
    ids = model.encode(texts)
    score_ids(model.model, ids[:8], args.batch_size)  # warm-up
    before = psutil.Process().memory_info().rss
    times, scores = [], None
    for _ in range(args.repeats):
        start = time.perf_counter()
        scores = score_ids(model.model, ids, args.batch_size, model.vocab.pad_index or 0,
                           max_tokens=budget)
        times.append(time.perf_counter() - start)
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024
    return {"budget": budget, "reviews": len(ids), "tokens": int(sum(map(len, ids))),
            "rss_before_mb": round(before / 2**20), "peak_mb": round(peak / 2**20),
            "growth_mb": round((peak - before) / 2**20),
            "best_seconds": round(min(times), 3),
            "reviews_per_s": round(len(ids) / min(times), 1), "scores": scores.tolist()}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--data", default="../shared/data/imdb")
    parser.add_argument("--model", default=None, help="default: the shipped model")
    parser.add_argument("--reviews", type=int, default=640)
    parser.add_argument("--sample", choices=["longest", "first"], default="longest")
    parser.add_argument("--batch-size", type=int, default=64)
    parser.add_argument("--budgets", nargs="+", default=["none", "16384", "65536"])
    parser.add_argument("--repeats", type=int, default=2)
    parser.add_argument("--one", default=None, help=argparse.SUPPRESS)  # a child's budget
    parser.add_argument("--output", default=None)
    args = parser.parse_args()
    if args.one is not None:
        print(json.dumps(measure(args, None if args.one == "none" else int(args.one))))
        return
    rows = []
    for budget in args.budgets:
        child = [sys.executable, "-m", "benchmarks.scoring_memory", "--one", budget,
                 "--data", args.data, "--reviews", str(args.reviews), "--sample", args.sample,
                 "--batch-size", str(args.batch_size), "--repeats", str(args.repeats)]
        if args.model:
            child += ["--model", args.model]
        out = subprocess.run(child, capture_output=True, text=True, check=True)
        rows.append(json.loads(out.stdout.splitlines()[-1]))
    reference = np.asarray(rows[0]["scores"])
    for row in rows:
        row["max_score_difference"] = float(np.abs(np.asarray(row.pop("scores")) - reference).max())
        print(json.dumps(row), flush=True)
    if args.output:
        with open(args.output, "w") as handle:
            json.dump(rows, handle, indent=2)


if __name__ == "__main__":
    main()
