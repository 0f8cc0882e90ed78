"""Loading IMDB-style review data into `datasets.DatasetDict` splits.

One opener, :func:`open_source`, reads every source (a hub id, a folder of split files, the
aclImdb layout, a single CSV / JSON-lines / Parquet / text file) for the three readers:
:func:`load_reviews` (a classifier's train and test splits), :func:`read_labelled` (one labelled
split to score) and :func:`load_unlabelled` (text for language-model pretraining).
"""

from __future__ import annotations

import json
import logging
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path

import datasets
import numpy as np

from ..config import BAD_ROWS, DEFAULT_LABELS, DEFAULT_SOURCE, ENCODING_ERRORS
from ..runtime.cache import by_content
from ..text.clean import SURROGATES, clean_text  # clean_text: imported from here elsewhere too

logger = logging.getLogger(__name__)

MAX_CLASSES = 100  # more distinct labels than this is taken for a wrong label column
_LABEL_ALIASES = {"0": 0, "1": 1, "neg": 0, "pos": 1, "negative": 0, "positive": 1}
_EXTENSIONS = {".parquet": "parquet", ".csv": "csv", ".jsonl": "json", ".json": "json"}


class FetchError(ConnectionError):
    """Something could not be downloaded; the message says what, why, and the offline way
    (``advice``: a command that takes the data under another flag says its own instead)."""

    def __init__(self, what: str, advice: str = ""):
        super().__init__(f"{what}; {advice}" if advice else what)
        self.what, self.advice = what, advice


LOCAL_COPY = ("offline, point --data at a local copy (a folder of train/test files, or one "
              "CSV/JSON-lines/Parquet file)")


def _check_hub(source) -> None:
    """Fail at once, not after the hub client's half-minute of retries, when the hub cannot be
    reached; a user who set HF_HUB_OFFLINE=1 reads the datasets' own cache instead."""
    from ..runtime.network import hub_host, offline_requested, reachable

    if not offline_requested() and not reachable(hub_host()):
        raise FetchError(f"could not load {source}: {hub_host()} cannot be reached (no network?)",
                         LOCAL_COPY + "; a dataset loaded before is read from the cache with "
                         "HF_HUB_OFFLINE=1")


def _clean(split: datasets.Dataset, desc: str) -> datasets.Dataset:
    """``split`` with :func:`clean_text` applied to its ``text`` column."""
    return split.map(lambda batch: {"text": [clean_text(t) for t in batch["text"]]}, batched=True,
                     desc=desc)


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


@dataclass(frozen=True)
class RowRules:
    """What reading a CSV file does with a row whose field count differs from the header's
    (``error``, naming its line, or ``skip``) and with invalid UTF-8 bytes (``replace`` them by
    U+FFFD, or ``strict``: an error), as pandas reads it for ``datasets``."""

    on_bad_rows: str = "error"
    encoding_errors: str = "replace"

    def __post_init__(self) -> None:
        if self.on_bad_rows not in BAD_ROWS:
            raise ValueError(f"on_bad_rows must be one of {BAD_ROWS}, got {self.on_bad_rows!r}")
        if self.encoding_errors not in ENCODING_ERRORS:
            raise ValueError(f"encoding_errors must be one of {ENCODING_ERRORS}, got "
                             f"{self.encoding_errors!r}")


@dataclass
class Repairs:
    """What reading a file under ``rules`` skipped (``bad_rows``, each as read) and repaired
    (``repaired`` texts)."""

    rules: RowRules = field(default_factory=RowRules)
    bad_rows: list = field(default_factory=list)
    repaired: int = 0


