from __future__ import annotations

import pytest
import torch

from sentiment.config import HeadConfig
from sentiment.data.batching import pad_batch
from sentiment.nn.core import CoreConfig, RNNCore, reverse_within_lengths
from sentiment.nn.heads import LanguageModel, SentimentClassifier, sentence_spans
from sentiment.runtime.precision import cpu_has_native_bf16


def make_core(rnn_type="lstm", **kwargs) -> RNNCore:
    torch.manual_seed(0)
    config = CoreConfig(vocab_size=40, embed_dim=8, hidden_dim=6, num_layers=2, rnn_type=rnn_type,
                        dropout=0.0, input_dropout=0.0, **kwargs)
    return RNNCore(config).eval()


def padded_batch():
    sequences = [[3, 4, 5, 6, 7, 8, 9], [10, 11, 12], [13], [14, 15, 16, 17, 18]]
    return sequences, pad_batch(sequences)


def test_reverse_within_lengths_keeps_padding_at_the_end():
    x = torch.tensor([[1, 2, 3, 0], [4, 5, 0, 0]]).unsqueeze(-1)
    out = reverse_within_lengths(x, torch.tensor([3, 2])).squeeze(-1)
    assert out.tolist() == [[3, 2, 1, 0], [5, 4, 0, 0]]


@pytest.mark.parametrize("rnn_type", ["lstm", "gru", "rnn"])
def test_shapes(rnn_type):
    core = make_core(rnn_type)
    _, batch = padded_batch()
    out = core(batch.inputs, batch.lengths)
    assert out.outputs.shape == (4, 7, 12) and out.final.shape == (4, 12)
    assert len(out.state) == 4  # 2 layers x 2 directions
    assert not out.outputs[2, 1:].any()  # padded positions are zero


@pytest.mark.parametrize("rnn_type", ["lstm", "gru"])
def test_padding_never_changes_a_result(rnn_type):
    core = make_core(rnn_type)
    sequences, batch = padded_batch()
    exact = core(batch.inputs, batch.lengths)
    core.config.padding_mode = "packed"
    packed = core(batch.inputs, batch.lengths)
    torch.testing.assert_close(exact.final, packed.final)
    torch.testing.assert_close(exact.outputs, packed.outputs)
    core.config.padding_mode = "exact"
    for row, seq in enumerate(sequences):
        alone = core(torch.tensor([seq]), None)
        torch.testing.assert_close(exact.final[row], alone.final[0])
        torch.testing.assert_close(exact.outputs[row, : len(seq)], alone.outputs[0])


def test_reference_padded_mode_is_affected_by_padding():
    core = make_core(padding_mode="padded")
    sequences, batch = padded_batch()
    alone = core(torch.tensor([sequences[2]]), None).final[0]
    assert not torch.allclose(core(batch.inputs, batch.lengths).final[2], alone)


def test_onehot_input_and_embedding_loading():
    core = make_core(input_type="onehot")
    assert core.embedding is None and core.config.embed_dim == 40
    with pytest.raises(ValueError, match="one-hot"):
        core.load_embeddings(torch.zeros(40, 8))
    core = make_core()
    with pytest.raises(ValueError, match="shape"):
        core.load_embeddings(torch.zeros(3, 8))
    matrix = torch.randn(40, 8)
    core.load_embeddings(matrix, freeze=True)
    assert torch.equal(core.embedding.weight, matrix) and not core.embedding.weight.requires_grad


def test_bad_config_names_the_option():
    with pytest.raises(ValueError, match="rnn_type"):
        CoreConfig(vocab_size=5, rnn_type="transformer")
    with pytest.raises(ValueError, match="hidden_dim"):
        CoreConfig(vocab_size=5, hidden_dim=0)


@pytest.mark.parametrize("pooling", ["final", "concat", "mil"])
def test_classifier_scores_a_review_the_same_alone_and_in_a_batch(pooling):
    torch.manual_seed(0)
    model = SentimentClassifier(RNNCore(CoreConfig(vocab_size=40, embed_dim=8, hidden_dim=6)),
                                HeadConfig(pooling=pooling)).eval()
    if pooling == "mil":
        model.set_sentence_ends([5, 12, None])
    sequences, batch = padded_batch()
    batch.targets = torch.tensor([1.0, 0.0, 1.0, 0.0])
    out = model(batch)
    assert out.logits.shape == (4,) and out.loss.ndim == 0
    for row, seq in enumerate(sequences):
        torch.testing.assert_close(out.logits[row], model(pad_batch([seq])).logits[0])
    metrics = model.summarize(model.batch_metrics(out, batch))
    assert 0 <= metrics["accuracy"] <= 1


