from __future__ import annotations

import json
import os
import random
import subprocess
import sys
from pathlib import Path

# Tiny models gain nothing from a second thread, and two processes with two threads each on two
# cores (a test beside a script it starts, or beside a training run) thrash. Subprocesses inherit.
os.environ.setdefault("OMP_NUM_THREADS", "1")

import pytest

SHARED = Path(__file__).resolve().parents[1].parent / "shared" / "data"
IMDB = SHARED / "imdb"
GLOVE50 = SHARED / "glove" / "glove.6B.50d.txt.gz"
TEXTS = SHARED / "text"

POSITIVE = ["great", "wonderful", "loved", "brilliant", "moving", "superb", "enjoyable"]
NEGATIVE = ["awful", "terrible", "boring", "dull", "hated", "waste", "worst"]
FILLER = ("the movie film story actor plot scene was and it this of a to with but "
          "director music long short camera ending character").split()


def synthetic_reviews(n: int, seed: int) -> list[dict]:
    """Reviews whose label is told by a few sentiment words among filler, with <br /> breaks."""
    rng = random.Random(seed)
    rows = []
    for i in range(n):
        label = i % 2
        words = [rng.choice(FILLER) for _ in range(rng.randint(8, 60))]
        for _ in range(rng.randint(1, 3)):
            words.insert(rng.randrange(len(words) + 1), rng.choice(POSITIVE if label else NEGATIVE))
        text = " ".join(words[:10]) + ". <br /><br />" + " ".join(words[10:]) + "."
        rows.append({"text": text.capitalize(), "label": label})
    return rows


def write_jsonl(path: Path, rows: list[dict]) -> None:
    path.write_text("".join(json.dumps(r) + "\n" for r in rows))


@pytest.fixture(scope="session")
def synthetic_dir(tmp_path_factory) -> Path:
    folder = tmp_path_factory.mktemp("synthetic")
    write_jsonl(folder / "train.jsonl", synthetic_reviews(2000, seed=1))
    write_jsonl(folder / "test.jsonl", synthetic_reviews(200, seed=2))
    write_jsonl(folder / "unsupervised.jsonl",
                [{"text": r["text"], "label": -1} for r in synthetic_reviews(1000, seed=3)])
    return folder


@pytest.fixture(scope="session")
def trained_model(synthetic_dir, tmp_path_factory) -> Path:
    """A tiny classifier trained on the synthetic data (shared by the tests that need one)."""
    from sentiment.train.recipe import make_config, train_sentiment

    output = tmp_path_factory.mktemp("model")
    config = make_config("tiny", data=str(synthetic_dir), output=str(output), epochs=4,
                         progress=False, baseline=False, num_proc=1)
    summary = train_sentiment(config)
    assert summary["report"]["accuracy"] > 0.9
    return output


@pytest.fixture(scope="session")
def wide_model(trained_model, tmp_path_factory):
    """The tiny classifier joined to an NB-LR n-gram model (sentiment.kinds.wide): (folder,
    record)."""
    from sentiment.train.stacking import build_wide

    output = tmp_path_factory.mktemp("wide") / "model"
    record = build_wide(trained_model, output, ngrams=300)
    return output, record


# CI sets this: a test that would skip for want of ../shared data or the browser fails instead,
# so that a green CI run means every test ran (a user's clone without ../shared still skips).
REQUIRE_ALL = os.environ.get("SENTIMENT_REQUIRE_ALL") == "1"


def needs(path: Path):
    """Run only where ``path`` exists: skip elsewhere, fail under SENTIMENT_REQUIRE_ALL=1."""
    return pytest.mark.needs_path(path)


def pytest_runtest_setup(item):
    for mark in item.iter_markers("needs_path"):
        path = Path(mark.args[0])
        if not path.exists():
            if REQUIRE_ALL:
                pytest.fail(f"{path} is missing and SENTIMENT_REQUIRE_ALL=1 requires it")
            pytest.skip(f"{path} not present")


def run_python(code: str, timeout: float = 300) -> dict:
    """The JSON that ``code``, run in a fresh Python process, prints last: for measurements
    that must not see this process's state (its peak memory so far, say)."""
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                            timeout=timeout, cwd=Path(__file__).resolve().parent)
    assert result.returncode == 0, result.stderr[-3000:]
    return json.loads(result.stdout.strip().splitlines()[-1])


def python_without(tmp_path: Path, *packages: str) -> list[str]:
    """A command that runs this Python as an install without ``packages`` would (say torch):
    ``python -S`` on a folder of links to every installed distribution but those, and this
    checkout. Tests what imports with a package missing, without building a second install."""
    import hashlib
    import site
    import sysconfig

    blocked = {name.lower().replace("-", "_") for name in packages}
    name = "-".join(sorted(blocked))
    if len(name) > 100:  # a long list (a whole install but a few) would pass the name limit
        name = hashlib.sha1(name.encode()).hexdigest()[:16]
    farm = tmp_path / ("site-without-" + name)
    farm.mkdir(exist_ok=True)
    for root in {sysconfig.get_paths()["purelib"], *site.getsitepackages()}:
        for entry in Path(root).iterdir():
            top = entry.name.split("-")[0].split(".")[0].lower()
            if (top in blocked or entry.suffix == ".pth" or top.startswith("__editable__")
                    or top == "sentiment" or (farm / entry.name).exists()):
                continue
            (farm / entry.name).symlink_to(entry)
    checkout = Path(__file__).resolve().parents[1]
    return ["env", f"PYTHONPATH={farm}:{checkout}", sys.executable, "-S"]


def printed_without(tmp_path: Path, packages: tuple[str, ...], code: str):
    """The JSON that ``code`` prints last, run as an install without ``packages`` would run it
    (:func:`python_without`)."""
    result = subprocess.run([*python_without(tmp_path, *packages), "-c", code],
                            capture_output=True, text=True, timeout=120)
    assert result.returncode == 0, result.stderr[-2000:]
    return json.loads(result.stdout.splitlines()[-1])
