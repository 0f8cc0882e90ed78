"""Copy a trained model with half-precision weights, e.g. to ship it inside the package.

    python scripts/export_model.py runs/sentiment sentiment/models/imdb \
        --data-source stanfordnlp/imdb
"""

from __future__ import annotations

import argparse
import json

from sentiment.checkpoint import export_model


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("source", help="a saved model folder")
    parser.add_argument("target", help="the folder to write")
    parser.add_argument("--dtype", default="float16", choices=["float32", "float16", "bfloat16"],
                        help="(default: %(default)s)")
    parser.add_argument("--data-source", default=None,
                        help="replace the data source recorded in the config (default: keep)")
    args = parser.parse_args()
    path = export_model(args.source, args.target, args.dtype, args.data_source)
    print(json.dumps({"written": str(path),
                      "bytes": sum(f.stat().st_size for f in path.rglob("*") if f.is_file())}))


if __name__ == "__main__":
    main()
