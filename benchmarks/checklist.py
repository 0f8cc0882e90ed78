"""The CheckList suite (``sentiment.report.checklist``) on several models side by side: each test's
pass rate per model, and the failing examples in the JSON.

    python -m benchmarks.checklist --models sentiment/models/imdb runs/student4 \
        --output runs/checklist.json

A model is any folder ``predict`` takes. No data is read: the suite's texts are templates
written for this package.
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path

from sentiment import load_model
from sentiment.report.checklist import model_checklist


def main(argv: list[str] | None = None) -> dict:
    parser = argparse.ArgumentParser(description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--models", nargs="+", required=True)
    parser.add_argument("--output", default=None, help="also write the results here (JSON)")
    args = parser.parse_args(argv)
    results = {path: model_checklist(load_model(path)) for path in args.models}
    tests = next(iter(results.values()))
    width = max(map(len, tests))
    print(f"{'test':{width}}  " + "  ".join(args.models))
    for name, test in tests.items():
        print(f"{name:{width}}  " + "  ".join(f"{results[path][name]['pass_rate']:>{len(path)}.0%}"
                                            for path in args.models) + f"  ({test['kind']})")
    if args.output:
        Path(args.output).write_text(json.dumps(results, indent=1) + "\n", encoding="utf-8")
    return results


if __name__ == "__main__":
    main()
