r"""Train the IMDB sentiment classifier, keep the best model on validation, report on test.

    python scripts/train_sentiment.py
    python scripts/train_sentiment.py --data ../shared/data/imdb \
        --vectors ../shared/data/glove/glove.6B.50d.txt.gz
    python scripts/train_sentiment.py --data ../shared/data/imdb --encoder runs/lm   # fine-tune

The same as ``sentiment train`` (sentiment/cli/training.py).
"""

from __future__ import annotations

import sys

from sentiment.cli.main import run
from sentiment.cli.options import use_tcmalloc

if __name__ == "__main__":
    use_tcmalloc()
    sys.exit(run("train"))
