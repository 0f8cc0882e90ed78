"""How tokenizing by whitespace chunk compares with spaCy on whole texts, on real reviews.

    python -m benchmarks.tokenizer_chunks --data ../shared/data/imdb --output runs/chunks.json

For each split: how many texts get other tokens than spaCy on the whole (cleaned) text, and
which; whether the store's tokens of every distinct chunk equal spaCy on that chunk alone; and,
for the test split, what share of its chunk occurrences a store filled by the other splits holds
(at ``--max-chunks``, the store's bound).
"""

from __future__ import annotations

import argparse
import functools
import itertools
import json
from pathlib import Path

import pyarrow.parquet as pq
import spacy

from sentiment.data.sources import clean_text
from sentiment.text import tokenize


def whole_text_tokens(nlp, texts: list[str], lowercase: bool = True) -> list[list[str]]:
    """spaCy's tokens of each whole text, whitespace dropped: the package's tokenizing before
    2026-12-02."""
    docs = nlp.tokenizer.pipe(texts, batch_size=256)
    if lowercase:
        return [[t.lower_ for t in doc if not t.is_space] for doc in docs]
    return [[t.text for t in doc if not t.is_space] for doc in docs]


def compare(texts: list[str], nlp) -> dict:
    """Texts whose chunk tokens differ from spaCy's on the whole text, and distinct chunks whose
    stored tokens differ from spaCy's on the chunk alone."""
    tokenize.chunk_store(True).clear()
    tokenizer = tokenize.Tokenizer()
    ours = [tok for start in range(0, len(texts), 2_000)
            for tok in tokenizer.pipe(texts[start:start + 2_000])]
    whole = whole_text_tokens(nlp, texts)
    differ = [i for i, (a, b) in enumerate(zip(ours, whole)) if a != b]
    chunks = list(dict.fromkeys(itertools.chain.from_iterable(text.split() for text in texts)))
    stored = tokenize._spacy_tokens(chunks, lowercase=True)
    alone = [[t.lower_ for t in doc] for doc in nlp.tokenizer.pipe(chunks, batch_size=256)]
    return {"texts": len(texts), "texts_differing": len(differ), "differing_rows": differ,
            "distinct_chunks": len(chunks),
            "chunks_differing": sum(list(stored[c]) != a for c, a in zip(chunks, alone))}


def main(argv: list[str] | None = None) -> dict:
    parser = argparse.ArgumentParser(description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--data", default="../shared/data/imdb")
    parser.add_argument("--splits", nargs="+", default=["test", "train"])
    parser.add_argument("--max-chunks", type=int, nargs="+", default=[tokenize.MAX_CHUNKS])
    parser.add_argument("--output", default=None)
    args = parser.parse_args(argv)

    @functools.cache  # each split is read and cleaned once, whatever uses it how often
    def read(split: str) -> list[str]:
        table = pq.read_table(Path(args.data) / f"{split}.parquet", columns=["text"])
        return [clean_text(text) for text in table["text"].to_pylist()]

    nlp = spacy.blank("en")
    result: dict = {"splits": {split: compare(read(split), nlp) for split in args.splits}}
    others = [split for split in ("unsupervised", "train")
              if (Path(args.data) / f"{split}.parquet").exists()]
    test = read("test")
    occurrences = list(itertools.chain.from_iterable(text.split() for text in test))
    bound = tokenize.MAX_CHUNKS
    try:
        for max_chunks in args.max_chunks:
            tokenize.MAX_CHUNKS = max_chunks
            tokenize.chunk_store(True).clear()
            tokenizer = tokenize.Tokenizer()
            for split in others:
                texts = read(split)
                for start in range(0, len(texts), 2_000):
                    tokenizer.pipe(texts[start:start + 2_000])
            store = tokenize.chunk_store(True)
            result.setdefault("test_chunks_held", {})[max_chunks] = {
                "filled_by": others, "held": sum(c in store for c in occurrences)
                / len(occurrences)}
    finally:
        tokenize.MAX_CHUNKS = bound
        tokenize.chunk_store(True).clear()
    print(json.dumps(result, indent=1))
    if args.output:
        Path(args.output).write_text(json.dumps(result, indent=1) + "\n")
    return result


if __name__ == "__main__":
    main()
