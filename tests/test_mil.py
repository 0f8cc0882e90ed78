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
    with pytest.raises(CapabilityError, match="one sentence at a time"):
        require(model, "explain")
    from sentiment.kinds.export import export_onnx

    with pytest.raises(ValueError, match="does not split"):
        export_onnx(tmp_path / "mil", tmp_path / "onnx")
