"""Classify texts with a saved sentiment model; one JSON line per text.

    python scripts/predict.py --model runs/sentiment "A wonderful, moving film."
    cat reviews.txt | python scripts/predict.py --model runs/sentiment     # one review per line

The same as ``sentiment predict`` (sentiment/cli/score.py).
"""

from __future__ import annotations

import sys

from sentiment.cli.main import run

if __name__ == "__main__":
    sys.exit(run("predict"))
