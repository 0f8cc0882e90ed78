"""The commands that use a saved model: evaluate, predict, generate and export."""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

from .parsing import add_row_rules, command_parser, parse


def evaluate(argv: list[str] | None = None) -> None:
    """Write the evaluation report of a saved sentiment model: report.json, report.md and plots
    for the test split; report-valid.json, report-valid.md and plots suffixed -valid for the
    validation split, beside the test report and never over it.

    sentiment evaluate --model runs/sentiment
    sentiment evaluate --model runs/sentiment --data imdb/ --split valid
    sentiment evaluate --model runs/sentiment --limit 200    # baselines on 2,000 reviews
    sentiment evaluate --cross-domain other-reviews.csv --label-map 1=negative 5=positive
    """
    from ..data.sources import RowRules, parse_label_map
    from ..kinds.registry import SHIPPED_MODELS, resolve_model_path
    from ..train.evaluation import evaluate_cross_domain, evaluate_saved_model
    from .options import setup_logging

    parser = _evaluate_parser()
    args = parse(parser, argv)
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
            RowRules(args.on_bad_rows, args.encoding_errors), args.baseline_limit,
            args.sentences)
    else:
        if args.split not in ("test", "valid"):
            parser.error(f"--split: test or valid for the model's own data, got {args.split!r}")
        output = args.output or shipped or args.model
        report = evaluate_saved_model(args.model, args.data, args.split, output,
                                      args.batch_size, args.baseline, args.device, args.limit,
                                      mixed_precision=args.mixed_precision,
                                      baseline_limit=args.baseline_limit,
                                      sentences=args.sentences)
    from ..report.metrics import baseline_summary

    print(json.dumps({"accuracy": report["accuracy"], "n": report["n"],
                      **baseline_summary(report), "report": str(output)}, indent=2))


def _evaluate_parser() -> argparse.ArgumentParser:
    """The parser of ``sentiment evaluate``: the model, its data, and the cross-domain flags."""
    parser = command_parser(evaluate, "evaluate")
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
    add_row_rules(cross)
    cross.add_argument("--train-data", default=None,
                       help="a copy of the model's training data for the baselines, where its "
                            "config's source is not at hand")
    parser.add_argument("--batch-size", type=int, default=64, help="(default: %(default)s)")
    parser.add_argument("--device", default="auto", help="auto, cpu or cuda (default: %(default)s)")
    parser.add_argument("--baseline", action=argparse.BooleanOptionalAction, default=True,
                        help="fit the linear baselines alongside (default: %(default)s)")
    parser.add_argument("--limit", type=int, default=None,
                        help="score only this many reviews (default: all)")
    parser.add_argument("--baseline-limit", type=baseline_limit_option, default="auto",
                        metavar="N|all",
                        help="fit the baselines on N training reviews (a stratified, seeded "
                             "sample of the model's own training split) or all (default: 2,000 "
                             "with --limit, else all)")
    parser.add_argument("--sentences", choices=["dev", "heldout"], default="dev",
                        help="the half of benchmarks/sentences the report's sentence section "
                             "reads; heldout only for a shipped candidate's one report, listed "
                             "in BENCHMARKS.md's test-split reads (default: %(default)s)")
    parser.add_argument("--mixed-precision", action=argparse.BooleanOptionalAction, default=True,
                        help="bfloat16 on CPUs with native bf16, float16 on CUDA "
                             "(default: %(default)s)")
    return parser


