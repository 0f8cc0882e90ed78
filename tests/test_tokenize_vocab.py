from __future__ import annotations

import functools
import time

import pytest
from conftest import IMDB, needs

from sentiment.data.sources import load_reviews
from sentiment.text.tokenize import Tokenizer, tokenize_dataset
from sentiment.text.vocab import PAD, UNK, Vocab


def test_spacy_tokenizer_splits_punctuation_and_lowercases():
    assert Tokenizer()("It's GREAT, isn't it?!") == ["it", "'s", "great", ",", "is", "n't", "it",
                                                      "?", "!"]
    assert Tokenizer(lowercase=False)("Don't  go") == ["Do", "n't", "go"]


@functools.lru_cache(maxsize=1)
def _blank_english():
    import spacy

    return spacy.blank("en")


def _spacy_whole(text: str, lowercase: bool = True) -> list[str]:
    """spaCy's tokenizer on the whole text, as the package tokenized before chunks."""
    doc = _blank_english().tokenizer(text)
    return [t.lower_ if lowercase else t.text for t in doc if not t.is_space]


@pytest.mark.parametrize("lowercase", [True, False])
def test_tokens_are_spacys_one_whitespace_chunk_at_a_time(lowercase):
    """A text's tokens are spaCy's tokens of each of its whitespace-separated chunks, which is
    spaCy's own tokenization of the whole text here (tabs, new lines, runs and Unicode spaces,
    contractions, quotes, URLs, emoticons), and the same on a second call (from the store)."""
    texts = ["It's GREAT, isn't it?!\tI'd say (so)...\n\nDon't  go!",
             "U.S.A. vs. the U.K.: 10/10, e-mail me@example.com or see https://x.org/a?b=c :)",
             '"Quoted," he said -- \u00a0 then   left;   1990\'s films\u2026 ~ ok',
             "", "   ", "one"]
    tokenizer = Tokenizer(lowercase=lowercase)
    first = tokenizer.pipe(texts)
    assert first == [_spacy_whole(text, lowercase) for text in texts]
    assert first == [[token for chunk in text.split() for token in _spacy_whole(chunk, lowercase)]
                     for text in texts]
    assert tokenizer.pipe(texts) == first
    assert [tokenizer(text) for text in reversed(texts)] == first[::-1]


def test_known_chunks_skip_spacy(monkeypatch):
    """Only chunks not seen before go through spaCy; the store keeps at most MAX_CHUNKS of them
    and tokens stay right past that bound."""
    from sentiment.text import tokenize

    real = tokenize._english()
    seen: list[str] = []

    class Counting:
        vocab = real.vocab

        @staticmethod
        def tokenizer(text):
            seen.extend(text.split())
            return real.tokenizer(text)

    monkeypatch.setattr(tokenize, "_english", lambda: Counting)
    monkeypatch.setattr(tokenize, "MAX_CHUNKS", 50)
    tokenize.chunk_store.cache_clear()
    tokenizer = Tokenizer()
    assert tokenizer.pipe(["The film, the FILM.", "The film!"]) == [
        ["the", "film", ",", "the", "film", "."], ["the", "film", "!"]]
    assert sorted(seen) == sorted(["The", "film,", "the", "FILM.", "film!"])
    seen.clear()
    assert tokenizer("the film, The film!") == ["the", "film", ",", "the", "film", "!"]
    assert seen == []
    texts = [f"word{i}a, word{i}b." for i in range(100)]
    assert tokenizer.pipe(texts) == [[f"word{i}a", ",", f"word{i}b", "."] for i in range(100)]
    assert len(tokenize.chunk_store(True)) == 50
    seen.clear()
    assert tokenizer.pipe(texts[-2:]) == [[f"word{i}a", ",", f"word{i}b", "."] for i in (98, 99)]
    assert len(seen) == 4  # not stored: spaCy again
    tokenize.chunk_store.cache_clear()


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


def test_threads_tokenizing_at_once_get_their_own_tokens(monkeypatch):
    """Threads share the store (and spaCy): with a store too small for their chunks, each
    thread's tokens are still its texts' own."""
    from concurrent.futures import ThreadPoolExecutor

    from sentiment.text import tokenize

    monkeypatch.setattr(tokenize, "MAX_CHUNKS", 300)
    tokenize.chunk_store.cache_clear()
    batches = [[f"Film{b}x{i}, seen {i}-{b} times!" for i in range(200)] for b in range(8)]
    expected = [[[f"film{b}x{i}", ",", "seen", f"{i}", "-", f"{b}", "times", "!"]
                  for i in range(200)]
                for b in range(8)]
    with ThreadPoolExecutor(4) as pool:
        assert list(pool.map(Tokenizer().pipe, batches * 3)) == expected * 3
    assert len(tokenize.chunk_store(True)) == 300
    tokenize.chunk_store.cache_clear()


@needs(IMDB)
def test_real_reviews_tokenize():
    test = load_reviews(IMDB)["test"].select(range(3000))
    start = time.perf_counter()
    tokens = Tokenizer().pipe(test["text"])
    assert time.perf_counter() - start < 60
    lengths = [len(t) for t in tokens]
    assert min(lengths) > 3 and 150 < sum(lengths) / len(lengths) < 400
    assert all("<br" not in tok for toks in tokens[:200] for tok in toks)


@needs(IMDB)
def test_real_reviews_tokenize_as_spacy_on_the_whole_text():
    """Tokenizing chunk by chunk differs from spaCy on a whole review only where spaCy's
    special-case matcher joins tokens across a space (2 of the 25,000 test reviews)."""
    from sentiment.data.sources import clean_text

    texts = [clean_text(text) for text in load_reviews(IMDB)["test"].select(range(2000))["text"]]
    tokens = Tokenizer().pipe(texts)
    same = sum(ours == _spacy_whole(text) for ours, text in zip(tokens, texts))
    assert same >= 1998, same
    from sentiment.text.tokenize import _spacy_tokens

    chunks = list(dict.fromkeys(chunk for text in texts for chunk in text.split()))
    assert len(chunks) > 30_000
    stored = _spacy_tokens(chunks, lowercase=True)  # lines of one Doc
    assert [list(stored[chunk]) for chunk in chunks] == [
        [t.lower_ for t in doc] for doc in _blank_english().tokenizer.pipe(chunks)]


def test_spacy_vocabulary_stays_bounded_on_a_long_stream(monkeypatch):
    """A stream of new words (a big file, a long-running server) does not grow spaCy's string
    store without end; renewing it leaves the tokens unchanged."""
    from sentiment.text import tokenize

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
