"""Template sentences for training (sentiment.train.phrases), and continuing a saved classifier's
training (--encoder-head), the two halves of teaching short-text rules to a trained model."""

import re
from dataclasses import replace

import numpy as np
import pytest
import torch

from sentiment.data.batching import pad_batch
from sentiment.kinds.registry import load_model
from sentiment.report import checklist
from sentiment.text.tokenize import Tokenizer
from sentiment.train import phrases, prepare
from sentiment.train import recipe as pipeline


def words(texts) -> set[str]:
    return {w for t in texts for w in re.findall(r"[a-z']+", t.lower())}


def test_the_training_words_are_not_the_suites():
    """The suite measures whether the rules were learnt, not the sentences: no adjective,
    subject, verb or object of the suite's lists is in any template sentence, and no sentence
    is one of the suite's."""
    kinds = phrases._kinds()
    sentences = [text for items in kinds.values() for text, _ in items]
    suite_lists = [checklist.SUBJECTS, checklist.POSITIVE, checklist.NEGATIVE, checklist.LOVE,
                   checklist.HATE, checklist.OBJECTS]
    suite_words = {w for items in suite_lists for item in items for w in item.lower().split()}
    function_words = {"the", "it", "this", "every", "of"}
    assert words(sentences) & suite_words == function_words
    assert not {"movie", "film"} & words(sentences)
    suite = checklist._cases()
    suite_texts = {t for test in suite.values() for t in test.get("texts", [])}
    assert not suite_texts & set(sentences)


def test_labels_follow_the_construction():
    labelled = {text: label for items in phrases._kinds().values() for text, label in items}
    assert labelled["The show is tedious."] == 0
    assert labelled["The show is delightful."] == 1
    assert labelled["The show wasn't tedious."] == 1  # a negated complaint is praise
    assert labelled["The show wasn't delightful."] == 0
    assert labelled["The show starts tedious, but it ends up delightful."] == 1
    assert labelled["The show starts delightful, but it ends up tedious."] == 0
    assert labelled["I could not stand the show."] == 0
    assert labelled["I could not find fault with the show."] == 1


def test_phrases_are_distinct_balanced_and_seeded():
    texts, labels = phrases.phrases(3000, seed=1)
    assert len(texts) == len(set(texts)) == 3000 and labels.dtype == np.float32
    assert labels.mean() == 0.5
    kinds = {name: {t for t, _ in items} for name, items in phrases._kinds().items()}
    shares = {name: sum(t in members for t in texts) for name, members in kinds.items()}
    assert shares == {"plain": 1000, "negated": 1000, "contrast": 1000}
    assert phrases.phrases(3000, seed=1)[0] == texts
    assert phrases.phrases(3000, seed=2)[0] != texts
    # a kind with fewer sentences than its third gives them all, the others the rest: all but
    # ten sentences asked for, each kind misses ten at most
    total = sum(map(len, kinds.values()))
    texts, labels = phrases.phrases(total - 10)
    assert len(set(texts)) == total - 10
    assert all(len(members - set(texts)) <= 10 for members in kinds.values())
    with pytest.raises(ValueError, match="phrases must be between 0 and"):
        phrases.phrases(total + 1)


def test_with_phrases_appends_them_to_the_training_set(synthetic_dir):
    config = pipeline.make_config("tiny", data=str(synthetic_dir), phrases=40, num_proc=1)
    data = prepare.prepare_data(config)
    ids, targets = pipeline.with_phrases(config, data.ids["train"], data.train["label"],
                                         data.vocab)
    count = len(data.ids["train"])
    assert len(ids) == len(targets) == count + 40
    assert list(targets[:count]) == list(data.train["label"])
    texts, labels = phrases.phrases(40, config.train.seed)
    assert np.array_equal(targets[count:], labels)
    tokenizer = Tokenizer(lowercase=config.data.lowercase)
    for index in (0, 39):  # each sentence, tokenized and numericalized like the reviews
        assert list(ids[count + index]) == data.vocab.encode(tokenizer(texts[index]))
    with pytest.raises(ValueError, match="phrases must be >= 0"):
        pipeline.make_config("tiny", phrases=-1)
    for labels in (["positive", "negative"], ["negative", "neutral", "positive"]):
        other = replace(config, model=replace(config.model, head=replace(
            config.model.head, labels=labels)))
        with pytest.raises(ValueError, match="train without phrases"):
            pipeline.with_phrases(other, data.ids["train"], data.train["label"], data.vocab)


def test_encoder_head_continues_a_saved_classifier(trained_model, synthetic_dir, tmp_path):
    """With encoder_head the built model is the saved classifier, core and head: it scores
    exactly as the saved one does. Without it the head starts afresh."""
    saved = load_model(trained_model)
    config = pipeline.make_config("tiny", data=str(synthetic_dir), encoder=str(trained_model),
                                  encoder_head=True, num_proc=1)
    continued, _, _ = prepare.build_task_model(config, saved.vocab)
    fresh, _, _ = prepare.build_task_model(
        pipeline.make_config("tiny", data=str(synthetic_dir), encoder=str(trained_model),
                             num_proc=1), saved.vocab)
    texts = ["a wonderful film , i loved it", "dull and boring , i hated it"]
    batch = pad_batch([saved.vocab.encode(t.split()) for t in texts], saved.vocab.pad_index)
    own = saved.model.eval()(batch).logits
    assert torch.allclose(continued.eval()(batch).logits, own, atol=1e-5)
    assert not torch.allclose(fresh.eval()(batch).logits, own, atol=1e-3)
    with pytest.raises(ValueError, match="encoder_head needs an encoder"):
        pipeline.make_config("tiny", encoder_head=True)


def test_encoder_head_needs_a_classifier(synthetic_dir, tmp_path):
    from sentiment.train import pretrain
    from sentiment.train.charlm import load_language_model

    pretrained_lm_dir = tmp_path / "lm"
    pretrain.pretrain_language_model(pretrain.make_config(
        "tiny", data=str(synthetic_dir), output=str(pretrained_lm_dir), progress=False,
        num_proc=1, epochs=1, hidden_dim=24))
    config = pipeline.make_config("tiny", data=str(synthetic_dir), encoder=str(pretrained_lm_dir),
                                  encoder_head=True, num_proc=1)
    with pytest.raises(ValueError, match="holds a word-lm model, whose head is no classifier"):
        prepare.build_task_model(config, load_language_model(pretrained_lm_dir).vocab)
