"""Our models beside three peers (fastText, VADER, TextBlob) on the same reviews, in one run:
IMDB test accuracy and reviews/s.

    python -m benchmarks.peers --data ../shared/data/imdb \
        --models imdb imdb-fast imdb-cascade imdb-onnx --reviews 2000 --rounds 3 \
        --output runs/peers.json

The peers are benchmark-only dependencies (``pip install -e ".[peers]"``), never the
package's; each is imported only when asked for (``--peers``).

Split: the one ``--split-model``'s ``config.json`` defines (default the shipped ``imdb``: seed 0,
a stratified tenth of the train file for validation, so 22,500 training / 2,500 validation
reviews, and the 25,000 test reviews), read by the package's own
:func:`sentiment.train.prepare.classifier_splits`, as training does. fastText (supervised,
softmax, bucket 2M, its own cleaning: :func:`fasttext_text`, the file in a seeded shuffled
order) trains on the 22,500 training reviews with each setting of ``--fasttext-grid``; the
setting with the best validation accuracy (the first in grid order on a tie) is the only one
scored on the test split. VADER: compound >= 0 is positive; TextBlob (its default
PatternAnalyzer, no corpus download): polarity >= 0 is positive; neither is fitted, and both
read the text with HTML line breaks made spaces (the package's ``clean_text``). Our models:
``text_probabilities`` >= 0.5 is positive (label 1).

Speed: the first ``--reviews`` test reviews, raw, in file order (IMDB's test file is negatives
first, so 2,000 are all negative; the result records the share). Every scorer is warmed up
once on the next ``--reviews`` test reviews, then timed ``--rounds`` rounds in turns (each
round times every scorer in turn, so that a noisy machine hits each alike), one whole call per
round: ours ``text_probabilities`` on the raw
texts (clean, tokenize, score), fastText its cleaning and ``predict`` on the batch, VADER and
TextBlob one call per text. The tokenizer's chunk store is put back before every timed call to
what it holds after the first ``--store-reviews`` training reviews (0: a fresh process's
first call), as :mod:`benchmarks.throughput` does.

Accuracy: every scorer on the whole test split (``--accuracy-reviews N``: a seeded sample of N,
the config's ``test_limit`` rule, for quick checks only), with Wilson 95% intervals; fastText's
settings also on validation. The result names the split of every figure.
"""

from __future__ import annotations

import argparse
import importlib
import importlib.metadata
import itertools
import json
import os
import platform
import re
import shlex
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable, Sequence
from dataclasses import replace
from pathlib import Path

import numpy as np
import pyarrow.parquet as pq

from sentiment.report.metrics import wilson_interval
from sentiment.text.clean import cleaned

# the peers' import names and the distributions that hold them (the ``peers`` extra)
PEER_MODULES = {"fasttext": ("fasttext", "fasttext-wheel"),
                "vader": ("vaderSentiment.vaderSentiment", "vaderSentiment"),
                "textblob": ("textblob", "textblob")}
PEERS = tuple(PEER_MODULES)
DEFAULT_GRID = ("wordNgrams=1,2,3", "epoch=5,10", "lr=0.5,1.0", "dim=50")
GRID_KEYS = {"wordNgrams": int, "epoch": int, "lr": float, "dim": int, "minCount": int,
             "bucket": int, "loss": str}
FASTTEXT_FIXED = {"loss": "softmax", "bucket": 2_000_000, "minCount": 1, "seed": 0}
CPU_FLAGS = ("avx2", "avx512f", "avx512_bf16", "amx_bf16", "amx_tile", "amx_int8")
VERSIONS = ("torch", "numpy", "onnxruntime", "fasttext", "fasttext-wheel", "vaderSentiment",
            "textblob", "nltk")

Scorer = Callable[[Sequence[str]], np.ndarray]  # raw texts -> labels (1 = positive), (N,)


