"""An ensemble of saved classifiers: the mean of their class probabilities on the test split
(``--split valid``: the validation split, to choose before reading test), reported like a
single model (accuracy with its interval, the linear baselines, paired comparisons), beside
each member's own accuracy and its paired difference to the ensemble.

    python -m benchmarks.ensemble --models runs/sentiment-fwd runs/sentiment-bwd \\
        --data ../shared/data/imdb --output runs/ensemble-fwd-bwd

The members must split the data the same way (same source, seed and fractions: their test
reviews are checked to be the same, in the same order). Each member reads the text with its
own vocabulary. Writes the usual report (report.json, report.md, plots) into ``--output``, with
``members`` added.
"""

from __future__ import annotations

import argparse
import json
import time
from pathlib import Path

import numpy as np

from sentiment.cli.options import setup_logging
from sentiment.config import apply_overrides
from sentiment.kinds.decisions import class_probs, predicted_classes
from sentiment.kinds.lstm import score_ids
from sentiment.kinds.registry import load_model
from sentiment.report.metrics import fit_baselines, paired_comparison, write_report
from sentiment.train.prepare import prepare_data


def score_members(paths: list[str], data: str | None, test_limit: int | None,
                  split: str = "test"):
    """``(test dataset, train dataset, the first member's token counts, [probabilities per
    member], [seconds per member])``."""
    test = train = lengths = None
    probs, seconds = [], []
    for path in paths:
        loaded = load_model(path)
        overrides = {"test_limit": test_limit} if test_limit else {}
        if data:
            overrides["data"] = data
        config = apply_overrides(loaded.config, overrides)
        prepared = prepare_data(config, vocab=loaded.vocab)
        scored = prepared.test if split == "test" else prepared.valid
        if test is None:
            test, train = scored, prepared.train
            lengths = [len(ids) for ids in prepared.ids[split]]
        elif scored["text"] != test["text"]:
            raise ValueError(f"{path} splits the data differently from {paths[0]}: "
                             f"its {split} reviews are not the same")
        start = time.perf_counter()
        probs.append(score_ids(loaded.model, prepared.ids[split], 64,
                               loaded.vocab.pad_index or 0, config.data.max_length))
        seconds.append(time.perf_counter() - start)
    return test, train, lengths, probs, seconds


def main(argv: list[str] | None = None) -> list[dict]:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--models", nargs="+", required=True, help="saved classifier folders")
    parser.add_argument("--groups", nargs="+", default=None,
                        help="ensembles to report, each a comma-separated list of positions in "
                             "--models (0,1 1,2,3); every model is scored once. Default: all")
    parser.add_argument("--data", default=None, help="a local copy of the models' data source")
    parser.add_argument("--output", required=True,
                        help="the report's folder; with --groups, one subfolder per group")
    parser.add_argument("--test-limit", type=int, default=None)
    parser.add_argument("--split", choices=("test", "valid"), default="test",
                        help="valid: the validation reviews, to choose an ensemble before its "
                             "test figure is read")
    parser.add_argument("--no-baseline", dest="baseline", action="store_false")
    args = parser.parse_args(argv)
    setup_logging()
    try:
        groups = ([[int(i) for i in g.split(",")] for g in args.groups] if args.groups
                  else [list(range(len(args.models)))])
    except ValueError:
        parser.error("--groups are comma-separated positions in --models, like 0,1")
    for group in groups:
        if len(group) < 2 or not all(0 <= i < len(args.models) for i in group):
            parser.error(f"group {group}: an ensemble is two or more positions in --models")
    test, train, lengths, member_probs, seconds = score_members(args.models, args.data,
                                                                args.test_limit, args.split)
    baselines = (fit_baselines(train["text"], train["label"], test["text"])
                 if args.baseline else None)
    names = load_model(args.models[0]).labels
    reports = []
    for group in groups:
        output = Path(args.output)
        if args.groups:
            output = output / "+".join(Path(args.models[i]).name for i in group)
        reports.append(report_group(group, args.models, test, lengths, member_probs, seconds,
                                    baselines, names, output, args.split))
    return reports


def report_group(group, paths, test, lengths, member_probs, seconds, baselines, names,
                 output: Path, split: str) -> dict:
    """The report of the mean of ``group``'s members' probabilities."""
    labels = np.asarray(test["label"])
    mean = np.mean([class_probs(member_probs[i]) for i in group], axis=0)
    probs = mean[:, 1] if mean.shape[1] == 2 else mean
    ensemble_predicted = predicted_classes(mean)
    members = []
    for i in group:
        predicted = predicted_classes(class_probs(member_probs[i]))
        members.append({"model": paths[i], "accuracy": float((predicted == labels).mean()),
                        "scoring_seconds": seconds[i],
                        "ensemble_vs_member": paired_comparison(labels, ensemble_predicted,
                                                                predicted)})
    report = write_report(output, test["label"], probs, test["text"], lengths, baselines,
                          extra={"split": split, "members": members}, label_names=names)
    print(json.dumps({"output": str(output), "accuracy": report["accuracy"],
                      "ci95": report.get("accuracy_ci95"),
                      "members": [{k: m[k] for k in ("model", "accuracy")} for m in members],
                      "baselines": [{k: b.get(k) for k in ("short_name", "accuracy",
                                                           "model_vs_baseline")}
                                    for b in report.get("baselines", [])]}, indent=1))
    return report


if __name__ == "__main__":
    main()