def json_records(path: Path, repairs: Repairs) -> Iterator[dict]:
    """The record of each non-blank line of a JSON-lines file, read with Python's json. A line
    that is not a JSON object is an error naming it, or skipped (``on_bad_rows``); invalid UTF-8
    and lone surrogates are repaired or an error (``encoding_errors``); ``repairs`` counts."""
    rules = repairs.rules
    with open(path, "rb") as lines:
        for number, raw in enumerate(lines, 1):
            if not raw.strip():
                continue
            try:
                line = raw.decode("utf-8")
            except UnicodeDecodeError as error:
                if rules.encoding_errors == "strict":
                    raise ValueError(f"{path}: invalid UTF-8 on line {number} ({error.reason}); "
                                     "--encoding-errors replace repairs it") from None
                line, repairs.repaired = raw.decode("utf-8", "replace"), repairs.repaired + 1
            try:
                record = json.loads(line)
            except json.JSONDecodeError as error:
                record = error
            if not isinstance(record, dict):
                if rules.on_bad_rows == "error":
                    raise ValueError(f"{path}: line {number} is not a JSON object; "
                                     "--on-bad-rows skip skips such lines")
                repairs.bad_rows.append((None, None, raw[:200]))
                continue
            values = {key: SURROGATES.sub("\ufffd", value) if isinstance(value, str) else value
                      for key, value in record.items()}
            if values != record:
                if rules.encoding_errors == "strict":
                    raise ValueError(f"{path}: line {number} holds a lone surrogate; "
                                     "--encoding-errors replace repairs it")
                repairs.repaired += 1
            yield values


def _read_file(path: Path, name: str | None = None, rules: RowRules = RowRules()
               ) -> datasets.Dataset:
    """Every row of one file; ``.txt``: one text per non-blank line."""
    kind = "text" if path.suffix == ".txt" else _EXTENSIONS[path.suffix]
    if _has_no_rows(path, kind):  # datasets' own messages for these name neither
        raise ValueError(f"{path}: the {name} file has no rows" if name
                         else f"{path}: the file has no rows")
    options = ({"on_bad_lines": rules.on_bad_rows, "encoding_errors": rules.encoding_errors}
               if kind == "csv" else {})
    try:
        table = datasets.load_dataset(kind, data_files=str(by_content(path)), split="train",
                                      **options)
    except Exception as error:  # pandas' ParserError, wrapped by datasets' builder
        if kind == "json":  # a broken line: Python's json names it, or skips it
            return _read_json_lines(path, rules)
        cause = error.__cause__ or error
        if kind == "csv" and "Expected" in str(cause) and "fields" in str(cause):
            raise ValueError(f"{path}: {' '.join(str(cause).split())}; --on-bad-rows skip "
                             "skips such rows") from None
        raise
    if kind == "text":  # blank lines separate paragraphs: not rows
        table = table.filter(lambda batch: [bool(t.strip()) for t in batch["text"]],
                             batched=True, desc="non-blank lines")
    return table


def _read_json_lines(path: Path, rules: RowRules) -> datasets.Dataset:
    """A JSON-lines file that pyarrow's reader refused, line by line (:func:`json_records`)."""
    repairs = Repairs(rules)
    records = list(json_records(path, repairs))
    logger.warning("%s: %d lines that are not JSON objects skipped, %d texts repaired", path,
                   len(repairs.bad_rows), repairs.repaired)
    if not records:
        raise ValueError(f"{path}: no JSON records")
    return datasets.Dataset.from_list(records)


def _read_acl_imdb(folder: Path, split: str) -> datasets.Dataset:
    """A split of the original aclImdb layout: ``train``/``test`` from ``SPLIT/{neg,pos}``,
    ``unsupervised`` from ``train/unsup``."""
    if split == "unsupervised":
        files = sorted((folder / "train" / "unsup").glob("*.txt"))
        return datasets.Dataset.from_dict({"text": [f.read_text(encoding="utf-8")
                                                    for f in files]})
    texts, labels = [], []
    for label, name in enumerate(("neg", "pos")):
        for path in sorted((folder / split / name).glob("*.txt")):
            texts.append(path.read_text(encoding="utf-8"))
            labels.append(label)
    if not texts:
        raise FileNotFoundError(f"no reviews found under {folder / split}/{{neg,pos}}/*.txt")
    return datasets.Dataset.from_dict({"text": texts, "label": labels})


_ACL_MARKERS = {"train": "train/pos", "test": "test/pos", "unsupervised": "train/unsup"}


