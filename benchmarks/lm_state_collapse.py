"""Why the word LM stalled at the unigram model: its state collapses unless the output biases
start at the word frequencies.

    python -m benchmarks.lm_state_collapse --data ../shared/data/imdb \
        --vectors ../shared/data/glove/glove.6B.50d.txt.gz --steps 100

Trains the default biLM (whole-review batches, Adam) for ``--steps`` steps on a small IMDB
corpus twice from the same seed: with the output biases as initialised by PyTorch, and with
them set to the log word frequencies (:meth:`~sentiment.nn.heads.LanguageModel.set_output_prior`).
Every 20 steps it prints the training loss and, over the batch's reviews, the forward top
layer's state at word 20: its mean |h| and its spread across reviews (the std of each unit,
averaged). A spread of 0 means the state no longer depends on the review at all.
"""

from __future__ import annotations

import argparse

import numpy as np
import torch

from sentiment.train import pretrain
from sentiment.train.loop import build_optimizer
from sentiment.train.prepare import build_task_model


def run(config, corpus, prior: bool, steps: int) -> None:
    train_batches, _ = pretrain.lm_batches(config, corpus)
    model, config, _ = build_task_model(config, corpus.vocab)
    if prior:
        model.set_output_prior(np.bincount(corpus.train_stream, minlength=len(corpus.vocab)))
    optimizer = build_optimizer(model, config.train)
    hidden = config.model.core.hidden_dim
    for step, batch in enumerate(train_batches):
        model.train()
        loss = model(batch).loss
        optimizer.zero_grad()
        loss.backward()
        torch.nn.utils.clip_grad_norm_(model.parameters(), config.train.clip)
        optimizer.step()
        if step % 20 == 0 or step == steps:
            model.eval()
            with torch.no_grad():
                state = model.core(batch.inputs[:, :30]).outputs[:, 20, :hidden].float()
            print(f"prior={prior!s:5} step {step:4d}  loss {loss.item():.3f}  "
                  f"mean |h| {state.abs().mean():.3f}  spread across reviews "
                  f"{state.std(0).mean():.4f}", flush=True)
        if step == steps:
            break


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--data", default="../shared/data/imdb")
    parser.add_argument("--vectors", default="../shared/data/glove/glove.6B.50d.txt.gz")
    parser.add_argument("--steps", type=int, default=100)
    args = parser.parse_args()
    config = pretrain.make_config(data=args.data, vectors=args.vectors, train_limit=1000,
                                  unlabelled_limit=3000, lm_valid_reviews=200, num_proc=1,
                                  output="/dev/null")
    corpus = pretrain.prepare_corpus(config)
    for prior in (False, True):
        torch.manual_seed(config.train.seed)
        run(config, corpus, prior, args.steps)


if __name__ == "__main__":
    main()
