"""The commands that build a model folder out of saved ones: ensemble, teacher, wide, cascade,
route."""

from __future__ import annotations

import json

from .parsing import add_data_option, command_parser, parse


def ensemble(argv: list[str] | None = None) -> None:
    """Combine saved classifiers into one model that averages their class probabilities (for
    example the forward, backward and bidirectional classifiers fine-tuned from one language
    model), or with --average weights into one model of the same shape whose weights are the
    mean of theirs (for example two epochs of one run: one model's size and speed). The result
    is a model folder like any other: predict, evaluate, serve and export take it.

    sentiment ensemble --models runs/sentiment-fwd runs/sentiment-bwd --output runs/fwd-bwd
    sentiment ensemble --average weights --models runs/a-epoch1 runs/a-epoch2 --output runs/soup
    sentiment evaluate --model runs/fwd-bwd
    """
    from ..kinds.checkpoint import average_weights, save_ensemble

    parser = command_parser(ensemble, "ensemble")
    parser.add_argument("--models", nargs="+", required=True,
                        help="two or more saved classifiers sharing vocabulary, labels and data")
    parser.add_argument("--output", required=True, help="the ensemble's folder")
    parser.add_argument("--average", default="probabilities", choices=["probabilities", "weights"],
                        help="what is averaged: the members' probabilities at every prediction, "
                             "or their weights once, into one model of their shape (default: "
                             "%(default)s)")
    parser.add_argument("--dtype", default="float32", choices=["float32", "float16", "bfloat16"],
                        help="how the members' weights are stored (default: %(default)s)")
    args = parse(parser, argv)
    if len(args.models) < 2:
        parser.error("--models: an ensemble needs two or more models")
    combine = average_weights if args.average == "weights" else save_ensemble
    path = combine(args.models, args.output, args.dtype)
    print(json.dumps({"written": str(path), "members": len(args.models), "average": args.average,
                      "bytes": sum(f.stat().st_size for f in path.rglob("*") if f.is_file())}))


def teacher(argv: list[str] | None = None) -> None:
    r"""Build a teacher for distillation: saved classifiers and linear n-gram models fitted on
    the same training reviews, stacked by a logistic regression on their log-odds fitted on the
    validation reviews only. Then train a student on its soft labels with --teacher.

    sentiment teacher --members runs/sentiment-a runs/sentiment-b --linear nb_lr tfidf_lr \
        --output runs/teacher
    sentiment train --encoder runs/lm --teacher runs/teacher --output runs/student
    """
    from ..train.stacking import build_teacher

    parser = command_parser(teacher, "teacher")
    parser.add_argument("--members", nargs="+", required=True,
                        help="saved classifiers of one data split (the first one's is used)")
    parser.add_argument("--linear", nargs="*", default=["nb_lr", "tfidf_lr"],
                        choices=["nb_lr", "tfidf_lr"],
                        help="linear n-gram members to fit (default: both)")
    add_data_option(parser, "the members'")
    parser.add_argument("--output", required=True, help="the teacher's folder")
    args = parse(parser, argv)
    built = build_teacher(args.members, args.linear, args.output, args.data)
    print(json.dumps({"output": args.output, **built.validation,
                      "coef": built.coef, "intercept": built.intercept}, indent=2))


def wide(argv: list[str] | None = None) -> None:
    """Make a wide-and-deep copy of a saved classifier: an NB-weighted n-gram model fitted on
    its own training reviews, joined to it by a head fitted on its validation reviews (the
    validation figure printed is 10-fold cross-validated). The folder is a model like any
    other: predict, evaluate, serve and export take it.

    sentiment wide --model runs/sentiment --output runs/sentiment-wide
    sentiment evaluate --model runs/sentiment-wide --split valid
    """
    from ..kinds.ngram import KINDS
    from ..train.stacking import build_wide

    parser = command_parser(wide, "wide")
    parser.add_argument("--model", required=True, help="a saved classifier (the deep part)")
    parser.add_argument("--output", required=True, help="the wide-and-deep folder to write")
    parser.add_argument("--kind", default="nb_lr", choices=KINDS,
                        help="the n-gram model (default: %(default)s)")
    parser.add_argument("--ngrams", type=int, default=200_000,
                        help="keep the n-grams of largest weight, this many; 0 keeps all "
                             "(default: %(default)s)")
    parser.add_argument("--ngram-model", default=None,
                        help="join this n-gram model folder (fitted on the same training "
                             "reviews: another wide model's wide/) instead of fitting one, so "
                             "that the two can share it")
    add_data_option(parser, "the model's")
    args = parse(parser, argv)
    if args.ngrams < 0:
        parser.error(f"--ngrams must be 0 (all) or more, not {args.ngrams}")
    record = build_wide(args.model, args.output, args.data, args.kind, args.ngrams or None,
                        args.ngram_model)
    print(json.dumps({"output": args.output, **record}, indent=2))


