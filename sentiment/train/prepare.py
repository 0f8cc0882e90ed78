"""What every task's driver does before training, from its :class:`~sentiment.config.Config`.

The sentiment classifier (:mod:`sentiment.train.recipe`), the word LM
(:mod:`sentiment.train.pretrain`) and the character LM (:mod:`sentiment.train.charlm`) are short
recipes over these steps: the reviews a config defines (:func:`classifier_splits`,
:func:`unlabelled_reviews`), token ids (:func:`numericalize`, :func:`token_ids`), batches
(:func:`review_batches`), the model (:func:`build_task_model`), and the classifier's prepared
splits (:func:`prepare_data`).
"""

from __future__ import annotations

import logging
import time
from collections.abc import Sequence
from dataclasses import asdict, dataclass, field, replace

import datasets
import numpy as np
import torch
from datasets.fingerprint import Hasher
from torch import nn

from ..config import Config, ReviewData
from ..data.batching import SequenceBatches
from ..data.sources import RowRules, label_names, load_reviews, load_unlabelled, split_validation
from ..data.vectors import load_vectors
from ..kinds.checkpoint import load_core_weights, transfer_core, transfer_head
from ..nn.heads import SENTENCE_END_TOKENS, build_model
from ..text.tokenize import Tokenizer, tokenize_dataset
from ..text.vocab import Vocab

logger = logging.getLogger(__name__)
# What a model takes from its encoder's core: the architecture (its dropouts stay its own).
ENCODER_FIELDS = ("vocab_size", "embed_dim", "hidden_dim", "num_layers", "rnn_type",
                  "bidirectional", "layout", "input_type", "pad_index")


def _subsample(dataset: datasets.Dataset, limit: int | None, seed: int) -> datasets.Dataset:
    if limit is None or limit >= len(dataset):
        return dataset
    return dataset.shuffle(seed=seed).select(range(limit)).flatten_indices()


def check_classes(split: datasets.Dataset, origin: str) -> None:
    """Every class the split names must be in it, twice at least (one for the validation
    split); checked before any work, not after training."""
    names = label_names(split)
    counts = np.bincount(np.asarray(split["label"], dtype=np.int64), minlength=len(names))
    scarce = [f"{name}: {int(counts[label])}" for label, name in enumerate(names)
              if counts[label] < 2]
    if scarce:
        raise ValueError(f"{origin}: a classifier needs every class at least twice in its "
                         f"training data; label counts {', '.join(scarce)} "
                         f"(of {len(split)} rows)")


def classifier_splits(data: ReviewData, seed: int) -> dict[str, datasets.Dataset]:
    """The classifier's ``train`` / ``valid`` / ``test`` reviews, exactly as ``data`` and
    ``seed`` define them: the same call on a saved config gives the same split."""
    splits = load_reviews(data.source, data.text_column, data.label_column, data.test_fraction,
                          seed, data.train_split, data.test_split,
                          RowRules(data.on_bad_rows, data.encoding_errors))
    train_split = _subsample(splits["train"], data.train_limit, seed)
    check_classes(train_split, f"{data.source} (training split)")
    test_split = _subsample(splits["test"], data.test_limit, seed)
    train_part, valid_part = split_validation(train_split, data.valid_fraction, seed)
    return {"train": train_part, "valid": valid_part, "test": test_split}


def held_out_texts(data: ReviewData, seed: int) -> set[str]:
    """Every validation and test text of the classifier's split (cleaned; the whole test split,
    whatever ``test_limit`` says). No text identical to one of them may enter a language
    model's corpus or a teacher's pseudo-labels: IMDB's unsupervised file holds 266 test
    reviews verbatim and its train file 123."""
    splits = classifier_splits(replace(data, test_limit=None), seed)
    return set(splits["valid"]["text"]) | set(splits["test"]["text"])


def without_texts(dataset: datasets.Dataset, forbidden: set[str], what: str
                  ) -> datasets.Dataset:
    """``dataset`` less its rows whose text is in ``forbidden`` (counted in the log)."""
    keep = [i for i, text in enumerate(dataset["text"]) if text not in forbidden]
    if len(keep) == len(dataset):
        return dataset
    logger.info("%s: %d of %d texts left out, identical to a validation or test text", what,
                len(dataset) - len(keep), len(dataset))
    return dataset.select(keep).flatten_indices()


def unlabelled_reviews(config: Config, exclude: set[str] | None = None) -> datasets.Dataset:
    """The run's unlabelled reviews: ``data.unlabelled``, else the unsupervised split beside
    ``data.source`` (IMDB's 50,000), less any text identical to one in ``exclude`` (default:
    :func:`held_out_texts`), shuffled by the run's seed, at most ``data.unlabelled_limit`` of
    them."""
    data = config.data
    if exclude is None:
        exclude = held_out_texts(data, config.split_seed)
    reviews = load_unlabelled(data.unlabelled or data.source, data.unlabelled_column)
    reviews = without_texts(reviews, exclude, "unlabelled reviews")
    reviews = reviews.shuffle(seed=config.train.seed).flatten_indices()
    if data.unlabelled_limit is not None:
        reviews = reviews.select(range(min(data.unlabelled_limit, len(reviews))))
    return reviews


