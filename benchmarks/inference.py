"""Inference variants of one model in one run: PyTorch float32, bfloat16 autocast and dynamic
int8, ONNX Runtime float32 and int8 -- reviews/s, agreement and validation accuracy.
``onnx-serial`` / ``onnx-int8-serial``: ONNX Runtime as it scored before 2026-12-02's seventh
session, one batch at a time on one run with every core as an intra-op thread (now: one
single-threaded run per core, each on its own batch). ``export``: ``--model`` is an ONNX folder
already exported (``sentiment export --format onnx ...``, or the shipped
``sentiment/models/imdb-onnx``), timed as it is; it is the only variant such a folder allows.
``--ort-config KEY=VALUE ...`` adds ``export-configured``: the same folder on sessions with
those ONNX Runtime configuration entries (``session.set_denormal_as_zero=1``,
``session.intra_op.allow_spinning=0``), in turns with ``export``.

    python -m benchmarks.inference --model sentiment/models/imdb --reviews 2000 --rounds 2
    python -m benchmarks.inference --variants bfloat16 onnx-int8 --max-tokens none 16384
    python -m benchmarks.inference --model sentiment/models/imdb-onnx --batch-sizes 16 64 256 \
        --max-tokens 2048 4096 16384

Speed: the first ``--reviews`` test reviews (file order), batches of 64 sorted by length (with
``--max-tokens`` budgets, each variant also with batches cut at that many padded tokens, named
``VARIANT@BUDGET``; ``none`` is plain batches of 64, the default before the budget; with
``--batch-sizes``, batches of at most that many rows, each with each budget,
``VARIANT@ROWSxBUDGET``), in
turns round by round so that a noisy machine hits each variant alike; ``forward`` times the
model alone on reviews already encoded (the issue's protocol), ``predict`` the whole call
(clean, tokenize, encode, score). Agreement: the share of those reviews whose label matches
float32's, and the largest probability difference (no test labels are read). Accuracy: on the
model's validation split (its config's seed and fraction), never the test split.
"""

from __future__ import annotations

import argparse
import copy
import tempfile
import time
from pathlib import Path

import numpy as np
import pyarrow.parquet as pq
import torch

from benchmarks import emit
from sentiment import load_model
from sentiment.config import ONNX_FILE
from sentiment.kinds.export import export_onnx
from sentiment.kinds.lstm import SentimentModel, score_ids
from sentiment.kinds.onnx import inference_session, is_onnx
from sentiment.runtime.precision import cpu_model

VARIANTS = ("float32", "bfloat16", "int8", "onnx", "onnx-int8", "onnx-serial", "onnx-int8-serial",
            "export", "export-configured")


def _budget(text: str) -> int | None:
    return None if text.lower() == "none" else int(text)


def _variant(name: str, budget: int | None, budgets: list, rows: int = 64,
             batch_sizes: tuple = (64,)) -> str:
    """The variant's name in the results: ``NAME@BUDGET`` once budgets are compared,
    ``NAME@ROWSxBUDGET`` once batch sizes are."""
    if list(batch_sizes) != [64]:
        return f"{name}@{rows}x{budget or 'none'}"
    return name if budgets == [None] else f"{name}@{budget or 'none'}"


def _scorer(name: str, model, onnx: dict, max_tokens: int | None = None, rows: int = 64):
    """``scores(ids) -> probabilities`` for one variant."""
    if name == "export":
        return lambda ids: model.probabilities(ids, rows, max_tokens)
    if name.startswith("onnx") or name == "export-configured":
        exported = onnx[name]
        return lambda ids: exported.probabilities(ids, rows, max_tokens)
    scored = model if name != "int8" else SentimentModel(
        model.float_model, model.vocab, model.config, model.path, quantize="int8")
    pad = model.vocab.pad_index or 0
    dtype = torch.bfloat16 if name == "bfloat16" else None
    return lambda ids: score_ids(scored.model, ids, rows, pad, mixed_precision=False,
                                 max_tokens=max_tokens, autocast_to=dtype)