def cascade(argv: list[str] | None = None) -> None:
    """Join models into a confidence cascade: the first scores every text, each next one the
    texts the one before is less sure of than its threshold, the last the rest. Without
    --threshold, the thresholds are chosen on the last model's validation reviews: of every
    combination of --thresholds, the cheapest (each stage's seconds per review, timed on
    those reviews, times the share it scores) whose accuracy is within --tolerance of the last
    model's. The folder is a model like any other.

    sentiment cascade --fast runs/fast --full runs/imdb --output runs/cascade
    sentiment cascade --stages imdb-ngram runs/fast imdb-onnx --output runs/cascade3
    sentiment cascade --fast runs/fast --full runs/imdb --threshold 0.95 --output runs/cascade
    """
    from ..kinds.registry import resolve_model_path
    from ..train.thresholds import THRESHOLDS, save_cascade, validation_sweep

    parser = command_parser(cascade, "cascade")
    parser.add_argument("--stages", nargs="+", default=None,
                        help="the models in order, cheapest first (or --fast and --full)")
    parser.add_argument("--fast", help="a two-stage cascade's first model, which scores every text")
    parser.add_argument("--full", help="a two-stage cascade's model for the texts it is unsure of")
    parser.add_argument("--output", required=True, help="the cascade folder to write")
    parser.add_argument("--threshold", type=float, nargs="+", default=None,
                        help="each stage's least score that stands, but the last's (default: "
                             "chosen on validation)")
    parser.add_argument("--thresholds", nargs="+", type=float, default=list(THRESHOLDS),
                        help="the candidates for each stage (default: %(default)s)")
    parser.add_argument("--tolerance", type=float, default=0.001,
                        help="validation accuracy the cascade may lose against the last model "
                             "(default: %(default)s)")
    parser.add_argument("--costs", nargs="+", type=float, default=None,
                        help="each stage's cost per review for the choice (default: its seconds "
                             "per review, timed on the validation reviews)")
    add_data_option(parser, "the last model's")
    args = parse(parser, argv)
    pair = [args.fast, args.full]
    if (any(pair) if args.stages else not all(pair)):  # one way of naming them, whole
        parser.error("name the models with --stages A B [C ...], or with --fast and --full")
    stages = [resolve_model_path(m) for m in (args.stages or pair)]
    record = {}
    if args.threshold is None:
        record = validation_sweep(stages, args.data, args.thresholds, args.tolerance, args.costs)
        if record["chosen"] is None:
            raise ValueError(f"no thresholds of {args.thresholds} keep the cascade within "
                             f"{args.tolerance} of the last model's validation accuracy "
                             f"({record['accuracy'][-1]:.4f}): {record['thresholds']}")
        args.threshold = record["chosen"]
    save_cascade(stages, args.threshold, args.output)
    print(json.dumps({"output": args.output, "threshold": args.threshold, **record}, indent=2))


def route(argv: list[str] | None = None) -> None:
    """Route texts by length: a text of at most --max-words words goes to the first model (one
    taught on sentences, say), every longer one to the next, the last taking the rest. Each
    text is scored by one model only. The folder is a model like any other: predict, evaluate,
    serve and explain take it.

    sentiment route --models runs/sentences-wide sentiment/models/imdb-reviews --max-words 40 \
        --output runs/routed
    """
    from ..kinds.registry import load_folder, resolve_model_path
    from ..kinds.routed import save_routed

    parser = command_parser(route, "route")
    parser.add_argument("--models", nargs="+", required=True,
                        help="the models, the one for the shortest texts first")
    parser.add_argument("--max-words", type=int, nargs="+", required=True,
                        help="the most words of a text each model takes, one per model but "
                             "the last (rising)")
    parser.add_argument("--output", required=True, help="the routed folder to write")
    args = parse(parser, argv)
    if len(args.max_words) != len(args.models) - 1:
        parser.error(f"--max-words: one per model but the last ({len(args.models) - 1}), not "
                     f"{len(args.max_words)}")
    models = [resolve_model_path(model) for model in args.models]
    path = save_routed(models, args.max_words, args.output, load_folder)
    print(json.dumps({"output": str(path), "models": [str(m) for m in models],
                      "max_words": args.max_words}))
