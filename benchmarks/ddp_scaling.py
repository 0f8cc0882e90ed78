"""Training tokens/s in one process against N torchrun processes, on the same machine, one run.

    python -m benchmarks.ddp_scaling --data ../shared/data/imdb --train-limit 3000

Trains the default classifier for one epoch on ``--train-limit`` labelled reviews twice, in
turn: one process with ``--threads`` threads, and ``--processes`` torchrun processes with
``threads / processes`` threads each (Gloo on CPU; on a GPU machine pass ``--device cuda`` and
one process per GPU). Prints each variant's training tokens/s (summed over ranks) and the ratio.
On a 2-core machine this compares two ways to use the same cores, not scaling.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
from pathlib import Path


def run(processes: int, threads: int, args, output: Path) -> dict:
    command = [sys.executable]
    if processes > 1:
        command += ["-m", "torch.distributed.run", "--standalone", "--nproc_per_node",
                    str(processes)]
    command += ["-m", "sentiment", "train", "--data", args.data, "--train-limit",
                str(args.train_limit), "--epochs", "1", "--no-evaluate", "--no-progress",
                "--output", str(output), "--device", args.device, "--no-resume"]
    if args.vectors:
        command += ["--vectors", args.vectors]
    env = {**os.environ, "OMP_NUM_THREADS": str(threads), "SENTIMENT_NO_TCMALLOC": "1"}
    result = subprocess.run(command, capture_output=True, text=True, env=env)
    if result.returncode != 0:
        raise RuntimeError(result.stderr[-3000:])
    record = json.loads((output / "metrics.jsonl").read_text().splitlines()[-1])
    return {"processes": processes, "threads_each": threads,
            "train_tokens": record["train_tokens"],
            "train_tokens_per_s": record["train_tokens_per_s"],
            "train_seconds": record["train_seconds"], "valid_accuracy": record["valid_accuracy"]}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--data", default="../shared/data/imdb")
    parser.add_argument("--vectors", default="../shared/data/glove/glove.6B.50d.txt.gz")
    parser.add_argument("--train-limit", type=int, default=3000)
    parser.add_argument("--processes", type=int, default=2)
    parser.add_argument("--threads", type=int, default=os.cpu_count() or 2)
    parser.add_argument("--device", default="cpu")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as folder:
        single = run(1, args.threads, args, Path(folder) / "one")
        multi = run(args.processes, max(1, args.threads // args.processes), args,
                    Path(folder) / "many")
    print(json.dumps(single))
    print(json.dumps(multi))
    print(json.dumps({"ratio_many_over_one": multi["train_tokens_per_s"]
                      / single["train_tokens_per_s"]}))


if __name__ == "__main__":
    main()
