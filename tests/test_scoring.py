"""Batch scoring of files: every row kept in order, columns kept, bounded chunks, clear errors."""

from __future__ import annotations

import json

import pyarrow as pa
import pyarrow.csv as pa_csv
import pyarrow.parquet as pq
import pytest

from sentiment import predict
from sentiment.cli import main as commands
from sentiment.inference import files as scoring
from sentiment.inference.files import score_file

TEXTS = ["Dull and awful.", "Loved it, brilliant!", None, "The worst waste of time.", "  ",
         "Superb, moving, great.", 'A "quoted", comma, film\nover two lines. Wonderful.']


def _table() -> pa.Table:
    return pa.table({"id": list(range(len(TEXTS))), "review": TEXTS,
                     "stars": [1.0, 9.5, None, 2.0, 5.0, 10.0, 8.0]})


def _write(table: pa.Table, path) -> None:
    if path.suffix == ".parquet":
        pq.write_table(table, path)
    elif path.suffix == ".csv":
        pa_csv.write_csv(table, path)
    else:
        path.write_text("".join(json.dumps(row) + "\n" for row in table.to_pylist()))


def _read(path) -> list[dict]:
    if path.suffix == ".parquet":
        return pq.read_table(path).to_pylist()
    if path.suffix == ".csv":
        return pa_csv.read_csv(path).to_pylist()
    return [json.loads(line) for line in path.read_text().splitlines()]


@pytest.mark.parametrize("source, target", [(".csv", ".parquet"), (".jsonl", ".csv"),
                                            (".parquet", ".jsonl")])
def test_every_row_kept_in_order_with_its_columns(trained_model, tmp_path, monkeypatch,
                                                  source, target):
    monkeypatch.setattr(scoring, "ROWS_PER_CHUNK", 3)  # several chunks, one split mid-file
    given, scored = tmp_path / f"reviews{source}", tmp_path / f"scored{target}"
    _write(_table(), given)
    summary = score_file(given, scored, "review", trained_model, batch_size=2, progress=False)
    assert summary["rows"] == 7 and summary["scored"] == 5 and summary["no_text"] == 2
    rows = _read(scored)
    assert [r["id"] for r in rows] == list(range(7))
    assert list(rows[0]) == ["id", "review", "stars", "predicted_label", "predicted_score",
                            "predicted_flag"]
    assert rows[6]["review"] == TEXTS[6]  # quotes, commas and a newline survive
    expected = predict([t for t in TEXTS if t and t.strip()], model=trained_model)
    got = [r for r in rows if r["predicted_label"] not in (None, "")]
    assert [r["predicted_label"] for r in got] == [e["label"] for e in expected]
    assert [r["predicted_score"] for r in got] == pytest.approx([e["score"] for e in expected])
    assert rows[2]["predicted_label"] in (None, "") and rows[4]["predicted_score"] in (None, "")
    assert not list(tmp_path.glob(".*partial"))


def test_workers_keep_the_order_and_hold_no_more_chunks_than_workers(trained_model, tmp_path,
                                                                     monkeypatch):
    import random
    import threading
    import time

    monkeypatch.setattr(scoring, "ROWS_PER_CHUNK", 2)
    texts = [f"{TEXTS[i % 2]} {i}" for i in range(30)]
    given = tmp_path / "reviews.parquet"
    pq.write_table(pa.table({"id": list(range(30)), "review": texts}), given)
    original, lock = scoring.score_batch, threading.Lock()
    seen = {"inside": 0, "most": 0}

    def uneven(*args):  # chunks finish out of order
        with lock:
            seen["inside"] += 1
            seen["most"] = max(seen["most"], seen["inside"])
        time.sleep(random.Random(args[0].num_rows + seen["inside"]).uniform(0, 0.03))
        try:
            return original(*args)
        finally:
            with lock:
                seen["inside"] -= 1

    monkeypatch.setattr(scoring, "score_batch", uneven)
    one = score_file(given, tmp_path / "one.parquet", "review", trained_model, progress=False,
                     workers=1)
    three = score_file(given, tmp_path / "three.parquet", "review", trained_model,
                       progress=False, workers=3)
    assert one["rows"] == three["rows"] == 30 and seen["most"] == 3
    rows = _read(tmp_path / "three.parquet")
    assert [r["id"] for r in rows] == list(range(30))
    alone = _read(tmp_path / "one.parquet")
    assert [r["review"] for r in rows] == [r["review"] for r in alone] == texts
    assert [r["predicted_score"] for r in rows] == pytest.approx(
        [r["predicted_score"] for r in alone], abs=1e-3)  # one torch thread vs two
    expected = predict(texts, model=trained_model)
    assert [r["predicted_label"] for r in rows] == [e["label"] for e in expected]
    with pytest.raises(ValueError, match="workers"):
        score_file(given, tmp_path / "x.parquet", "review", trained_model, workers=0)


