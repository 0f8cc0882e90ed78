"""Learning curve: test accuracy against the number of labelled reviews, from scratch against
fine-tuned from a pretrained LM, with the linear baselines of the same reports.

    python -m benchmarks.learning_curve --data ../shared/data/imdb \\
        --vectors ../shared/data/glove/glove.6B.50d.txt.gz --encoder runs/lm \\
        --sizes 500 1000 2500 5000 --output runs/curve

For each size N, ``train_limit=N`` labelled reviews (10% of them held out for validation and
model selection) train up to three classifiers (``--variants``): the default from scratch; one
from the encoder (``--encoder-options``); and a distilled one, whose teacher is built from those
same N labels only: the ``pretrained`` classifier plus NB-LR and TF-IDF + LR fitted on the
subset's training reviews, stacked on its validation reviews (``sentiment teacher``); a student
starts from the encoder again and trains on the labelled reviews plus ``--unlabelled-limit``
unlabelled ones with the teacher's soft labels (``--student-options``). Every model is scored on
the same seeded ``--test-limit`` test reviews, read once per model. A model already done (its
report.json exists) is not trained again. Writes ``curve.json``, ``curve.md`` (a table) and
``curve.png`` into ``--output``.

    python -m benchmarks.learning_curve --encoder runs/lm --sizes 1000 \
        --variants pretrained distilled --output runs/curve
"""

from __future__ import annotations

import argparse
import json
import shlex
from pathlib import Path

from matplotlib.figure import Figure

from sentiment.cli.options import setup_logging
from sentiment.kinds.stack import Teacher
from sentiment.train.recipe import make_config, train_sentiment
from sentiment.train.stacking import build_teacher

ENCODER_OPTIONS = ("--schedule cosine --warmup 0.02 --input-dropout 0.2 --dropout 0.3 "
                   "--ema-decay 0.998")
STUDENT_OPTIONS = "--epochs 2 --patience none --hard-weight 0.5 --temperature 1"
VARIANTS = ("scratch", "pretrained", "distilled")


def _options(text: str) -> dict:
    """``--name value`` pairs as config overrides."""
    words, overrides = shlex.split(text), {}
    for name, value in zip(words[::2], words[1::2], strict=True):
        overrides[name.removeprefix("--").replace("-", "_")] = _parse(value)
    return overrides


def _parse(value: str):
    if value.lower() == "none":
        return None
    for cast in (int, float):
        try:
            return cast(value)
        except ValueError:
            pass
    return value


def run_size(args, size: int, variant: str) -> dict:
    output = Path(args.output) / f"{variant}-{size}"
    report_path = output / "report.json"
    extra = {}
    if variant == "distilled":
        teacher_dir = Path(args.output) / f"teacher-{size}"
        if not (teacher_dir / "stack.json").exists():
            member = Path(args.output) / f"pretrained-{size}"
            if not (member / "report.json").exists():
                run_size(args, size, "pretrained")
            build_teacher([member], ["nb_lr", "tfidf_lr"], teacher_dir, args.data)
        extra["teacher_validation"] = Teacher.load(teacher_dir).validation
    if not report_path.exists():
        common = {"data": args.data, "train_limit": size, "test_limit": args.test_limit,
                  "epochs": args.epochs, "patience": args.patience, "output": str(output),
                  "progress": False}
        if variant == "scratch":
            config = make_config(vectors=args.vectors, **common)
        elif variant == "pretrained":
            config = make_config(encoder=args.encoder, **common,
                                 **_options(args.encoder_options))
        else:
            config = make_config(encoder=args.encoder, **{
                **common, **_options(args.encoder_options), **_options(args.student_options),
                "teacher": str(teacher_dir), "unlabelled_limit": args.unlabelled_limit})
        train_sentiment(config)
    report = json.loads(report_path.read_text())
    baselines = {b["short_name"]: b["accuracy"] for b in report.get("baselines", [])}
    return {"size": size, "variant": variant, "accuracy": report["accuracy"],
            "accuracy_ci95": report["accuracy_ci95"], "n_test": report["n"], **baselines,
            "epochs_run": report.get("training", {}).get("epochs_run"), **extra}


