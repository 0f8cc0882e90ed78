from __future__ import annotations

import time

import pytest
from conftest import IMDB, needs

from sentiment.data import load_reviews
from sentiment.tokenize import Tokenizer, tokenize_dataset
from sentiment.vocab import PAD, UNK, Vocab


def test_spacy_tokenizer_splits_punctuation_and_lowercases():
    assert Tokenizer()("It's GREAT, isn't it?!") == ["it", "'s", "great", ",", "is", "n't", "it",
                                                      "?", "!"]
    assert Tokenizer(lowercase=False)("Don't  go") == ["Do", "n't", "go"]


def test_tokenize_dataset_is_cached(synthetic_dir):
    train = load_reviews(synthetic_dir)["train"]
    first = tokenize_dataset(train, Tokenizer(), num_proc=1)
    second = tokenize_dataset(train, Tokenizer(), num_proc=1)
    assert first._fingerprint == second._fingerprint
    assert first["tokens"][0] == Tokenizer()(train[0]["text"])
    other = tokenize_dataset(train, Tokenizer(lowercase=False), num_proc=1)
    assert other._fingerprint != first._fingerprint


def test_vocab_order_ties_and_limits():
    vocab = Vocab.build([["b", "a", "c", "a"], ["b", "d"]], max_size=3)
    assert vocab.itos == [PAD, UNK, "a", "b", "c"]  # a, b twice; c, d once: tie broken a-z
    assert vocab.encode(["a", "zzz"]) == [2, 1]
    assert vocab.decode([3, 4]) == ["b", "c"]
    assert Vocab.build([["x", "y", "y"]], min_freq=2).itos == [PAD, UNK, "y"]
    assert vocab.total_count == 6
    with pytest.raises(ValueError):
        Vocab.build([], min_freq=0)


def test_vocab_json_round_trip(tmp_path):
    vocab = Vocab.build([["héllo", "wörld", "😀"]])
    vocab.save(tmp_path / "vocab.json")
    loaded = Vocab.load(tmp_path / "vocab.json")
    assert loaded.itos == vocab.itos and loaded.pad_index == 0 and loaded.unk_index == 1


@needs(IMDB)
def test_real_reviews_tokenize():
    test = load_reviews(IMDB)["test"].select(range(3000))
    start = time.perf_counter()
    tokens = Tokenizer().pipe(test["text"])
    assert time.perf_counter() - start < 60
    lengths = [len(t) for t in tokens]
    assert min(lengths) > 3 and 150 < sum(lengths) / len(lengths) < 400
    assert all("<br" not in tok for toks in tokens[:200] for tok in toks)


def test_spacy_vocabulary_stays_bounded_on_a_long_stream(monkeypatch):
    """A stream of new words (a big file, a long-running server) does not grow spaCy's string
    store without end; renewing it leaves the tokens unchanged."""
    from sentiment import tokenize

    monkeypatch.setattr(tokenize, "MAX_STRINGS", 5_000)
    tokenize._english.cache_clear()
    tokenizer = tokenize.Tokenizer()
    texts = [f"Review {i}: word{i}a word{i}b, isn't it GREAT{i}?" for i in range(3_000)]
    reference = [["review", f"{i}", ":", f"word{i}a", f"word{i}b", ",", "is", "n't", "it",
                  f"great{i}", "?"] for i in range(3_000)]
    sizes, tokens = [], []
    for start in range(0, len(texts), 250):
        tokens += tokenizer.pipe(texts[start:start + 250])
        sizes.append(len(tokenize._english().vocab.strings))
    assert tokens == reference
    assert max(sizes) <= 5_000  # renewed whenever it passed the bound
    assert any(later < earlier for earlier, later in zip(sizes, sizes[1:]))
    assert sizes[-1] < 3_000 * 3  # what it would hold without renewal
    tokenize._english.cache_clear()
