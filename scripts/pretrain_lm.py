r"""Pretrain the classifier's core as a word-level bidirectional language model on IMDB's
unlabelled reviews plus the classifier's training reviews (never its validation or test ones).

    python scripts/pretrain_lm.py --data ../shared/data/imdb \
        --vectors ../shared/data/glove/glove.6B.50d.txt.gz --output runs/lm

The same as ``sentiment pretrain`` (sentiment/cli/training.py).
"""

from __future__ import annotations

import sys

from sentiment.cli.main import run
from sentiment.cli.options import use_tcmalloc

if __name__ == "__main__":
    use_tcmalloc()
    sys.exit(run("pretrain"))