def baseline_limit_option(text: str):
    """``--baseline-limit``: a count >= 1, ``all`` (None) or ``auto``."""
    if text in ("auto", "all"):
        return None if text == "all" else text
    try:
        count = int(text)
    except ValueError:
        count = 0
    if count < 1:
        raise argparse.ArgumentTypeError(f"not a count of reviews: {text!r} (N >= 1 or all)")
    return count


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
    input column is kept in order and predicted_label / predicted_score / predicted_flag are added;
    a row without text keeps its place with empty predictions. The output format follows its
    suffix. An answer is "neutral" inside --neutral's band; a text the model mostly cannot read
    (another language, gibberish) is flagged "unreadable".
    """
    from ..inference.predict import predict as predict_texts
    from ..kinds.registry import load_model

    parser = _predict_parser()
    args = parse(parser, argv)
    if args.workers < 1:
        parser.error("--workers must be >= 1")
    if args.input is not None:
        if args.texts:
            parser.error("give texts or --input, not both")
        _score_input(args)
        return
    if args.output is not None:
        parser.error("--output goes with --input")
    texts = args.texts or [line for line in sys.stdin.read().splitlines() if line.strip()]
    if not texts:
        parser.error("no texts given (as arguments, lines on stdin, or --input FILE)")
    model = load_model(args.model, args.device, args.quantize)
    results = predict_texts(texts, model, args.batch_size, mixed_precision=args.mixed_precision,
                            quantize=args.quantize, neutral=args.neutral, reading=args.reading)
    for text, result in zip(texts, results, strict=True):
        print(json.dumps({"text": text, **result}, ensure_ascii=False))


def _predict_parser() -> argparse.ArgumentParser:
    """The parser of ``sentiment predict``: texts or an --input file, and how to score them."""
    from ..kinds.registry import QUANTIZE

    parser = command_parser(predict, "predict")
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
    parser.add_argument("--workers", type=int, default=1,
                        help="--input chunks scored at once, each on its share of the CPU "
                             "threads (default: %(default)s)")
    parser.add_argument("--neutral", type=neutral_option, default="default",
                        help="answer 'neutral' inside a band: a half-width W for (0.5-W, 0.5+W), "
                             "LOW,HIGH, 'none', or the model's own (default: %(default)s)")
    parser.add_argument("--reading", action="store_true",
                        help="give every answer the share of its words the model knows "
                             "(a text under the model's threshold is flagged whatever this says)")
    add_row_rules(parser)
    return parser


def neutral_option(text: str):
    """``--neutral``: ``default``, ``none``, a half-width, or ``LOW,HIGH``."""
    if text in ("default", "none"):
        return None if text == "none" else text
    try:
        values = [float(part) for part in text.split(",")]
    except ValueError:
        raise argparse.ArgumentTypeError(f"not a band: {text!r} (default, none, W or "
                                         "LOW,HIGH)") from None
    if len(values) not in (1, 2):
        raise argparse.ArgumentTypeError(f"not a band: {text!r} (default, none, W or LOW,HIGH)")
    return values[0] if len(values) == 1 else tuple(values)


def _score_input(args: argparse.Namespace) -> None:
    """Score every row of ``args.input`` into ``args.output`` and print the summary line."""
    from ..inference.files import score_file
    from .options import quiet_progress, setup_logging

    setup_logging()
    quiet_progress(args.progress)
    summary = score_file(args.input, args.output, args.text_column, args.model,
                         args.batch_size, args.device, args.mixed_precision, args.progress,
                         args.workers, args.on_bad_rows, args.encoding_errors,
                         args.quantize, args.neutral)
    print(json.dumps({key: round(value, 1) if isinstance(value, float) else value
                      for key, value in summary.items()}))


def generate(argv: list[str] | None = None) -> None:
    """Generate text with a saved language model (character or word level).

    sentiment generate --model runs/timemachine --prefix "time traveller" \\
        --num-chars 200 --temperature 0.8
    """
    from ..kinds.lm import generate as generate_text
    from ..kinds.lm import load_language_model

    parser = command_parser(generate, "generate")
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
    args = parse(parser, argv)
    lm = load_language_model(args.model, args.device)
    print(generate_text(lm, args.prefix, args.num_chars, args.temperature, args.top_k, args.seed))


def export(argv: list[str] | None = None) -> None:
    """Write a saved classifier in another format: ONNX for ONNX Runtime (a folder that
    predict, sentiment predict and sentiment serve take, and that an install without torch
    scores: docs/inference.md), or a copy with its weights in float16.

    sentiment export --format onnx --output runs/imdb-onnx              # the shipped model
    sentiment export --format onnx --quantize int8 --output runs/imdb-onnx-int8
    sentiment export --model runs/sentiment --dtype float16 --output runs/sentiment-fp16
    """
    from ..config import KEEP
    from ..kinds.protocol import require
    from ..kinds.registry import QUANTIZE, kind_class, kind_of, resolve_model_path

    parser = command_parser(export, "export")
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
    args = parse(parser, argv)
    if args.max_length is not None and args.max_length < 1:
        parser.error(f"--max-length must be >= 1, got {args.max_length}")
    source = resolve_model_path(args.model)
    require(kind_class(kind_of(source)), "export", "export the model it was made from",
            where=source)
    if args.format == "onnx":
        import importlib.util

        missing = [name for name in ("onnx", "onnxruntime") if importlib.util.find_spec(name)
                   is None]  # torch.onnx imports onnx only deep inside an export
        if missing:
            raise ModuleNotFoundError(f"exporting to ONNX needs the onnx extra ({missing[0]} is "
                                      'missing): pip install "sentiment-lstm[onnx]"')
        from ..kinds.export import export_onnx

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
