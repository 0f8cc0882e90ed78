"""Measurements behind ``scripts/benchmark.py``: every comparison is two variants in one run.

Each measurement runs in a fresh subprocess (``python -m benchmarks.suite PART JSON``) so
that its peak resident memory is its own and process-wide settings (denormal flushing, the
allocator) do not leak from one variant into the other.
"""

from __future__ import annotations

import contextlib
import itertools
import json
import os
import platform
import resource
import subprocess
import sys
import tempfile
import time
from dataclasses import asdict, dataclass
from pathlib import Path

import numpy as np
import torch

from sentiment.cli.options import tcmalloc_library
from sentiment.runtime.precision import autocast_dtype, dtype_name, resolve_device
from sentiment.train.loop import (
    Optimization,
    build_optimizer,
    flush_denormals,
    grad_scaler,
    run_epoch,
)

ROOT = Path(__file__).resolve().parents[1]


@dataclass
class BenchmarkConfig:
    """Settings of ``scripts/benchmark.py``."""

    data: str = "stanfordnlp/imdb"
    vectors: str | None = None
    text: str | None = None
    device: str = "auto"
    quick: bool = False
    train_batches: int | None = None
    predict_reviews: int = 2000
    output_dir: str = "benchmarks"


def peak_rss_mb() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


class _Limited:
    def __init__(self, batches, count: int | None):
        self.batches, self.count = batches, count

    def __len__(self):
        return len(self.batches) if self.count is None else min(self.count, len(self.batches))

    def __iter__(self):
        return itertools.islice(iter(self.batches), len(self))


def _sentiment_setup(args: dict, reference: bool):
    from sentiment.train.prepare import build_task_model, prepare_data, review_batches
    from sentiment.train.recipe import make_config

    overrides = {"bucket": False, "padding_mode": "padded"} if reference else {}
    config = make_config(data=args["data"], vectors=args.get("vectors"), device=args["device"],
                         **overrides)
    data = prepare_data(config)
    model, config, _ = build_task_model(config, data.vocab)
    batches = review_batches(config, data.ids["train"], data.train["label"], True, 0)
    return config, data, model, batches


def part_train(args: dict) -> dict:
    """Training throughput of the package pipeline or of the seed's reference choices.

    The reference is the seed's float32; the package uses its default mixed precision unless
    ``args["mixed_precision"]`` is false.
    """
    reference = args["variant"] == "reference"
    config, data, model, batches = _sentiment_setup(args, reference)
    device = resolve_device(config.train.device)
    model.to(device)
    optimizer = build_optimizer(model, config.train)
    mixed = not reference and args.get("mixed_precision", True)
    amp_dtype = autocast_dtype(device, mixed and config.train.mixed_precision, training=True)
    scaler = grad_scaler(device, amp_dtype)
    epoch_tokens = int(sum(len(ids) for ids in data.ids["train"]))
    # the reference (the seed's choices) does not flush denormals
    with flush_denormals(device) if not reference else contextlib.nullcontext():
        run_epoch(model, _Limited(batches, 1), device, amp_dtype, Optimization(optimizer, scaler),
                  progress=False)
        batches.set_epoch(1)
        if device.type == "cuda":
            torch.cuda.synchronize()
        result = run_epoch(model, _Limited(batches, args.get("batches")), device, amp_dtype,
                           Optimization(optimizer, scaler), progress=False)
    if device.type == "cuda":
        torch.cuda.synchronize()
    return {
        "variant": args["variant"], "device": str(device),
        "precision": dtype_name(amp_dtype),
        "allocator": "tcmalloc" if "tcmalloc" in os.environ.get("LD_PRELOAD", "") else "glibc",
        "batches": args.get("batches") or len(batches), "tokens": result["tokens"],
        "seconds": result["seconds"], "tokens_per_s": result["tokens_per_s"],
        "epoch_seconds": epoch_tokens / result["tokens_per_s"],
        "padding_share": batches.padding_share(), "peak_rss_mb": peak_rss_mb(),
        "peak_cuda_mb": (torch.cuda.max_memory_allocated() / 2**20
                         if device.type == "cuda" else None),
    }


