r"""Measure the package against its reference implementation, in one run; print a table and
write benchmarks/<machine>-<date>.json. Runs from a checkout (benchmarks/ is not installed).

    python scripts/benchmark.py --data ../shared/data/imdb \
        --text ../shared/data/text/timemachine.txt --quick
"""

from __future__ import annotations

import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))  # the benchmarks/ package
from benchmarks.suite import main  # noqa: E402

if __name__ == "__main__":
    main()