def open_source(source: str | Path, splits: Mapping[str, str], what: str = "labelled reviews",
                rules: RowRules = RowRules()) -> dict[str, tuple[datasets.Dataset, str]]:
    """The raw rows of ``source`` as ``{name: (rows, origin)}``: the one set of rules every
    reader of data follows.

    - a file (``.parquet``, ``.csv``, ``.jsonl``/``.json``; ``.txt``: one text per line) is one
      table, returned as ``{"whole": ...}`` whatever ``splits`` asks for;
    - a folder holds a file per split, named for it (``train.parquet``, ``test.csv``,
      ``unsupervised.jsonl``), or the aclImdb layout (``train/{neg,pos}``, ``train/unsup``);
    - ``owner/name`` that is not a local path is a Hugging Face hub dataset, read through
      ``datasets``; ``splits`` maps each name to the hub's split name.

    Anything else, a missing file or a missing split, is a FileNotFoundError naming what was
    expected; a file without rows a ValueError.
    """
    path = Path(source)
    if path.is_file() and (path.suffix in _EXTENSIONS or path.suffix == ".txt"):
        return {"whole": (_read_file(path, rules=rules), str(path))}
    if path.is_dir():
        wanted = list(splits)
        acl = next((p for p in (path, path / "aclImdb")
                    if all((p / _ACL_MARKERS.get(name, "-")).is_dir() for name in wanted)), None)
        if acl is not None:
            return {name: (_read_acl_imdb(acl, name), str(acl / name)) for name in wanted}
        files = {p.stem: p for p in sorted(path.iterdir())
                 if p.suffix in _EXTENSIONS and p.stem in wanted}
        if set(files) != set(wanted):
            raise FileNotFoundError(
                f"{path}: expected {' and '.join(wanted)} files (.parquet, .csv or .jsonl) "
                f"or an aclImdb/ layout for {what}; found {sorted(files) or 'none'}")
        if len({p.suffix for p in files.values()}) > 1:
            raise ValueError(f"mixed file formats for the splits: "
                             f"{ {k: str(v) for k, v in files.items()} }")
        return {name: (_read_file(files[name], name, rules), str(files[name]))
                for name in wanted}
    if path.suffix in _EXTENSIONS or path.suffix == ".txt":
        raise FileNotFoundError(f"no such file: {path}")
    if str(source).count("/") == 1 and not path.exists():
        _check_hub(source)
        logger.info("loading %s from the Hugging Face hub", source)
        found = {}
        for name, hub_split in splits.items():
            try:
                found[name] = (datasets.load_dataset(str(source), split=hub_split),
                               f"{source}[{hub_split}]")
            except ValueError as error:  # datasets' "Unknown split"
                raise ValueError(f"{source}: no {hub_split!r} split ({error}); choose with "
                                 "--train-split / --test-split") from error
            except FileNotFoundError:  # no such dataset: the user's mistake, said as it is
                raise
            except OSError as error:  # no network, a proxy that refuses, offline mode
                raise FetchError(f"could not load {source} from the Hugging Face hub "
                                 f"({' '.join(str(error).split())})", LOCAL_COPY) from error
        return found
    raise FileNotFoundError(f"no dataset at {source!r}: expected a folder, a .csv/.jsonl/"
                            f".parquet file, or a hub id like owner/name, with {what}")


def _rows(table: datasets.Dataset, origin: str, text_column: str,
          label_column: str | None) -> datasets.Dataset:
    """``table``'s ``text`` (and ``label``) columns, renamed from the file's own names; rows
    without text dropped and counted."""
    if len(table) == 0:
        raise ValueError(f"{origin}: no rows")
    split = _select_columns(table, origin, text_column, label_column)
    return _drop_rows_without_text(split, origin)


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


def _select_columns(split: datasets.Dataset, origin: str, text_column: str,
                    label_column: str | None) -> datasets.Dataset:
    """The ``text`` (and ``label``) columns, renamed from the file's own names."""
    wanted = [text_column] if label_column is None else [text_column, label_column]
    missing = [c for c in wanted if c not in split.column_names]
    if missing:
        option = "--unlabelled-column" if label_column is None else \
            "--text-column / --label-column"
        raise ValueError(f"{origin}: no column {missing[0]!r} (missing column(s) {missing}); "
                         f"the file has {split.column_names} (choose with {option})")
    split = split.select_columns(wanted)
    for column, name in zip(wanted, ("text", "label"), strict=False):
        if column != name:
            split = split.rename_column(column, name)
    return split


