r"""Copy a trained model with half-precision weights (e.g. to ship it inside the package), and
write its card.json from its evaluation report.

    python scripts/export_model.py runs/sentiment sentiment/models/imdb \
        --data-source stanfordnlp/imdb
    sentiment evaluate --model sentiment/models/imdb --data ../shared/data/imdb \
        --output runs/shipped-report
    python scripts/export_model.py --card-only sentiment/models/imdb \
        --report runs/shipped-report/report.json --provenance benchmarks/provenance/imdb.json
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path

from sentiment.kinds.checkpoint import export_model
from sentiment.report.card import write_card


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("source", nargs="?", help="a saved model folder")
    parser.add_argument("target", help="the folder to write")
    parser.add_argument("--dtype", default="float16", choices=["float32", "float16", "bfloat16"],
                        help="(default: %(default)s)")
    parser.add_argument("--data-source", default=None,
                        help="replace the data source recorded in the config (default: keep)")
    parser.add_argument("--card-only", action="store_true",
                        help="write only the card of the model already in target")
    parser.add_argument("--report", default=None,
                        help="report.json of the exported model on the test split: its card")
    parser.add_argument("--provenance", default=None,
                        help="JSON with what no report holds: weights, data, commands, "
                             "selected_on, test_reads (every read of the test split)")
    args = parser.parse_args()
    if (args.report is None) != (args.provenance is None):
        parser.error("--report and --provenance go together")
    if args.card_only:
        if args.report is None:
            parser.error("--card-only needs --report and --provenance")
        path = Path(args.target)
    else:
        if args.source is None:
            parser.error("give the source model folder (or --card-only)")
        path = export_model(args.source, args.target, args.dtype, args.data_source)
    if args.report is not None:
        write_card(path, args.report, args.provenance)
    print(json.dumps({"written": str(path),
                      "bytes": sum(f.stat().st_size for f in path.rglob("*") if f.is_file())}))


if __name__ == "__main__":
    main()
