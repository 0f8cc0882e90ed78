"""``predict``'s throughput under two versions of the package: one model, the same reviews and
machine, in turns, in one run.

    python -m benchmarks.versions --baseline 67a76f6~1 --model sentiment/models/imdb \
        --reviews 2000 --rounds 3 --store-reviews 20000

The baseline commit is checked out (``git worktree``) into a temporary folder. Every round runs
one process per version, in turn: it loads the model, tokenizes the first ``--store-reviews``
training reviews (what a process that has scored them knows: a version with a chunk store
keeps their chunks, an older one nothing), warms up on the next ``--reviews`` test reviews (the
first call of a process builds oneDNN's kernels for each batch shape), then times one ``predict``
of the first ``--reviews`` test reviews in batches of 64, with that version's own defaults.
``--current-model`` gives this tree another model (an ONNX int8 export of the same one, say).
``--baseline-drops data.split_seed`` gives the baseline a copy of ``--model`` whose config
lacks the fields it does not know yet (they choose data splits, not scores; the weights are
the same files).
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]

# what each process runs, with the version's folder first on its path
MEASURE = """
import json, sys, time
import pyarrow.parquet as pq
import sentiment
from sentiment import load_model
from sentiment import predict
from sentiment.text.tokenize import Tokenizer
data, model_path, reviews, store = sys.argv[1], sys.argv[2], int(sys.argv[3]), int(sys.argv[4])
texts = pq.read_table(f"{data}/test.parquet", columns=["text"]).slice(0, 2 * reviews)["text"]
texts, others = texts.to_pylist()[:reviews], texts.to_pylist()[reviews:]
model = load_model(model_path)
if store:
    seen = pq.read_table(f"{data}/train.parquet", columns=["text"]).slice(0, store)["text"]
    seen = seen.to_pylist()
    tokenizer = Tokenizer(lowercase=model.config.data.lowercase)
    for start in range(0, len(seen), 2000):
        tokenizer.pipe(seen[start:start + 2000])
predict(others, model=model, batch_size=64)
start = time.perf_counter()
predict(texts, model=model, batch_size=64)
print(json.dumps({"reviews_per_s": len(texts) / (time.perf_counter() - start),
                  "package": sentiment.__file__}))
"""


def measure(tree: Path, data: str, model: str, reviews: int, store: int) -> dict:
    """One process of the version in ``tree``: its ``predict`` rate on the reviews."""
    env = {**os.environ, "PYTHONPATH": str(tree)}
    done = subprocess.run([sys.executable, "-c", MEASURE, data, model, str(reviews), str(store)],
                          cwd=tree, env=env, capture_output=True, text=True)
    if done.returncode:
        raise RuntimeError(f"the version in {tree} failed:\n{done.stderr[-3000:]}")
    result = json.loads(done.stdout.strip().splitlines()[-1])
    if Path(result["package"]).resolve().parent.parent != tree.resolve():
        raise RuntimeError(f"{tree} imported the package from {result['package']}")
    return result


def _without_fields(model: Path, copy: Path, fields: list[str]) -> Path:
    """``copy``: ``model``'s files linked, its ``config.json`` without ``fields``
    (``section.field``; a missing one is an error)."""
    copy.mkdir()
    for item in model.iterdir():
        if item.name != "config.json":
            (copy / item.name).symlink_to(item.resolve())
    config = json.loads((model / "config.json").read_text(encoding="utf-8"))
    for field in fields:
        section, _, name = field.rpartition(".")
        part = config[section] if section else config
        if name not in part:
            raise KeyError(f"{model / 'config.json'} has no field {field}")
        del part[name]
    (copy / "config.json").write_text(json.dumps(config, indent=2), encoding="utf-8")
    return copy


def main(argv: list[str] | None = None) -> dict:
    parser = argparse.ArgumentParser(description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--baseline", required=True, help="a commit of this repository")
    parser.add_argument("--data", default="../shared/data/imdb")
    parser.add_argument("--model", default="sentiment/models/imdb/reviews")
    parser.add_argument("--current-model", default=None, help="this tree's (default: --model)")
    parser.add_argument("--reviews", type=int, default=2_000)
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--store-reviews", type=int, default=0)
    parser.add_argument("--baseline-drops", nargs="+", default=[], metavar="SECTION.FIELD",
                        help="config fields newer than the baseline, left out of its copy")
    parser.add_argument("--output", default=None)
    args = parser.parse_args(argv)
    data, model = str(Path(args.data).resolve()), str(Path(args.model).resolve())
    current_model = str(Path(args.current_model).resolve()) if args.current_model else model
    commit = subprocess.run(["git", "rev-parse", "--short", args.baseline], cwd=ROOT, check=True,
                            capture_output=True, text=True).stdout.strip()
    rates: dict[str, list[float]] = {commit: [], "current": []}
    with tempfile.TemporaryDirectory() as folder:
        baseline = Path(folder) / "baseline"
        subprocess.run(["git", "worktree", "add", "--detach", str(baseline), commit], cwd=ROOT,
                       check=True, capture_output=True)
        try:
            if args.baseline_drops:
                model = str(_without_fields(Path(model), Path(folder) / "model",
                                            args.baseline_drops))
            for _ in range(args.rounds):
                for name, tree, path in ((commit, baseline, model),
                                         ("current", ROOT, current_model)):
                    rates[name].append(measure(tree, data, path, args.reviews,
                                               args.store_reviews)["reviews_per_s"])
        finally:
            subprocess.run(["git", "worktree", "remove", "--force", str(baseline)], cwd=ROOT,
                           capture_output=True)
    result = {"baseline": commit, "model": args.model, "baseline_drops": args.baseline_drops,
              "current_model": args.current_model or args.model, "reviews": args.reviews,
              "store_reviews": args.store_reviews, "reviews_per_s": rates,
              "ratio_per_round": [new / old for new, old in zip(rates["current"], rates[commit])]}
    print(json.dumps(result))
    if args.output:
        Path(args.output).write_text(json.dumps(result, indent=1) + "\n")
    return result


if __name__ == "__main__":
    main()
