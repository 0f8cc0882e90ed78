"""Word-LM pretraining: corpus hygiene, the separate-direction layout, resume, fine-tuning."""

from __future__ import annotations

import json
import math

import numpy as np
import pytest
import torch
from conftest import IMDB, needs, synthetic_reviews

from sentiment import predict
from sentiment.data.batching import Batch, pad_batch
from sentiment.data.sources import clean_text
from sentiment.nn.core import CoreConfig, RNNCore
from sentiment.text.tokenize import Tokenizer
from sentiment.text.vocab import PAD, UNK, Vocab
from sentiment.train import prepare, pretrain
from sentiment.train import recipe as pipeline
from sentiment.train.charlm import generate, load_language_model


def test_separate_layout_reads_each_direction_from_its_own_side():
    torch.manual_seed(0)
    core = RNNCore(CoreConfig(vocab_size=20, embed_dim=6, hidden_dim=5, num_layers=2,
                              layout="separate", dropout=0.0, input_dropout=0.0)).eval()
    inputs = torch.tensor([[3, 4, 5, 6, 7, 8]])
    changed = inputs.clone()
    changed[0, 3] = 9
    a, b = core(inputs).outputs, core(changed).outputs
    assert torch.equal(a[0, :3, :5], b[0, :3, :5])  # forward stack: nothing from the future
    assert torch.equal(a[0, 4:, 5:], b[0, 4:, 5:])  # backward stack: nothing from the past
    joint = RNNCore(CoreConfig(vocab_size=20, embed_dim=6, hidden_dim=5, num_layers=2,
                               dropout=0.0, input_dropout=0.0)).eval()
    assert not torch.equal(joint(inputs).outputs[0, :3, :5], joint(changed).outputs[0, :3, :5])
    assert core.rnns[2].weight_ih_l0.shape[1] == 5 and joint.rnns[2].weight_ih_l0.shape[1] == 10


def test_corpus_holds_no_validation_or_test_review(synthetic_dir):
    config = pretrain.make_config("tiny", data=str(synthetic_dir), train_limit=600,
                                  lm_valid_reviews=50, num_proc=1)
    train_texts, held_out = pretrain.corpus_texts(config)
    splits = prepare.classifier_splits(pipeline.make_config(
        data=str(synthetic_dir), train_limit=600).data, seed=0)
    corpus = set(train_texts["text"]) | set(held_out["text"])
    assert not corpus & (set(splits["valid"]["text"]) | set(splits["test"]["text"]))
    assert set(splits["train"]["text"]) <= corpus
    assert len(held_out) == 50 and not set(held_out["text"]) & set(train_texts["text"])


@pytest.fixture(scope="module")
def pretrained(synthetic_dir, tmp_path_factory):
    output = tmp_path_factory.mktemp("lm")
    config = pretrain.make_config("tiny", data=str(synthetic_dir), output=str(output),
                                  progress=False, num_proc=1, epochs=1, hidden_dim=24)
    first = pretrain.pretrain_language_model(config)
    resumed = pretrain.pretrain_language_model(pretrain.make_config(
        "tiny", data=str(synthetic_dir), output=str(output), progress=False, num_proc=1,
        epochs=3, hidden_dim=24))
    return output, first, resumed


def test_pretraining_learns_resumes_and_generates(pretrained, synthetic_dir):
    output, first, resumed = pretrained
    assert first["epochs_run"] == 1 and resumed["epochs_run"] == 2  # epochs 2-3 after resume
    lines = [json.loads(x) for x in (output / "metrics.jsonl").read_text().splitlines()]
    assert [r["epoch"] for r in lines] == [1, 2, 3]
    lm = load_language_model(output)
    # the synthetic reviews are mostly filler words drawn independently; what order there is
    # (a full stop after ten words, one polarity per review) is all there is to learn, so the
    # held-out loss must beat the best order-free model: the training unigram's cross-entropy
    corpus = pretrain.prepare_corpus(pretrain.make_config(
        "tiny", data=str(synthetic_dir), num_proc=1))
    assert corpus.vocab.itos == lm.vocab.itos
    counts = np.bincount(np.concatenate(corpus.train_ids), minlength=len(corpus.vocab))
    log_p = np.log(np.maximum(counts, 1) / counts.sum())
    targets = np.concatenate([x[1:] for x in corpus.valid_ids] + [x[:-1] for x in corpus.valid_ids])
    unigram = float(-log_p[targets].mean())
    assert lines[-1]["valid_loss"] < unigram < math.log(len(lm.vocab))
    assert {"valid_forward_perplexity", "valid_backward_perplexity"} <= set(lines[0])
    text = generate(lm, "the movie was", num_chars=5, temperature=1.0, seed=0)
    assert text.startswith("the movie was") and len(text.split()) == 3 + 5
    assert generate(lm, "the movie", 4) == generate(lm, "the movie", 4)


