"""Batch scoring of a large file: reviews/s and whether memory grows with the file.

    python -m benchmarks.score_file --data ../shared/data/imdb --rows 1000000

Builds ``runs/bench/reviews-<rows>.parquet`` (row ids and the IMDB texts, train + test +
unlabelled, repeated in order until ``--rows``), then runs ``sentiment predict --input`` on it in
a child process under :mod:`benchmarks.memory`'s sampler and prints rows/s, peak RSS and the RSS
at each tenth of the run (flat when memory does not grow with the file). ``--rows`` several
sizes compare growth across file sizes in one run.
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

import pyarrow as pa
import pyarrow.parquet as pq

from benchmarks.memory import measure


def build_file(data: Path, rows: int, path: Path) -> Path:
    """A Parquet file of ``rows`` reviews (``id``, ``text``), written in bounded chunks."""
    if path.exists() and pq.ParquetFile(path).metadata.num_rows == rows:
        return path
    texts = []
    for name in ("train", "test", "unsupervised"):
        texts += pq.read_table(data / f"{name}.parquet", columns=["text"])["text"].to_pylist()
    path.parent.mkdir(parents=True, exist_ok=True)
    schema = pa.schema([("id", pa.int64()), ("text", pa.string())])
    with pq.ParquetWriter(path, schema) as writer:
        for start in range(0, rows, 50_000):
            ids = list(range(start, min(start + 50_000, rows)))
            writer.write_table(pa.table({"id": ids, "text": [texts[i % len(texts)] for i in ids]},
                                        schema=schema))
    return path


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--data", default="../shared/data/imdb")
    parser.add_argument("--rows", type=int, nargs="+", default=[1_000_000])
    parser.add_argument("--model", default=None, help="default: the shipped model")
    parser.add_argument("--workers", nargs="+", default=[None],
                        help="scoring workers; several values run each in turn for every size "
                             "(1 2 1 2 alternates two settings; default: the command's own)")
    parser.add_argument("--output", default=None, help="write the results here (JSON)")
    args = parser.parse_args()
    results = []
    for rows, workers in ((rows, workers) for rows in args.rows for workers in args.workers):
        given = build_file(Path(args.data), rows, Path(f"runs/bench/reviews-{rows}.parquet"))
        command = [sys.executable, "-m", "sentiment", "predict", "--input", str(given),
                   "--output", f"runs/bench/scored-{rows}.parquet", "--no-progress"]
        if args.model:
            command += ["--model", args.model]
        if workers:
            command += ["--workers", workers]
        result = measure(command, interval=1.0)
        result.pop("timeline")
        result["rows"], result["workers"] = rows, workers
        result["rows_per_s"] = rows / result["seconds"]
        results.append(result)
        print(json.dumps(result))
    if args.output:
        Path(args.output).write_text(json.dumps(results, indent=2))


if __name__ == "__main__":
    main()