def main(argv: list[str] | None = None) -> dict:
    parser = argparse.ArgumentParser(description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--data", default="../shared/data/imdb")
    parser.add_argument("--model", default="sentiment/models/imdb/reviews")
    parser.add_argument("--reviews", type=int, default=2_000)
    parser.add_argument("--rounds", type=int, default=2)
    parser.add_argument("--variants", nargs="+", default=None, choices=VARIANTS,
                        help="(default: every one but export; an ONNX --model: export)")
    parser.add_argument("--max-tokens", nargs="+", type=_budget, default=[None],
                        help="batch token budgets to time each variant with ('none': plain "
                             "batches of 64)")
    parser.add_argument("--batch-sizes", nargs="+", type=int, default=[64],
                        help="batch rows to time each variant with, each with each budget")
    parser.add_argument("--no-accuracy", action="store_true",
                        help="skip the validation accuracy (speed and agreement only)")
    parser.add_argument("--ort-config", nargs="+", metavar="KEY=VALUE",
                        help="ONNX Runtime session configuration entries for the variant "
                             "export-configured (an ONNX --model)")
    parser.add_argument("--output", default=None, help="also write the result here (JSON)")
    args = parser.parse_args(argv)
    exported = is_onnx(args.model)
    if args.ort_config and not exported:
        parser.error("--ort-config applies to an ONNX --model (an exported folder)")
    config = dict(_config_entry(entry, parser) for entry in args.ort_config or [])
    if args.variants is None:
        args.variants = (["export"] + (["export-configured"] if config else []) if exported
                         else [v for v in VARIANTS if not v.startswith("export")])
    if exported != (set(args.variants) <= {"export", "export-configured"}):
        parser.error("--variants export times an ONNX --model as it is, and is the only variant "
                     "it allows (the others are made from a PyTorch model)")
    if ("export-configured" in args.variants) != bool(config):
        parser.error("export-configured is the ONNX --model on sessions with --ort-config's "
                     "entries: name both or neither")
    if min(args.batch_sizes) < 1:
        parser.error("--batch-sizes must be >= 1")
    texts = pq.read_table(Path(args.data) / "test.parquet", columns=["text"]).slice(
        0, args.reviews)["text"].to_pylist()
    model = load_model(args.model, None if exported else "cpu")
    ids = model.encode(texts)
    with tempfile.TemporaryDirectory() as tmp:
        onnx = {}
        if config:  # the same folder on sessions of its own, with the entries
            onnx["export-configured"] = copy.copy(model)
            onnx["export-configured"].session = inference_session(
                Path(args.model) / ONNX_FILE, threads=1, config=config)
        for name in args.variants:
            if name.startswith("onnx"):
                quantize = "int8" if name.startswith("onnx-int8") else "none"
                export_onnx(model.path, Path(tmp) / name, quantize=quantize)
                onnx[name] = load_model(Path(tmp) / name)
                if name.endswith("-serial"):  # the scorer before 2026-12-02's seventh session
                    onnx[name].threads = 1  # one batch at a time, on every core's thread
                    onnx[name].session = inference_session(Path(tmp) / name / ONNX_FILE)
        budgets, sizes = args.max_tokens, args.batch_sizes
        scorers = {_variant(name, budget, budgets, rows, sizes):
                   _scorer(name, model, onnx, budget, rows)
                   for name in args.variants for rows in sizes for budget in budgets}
        for score in scorers.values():
            score(ids[:64])  # warm-up
        forward = {name: [] for name in scorers}
        whole = {name: [] for name in scorers}
        probs = {}
        for _ in range(args.rounds):
            for name, score in scorers.items():
                start = time.perf_counter()
                probs[name] = score(ids)
                forward[name].append(len(ids) / (time.perf_counter() - start))
                start = time.perf_counter()
                score(model.encode(texts))
                whole[name].append(len(ids) / (time.perf_counter() - start))
        # against float32 when it ran; else against the first variant, which the result names
        reference_name = _variant("float32", budgets[0], budgets, sizes[0], sizes)
        if reference_name not in probs:
            reference_name = next(iter(probs))
        reference = probs[reference_name]
        result = {
            "model": args.model, "reviews": len(texts), "cpu": cpu_model(),
            "agreement_reference": reference_name,
            "threads": torch.get_num_threads(), "torch": torch.__version__,
            **({"ort_config": config} if config else {}),
            "forward_reviews_per_s": forward, "predict_reviews_per_s": whole,
            "label_agreement_with_float32": {name: float(((p >= 0.5) == (reference >= 0.5)).mean())
                                             for name, p in probs.items()},
            "max_abs_difference_from_float32": {
                name: float(np.abs(p - reference).max()) for name, p in probs.items()},
        }
        if not args.no_accuracy:
            result["valid_accuracy"] = _valid_accuracy(model, scorers, args.data)
    return emit(result, args.output)


def _config_entry(entry: str, parser: argparse.ArgumentParser) -> tuple[str, str]:
    key, equals, value = entry.partition("=")
    if not (key and equals and value):
        parser.error(f"--ort-config takes KEY=VALUE entries, not {entry!r}")
    return key, value


def _valid_accuracy(model, scorers: dict, source: str) -> dict:
    """Each variant's accuracy on the model's validation split, read from ``source``."""
    from dataclasses import replace

    from sentiment.train.prepare import classifier_splits

    splits = classifier_splits(replace(model.config.data, source=source),
                               model.config.split_seed)
    valid = splits["valid"]
    ids = model.encode(valid["text"])
    labels = np.asarray(valid["label"])
    return {name: float(((score(ids) >= 0.5).astype(int) == labels).mean())
            for name, score in scorers.items()}


if __name__ == "__main__":
    main()
