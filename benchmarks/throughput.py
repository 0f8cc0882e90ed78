"""``predict``'s batch throughput of several models on the same reviews, in turns, in one run.

    python -m benchmarks.throughput --models sentiment/models/imdb runs/shipped-2026-11-24 \
        --reviews 2000 --rounds 2

The first test reviews of the data, in file order; batches of 64; a warm-up call first. Models
take turns round by round, so a noisy machine hits each alike. Before every timed call the
tokenizer's chunk store (:func:`sentiment.text.tokenize.chunk_store`) is put back to what it holds
after tokenizing the first ``--store-reviews`` training reviews: 0 (the default) times a fresh
process's first call, 20000 a process that has scored that many other reviews; never the timed
reviews themselves, whose chunks would all be known from the round before.
``--explain-tokens N`` also times explaining the split's longest review as the server does (its
first N tokens, one torch thread).
"""

from __future__ import annotations

import argparse
import json
import time
from pathlib import Path

import pyarrow.parquet as pq

from sentiment import load_model, predict
from sentiment.text import tokenize


def main(argv: list[str] | None = None) -> dict:
    parser = argparse.ArgumentParser(description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--data", default="../shared/data/imdb")
    parser.add_argument("--models", nargs="+", required=True)
    parser.add_argument("--reviews", type=int, default=2_000)
    parser.add_argument("--rounds", type=int, default=2)
    parser.add_argument("--explain-tokens", type=int, default=None)
    parser.add_argument("--store-reviews", type=int, default=0)
    args = parser.parse_args(argv)
    texts = pq.read_table(Path(args.data) / "test.parquet", columns=["text"]).slice(
        0, args.reviews)["text"].to_pylist()
    models = {path: load_model(path) for path in args.models}
    for model in models.values():
        predict(texts[:64], model=model)
    stores = _chunk_stores(args.data, args.store_reviews, models.values())
    rates: dict[str, list[float]] = {path: [] for path in models}
    for _ in range(args.rounds):
        for path, model in models.items():
            for lowercase, chunks in stores.items():
                tokenize.chunk_store(lowercase).clear()
                tokenize.chunk_store(lowercase).update(chunks)
            start = time.perf_counter()
            predict(texts, model=model, batch_size=64)
            rates[path].append(len(texts) / (time.perf_counter() - start))
    result = {"reviews": len(texts), "store_reviews": args.store_reviews,
              "reviews_per_s": rates}
    if args.explain_tokens:
        import torch

        every = pq.read_table(Path(args.data) / "test.parquet", columns=["text"])["text"]
        longest = max(every.to_pylist(), key=len)
        threads = torch.get_num_threads()
        torch.set_num_threads(1)
        try:
            for path, model in models.items():
                seconds = []
                for _ in range(args.rounds):
                    start = time.perf_counter()
                    explained = model.explain(longest, max_tokens=args.explain_tokens)
                    seconds.append(time.perf_counter() - start)
                result.setdefault("explain_longest_s", {})[path] = seconds
                result["explain_longest_tokens"] = explained["total_tokens"]
        finally:
            torch.set_num_threads(threads)
    print(json.dumps(result))
    return result


def _chunk_stores(data: str, reviews: int, models) -> dict[bool, dict]:
    """What each chunk store holds after the models' tokenizers read the first ``reviews``
    training reviews."""
    for lowercase in (True, False):
        tokenize.chunk_store(lowercase).clear()
    if reviews:
        texts = pq.read_table(Path(data) / "train.parquet", columns=["text"]).slice(
            0, reviews)["text"].to_pylist()
        # a cascade's stages that tokenize (an n-gram stage reads its own pattern, no store)
        readers = [stage for model in models for stage in getattr(model, "stages", [model])
                   if hasattr(stage, "tokens")]
        for model in readers:
            for start in range(0, len(texts), 2_000):
                model.tokens(texts[start:start + 2_000])
    return {lowercase: dict(tokenize.chunk_store(lowercase)) for lowercase in (True, False)}


if __name__ == "__main__":
    main()
