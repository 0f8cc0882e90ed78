"""Batch scoring of files: every row of a CSV / JSON-lines / Parquet file, in bounded memory.

    score_file("reviews.csv", "scored.parquet", text_column="review")

The input is read as a stream of Arrow record batches (``pyarrow``'s CSV and JSON readers,
Parquet row batches), each batch is scored and written out at once, so memory holds one batch
whatever the file's size. Every input column is kept, in order, and two are added:
``predicted_label`` and ``predicted_score`` (the probability of that label). Rows keep their
order and none is dropped: a row whose text is missing or blank gets empty (null) predictions
and is counted in the summary. The output is written to a temporary file beside the target and
renamed when complete, so a failed run never leaves a partial file under the output's name.
"""

from __future__ import annotations

import contextlib
import itertools
import json
import logging
import os
import time
from collections import deque
from collections.abc import Iterator
from pathlib import Path

import pyarrow as pa
import pyarrow.csv as pa_csv
import pyarrow.parquet as pq
from tqdm.auto import tqdm

from ..data.sources import Repairs, RowRules, json_records
from ..kinds.protocol import TextClassifier
from ..kinds.registry import load_model, resolve_model_path, scored_by_torch
from ..runtime.workers import worker_pool
from .answers import answer
from .predict import loaded

logger = logging.getLogger(__name__)
# the columns file scoring adds, from each answer's keys
PREDICTED = {"predicted_label": "label", "predicted_score": "score", "predicted_flag": "flag"}
PREDICTED_TYPES = {"predicted_label": pa.string(), "predicted_score": pa.float64(),
                   "predicted_flag": pa.string()}

FORMATS = {".csv": "csv", ".tsv": "tsv", ".jsonl": "jsonl", ".json": "jsonl",
           ".parquet": "parquet"}
ADDED_COLUMNS = ("predicted_label", "predicted_score", "predicted_flag")
ROWS_PER_CHUNK = 4_096
BLOCK_BYTES = 4 << 20  # CSV / JSON read block: a few thousand reviews


def file_format(path: str | Path) -> str:
    """``csv``, ``tsv``, ``jsonl`` or ``parquet`` from the file's suffix; else a ValueError."""
    suffix = Path(path).suffix.lower()
    if suffix not in FORMATS:
        raise ValueError(f"{path}: unknown file type {suffix or '(no suffix)'!r}; use one of "
                         f"{', '.join(sorted(FORMATS))}")
    return FORMATS[suffix]


class FileRepairs(Repairs):
    """:class:`~sentiment.data.sources.Repairs` with what pyarrow's CSV reader needs: its
    invalid-row handler, the error naming a bad row's line, and the decoding of the text
    column."""

    def row(self, row) -> str:
        """pyarrow's invalid-row handler."""
        self.bad_rows.append((row.expected_columns, row.actual_columns, row.text))
        return "skip" if self.rules.on_bad_rows == "skip" else "error"

    def bad_row_error(self, path: Path) -> ValueError:
        """The error for the bad row that stopped reading, naming its line."""
        expected, actual, text = self.bad_rows[-1]
        line = _line_of(path, text)
        return ValueError(f"{path}: line {line if line else '?'} has {actual} fields where the "
                          f"header has {expected}; --on-bad-rows skip skips such rows")

    def decode(self, column: pa.Array, path: Path, first_row: int) -> pa.Array:
        """A binary text column as strings; invalid UTF-8 replaced and counted, or a ValueError
        naming the data row."""
        texts = []
        for offset, value in enumerate(column.to_pylist()):
            try:
                texts.append(None if value is None else value.decode("utf-8"))
            except UnicodeDecodeError as error:
                if self.rules.encoding_errors == "strict":
                    raise ValueError(f"{path}: invalid UTF-8 in the text of data row "
                                     f"{first_row + offset} ({error.reason}); "
                                     "--encoding-errors replace repairs it") from None
                texts.append(value.decode("utf-8", errors="replace"))
                self.repaired += 1
        return pa.array(texts, pa.string())


