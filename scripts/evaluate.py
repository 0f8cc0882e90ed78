"""Write the evaluation report of a saved sentiment model (report.json, report.md, plots).

    python scripts/evaluate.py --model runs/sentiment --data ../shared/data/imdb
"""

from __future__ import annotations

import argparse
import json

from sentiment.cli import setup_logging
from sentiment.pipeline import evaluate_saved_model
from sentiment.predict import DEFAULT_MODEL_DIR


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--model", default=DEFAULT_MODEL_DIR,
                        help="saved model folder (default: %(default)s)")
    parser.add_argument("--data", default=None,
                        help="hub id or local folder (default: the model's own data source, "
                             "split exactly as at training time)")
    parser.add_argument("--split", default="test", choices=["test", "valid"],
                        help="(default: %(default)s)")
    parser.add_argument("--output", default=None, help="report folder (default: the model folder)")
    parser.add_argument("--batch-size", type=int, default=64, help="(default: %(default)s)")
    parser.add_argument("--device", default="auto", help="auto, cpu or cuda (default: %(default)s)")
    parser.add_argument("--baseline", action=argparse.BooleanOptionalAction, default=True,
                        help="fit the linear baselines alongside (default: %(default)s)")
    parser.add_argument("--limit", type=int, default=None,
                        help="score only this many reviews (default: all)")
    parser.add_argument("--mixed-precision", action=argparse.BooleanOptionalAction, default=True,
                        help="bfloat16 on CPUs with native bf16, float16 on CUDA "
                             "(default: %(default)s)")
    args = parser.parse_args()
    setup_logging()
    report = evaluate_saved_model(args.model, args.data, args.split, args.output, args.batch_size,
                                  args.baseline, args.device, args.limit,
                                  mixed_precision=args.mixed_precision)
    print(json.dumps({"accuracy": report["accuracy"], "n": report["n"],
                      "baseline_accuracy": report.get("baseline", {}).get("accuracy"),
                      "report": str(args.output or args.model)}, indent=2))


if __name__ == "__main__":
    main()