def _label_key(value) -> str:
    if isinstance(value, float) and value.is_integer():
        value = int(value)
    return str(value).strip()


def label_mapping(split: datasets.Dataset, origin: str) -> tuple[dict, list[str]]:
    """``(value -> id, label names)`` of a training split's labels.

    0/1 and neg/pos/negative/positive (any case) are IMDB's: ids 0 = negative, 1 = positive.
    Any other values are ordered numerically when they are all numbers, else alphabetically,
    and keep their own names (``["bad", "good"]``, ``["1", "2", "3", "4", "5"]``): two classes
    make a binary classifier, more a softmax one. A ``ClassLabel`` column (a hub dataset's)
    keeps its ids and names. Fewer than two values is a ValueError naming them.
    """
    feature = split.features["label"]
    if isinstance(feature, datasets.ClassLabel):
        names = list(feature.names)
        aliases = [_LABEL_ALIASES.get(name.lower()) for name in names]
        if aliases == [0, 1]:
            names = list(DEFAULT_LABELS)
        return {i: i for i in range(len(names))}, names
    values = [v for v in split.unique("label") if v is not None]
    keys = {value: _label_key(value) for value in values}
    if values and all(key.lower() in _LABEL_ALIASES for key in keys.values()):
        return {v: _LABEL_ALIASES[k.lower()] for v, k in keys.items()}, list(DEFAULT_LABELS)
    distinct = sorted(set(keys.values()), key=lambda k: (_as_number(k) is None, _as_number(k), k))
    alias_ids = {_LABEL_ALIASES[k.lower()] for k in distinct if k.lower() in _LABEL_ALIASES}
    if len(distinct) > 2 and alias_ids == {0, 1}:
        _refuse_stray_labels(split["label"], origin)  # else classes of their own (0-4, neutral)
    if len(distinct) < 2:
        raise ValueError(f"{origin}: the labels have {len(distinct)} distinct value(s) "
                         f"{distinct}; a classifier needs two or more classes")
    if len(distinct) > MAX_CLASSES:
        raise ValueError(f"{origin}: the labels have {len(distinct)} distinct values "
                         f"({distinct[:5]}...); is the label column the right one? (at most "
                         f"{MAX_CLASSES} classes)")
    return {v: distinct.index(k) for v, k in keys.items()}, distinct