def _line_of(path: Path, text: str) -> int | None:
    """The first line of ``path`` that is ``text`` (to name a bad row)."""
    with open(path, encoding="utf-8", errors="replace") as lines:
        return next((n for n, line in enumerate(lines, 1) if line.rstrip("\r\n") == text), None)


def read_batches(path: str | Path, text_column: str, repairs: FileRepairs | None = None
                 ) -> tuple[pa.Schema, Iterator[pa.RecordBatch], int | None]:
    """``(schema, record batches, number of rows or None)`` of a file, streamed.

    The text column is read as a string whatever it looks like; a missing one is a ValueError
    listing the columns the file has. CSV/TSV: ``repairs`` says what to do with a row of the
    wrong field count and with invalid UTF-8 in the text, and counts what it did.
    """
    path = Path(path)
    repairs = repairs or FileRepairs()
    if not path.is_file():
        raise FileNotFoundError(f"no such file: {path}")
    kind = file_format(path)
    rows = None
    if kind == "parquet":
        # pre_buffer (pyarrow's default) keeps every row group read so far until the file is
        # closed, so memory grew with the file (BENCHMARKS.md, "Inference: predict, files,
        # serving"; apache/arrow#39808's kin)
        reader = pq.ParquetFile(path, pre_buffer=False, buffer_size=1 << 20)
        schema, rows = reader.schema_arrow, reader.metadata.num_rows
        _check_column(schema, text_column, path)
        batches = reader.iter_batches(batch_size=ROWS_PER_CHUNK)
    elif kind in ("csv", "tsv"):
        parse = pa_csv.ParseOptions(delimiter="\t" if kind == "tsv" else ",",
                                    newlines_in_values=True, invalid_row_handler=repairs.row)
        convert = pa_csv.ConvertOptions(column_types={text_column: pa.binary()},
                                        strings_can_be_null=True)
        with _naming_bad_rows(repairs, path):  # the first block is parsed here
            stream = pa_csv.open_csv(path, parse_options=parse, convert_options=convert,
                                     read_options=pa_csv.ReadOptions(block_size=BLOCK_BYTES))
        _check_column(stream.schema, text_column, path)
        where = stream.schema.get_field_index(text_column)
        schema = stream.schema.set(where, pa.field(text_column, pa.string()))
        batches = _decoded(stream, where, repairs, path)
    else:
        schema, batches = _json_lines(path, text_column, repairs)
    return schema, _rechunk(batches), rows


@contextlib.contextmanager
def _naming_bad_rows(repairs: FileRepairs, path: Path):
    """pyarrow's error for a CSV row of the wrong field count (``on_bad_rows="error"``) as a
    ValueError naming its line."""
    try:
        yield
    except pa.ArrowInvalid:
        if repairs.rules.on_bad_rows != "error" or not repairs.bad_rows:
            raise
        raise repairs.bad_row_error(path) from None


def _decoded(stream, where: int, repairs: FileRepairs, path: Path
             ) -> Iterator[pa.RecordBatch]:
    """The CSV stream's batches with the (binary) text column decoded."""
    rows = 0
    with _naming_bad_rows(repairs, path):
        for batch in stream:
            yield batch.set_column(where, batch.schema.field(where).with_type(pa.string()),
                                   repairs.decode(batch.column(where), path, rows + 1))
            rows += batch.num_rows


