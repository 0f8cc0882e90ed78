"""Train, evaluate and serve LSTM sentiment classifiers; train character language models.

    sentiment train                                   # the IMDB classifier
    sentiment pretrain --output runs/lm               # the word language model
    sentiment train-charlm --text book.txt            # a character language model
    sentiment evaluate --model runs/sentiment         # the evaluation report
    sentiment predict "A wonderful film."             # one JSON line per text
    sentiment generate --model runs/lm --prefix "the" # text from a language model
    sentiment serve                                   # a web page and a JSON API
    sentiment ensemble --models A B --output C        # one model averaging saved ones
    sentiment teacher --members A --output T          # a stacked teacher for distillation
    sentiment wide --model A --output W               # A joined to an n-gram model
    sentiment cascade --fast A --full B --output C    # A where it is sure, B elsewhere
    sentiment export --format onnx --output D         # ONNX, for installs without torch

sentiment COMMAND --help lists a command's options. A mistake (a missing file, a bad value) ends
with one line on stderr and exit status 1; SENTIMENT_DEBUG=1 shows the traceback instead.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import sys
from collections.abc import Callable
from importlib.metadata import version
from pathlib import Path

# What a user's mistake raises (missing file or folder, bad value or column): one line, exit 1.
# ImportError: an optional extra (serve) that is not installed.
# ConnectionError: a download that failed (sentiment.data.sources.FetchError says the offline way).
USER_ERRORS = (FileNotFoundError, NotADirectoryError, IsADirectoryError, PermissionError,
               ValueError, KeyError, ImportError, ConnectionError)


def _train_command(name: str, module: str, run: str, required: tuple[str, ...] = (),
                   argv: list[str] | None = None) -> None:
    """Parse a training command's flags (its task's own), run ``module.run`` under torchrun or
    alone, and print the summary ``module.summary_line`` makes of it."""
    import importlib

    from ..cli.options import parse_config

    task = importlib.import_module(f"sentiment.train.{module}")
    config = parse_config(COMMANDS[name].__doc__, task.PRESETS, task.make_config,
                          required=required, argv=argv, prog=f"sentiment {name}")
    with _processes(config) as main:
        summary = getattr(task, run)(config)
    if main:
        print(json.dumps({"output": config.train.output, **task.summary_line(summary)},
                         indent=2))


def train(argv: list[str] | None = None) -> None:
    """Train the sentiment classifier, keep the best model on validation, report on test.

    sentiment train                                   # IMDB from the Hugging Face hub
    sentiment train --data reviews.csv --text-column review --label-column stars
    sentiment train --data imdb/ --vectors glove.6B.50d.txt.gz --output runs/imdb
    sentiment train --encoder runs/lm                 # fine-tune a pretrained core
    """
    _train_command("train", "recipe", "train_sentiment", argv=argv)


def pretrain(argv: list[str] | None = None) -> None:
    """Pretrain the classifier's core as a word-level bidirectional language model on IMDB's
    unlabelled reviews plus the classifier's training reviews (never its validation or test ones).

    sentiment pretrain --output runs/lm
    sentiment train --encoder runs/lm
    sentiment generate --model runs/lm --prefix "this movie was" --num-chars 20
    """
    _train_command("pretrain", "pretrain", "pretrain_language_model", argv=argv)


def train_charlm(argv: list[str] | None = None) -> None:
    """Train a character-level language model (RNN/GRU/LSTM) on one or more UTF-8 text files.

    sentiment train-charlm --text timemachine.txt --preset d2l --output runs/timemachine
    sentiment generate --model runs/timemachine --prefix "time traveller"

    Presets: d2l (the settings of Dive into Deep Learning's Time Machine), tiny (seconds),
    shakespeare (tiny Shakespeare on a CPU budget).
    """
    _train_command("train-charlm", "charlm", "train_language_model", ("text",), argv)


@contextlib.contextmanager
def _processes(config):
    """Under torchrun: join the process group for the run, quiet the other ranks' logs, and
    leave the group at the end (a no-op in one process). Yields whether this process is the
    one that reports."""
    import logging

    from ..runtime.distributed import cleanup, init_from_env, is_main

    init_from_env(config.train.device)
    main = is_main()
    if not main:
        logging.getLogger().setLevel(logging.WARNING)
    try:
        yield main
    finally:
        cleanup()


def _parser(command: Callable, name: str) -> argparse.ArgumentParser:
    return argparse.ArgumentParser(prog=f"sentiment {name}", description=command.__doc__,
                                   formatter_class=argparse.RawDescriptionHelpFormatter)


def evaluate(argv: list[str] | None = None) -> None:
    """Write the evaluation report of a saved sentiment model (report.json, report.md, plots).

    sentiment evaluate --model runs/sentiment
    sentiment evaluate --model runs/sentiment --data imdb/ --split valid
    sentiment evaluate --cross-domain other-reviews.csv --label-map 1=negative 5=positive
    """
    from ..cli.options import setup_logging
    from ..data.sources import RowRules, parse_label_map
    from ..kinds.registry import SHIPPED_MODELS, resolve_model_path
    from ..train.evaluation import evaluate_cross_domain, evaluate_saved_model

    parser = _parser(evaluate, "evaluate")
    parser.add_argument("--model", default=None,
                        help="saved model folder (default: $SENTIMENT_MODEL, else the model "
                             "shipped with the package)")
    parser.add_argument("--data", default=None,
                        help="hub id or local folder (default: the model's own data source, "
                             "split exactly as at training time)")
    parser.add_argument("--split", default="test",
                        help="test or valid of the model's own data; with --cross-domain, the "
                             "split of a folder or hub dataset (default: %(default)s)")
    parser.add_argument("--output", default=None,
                        help="report folder (default: the model folder; for a model shipped "
                             "in the package runs/shipped-report (imdb) or "
                             "runs/shipped-report-NAME; with --cross-domain, a "
                             "cross-domain-NAME folder in it)")
    cross = parser.add_argument_group(
        "cross-domain", "score the model on labelled data it was not trained on: every row of "
        "a file, or the --split of a folder or hub dataset")
    cross.add_argument("--cross-domain", default=None, metavar="DATA",
                       help="a .csv/.jsonl/.parquet file, a folder, or a hub id")
    cross.add_argument("--text-column", default="text", help="(default: %(default)s)")
    cross.add_argument("--label-column", default="label", help="(default: %(default)s)")
    cross.add_argument("--label-map", nargs="+", default=None, metavar="VALUE=LABEL",
                       help="the data's label values as the model's labels, e.g. 1=negative "
                            "5=positive (values named like a model label, or 0/1 and pos/neg "
                            "for a negative/positive model, map themselves)")
    cross.add_argument("--skip-labels", nargs="+", default=(), metavar="VALUE",
                       help="drop rows with these label values (e.g. a neutral 3)")
    _add_row_rules(cross)
    cross.add_argument("--train-data", default=None,
                       help="a copy of the model's training data for the baselines, where its "
                            "config's source is not at hand")
    parser.add_argument("--batch-size", type=int, default=64, help="(default: %(default)s)")
    parser.add_argument("--device", default="auto", help="auto, cpu or cuda (default: %(default)s)")
    parser.add_argument("--baseline", action=argparse.BooleanOptionalAction, default=True,
                        help="fit the linear baselines alongside (default: %(default)s)")
    parser.add_argument("--limit", type=int, default=None,
                        help="score only this many reviews (default: all)")
    parser.add_argument("--mixed-precision", action=argparse.BooleanOptionalAction, default=True,
                        help="bfloat16 on CPUs with native bf16, float16 on CUDA "
                             "(default: %(default)s)")
    args = parser.parse_args(argv)
    setup_logging()
    args.model = str(resolve_model_path(args.model))
    # a model shipped in the package: its reports never go into the installed package
    shipped = next((("runs/shipped-report" if name == "imdb" else f"runs/shipped-report-{name}")
                    for name, path in SHIPPED_MODELS.items()
                    if path.resolve() == Path(args.model)), None)
    if args.cross_domain is not None:
        if args.data is not None:
            parser.error("--data (the model's own data) and --cross-domain exclude each other")
        output = args.output or str(Path(shipped or args.model)
                                    / f"cross-domain-{_report_name(args.cross_domain)}")
        report = evaluate_cross_domain(
            args.model, args.cross_domain, output, args.text_column, args.label_column,
            parse_label_map(args.label_map), args.skip_labels, args.split, args.batch_size,
            args.baseline, args.device, args.limit, args.mixed_precision, args.train_data,
            RowRules(args.on_bad_rows, args.encoding_errors))
    else:
        if args.split not in ("test", "valid"):
            parser.error(f"--split: test or valid for the model's own data, got {args.split!r}")
        output = args.output or shipped or args.model
        report = evaluate_saved_model(args.model, args.data, args.split, output,
                                      args.batch_size, args.baseline, args.device, args.limit,
                                      mixed_precision=args.mixed_precision)
    print(json.dumps({"accuracy": report["accuracy"], "n": report["n"],
                      "baseline_accuracy": report.get("baseline", {}).get("accuracy"),
                      "report": str(output)}, indent=2))


def _add_row_rules(parser) -> None:
    """--on-bad-rows and --encoding-errors, for commands that read CSV files of one's own."""
    from ..config import BAD_ROWS, ENCODING_ERRORS

    parser.add_argument("--on-bad-rows", default="error", choices=BAD_ROWS,
                        help="a CSV row of the wrong field count: stop, naming its line, or "
                             "skip it and count it (default: %(default)s)")
    parser.add_argument("--encoding-errors", default="replace", choices=ENCODING_ERRORS,
                        help="invalid UTF-8 bytes in a text: replace them by U+FFFD and count "
                             "them, or stop (default: %(default)s)")


def _report_name(data: str) -> str:
    """A folder name for a cross-domain report on ``data`` (a file's stem, a hub id's name)."""
    name = Path(str(data).rstrip("/")).stem or "data"
    return "".join(c if c.isalnum() or c in "-_." else "_" for c in name)


def predict(argv: list[str] | None = None) -> None:
    """Classify texts with a saved sentiment model: texts given as arguments or lines of stdin
    (one JSON line per text), or every row of a file (--input), written to another file.

    sentiment predict "A wonderful, moving film."
    cat reviews.txt | sentiment predict --model runs/sentiment     # one review per line
    sentiment predict --input reviews.csv --text-column review --output scored.parquet

    With --input (CSV, TSV, JSON lines or Parquet), the file is streamed in bounded memory, every
    input column is kept in order and predicted_label / predicted_score are added; a row without
    text keeps its place with empty predictions. The output format follows its suffix.
    """
    from ..inference.predict import predict as predict_texts
    from ..kinds.registry import QUANTIZE, load_model

    parser = _parser(predict, "predict")
    parser.add_argument("texts", nargs="*", help="texts to classify (default: lines of stdin)")
    parser.add_argument("--model", default=None,
                        help="saved model folder (default: $SENTIMENT_MODEL, else the model "
                             "shipped with the package)")
    parser.add_argument("--input", default=None,
                        help="a .csv, .tsv, .jsonl or .parquet file to score row by row")
    parser.add_argument("--text-column", default="text",
                        help="the column of --input holding the text (default: %(default)s)")
    parser.add_argument("--output", default=None,
                        help="where --input's scored rows go; .csv, .tsv, .jsonl or .parquet "
                             "(default: <input>.scored.<suffix>)")
    parser.add_argument("--batch-size", type=int, default=64, help="(default: %(default)s)")
    parser.add_argument("--device", default=None, help="auto, cpu or cuda (default: auto)")
    parser.add_argument("--mixed-precision", default=True, action=argparse.BooleanOptionalAction,
                        help="bfloat16 on CPUs where it measured faster than float32, float16 "
                             "on CUDA; --no-mixed-precision scores in float32 (default: on)")
    parser.add_argument("--quantize", default="none", choices=QUANTIZE,
                        help="int8: the LSTMs with dynamic int8 weights, on the CPU "
                             "(default: %(default)s)")
    parser.add_argument("--progress", default=True, action=argparse.BooleanOptionalAction,
                        help="progress bar for --input (default: on)")
    parser.add_argument("--workers", type=int, default=1,
                        help="--input chunks scored at once, each on its share of the CPU "
                             "threads (default: %(default)s)")
    _add_row_rules(parser)
    args = parser.parse_args(argv)
    if args.workers < 1:
        parser.error("--workers must be >= 1")
    if args.input is not None:
        if args.texts:
            parser.error("give texts or --input, not both")
        from ..cli.options import quiet_progress, setup_logging
        from ..inference.files import score_file

        setup_logging()
        quiet_progress(args.progress)
        summary = score_file(args.input, args.output, args.text_column, args.model,
                             args.batch_size, args.device, args.mixed_precision, args.progress,
                             args.workers, args.on_bad_rows, args.encoding_errors,
                             args.quantize)
        print(json.dumps({key: round(value, 1) if isinstance(value, float) else value
                          for key, value in summary.items()}))
        return
    if args.output is not None:
        parser.error("--output goes with --input")
    texts = args.texts or [line.rstrip("\n") for line in sys.stdin]
    texts = [text for text in texts if text.strip()]
    if not texts:
        parser.error("no texts given (as arguments, lines on stdin, or --input FILE)")
    model = load_model(args.model, args.device, args.quantize)
    results = predict_texts(texts, model, args.batch_size, mixed_precision=args.mixed_precision,
                            quantize=args.quantize)
    for text, result in zip(texts, results, strict=True):
        print(json.dumps({"text": text, **result}, ensure_ascii=False))


def generate(argv: list[str] | None = None) -> None:
    """Generate text with a saved language model (character or word level).

    sentiment generate --model runs/timemachine --prefix "time traveller" \\
        --num-chars 200 --temperature 0.8
    """
    from ..kinds.lm import generate as generate_text
    from ..kinds.lm import load_language_model

    parser = _parser(generate, "generate")
    parser.add_argument("--model", default="runs/charlm",
                        help="saved model folder (default: %(default)s)")
    parser.add_argument("--prefix", default="", help="text to start from (default: empty)")
    parser.add_argument("--num-chars", type=int, default=200,
                        help="symbols to generate: characters, or words for a word LM "
                             "(default: %(default)s)")
    parser.add_argument("--temperature", type=float, default=None,
                        help="sampling temperature > 0 (default: greedy decoding)")
    parser.add_argument("--top-k", type=int, default=None,
                        help="sample from the k most likely (default: all)")
    parser.add_argument("--seed", type=int, default=None,
                        help="random seed for sampling (default: none)")
    parser.add_argument("--device", default="cpu", help="(default: %(default)s)")
    args = parser.parse_args(argv)
    lm = load_language_model(args.model, args.device)
    print(generate_text(lm, args.prefix, args.num_chars, args.temperature, args.top_k, args.seed))


def serve(argv: list[str] | None = None) -> None:
    """Serve a sentiment model over HTTP (FastAPI + uvicorn; pip install 'sentiment[serve]').

    sentiment serve                                   # the shipped model on 127.0.0.1:8000
    sentiment serve --model runs/sentiment --port 8080

    GET / is a page to try reviews on; POST /predict takes {"text": "..."} or {"text": [...]};
    POST /explain {"text": "..."} says which words pushed the label; GET /health and GET /ready
    are the probes, GET /metrics the Prometheus metrics, GET /docs the OpenAPI documentation.
    Concurrent requests are scored together; past --max-queue waiting texts a request gets a
    503 with Retry-After.
    """
    from dataclasses import asdict

    from ..cli.options import add_dataclass_options, setup_logging
    from ..serve.app import ServeConfig
    from ..serve.app import serve as run_server

    parser = _parser(serve, "serve")
    parser.add_argument("--model", default=None,
                        help="saved model folder (default: $SENTIMENT_MODEL, else the model "
                             "shipped with the package)")
    parser.add_argument("--host", default="127.0.0.1", help="(default: %(default)s)")
    parser.add_argument("--port", type=int, default=8000, help="(default: %(default)s)")
    add_dataclass_options(parser, ServeConfig(api_key=os.environ.get("SENTIMENT_API_KEY")))
    args = parser.parse_args(argv)
    try:
        config = ServeConfig(**{name: getattr(args, name) for name in asdict(ServeConfig())})
    except ValueError as error:  # named as the flag the user typed
        message = str(error)
        for name in asdict(ServeConfig()):
            message = message.replace(name, "--" + name.replace("_", "-"))
        parser.error(message)
    setup_logging()
    run_server(args.model, args.host, args.port, config)


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

    parser = _parser(ensemble, "ensemble")
    parser.add_argument("--models", nargs="+", required=True,
                        help="two or more saved classifiers sharing vocabulary, labels and data")
    parser.add_argument("--output", required=True, help="the ensemble's folder")
    parser.add_argument("--average", default="probabilities", choices=["probabilities", "weights"],
                        help="what is averaged: the members' probabilities at every prediction, "
                             "or their weights once, into one model of their shape (default: "
                             "%(default)s)")
    parser.add_argument("--dtype", default="float32", choices=["float32", "float16", "bfloat16"],
                        help="how the members' weights are stored (default: %(default)s)")
    args = parser.parse_args(argv)
    if len(args.models) < 2:
        parser.error("--models: an ensemble needs two or more models")
    combine = average_weights if args.average == "weights" else save_ensemble
    path = combine(args.models, args.output, args.dtype)
    print(json.dumps({"written": str(path), "members": len(args.models), "average": args.average,
                      "bytes": sum(f.stat().st_size for f in path.rglob("*") if f.is_file())}))


def teacher(argv: list[str] | None = None) -> None:
    """Build a teacher for distillation: saved classifiers and linear n-gram models fitted on
    the same training reviews, stacked by a logistic regression on their log-odds fitted on the
    validation reviews only. Then train a student on its soft labels with --teacher.

    sentiment teacher --members runs/sentiment-a runs/sentiment-b --linear nb_lr tfidf_lr \
        --output runs/teacher
    sentiment train --encoder runs/lm --teacher runs/teacher --output runs/student
    """
    from ..cli.options import setup_logging
    from ..train.stacking import build_teacher

    parser = _parser(teacher, "teacher")
    parser.add_argument("--members", nargs="+", required=True,
                        help="saved classifiers of one data split (the first one's is used)")
    parser.add_argument("--linear", nargs="*", default=["nb_lr", "tfidf_lr"],
                        choices=["nb_lr", "tfidf_lr"],
                        help="linear n-gram members to fit (default: both)")
    parser.add_argument("--data", default=None,
                        help="where the members' data is, when not where their config says")
    parser.add_argument("--output", required=True, help="the teacher's folder")
    args = parser.parse_args(argv)
    setup_logging()
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
    from ..cli.options import setup_logging
    from ..kinds.ngram import KINDS
    from ..train.stacking import build_wide

    parser = _parser(wide, "wide")
    parser.add_argument("--model", required=True, help="a saved classifier (the deep part)")
    parser.add_argument("--output", required=True, help="the wide-and-deep folder to write")
    parser.add_argument("--kind", default="nb_lr", choices=KINDS,
                        help="the n-gram model (default: %(default)s)")
    parser.add_argument("--ngrams", type=int, default=200_000,
                        help="keep the n-grams of largest weight, this many; 0 keeps all "
                             "(default: %(default)s)")
    parser.add_argument("--data", default=None,
                        help="where the model's data is, when not where its config says")
    args = parser.parse_args(argv)
    if args.ngrams < 0:
        parser.error(f"--ngrams must be 0 (all) or more, not {args.ngrams}")
    setup_logging()
    record = build_wide(args.model, args.output, args.data, args.kind, args.ngrams or None)
    print(json.dumps({"output": args.output, **record}, indent=2))


def cascade(argv: list[str] | None = None) -> None:
    """Join a fast model and a full one into a confidence cascade: the fast model scores every
    text, the full one the texts the fast one is less sure of than the threshold. Without
    --threshold, it is chosen on the full model's validation reviews: the smallest of
    --thresholds whose accuracy is within --tolerance of the full model's (the fewest texts
    sent to it). The folder is a model like any other.

    sentiment cascade --fast runs/fast --full runs/imdb --output runs/cascade
    sentiment cascade --fast runs/fast --full runs/imdb --threshold 0.95 --output runs/cascade
    """
    from ..cli.options import setup_logging
    from ..kinds.cascade import save_cascade
    from ..kinds.registry import resolve_model_path
    from ..train.thresholds import THRESHOLDS, validation_sweep

    parser = _parser(cascade, "cascade")
    parser.add_argument("--fast", required=True, help="the model that scores every text")
    parser.add_argument("--full", required=True, help="the model for the texts it is unsure of")
    parser.add_argument("--output", required=True, help="the cascade folder to write")
    parser.add_argument("--threshold", type=float, default=None,
                        help="the fast model's least score that stands (default: chosen on "
                             "validation)")
    parser.add_argument("--thresholds", nargs="+", type=float, default=list(THRESHOLDS),
                        help="the candidates (default: %(default)s)")
    parser.add_argument("--tolerance", type=float, default=0.001,
                        help="validation accuracy the cascade may lose against the full model "
                             "(default: %(default)s)")
    parser.add_argument("--data", default=None,
                        help="where the full model's data is, when not where its config says")
    args = parser.parse_args(argv)
    setup_logging()
    fast, full = resolve_model_path(args.fast), resolve_model_path(args.full)
    record = {}
    if args.threshold is None:
        record = validation_sweep(fast, full, args.data, args.thresholds, args.tolerance)
        if record["chosen"] is None:
            raise ValueError(f"no threshold of {args.thresholds} keeps the cascade within "
                             f"{args.tolerance} of the full model's validation accuracy "
                             f"({record['accuracy']['full']:.4f}): {record['thresholds']}")
        args.threshold = record["chosen"]
    save_cascade(fast, full, args.threshold, args.output)
    print(json.dumps({"output": args.output, "threshold": args.threshold, **record}, indent=2))


def export(argv: list[str] | None = None) -> None:
    """Write a saved classifier in another format: ONNX for ONNX Runtime (a folder that
    predict, sentiment predict and sentiment serve take, and that an install without torch
    scores: docs/inference.md), or a copy with its weights in float16.

    sentiment export --format onnx --output runs/imdb-onnx              # the shipped model
    sentiment export --format onnx --quantize int8 --output runs/imdb-onnx-int8
    sentiment export --model runs/sentiment --dtype float16 --output runs/sentiment-fp16
    """
    from ..config import KEEP
    from ..kinds.registry import QUANTIZE, resolve_model_path

    parser = _parser(export, "export")
    parser.add_argument("--model", default=None,
                        help="saved model folder or shipped model name (default: "
                             "$SENTIMENT_MODEL, else the model shipped with the package)")
    parser.add_argument("--output", required=True, help="the folder to write")
    parser.add_argument("--format", default="onnx", choices=["onnx", "safetensors"],
                        help="(default: %(default)s)")
    parser.add_argument("--quantize", default="none", choices=QUANTIZE,
                        help="onnx: int8 LSTM and linear weights (default: %(default)s)")
    parser.add_argument("--dtype", default="float16", choices=["float32", "float16", "bfloat16"],
                        help="safetensors: how the weights are stored (default: %(default)s)")
    parser.add_argument("--max-length", type=int, default=None,
                        help="the export reads at most this many tokens of a text (default: "
                             "as its model; the shipped model's int8 export with --max-length "
                             "384 --keep end: BENCHMARKS.md, inference)")
    parser.add_argument("--keep", default=None, choices=KEEP,
                        help="with --max-length: a long text's first or last tokens")
    args = parser.parse_args(argv)
    if args.max_length is not None and args.max_length < 1:
        parser.error(f"--max-length must be >= 1, got {args.max_length}")
    source = resolve_model_path(args.model)
    if args.format == "onnx":
        try:
            from ..kinds.export import export_onnx
        except ImportError as error:
            raise ModuleNotFoundError(f"exporting to ONNX needs the onnx extra ({error.name} "
                                      'is missing): pip install "sentiment[onnx]"') from None
        record = export_onnx(source, args.output, args.quantize, max_length=args.max_length,
                             keep=args.keep)
    else:
        if args.quantize != "none":
            parser.error("--quantize goes with --format onnx (a PyTorch model is quantized "
                         "when loaded: sentiment predict --quantize int8)")
        from ..kinds.checkpoint import export_model, read_limits

        export_model(source, args.output, args.dtype, max_length=args.max_length, keep=args.keep)
        record = {"format": "safetensors", "dtype": args.dtype, "source": str(source),
                  **read_limits(args.max_length, args.keep)}
    path = Path(args.output)
    print(json.dumps({"written": str(path), **record,
                      "bytes": sum(f.stat().st_size for f in path.rglob("*") if f.is_file())}))


COMMANDS: dict[str, Callable[[list[str] | None], None]] = {
    "train": train, "pretrain": pretrain, "train-charlm": train_charlm, "evaluate": evaluate,
    "predict": predict, "generate": generate, "serve": serve, "ensemble": ensemble,
    "teacher": teacher, "wide": wide, "cascade": cascade, "export": export,
}
TRAINING = ("train", "pretrain", "train-charlm")  # long CPU work: worth tcmalloc


def run(name: str, argv: list[str] | None = None) -> int:
    """Run command ``name``; a user mistake prints one line on stderr and returns 1."""
    from ..runtime.memory import cap_kernel_cache

    cap_kernel_cache()  # before anything scores or trains
    try:
        COMMANDS[name](argv)
    except USER_ERRORS as error:
        if os.environ.get("SENTIMENT_DEBUG"):
            raise
        message = error.args[0] if isinstance(error, KeyError) and error.args else error
        print(f"sentiment {name}: error: {message}", file=sys.stderr)
        return 1
    except KeyboardInterrupt:
        print(f"sentiment {name}: interrupted", file=sys.stderr)
        return 130
    return 0


def main(argv: list[str] | None = None) -> int:
    """``sentiment <command> [options]``; ``argv`` given (a call from Python, a test) never
    re-executes the process."""
    from_shell = argv is None
    argv = sys.argv[1:] if argv is None else argv
    parser = argparse.ArgumentParser(prog="sentiment", description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--version", action="version",
                        version=f"sentiment {version('sentiment')}")
    parser.add_argument("command", choices=COMMANDS, help="what to do")
    parser.add_argument("options", nargs=argparse.REMAINDER,
                        help="the command's options (sentiment <command> --help)")
    if not argv or argv[0] in ("-h", "--help", "--version"):
        if argv and argv[0] == "--version":
            parser.parse_args(argv[:1])  # prints it and exits 0
        parser.print_help()
        return 0 if argv else 2
    args = parser.parse_args(argv[:1])
    if args.command in TRAINING and from_shell:
        from ..cli.options import use_tcmalloc

        use_tcmalloc()  # re-executes this process under tcmalloc where that pays (see cli)
    return run(args.command, argv[1:])


if __name__ == "__main__":
    sys.exit(main())
