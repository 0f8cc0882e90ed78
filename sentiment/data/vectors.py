"""GloVe word vectors: download, read (.txt, .txt.gz, .zip) and build an embedding matrix."""

from __future__ import annotations

import gzip
import http.client
import io
import logging
import re
import urllib.parse
import urllib.request
import zipfile
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import numpy as np
from tqdm.auto import tqdm

from ..runtime.cache import cache_dir
from ..text.vocab import Vocab
from .sources import FetchError

VECTORS_OFFLINE = "offline, give a local GloVe text file with --vectors FILE"

logger = logging.getLogger(__name__)

GLOVE_URLS = {"glove.6B": "https://nlp.stanford.edu/data/glove.6B.zip"}
_NAME = re.compile(r"^(glove\.\w+)\.(\d+)d$")


def download(url: str, target: Path) -> Path:
    """Download ``url`` to ``target`` with a progress bar; reuse a complete earlier download.

    The file is written to ``target.part`` and renamed only once its size matches the server's
    Content-Length and (for .zip) it opens as a zip archive, so an interrupted download is never
    mistaken for a complete one.
    """
    if target.exists():
        return target
    target.parent.mkdir(parents=True, exist_ok=True)
    partial = target.with_name(target.name + ".part")
    logger.info("downloading %s to %s", url, target)
    try:
        with urllib.request.urlopen(url, timeout=60) as response, open(partial, "wb") as out:
            total = int(response.headers.get("Content-Length", 0)) or None
            with tqdm(total=total, unit="B", unit_scale=True, desc=target.name,
                      disable=None) as bar:  # none where stderr is not a terminal
                while chunk := response.read(1 << 20):
                    out.write(chunk)
                    bar.update(len(chunk))
        size = partial.stat().st_size
        if total is not None and size != total:
            raise OSError(f"incomplete: {size} of {total} bytes")
        if target.suffix == ".zip" and not zipfile.is_zipfile(partial):
            raise OSError("not a valid zip archive")
    except (OSError, http.client.HTTPException) as error:  # no network, a dropped connection
        partial.unlink(missing_ok=True)
        reason = getattr(error, "reason", None) or error
        raise FetchError(f"could not download {url} ({type(error).__name__}: {reason})",
                         VECTORS_OFFLINE) from error
    partial.replace(target)
    return target


def resolve_vectors(name_or_path: str | Path) -> tuple[Path, int | None]:
    """A local file for ``name_or_path``, downloading a known name (e.g. glove.6B.100d)."""
    path = Path(name_or_path)
    if path.exists():
        match = re.search(r"(\d+)d", path.name)
        return path, int(match.group(1)) if match else None
    match = _NAME.match(str(name_or_path))
    if match and match.group(1) in GLOVE_URLS:
        url = GLOVE_URLS[match.group(1)]
        return download(url, cache_dir() / Path(url).name), int(match.group(2))
    raise FileNotFoundError(
        f"no vectors at {name_or_path!r}: give a GloVe .txt/.txt.gz/.zip file or one of "
        f"{[f'{k}.{{50,100,200,300}}d' for k in GLOVE_URLS]}"
    )


def _open_lines(path: Path, dim: int | None) -> Iterator[str]:
    if path.suffix == ".zip":
        with zipfile.ZipFile(path) as archive:
            members = [m for m in archive.namelist() if m.endswith(".txt")]
            if dim is not None:
                members = [m for m in members if m.endswith(f".{dim}d.txt")]
            if len(members) != 1:
                raise ValueError(
                    f"{path}: cannot choose a member for dim={dim}; has {archive.namelist()}"
                )
            with archive.open(members[0]) as raw:
                yield from io.TextIOWrapper(raw, encoding="utf-8", errors="replace")
    elif path.suffix == ".gz":
        with gzip.open(path, "rt", encoding="utf-8", errors="replace") as lines:
            yield from lines
    else:
        with open(path, encoding="utf-8", errors="replace") as lines:
            yield from lines


@dataclass
class VectorStats:
    """What a GloVe file covered: vocabulary share and training-token occurrence share."""

    dim: int
    found: int
    vocab_size: int
    vocab_coverage: float
    token_coverage: float
    malformed_lines: int


def load_vectors(
    name_or_path: str | Path, vocab: Vocab, dim: int | None = None, seed: int = 0
) -> tuple[np.ndarray, VectorStats]:
    """An embedding matrix ``(len(vocab), dim)`` for ``vocab`` from a GloVe text file.

    Rows of words not in the file get a small random vector, ``<pad>`` a zero vector. Lines whose
    field count differs from the file's dimension are skipped and counted; a file whose dimension
    differs from ``dim`` is an error.
    """
    path, named_dim = resolve_vectors(name_or_path)
    dim = dim if dim is not None else named_dim
    found: dict[int, np.ndarray] = {}
    malformed = 0
    file_dim = None
    for line in _open_lines(path, dim):
        fields = line.rstrip().split(" ")
        if file_dim is None:
            file_dim = len(fields) - 1
            if dim is not None and file_dim != dim:
                raise ValueError(f"{path}: vectors have dimension {file_dim}, expected {dim}")
        if len(fields) != file_dim + 1:
            malformed += 1
            continue
        try:
            vector = np.asarray(fields[1:], dtype=np.float32)
        except ValueError:
            malformed += 1
            continue
        index = vocab.stoi.get(fields[0])
        if index is not None and index not in found:
            found[index] = vector
    if file_dim is None or file_dim < 1:
        raise ValueError(f"{path}: no vectors found")
    rng = np.random.default_rng(seed)
    matrix = rng.normal(0.0, 0.1, size=(len(vocab), file_dim)).astype(np.float32)
    for index, vector in found.items():
        matrix[index] = vector
    if vocab.pad_index is not None:
        matrix[vocab.pad_index] = 0.0
    specials = {vocab.pad_index, vocab.unk_index} - {None}
    words = len(vocab) - len(specials)
    covered = sum(vocab.counts.get(vocab.itos[i], 0) for i in found)
    stats = VectorStats(
        dim=file_dim,
        found=len(found),
        vocab_size=len(vocab),
        vocab_coverage=len(found) / max(words, 1),
        token_coverage=covered / vocab.total_count if vocab.total_count else float("nan"),
        malformed_lines=malformed,
    )
    logger.info(
        "vectors %s: %d-d, %d/%d words found (%.1f%% of vocabulary, %.1f%% of training tokens)"
        ", %d malformed lines skipped",
        path.name, file_dim, len(found), words, 100 * stats.vocab_coverage,
        100 * stats.token_coverage, malformed,
    )
    return matrix, stats