def import_peer(peer: str):
    """The module of ``peer`` (``fasttext``, ``vader``, ``textblob``), or an ImportError that
    says how to install the benchmark's extra."""
    module, distribution = PEER_MODULES[peer]
    try:
        return importlib.import_module(module)
    except ImportError as error:
        raise ImportError(f"{peer} is a peer of benchmarks/peers.py, not a dependency of the "
                          f"package: pip install -e \".[peers]\" (or pip install "
                          f"{distribution}); {error}") from error


# ---- fastText

_HTML_BREAK = re.compile(r"<br\s*/?>", flags=re.IGNORECASE)
_PUNCTUATION = re.compile(r"([^\w\s])")
_SPACES = re.compile(r"\s+")


def fasttext_text(text: str) -> str:
    """fastText's own cleaning (its IMDB-style recipe): lowercased, HTML line breaks removed,
    every punctuation mark split off as a token of its own, on one line."""
    text = _PUNCTUATION.sub(r" \1 ", _HTML_BREAK.sub(" ", text.lower()))
    return _SPACES.sub(" ", text).strip()


def parse_grid(entries: Sequence[str]) -> dict[str, list]:
    """``["wordNgrams=1,2", "lr=0.1,0.5"]`` -> ``{"wordNgrams": [1, 2], "lr": [0.1, 0.5]}``."""
    grid: dict[str, list] = {}
    for entry in entries:
        key, equals, values = entry.partition("=")
        if not equals or not values:
            raise ValueError(f"--fasttext-grid takes KEY=V1,V2 entries, not {entry!r}")
        if key not in GRID_KEYS:
            raise ValueError(f"--fasttext-grid: unknown key {key!r}; expected one of "
                             f"{sorted(GRID_KEYS)}")
        try:
            grid[key] = [GRID_KEYS[key](value) for value in values.split(",")]
        except ValueError:
            raise ValueError(f"--fasttext-grid: {key} takes {GRID_KEYS[key].__name__} values, "
                             f"not {values!r}") from None
    return grid


def grid_settings(grid: dict[str, list]) -> list[dict]:
    """Every setting of ``grid``, in order (the last key varies fastest)."""
    return [dict(zip(grid, values)) for values in itertools.product(*grid.values())]


def write_fasttext_file(path: str | Path, texts: Sequence[str], labels: Sequence[int],
                        seed: int = 0) -> None:
    """fastText's training file: ``__label__0``/``__label__1`` and the text cleaned by
    :func:`fasttext_text`, one review a line, in a seeded shuffled order (fastText reads its
    file in order, and IMDB's split is negatives first: unshuffled, it learns little)."""
    texts, labels = list(texts), list(labels)
    order = np.random.default_rng(seed).permutation(len(texts))
    with open(path, "w", encoding="utf-8") as lines:
        for index in order:
            lines.write(f"__label__{int(labels[index])} {fasttext_text(texts[index])}\n")


def train_fasttext(path: str | Path, settings: dict, threads: int = 1):
    """A supervised fastText model of the training file at ``path``
    (:func:`write_fasttext_file`), with :data:`FASTTEXT_FIXED` under ``settings``."""
    fasttext = import_peer("fasttext")
    return fasttext.train_supervised(str(path), **{**FASTTEXT_FIXED, **settings},
                                     thread=threads, verbose=0)


def fasttext_scorer(model) -> Scorer:
    """A fastText model as a scorer: its cleaning and ``predict`` on the whole batch."""
    def score(texts: Sequence[str]) -> np.ndarray:
        predicted, _ = model.predict([fasttext_text(text) for text in texts], k=1)
        return np.array([labels[0] == "__label__1" for labels in predicted], dtype=np.int64)
    return score


def choose_setting(trials: list[dict]) -> dict:
    """The trial with the best ``valid_accuracy`` (the first of equals; failed trials, whose
    accuracy is None, never)."""
    scored = [trial for trial in trials if trial["valid_accuracy"] is not None]
    if not scored:
        raise RuntimeError("every fastText setting failed to train")
    return max(scored, key=lambda trial: trial["valid_accuracy"])


