"""Answers people read (sentiment.inference.answers): a neutral band, a flag on text the model
cannot read, the same through predict, the command line, file scoring and the server."""

from __future__ import annotations

import json

import pytest

from sentiment import load_model, predict
from sentiment.cli.main import main
from sentiment.inference.answers import WORD, known_shares, neutral_band, stem
from sentiment.kinds.decisions import ANSWERS_FILE, UNREADABLE_BELOW, Answers
from sentiment.text.clean import cleaned

UNREADABLE = ["qwerty zxcv uiop", "Ein wirklich großartiger Film, den ich liebe.", "12345 !!!"]


def test_known_shares_count_words_not_numbers_or_punctuation():
    words = {"a", "good", "film"}
    assert known_shares(["A good film!", "A bon film", "1999 ... !!", ""], words) == [
        1.0, 2 / 3, 0.0, 0.0]
    # an ASCII text takes a faster pattern: the same words as the Unicode one finds
    texts = ["It's a GOOD film_2 (1999), no?", "Un très bon film: génial!", "snake_case x2y",
             "Straße und Öl", "<br />A good<br>film", "naïve good film", "\t"]
    words = {"a", "good", "film", "it", "s", "un", "très", "bon", "génial", "y", "x", "straße"}
    expected = []
    for text in texts:
        found = WORD.findall(cleaned([text])[0].lower())
        expected.append(sum(stem(word) in words for word in found) / len(found)
                        if found else 0.0)
    assert known_shares(texts, words) == expected and expected[0] == 4 / 5


def test_an_english_contraction_is_one_word_known_by_its_stem():
    words = {"i", "did", "like", "it", "was", "bad", "ca", "c", "l", "the", "film"}
    assert known_shares(["I didn't like it.", "It wasn\u2019t bad", "I can't", "The film's"],
                        words) == [1.0, 1.0, 1.0, 1.0]
    assert [stem(w) for w in ("didn't", "won\u2019t", "it's", "we're", "n't")] == [
        "did", "wo", "it", "we", "n't"]
    # other apostrophes split words: French elisions do not make French look known
    assert known_shares(["c'est la vie", "l'homme"], words) == [0.25, 0.5]
    # plain English of contractions is not flagged as unreadable (as pieces, "didn" and
    # "couldn", it was: 3 of 6 words known)
    answer = predict("Didn't, couldn't, wouldn't.", model="imdb", reading=True)
    assert answer["known"] == 1.0 and "flag" not in answer


def test_bands_the_caller_sets_and_the_ones_refused():
    own = Answers((0.4, 0.6))
    assert neutral_band("default", own) == (0.4, 0.6) and neutral_band(None, own) is None
    assert neutral_band(0.1, Answers()) == pytest.approx((0.4, 0.6))
    assert neutral_band([0.3, 0.55], Answers()) == (0.3, 0.55)
    for bad in ((0.6, 0.7), 0.7, "wide"):
        with pytest.raises(ValueError):
            neutral_band(bad, own)


def test_predict_flags_unreadable_text_and_answers_neutral_inside_the_band(trained_model):
    results = predict(UNREADABLE + ["Loved it, brilliant!"], model=trained_model)
    for result in results[:3]:
        assert result["flag"] == "unreadable" and result["known"] < UNREADABLE_BELOW
    assert "flag" not in results[3] and "known" not in results[3]  # an English review: as ever
    assert set(predict("Loved it!", model=trained_model, reading=True)) == {"label", "score",
                                                                              "known"}
    plain = predict(["Dull and awful.", "Loved it, brilliant!", "The film."],
                    model=trained_model)
    banded = predict(["Dull and awful.", "Loved it, brilliant!", "The film."],
                     model=trained_model, neutral=0.49999)
    for was, now in zip(plain, banded, strict=True):  # the score stays the model's
        assert now["score"] == was["score"]
        assert now["label"] == ("neutral" if was["score"] < 0.99999 else was["label"])
    with pytest.raises(ValueError, match="neutral band"):
        predict("Fine.", model=trained_model, neutral=(0.6, 0.9))


def test_a_models_own_band_is_its_default(trained_model, tmp_path):
    import shutil

    folder = tmp_path / "banded"
    shutil.copytree(trained_model, folder)
    (folder / ANSWERS_FILE).write_text(json.dumps({"neutral": [0.0, 1.0]}))
    model = load_model(folder)
    assert model.answers == Answers((0.0, 1.0))
    assert predict("Loved it, brilliant!", model=folder)["label"] == "neutral"
    assert predict("Loved it, brilliant!", model=folder, neutral=None)["label"] == "positive"


def test_the_command_line_file_scoring_and_server_say_the_same(trained_model, tmp_path,
                                                               capsys):
    import pyarrow.parquet as pq
    from fastapi.testclient import TestClient

    from sentiment.inference.files import score_file
    from sentiment.serve.app import create_app

    assert main(["predict", "--model", str(trained_model), "--neutral", "0.49999",
                 "Loved it, brilliant!", "qwerty zxcv uiop"]) == 0
    printed = [json.loads(line) for line in capsys.readouterr().out.splitlines()]
    assert printed[1]["flag"] == "unreadable" and printed[0]["label"] in ("neutral", "positive")
    source = tmp_path / "in.csv"
    source.write_text("text\nLoved it!\nqwerty zxcv uiop\n")
    score_file(source, tmp_path / "out.parquet", model=str(trained_model), progress=False)
    assert pq.read_table(tmp_path / "out.parquet").column("predicted_flag").to_pylist() == [
        None, "unreadable"]
    with TestClient(create_app(trained_model)) as client:
        answers = client.post("/predict", json={"text": ["Loved it!", "qwerty zxcv uiop"],
                                                "reading": True}).json()
        assert "flag" not in answers[0] and answers[0]["known"] == 1.0
        assert answers[1]["flag"] == "unreadable" and answers[1]["known"] == 0.0
        neutral = client.post("/predict", json={"text": "Loved it!", "neutral": 0.49999})
        assert neutral.json()["label"] in ("neutral", "positive")
        assert client.post("/predict", json={"text": "Loved it!", "neutral": 0.9}
                           ).status_code == 422
