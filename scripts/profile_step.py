"""Time and profile one training step of the default sentiment model on a synthetic batch.

    python scripts/profile_step.py                       # float32 and mixed, this package's dropout
    python scripts/profile_step.py --compare-dropout     # also with torch's nn.Dropout, same run
    python scripts/profile_step.py --profile             # torch.profiler table of the mixed step
    python scripts/profile_step.py --gemm                # this CPU's matrix-product ceilings

The batch is 64 random reviews of 255-284 tokens (a typical length-bucketed batch); the model is
the default architecture (100-d embedding, 2-layer BiLSTM 256, concat head) with Adam. Variants
are timed in turns in one process, so their ratio is fair on a noisy machine.
"""

from __future__ import annotations

import argparse
import time

import torch
from torch import nn

from sentiment.cli.options import use_tcmalloc
from sentiment.config import HeadConfig
from sentiment.data.batching import pad_batch
from sentiment.nn.core import CoreConfig, Dropout, RNNCore
from sentiment.nn.heads import SentimentClassifier
from sentiment.runtime.precision import autocast, cpu_has_native_bf16, dtype_name


def make_step(dtype, torch_dropout: bool, batch):
    torch.manual_seed(0)
    model = SentimentClassifier(RNNCore(CoreConfig(vocab_size=10_002, embed_dim=100)),
                                HeadConfig(pooling="concat"))
    if torch_dropout:
        for name in ("input_dropout", "dropout"):
            setattr(model.core, name, nn.Dropout(getattr(model.core, name).p))
    assert torch_dropout or isinstance(model.core.dropout, Dropout)
    optimizer = torch.optim.Adam(model.parameters(), lr=1e-3)
    device = torch.device("cpu")

    def step():
        with autocast(device, dtype):
            output = model(batch)
        optimizer.zero_grad()
        output.loss.backward()
        nn.utils.clip_grad_norm_(model.parameters(), 1.0)
        optimizer.step()

    return step


def gemm_ceilings(repeats: int = 20) -> None:
    """GFLOP/s of one large matrix product and of the LSTM's per-step recurrent product
    (64 x 256 by 256 x 1024) in float32 and bfloat16: what the recurrences can at best reach."""
    shapes = {"large 2048 x 2048 x 2048": (2048, 2048, 2048),
              "recurrent step 64 x 256 x 1024": (64, 256, 1024),
              "char LM step (d2l) 32 x 256 x 1024": (32, 256, 1024),
              "input projection 18176 x 512 x 1024": (18_176, 512, 1024)}
    for label, (m, k, n) in shapes.items():
        for dtype in (torch.float32, torch.bfloat16):
            a, b = torch.randn(m, k, dtype=dtype), torch.randn(k, n, dtype=dtype)
            count = max(3, int(repeats * 2e9 / (2 * m * k * n)))
            torch.mm(a, b)
            start = time.perf_counter()
            for _ in range(count):
                torch.mm(a, b)
            seconds = (time.perf_counter() - start) / count
            name = dtype_name(dtype)
            print(f"{label:36s} {name:9s} {2 * m * k * n / seconds / 1e9:7.0f} GFLOP/s")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--repeats", type=int, default=4, help="timed rounds (default: 4)")
    parser.add_argument("--compare-dropout", action="store_true",
                        help="also time torch's nn.Dropout in place of sentiment.nn.core.Dropout")
    parser.add_argument("--profile", action="store_true", help="print a torch.profiler table")
    parser.add_argument("--gemm", action="store_true",
                        help="measure matrix-product GFLOP/s instead of a training step")
    args = parser.parse_args()
    use_tcmalloc()
    torch.set_flush_denormal(True)  # an entry point: the whole process, as training runs
    if args.gemm:
        gemm_ceilings()
        return
    generator = torch.Generator().manual_seed(0)
    lengths = torch.randint(255, 285, (64,), generator=generator).tolist()
    batch = pad_batch([torch.randint(2, 10_002, (n,), generator=generator).tolist()
                       for n in lengths])
    batch.targets = torch.randint(0, 2, (64,), generator=generator).float()
    mixed = torch.bfloat16 if cpu_has_native_bf16() else None  # both, whichever is faster
    variants = {"float32": (None, False)}
    if mixed is not None:
        variants[dtype_name(mixed)] = (mixed, False)
    if args.compare_dropout:
        variants.update({f"{name}, nn.Dropout": (dtype, True)
                         for name, (dtype, _) in list(variants.items())})
    steps = {name: make_step(dtype, plain, batch) for name, (dtype, plain) in variants.items()}
    for step in steps.values():  # warm-up
        step()
    seconds = dict.fromkeys(steps, 0.0)
    for _ in range(args.repeats):
        for name, step in steps.items():
            start = time.perf_counter()
            step()
            seconds[name] += time.perf_counter() - start
    tokens = sum(lengths)
    for name, total in seconds.items():
        per_step = total / args.repeats
        print(f"{name:28s} {1000 * per_step:7.0f} ms/step  {tokens / per_step:8.0f} tokens/s")
    if args.profile:
        from torch.profiler import ProfilerActivity, profile

        name = next(reversed([n for n, (_, plain) in variants.items() if not plain]))
        with profile(activities=[ProfilerActivity.CPU]) as prof:
            steps[name]()
        print(f"\nprofile of one {name} step")
        print(prof.key_averages().table(sort_by="self_cpu_time_total", row_limit=15))


if __name__ == "__main__":
    main()
