"""Integration tests on the real data in ../shared (skipped when it is absent)."""

from __future__ import annotations

from conftest import GLOVE50, IMDB, needs

from sentiment.data.sources import load_reviews
from sentiment.data.vectors import load_vectors
from sentiment.text.tokenize import Tokenizer
from sentiment.text.vocab import Vocab
from sentiment.train.recipe import make_config, train_sentiment


@needs(GLOVE50)
@needs(IMDB)
def test_glove50_covers_most_real_token_occurrences():
    texts = load_reviews(IMDB)["train"].shuffle(seed=0)["text"][:2000]
    vocab = Vocab.build(Tokenizer().pipe(texts), max_size=5000)
    _, stats = load_vectors(GLOVE50, vocab)
    assert stats.dim == 50 and stats.malformed_lines == 0
    assert stats.vocab_coverage > 0.95 and stats.token_coverage > 0.85


@needs(GLOVE50)
@needs(IMDB)
def test_short_real_training_beats_chance_clearly(tmp_path):
    config = make_config("tiny", data=str(IMDB), vectors=str(GLOVE50), output=str(tmp_path),
                         epochs=5, progress=False, baseline=False)
    report = train_sentiment(config)["report"]
    assert report["n"] == 500
    assert report["accuracy_ci95"][0] > 0.6  # the whole 95% interval is well above chance