def test_errors_name_the_file_and_the_columns(trained_model, tmp_path):
    given = tmp_path / "reviews.csv"
    _write(_table(), given)
    with pytest.raises(ValueError, match=r"no column 'text'.*'review'"):
        score_file(given, tmp_path / "out.parquet", "text", trained_model, progress=False)
    with pytest.raises(ValueError, match="unknown file type '.xlsx'"):
        score_file(given, tmp_path / "out.xlsx", "review", trained_model, progress=False)
    with pytest.raises(FileNotFoundError, match="nope.csv"):
        score_file(tmp_path / "nope.csv", None, "review", trained_model, progress=False)
    with pytest.raises(ValueError, match="overwrite the input"):
        score_file(given, given, "review", trained_model, progress=False)
    scored = tmp_path / "reviews.scored.csv"
    score_file(given, None, "review", trained_model, progress=False)  # the default output name
    with pytest.raises(ValueError, match="predicted_label"):
        score_file(scored, tmp_path / "again.csv", "review", trained_model, progress=False)
    assert not (tmp_path / "out.parquet").exists()


def test_failure_midway_leaves_no_output(trained_model, tmp_path, monkeypatch):
    given = tmp_path / "reviews.parquet"
    _write(_table(), given)
    calls = []

    def failing(*args, **kwargs):
        calls.append(1)
        if len(calls) == 2:
            raise RuntimeError("disk on fire")
        return original(*args, **kwargs)

    original = scoring.score_batch
    monkeypatch.setattr(scoring, "ROWS_PER_CHUNK", 3)
    monkeypatch.setattr(scoring, "score_batch", failing)
    with pytest.raises(RuntimeError):
        score_file(given, tmp_path / "out.parquet", "review", trained_model, progress=False)
    assert not list(tmp_path.glob("*out.parquet*"))


def test_command_scores_a_file(trained_model, tmp_path, capsys):
    given, scored = tmp_path / "reviews.jsonl", tmp_path / "scored.parquet"
    _write(_table(), given)
    assert commands.main(["predict", "--model", str(trained_model), "--input", str(given),
                          "--text-column", "review", "--output", str(scored),
                          "--no-progress"]) == 0
    summary = json.loads(capsys.readouterr().out)
    assert summary["rows"] == 7 and summary["no_text"] == 2
    assert pq.read_table(scored).num_rows == 7
    assert commands.main(["predict", "--model", str(trained_model), "--input", str(given)]) == 1
    err = capsys.readouterr().err
    assert "no column 'text'" in err and "Traceback" not in err


def test_reading_a_parquet_file_holds_a_batch_not_the_file(tmp_path):
    """pyarrow's pre-buffering kept every row group read until the file closed: memory grew
    with the file (0.8 GB over a million reviews)."""
    path = tmp_path / "many-groups.parquet"
    rows = 10 * scoring.ROWS_PER_CHUNK
    texts = [f"review {i} " + "so very long and somewhat dull " * 10 for i in range(rows)]
    pq.write_table(pa.table({"text": texts}), path, row_group_size=1_000, compression="none")
    one_batch = scoring.ROWS_PER_CHUNK * len(texts[0])
    baseline = pa.total_allocated_bytes()
    _, batches, total = scoring.read_batches(path, "text")
    peak = 0
    for batch in batches:
        peak = max(peak, pa.total_allocated_bytes() - baseline)
    assert total == rows and peak < 3 * one_batch  # the file is 10 batches


BAD_CSV = (b'id,review\n1,"Loved it, brilliant!"\n2,"Awful \xff boring film"\n3,a,b,c\n4,\n'
           b'5,"Superb, moving film."\n')


