r"""Generate text with a saved language model.

    python scripts/generate.py --model runs/timemachine --prefix "time traveller" \
        --num-chars 200 --temperature 0.8

The same as ``sentiment generate`` (sentiment/cli/score.py).
"""

from __future__ import annotations

import sys

from sentiment.cli.main import run

if __name__ == "__main__":
    sys.exit(run("generate"))
