"""Loading IMDB-style review data into `datasets.DatasetDict` splits.

Sources accepted by :func:`load_reviews`:

- a Hugging Face hub id (default ``stanfordnlp/imdb``);
- a folder of Parquet files ``train.parquet`` / ``test.parquet`` (e.g. ``../shared/data/imdb``);
- the original ``aclImdb/`` layout (``train/pos/*.txt``, ``train/neg/*.txt``, ``test/...``);
- a folder of, or single, CSV / JSON-lines files with ``text`` and ``label`` columns.
"""

from __future__ import annotations

import logging
import re
from pathlib import Path

import datasets
import numpy as np
from sklearn.model_selection import train_test_split

from .config import DEFAULT_SOURCE

logger = logging.getLogger(__name__)

_LABEL_ALIASES = {"0": 0, "1": 1, "neg": 0, "pos": 1, "negative": 0, "positive": 1}
_HTML_BREAK = re.compile(r"<br\s*/?>", flags=re.IGNORECASE)
_EXTENSIONS = {".parquet": "parquet", ".csv": "csv", ".jsonl": "json", ".json": "json"}


def clean_text(text: str) -> str:
    """Replace HTML line breaks (``<br />``) by spaces."""
    return _HTML_BREAK.sub(" ", text)


def _find_split_files(folder: Path) -> dict[str, str]:
    files: dict[str, str] = {}
    for path in sorted(folder.iterdir()):
        if path.suffix in _EXTENSIONS and path.stem in ("train", "test"):
            files[path.stem] = str(path)
    return files


def _read_acl_imdb(folder: Path) -> datasets.DatasetDict:
    splits = {}
    for split in ("train", "test"):
        texts, labels = [], []
        for label, name in enumerate(("neg", "pos")):
            for path in sorted((folder / split / name).glob("*.txt")):
                texts.append(path.read_text(encoding="utf-8"))
                labels.append(label)
        if not texts:
            raise FileNotFoundError(f"no reviews found under {folder / split}/{{neg,pos}}/*.txt")
        splits[split] = datasets.Dataset.from_dict({"text": texts, "label": labels})
    return datasets.DatasetDict(splits)


def _read_files(files: dict[str, str]) -> datasets.DatasetDict:
    kinds = {_EXTENSIONS[Path(f).suffix] for f in files.values()}
    if len(kinds) != 1:
        raise ValueError(f"mixed file formats for the splits: {files}")
    kind = kinds.pop()
    for name, file in files.items():  # datasets' own messages for these name neither
        if _has_no_rows(Path(file), kind):
            raise ValueError(f"{file}: the {name} file has no rows")
    # one file at a time: each is checked for its own columns, named in the message
    return datasets.DatasetDict({name: datasets.load_dataset(kind, data_files=file, split="train")
                                 for name, file in files.items()})


def _has_no_rows(path: Path, kind: str) -> bool:
    if path.stat().st_size == 0:
        return True
    if kind == "parquet":
        import pyarrow.parquet as pq

        return pq.ParquetFile(path).metadata.num_rows == 0
    with open(path, encoding="utf-8", errors="replace") as lines:
        rows = (line for line in lines if line.strip())
        if kind == "csv":
            next(rows, None)  # the header
        return next(rows, None) is None


def _drop_rows_without_text(split: datasets.Dataset, origin: str) -> datasets.Dataset:
    """Rows whose text is missing or blank are dropped, counted and reported (by row number)."""
    texts = split["text"]
    empty = [i for i, text in enumerate(texts) if not isinstance(text, str) or not text.strip()]
    if not empty:
        return split
    if len(empty) == len(texts):
        raise ValueError(f"{origin}: no row has any text in column 'text'")
    rows = ", ".join(str(i + 1) for i in empty[:5]) + (", ..." if len(empty) > 5 else "")
    logger.warning("%s: skipped %d of %d rows with no text (data rows %s)", origin, len(empty),
                   len(texts), rows)
    keep = np.setdiff1d(np.arange(len(texts)), empty)
    return split.select(keep).flatten_indices()


def _normalise_labels(split: datasets.Dataset, origin: str) -> datasets.Dataset:
    """Map labels to 0 (negative) / 1 (positive); a bad value raises a ValueError naming it."""
    missing = {"text", "label"} - set(split.column_names)
    if missing:
        raise ValueError(f"{origin}: missing column(s) {sorted(missing)}; need 'text' and 'label'")
    split = split.select_columns(["text", "label"])
    values = split.unique("label")
    mapping = {}
    for value in values:
        key = str(value).strip().lower()
        if isinstance(value, float) and value in (0.0, 1.0):
            key = str(int(value))
        if key not in _LABEL_ALIASES:
            row = split["label"].index(value) + 1
            raise ValueError(f"{origin}: bad label {value!r} in data row {row}; expected 0/1 or "
                             "neg/pos (negative/positive)")
        mapping[value] = _LABEL_ALIASES[key]
    if all(mapping.get(v) == v for v in values) and split.features["label"].dtype == "int64":
        return split
    return split.map(
        lambda batch: {"label": [mapping[v] for v in batch["label"]]},
        batched=True,
        features=datasets.Features({**split.features, "label": datasets.Value("int64")}),
        desc="labels",
    )