def test_fine_tuning_starts_from_the_pretrained_core(pretrained, synthetic_dir, tmp_path):
    output, _, _ = pretrained
    lm = load_language_model(output).model
    config = pipeline.make_config("tiny", data=str(synthetic_dir), encoder=str(output),
                                  output=str(tmp_path), epochs=4, progress=False, num_proc=1,
                                  baseline=False)
    data = prepare.prepare_data(config, load_language_model(output).vocab)
    classifier, _, _ = prepare.build_task_model(config, data.vocab)
    for name, weight in lm.core.state_dict().items():
        assert torch.equal(classifier.core.state_dict()[name], weight), name
    summary = pipeline.train_sentiment(config)
    assert summary["report"]["accuracy"] > 0.8
    assert predict("Superb and moving, I loved it.", model=tmp_path)["label"] == "positive"


def test_fine_tuning_with_virtual_adversarial_training_on_unlabelled_reviews(
        pretrained, synthetic_dir, tmp_path):
    output, _, _ = pretrained
    config = pipeline.make_config("tiny", data=str(synthetic_dir), encoder=str(output),
                                  output=str(tmp_path / "model"), epochs=4, progress=False,
                                  num_proc=1, baseline=False, virtual_adversarial=0.05,
                                  unlabelled_limit=200)
    vocab = load_language_model(output).vocab
    stream = pipeline.unlabelled_batches(config, vocab)
    assert len(stream.sequences) == 200  # unlabelled_limit of the unsupervised file's 1,000
    tokenizer = Tokenizer()

    def encoded(rows):
        texts = [clean_text(r["text"]) for r in rows]
        return {tuple(vocab.encode(t)) for t in tokenizer.pipe(texts)}

    unlabelled = encoded(synthetic_reviews(1000, seed=3))
    labelled = encoded(synthetic_reviews(2000, seed=1) + synthetic_reviews(200, seed=2))
    streamed = {tuple(int(i) for i in seq) for seq in stream.sequences}
    assert streamed <= unlabelled and not streamed & labelled  # no labelled review, any split
    summary = pipeline.train_sentiment(config)
    assert summary["report"]["accuracy"] > 0.8
    records = [json.loads(line) for line in (tmp_path / "model" / "metrics.jsonl").open()]
    assert all(record["train_virtual_loss"] > 0 for record in records)
    assert predict("Superb and moving, I loved it.", model=tmp_path / "model")["label"] == \
        "positive"
    # a source without unlabelled reviews is a clear error, before any training
    alone = tmp_path / "labelled-only"
    alone.mkdir()
    for name in ("train.jsonl", "test.jsonl"):
        (alone / name).write_text((synthetic_dir / name).read_text())
    with pytest.raises(FileNotFoundError, match="unsupervised|unlabelled"):
        pipeline.unlabelled_batches(pipeline.make_config("tiny", data=str(alone),
                                                         virtual_adversarial=0.05), vocab)