def fasttext_search(train: tuple[Sequence[str], Sequence[int]],
                    valid: tuple[Sequence[str], Sequence[int]], grid: dict[str, list],
                    threads: int = 1, log: Callable[[str], None] | None = None) -> tuple:
    """``(model, chosen, trials)``: fastText trained with every setting of ``grid`` on ``train``
    (texts, labels), each scored on ``valid``; the model of the best validation accuracy."""
    log = log or (lambda line: print(line, file=sys.stderr))
    valid_labels = np.asarray(valid[1])
    trials, best_model, best = [], None, None
    with tempfile.TemporaryDirectory() as folder:
        path = Path(folder) / "train.txt"
        write_fasttext_file(path, *train)
        for settings in grid_settings(grid):
            start = time.perf_counter()
            try:
                model = train_fasttext(path, settings, threads)
            except RuntimeError as error:  # a diverging setting ("Encountered NaN.")
                trials.append({"settings": settings, "valid_accuracy": None,
                               "error": str(error)})
                log(f"fastText {settings}: {error}")
                continue
            seconds = time.perf_counter() - start
            accuracy = float((fasttext_scorer(model)(valid[0]) == valid_labels).mean())
            trials.append({"settings": settings, "valid_accuracy": accuracy,
                           "train_s": round(seconds, 2)})
            log(f"fastText {settings}: validation {accuracy:.4f} ({seconds:.0f} s)")
            if choose_setting(trials) is trials[-1]:
                best_model, best = model, trials[-1]
    if best is None:
        choose_setting(trials)  # raises: nothing trained
    return best_model, best, trials


# ---- VADER and TextBlob

def vader_scorer() -> Scorer:
    """VADER, one call per text: compound >= 0 is positive."""
    analyzer = import_peer("vader").SentimentIntensityAnalyzer()

    def score(texts: Sequence[str]) -> np.ndarray:
        return np.array([analyzer.polarity_scores(text)["compound"] >= 0
                         for text in cleaned(texts)], dtype=np.int64)
    return score


def textblob_scorer() -> Scorer:
    """TextBlob (PatternAnalyzer), one call per text: polarity >= 0 is positive."""
    text_blob = import_peer("textblob").TextBlob

    def score(texts: Sequence[str]) -> np.ndarray:
        return np.array([text_blob(text).sentiment.polarity >= 0 for text in cleaned(texts)],
                        dtype=np.int64)
    return score


# ---- ours

def model_scorer(model) -> Scorer:
    """One of our models: ``text_probabilities`` >= 0.5 is positive (label 1)."""
    if len(model.labels) != 2:
        raise ValueError(f"{model.path}: a peer table compares binary sentiment models; this "
                         f"one has labels {model.labels}")

    def score(texts: Sequence[str]) -> np.ndarray:
        return (np.asarray(model.text_probabilities(texts)) >= 0.5).astype(np.int64)
    return score


def card_accuracy(model) -> dict | None:
    """The test accuracy the model's card states, when it has one."""
    card = Path(model.path or ".") / "card.json"
    if not card.is_file():
        return None
    values = json.loads(card.read_text(encoding="utf-8"))
    if "test_accuracy" not in values:
        return None
    return {"accuracy": values["test_accuracy"], "n": values.get("n_test")}


# ---- measuring

def time_in_turns(scorers: dict[str, Scorer], texts: Sequence[str], rounds: int,
                  warm_up: Sequence[str], before_each: Callable[[], None] | None = None
                  ) -> dict[str, list[float]]:
    """Reviews/s of each scorer on ``texts``, one whole call per round, the scorers in turns
    round by round, after one warm-up call each on ``warm_up``."""
    for score in scorers.values():
        score(warm_up)
    rates: dict[str, list[float]] = {name: [] for name in scorers}
    for _ in range(rounds):
        for name, score in scorers.items():
            if before_each is not None:
                before_each()
            start = time.perf_counter()
            score(texts)
            rates[name].append(len(texts) / (time.perf_counter() - start))
    return rates