def test_language_model_head_and_weight_tying():
    config = CoreConfig(vocab_size=30, embed_dim=16, hidden_dim=16, num_layers=1,
                        bidirectional=False)
    model = LanguageModel(RNNCore(config), HeadConfig(tie_weights=True, output_dropout=0.0))
    assert model.decoder.weight is model.core.embedding.weight
    batch = pad_batch([[1, 2, 3, 4]] * 2)
    batch.lengths, batch.targets = None, torch.tensor([[2, 3, 4, 5]] * 2)
    out = model(batch)
    assert out.logits.shape == (2, 4, 30) and len(out.state) == 1
    with pytest.raises(ValueError, match="embed_dim == hidden_dim"):
        LanguageModel(RNNCore(CoreConfig(vocab_size=30, embed_dim=8, hidden_dim=16,
                                         bidirectional=False)), HeadConfig(tie_weights=True))
    with pytest.raises(ValueError, match="unidirectional"):
        LanguageModel(RNNCore(CoreConfig(vocab_size=30)))


@pytest.mark.parametrize("p", [0.2, 0.5])
def test_cpu_dropout_matches_the_bernoulli_distribution(p):
    from sentiment.nn.core import Dropout

    layer = Dropout(p)
    x = torch.ones(1000, 1000, requires_grad=True)
    torch.manual_seed(0)
    y = layer(x)
    kept = y != 0
    assert abs(kept.float().mean().item() - (1 - p)) < 0.003  # 1M draws: sd 0.0005
    assert torch.allclose(y[kept], torch.full_like(y[kept], 1 / (1 - p)), rtol=1e-4)
    assert abs(y.mean().item() - 1.0) < 0.01  # unbiased
    y.sum().backward()
    assert torch.equal(x.grad, y.detach())  # gradient: the same mask and scale
    rows = kept.float().mean(dim=1)
    assert rows.std() < 0.03  # no structure across the tensor
    torch.manual_seed(0)
    assert torch.equal(layer(x), y)  # seeded
    assert torch.equal(layer.eval()(x), x) and torch.equal(Dropout(0.0)(x), x)
    assert layer.train()(x.detach().bfloat16()).dtype == torch.bfloat16


def test_reverse_within_lengths_gradient_is_the_inverse_permutation():
    x = torch.randn(3, 6, 4, dtype=torch.float64, requires_grad=True)
    lengths = torch.tensor([6, 2, 4])
    weights = torch.randn(3, 6, 4, dtype=torch.float64)
    (reverse_within_lengths(x, lengths) * weights).sum().backward()
    assert torch.equal(x.grad, reverse_within_lengths(weights, lengths))
    assert torch.autograd.gradcheck(lambda t: reverse_within_lengths(t, lengths), (x,))


@pytest.mark.skipif(not cpu_has_native_bf16(),
                    reason="oneDNN has no bf16 LSTM on a CPU without bf16 instructions, and the "
                           "package scores and trains in float32 there")
def test_bfloat16_lstm_stays_close_to_float32_over_long_sequences():
    """The numerical check behind bf16 autocast (BENCHMARKS.md; print with ``-s``): one LSTM
    layer over IMDB's longest reviews' length, outputs and gradients against float32."""
    torch.manual_seed(0)
    rnn = torch.nn.LSTM(100, 256, batch_first=True)
    x = (0.5 * torch.randn(2, 2500, 100)).requires_grad_()
    results, dtypes = {}, {}
    for dtype in (None, torch.bfloat16):
        x.grad, rnn.weight_hh_l0.grad = None, None
        with torch.autocast("cpu", dtype=dtype or torch.float32, enabled=dtype is not None):
            out, (_, cell) = rnn(x)
        out.float().sum().backward()
        dtypes[dtype] = out.dtype
        results[dtype] = tuple(t.detach().float() for t in
                               (out, cell, x.grad, rnn.weight_hh_l0.grad))
    errors = {name: float((low - exact).norm() / exact.norm()) for name, low, exact in
              zip(("outputs", "cell", "input grad", "W_hh grad"), results[torch.bfloat16],
                  results[None], strict=True)}
    late = float((results[torch.bfloat16][0][:, -500:] - results[None][0][:, -500:]).norm()
                 / results[None][0][:, -500:].norm())
    print("bf16 relative errors:", {k: f"{v:.4f}" for k, v in errors.items()},
          f"last 500 steps {late:.4f}")
    assert dtypes == {None: torch.float32, torch.bfloat16: torch.bfloat16}
    assert all(error < 0.01 for error in errors.values()) and late < 0.01


