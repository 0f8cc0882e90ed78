"""Scoring NB-LR's binary 1-3-grams: scikit-learn's ``CountVectorizer`` against
:class:`sentiment.kinds.ngram.NgramTable`, in turns, in one run, on the same cleaned test texts.

    python -m benchmarks.ngrams --model sentiment/models/imdb/reviews/wide --reviews 2000 --rounds 5
    python -m benchmarks.ngrams --against 437149a --rounds 5     # and the table as at a commit

Prints texts/s per round for each and the largest difference in log-odds (float32 rounding in
scikit-learn's sparse product). ``--against COMMIT`` adds ``table@COMMIT``: the
``NgramTable`` of ``sentiment/kinds/ngram.py`` at that commit, timed in the same turns, and
whether its sums equal today's exactly. No label is read.
"""

from __future__ import annotations

import argparse
import importlib.util
import json
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
import pyarrow.parquet as pq

from sentiment.data.sources import clean_text
from sentiment.kinds.ngram import LinearModel


def main(argv: list[str] | None = None) -> dict:
    parser = argparse.ArgumentParser(description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--data", default="../shared/data/imdb")
    parser.add_argument("--model", nargs="+", default=["sentiment/models/imdb/reviews/wide"],
                        help="linear nb_lr model folders")
    parser.add_argument("--reviews", type=int, default=2_000)
    parser.add_argument("--rounds", type=int, default=5)
    parser.add_argument("--against", default=None, help="also time NgramTable at this commit")
    args = parser.parse_args(argv)
    before = _table_at(args.against) if args.against else None
    texts = [clean_text(text) for text in pq.read_table(
        Path(args.data) / "test.parquet", columns=["text"]).slice(0, args.reviews)["text"]
        .to_pylist()]
    result = {"reviews": len(texts), "models": {}}
    for folder in args.model:
        model = LinearModel.load(folder)
        if model.kind != "nb_lr":
            raise SystemExit(f"{folder} is {model.kind}, not nb_lr")
        ways = {"sklearn": lambda m=model: np.asarray(m.vectorizer.transform(texts) @ m.weight,
                                                      dtype=np.float64) + m.bias,
                "table": lambda m=model: m.ngram_table.sums(texts) + m.bias}
        if before is not None:
            old = before(model.ngrams, model.weight)
            ways[f"table@{args.against}"] = lambda m=model, t=old: t.sums(texts) + m.bias
        scores = {name: way() for name, way in ways.items()}  # warm-up; builds both
        rates: dict[str, list[float]] = {name: [] for name in ways}
        for _ in range(args.rounds):
            for name, way in ways.items():
                start = time.perf_counter()
                way()
                rates[name].append(round(len(texts) / (time.perf_counter() - start), 1))
        result["models"][folder] = {
            "ngrams": len(model.ngrams), "texts_per_s": rates,
            "ratio_per_round": [round(t / s, 2) for t, s in zip(rates["table"], rates["sklearn"],
                                                                strict=True)],
            "max_abs_difference": float(np.abs(scores["table"] - scores["sklearn"]).max())}
        if before is not None:
            result["models"][folder]["same_as_before"] = bool(np.array_equal(
                scores["table"], scores[f"table@{args.against}"]))
    print(json.dumps(result, indent=1))
    return result


def _table_at(commit: str):
    """``NgramTable`` as ``sentiment/kinds/ngram.py`` defined it at ``commit``."""
    source = subprocess.run(["git", "show", f"{commit}:sentiment/kinds/ngram.py"],
                            capture_output=True, text=True, check=True).stdout
    path = Path(tempfile.mkdtemp()) / "ngram_before.py"
    path.write_text(source, encoding="utf-8")
    name = "sentiment.kinds.ngram_before"  # in the package, so its relative imports resolve
    spec = importlib.util.spec_from_file_location(name, path)
    module = importlib.util.module_from_spec(spec)
    sys.modules[name] = module
    spec.loader.exec_module(module)
    return module.NgramTable


if __name__ == "__main__":
    main()
