"""Knowledge distillation onto unlabelled reviews: a teacher's soft labels become training
targets of a single student classifier (``sentiment train --teacher DIR``).

The student's training set is its labelled reviews, each with the target
``hard_weight * label + (1 - hard_weight) * teacher``, plus the unlabelled reviews (less any
text identical to a validation or test text) with the teacher's alone; the teacher's
probability is ``sigmoid(log-odds / temperature)``. With ``crops`` > 0, that many short crops of
the unlabelled reviews (one to three consecutive sentences) follow with the teacher's soft
labels too: IMDB's reviews average ~230 words, and the first thing a person types is one
sentence. BCEWithLogits takes such soft targets as they are, so the training loop is unchanged.
The teacher's log-odds are cached per text in the run's folder, so a resumed run does not score
again, and a changed text set scores only its new texts.
"""

from __future__ import annotations

import hashlib
import json
import logging
import re
from pathlib import Path

import datasets
import numpy as np

from ..config import Config
from ..kinds.registry import load_folder
from ..kinds.stack import STACK_FILE, Teacher, check_split
from ..text.vocab import Vocab
from .prepare import token_ids, unlabelled_reviews
from .sentences import in_context_targets, occlusions

logger = logging.getLogger(__name__)
CACHE = "teacher_logits.npz"
SENTENCE_END = re.compile(r"(?<=[.!?])\s+")


def short_crops(texts: list[str], count: int, seed: int = 0, max_sentences: int = 3,
                min_words: int = 3, max_words: int = 60) -> list[str]:
    """``count`` distinct crops of ``texts``, each one to ``max_sentences`` consecutive
    sentences of a review chosen at random (sentences end at ``.``, ``!`` or ``?``), of
    ``min_words`` to ``max_words`` words; fewer when the texts hold fewer such crops."""
    rng = np.random.default_rng(seed)
    crops: dict[str, None] = {}  # ordered and distinct
    for _ in range(20 * count):
        if len(crops) == count or not texts:
            break
        sentences = SENTENCE_END.split(texts[rng.integers(len(texts))].strip())
        size = int(rng.integers(1, max_sentences + 1))
        start = int(rng.integers(max(1, len(sentences) - size + 1)))
        crop = " ".join(sentences[start:start + size]).strip()
        if min_words <= len(crop.split()) <= max_words:
            crops.setdefault(crop)
    if len(crops) < count:
        logger.warning("only %d distinct short crops in %d texts (asked for %d)", len(crops),
                       len(texts), count)
    return list(crops)


def _teacher_key(teacher_dir: str) -> str:
    """The teacher's part of the cache key: its stack, which holds its weights and its members'
    fingerprints (content hashes), so the same teacher moved or copied to another folder finds
    its scores and a teacher built again scores again. A stack without fingerprints (an older
    teacher) says nothing of its members' contents: its folder joins the key."""
    stack = (Path(teacher_dir) / STACK_FILE).read_bytes()
    digest = hashlib.sha256(stack)
    if not json.loads(stack).get("fingerprints"):
        digest.update(str(Path(teacher_dir).resolve()).encode())
    return digest.hexdigest()


def _text_hashes(texts: list[str]) -> list[bytes]:
    """Each text's SHA-256, as the cache's ``S32`` array gives it back (NumPy drops trailing
    zero bytes, so the digests pass through the same dtype on both sides)."""
    return np.array([hashlib.sha256(text.encode("utf-8", "surrogatepass")).digest()
                     for text in texts], dtype="S32").tolist()


def teacher_logits(teacher_dir: str, texts: list[str], cache: Path) -> np.ndarray:
    """The teacher's log-odds for ``texts``. ``cache`` keeps them per text (by its hash) for
    this teacher: a resumed run scores nothing again, and a run whose texts change (other
    ``--crops``, more unlabelled text) scores only the new ones. A cache of another teacher
    (or a rebuilt one) is replaced."""
    key, hashes = _teacher_key(teacher_dir), _text_hashes(texts)
    known: dict[bytes, float] = {}
    if cache.exists():
        stored = np.load(cache)
        if "hashes" in stored and str(stored["teacher"]) == key:
            known = dict(zip(stored["hashes"].tolist(), stored["logits"].tolist(), strict=True))
    missing: dict[bytes, int] = {}  # each new text once, however often it occurs
    for index, digest in enumerate(hashes):
        if digest not in known:
            missing.setdefault(digest, index)
    if missing:
        logger.info("the teacher scores %d texts (%d others from %s)", len(missing),
                    sum(digest in known for digest in hashes), cache)
        teacher = Teacher.load(teacher_dir, load_folder)
        scored = teacher.logits([texts[i] for i in missing.values()])
        known.update(zip(missing, np.asarray(scored).tolist(), strict=True))
        cache.parent.mkdir(parents=True, exist_ok=True)
        tmp = cache.with_suffix(".tmp.npz")
        np.savez(tmp, teacher=np.asarray(key), hashes=np.array(list(known), dtype="S32"),
                 logits=np.array(list(known.values())))
        tmp.replace(cache)
    else:
        logger.info("teacher's scores of %d texts from %s", len(texts), cache)
    return np.array([known[digest] for digest in hashes])