def rate_summary(rates: Sequence[float]) -> dict:
    """Median, min and max of a scorer's per-round rates."""
    return {"median": statistics.median(rates), "min": min(rates), "max": max(rates),
            "per_round": [round(rate, 1) for rate in rates]}


def accuracy_figure(labels: Sequence[int], predicted: Sequence[int], split: str) -> dict:
    """Accuracy with its Wilson 95% interval, and the split it is on."""
    right = int((np.asarray(predicted) == np.asarray(labels)).sum())
    low, high = wilson_interval(right, len(labels))
    return {"accuracy": right / len(labels), "ci95": [low, high], "n": len(labels),
            "split": split}


def in_chunks(score: Scorer, texts: Sequence[str], name: str, chunk: int = 2_000) -> np.ndarray:
    """``score`` of many texts, a chunk at a time, with a progress bar."""
    from tqdm.auto import tqdm

    parts = [score(texts[start:start + chunk])
             for start in tqdm(range(0, len(texts), chunk), desc=name, leave=False)]
    return np.concatenate(parts) if parts else np.zeros(0, dtype=np.int64)


def markdown_table(rows: list[dict]) -> str:
    """scorer | reviews/s median (min–max) | IMDB test accuracy (95% interval) | settings."""
    lines = ["| scorer | reviews/s median (min–max) | IMDB test accuracy (95% interval) | "
             "settings |", "| --- | --- | --- | --- |"]
    for row in rows:
        speed = row.get("reviews_per_s")
        speed_cell = (f"{speed['median']:,.0f} ({speed['min']:,.0f}–{speed['max']:,.0f})"
                      if speed else "—")
        test = row.get("test")
        test_cell = (f"{test['accuracy']:.4f} ({test['ci95'][0]:.4f}–{test['ci95'][1]:.4f})"
                     + ("" if test["n"] == 25_000 else f", n = {test['n']:,}")
                     if test else "—")
        lines.append(f"| {row['name']} | {speed_cell} | {test_cell} | {row['settings']} |")
    return "\n".join(lines)


def machine_info() -> dict:
    """``lscpu``'s model name and the vector flags that matter here, cores, Python."""
    try:
        lscpu = subprocess.run(["lscpu"], capture_output=True, text=True, check=True).stdout
    except (OSError, subprocess.CalledProcessError):
        lscpu = ""
    fields = dict(line.split(":", 1) for line in lscpu.splitlines() if ":" in line)
    flags = set(fields.get("Flags", "").split())
    if not flags and Path("/proc/cpuinfo").is_file():
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("flags"):
                flags = set(line.split(":", 1)[1].split())
                break
    model = fields.get("Model name", "").strip()
    if not model:
        from sentiment.runtime.precision import cpu_model
        model = cpu_model()
    return {"cpu": model, "flags": [flag for flag in CPU_FLAGS if flag in flags],
            "cores": os.cpu_count(), "python": platform.python_version(),
            "platform": platform.platform()}


def versions() -> dict:
    """The installed versions of the packages the figures depend on (None: not installed)."""
    found = {}
    for name in VERSIONS:
        try:
            found[name] = importlib.metadata.version(name)
        except importlib.metadata.PackageNotFoundError:
            found[name] = None
    return found


# ---- the run

