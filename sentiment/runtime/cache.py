"""Where the package keeps what it can make again: downloaded word vectors and a content-keyed
copy of each data file it reads (``$SENTIMENT_CACHE``, else ``~/.cache/sentiment``)."""

from __future__ import annotations

import hashlib
import os
import shutil
from pathlib import Path


def cache_dir() -> Path:
    """``$SENTIMENT_CACHE``, else ``~/.cache/sentiment``."""
    return Path(os.environ.get("SENTIMENT_CACHE", Path.home() / ".cache" / "sentiment"))


def by_content(path: Path) -> Path:
    """``path``'s place in the cache by its content (SHA-256): a copy of it, not a link (a file
    rewritten in place would change a link to its old content). The ``datasets`` library keys
    its own cache by a file's path and time, so every spelling of one path (``../shared/…``,
    ``../../shared/…``) and every copy of one file made another full copy of it there, and of
    its tokens; read through this place they share one. The file is hashed on each read (a
    fraction of a second for IMDB's files)."""
    digest = hashlib.sha256()
    with path.open("rb") as handle:
        for block in iter(lambda: handle.read(1 << 20), b""):
            digest.update(block)
    target = cache_dir() / "files" / f"{digest.hexdigest()[:32]}{path.suffix}"
    if not target.exists():
        target.parent.mkdir(parents=True, exist_ok=True)
        partial = target.with_name(target.name + f".{os.getpid()}.part")
        shutil.copy2(path, partial)
        os.replace(partial, target)
    return target
