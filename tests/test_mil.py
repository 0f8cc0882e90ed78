"""Multiple-instance learning (``--pooling mil``): sentences scored alone, a text's score their
attention-weighted sum, trained from review labels."""

from __future__ import annotations

import pytest

from sentiment import load_model
from sentiment.kinds.protocol import CapabilityError, require
from sentiment.train import prepare
from sentiment.train.recipe import make_config, train_sentiment


def test_a_mil_model_continues_a_saved_classifier_and_scores_each_sentence(
        trained_model, synthetic_dir, tmp_path):
    saved = load_model(trained_model)
    config = make_config("tiny", data=str(synthetic_dir), output=str(tmp_path / "mil"),
                         encoder=str(trained_model), encoder_head=True, pooling="mil", epochs=2,
                         progress=False, baseline=False, num_proc=1)
    built, _, _ = prepare.build_task_model(config, saved.vocab)
    # the saved head's output layer, a fresh attention, the sentence ends from the vocabulary
    assert built.fc.weight.equal(saved.model.fc.weight)
    assert not built.attention.weight.any()
    assert saved.vocab.stoi["."] in built.sentence_ends.tolist()
    summary = train_sentiment(config)
    assert summary["report"]["accuracy"] > 0.85
    model = load_model(tmp_path / "mil")
    assert model.model.pooling == "mil"
    assert model.model.sentence_ends.tolist() == built.sentence_ends.tolist()  # saved with it
    good, bad = "a wonderful film , i loved it .", "dull and boring , i hated it ."
    p_good, p_bad, p_both = model.text_probabilities([good, bad, f"{good} {bad}"])
    assert p_good > 0.5 > p_bad
    assert p_bad <= p_both <= p_good  # a weighted mean of its two sentences
    from sentiment.kinds.checkpoint import export_model

    half = load_model(export_model(tmp_path / "mil", tmp_path / "half", "float16"))
    assert half.model.sentence_ends.tolist() == built.sentence_ends.tolist()
    assert abs(half.text_probabilities([good])[0] - p_good) < 1e-2
    # explanations map each sentence's attributions back to the text's words: they add up to
    # the logit's change from the all-zero baseline, as a whole-text model's do
    explained = model.explain(f"{good} {bad}", steps=64)
    assert [w["token"] for w in explained["words"]] == model.tokens([f"{good} {bad}"])[0]
    total = sum(w["attribution"] for w in explained["words"])
    assert total == pytest.approx(explained["logit"] - explained["baseline_logit"], rel=0.05,
                                  abs=0.05)
    assert explained["score"] == pytest.approx(max(p_both, 1 - p_both), abs=2e-3)  # float32
    assert require(model, "explain") is model
    with pytest.raises(CapabilityError, match="does not split"):
        require(model, "export")
    from sentiment.kinds.export import export_onnx

    with pytest.raises(ValueError, match="does not split"):
        export_onnx(tmp_path / "mil", tmp_path / "onnx")
