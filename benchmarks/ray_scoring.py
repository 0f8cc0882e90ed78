"""Scoring one Parquet file with Ray Data on this machine against ``sentiment predict --input``:
rows/s of each, as a ratio (a local Ray instance, not a cluster).

    python -m benchmarks.ray_scoring --rows 4000 --actors 1 2
    python -m benchmarks.ray_scoring --input runs/bench/reviews-1000000.parquet --model imdb-ngram

The file is the first ``--rows`` IMDB test reviews, or ``--input`` (a Parquet file with a
``text`` column, such as the million-row file :mod:`benchmarks.score_file` builds), whole.
``score_file`` is timed as the command runs it; Ray is timed from ``read_parquet`` to the
written output, with ``ray.init`` and the actors' model loading reported apart (a cluster pays
them once per job). Each actor has ``cores / actors`` torch threads; Ray is given one CPU more
than the machine has, which its reading and writing tasks take (with every CPU held by the
actors, the read tasks waited forever).
"""

from __future__ import annotations

import argparse
import json
import os
import tempfile
import time
from pathlib import Path

import pyarrow.parquet as pq

from sentiment.inference.files import BatchScorer, score_file
from sentiment.runtime.precision import cpu_model


def main(argv: list[str] | None = None) -> dict:
    parser = argparse.ArgumentParser(description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--data", default="../shared/data/imdb")
    parser.add_argument("--model", default=None)
    parser.add_argument("--rows", type=int, default=4_000)
    parser.add_argument("--actors", type=int, nargs="+", default=[1, 2])
    parser.add_argument("--batch-rows", type=int, default=1_024)
    parser.add_argument("--input", default=None, help="score this Parquet file instead")
    args = parser.parse_args(argv)
    import ray

    cores = len(os.sched_getaffinity(0))
    result: dict = {"rows": args.rows, "cpu": cpu_model(), "cores": cores, "ray": ray.__version__}
    with tempfile.TemporaryDirectory() as tmp:
        if args.input:
            source = Path(args.input)
            args.rows = result["rows"] = pq.ParquetFile(source).metadata.num_rows
            result["input"] = str(source)
        else:
            source = Path(tmp) / "in"
            source.mkdir()
            table = pq.read_table(Path(args.data) / "test.parquet").slice(0, args.rows)
            pq.write_table(table, source / "part-0.parquet")
        summary = score_file(source if args.input else source / "part-0.parquet",
                             Path(tmp) / "scored.parquet", model=args.model, progress=False)
        result["score_file_rows_per_s"] = summary["rows_per_s"]
        start = time.perf_counter()
        ray.init(num_cpus=cores + 1, include_dashboard=False, log_to_driver=False,
                 configure_logging=False)
        result["ray_init_s"] = time.perf_counter() - start
        try:
            for actors in args.actors:
                output = Path(tmp) / f"ray-{actors}"
                start = time.perf_counter()
                ray.data.read_parquet(str(source)).map_batches(
                    BatchScorer, fn_constructor_kwargs={"model": args.model,
                                                        "threads": max(1, cores // actors)},
                    batch_format="pyarrow", batch_size=args.batch_rows,
                    compute=ray.data.ActorPoolStrategy(size=actors),
                    num_cpus=1).write_parquet(str(output))
                seconds = time.perf_counter() - start
                rows = pq.read_table(output).num_rows
                assert rows == args.rows, f"Ray wrote {rows} rows of {args.rows}"
                result[f"ray_{actors}_actors_rows_per_s"] = rows / seconds
                result[f"ray_{actors}_actors_over_score_file"] = (
                    rows / seconds / result["score_file_rows_per_s"])
        finally:
            ray.shutdown()
    print(json.dumps(result, indent=2))
    return result


if __name__ == "__main__":
    main()
