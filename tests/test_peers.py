"""benchmarks/peers.py: fastText's cleaning and grid choice, the timing in turns, the table, and
that the peers read the split our models were trained on. The peers' packages are optional:
the tests that need one skip without it."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
from conftest import IMDB, needs, synthetic_reviews

from benchmarks import peers

ROOT = Path(__file__).resolve().parents[1]
SPLIT_MODEL = ROOT / "sentiment" / "models" / "imdb" / "reviews"


def test_fasttext_text_lowercases_drops_breaks_and_splits_punctuation():
    text = "Great movie!<br /><br />I LOVED it, didn't I?<BR>The end."
    assert peers.fasttext_text(text) == (
        "great movie ! i loved it , didn ' t i ? the end .")
    assert "\n" not in peers.fasttext_text("two\nlines")


def test_grid_parses_in_order_and_refuses_bad_entries():
    grid = peers.parse_grid(["wordNgrams=1,2", "lr=0.1,0.5", "dim=50"])
    assert grid == {"wordNgrams": [1, 2], "lr": [0.1, 0.5], "dim": [50]}
    assert peers.grid_settings(grid) == [
        {"wordNgrams": 1, "lr": 0.1, "dim": 50}, {"wordNgrams": 1, "lr": 0.5, "dim": 50},
        {"wordNgrams": 2, "lr": 0.1, "dim": 50}, {"wordNgrams": 2, "lr": 0.5, "dim": 50}]
    for bad, message in (("epochs=5", "unknown key"), ("epoch", "KEY=V1,V2"),
                         ("epoch=five", "int values")):
        with pytest.raises(ValueError, match=message):
            peers.parse_grid([bad])


def test_choose_setting_takes_the_best_validation_accuracy_first_of_equals():
    trials = [{"settings": {"epoch": 5}, "valid_accuracy": 0.88},
              {"settings": {"epoch": 10}, "valid_accuracy": None, "error": "Encountered NaN."},
              {"settings": {"epoch": 20}, "valid_accuracy": 0.90},
              {"settings": {"epoch": 40}, "valid_accuracy": 0.90}]
    assert peers.choose_setting(trials)["settings"] == {"epoch": 20}
    with pytest.raises(RuntimeError, match="every fastText setting failed"):
        peers.choose_setting([trials[1]])


def test_a_missing_peer_names_the_extra(monkeypatch):
    monkeypatch.setitem(peers.PEER_MODULES, "vader", ("no_such_module_xyz", "vaderSentiment"))
    with pytest.raises(ImportError, match=r'pip install -e "\.\[peers\]"'):
        peers.import_peer("vader")


def test_fasttext_search_returns_the_setting_best_on_validation(tmp_path):
    pytest.importorskip("fasttext")
    rows = sorted(synthetic_reviews(2000, seed=1), key=lambda row: row["label"])  # IMDB: by label
    valid = synthetic_reviews(200, seed=2)
    train = ([row["text"] for row in rows], [row["label"] for row in rows])
    valid_pair = ([row["text"] for row in valid], [row["label"] for row in valid])
    grid = {"epoch": [1, 5], "lr": [0.01, 0.5], "dim": [10]}
    model, chosen, trials = peers.fasttext_search(train, valid_pair, grid, threads=1,
                                                  log=lambda line: None)
    assert len(trials) == 4
    assert chosen["valid_accuracy"] == max(trial["valid_accuracy"] for trial in trials)
    assert chosen is peers.choose_setting(trials)
    predicted = peers.fasttext_scorer(model)(valid_pair[0])
    assert float((predicted == np.asarray(valid_pair[1])).mean()) == chosen["valid_accuracy"]
    assert chosen["valid_accuracy"] > 0.9  # learns although the file given is sorted by label


def test_timing_goes_in_turns_after_one_warm_up_each():
    calls = []

    def fake(name):
        def score(texts):
            calls.append((name, len(texts)))
            return np.ones(len(texts), dtype=np.int64)
        return score

    resets = []
    rates = peers.time_in_turns({"a": fake("a"), "b": fake("b")}, ["x"] * 10, rounds=3,
                                warm_up=["y"] * 4, before_each=lambda: resets.append(1))
    assert calls == [("a", 4), ("b", 4)] + [("a", 10), ("b", 10)] * 3
    assert len(resets) == 6
    assert {name: len(values) for name, values in rates.items()} == {"a": 3, "b": 3}
    assert all(rate > 0 for values in rates.values() for rate in values)


def test_the_table_shows_median_range_interval_and_settings():
    speed = peers.rate_summary([100.0, 300.0, 200.0])
    assert (speed["median"], speed["min"], speed["max"]) == (200.0, 100.0, 300.0)
    labels = np.array([1, 0] * 50)
    test = peers.accuracy_figure(labels, np.where(np.arange(100) < 90, labels, 1 - labels),
                                 "test (100 reviews)")
    assert test["accuracy"] == 0.9 and test["n"] == 100 and test["split"] == "test (100 reviews)"
    assert test["ci95"][0] < 0.9 < test["ci95"][1]
    table = peers.markdown_table([{"name": "fake", "reviews_per_s": speed, "test": test,
                                   "settings": "compound >= 0"}])
    lines = table.splitlines()
    assert lines[0].startswith("| scorer | reviews/s median (min–max) | IMDB test accuracy")
    assert lines[2] == (f"| fake | 200 (100–300) | 0.9000 ({test['ci95'][0]:.4f}–"
                        f"{test['ci95'][1]:.4f}), n = 100 | compound >= 0 |")


def test_the_split_is_the_one_our_models_were_fitted_on(synthetic_dir):
    from sentiment.train.stacking import own_splits

    config, splits = peers._splits(str(SPLIT_MODEL), str(synthetic_dir), None)
    _, theirs = own_splits(SPLIT_MODEL, str(synthetic_dir))
    for name in ("train", "valid", "test"):
        assert list(splits[name]["text"]) == list(theirs[name]["text"])
    assert len(splits["valid"]) == round(config.data.valid_fraction * 2000)


@needs(IMDB)
def test_the_imdb_split_is_22500_training_and_2500_validation_reviews():
    from sentiment.train.stacking import own_splits

    _, splits = peers._splits(str(SPLIT_MODEL), str(IMDB), None)
    assert [len(splits[name]) for name in ("train", "valid", "test")] == [22_500, 2_500, 25_000]
    assert np.bincount(splits["valid"]["label"]).tolist() == [1_250, 1_250]
    _, theirs = own_splits(SPLIT_MODEL, str(IMDB))
    assert list(splits["valid"]["text"]) == list(theirs["valid"]["text"])


@needs(IMDB)
def test_the_command_runs_end_to_end(tmp_path, capsys):
    output = tmp_path / "peers.json"
    present = [peer for peer, (module, _) in peers.PEER_MODULES.items()
               if peer != "fasttext" and _importable(module)]
    result = peers.main(["--data", str(IMDB), "--models", "imdb-fast", "--peers", *present,
                         "--reviews", "8", "--rounds", "2", "--accuracy-reviews", "40",
                         "--output", str(output)])
    written = json.loads(output.read_text())
    assert written["split"]["train"] == 22_500 and written["split"]["valid"] == 2_500
    names = {"vader": "VADER", "textblob": "TextBlob"}
    assert set(written["scorers"]) == {"imdb-fast", *(names[peer] for peer in present)}
    row = written["scorers"]["imdb-fast"]
    assert len(row["reviews_per_s"]["per_round"]) == 2
    assert row["test"]["n"] == 40 and row["test"]["split"].startswith("test (40 reviews")
    assert written["command"].startswith("python -m benchmarks.peers --data")
    assert written["machine"]["cpu"] and "torch" in written["versions"]
    assert result["table"] in capsys.readouterr().out


def _importable(module: str) -> bool:
    import importlib

    try:
        importlib.import_module(module)
    except ImportError:
        return False
    return True