def _json_lines(path: Path, text_column: str, repairs: FileRepairs
                ) -> tuple[pa.Schema, Iterator[pa.RecordBatch]]:
    """JSON lines read with Python's json, ``ROWS_PER_CHUNK`` records a batch: the schema is
    inferred from the first chunk, in the first record's key order, the text column a
    string."""
    records = json_records(path, repairs)
    first = list(itertools.islice(records, ROWS_PER_CHUNK))
    if not first:
        raise ValueError(f"{path}: no JSON records")
    keys = list(dict.fromkeys(key for record in first for key in record))
    inferred = pa.Table.from_pylist(first).schema
    schema = pa.schema([pa.field(key, pa.string()) if key == text_column
                        else inferred.field(key) for key in keys])
    _check_column(schema, text_column, path, present=list(first[0]))

    def batches() -> Iterator[pa.RecordBatch]:
        chunk = first
        while chunk:
            yield pa.RecordBatch.from_pylist(chunk, schema=schema)
            chunk = list(itertools.islice(records, ROWS_PER_CHUNK))

    return schema, batches()


def _check_column(schema: pa.Schema, column: str, path: Path,
                  present: list[str] | None = None) -> None:
    """``present``: the columns the file really has, where the schema was forced to hold it."""
    names = list(schema.names)
    if column not in (names if present is None else present):
        raise ValueError(f"{path}: no column {column!r}; the file has {names} "
                         "(choose one with --text-column)")
    clash = [name for name in ADDED_COLUMNS if name in names]
    if clash:
        raise ValueError(f"{path} already has column(s) {clash}, which scoring adds; rename them")


def _rechunk(batches: Iterator[pa.RecordBatch]) -> Iterator[pa.RecordBatch]:
    for batch in batches:
        for start in range(0, batch.num_rows, ROWS_PER_CHUNK):
            yield batch.slice(start, ROWS_PER_CHUNK)


class _Writer:
    """Writes record batches as Parquet, CSV or JSON lines (to a temporary name, then renamed)."""

    def __init__(self, path: Path, schema: pa.Schema):
        self.path, self.kind = path, file_format(path)
        self.partial = path.with_name(f".{path.name}.partial")
        path.parent.mkdir(parents=True, exist_ok=True)
        if self.kind == "parquet":
            self.writer = pq.ParquetWriter(self.partial, schema)
        elif self.kind in ("csv", "tsv"):
            self.writer = pa_csv.CSVWriter(self.partial, schema, write_options=pa_csv.WriteOptions(
                delimiter="\t" if self.kind == "tsv" else ","))
        else:
            self.writer = open(self.partial, "w", encoding="utf-8")  # noqa: SIM115

    def write(self, batch: pa.RecordBatch) -> None:
        if self.kind == "jsonl":
            self.writer.write("".join(json.dumps(row, ensure_ascii=False, default=str) + "\n"
                                      for row in batch.to_pylist()))
        else:
            self.writer.write(batch)

    def close(self, complete: bool) -> None:
        self.writer.close()
        if complete:
            os.replace(self.partial, self.path)
        else:
            self.partial.unlink(missing_ok=True)


def score_batch(batch: pa.RecordBatch, text_column: str, model: TextClassifier,
                batch_size: int, mixed_precision: bool = True, neutral="default"
                ) -> tuple[pa.RecordBatch, int]:
    """``batch`` with ``predicted_label``, ``predicted_score`` and ``predicted_flag``
    (``unreadable`` or null: :func:`sentiment.inference.answers.answer`, as ``neutral`` for
    the band) added, and how many rows had no text (their predictions are null)."""
    texts = batch.column(text_column).to_pylist()
    present = [i for i, text in enumerate(texts) if text is not None and text.strip()]
    columns: dict[str, list] = {name: [None] * len(texts) for name in PREDICTED}
    if present:
        given = [texts[i] for i in present]
        results = answer(model.score(given, batch_size, mixed_precision), given, model, neutral)
        for i, result in zip(present, results, strict=True):
            for name, key in PREDICTED.items():
                columns[name][i] = result.get(key)
    for name, kind in PREDICTED_TYPES.items():
        batch = batch.append_column(name, pa.array(columns[name], kind))
    return batch, len(texts) - len(present)


