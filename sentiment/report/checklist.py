"""A behavioural test suite in the CheckList style (Ribeiro et al., 2020) for a negative/positive
classifier: what a person types first, which no accuracy figure shows.

- **Minimum functionality** (MFT): short statements with a clear label — plain praise and
  complaints, each negated, and a contrast with "but" (the clause after it decides).
- **Invariance** (INV): changing a name, a place or the final punctuation changes no label.
- **Directional** (DIR): appending clear praise does not lower P(positive), appending a clear
  complaint does not raise it (by more than ``DIRECTION_TOLERANCE``).

The templates are this package's own. :func:`run_checklist` scores them all in one batch and
returns each test's pass rate and its first failures; :func:`model_checklist` runs it on a
loaded model.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from itertools import product

from ..config import DEFAULT_LABELS

DIRECTION_TOLERANCE = 0.02
SUBJECTS = ["The movie", "The film", "It", "This movie", "The acting", "The story", "The plot",
            "The ending"]
POSITIVE = ["great", "wonderful", "excellent", "brilliant", "amazing", "superb", "fantastic",
            "enjoyable"]
NEGATIVE = ["terrible", "awful", "boring", "dull", "bad", "horrible", "dreadful",
            "disappointing"]
LOVE = ["loved", "enjoyed", "adored", "liked"]
HATE = ["hated", "disliked", "loathed", "detested"]
OBJECTS = ["it", "this movie", "the film", "every minute of it"]
NAMES = [("John", "Maria"), ("Tom Hanks", "Meryl Streep"), ("Ahmed", "Li Wei"),
         ("Sarah", "Kwame"), ("the director", "the screenwriter")]
PLACES = [("Paris", "Lagos"), ("New York", "Mumbai"), ("Texas", "Tokyo"),
          ("a small town", "a big city")]
MIXED = ["The first half drags, and some scenes are too long.",
         "The acting is uneven and the music is loud.",
         "It has a few good moments and a few weak ones.",
         "I went in with low expectations.",
         "The story is simple and the ending is predictable."]
PRAISE = [" I loved it.", " It was wonderful.", " A brilliant film, highly recommended."]
COMPLAINT = [" I hated it.", " It was terrible.", " A boring waste of time."]


def _cases() -> dict[str, dict]:
    """Every test: its kind, its texts and how a test case passes."""
    tests: dict[str, dict] = {}

    def label_test(name: str, texts: list[str], label: int) -> None:
        tests[name] = {"kind": "MFT", "texts": texts, "expect": label}

    label_test("short positive statements",
               [f"{s} was {a}." for s, a in product(SUBJECTS, POSITIVE)]
               + [f"I {v} {o}." for v, o in product(LOVE, OBJECTS)], 1)
    label_test("short negative statements",
               [f"{s} was {a}." for s, a in product(SUBJECTS, NEGATIVE)]
               + [f"I {v} {o}." for v, o in product(HATE, OBJECTS)], 0)
    label_test("negated positive is negative",
               [f"{s} was not {a}." for s, a in product(SUBJECTS, POSITIVE)]
               + [f"I did not like {o}." for o in OBJECTS], 0)
    label_test("negated negative is positive",
               [f"{s} was not {a} at all." for s, a in product(SUBJECTS, NEGATIVE)], 1)
    label_test("contrast: negative, but positive",
               [f"The plot was {n} at first, but in the end it was {p}."
                for n, p in product(NEGATIVE[:5], POSITIVE[:5])], 1)
    label_test("contrast: positive, but negative",
               [f"The opening was {p}, but in the end the film was {n}."
                for p, n in product(POSITIVE[:5], NEGATIVE[:5])], 0)
    base = [f"{{}} was {a} in this film, and I {v} it." for a, v in
            ((POSITIVE[0], LOVE[0]), (NEGATIVE[0], HATE[0]), ("fine", "watched"))]
    tests["names change nothing"] = {
        "kind": "INV", "pairs": [(t.format(a), t.format(b)) for t in base for a, b in NAMES]}
    tests["places change nothing"] = {
        "kind": "INV", "pairs": [(f"A {adj} film set in {a}.", f"A {adj} film set in {b}.")
                                 for adj in ("wonderful", "dull", "quiet") for a, b in PLACES]}
    tests["punctuation changes nothing"] = {
        "kind": "INV", "pairs": [(t, t.rstrip(".") + "!") for t in
                                 [f"{s} was {a}." for s, a in product(SUBJECTS[:4],
                                                                      POSITIVE[:3]
                                                                      + NEGATIVE[:3])]]}
    tests["appending praise raises P(positive)"] = {
        "kind": "DIR", "direction": 1, "pairs": [(m, m + p) for m, p in product(MIXED, PRAISE)]}
    tests["appending a complaint lowers P(positive)"] = {
        "kind": "DIR", "direction": -1,
        "pairs": [(m, m + c) for m, c in product(MIXED, COMPLAINT)]}
    return tests


def run_checklist(positive_probability: Callable[[Sequence[str]], Sequence[float]],
                  examples: int = 3) -> dict[str, dict]:
    """Each test's ``{"kind", "cases", "pass_rate", "failures"}`` (the first ``examples``
    failing texts with their P(positive)). ``positive_probability`` scores a list of texts."""
    tests = _cases()
    texts = sorted({t for test in tests.values()
                    for t in test.get("texts", []) + [x for p in test.get("pairs", []) for x in p]})
    probability = dict(zip(texts, map(float, positive_probability(texts)), strict=True))
    results = {}
    for name, test in tests.items():
        if test["kind"] == "MFT":
            cases = [(t, (probability[t] >= 0.5) == bool(test["expect"]), probability[t])
                     for t in test["texts"]]
        elif test["kind"] == "INV":
            cases = [(f"{a} | {b}", (probability[a] >= 0.5) == (probability[b] >= 0.5),
                      (probability[a], probability[b])) for a, b in test["pairs"]]
        else:
            sign = test["direction"]
            cases = [(b, sign * (probability[b] - probability[a]) >= -DIRECTION_TOLERANCE,
                      (probability[a], probability[b])) for a, b in test["pairs"]]
        failed = [(text, score) for text, passed, score in cases if not passed]
        results[name] = {"kind": test["kind"], "cases": len(cases),
                         "pass_rate": 1 - len(failed) / len(cases),
                         "failures": [{"text": text, "p_positive": score}
                                      for text, score in failed[:examples]]}
    return results


def positive_probabilities(model, texts: Sequence[str], mixed_precision: bool = True
                           ) -> list[float]:
    """P(positive) of each text, scored by a loaded model (anything :func:`sentiment.load_model`
    returns) as ``predict`` scores it."""
    return [result["scores"][DEFAULT_LABELS[1]] for result in model.score(
        list(texts), mixed_precision=mixed_precision, all_scores=True)]


def model_checklist(model, mixed_precision: bool = True) -> dict[str, dict]:
    """:func:`run_checklist` on a loaded negative/positive model."""
    return run_checklist(lambda texts: positive_probabilities(model, texts, mixed_precision))


def checklist_markdown(results: dict[str, dict]) -> str:
    """The suite as a Markdown table (for report.md)."""
    lines = ["| test | kind | cases | pass rate | a failure |", "| --- | --- | --- | --- | --- |"]
    for name, result in results.items():
        failure = result["failures"][0]["text"] if result["failures"] else ""
        lines.append(f"| {name} | {result['kind']} | {result['cases']} | "
                     f"{result['pass_rate']:.0%} | {failure} |")
    return "\n".join(lines)