def test_bad_rows_and_bytes_are_skipped_or_repaired_and_counted(trained_model, tmp_path):
    """A CSV with an invalid UTF-8 byte, a ragged row and an empty text: every good row is
    scored in order, the repairs counted; the defaults stop at the ragged row, naming it."""
    source = tmp_path / "bad.csv"
    source.write_bytes(BAD_CSV)
    with pytest.raises(ValueError, match=r"line 4 has 4 fields where the header has 2"):
        score_file(source, tmp_path / "out.csv", "review", str(trained_model), progress=False)
    assert not (tmp_path / "out.csv").exists()
    summary = score_file(source, tmp_path / "out.csv", "review", str(trained_model),
                         progress=False, on_bad_rows="skip")
    assert (summary["rows"], summary["scored"], summary["no_text"]) == (4, 3, 1)
    assert summary["skipped_bad_rows"] == 1 and summary["repaired_encoding"] == 1
    rows = _read(tmp_path / "out.csv")
    assert [r["id"] for r in rows] == [1, 2, 4, 5]
    assert rows[1]["review"] == "Awful \ufffd boring film" and not rows[2]["predicted_label"]
    expected = predict(["Loved it, brilliant!", "Awful \ufffd boring film",
                        "Superb, moving film."], model=trained_model)
    assert [rows[i]["predicted_label"] for i in (0, 1, 3)] == [e["label"] for e in expected]
    with pytest.raises(ValueError, match=r"invalid UTF-8 in the text of data row 2"):
        score_file(source, tmp_path / "strict.csv", "review", str(trained_model),
                   progress=False, on_bad_rows="skip", encoding_errors="strict")


def test_the_same_rules_for_training_and_cross_domain_files(trained_model, tmp_path):
    from conftest import synthetic_reviews

    from sentiment.data.sources import RowRules, read_labelled
    from sentiment.train.evaluation import evaluate_cross_domain

    lines = [b"text,label"] + [f'"{r["text"]}",{r["label"]}'.encode()
                               for r in synthetic_reviews(60, seed=4)]
    lines[3] = b'"a ragged row",1,extra,fields'
    lines[5] = lines[5].replace(b"the", b"th\xffe", 1)
    source = tmp_path / "labelled.csv"
    source.write_bytes(b"\n".join(lines) + b"\n")
    with pytest.raises(ValueError, match=r"--on-bad-rows skip"):
        read_labelled(source)
    rows, _ = read_labelled(source, rules=RowRules("skip"))
    assert len(rows) == 59 and any("\ufffd" in text for text in rows["text"])
    report = evaluate_cross_domain(trained_model, source, tmp_path / "report",
                                   baseline=False, rules=RowRules("skip"))
    assert report["n"] == 59


def test_bad_json_lines_are_skipped_or_named_and_counted(trained_model, tmp_path):
    source = tmp_path / "bad.jsonl"
    source.write_bytes(b'{"id": 1, "review": "Loved it, brilliant!"}\n'
                       b'{"id": 2, "review": "good \\ud800 film"}\n'
                       b'{"id": 3, "review": "cut off\n'
                       b'{"id": 4, "review": "Awful \xff boring film"}\n'
                       b'\n'
                       b'{"id": 5, "review": ""}\n'
                       b'{"id": 6, "review": "Superb, moving film."}\n')
    with pytest.raises(ValueError, match=r"line 3 is not a JSON object"):
        score_file(source, tmp_path / "out.jsonl", "review", str(trained_model), progress=False)
    summary = score_file(source, tmp_path / "out.jsonl", "review", str(trained_model),
                         progress=False, on_bad_rows="skip")
    assert (summary["rows"], summary["scored"], summary["no_text"]) == (5, 4, 1)
    assert summary["skipped_bad_rows"] == 1 and summary["repaired_encoding"] == 2
    rows = _read(tmp_path / "out.jsonl")
    assert [r["id"] for r in rows] == [1, 2, 4, 5, 6]
    assert rows[1]["review"] == "good \ufffd film"
    assert rows[2]["review"] == "Awful \ufffd boring film"
    assert rows[3]["predicted_label"] is None and rows[4]["predicted_label"] == "positive"
    with pytest.raises(ValueError, match=r"line 2 holds a lone surrogate"):
        score_file(source, tmp_path / "strict.jsonl", "review", str(trained_model),
                   progress=False, on_bad_rows="skip", encoding_errors="strict")


def test_a_broken_json_line_in_a_training_file_is_named_or_skipped(tmp_path):
    from conftest import synthetic_reviews

    from sentiment.data.sources import RowRules, read_labelled

    lines = [json.dumps(r) for r in synthetic_reviews(40, seed=5)]
    lines[6] = '{"text": "cut off'
    lines[9] = json.dumps({"text": "a \ud800 surrogate", "label": 1})
    source = tmp_path / "labelled.jsonl"
    source.write_text("\n".join(lines) + "\n")
    with pytest.raises(ValueError, match=r"line 7 is not a JSON object"):
        read_labelled(source)
    rows, _ = read_labelled(source, rules=RowRules("skip"))
    assert len(rows) == 39 and "a \ufffd surrogate" in rows["text"]
