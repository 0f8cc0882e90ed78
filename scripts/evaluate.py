"""Write the evaluation report of a saved sentiment model (report.json, report.md, plots).

    python scripts/evaluate.py --model runs/sentiment --data ../shared/data/imdb

The same as ``sentiment evaluate`` (sentiment/cli/score.py).
"""

from __future__ import annotations

import sys

from sentiment.cli.main import run

if __name__ == "__main__":
    sys.exit(run("evaluate"))
