r"""Train a character-level language model (RNN/GRU/LSTM) on one or more UTF-8 text files.

    python scripts/train_charlm.py --text ../shared/data/text/timemachine.txt --preset d2l \
        --output runs/timemachine

The same as ``sentiment train-charlm`` (sentiment/cli/training.py).
"""

from __future__ import annotations

import sys

from sentiment.cli.main import run
from sentiment.cli.options import use_tcmalloc

if __name__ == "__main__":
    use_tcmalloc()
    sys.exit(run("train-charlm"))