def main(argv: list[str] | None = None) -> dict:
    parser = argparse.ArgumentParser(description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--data", default="../shared/data/imdb")
    parser.add_argument("--models", nargs="*", default=["imdb"],
                        help="our models: shipped names or folders (an n-gram folder too)")
    parser.add_argument("--peers", nargs="*", default=list(PEERS), choices=PEERS)
    parser.add_argument("--split-model", default="sentiment/models/imdb/reviews",
                        help="the model folder whose config.json defines the split")
    parser.add_argument("--reviews", type=int, default=2_000, help="timed test reviews")
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--store-reviews", type=int, default=0,
                        help="training reviews the tokenizer's chunk store has read before "
                             "every timed call (0: none)")
    parser.add_argument("--accuracy-reviews", type=int, default=None,
                        help="score only a seeded sample of this many test reviews (quick "
                             "checks; default: all)")
    parser.add_argument("--fasttext-grid", nargs="+", default=list(DEFAULT_GRID),
                        metavar="KEY=V1,V2", help=f"fastText settings tried on validation "
                        f"(keys {sorted(GRID_KEYS)}; default {' '.join(DEFAULT_GRID)})")
    parser.add_argument("--fasttext-threads", type=int, default=1,
                        help="fastText's training threads (1: the same model every run; its "
                             "predict is one thread)")
    parser.add_argument("--torch-threads", type=int, default=None,
                        help="torch's threads while scoring (default: torch's own choice)")
    parser.add_argument("--output", default=None, help="write the result here (JSON)")
    args = parser.parse_args(argv)
    if args.reviews < 1 or args.rounds < 1:
        parser.error("--reviews and --rounds must be >= 1")
    if args.accuracy_reviews is not None and args.accuracy_reviews < 2:
        parser.error("--accuracy-reviews must be >= 2")
    try:
        grid = parse_grid(args.fasttext_grid)
    except ValueError as error:
        parser.error(str(error))
    for peer in args.peers:
        import_peer(peer)  # fail before any long work
    command = "python -m benchmarks.peers " + shlex.join(sys.argv[1:] if argv is None else argv)

    from sentiment import load_model

    config, splits = _splits(args.split_model, args.data, args.accuracy_reviews)
    test_name = (f"test ({len(splits['test']):,} reviews"
                 + (f", a seeded sample of {args.accuracy_reviews:,})" if args.accuracy_reviews
                    else ")"))
    split = {"config": str(Path(args.split_model) / "config.json"), "seed": config.split_seed,
             "valid_fraction": config.data.valid_fraction, "train": len(splits["train"]),
             "valid": len(splits["valid"]), "test": len(splits["test"]),
             "test_sample": args.accuracy_reviews}
    first = pq.read_table(Path(args.data) / "test.parquet", columns=["text", "label"]).slice(
        0, 2 * args.reviews)
    texts = first["text"].to_pylist()
    timed, warm_up = texts[:args.reviews], texts[args.reviews:] or texts[:args.reviews]
    positive_share = float(np.mean(first["label"].to_numpy()[:args.reviews] == 1))

    rows: dict[str, dict] = {}
    scorers: dict[str, Scorer] = {}
    ours = [load_model(name) for name in args.models]
    for name, model in zip(args.models, ours):
        scorers[name] = model_scorer(model)
        card = card_accuracy(model)
        rows[name] = {"name": name, "ours": True, "kind": model.kind, "path": str(model.path),
                      "card": card,
                      "settings": f"ours ({model.kind}), text_probabilities >= 0.5"
                                  + (f"; its card: {card['accuracy']:.4f}" if card else "")}
    peer_scorers, peer_rows = _peers(args.peers, splits, grid, args.fasttext_threads)
    scorers.update(peer_scorers)
    rows.update(peer_rows)
    if not scorers:
        parser.error("nothing to compare: name --models or --peers")

    from benchmarks.throughput import _chunk_stores
    from sentiment.text import tokenize

    stores = _chunk_stores(args.data, args.store_reviews,
                           [model for model in ours if hasattr(model, "tokens")])

    def restore_chunk_stores() -> None:
        for lowercase, chunks in stores.items():
            tokenize.chunk_store(lowercase).clear()
            tokenize.chunk_store(lowercase).update(chunks)

    import torch

    threads = torch.get_num_threads()
    if args.torch_threads:
        torch.set_num_threads(args.torch_threads)
    try:
        rates = time_in_turns(scorers, timed, args.rounds, warm_up, restore_chunk_stores)
        labels = np.asarray(splits["test"]["label"])
        test_texts = list(splits["test"]["text"])
        for name, score in scorers.items():
            rows[name]["reviews_per_s"] = rate_summary(rates[name])
            rows[name]["test"] = accuracy_figure(labels, in_chunks(score, test_texts, name),
                                                 test_name)
        scoring_threads = torch.get_num_threads()
    finally:
        torch.set_num_threads(threads)
    result = {
        "command": command, "date": time.strftime("%Y-%m-%d %H:%M"),
        "machine": machine_info(), "versions": versions(),
        "threads": {"torch": scoring_threads, "fasttext_training":
                    args.fasttext_threads if "fasttext" in args.peers else None},
        "split": split,
        "timing": {"texts": f"the first {len(timed):,} reviews of test.parquet, file order, "
                            "raw", "positive_share": positive_share, "rounds": args.rounds,
                   "warm_up": f"one call per scorer on the next {len(warm_up):,} test reviews",
                   "store_reviews": args.store_reviews},
        "rules": {"ours": "text_probabilities >= 0.5 → positive (label 1)",
                  "fastText": "its top label; its own cleaning (lowercased, <br /> removed, "
                              "punctuation split off)",
                  "VADER": "compound >= 0 → positive", "TextBlob": "polarity >= 0 → positive"},
        "scorers": rows,
    }
    table = markdown_table(list(rows.values()))
    result["table"] = table
    if args.output:
        Path(args.output).write_text(json.dumps(result, indent=2) + "\n", encoding="utf-8")
    print(table)
    return result


