"""Knowledge distillation onto unlabelled reviews: a teacher's soft labels become training
targets of a single student classifier (``sentiment train --teacher DIR``).

The student's training set is its labelled reviews, each with the target
``hard_weight * label + (1 - hard_weight) * teacher``, plus the unlabelled reviews (less any
text identical to a validation or test text) with the teacher's alone; the teacher's
probability is ``sigmoid(log-odds / temperature)``. BCEWithLogits takes such soft targets as
they are, so the training loop is unchanged. The teacher's log-odds are cached in the run's
folder, so a resumed run does not score again.
"""

from __future__ import annotations

import hashlib
import logging
from pathlib import Path

import datasets
import numpy as np

from .config import Config
from .prepare import numericalize, unlabelled_reviews
from .teacher import STACK_FILE, Teacher, check_split
from .tokenize import Tokenizer, tokenize_dataset
from .vocab import Vocab

logger = logging.getLogger(__name__)
CACHE = "teacher_logits.npz"


def _fingerprint(teacher_dir: str, texts: list[str]) -> str:
    """The cache key: the teacher (its folder and its stack, which holds its members'
    fingerprints: a teacher built again scores again) and the texts."""
    digest = hashlib.sha256(str(Path(teacher_dir).resolve()).encode())
    digest.update((Path(teacher_dir) / STACK_FILE).read_bytes())
    for text in texts:
        digest.update(text.encode("utf-8", "surrogatepass"))
        digest.update(b"\0")
    return digest.hexdigest()


def teacher_logits(teacher_dir: str, texts: list[str], cache: Path) -> np.ndarray:
    """The teacher's log-odds for ``texts``, from ``cache`` when it holds these texts'."""
    key = _fingerprint(teacher_dir, texts)
    if cache.exists():
        stored = np.load(cache)
        if str(stored["key"]) == key:
            logger.info("teacher's scores of %d texts from %s", len(texts), cache)
            return stored["logits"]
    logger.info("the teacher scores %d texts", len(texts))
    logits = Teacher.load(teacher_dir).logits(texts)
    cache.parent.mkdir(parents=True, exist_ok=True)
    tmp = cache.with_suffix(".tmp.npz")
    np.savez(tmp, key=np.asarray(key), logits=logits)
    tmp.replace(cache)
    return logits


def soft(logits: np.ndarray, temperature: float) -> np.ndarray:
    return 1.0 / (1.0 + np.exp(-np.asarray(logits) / temperature))


def distillation_set(config: Config, train: datasets.Dataset, train_ids: list, vocab: Vocab
                     ) -> tuple[list, np.ndarray, dict]:
    """``(ids, targets, summary)``: the labelled training reviews with mixed targets followed
    by the unlabelled reviews with the teacher's soft labels."""
    settings = config.train
    teacher = Teacher.load(settings.teacher)
    check_split(teacher, config.data, settings.seed)
    unlabelled = unlabelled_reviews(config)  # no text identical to a validation or test text
    texts = list(train["text"]) + list(unlabelled["text"])
    logits = teacher_logits(settings.teacher, texts, Path(settings.output) / CACHE)
    probs = soft(logits, settings.temperature)
    labels = np.asarray(train["label"], dtype=np.float64)
    targets = np.concatenate([settings.hard_weight * labels
                              + (1 - settings.hard_weight) * probs[: len(train)],
                              probs[len(train):]]).astype(np.float32)
    tokenized = tokenize_dataset(unlabelled, Tokenizer(lowercase=config.data.lowercase),
                                 config.data.num_proc)
    ids = list(train_ids) + numericalize(tokenized, vocab)
    agreement = float(((logits[: len(train)] > 0) == (labels > 0.5)).mean())
    summary = {"labelled": len(train), "unlabelled": len(unlabelled),
               "teacher_train_agreement": agreement,
               "unlabelled_positive_share": float((logits[len(train):] > 0).mean())}
    logger.info("distillation: %d labelled reviews (the teacher agrees with %.1f%% of their "
                "labels) and %d unlabelled ones", len(train), 100 * agreement, len(unlabelled))
    return ids, targets, summary