def _refuse_stray_labels(column: list, origin: str) -> None:
    """Labels mostly 0/1 or negative/positive (IMDB's) with a few other values: those are
    mistakes, named with their row, when they are fewer than 3 rows and 1% of the rows;
    otherwise they are classes of their own (``negative, neutral, positive``; 0-4 stars)."""
    odd = [i for i, v in enumerate(column)
           if v is not None and _label_key(v).lower() not in _LABEL_ALIASES]
    if len(odd) < max(3, len(column) // 100):
        raise ValueError(f"{origin}: bad label {column[odd[0]]!r} in data row {odd[0] + 1}; "
                         f"expected 0/1 or neg/pos (negative/positive) like the other rows ("
                         f"{len(odd)} of {len(column)} rows hold other values: too few to be "
                         "classes of their own)")


def _as_number(key: str) -> float | None:
    try:
        return float(key)
    except ValueError:
        return None


def _apply_labels(split: datasets.Dataset, origin: str, mapping: dict,
                  names: list[str]) -> datasets.Dataset:
    """Labels as ids ``0..len(names)-1`` in a ``ClassLabel`` column carrying ``names``; a value
    the training data does not have is a ValueError naming it and its row."""
    feature = split.features["label"]
    if names == list(DEFAULT_LABELS) and not isinstance(feature, datasets.ClassLabel):
        mapping = {**mapping, **{v: _LABEL_ALIASES[_label_key(v).lower()]
                                 for v in split.unique("label")
                                 if v is not None and _label_key(v).lower() in _LABEL_ALIASES}}
    if not isinstance(feature, datasets.ClassLabel):
        values = split["label"]
        for row, value in enumerate(values):
            if value not in mapping and value is not None:
                raise ValueError(f"{origin}: bad label {value!r} in data row {row + 1}; "
                                 f"expected one of {sorted(map(_label_key, mapping))}")
        if None in values:
            raise ValueError(f"{origin}: data row {values.index(None) + 1} has no label")
    features = datasets.Features({"text": datasets.Value("string"),
                                  "label": datasets.ClassLabel(names=names)})
    if isinstance(feature, datasets.ClassLabel):
        return split.cast(features)
    return split.map(lambda batch: {"label": [mapping[v] for v in batch["label"]]},
                     batched=True, features=features, desc="labels")


def load_reviews(
    source: str | Path = DEFAULT_SOURCE,
    text_column: str = "text",
    label_column: str = "label",
    test_fraction: float = 0.2,
    seed: int = 0,
    train_split: str = "train",
    test_split: str = "test",
    rules: RowRules = RowRules(),
) -> datasets.DatasetDict:
    """Load ``train`` and ``test`` splits with ``text`` (cleaned) and ``label`` columns, the
    label a ``ClassLabel`` whose names are the data's own (:func:`label_mapping`).

    ``source`` as :func:`open_source` reads it. From a single file a stratified test split of
    ``test_fraction`` is carved, seeded by ``seed`` (the same arguments give the same split); a
    hub dataset's splits are ``train_split`` and ``test_split``. Columns ``text_column`` /
    ``label_column`` are renamed to ``text`` / ``label``.
    """
    opened = open_source(source, {"train": train_split, "test": test_split}, rules=rules)
    origin = {name: where for name, (_, where) in opened.items()}
    raw = {name: _rows(table, where, text_column, label_column)
           for name, (table, where) in opened.items()}
    first = "whole" if "whole" in raw else "train"
    mapping, names = label_mapping(raw[first], origin[first])
    raw = {name: _apply_labels(split, origin[name], mapping, names) for name, split in raw.items()}
    if "whole" in raw:
        whole = raw.pop("whole")
        if not 0.0 < test_fraction < 1.0:
            raise ValueError(f"test_fraction must be in (0, 1), got {test_fraction}")
        parts = whole.train_test_split(test_size=test_fraction, seed=seed,
                                       stratify_by_column="label")
        raw = {"train": parts["train"], "test": parts["test"]}
        logger.info("%s: %d rows, a seeded stratified test split of %d (test_fraction %s)",
                    origin["whole"], len(whole), len(raw["test"]), test_fraction)
    return datasets.DatasetDict({name: _clean(raw[name], f"clean {name}")
                                 for name in ("train", "test")})


def read_labelled(source: str | Path, text_column: str = "text", label_column: str = "label",
                  split: str = "test", rules: RowRules = RowRules()
                  ) -> tuple[datasets.Dataset, str]:
    """``(rows, origin)``: every row of a single file, or the ``split`` of a folder or hub
    dataset, with ``text`` (cleaned) and ``label`` as the data spells it; rows without text are
    skipped and counted. For scoring a model on data it was not trained on."""
    [(table, origin)] = open_source(source, {split: split}, rules=rules).values()
    return _clean(_rows(table, origin, text_column, label_column), "clean"), origin


def parse_label_map(items: Sequence[str] | None) -> dict[str, str]:
    """``["1=negative", "5=positive"]`` (the shell's ``--label-map``) as ``{"1": "negative",
    ...}``; an item without ``=`` is a ValueError."""
    mapping = {}
    for item in items or ():
        value, sep, label = item.partition("=")
        if not sep or not value.strip() or not label.strip():
            raise ValueError(f"label map item {item!r}: expected VALUE=LABEL, e.g. 1=negative")
        mapping[value.strip()] = label.strip()
    return mapping


def map_onto_labels(rows: datasets.Dataset, origin: str, labels: Sequence[str],
                    label_map: dict[str, str] | None = None,
                    skip: Sequence[str] = ()) -> tuple[datasets.Dataset, dict]:
    """The rows with their labels as ids of a trained model's ``labels``, and how each value of
    the data was mapped (``{value: label name or None for skipped}``).

    A value goes, first match wins: where ``label_map`` sends it (a model label); nowhere if it
    is in ``skip`` (its rows are dropped and counted, e.g. the neutral 3 of five stars); to the
    model label of the same name (any case); for a negative/positive model whose data spells
    every label IMDB's way (0/1, neg/pos), to those. Any other value is a ValueError listing them
    and the model's labels.
    """
    labels = list(labels)
    by_name = {name.lower(): i for i, name in enumerate(labels)}
    label_map = {str(k): v for k, v in (label_map or {}).items()}
    for value, name in label_map.items():
        if name.lower() not in by_name:
            raise ValueError(f"label map {value}={name}: {name!r} is not one of the model's "
                             f"labels {labels}")
    skip = {_label_key(v) for v in skip}
    values = rows.unique("label")
    # IMDB's spellings only when every value is one (a 1 among 1..5 stars is not "positive")
    imdb = labels == list(DEFAULT_LABELS) and all(
        v is not None and _label_key(v).lower() in _LABEL_ALIASES for v in values)
    keys = {value: _label_key(value) if value is not None else None for value in values}
    ids: dict = {}
    unmapped = []
    for value, key in keys.items():
        if key in label_map:
            ids[value] = by_name[label_map[key].lower()]
        elif key in skip:
            ids[value] = None
        elif key is not None and key.lower() in by_name:
            ids[value] = by_name[key.lower()]
        elif imdb and key is not None and key.lower() in _LABEL_ALIASES:
            ids[value] = _LABEL_ALIASES[key.lower()]
        else:
            unmapped.append("no label" if key is None else key)
    if unmapped:
        raise ValueError(f"{origin}: label value(s) {sorted(unmapped)} match none of the model's "
                         f"labels {labels}; map them with --label-map VALUE=LABEL or drop them "
                         "with --skip-labels VALUE")
    column = rows["label"]
    keep = [i for i, value in enumerate(column) if ids[value] is not None]
    if not keep:
        raise ValueError(f"{origin}: every row's label is skipped")
    if len(keep) < len(column):
        logger.info("%s: %d of %d rows skipped for their label", origin, len(column) - len(keep),
                    len(column))
        rows = rows.select(keep).flatten_indices()
    features = datasets.Features({"text": datasets.Value("string"),
                                  "label": datasets.ClassLabel(names=labels)})
    rows = rows.map(lambda batch: {"label": [ids[v] for v in batch["label"]]}, batched=True,
                    features=features, desc="labels")
    how = {keys[v]: (labels[i] if i is not None else None) for v, i in ids.items()}
    return rows, how


def label_names(split: datasets.Dataset) -> list[str]:
    """The label names a split loaded by :func:`load_reviews` carries."""
    feature = split.features["label"]
    return list(feature.names) if isinstance(feature, datasets.ClassLabel) else list(
        DEFAULT_LABELS)


def load_unlabelled(source: str | Path = DEFAULT_SOURCE, text_column: str = "text"
                    ) -> datasets.Dataset:
    """Unlabelled texts (cleaned ``text``) for language-model pretraining: a single file
    (``.txt``: one text per line), or the ``unsupervised`` split of a folder or hub dataset
    (:func:`open_source`). Blank texts are skipped and counted."""
    [(table, origin)] = open_source(source, {"unsupervised": "unsupervised"},
                                    "unlabelled reviews (name a file of your own text with "
                                    "--unlabelled)").values()
    if table.column_names == ["text"]:  # a .txt file, aclImdb's train/unsup: text only
        text_column = "text"
    raw = _rows(table, origin, text_column, None)
    # one text type: files may read as large_string, which does not join the labelled texts
    return _clean(raw, "clean unlabelled").cast_column("text", datasets.Value("string"))


def split_validation(
    train: datasets.Dataset, fraction: float = 0.1, seed: int = 0
) -> tuple[datasets.Dataset, datasets.Dataset]:
    """Carve a stratified, seeded validation split from ``train``; returns ``(train, valid)``."""
    from sklearn.model_selection import train_test_split  # not needed to score (no torch)

    if not 0.0 < fraction < 1.0:
        raise ValueError(f"validation fraction must be in (0, 1), got {fraction}")
    labels = np.asarray(train["label"])
    indices = np.arange(len(labels))
    train_idx, valid_idx = train_test_split(
        indices, test_size=fraction, random_state=seed, stratify=labels
    )
    return train.select(np.sort(train_idx)), train.select(np.sort(valid_idx))