@pytest.mark.parametrize("directions", ["forward", "backward"])
def test_fine_tuning_one_direction_of_the_pretrained_core(pretrained, synthetic_dir, tmp_path,
                                                           directions):
    output, _, _ = pretrained
    lm = load_language_model(output).model
    config = pipeline.make_config("tiny", data=str(synthetic_dir), encoder=str(output),
                                  encoder_directions=directions, output=str(tmp_path), epochs=4,
                                  progress=False, num_proc=1, baseline=False)
    data = prepare.prepare_data(config, load_language_model(output).vocab)
    classifier, resolved, _ = prepare.build_task_model(config, data.vocab)
    core = resolved.model.core
    assert not core.bidirectional and core.reverse == (directions == "backward")
    assert torch.equal(classifier.core.embedding.weight, lm.core.embedding.weight)
    side = int(directions == "backward")  # the LM's rnns are (layer 0 fwd, bwd, layer 1 fwd, bwd)
    for layer in range(core.num_layers):
        for name, weight in lm.core.rnns[2 * layer + side].state_dict().items():
            assert torch.equal(classifier.core.rnns[layer].state_dict()[name], weight), name
    # the one-direction classifier reads as that stack of the LM read: same top-layer states
    batch = pad_batch([[5, 6, 7, 8, 9], [10, 11]])
    lm.eval(), classifier.eval()
    hidden = core.hidden_dim
    with torch.no_grad():
        both = lm.core(batch.inputs, batch.lengths).outputs
        expected = both[..., side * hidden:(side + 1) * hidden]
        got = classifier.core(batch.inputs, batch.lengths).outputs
    torch.testing.assert_close(got, expected)
    summary = pipeline.train_sentiment(config)
    assert summary["report"]["accuracy"] > 0.8
    # the saved folder rebuilds the one-direction core: predict agrees with the report
    reviews = synthetic_reviews(60, seed=7)
    results = predict([r["text"] for r in reviews], model=tmp_path)
    hits = [res["label"] == ("positive" if r["label"] else "negative")
            for res, r in zip(results, reviews, strict=True)]
    assert np.mean(hits) > 0.8


def test_one_direction_needs_a_separate_layout_encoder(synthetic_dir):
    with pytest.raises(ValueError, match="needs an encoder"):
        prepare.build_task_model(pipeline.make_config("tiny", encoder_directions="forward"),
                                  Vocab([PAD, UNK, "a"]))
    with pytest.raises(ValueError, match="encoder_directions must be one of"):
        pipeline.make_config("tiny", encoder_directions="sideways")


def test_a_bidirectional_lm_needs_the_separate_layout(synthetic_dir):
    with pytest.raises(ValueError, match="separate"):
        pretrain.pretrain_language_model(pretrain.make_config("tiny", layout="joint",
                                                              data=str(synthetic_dir)))


@needs(IMDB)
def test_lm_loss_falls_on_real_reviews(tmp_path):
    config = pretrain.make_config("tiny", data=str(IMDB), output=str(tmp_path), progress=False,
                                  train_limit=300, unlabelled_limit=400, lm_valid_reviews=50,
                                  epochs=2, max_vocab=1000)
    pretrain.pretrain_language_model(config)
    lines = [json.loads(x) for x in (tmp_path / "metrics.jsonl").read_text().splitlines()]
    assert lines[1]["valid_loss"] < lines[0]["valid_loss"]
    assert lines[0]["train_perplexity"] < 1000  # well under the uniform 1,003


def test_batch_of_a_bidirectional_lm_predicts_both_ways():
    from sentiment.config import HeadConfig
    from sentiment.nn.heads import LanguageModel

    torch.manual_seed(0)
    core = RNNCore(CoreConfig(vocab_size=12, embed_dim=4, hidden_dim=4, layout="separate",
                              dropout=0.0, input_dropout=0.0))
    model = LanguageModel(core, HeadConfig(output_layer="adaptive", cutoffs=[4],
                                           output_dropout=0.0))
    inputs = torch.randint(0, 12, (3, 7))
    out = model(Batch(inputs, None, torch.randint(0, 12, (3, 7)), 21))
    metrics = model.summarize(model.batch_metrics(out, Batch(inputs, None, inputs, 21)))
    assert out.loss.ndim == 0 and metrics["forward_perplexity"] > 1
    assert metrics["backward_perplexity"] > 1
    assert model(Batch(inputs, None)).logits.shape == (3, 7, 12)


