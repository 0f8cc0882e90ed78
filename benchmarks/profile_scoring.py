"""Where scoring's CPU time goes: cleaning, spaCy tokenizing, the vocabulary lookup, the
recurrent core and the head, for one model on real reviews, and the core's arithmetic as a
share of this CPU's matrix-product ceiling.

    python -m benchmarks.profile_scoring --models sentiment/models/imdb runs/fast1 --reviews 2000

Each phase is timed alone over the first ``--reviews`` test reviews (batches of 64 sorted by
length, as ``predict`` makes them), in the precision ``predict`` uses here; tokenizing starts
from an empty chunk store, and ``tokenizer_s`` also times it with every chunk known and spaCy on
the whole texts (the package's tokenizing before 2026-12-02), outside the shares. The arithmetic is
counted from the config: per token and per direction and layer, the LSTM's input and recurrent
products, ``2 * 4H * (input + H)`` FLOP. The ceiling is one large float32 / bfloat16 product
(``scripts/profile_step.py --gemm`` prints more shapes).

``--ort-profile``: for each exported (ONNX) folder among the models, also ONNX Runtime's own
profile of the forward pass on one single-threaded session (``ort_node_share``: each operator
type's share of the time spent in the graph's nodes, e.g. how much of it is the LSTM kernels).
"""

from __future__ import annotations

import argparse
import json
import tempfile
import time
from collections import defaultdict
from pathlib import Path

import pyarrow.parquet as pq
import torch

from benchmarks.tokenizer_chunks import whole_text_tokens
from sentiment import load_model, predict
from sentiment.data.batching import pad_batch
from sentiment.data.lengths import cut_batches, length_order
from sentiment.data.sources import clean_text
from sentiment.kinds.onnx import OnnxModel
from sentiment.runtime.precision import autocast, autocast_dtype, cpu_model, dtype_name
from sentiment.text import tokenize
from sentiment.text.tokenize import _english as spacy_english


def core_flop_per_token(core) -> float:
    """FLOP of the recurrent core per token (all layers and directions)."""
    total = 0.0
    for rnn in core.rnns:
        gates = 4 if isinstance(rnn, torch.nn.LSTM) else 3 if isinstance(rnn, torch.nn.GRU) else 1
        total += 2 * gates * rnn.hidden_size * (rnn.input_size + rnn.hidden_size)
    return total


def gemm_ceiling(dtype: torch.dtype | None, size: int = 2048, repeats: int = 5) -> float:
    """GFLOP/s of one ``size`` cube matrix product in ``dtype`` (None: float32)."""
    a = torch.randn(size, size, dtype=dtype or torch.float32)
    torch.mm(a, a)
    start = time.perf_counter()
    for _ in range(repeats):
        torch.mm(a, a)
    return 2 * size**3 * repeats / (time.perf_counter() - start) / 1e9


def ort_node_share(model: OnnxModel, ids: list[list[int]]) -> dict[str, float]:
    """ONNX Runtime's profiler on ``model``'s forward pass over ``ids`` (its own batches, one
    single-threaded session): each operator type's share of the nodes' kernel time."""
    import onnxruntime

    from sentiment.config import ONNX_FILE

    options = onnxruntime.SessionOptions()
    options.intra_op_num_threads = options.inter_op_num_threads = 1
    options.log_severity_level = 3
    with tempfile.TemporaryDirectory() as folder:
        options.enable_profiling = True
        options.profile_file_prefix = str(Path(folder) / "ort")
        session = onnxruntime.InferenceSession(str(Path(model.path) / ONNX_FILE), options,
                                               providers=["CPUExecutionProvider"])
        own = model.session, model.threads
        model.session, model.threads = session, 1
        try:
            model.probabilities(ids)
        finally:
            model.session, model.threads = own
        events = json.loads(Path(session.end_profiling()).read_text())
    microseconds: dict[str, float] = defaultdict(float)
    for event in events:
        if event.get("cat") == "Node" and event.get("name", "").endswith("_kernel_time"):
            microseconds[event["args"]["op_name"]] += event["dur"]
    total = sum(microseconds.values())
    return dict(sorted(((op, us / total) for op, us in microseconds.items()),
                       key=lambda item: -item[1]))


