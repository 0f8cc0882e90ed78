"""Benchmarks of the package: each module is a command (``python -m benchmarks.NAME``)."""

from __future__ import annotations

import json
from pathlib import Path


def emit(result: dict, output: str | Path | None = None) -> dict:
    """Print a benchmark's ``result`` as JSON and, with ``output``, also write it there."""
    text = json.dumps(result, indent=2)
    print(text)
    if output:
        Path(output).write_text(text + "\n", encoding="utf-8")
    return result