def part_preprocess(args: dict) -> dict:
    """Tokenize + numericalise train and test (run twice: cold cache, then warm)."""
    from sentiment.train.prepare import prepare_data
    from sentiment.train.recipe import make_config

    start = time.perf_counter()
    data = prepare_data(make_config(data=args["data"]))
    total = time.perf_counter() - start
    return {"seconds_total": total, **{f"seconds_{k}": v for k, v in data.seconds.items()},
            "tokenize_numericalize_seconds": data.seconds["tokenize"] + data.seconds["vocab"]
            + data.seconds["numericalize"], "peak_rss_mb": peak_rss_mb()}


def part_predict(args: dict) -> dict:
    """``predict`` latency on one ~230-word review and batch throughput."""
    from sentiment.data.sources import load_reviews
    from sentiment.inference.predict import predict
    from sentiment.kinds.checkpoint import save_pretrained
    from sentiment.kinds.registry import load_model
    from sentiment.text.tokenize import Tokenizer
    from sentiment.text.vocab import Vocab
    from sentiment.train.prepare import build_task_model
    from sentiment.train.recipe import make_config

    texts = load_reviews(args["data"])["test"].shuffle(seed=0)["text"][: args["reviews"]]
    model_dir = args.get("model")
    if model_dir is None:  # an untrained model of the default architecture times the same
        config = make_config(vectors=None)
        tokenizer = Tokenizer()
        vocab = Vocab.build(tokenizer.pipe(texts[:500]), max_size=config.data.max_vocab)
        vocab = Vocab(vocab.itos + [f"<unused{i}>" for i in range(10_002 - len(vocab))])
        model, config, _ = build_task_model(config, vocab)
        with tempfile.TemporaryDirectory() as model_dir:
            save_pretrained(model, model_dir, vocab, config)
            loaded = load_model(model_dir, args["device"])
    else:
        loaded = load_model(model_dir, args["device"])
    words = [len(t.split()) for t in texts]
    typical = texts[int(np.argmin([abs(w - 230) for w in words]))]
    mixed = args.get("mixed_precision", True)
    with flush_denormals(loaded.device):
        for _ in range(3):
            predict(typical, model=loaded, mixed_precision=mixed)
        latencies = []
        for _ in range(args.get("repeats", 50)):
            start = time.perf_counter()
            predict(typical, model=loaded, mixed_precision=mixed)
            latencies.append(time.perf_counter() - start)
        start = time.perf_counter()
        predict(texts, model=loaded, batch_size=64, mixed_precision=mixed)
        seconds = time.perf_counter() - start
    return {"device": str(loaded.device), "mixed_precision": mixed,
            "typical_review_words": len(typical.split()),
            "latency_p50_ms": 1000 * float(np.percentile(latencies, 50)),
            "latency_p95_ms": 1000 * float(np.percentile(latencies, 95)),
            "batch_reviews": len(texts), "batch_reviews_per_s": len(texts) / seconds,
            "mean_review_words": float(np.mean(words)), "peak_rss_mb": peak_rss_mb()}