def score_batches(batches: Iterator[pa.RecordBatch], text_column: str, model: TextClassifier,
                  batch_size: int, mixed_precision: bool = True, workers: int = 1,
                  neutral="default") -> Iterator[tuple[pa.RecordBatch, int]]:
    """:func:`score_batch` of each batch, in input order. ``workers`` > 1: that many batches are
    scored at once on threads with an equal share of torch's threads (one tokenizes while
    another is in the model); no more than ``workers`` batches are held at a time."""
    if workers == 1:
        for batch in batches:
            yield score_batch(batch, text_column, model, batch_size, mixed_precision, neutral)
        return
    with worker_pool(workers, "sentiment-score") as pool:
        pending: deque = deque()
        for batch in batches:
            pending.append(pool.submit(score_batch, batch, text_column, model, batch_size,
                                       mixed_precision, neutral))
            if len(pending) == workers:
                yield pending.popleft().result()
        while pending:
            yield pending.popleft().result()


class BatchScorer:
    """Scores batches of rows where a batch engine hands them over: a Ray Data
    ``map_batches`` callable (docs/inference.md), or any loop over Arrow tables or pandas frames.
    ``threads``: the scorer's threads (default: as they are; in a Ray actor, its ``num_cpus``):
    torch's in this process for a PyTorch model, the ONNX Runtime session's for an exported
    folder (which never imports torch, so a torch-free install scores on Ray too).

    The model is loaded once, when the scorer is built (once per Ray actor); each call returns
    the batch with the :data:`PREDICTED` columns added, every input column kept, in
    the batch's own format (a pyarrow Table or RecordBatch, or a pandas DataFrame). Rows without
    text keep their place with null predictions, as in :func:`score_file`.

        ds.map_batches(BatchScorer, fn_constructor_kwargs={"model": "imdb", "threads": 2},
                       batch_format="pyarrow", batch_size=1024,
                       compute=ray.data.ActorPoolStrategy(size=4), num_cpus=2)
    """

    def __init__(self, model: str | Path | None = None, text_column: str = "text",
                 batch_size: int = 64, mixed_precision: bool = True, quantize: str = "none",
                 threads: int | None = None, neutral="default"):
        path = resolve_model_path(model)
        if threads is not None and scored_by_torch(path):
            import torch  # Ray gives an actor as many torch threads as it has CPUs

            torch.set_num_threads(threads)
        # an exported folder gets its own session, on the actor's threads
        self.model = load_model(path, "cpu", quantize, threads)
        self.text_column = text_column
        self.batch_size = batch_size
        self.mixed_precision = mixed_precision
        self.neutral = neutral

    def __call__(self, batch):
        frame = None
        if not isinstance(batch, (pa.Table, pa.RecordBatch)):  # pandas
            frame, batch = batch, pa.Table.from_pandas(batch, preserve_index=False)
        _check_column(batch.schema, self.text_column, Path("batch"))
        scored, _ = score_batch(batch, self.text_column, self.model, self.batch_size,
                                self.mixed_precision, self.neutral)
        if frame is None:
            return scored
        result = scored.to_pandas()
        result.index = frame.index
        return result


def default_output(path: str | Path) -> Path:
    """``reviews.csv`` -> ``reviews.scored.csv``."""
    path = Path(path)
    return path.with_name(f"{path.stem}.scored{path.suffix}")