def test_review_batches_never_predict_padding():
    """Whole-review LM batches: the loss is the same with any token in the padding, and equals
    the mean negative log-likelihood of each review's next (forward) and previous (backward)
    words, computed one review at a time."""
    from sentiment.config import HeadConfig
    from sentiment.data.batching import pad_batch
    from sentiment.nn.heads import LanguageModel

    torch.manual_seed(0)
    core = RNNCore(CoreConfig(vocab_size=12, embed_dim=4, hidden_dim=4, layout="separate",
                              dropout=0.0, input_dropout=0.0))
    model = LanguageModel(core, HeadConfig(output_dropout=0.0)).eval()
    reviews = [[3, 4, 5, 6, 7], [8, 9], [10, 11, 3]]
    batch = pad_batch(reviews, pad_index=0)
    dirty = batch.inputs.clone()
    dirty[1, 2:], dirty[2, 3:] = 5, 7
    out = model(batch)
    dirty_batch = Batch(dirty, batch.lengths, None, batch.num_tokens)
    assert torch.allclose(out.loss, model(dirty_batch).loss)
    forward, backward = [], []
    for review in reviews:
        single = model.core(torch.tensor([review])).outputs[0]  # (T, 8)
        forward.append(torch.nn.functional.cross_entropy(
            model.decoder(single[:-1, :4]), torch.tensor(review[1:]), reduction="sum"))
        backward.append(torch.nn.functional.cross_entropy(
            model.decoder(single[1:, 4:]), torch.tensor(review[:-1]), reduction="sum"))
    expected = (sum(forward) + sum(backward)) / 2 / 7  # 7 predicted pairs per direction
    assert torch.allclose(out.loss, expected, atol=1e-5)
    metrics = model.summarize(model.batch_metrics(out, batch))
    assert math.isclose(metrics["forward_perplexity"], math.exp(float(sum(forward).detach()) / 7),
                        rel_tol=1e-4)
    with pytest.raises(ValueError, match="two tokens"):
        model(pad_batch([[3], [4]]))


@pytest.mark.parametrize("output_layer", ["adaptive", "full"])
def test_output_prior_predicts_word_frequencies_before_training(output_layer):
    from sentiment.config import HeadConfig
    from sentiment.nn.heads import LanguageModel

    core = RNNCore(CoreConfig(vocab_size=20, embed_dim=4, hidden_dim=6, layout="separate"))
    model = LanguageModel(core, HeadConfig(output_layer=output_layer, cutoffs=[5, 12]))
    counts = torch.arange(20, 0, -1).float() ** 2
    model.set_output_prior(counts.numpy())
    # a zero state leaves only the biases: the log-probabilities are the log frequencies
    log_probs = model._log_probs(torch.zeros(1, 6))[0]
    expected = ((counts + 0.5) / (counts + 0.5).sum()).log()
    assert torch.allclose(log_probs.log_softmax(-1), expected, atol=1e-5)
    with pytest.raises(ValueError, match="19 counts"):
        model.set_output_prior(counts[:19].numpy())


def test_pretraining_on_your_own_text_files(synthetic_dir, tmp_path, capsys):
    """The unlabelled text can come from any file and column: one text per line of a .txt
    (blank lines are not texts), or a column of a CSV; a wrong column names the file's."""
    from conftest import synthetic_reviews

    from sentiment.cli import main as commands
    from sentiment.data.sources import load_unlabelled

    texts = [r["text"] for r in synthetic_reviews(300, seed=21)]
    lines = tmp_path / "notes.txt"
    lines.write_text("\n\n".join(texts) + "\n")
    assert load_unlabelled(lines)["text"] == [t.replace("<br /><br />", "  ") for t in texts]
    table = tmp_path / "posts.csv"
    import csv

    with open(table, "w", newline="") as handle:
        writer = csv.writer(handle)
        writer.writerow(["id", "body"])
        writer.writerows([[i, t] for i, t in enumerate(texts)] + [[300, ""]])
    assert len(load_unlabelled(table, "body")) == 300  # the blank row is skipped, counted
    with pytest.raises(ValueError, match=r"no column 'text'.*\['id', 'body'\]"):
        load_unlabelled(table)
    config = pretrain.make_config("tiny", data=str(synthetic_dir), unlabelled=str(table),
                                  unlabelled_column="body", lm_valid_reviews=40, num_proc=1)
    train_texts, held_out = pretrain.corpus_texts(config)
    own = {t.replace("<br /><br />", "  ") for t in texts}
    assert set(held_out["text"]) <= own and len(held_out) == 40
    assert own - set(held_out["text"]) <= set(train_texts["text"])
    output = tmp_path / "lm"
    assert commands.run("pretrain", [
        "--preset", "tiny", "--data", str(synthetic_dir), "--unlabelled", str(lines),
        "--lm-valid-reviews", "40", "--epochs", "1", "--output", str(output), "--no-progress",
        "--num-proc", "1"]) == 0
    config = json.loads((output / "config.json").read_text())
    assert config["data"]["unlabelled"] == str(lines)
    assert math.isfinite(json.loads((output / "metrics.jsonl").read_text().splitlines()[-1])
                         ["valid_perplexity"])
    assert commands.run("pretrain", ["--preset", "tiny", "--data", str(synthetic_dir),
                                     "--unlabelled", str(tmp_path / "none.txt")]) == 1
    assert "no such file" in capsys.readouterr().err