def write_outputs(rows: list[dict], output: Path) -> None:
    (output / "curve.json").write_text(json.dumps(rows, indent=2))
    sizes = sorted({r["size"] for r in rows})
    lines = ["| labelled reviews | from scratch | pretrained + fine-tuned "
             "| distilled (own teacher) | TF-IDF + LR | NB-LR |",
             "| --- | --- | --- | --- | --- | --- |"]
    for size in sizes:
        cells = {r["variant"]: r for r in rows if r["size"] == size}
        any_row = next(iter(cells.values()))

        def cell(variant, cells=cells):
            r = cells.get(variant)
            if r is None:
                return "—"
            low, high = r["accuracy_ci95"]
            return f"{r['accuracy']:.4f} ({low:.3f}–{high:.3f})"

        lines.append(f"| {size:,} | {cell('scratch')} | {cell('pretrained')} | "
                     f"{cell('distilled')} | "
                     f"{any_row.get('tfidf_lr', float('nan')):.4f} | "
                     f"{any_row.get('nb_lr', float('nan')):.4f} |")
    (output / "curve.md").write_text("\n".join(lines) + "\n")
    fig = Figure(figsize=(6, 4))
    ax = fig.subplots()
    for variant, label in (("scratch", "BiLSTM from scratch"),
                           ("pretrained", "BiLSTM, LM-pretrained"),
                           ("distilled", "BiLSTM, distilled from its own teacher")):
        points = sorted((r["size"], r["accuracy"]) for r in rows if r["variant"] == variant)
        if points:
            ax.plot(*zip(*points, strict=True), marker="o", label=label)
    for key, label in (("tfidf_lr", "TF-IDF + LR"), ("nb_lr", "NB-LR")):
        points = sorted({(r["size"], r[key]) for r in rows if key in r})
        if points:
            ax.plot(*zip(*points, strict=True), linestyle="--", marker=".", label=label)
    ax.set(xscale="log", xlabel="labelled reviews", ylabel="test accuracy",
           title="IMDB learning curve")
    ax.grid(alpha=0.3)
    ax.legend()
    fig.tight_layout()
    fig.savefig(output / "curve.png", dpi=100)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--data", default="../shared/data/imdb")
    parser.add_argument("--vectors", default="../shared/data/glove/glove.6B.50d.txt.gz")
    parser.add_argument("--encoder", default="runs/lm")
    parser.add_argument("--encoder-options", default=ENCODER_OPTIONS,
                        help="options of the fine-tuned runs (default: %(default)s)")
    parser.add_argument("--sizes", type=int, nargs="+", default=[500, 1000, 2500, 5000])
    parser.add_argument("--variants", nargs="+", choices=VARIANTS,
                        default=["scratch", "pretrained"])
    parser.add_argument("--student-options", default=STUDENT_OPTIONS,
                        help="the distilled student's options, after --encoder-options "
                             "(default: %(default)s)")
    parser.add_argument("--unlabelled-limit", type=int, default=20_000,
                        help="unlabelled reviews the teacher labels for the student "
                             "(default: %(default)s)")
    parser.add_argument("--test-limit", type=int, default=5000)
    parser.add_argument("--epochs", type=int, default=8)
    parser.add_argument("--patience", type=int, default=3)
    parser.add_argument("--output", default="runs/curve")
    args = parser.parse_args()
    setup_logging()
    output = Path(args.output)
    output.mkdir(parents=True, exist_ok=True)
    rows = []
    for size in args.sizes:
        for variant in args.variants:
            rows.append(run_size(args, size, variant))
            write_outputs(rows, output)
            print(json.dumps(rows[-1]), flush=True)


if __name__ == "__main__":
    main()
