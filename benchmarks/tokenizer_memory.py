"""Does tokenizing a long stream of text grow the process? spaCy's vocabulary keeps every new
string; :data:`sentiment.text.tokenize.MAX_STRINGS` bounds it by renewing the pipeline.

    python -m benchmarks.tokenizer_memory --data ../shared/data/imdb --max-strings 200000
    python -m benchmarks.tokenizer_memory --data ../shared/data/imdb --max-strings 0   # never renew

Reads IMDB's 100,000 texts (train, test, unsupervised), tokenizes them in chunks of 10,000 as
file scoring does, and prints the process's RSS and spaCy's string count after each chunk.
"""

from __future__ import annotations

import argparse
import json
import os
from pathlib import Path

import pyarrow.parquet as pq


def rss_mb() -> float:
    pages = int(Path("/proc/self/statm").read_text().split()[1])
    return pages * os.sysconf("SC_PAGE_SIZE") / 2**20


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--data", default="../shared/data/imdb")
    parser.add_argument("--max-strings", type=int, default=None,
                        help="override MAX_STRINGS (0: never renew)")
    parser.add_argument("--chunk", type=int, default=10_000)
    parser.add_argument("--output", default=None)
    args = parser.parse_args()
    from sentiment.text import tokenize

    if args.max_strings is not None:
        tokenize.MAX_STRINGS = args.max_strings or float("inf")
    texts = []
    for split in ("train", "test", "unsupervised"):
        texts += pq.read_table(Path(args.data) / f"{split}.parquet",
                               columns=["text"])["text"].to_pylist()
    rows = [{"texts": 0, "rss_mb": rss_mb(), "strings": 0}]
    tokenizer = tokenize.Tokenizer()
    for start in range(0, len(texts), args.chunk):
        tokenizer.pipe(texts[start:start + args.chunk])
        rows.append({"texts": min(start + args.chunk, len(texts)), "rss_mb": rss_mb(),
                     "strings": len(tokenize._english().vocab.strings)})
    print(f"max_strings {tokenize.MAX_STRINGS}")
    print("| texts | RSS MB | spaCy strings |\n| --- | --- | --- |")
    for row in rows:
        print(f"| {row['texts']:,} | {row['rss_mb']:.0f} | {row['strings']:,} |")
    if args.output:
        Path(args.output).write_text(json.dumps({"max_strings": str(tokenize.MAX_STRINGS),
                                                 "rows": rows}, indent=2))


if __name__ == "__main__":
    main()