def _peers(names: Sequence[str], splits: dict, grid: dict[str, list], threads: int
           ) -> tuple[dict[str, Scorer], dict[str, dict]]:
    """The peers' scorers and rows: fastText chosen on ``splits``' validation reviews, VADER
    and TextBlob as they come."""
    scorers: dict[str, Scorer] = {}
    rows: dict[str, dict] = {}
    if "fasttext" in names:
        train, valid = splits["train"], splits["valid"]
        model, chosen, trials = fasttext_search((train["text"], train["label"]),
                                                (valid["text"], valid["label"]), grid, threads)
        scorers["fastText"] = fasttext_scorer(model)
        settings = " ".join(f"{key}={value}" for key, value in chosen["settings"].items())
        rows["fastText"] = {
            "name": "fastText", "ours": False, "chosen": chosen["settings"],
            "fixed": {**FASTTEXT_FIXED, "thread": threads}, "grid": grid, "trials": trials,
            "valid": accuracy_figure(valid["label"], scorers["fastText"](valid["text"]),
                                     f"validation ({len(valid):,} reviews)"),
            "settings": f"{settings}, softmax, bucket 2M, {threads} training thread(s); best "
                        f"of {len(trials)} on validation ({chosen['valid_accuracy']:.4f})"}
    if "vader" in names:
        scorers["VADER"] = vader_scorer()
        rows["VADER"] = {"name": "VADER", "ours": False,
                         "settings": "compound >= 0 → positive, no fitting; one call per text"}
    if "textblob" in names:
        scorers["TextBlob"] = textblob_scorer()
        rows["TextBlob"] = {"name": "TextBlob", "ours": False,
                            "settings": "polarity >= 0 → positive (PatternAnalyzer), no "
                                        "fitting; one call per text"}
    return scorers, rows


def _splits(split_model: str, data: str, test_reviews: int | None):
    """``(config, splits)``: the split ``split_model``'s config defines, read from ``data``;
    the test split a seeded sample of ``test_reviews`` when given."""
    from sentiment.kinds.checkpoint import read_config
    from sentiment.train.prepare import classifier_splits

    config = read_config(split_model)
    source = replace(config.data, source=data, test_limit=test_reviews)
    return config, classifier_splits(source, config.split_seed)


if __name__ == "__main__":
    main()
