"""Measure the package against its reference implementation, in one run; print a table and
write benchmarks/<machine>-<date>.json.

    python scripts/benchmark.py --data ../shared/data/imdb \
        --text ../shared/data/text/timemachine.txt --quick
"""

from __future__ import annotations

import argparse
import json
import sys
from dataclasses import asdict
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))  # the benchmarks/ package

from benchmarks.suite import BenchmarkConfig, format_table, run_benchmark  # noqa: E402
from sentiment.cli import add_dataclass_options  # noqa: E402


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    add_dataclass_options(parser, BenchmarkConfig())
    args = parser.parse_args()
    values = {name: getattr(args, name) for name in asdict(BenchmarkConfig())}
    results = run_benchmark(BenchmarkConfig(**values))
    print(format_table(results))
    print(json.dumps({"written": results["path"], **results["versions"]}))


if __name__ == "__main__":
    main()