def part_charlm(args: dict) -> dict:
    """Char LM training tokens/s: the package's fused layer vs. a per-character cell loop."""
    from sentiment.train.charlm import (
        CharBatches,
        build_char_vocab,
        encode_text,
        make_config,
        preprocess,
    )
    from sentiment.train.prepare import build_task_model

    config = make_config("d2l", device=args["device"])
    device = resolve_device(config.train.device)
    text = preprocess(Path(args["text"]).read_text(encoding="utf-8"), "d2l")
    vocab = build_char_vocab(text, "d2l")
    batches = CharBatches(encode_text(text, vocab), config.data.batch_size,
                          config.data.num_steps)
    count = args.get("batches") or len(batches)
    hidden = config.model.core.hidden_dim
    package = {}
    with flush_denormals(device):
        for precision, mixed in (("fp32", False), ("mixed", config.train.mixed_precision)):
            torch.manual_seed(config.train.seed)
            model, _, _ = build_task_model(config, vocab)
            model.to(device)
            optimizer = build_optimizer(model, config.train)
            amp_dtype = autocast_dtype(device, mixed, training=True)
            scaler = grad_scaler(device, amp_dtype)
            package[precision] = run_epoch(model, _Limited(batches, count), device, amp_dtype,
                                           Optimization(optimizer, scaler, config.train.clip),
                                           progress=False)
            package[precision]["dtype"] = dtype_name(amp_dtype)
    with flush_denormals(device):  # as the package runs
        cell = torch.nn.LSTMCell(len(vocab), hidden).to(device)
        decoder = torch.nn.Linear(hidden, len(vocab)).to(device)
        params = [*cell.parameters(), *decoder.parameters()]
        naive_optimizer = torch.optim.SGD(params, lr=config.train.lr)
        state, tokens, start = None, 0, time.perf_counter()
        for batch in _Limited(batches, count):
            inputs = torch.nn.functional.one_hot(batch.inputs.to(device), len(vocab)).float()
            targets = batch.targets.to(device)
            if state is None or not batch.continues:
                state = (torch.zeros(inputs.size(0), hidden, device=device),) * 2
            state = tuple(s.detach() for s in state)
            losses = []
            for t in range(inputs.size(1)):  # one character at a time through the cell
                state = cell(inputs[:, t], state)
                losses.append(torch.nn.functional.cross_entropy(decoder(state[0]), targets[:, t]))
            loss = torch.stack(losses).mean()
            naive_optimizer.zero_grad()
            loss.backward()
            torch.nn.utils.clip_grad_norm_(params, config.train.clip)
            naive_optimizer.step()
            tokens += batch.num_tokens
        if device.type == "cuda":
            torch.cuda.synchronize()
    naive = tokens / (time.perf_counter() - start)
    return {"device": str(device), "batches": count,
            "package_tokens_per_s": package["mixed"]["tokens_per_s"],
            "package_precision": package["mixed"]["dtype"],
            "package_fp32_tokens_per_s": package["fp32"]["tokens_per_s"],
            "naive_tokens_per_s": naive, "ratio": package["mixed"]["tokens_per_s"] / naive,
            "ratio_fp32": package["fp32"]["tokens_per_s"] / naive, "peak_rss_mb": peak_rss_mb()}


def part_lm_output(args: dict) -> dict:
    """Word-LM training tokens/s with a full softmax against the adaptive softmax, the default
    biLM (separate layout) otherwise, timed in turns in one process on the same batches.

    Targets follow a Zipf law over the 10,003 words (p ~ 1/rank), as word frequencies roughly
    do, so the adaptive layer's rare-word clusters are visited about as often as on real text.
    """
    from sentiment.nn.heads import build_model
    from sentiment.train.pretrain import make_config

    device = resolve_device(args.get("device", "cpu"))
    # quick (the test's run): smaller batches; the layers' ratio is the figure, not their rates
    vocab_size, batch_size, steps = 10_003, args.get("batch_size", 64), args.get("steps", 100)
    generator = torch.Generator().manual_seed(0)
    ranks = torch.arange(1, vocab_size - 2, dtype=torch.float64)
    words = torch.multinomial(1 / ranks, 200 * batch_size * (steps + 1), replacement=True,
                              generator=generator) + 3
    stream = words.view(-1, steps + 1)
    from sentiment.data.batching import Batch

    batches = [Batch(stream[i : i + batch_size, :-1], None, stream[i : i + batch_size, 1:],
                     batch_size * steps) for i in range(0, len(stream), batch_size)]
    count = min(args.get("batches") or 10, len(batches))
    models, optimizers = {}, {}
    for layer in ("full", "adaptive"):
        config = make_config(vocab_size=vocab_size, embed_dim=args.get("embed_dim", 100),
                             output_layer=layer, vectors=None)
        torch.manual_seed(0)
        models[layer] = build_model("word-lm", config.model).to(device)
        optimizers[layer] = build_optimizer(models[layer], config.train)
    amp_dtype = autocast_dtype(device, args.get("mixed_precision", True), training=True)
    seconds = dict.fromkeys(models, 0.0)
    with flush_denormals(device):
        for layer in models:  # warm-up
            run_epoch(models[layer], batches[:1], device, amp_dtype,
                      Optimization(optimizers[layer]), progress=False)
        for i in range(count):  # in turns, batch by batch
            for layer in models:
                seconds[layer] += run_epoch(models[layer], batches[i : i + 1], device, amp_dtype,
                                            Optimization(optimizers[layer]),
                                            progress=False)["seconds"]
    tokens = count * batch_size * steps
    rates = {layer: tokens / s for layer, s in seconds.items()}
    return {"device": str(device), "precision": dtype_name(amp_dtype), "batches": count,
            "batch": [batch_size, steps], "full_tokens_per_s": rates["full"],
            "adaptive_tokens_per_s": rates["adaptive"],
            "adaptive_over_full": rates["adaptive"] / rates["full"],
            "peak_rss_mb": peak_rss_mb()}


