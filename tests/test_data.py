from __future__ import annotations

import pytest
from conftest import IMDB, needs, synthetic_reviews, write_jsonl

from sentiment.data.sources import clean_text, load_reviews, split_validation


def test_clean_text_removes_html_breaks():
    assert clean_text("Good.<br /><br />Bad.<BR>x<br/>") == "Good.  Bad. x "


def test_jsonl_folder_loads_and_cleans(synthetic_dir):
    splits = load_reviews(synthetic_dir)
    assert set(splits) == {"train", "test"}
    assert len(splits["train"]) == 2000 and len(splits["test"]) == 200
    assert "<br" not in " ".join(splits["train"]["text"])
    assert set(splits["train"]["label"]) == {0, 1}


def test_csv_with_string_labels(tmp_path):
    for split in ("train", "test"):
        (tmp_path / f"{split}.csv").write_text('text,label\n"Nice one",pos\n"Bad one",negative\n')
    splits = load_reviews(tmp_path)
    assert splits["train"]["label"] == [1, 0]


def test_bad_label_names_value_and_file(tmp_path):
    # any two values are a binary task with their own names; the test file may not add a third
    write_jsonl(tmp_path / "train.jsonl", [{"text": "a", "label": 0}, {"text": "b", "label": 7}])
    write_jsonl(tmp_path / "test.jsonl", [{"text": "a", "label": 0}, {"text": "c", "label": 3}])
    with pytest.raises(ValueError, match=r"test\.jsonl: bad label 3 in data row 2"):
        load_reviews(tmp_path)
    write_jsonl(tmp_path / "train.jsonl", [{"text": "a", "label": 5}, {"text": "b", "label": 7},
                                           {"text": "c", "label": 2}])  # three classes
    with pytest.raises(ValueError, match=r"test\.jsonl: bad label 0 in data row 1; expected one "
                                         r"of \['2', '5', '7'\]"):
        load_reviews(tmp_path)
    write_jsonl(tmp_path / "train.jsonl", [{"text": "a", "label": 5}, {"text": "b", "label": 5}])
    with pytest.raises(ValueError, match=r"train\.jsonl: the labels have 1 distinct value"):
        load_reviews(tmp_path)


def test_missing_column_is_clear(tmp_path):
    write_jsonl(tmp_path / "train.jsonl", [{"review": "a", "label": 0}])
    write_jsonl(tmp_path / "test.jsonl", [{"review": "a", "label": 0}])
    with pytest.raises(ValueError, match="missing column"):
        load_reviews(tmp_path)


def test_acl_imdb_layout(tmp_path):
    for split in ("train", "test"):
        for name in ("neg", "pos"):
            folder = tmp_path / "aclImdb" / split / name
            folder.mkdir(parents=True)
            for i in range(3):
                (folder / f"{i}_1.txt").write_text(f"{name} review {i}<br />end")
    splits = load_reviews(tmp_path)
    assert len(splits["train"]) == 6
    assert sorted(splits["test"]["label"]) == [0, 0, 0, 1, 1, 1]
    assert splits["train"][0]["text"] == "neg review 0 end"


def test_missing_folder_and_files(tmp_path):
    with pytest.raises(FileNotFoundError):
        load_reviews(tmp_path / "nowhere" / "deeper")
    with pytest.raises(FileNotFoundError, match="expected train and test"):
        load_reviews(tmp_path)


def test_validation_split_is_stratified_and_seeded(synthetic_dir):
    train = load_reviews(synthetic_dir)["train"]
    a_train, a_valid = split_validation(train, 0.1, seed=3)
    b_train, b_valid = split_validation(train, 0.1, seed=3)
    _, c_valid = split_validation(train, 0.1, seed=4)
    assert len(a_valid) == 200 and len(a_train) == 1800
    assert a_valid["text"] == b_valid["text"] and a_valid["text"] != c_valid["text"]
    assert sum(a_valid["label"]) == 100
    assert not set(a_valid["text"]) & set(a_train["text"])
    with pytest.raises(ValueError):
        split_validation(train, 1.5)


@needs(IMDB)
def test_real_imdb_parquet_loads():
    splits = load_reviews(IMDB)
    assert len(splits["train"]) == 25_000 and len(splits["test"]) == 25_000
    assert sum(splits["test"]["label"]) == 12_500
    assert not any("<br />" in t for t in splits["train"]["text"][:2000])


def test_synthetic_rows_are_balanced():
    rows = synthetic_reviews(10, seed=0)
    assert sum(r["label"] for r in rows) == 5


def test_a_file_is_cached_by_its_content_not_its_path(tmp_path, monkeypatch):
    """Every spelling of one path, and every copy of one file, reach the datasets library as
    one content-keyed file, so its cache keeps one copy (2.2 GB had grown in an hour)."""
    import shutil

    from sentiment.data import sources
    from sentiment.runtime.cache import by_content

    monkeypatch.setenv("SENTIMENT_CACHE", str(tmp_path / "cache"))
    (tmp_path / "a").mkdir()
    original = tmp_path / "a" / "reviews.csv"
    original.write_text("text,label\nA fine film.,1\nDull.,0\n")
    copy = tmp_path / "copy.csv"
    shutil.copy(original, copy)
    spellings = [original, tmp_path / "a" / ".." / "a" / "reviews.csv", copy]
    assert len({by_content(path) for path in spellings}) == 1
    cached = by_content(original)
    original.write_text("text,label\nA bad film.,0\nDull.,0\n")  # rewritten in place
    assert cached.read_text() == copy.read_text()  # a copy, not a link to the old content
    shutil.copy(copy, original)
    other = tmp_path / "other.csv"
    other.write_text("text,label\nAnother film.,1\n")
    assert by_content(other) != by_content(original)
    read = []
    monkeypatch.setattr(sources, "by_content", lambda path: read.append(path) or by_content(path))
    assert sources._read_file(copy)["text"] == ["A fine film.", "Dull."]
    assert read == [copy]


def test_three_or_five_classes_may_include_imdbs_own_label_names(tmp_path):
    """negative/neutral/positive and 0-4 stars are classes of their own (a softmax head keeps
    their names), though 0/1 and negative/positive alone would be IMDB's binary labels; a value
    on one or two rows among IMDB-style labels is still a mistake, named with its row."""
    for labels, names in ((["negative", "neutral", "positive"],
                           ["negative", "neutral", "positive"]),
                          ([0, 1, 2, 3, 4], ["0", "1", "2", "3", "4"])):
        rows = [{"text": f"review {i}", "label": labels[i % len(labels)]} for i in range(60)]
        write_jsonl(tmp_path / "train.jsonl", rows)
        write_jsonl(tmp_path / "test.jsonl", rows[:10])
        splits = load_reviews(tmp_path)
        assert splits["train"].features["label"].names == names
        assert sorted(set(splits["train"]["label"])) == list(range(len(names)))
    rows = [{"text": f"review {i}", "label": i % 2} for i in range(400)]
    rows[17]["label"] = 2
    write_jsonl(tmp_path / "train.jsonl", rows)
    with pytest.raises(ValueError, match=r"bad label 2 in data row 18; expected 0/1 .*1 of 400"):
        load_reviews(tmp_path)
