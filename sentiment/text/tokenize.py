"""spaCy English tokenization, batched, parallel and cached through `datasets` fingerprints."""

from __future__ import annotations

import functools
import itertools
import os
import sys
import threading
from collections.abc import Iterable
from dataclasses import asdict, dataclass
from typing import TYPE_CHECKING

import spacy

if TYPE_CHECKING:  # imported where datasets are tokenized: a first prediction need not pay it
    import datasets

# spaCy's vocabulary keeps every new string it meets, so a long stream of text (scoring a
# file of a million reviews, a server running for weeks) grows it without end (BENCHMARKS.md,
# "Tokenizing one whitespace chunk at a time"). Past this many strings the pipeline is built afresh;
# tokens do not depend on what the vocabulary has seen.
MAX_STRINGS = 200_000
# spaCy tokenizes each run of non-space characters on its own, so a text's tokens are its
# whitespace-separated chunks' tokens, and each chunk's are kept here: a chunk seen before costs
# a dictionary lookup instead of a spaCy Doc. The store keeps the first this many chunks it meets
# (the frequent ones, mostly), so that memory stays bounded on an endless stream.
MAX_CHUNKS = 200_000
_TOKENIZING = threading.Lock()


@functools.lru_cache(maxsize=1)
def _english() -> spacy.language.Language:
    # spacy.blank("en") carries the same tokenizer rules as en_core_web_sm, without a download.
    return spacy.blank("en")


@functools.lru_cache(maxsize=2)
def chunk_store(lowercase: bool) -> dict[str, tuple[str, ...]]:
    """The tokens of each chunk met so far (by :class:`Tokenizer` s with this ``lowercase``)."""
    return {}


def _renew_if_grown() -> None:
    if len(_english().vocab.strings) > MAX_STRINGS:
        _english.cache_clear()


def _spacy_tokens(chunks: list[str], lowercase: bool) -> dict[str, tuple[str, ...]]:
    """spaCy's tokens of each chunk, from one Doc per 10,000 chunks put on lines of their own:
    the whitespace token between two chunks keeps any special case from matching across them,
    so each chunk gets the tokens a Doc of its own would give (``benchmarks/tokenizer_chunks.py``
    checks every distinct chunk of IMDB), without the cost of a Doc per chunk."""
    tokens_of: dict[str, tuple[str, ...]] = {}
    for start in range(0, len(chunks), 10_000):
        part = chunks[start:start + 10_000]
        pieces: list[list[str]] = [[] for _ in part]
        k, end = 0, len(part[0])  # the chunk the next token is in, and where that chunk ends
        for token in _english().tokenizer("\n".join(part)):
            if token.is_space:
                continue
            while token.idx >= end:
                k += 1
                end += 1 + len(part[k])
            # one str object per distinct token, not per chunk it occurs in
            pieces[k].append(sys.intern(token.lower_ if lowercase else token.text))
        tokens_of.update(zip(part, map(tuple, pieces)))
    return tokens_of


@dataclass(frozen=True)
class Tokenizer:
    """spaCy's rule-based English tokenizer, one whitespace-separated chunk at a time (so a text's
    tokens are its chunks' tokens; whitespace itself is dropped), optionally lower-cased."""

    lowercase: bool = True
    name: str = "spacy-blank-en"

    def __call__(self, text: str) -> list[str]:
        return self.pipe([text])[0]

    def pipe(self, texts: Iterable[str]) -> list[list[str]]:
        """Tokenize many texts; spaCy reads only the chunks not seen before.

        spaCy on a whole text differs only where its special-case matcher joins tokens across
        a space, as in "talkin' ''bout" (2 of IMDB's 25,000 test reviews, one token each)."""
        split = [text.split() for text in texts]
        store = chunk_store(self.lowercase)
        with _TOKENIZING:  # spaCy's vocabulary and the store are shared by every thread
            met = dict.fromkeys(itertools.chain.from_iterable(split))  # in the order met
            missing = [chunk for chunk in met if chunk not in store]
            kept = max(0, MAX_CHUNKS - len(store))
            if missing:
                store.update(_spacy_tokens(missing, self.lowercase))
                _renew_if_grown()
            try:  # those past the bound stay only while this batch is joined
                return [list(itertools.chain.from_iterable(map(store.__getitem__, chunks)))
                        for chunks in split]
            finally:
                for chunk in missing[kept:]:
                    del store[chunk]

    def to_dict(self) -> dict:
        return {**asdict(self), "spacy_version": spacy.__version__}


def _tokenize_batch(batch: dict, tokenizer: Tokenizer) -> dict:
    return {"tokens": tokenizer.pipe(batch["text"])}


def tokenize_dataset(
    dataset: datasets.Dataset, tokenizer: Tokenizer, num_proc: int | None = None
) -> datasets.Dataset:
    """Add a ``tokens`` column; spread over the cores and cached on disk by fingerprint.

    The fingerprint is derived from the input dataset's and the tokenizer's settings (not from
    pickling the spaCy object), so a second run with the same data and settings is a cache hit.
    """
    from datasets.fingerprint import Hasher

    num_proc = num_proc if num_proc is not None else (os.cpu_count() or 1)
    num_proc = max(1, min(num_proc, len(dataset) // 1000 or 1))
    fingerprint = Hasher.hash((dataset._fingerprint, "tokenize-v2", tokenizer.to_dict()))
    return dataset.map(
        _tokenize_batch,
        fn_kwargs={"tokenizer": tokenizer},
        batched=True,
        batch_size=500,
        num_proc=num_proc if num_proc > 1 else None,
        new_fingerprint=fingerprint,
        desc="tokenize",
    )
