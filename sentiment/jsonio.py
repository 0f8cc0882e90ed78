"""JSON files written whole or not at all: a crash mid-write leaves the old file, never half a
new one (every model folder's JSON, reports and run records go through here)."""

from __future__ import annotations

import json
import os
from pathlib import Path


def write_json(path: str | Path, data, indent: int | None = 2) -> Path:
    """Write ``data`` to ``path`` through a temporary file beside it, then rename it into place
    (atomic on POSIX); UTF-8, non-ASCII kept, a final newline."""
    path = Path(path)
    tmp = path.with_name(path.name + ".tmp")
    tmp.write_text(json.dumps(data, indent=indent, ensure_ascii=False) + "\n", encoding="utf-8")
    os.replace(tmp, path)
    return path


def read_json(path: str | Path):
    """The JSON value in ``path``; a damaged file is a ValueError naming it."""
    path = Path(path)
    try:
        return json.loads(path.read_text(encoding="utf-8"))
    except (json.JSONDecodeError, UnicodeDecodeError) as error:
        raise ValueError(f"{path} is damaged (not JSON: {error})") from None