def soft(logits: np.ndarray, temperature: float) -> np.ndarray:
    return 1.0 / (1.0 + np.exp(-np.asarray(logits) / temperature))


def in_context_set(settings, reviews: list[str]) -> tuple[list[str], np.ndarray, dict]:
    """``(sentences, their target log-odds, summary)``: ``settings.sentences`` sentences of the
    unlabelled reviews, each read by the teacher in its review's context
    (:mod:`sentiment.train.sentences`); scored through the same cache as the reviews."""
    if not settings.sentences:
        return [], np.zeros(0), {}
    sentences, owners, without = occlusions(reviews, settings.sentences, settings.seed)
    count = len(sentences)
    scored = teacher_logits(settings.teacher, [reviews[i] for i in owners] + without + sentences,
                            Path(settings.output) / CACHE)
    targets, summary = in_context_targets(scored[:count], scored[count:2 * count],
                                          scored[2 * count:])
    logger.info("%d sentences of the unlabelled reviews, read in their reviews' context: %s",
                count, summary)
    return sentences, targets, summary


def distillation_set(config: Config, train: datasets.Dataset, train_ids: list, vocab: Vocab
                     ) -> tuple[list, np.ndarray, dict]:
    """``(ids, targets, summary)``: the labelled training reviews with mixed targets followed
    by the unlabelled reviews, then ``crops`` short crops of them and ``sentences`` sentences
    read in context, with the teacher's soft labels. Without ``distil_reviews`` the labelled
    reviews keep their own labels and no unlabelled review joins: the teacher labels only the
    crops and the sentences."""
    settings = config.train
    teacher = Teacher.load(settings.teacher)
    check_split(teacher, config.data, config.split_seed)
    unlabelled = unlabelled_reviews(config)  # no text identical to a validation or test text
    reviews = list(unlabelled["text"])  # read from the Arrow table once
    crops = short_crops(reviews, settings.crops, settings.seed)
    if settings.distil_reviews:
        ids, targets, summary = _distilled_reviews(config, train, train_ids, unlabelled,
                                                  reviews, crops, vocab)
    else:
        ids, targets = list(train_ids), [np.asarray(train["label"], dtype=np.float32)]
        if crops:
            crop_logits = teacher_logits(settings.teacher, crops, Path(settings.output) / CACHE)
            targets.append(soft(crop_logits, settings.temperature).astype(np.float32))
        summary = {"labelled": len(train), "unlabelled": 0, "crops": len(crops),
                   "reviews_distilled": False}
        logger.info("the labelled reviews keep their labels; the teacher labels %d short crops "
                    "and the sentences", len(crops))
    sentences, sentence_logits, read = in_context_set(settings, reviews)
    if sentences:
        targets.append(soft(sentence_logits, settings.temperature).astype(np.float32))
        summary["sentences"] = read
    for short in (crops, sentences):
        if short:
            ids += token_ids(config, short, vocab)
    return ids, np.concatenate(targets).astype(np.float32), summary


def _distilled_reviews(config: Config, train: datasets.Dataset, train_ids: list,
                       unlabelled: datasets.Dataset, reviews: list[str], crops: list[str],
                       vocab: Vocab) -> tuple[list, list[np.ndarray], dict]:
    """The labelled reviews' mixed targets, the unlabelled reviews' (``reviews``: their texts)
    and the crops' soft ones (the ids of the crops are added by the caller)."""
    settings = config.train
    texts = list(train["text"]) + reviews + crops
    crops_start = len(train) + len(reviews)
    logits = teacher_logits(settings.teacher, texts, Path(settings.output) / CACHE)
    probs = soft(logits, settings.temperature)
    labels = np.asarray(train["label"], dtype=np.float64)
    targets = [settings.hard_weight * labels + (1 - settings.hard_weight) * probs[: len(train)],
               probs[len(train):]]
    ids = list(train_ids) + token_ids(config, unlabelled, vocab)
    agreement = float(((logits[: len(train)] > 0) == (labels > 0.5)).mean())
    summary = {"labelled": len(train), "unlabelled": len(unlabelled), "crops": len(crops),
               "teacher_train_agreement": agreement,
               "unlabelled_positive_share": float((logits[len(train):crops_start] > 0).mean()),
               **({"crops_positive_share": float((logits[crops_start:] > 0).mean())}
                  if crops else {})}
    logger.info("distillation: %d labelled reviews (the teacher agrees with %.1f%% of their "
                "labels), %d unlabelled ones and %d short crops of them", len(train),
                100 * agreement, len(unlabelled), len(crops))
    return ids, targets, summary