def profile(path: str, texts: list[str], ort_profile: bool = False) -> dict:
    model = load_model(path, "cpu")
    seconds: dict[str, float] = {}

    def timed(name, work):
        start = time.perf_counter()
        value = work()
        seconds[name] = time.perf_counter() - start
        return value

    model.encode(texts[:64])  # warm-up: spaCy's tables, torch's kernels
    if model.wide is not None:
        model.wide.logits(texts[:64])  # the n-gram table, built on first use
    cleaned = timed("clean", lambda: [clean_text(text) for text in texts])
    tokenize.chunk_store(model.tokenizer.lowercase).clear()
    tokens = timed("tokenize", lambda: model.tokenizer.pipe(cleaned))
    tokenizer_s = {"empty store": seconds["tokenize"]}
    for name, work in (("every chunk known", lambda: model.tokenizer.pipe(cleaned)),
                       ("spaCy on whole texts", lambda: whole_text_tokens(
                           spacy_english(), cleaned, model.tokenizer.lowercase))):
        start = time.perf_counter()
        work()
        tokenizer_s[name] = time.perf_counter() - start
    ids = timed("vocabulary lookup", lambda: [model.vocab.encode(t[: model.max_length])
                                             for t in tokens])
    lengths, order = length_order(ids)
    if model.wide is not None:  # a wide-and-deep folder: its n-gram log-odds, on the texts
        timed("wide n-grams", lambda: model.wide.logits(texts))
    if isinstance(model, OnnxModel):  # the graph runs core and head in one call
        model.probabilities(ids[:64])
        timed("forward (ONNX Runtime)", lambda: model.probabilities(ids))
        dtype, net = None, None
    else:
        batches = [pad_batch([ids[i] for i in part], model.vocab.pad_index or 0)
                   for part in cut_batches(order, lengths, 64)]
        net = model.model
        dtype = autocast_dtype(torch.device("cpu"))
        with torch.inference_mode(), autocast(torch.device("cpu"), dtype):
            net(batches[0])
            outs = timed("recurrent core",
                         lambda: [net.core(b.inputs, b.lengths) for b in batches])
            # the head (pooling, the linear layer): the whole forward less the core's time
            start = time.perf_counter()
            for batch in batches:
                net(batch)
            seconds["head"] = max(0.0, time.perf_counter() - start - seconds["recurrent core"])
        del outs
    # predict as users call it (its own batches and token budget), every chunk known
    start = time.perf_counter()
    predict(texts, model=model, batch_size=64)
    predict_s = time.perf_counter() - start
    tokens_count = sum(lengths)
    total = sum(seconds.values())
    result = {
        "model": path, "reviews": len(texts), "tokens": tokens_count,
        "precision": "as exported (ONNX)" if net is None else dtype_name(dtype),
        "seconds": seconds, "share": {name: s / total for name, s in seconds.items()},
        "tokenizer_s": tokenizer_s,
        "reviews_per_s_all_phases": len(texts) / total,
        "predict_s": predict_s, "predict_reviews_per_s": len(texts) / predict_s,
    }
    if ort_profile and net is None:  # ONNX folders only: PyTorch ones have no such profile
        result["ort_node_share"] = ort_node_share(model, ids)
    if net is not None:
        flop = core_flop_per_token(net.core) * tokens_count
        result["core_gflop_per_review"] = flop / len(texts) / 1e9
        result["core_gflop_per_s"] = flop / seconds["recurrent core"] / 1e9
    return result


def main(argv: list[str] | None = None) -> dict:
    parser = argparse.ArgumentParser(description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--data", default="../shared/data/imdb")
    parser.add_argument("--models", nargs="+", default=["sentiment/models/imdb/reviews"])
    parser.add_argument("--reviews", type=int, default=2_000)
    parser.add_argument("--ort-profile", action="store_true",
                        help="also ONNX Runtime's per-operator profile of an exported folder's "
                             "forward pass")
    args = parser.parse_args(argv)
    texts = pq.read_table(Path(args.data) / "test.parquet", columns=["text"]).slice(
        0, args.reviews)["text"].to_pylist()
    ceilings = {"float32": gemm_ceiling(None)}
    if autocast_dtype(torch.device("cpu")) == torch.bfloat16:  # a CPU without bf16 emulates
        ceilings["bfloat16"] = gemm_ceiling(torch.bfloat16)  # it: minutes, and no ceiling
    result = {"cpu": cpu_model(), "threads": torch.get_num_threads(), "torch": torch.__version__,
              "gemm_ceiling_gflop_per_s": ceilings, "models": []}
    for path in args.models:
        profiled = profile(path, texts, args.ort_profile)
        if "core_gflop_per_s" in profiled and profiled["precision"] in ceilings:
            profiled["core_share_of_ceiling"] = (profiled["core_gflop_per_s"]
                                                 / ceilings[profiled["precision"]])
        result["models"].append(profiled)
    print(json.dumps(result, indent=2))
    return result


if __name__ == "__main__":
    main()