def load_reviews(source: str | Path = DEFAULT_SOURCE) -> datasets.DatasetDict:
    """Load ``train`` and ``test`` splits with ``text`` (cleaned) and ``label`` (0/1) columns."""
    path = Path(source)
    if path.is_dir():
        acl = next((p for p in (path, path / "aclImdb") if (p / "train" / "pos").is_dir()), None)
        if acl is not None:
            raw = _read_acl_imdb(acl)
            origin = {s: str(acl / s) for s in raw}
        else:
            files = _find_split_files(path)
            if set(files) != {"train", "test"}:
                raise FileNotFoundError(
                    f"{path}: expected train and test files (.parquet, .csv or .jsonl) "
                    f"or an aclImdb/ layout; found {sorted(files) or 'none'}"
                )
            raw = _read_files(files)
            origin = files
    elif path.suffix in _EXTENSIONS and path.exists():
        raise ValueError(
            f"{path}: a single file has no train/test split; put train and test files in a folder"
        )
    elif str(source).count("/") == 1 and not path.exists():
        logger.info("loading %s from the Hugging Face hub", source)
        raw = datasets.load_dataset(str(source))
        origin = {s: str(source) for s in raw}
    else:
        raise FileNotFoundError(f"no dataset at {source!r} (a folder or a hub id like owner/name)")
    splits = {}
    for name in ("train", "test"):
        if name not in raw:
            raise ValueError(f"{source}: no {name!r} split (found {list(raw)})")
        if len(raw[name]) == 0:
            raise ValueError(f"{origin[name]}: the {name} split has no rows")
        split = _normalise_labels(raw[name], origin[name])
        split = _drop_rows_without_text(split, origin[name])
        splits[name] = split.map(
            lambda batch: {"text": [clean_text(t) for t in batch["text"]]},
            batched=True,
            desc=f"clean {name}",
        )
    return datasets.DatasetDict(splits)


def load_unlabelled(source: str | Path = DEFAULT_SOURCE) -> datasets.Dataset:
    """The unlabelled reviews beside ``source`` (cleaned ``text``): an ``unsupervised`` file in
    a folder, ``train/unsup/*.txt`` of an aclImdb layout, or a hub dataset's ``unsupervised``
    split. A source without them is a FileNotFoundError."""
    path = Path(source)
    if path.is_dir():
        acl = next((p for p in (path, path / "aclImdb") if (p / "train" / "unsup").is_dir()), None)
        if acl is not None:
            files = sorted((acl / "train" / "unsup").glob("*.txt"))
            raw = datasets.Dataset.from_dict(
                {"text": [f.read_text(encoding="utf-8") for f in files]})
        else:
            found = [p for p in sorted(path.iterdir())
                     if p.stem == "unsupervised" and p.suffix in _EXTENSIONS]
            if not found:
                raise FileNotFoundError(f"{path}: no unsupervised.parquet/.csv/.jsonl of "
                                        "unlabelled reviews (or aclImdb/train/unsup/)")
            raw = datasets.load_dataset(_EXTENSIONS[found[0].suffix], data_files=str(found[0]),
                                        split="train")
    elif str(source).count("/") == 1 and not path.exists():
        logger.info("loading the unsupervised split of %s from the Hugging Face hub", source)
        raw = datasets.load_dataset(str(source), split="unsupervised")
    else:
        raise FileNotFoundError(f"no dataset at {source!r} (a folder or a hub id like owner/name)")
    if "text" not in raw.column_names:
        raise ValueError(f"{source}: unlabelled reviews need a 'text' column, found "
                         f"{raw.column_names}")
    return raw.select_columns(["text"]).map(
        lambda batch: {"text": [clean_text(t) for t in batch["text"]]}, batched=True,
        desc="clean unlabelled")


def split_validation(
    train: datasets.Dataset, fraction: float = 0.1, seed: int = 0
) -> tuple[datasets.Dataset, datasets.Dataset]:
    """Carve a stratified, seeded validation split from ``train``; returns ``(train, valid)``."""
    if not 0.0 < fraction < 1.0:
        raise ValueError(f"validation fraction must be in (0, 1), got {fraction}")
    labels = np.asarray(train["label"])
    indices = np.arange(len(labels))
    train_idx, valid_idx = train_test_split(
        indices, test_size=fraction, random_state=seed, stratify=labels
    )
    return train.select(np.sort(train_idx)), train.select(np.sort(valid_idx))