def numericalize(dataset: datasets.Dataset, vocab: Vocab) -> list[np.ndarray]:
    """Token ids for every row, cached on disk by the dataset's and the vocabulary's fingerprint."""
    fingerprint = Hasher.hash((dataset._fingerprint, "ids-v1", vocab.itos))
    with_ids = dataset.map(
        lambda batch: {"ids": [vocab.encode(tokens) for tokens in batch["tokens"]]},
        batched=True, batch_size=1000, new_fingerprint=fingerprint,
        features=datasets.Features({**dataset.features,
                                    "ids": datasets.Sequence(datasets.Value("int32"))}),
        desc="numericalize",
    )
    if len(with_ids) == 0:
        return []
    column = with_ids.data.column("ids").combine_chunks()
    offsets = column.offsets.to_numpy()
    values = column.flatten().to_numpy().astype(np.int64)
    return np.split(values, offsets[1:-1] - offsets[0])


def token_ids(config: Config, texts: datasets.Dataset | Sequence[str], vocab: Vocab
              ) -> list[np.ndarray]:
    """Texts (a dataset with a ``text`` column, or a list) as the training reviews become ids:
    tokenized as ``config.data`` says (cached on disk) and :func:`numericalize`-d."""
    if not isinstance(texts, datasets.Dataset):
        texts = datasets.Dataset.from_dict({"text": list(texts)})
    tokenizer = Tokenizer(lowercase=config.data.lowercase)
    return numericalize(tokenize_dataset(texts, tokenizer, config.data.num_proc), vocab)


def review_batches(config: Config, ids: Sequence[Sequence[int]], labels=None,
                   shuffle: bool = True, pad_index: int = 0, seed_offset: int = 0
                   ) -> SequenceBatches:
    """Length-bucketed batches of id sequences (and their labels) as ``config.data`` says:
    ``batch_size`` rows and ``max_tokens`` padded tokens at most, cut to ``max_length`` (the
    start or the end of each: ``keep``)."""
    data = config.data
    return SequenceBatches(ids, labels, data.batch_size, pad_index, data.max_length,
                           shuffle=shuffle, bucket=data.bucket,
                           seed=config.train.seed + seed_offset, max_tokens=data.max_tokens,
                           keep=data.keep)


def build_task_model(config: Config, vocab: Vocab) -> tuple[nn.Module, Config, dict]:
    """``config.task``'s model, its resolved config and the word vectors' statistics.

    The core is sized for ``vocab``. With ``model.encoder`` its architecture and weights come
    from that saved model (whose vocabulary ``vocab`` must be); otherwise a word embedding
    starts from ``model.vectors`` when set. Seeded by ``train.seed``."""
    core = replace(config.model.core, vocab_size=len(vocab), pad_index=vocab.pad_index)
    directions, matrix, stats = config.model.encoder_directions, None, {}
    if config.model.encoder:
        encoder_core, _, _ = load_core_weights(config.model.encoder)
        architecture = {name: getattr(encoder_core, name) for name in ENCODER_FIELDS}
        if directions != "both":
            if not encoder_core.separate:
                raise ValueError(f"encoder_directions={directions!r} takes one stack of a "
                                 f"bidirectional encoder with layout='separate'; the core in "
                                 f"{config.model.encoder} is not one")
            architecture.update(bidirectional=False, reverse=directions == "backward")
        core = replace(core, **architecture)
    elif directions != "both":
        raise ValueError("encoder_directions needs an encoder (a separate-layout language model)")
    elif config.model.vectors:
        matrix, vector_stats = load_vectors(config.model.vectors, vocab, seed=config.train.seed)
        core = replace(core, embed_dim=vector_stats.dim)
        stats = asdict(vector_stats)
    config = replace(config, model=replace(config.model, core=core))
    torch.manual_seed(config.train.seed)
    model = build_model(config.task, config.model)
    if getattr(model, "pooling", None) == "mil":
        model.set_sentence_ends([vocab.stoi.get(token) for token in SENTENCE_END_TOKENS])
    if config.model.encoder:
        transfer_core(model.core, vocab, config.model.encoder, directions)
        if config.model.encoder_head:
            transfer_head(model, config.model.encoder)
        logger.info("core%s initialised from %s", " and head" * config.model.encoder_head,
                    config.model.encoder)
    elif matrix is not None:
        model.core.load_embeddings(torch.from_numpy(matrix))
    return model, config, stats


@dataclass
class PreparedData:
    """Tokenized splits, vocabulary and ids, ready for batching."""

    train: datasets.Dataset
    valid: datasets.Dataset
    test: datasets.Dataset
    vocab: Vocab
    tokenizer: Tokenizer
    ids: dict = field(default_factory=dict)
    seconds: dict = field(default_factory=dict)


def prepare_data(config: Config, vocab: Vocab | None = None) -> PreparedData:
    """Load and split, tokenize (cached), build the vocabulary (unless given), numericalize."""
    data, seconds = config.data, {}
    start = time.perf_counter()
    splits = classifier_splits(data, config.split_seed)
    tokenizer = Tokenizer(lowercase=data.lowercase)
    seconds["load"] = time.perf_counter() - start
    start = time.perf_counter()
    splits = {name: tokenize_dataset(split, tokenizer, data.num_proc)
              for name, split in splits.items()}
    seconds["tokenize"] = time.perf_counter() - start
    start = time.perf_counter()
    if vocab is None:
        vocab = Vocab.build(splits["train"]["tokens"], data.max_vocab, data.min_freq)
    seconds["vocab"] = time.perf_counter() - start
    start = time.perf_counter()
    ids = {name: numericalize(split, vocab) for name, split in splits.items()}
    seconds["numericalize"] = time.perf_counter() - start
    logger.info("data: %d train, %d validation, %d test reviews; vocabulary %d; %s",
                len(splits["train"]), len(splits["valid"]), len(splits["test"]), len(vocab),
                ", ".join(f"{k} {v:.1f}s" for k, v in seconds.items()))
    return PreparedData(splits["train"], splits["valid"], splits["test"], vocab, tokenizer, ids,
                        seconds)