def part_batch_memory(args: dict) -> dict:
    """Peak RSS and tokens/s of the classifier's training steps on the epoch's *largest* batches
    (where a full epoch peaks) and on a seeded random sample of its batches, with the batching
    of ``args["max_tokens"]`` (None: 64 reviews a batch whatever their length). Each variant runs
    in its own interpreter, so peak RSS is the variant's own."""
    from sentiment.train.prepare import build_task_model, prepare_data, review_batches
    from sentiment.train.recipe import make_config

    config = make_config(data=args["data"], vectors=args.get("vectors"), device="cpu",
                         max_tokens=args.get("max_tokens"))
    data = prepare_data(config)
    model, config, _ = build_task_model(config, data.vocab)
    batches = list(review_batches(config, data.ids["train"], data.train["label"], True, 0))
    sizes = [batch.inputs.numel() for batch in batches]
    largest = [batches[i] for i in np.argsort(sizes)[::-1][: args.get("largest", 4)]]
    rng = np.random.default_rng(0)
    sample = [batches[i] for i in rng.choice(len(batches), args.get("sample", 20), replace=False)]
    device = torch.device("cpu")
    optimizer = build_optimizer(model, config.train)
    amp_dtype = autocast_dtype(device, config.train.mixed_precision, training=True)
    scaler = grad_scaler(device, amp_dtype)
    with flush_denormals(device):
        run_epoch(model, largest[:1], device, amp_dtype, Optimization(optimizer, scaler),
                  progress=False)
        big = run_epoch(model, largest, device, amp_dtype, Optimization(optimizer, scaler),
                        progress=False)
        peak_largest = peak_rss_mb()
        sampled = run_epoch(model, sample, device, amp_dtype, Optimization(optimizer, scaler),
                            progress=False)
    return {"max_tokens": args.get("max_tokens"), "batches_per_epoch": len(batches),
            "largest_batch_tokens": int(max(sizes)), "largest_batch_rows":
            int(largest[0].inputs.shape[0]), "largest_tokens_per_s": big["tokens_per_s"],
            "sample_tokens_per_s": sampled["tokens_per_s"], "peak_rss_mb": peak_largest,
            "peak_rss_mb_end": peak_rss_mb(), "precision": dtype_name(amp_dtype),
            "allocator": "tcmalloc" if "tcmalloc" in os.environ.get("LD_PRELOAD", "")
            else "glibc"}


PARTS = {"batch_memory": part_batch_memory, "train": part_train, "preprocess": part_preprocess,
         "predict": part_predict, "charlm": part_charlm, "lm_output": part_lm_output}


def run_part(part: str, args: dict, env: dict | None = None, tcmalloc: bool = True) -> dict:
    """Run one measurement in a fresh interpreter; returns its JSON result."""
    env = {**os.environ, **(env or {})}
    library = tcmalloc_library()
    if tcmalloc and library:
        env["LD_PRELOAD"] = library
    else:
        env.pop("LD_PRELOAD", None)
    result = subprocess.run([sys.executable, "-m", "benchmarks.suite", part, json.dumps(args)],
                            env=env, capture_output=True, text=True, cwd=ROOT)
    if result.returncode != 0:
        raise RuntimeError(f"benchmark part {part} failed:\n{result.stderr[-3000:]}")
    return json.loads(result.stdout.strip().splitlines()[-1])


