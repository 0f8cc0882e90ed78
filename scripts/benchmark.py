"""Measure the package against its reference implementation, in one run; print a table and
write benchmarks/<machine>-<date>.json.

    python scripts/benchmark.py --data ../shared/data/imdb \
        --text ../shared/data/text/timemachine.txt --quick
"""

from __future__ import annotations

import argparse
import json

from sentiment.benchmark import BenchmarkConfig, format_table, run_benchmark
from sentiment.cli import add_dataclass_options, dataclass_values


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    add_dataclass_options(parser, BenchmarkConfig, BenchmarkConfig())
    args = parser.parse_args()
    results = run_benchmark(BenchmarkConfig(**dataclass_values(args, BenchmarkConfig)))
    print(format_table(results))
    print(json.dumps({"written": results["path"], **results["versions"]}))


if __name__ == "__main__":
    main()
