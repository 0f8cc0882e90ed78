"""The behavioural suite: pass rates computed as each kind of test defines them, and the suite
in the evaluation report."""

from __future__ import annotations

import json

from sentiment.report.checklist import DIRECTION_TOLERANCE, run_checklist


def test_pass_rates_follow_each_kind_of_test():
    always_positive = run_checklist(lambda texts: [0.9] * len(texts))
    assert always_positive["short positive statements"]["pass_rate"] == 1
    assert always_positive["short negative statements"]["pass_rate"] == 0
    assert always_positive["short negative statements"]["failures"][0]["p_positive"] == 0.9
    assert always_positive["names change nothing"]["pass_rate"] == 1
    assert always_positive["appending a complaint lowers P(positive)"]["pass_rate"] == 1

    def keywords(texts):  # reads "not" and the last clause: what a good model should do
        scores = []
        for text in texts:
            last = text.split(" but ")[-1].lower()
            good = any(w in last for w in ("great", "wonderful", "excellent", "brilliant",
                                           "amazing", "superb", "fantastic", "enjoyable",
                                           "loved", "enjoyed", "adored", "liked", "fine"))
            good = good != (" not " in last)
            if text.endswith(("It was terrible.", "I hated it.", "A boring waste of time.")):
                good = False
            scores.append(0.8 if good else 0.2)
        return scores

    results = run_checklist(keywords)
    assert results["negated negative is positive"]["pass_rate"] == 1
    assert results["contrast: negative, but positive"]["pass_rate"] == 1
    assert results["appending a complaint lowers P(positive)"]["pass_rate"] == 1
    # a complaint that raises P(positive) by more than the tolerance fails
    rising = run_checklist(lambda texts: [0.5 + (2 * DIRECTION_TOLERANCE if "hated" in t
                                                 else 0) for t in texts])
    assert rising["appending a complaint lowers P(positive)"]["pass_rate"] < 1


def test_the_report_holds_the_suite(trained_model):
    report = json.loads((trained_model / "report.json").read_text())
    assert {"short negative statements", "names change nothing"} <= set(report["behaviour"])
    assert "CheckList" in (trained_model / "report.md").read_text()