def machine_name(device: str) -> str:
    if device != "cpu" and torch.cuda.is_available():
        return torch.cuda.get_device_name(0).replace(" ", "-").lower()
    return f"cpu-{os.cpu_count()}cores"


def run_benchmark(config: BenchmarkConfig, log=print) -> dict:
    """All measurements; writes ``benchmarks/<machine>-<date>.json`` and returns the results."""
    device = str(resolve_device(config.device))
    batches = config.train_batches or (8 if config.quick else None)
    common = {"data": config.data, "device": device}
    results: dict = {"config": asdict(config), "device": device, "versions": {
        "python": platform.python_version(), "torch": torch.__version__,
        "platform": platform.platform(), "cpus": os.cpu_count()},
        "date": time.strftime("%Y-%m-%d")}
    with tempfile.TemporaryDirectory() as cache:
        env = {"HF_DATASETS_CACHE": cache}
        log("preprocessing, cold cache ...")
        results["preprocess_cold"] = run_part("preprocess", common, env)
        log("preprocessing, warm cache ...")
        results["preprocess_cached"] = run_part("preprocess", common, env)
        train_args = {**common, "vectors": config.vectors, "batches": batches}
        for variant, tcmalloc, mixed in (("package", True, True), ("package-fp32", True, False),
                                         ("package-glibc", False, True),
                                         ("reference", False, False)):
            log(f"training throughput, {variant} ...")
            results[f"train_{variant}"] = run_part(
                "train", {**train_args, "variant": variant.split("-")[0],
                          "mixed_precision": mixed}, env, tcmalloc)
        for name, mixed in (("predict", True), ("predict_fp32", False)):
            log(f"prediction, {name} ...")
            results[name] = run_part("predict", {**common, "reviews": config.predict_reviews,
                                                 "mixed_precision": mixed}, env)
    log("word-LM output layer, full against adaptive softmax ...")
    results["lm_output"] = run_part("lm_output", {"device": device, "batches": 3, "batch_size": 16,
                                                  "steps": 50} if config.quick
                                    else {"device": device, "batches": 20})
    if config.text:
        log("character LM ...")
        results["charlm"] = run_part("charlm", {"text": config.text, "device": device,
                                                "batches": 20 if config.quick else None})
    results["ratios"] = {
        "train_package_over_reference": results["train_package"]["tokens_per_s"]
        / results["train_reference"]["tokens_per_s"],
        "train_package_fp32_over_reference": results["train_package-fp32"]["tokens_per_s"]
        / results["train_reference"]["tokens_per_s"],
        "train_package_mixed_over_fp32": results["train_package"]["tokens_per_s"]
        / results["train_package-fp32"]["tokens_per_s"],
        "train_package_tcmalloc_over_glibc": results["train_package"]["tokens_per_s"]
        / results["train_package-glibc"]["tokens_per_s"],
    }
    output = Path(config.output_dir)
    output.mkdir(parents=True, exist_ok=True)
    suffix = "-quick" if config.quick else ""
    path = output / f"{machine_name(device)}-{results['date']}{suffix}.json"
    path.write_text(json.dumps(results, indent=2))
    results["path"] = str(path)
    return results