def test_batch_norm_head_scores_alone_as_in_a_batch_and_trains():
    torch.manual_seed(0)
    model = SentimentClassifier(RNNCore(CoreConfig(vocab_size=40, embed_dim=8, hidden_dim=6)),
                                HeadConfig(batch_norm=True))
    sequences, batch = padded_batch()
    batch.targets = torch.tensor([1.0, 0.0, 1.0, 0.0])
    model.train()
    model(batch).loss.backward()  # batch statistics in training
    assert model.norm.running_mean.abs().sum() > 0 and model.fc.weight.grad is not None
    model.eval()  # running statistics: a review scores the same alone and in a batch
    out = model(batch)
    for row, seq in enumerate(sequences):
        torch.testing.assert_close(out.logits[row], model(pad_batch([seq])).logits[0])


def test_sentence_spans_cut_after_each_end_mark_and_keep_stray_marks():
    # ends: 1 ("."), 2 ("!"); rows of 9, 4 and 3 tokens (0 is padding)
    inputs = torch.tensor([[7, 8, 1, 9, 9, 2, 2, 7, 7],
                           [1, 7, 8, 9, 0, 0, 0, 0, 0],
                           [7, 8, 9, 0, 0, 0, 0, 0, 0]])
    owner, start, length = sentence_spans(inputs, torch.tensor([9, 4, 3]), torch.tensor([1, 2]))
    # row 0: "7 8 ." | "9 9 !" + the stray "!" | "7 7"; row 1: a lone "." opens it; row 2: one
    assert list(zip(owner, start, length)) == [(0, 0, 3), (0, 3, 4), (0, 7, 2), (1, 0, 1),
                                               (1, 1, 3), (2, 0, 3)]


def test_mil_scores_a_text_as_its_sentences_weighted_and_one_sentence_as_itself():
    torch.manual_seed(0)
    model = SentimentClassifier(RNNCore(CoreConfig(vocab_size=40, embed_dim=8, hidden_dim=6,
                                                   dropout=0.0, input_dropout=0.0)),
                                HeadConfig(pooling="mil", output_dropout=0.0)).eval()
    model.set_sentence_ends([5, None, None])
    first, second = [3, 4, 5], [6, 7, 8, 9]
    alone = [model(pad_batch([part])).logits[0] for part in (first, second)]
    joined = model(pad_batch([first + second])).logits[0]
    # attention starts at zero: the mean of the two sentences' logits, each read alone
    torch.testing.assert_close(joined, (alone[0] + alone[1]) / 2)
    with torch.no_grad():
        model.attention.bias.fill_(1.0)
        model.attention.weight.normal_()
    joined = model(pad_batch([first + second])).logits[0]
    assert min(alone) - 1e-6 <= joined <= max(alone) + 1e-6
    batch = pad_batch([first + second, second])
    logits, attention, owner = model.sentence_logits(batch.inputs, batch.lengths)
    assert owner.tolist() == [0, 0, 1] and logits.shape == attention.shape == (3,)
    with pytest.raises(ValueError, match="two labels"):
        SentimentClassifier(RNNCore(CoreConfig(vocab_size=40)),
                            HeadConfig(pooling="mil", labels=["a", "b", "c"]))


def test_mil_reads_sentences_in_length_groups_without_changing_a_score(monkeypatch):
    from sentiment.nn import heads

    torch.manual_seed(0)
    model = SentimentClassifier(RNNCore(CoreConfig(vocab_size=40, embed_dim=8, hidden_dim=6,
                                                   dropout=0.0, input_dropout=0.0)),
                                HeadConfig(pooling="mil", output_dropout=0.0)).eval()
    model.set_sentence_ends([5, None, None])
    texts = [[3, 4, 5, 6, 7, 8, 9, 10, 11, 5, 12, 5], [13, 14, 5, 15], [16, 17, 18, 19, 20, 21]]
    batch = pad_batch(texts)
    whole = model(batch).logits
    monkeypatch.setattr(heads, "SENTENCE_GROUP_TOKENS", 8)  # every sentence nearly alone
    torch.testing.assert_close(model(batch).logits, whole)
