"""The report's sentence section (issue 44): the hand-written sets of benchmarks/sentences, the
dev half unless the held-out half is asked for, scored through any kind's text_probabilities."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

from sentiment.kinds.decisions import Answers
from sentiment.kinds.registry import load_model
from sentiment.report import sentences
from sentiment.report.metrics import report_markdown

FOLDER = Path(__file__).resolve().parents[1] / "benchmarks" / "sentences"


def lines_of(half: str) -> dict[str, list[str]]:
    """Every text of ``half`` in each file, as the files hold them."""
    found = {}
    for name in sentences.FILES:
        rows = [json.loads(line) for line in (FOLDER / f"{name}.jsonl").read_text().splitlines()]
        found[name] = [row["text"] for row in rows if row["split"] == half]
    return found


class Recording:
    """A loaded model whose every text scored or counted is written down."""

    def __init__(self, model, monkeypatch):
        self.model, self.scored, self.counted = model, [], []
        real = sentences.known_shares

        def counting(texts, words):
            self.counted += list(texts)
            return real(texts, words)

        monkeypatch.setattr(sentences, "known_shares", counting)

    def __getattr__(self, name):
        return getattr(self.model, name)

    def text_probabilities(self, texts, *args, **kwargs):
        self.scored.append(list(texts))
        return self.model.text_probabilities(texts, *args, **kwargs)


def test_the_section_reads_the_dev_half_only_in_one_batch(trained_model, monkeypatch):
    model = Recording(load_model(trained_model), monkeypatch)
    section = sentences.sentence_section(model)
    dev, heldout = lines_of("dev"), lines_of("heldout")
    assert section["half"] == "dev"
    assert section["lines"] == {name: len(texts) for name, texts in dev.items()}
    assert section["lines"] == {"opinions": 240, "facts": 60, "foreign": 46}
    # one call scores the English lines; the known shares read those and the foreign ones
    assert len(model.scored) == 1 and model.scored[0] == dev["opinions"] + dev["facts"]
    assert sorted(model.counted) == sorted(dev["opinions"] + dev["facts"] + dev["foreign"])
    read = set(model.counted) | set(model.scored[0])
    assert not read & (set(sum(heldout.values(), [])) - set(sum(dev.values(), [])))
    assert set(section) == {"half", "folder", "lines", "unreadable", "opinions", "neutral",
                            "seconds"}
    assert set(section["opinions"]) == {"n", "accuracy", "ece"}
    assert section["opinions"]["n"] == 240 and 0 <= section["opinions"]["accuracy"] <= 1
    assert 0 <= section["opinions"]["ece"] <= 1
    neutral = section["neutral"]
    assert neutral["band"] is None and neutral["model_band"] is None  # no answers.json
    assert [row["half_width"] for row in neutral["by_half_width"]] == [0.1, 0.2, 0.3]
    assert neutral["by_half_width"][1]["band"] == pytest.approx([0.3, 0.7])
    for row in neutral["by_half_width"]:
        assert set(row) == {"half_width", "band", "precision", "recall",
                            "opinions_outside_and_right"}
        assert 0 <= row["recall"] <= 1
    # wider bands take in at least the facts a narrower one does
    recalls = [row["recall"] for row in neutral["by_half_width"]]
    assert recalls == sorted(recalls)
    flags = section["unreadable"]
    assert flags["below"] == model.answers.unreadable_below
    assert flags["n_foreign"] == 46 and flags["n_english"] == 300
    assert 0 <= flags["foreign"] <= 1 and 0 <= flags["english"] <= 1


def test_the_held_out_half_is_read_only_when_asked(trained_model, monkeypatch):
    model = Recording(load_model(trained_model), monkeypatch)
    section = sentences.sentence_section(model, "heldout")
    heldout = lines_of("heldout")
    assert section["half"] == "heldout"
    assert section["lines"] == {"opinions": 240, "facts": 59, "foreign": 46}
    assert model.scored == [heldout["opinions"] + heldout["facts"]]
    with pytest.raises(ValueError, match="dev.*heldout"):
        sentences.read_sentences("test")


class Known:
    """A negative/positive model with chosen probabilities: opinions sure and right except one,
    facts at 0.45 or 0.65."""

    labels = ["negative", "positive"]
    answers = Answers((0.4, 0.6), 0.6)
    words = frozenset()  # knows no word: every line is flagged

    def text_probabilities(self, texts, batch_size=64, mixed_precision=True):
        rows = {row["text"]: row for name in ("opinions", "facts")
                for row in map(json.loads, (FOLDER / f"{name}.jsonl").read_text().splitlines())}
        probs = []
        for i, text in enumerate(texts):
            label = rows[text]["label"]
            probs.append({"positive": 0.95, "negative": 0.05}.get(label, 0.45 + 0.2 * (i % 2)))
        probs[0] = 0.5  # the first opinion (positive) inside the band, and right
        return np.asarray(probs)


def test_band_figures_count_facts_inside_and_opinions_outside():
    section = sentences.sentence_section(Known())
    assert section["opinions"]["accuracy"] == 1.0
    own = section["neutral"]["model_band"]
    facts_inside = sum(0.4 < 0.45 + 0.2 * (i % 2) < 0.6 for i in range(240, 300))
    assert facts_inside == 30
    assert own["recall"] == pytest.approx(30 / 60)
    assert own["precision"] == pytest.approx(30 / 31)  # one opinion inside too
    assert own["opinions_outside_and_right"] == pytest.approx(239 / 240)
    widest = section["neutral"]["by_half_width"][2]  # (0.2, 0.8): every fact, one opinion
    assert widest["recall"] == 1.0 and widest["precision"] == pytest.approx(60 / 61)
    assert section["unreadable"]["foreign"] == 1.0 and section["unreadable"]["english"] == 1.0
    shown = report_markdown({**_bare_report(), "sentences": section})
    assert "## Sentences (benchmarks/sentences, dev half)" in shown
    assert "| the model's own: (0.40, 0.60) | 0.9677 | 0.5000 | 0.9958 |" in shown


def test_without_the_files_the_section_says_so(tmp_path):
    section = sentences.sentence_section(Known(), folder=tmp_path)
    assert set(section) == {"half", "skipped"} and "not here" in section["skipped"]
    shown = report_markdown({**_bare_report(), "sentences": section})
    assert "Skipped: the sentence sets" in shown


def test_reports_hold_the_section(trained_model, synthetic_dir, tmp_path):
    """The report written at the end of training (a bare module, wrapped) and a saved model's
    report with the held-out half asked for."""
    trained = json.loads((trained_model / "report.json").read_text())
    assert trained["sentences"]["half"] == "dev" and trained["sentences"]["opinions"]["n"] == 240
    assert "## Sentences (benchmarks/sentences, dev half)" in (
        trained_model / "report.md").read_text()
    from sentiment.cli import main as commands

    assert commands.run("evaluate", ["--model", str(trained_model), "--data", str(synthetic_dir),
                                     "--no-baseline", "--sentences", "heldout", "--output",
                                     str(tmp_path)]) == 0
    report = json.loads((tmp_path / "report.json").read_text())
    assert report["sentences"]["half"] == "heldout"
    assert report["sentences"]["lines"] == {"opinions": 240, "facts": 59, "foreign": 46}
    assert "no band" in (tmp_path / "report.md").read_text()


def _bare_report() -> dict:
    """The least report.md renders."""
    from sentiment.report.metrics import build_report

    return build_report([0, 1], [0.2, 0.9], ["a", "b"], [1, 1])