def format_table(results: dict) -> str:
    """A Markdown table of the headline figures against the issue's targets."""
    train_p, train_r = results["train_package"], results["train_reference"]
    glibc, pre = results["train_package-glibc"], results["preprocess_cold"]
    fp32 = results["train_package-fp32"]
    cached, pred, pred32 = results["preprocess_cached"], results["predict"], results["predict_fp32"]
    ratios = results["ratios"]
    rows = [
        (f"training tokens/s, package ({train_p['precision']}, tcmalloc)",
         f"{train_p['tokens_per_s']:.0f}", ""),
        ("training tokens/s, package (float32, tcmalloc)", f"{fp32['tokens_per_s']:.0f}", ""),
        (f"training tokens/s, package ({glibc['precision']}, glibc malloc)",
         f"{glibc['tokens_per_s']:.0f}", ""),
        ("training tokens/s, reference mode (float32, glibc)",
         f"{train_r['tokens_per_s']:.0f}", ""),
        ("training throughput, package ÷ reference",
         f"{ratios['train_package_over_reference']:.1f}×", "≥ 10× CPU, ≥ 3× GPU"),
        ("the same, package in float32 ÷ reference",
         f"{ratios['train_package_fp32_over_reference']:.1f}×", ""),
        ("seconds per epoch (22,500 reviews), package / reference",
         f"{train_p['epoch_seconds']:.0f} / {train_r['epoch_seconds']:.0f}", "≤ 10 s on H100"),
        ("padding share per epoch, package / reference",
         f"{100 * train_p['padding_share']:.1f}% / {100 * train_r['padding_share']:.1f}%",
         "≤ 5%"),
        ("peak RSS training, package / float32 / glibc / reference (MB)",
         f"{train_p['peak_rss_mb']:.0f} / {fp32['peak_rss_mb']:.0f} / "
         f"{glibc['peak_rss_mb']:.0f} / {train_r['peak_rss_mb']:.0f}", ""),
        ("tokenize + numericalise train + test, cold (s)",
         f"{pre['tokenize_numericalize_seconds']:.1f}", "≤ 60 s"),
        ("the same from the cache (s)", f"{cached['tokenize_numericalize_seconds']:.1f}",
         "≤ 3 s"),
        (f"predict one review ({pred['typical_review_words']} words), p50 / p95 (ms)",
         f"{pred['latency_p50_ms']:.1f} / {pred['latency_p95_ms']:.1f}", "p50 ≤ 20 ms"),
        ("the same in float32, p50 / p95 (ms)",
         f"{pred32['latency_p50_ms']:.1f} / {pred32['latency_p95_ms']:.1f}", ""),
        ("predict batch throughput (reviews/s), mixed / float32",
         f"{pred['batch_reviews_per_s']:.0f} / {pred32['batch_reviews_per_s']:.0f}", "≥ 100"),
        ("peak RSS prediction (MB)", f"{pred['peak_rss_mb']:.0f}", ""),
    ]
    if "charlm" in results:
        lm = results["charlm"]
        rows.append((f"char LM tokens/s, package ({lm['package_precision']}) / naive loop",
                     f"{lm['package_tokens_per_s']:.0f} / {lm['naive_tokens_per_s']:.0f} "
                     f"({lm['ratio']:.1f}×)", "≥ 5×"))
        rows.append(("char LM tokens/s, package in float32 / naive loop",
                     f"{lm['package_fp32_tokens_per_s']:.0f} / {lm['naive_tokens_per_s']:.0f} "
                     f"({lm['ratio_fp32']:.1f}×)", ""))
    if "lm_output" in results:
        out = results["lm_output"]
        rows.append((f"word-LM training tokens/s ({out['precision']}), full / adaptive softmax",
                     f"{out['full_tokens_per_s']:.0f} / {out['adaptive_tokens_per_s']:.0f} "
                     f"({out['adaptive_over_full']:.1f}×)", ""))
    lines = ["| figure | measured | target |", "| --- | --- | --- |"]
    lines += [f"| {a} | {b} | {c} |" for a, b, c in rows]
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> None:
    """``python scripts/benchmark.py [options]``: run the suite, print the table and where the
    JSON went."""
    import argparse
    from dataclasses import asdict

    from sentiment.cli.options import add_dataclass_options

    parser = argparse.ArgumentParser(prog="scripts/benchmark.py", description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    add_dataclass_options(parser, BenchmarkConfig())
    args = parser.parse_args(argv)
    results = run_benchmark(BenchmarkConfig(**{name: getattr(args, name)
                                               for name in asdict(BenchmarkConfig())}))
    print(format_table(results))
    print(json.dumps({"written": results["path"], **results["versions"]}))


def _worker() -> None:
    part, args = sys.argv[1], json.loads(sys.argv[2])
    import logging

    logging.basicConfig(level=logging.WARNING)
    print(json.dumps(PARTS[part](args)))


if __name__ == "__main__":
    _worker()