def score_file(
    input_path: str | Path,
    output_path: str | Path | None = None,
    text_column: str = "text",
    model: str | Path | TextClassifier | None = None,
    batch_size: int = 64,
    device: str | None = None,
    mixed_precision: bool = True,
    progress: bool = True,
    workers: int = 1,
    on_bad_rows: str = "error",
    encoding_errors: str = "replace",
    quantize: str = "none",
    neutral="default",
) -> dict:
    """Score every row of ``input_path`` into ``output_path`` (format from its suffix; default
    ``<input>.scored.<suffix>``); returns ``{"rows", "scored", "no_text", "seconds", ...}``.
    ``workers``: chunks scored at once (:func:`score_batches`). One is the default: unlike the
    server's small batches, a chunk's batches of 64 keep two torch threads busy, and two
    one-thread workers scored no faster with more memory (BENCHMARKS.md, "Inference: predict,
    files, serving").

    CSV/TSV: a row whose field count differs from the header's stops the run with its line
    number (``on_bad_rows="error"``) or is skipped and counted (``"skip"``); invalid UTF-8 in
    the text is replaced by U+FFFD and counted (``encoding_errors="replace"``) or stops the run
    naming the row (``"strict"``). Every good row is written, in order. ``quantize``: as
    :func:`sentiment.kinds.registry.load_model`'s (a folder exported to ONNX needs none:
    it is scored with ONNX Runtime as it was exported). ``neutral``: the band of a
    ``neutral`` answer, as :func:`sentiment.inference.predict.predict` takes it; a text the
    model mostly cannot read is ``unreadable`` in ``predicted_flag``."""
    if batch_size < 1:
        raise ValueError(f"batch_size must be >= 1, got {batch_size}")
    if workers < 1:
        raise ValueError(f"workers must be >= 1, got {workers}")
    output = Path(output_path) if output_path else default_output(input_path)
    file_format(output)
    if output.resolve() == Path(input_path).resolve():
        raise ValueError(f"the output {output} would overwrite the input")
    model = loaded(model, device, quantize)
    repairs = FileRepairs(RowRules(on_bad_rows, encoding_errors))
    schema, batches, total = read_batches(input_path, text_column, repairs)
    start = time.perf_counter()
    scored = score_batches(batches, text_column, model, batch_size, mixed_precision, workers,
                           neutral)
    rows, no_text = _write_scored(scored, schema, output, input_path, total, progress)
    seconds = time.perf_counter() - start
    _warn_of_repairs(input_path, text_column, rows, no_text, repairs)
    return {"input": str(input_path), "output": str(output), "rows": rows,
            "scored": rows - no_text, "no_text": no_text,
            "skipped_bad_rows": len(repairs.bad_rows), "repaired_encoding": repairs.repaired,
            "seconds": seconds, "rows_per_s": rows / seconds if seconds else float("nan")}


def _write_scored(scored: Iterator[tuple[pa.RecordBatch, int]], schema: pa.Schema,
                  output: Path, input_path, total: int | None, progress: bool
                  ) -> tuple[int, int]:
    """Write the scored batches to ``output`` (whole or not at all); ``(rows, no_text)``."""
    out_schema = schema
    for name, kind in PREDICTED_TYPES.items():
        out_schema = out_schema.append(pa.field(name, kind))
    writer = _Writer(output, out_schema)
    rows = no_text = 0
    complete = False
    try:
        with tqdm(total=total, unit=" rows", desc="score",
                  disable=None if progress else True) as bar:  # none where not a terminal
            for batch, missing in scored:
                writer.write(batch.cast(out_schema) if batch.schema != out_schema else batch)
                rows, no_text = rows + batch.num_rows, no_text + missing
                bar.update(batch.num_rows)
        complete = True
    except (pa.ArrowInvalid, pa.ArrowTypeError) as error:
        raise ValueError(f"{input_path}: cannot read row {rows + 1} onwards: {error}") from None
    finally:
        writer.close(complete)
    return rows, no_text


def _warn_of_repairs(input_path, text_column: str, rows: int, no_text: int,
                     repairs: FileRepairs) -> None:
    if no_text:
        logger.warning("%d of %d rows of %s had no text in %r; their predictions are empty",
                       no_text, rows, input_path, text_column)
    for count, what in ((len(repairs.bad_rows), "rows of the wrong field count skipped"),
                        (repairs.repaired, "texts with invalid UTF-8 repaired")):
        if count:
            logger.warning("%s: %d %s", input_path, count, what)
