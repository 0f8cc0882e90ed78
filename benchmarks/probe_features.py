"""How much sentiment a pretrained core's features carry, frozen: a logistic-regression probe.

    python -m benchmarks.probe_features --encoder runs/lm --data ../shared/data/imdb

Mean- and max-pooled features of the first ``--train + --test`` training reviews (first 400
tokens each), standardised on the probe's training part, then ``LogisticRegression(C=0.1)``:
accuracy on the held-out part for the embeddings alone, the top layer of a randomly initialised
core (same embeddings), the pretrained core's top layer and its first layer. Also prints the mean
|h| of the top layer (saturation) and its spread across reviews.
"""

from __future__ import annotations

import argparse
import dataclasses

import numpy as np
import torch
from sklearn.linear_model import LogisticRegression

from sentiment.data.batching import pad_batch
from sentiment.kinds.checkpoint import load_core_weights
from sentiment.nn.core import RNNCore, valid_mask
from sentiment.train import prepare, recipe
from sentiment.train.prepare import build_task_model


def pooled(core: RNNCore, sequences, embeddings_only: bool = False) -> np.ndarray:
    """``[mean, max]`` over the valid positions of each sequence: (N, 2 * width)."""
    core.eval()
    rows = []
    with torch.inference_mode():
        for start in range(0, len(sequences), 64):
            batch = pad_batch([s[:400] for s in sequences[start : start + 64]])
            valid = valid_mask(batch.lengths, *batch.inputs.shape, "cpu").unsqueeze(-1)
            states = (core.embed(batch.inputs) if embeddings_only
                      else core(batch.inputs, batch.lengths).outputs)  # (B, T, D)
            mean = (states * valid).sum(1) / valid.sum(1)
            rows.append(torch.cat([mean, states.masked_fill(~valid, -1e9).amax(1)], -1).numpy())
    return np.concatenate(rows)


def probe(features: np.ndarray, labels: np.ndarray, train: int) -> float:
    """Held-out accuracy of a logistic regression on standardised ``features``."""
    mean, std = features[:train].mean(0), features[:train].std(0) + 1e-6
    scaled = (features - mean) / std
    classifier = LogisticRegression(max_iter=3000, C=0.1).fit(scaled[:train], labels[:train])
    return float(classifier.score(scaled[train:], labels[train:]))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--encoder", required=True, help="a saved model folder (e.g. runs/lm)")
    parser.add_argument("--data", default="../shared/data/imdb")
    parser.add_argument("--train", type=int, default=1200, help="probe training reviews")
    parser.add_argument("--test", type=int, default=400, help="probe held-out reviews")
    args = parser.parse_args()
    config = recipe.make_config(data=args.data, encoder=args.encoder, train_limit=4000,
                                  test_limit=400, num_proc=1)
    _, vocab, _ = load_core_weights(args.encoder)
    data = prepare.prepare_data(config, vocab)
    model, config, _ = build_task_model(config, data.vocab)
    count = args.train + args.test
    sequences, labels = data.ids["train"][:count], np.asarray(data.train["label"][:count])
    torch.manual_seed(0)
    random_core = RNNCore(config.model.core)
    random_core.embedding.weight.data.copy_(model.core.embedding.weight.data)
    first_layer = RNNCore(dataclasses.replace(config.model.core, num_layers=1))
    directions = config.model.core.num_directions
    first_layer.load_state_dict({k: v for k, v in model.core.state_dict().items()
                                 if not k.startswith("rnns.") or
                                 int(k.split(".")[1]) < directions})
    top = pooled(model.core, sequences)
    width = top.shape[1] // 2
    print(f"pretrained top layer: mean |h| {np.abs(top[:, :width]).mean():.3f}, spread across "
          f"reviews of the mean-pooled features {top[:, :width].std(0).mean():.4f}")
    for name, features in (("pretrained embeddings", pooled(model.core, sequences, True)),
                           ("random-init core, top layer", pooled(random_core, sequences)),
                           ("pretrained core, top layer", top),
                           ("pretrained core, first layer", pooled(first_layer, sequences))):
        print(f"{name:32s} frozen-feature probe accuracy "
              f"{probe(features, labels, args.train):.3f}")


if __name__ == "__main__":
    main()
