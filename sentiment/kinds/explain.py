"""Why a classifier gave its label: integrated gradients over the word embeddings."""

from __future__ import annotations

import contextlib
from typing import TYPE_CHECKING

import torch

from ..data.batching import pad_batch
from .decisions import class_probs, predicted_classes, probabilities

if TYPE_CHECKING:
    from .lstm import SentimentModel


def explain(model: SentimentModel, text: str, steps: int = 32,
            max_tokens: int | None = None) -> dict:
    """The label and score of ``text`` and which words pushed it there: ``"words"``, one
    ``{"token", "weight"}`` per token in order; ``weight`` > 0 pushed toward the predicted
    label, < 0 away from it, scaled so that the strongest is ±1.

    Integrated gradients (Sundararajan et al., 2017) of the predicted label's logit with
    respect to the word embeddings, from an all-zero embedding, in ``steps`` points scored
    as one batch (one forward and one backward pass, float32). The raw attributions add up
    to the logit's change from that baseline (``"logit"`` and ``"baseline_logit"``), so
    they account for the score rather than just its local slope. Words outside the
    vocabulary are ``<unk>`` to the model and shown as written.

    ``max_tokens``: explain only the text's first that many tokens (the cost grows with the
    length times ``steps``); ``"explained_tokens"``, ``"total_tokens"`` and ``"truncated"`` say
    what was explained, and the label, score and logits are those of that part.
    """
    # an ensemble's members each have their embedding: all are scaled along the same path,
    # so the attributions add up to the change of the ensemble's logit
    embeddings = getattr(model.model, "embeddings", None) or [model.model.core.embedding]
    if any(embedding is None for embedding in embeddings):
        raise ValueError("explanations need a model with a word embedding")
    tokens = model.tokens([text])[0]
    total = len(tokens)
    tokens = tokens[:max_tokens]
    ids = model.vocab.encode(tokens)
    batch = pad_batch([ids] * (steps + 2), model.vocab.pad_index or 0).to(model.device)
    # row 0: the text; row 1: the baseline (zero embeddings); rows 2..: the embeddings scaled
    # by the midpoints of ``steps`` equal steps between them
    alphas = torch.cat([torch.tensor([1.0, 0.0]), (torch.arange(steps) + 0.5) / steps])
    alphas = alphas.to(model.device)
    captured = []  # (scaled embeddings, the text's embeddings, pieces) per embedding call
    mil = getattr(model.model, "pooling", None) == "mil"
    scale = _path_hook(alphas, captured, model.model if mil else None)
    hooks = [embedding.register_forward_hook(scale) for embedding in embeddings]
    try:
        probs, predicted, target = _backward_through_path(model, batch, text)
    finally:
        for hook in hooks:
            hook.remove()
        model.model.zero_grad(set_to_none=True)
    if mil:
        raw = _pieces_back(captured, len(ids), steps)
    else:
        raw = sum((scaled.grad[2:].mean(0) * embedded).sum(-1)
                  for scaled, embedded, _ in captured)
    raw = raw[: len(ids)].cpu()
    weights = raw / raw.abs().max().clamp_min(1e-12)
    return {"label": model.labels[predicted], "score": float(probs[0, predicted]),
            "logit": float(target[0].detach()), "baseline_logit": float(target[1].detach()),
            "words": [{"token": token, "weight": round(float(w), 4),
                       "attribution": float(a)}
                      for token, w, a in zip(tokens, weights.tolist(), raw.tolist(),
                                             strict=True)],
            "explained_tokens": len(tokens), "total_tokens": total,
            "truncated": len(tokens) < total}


def _path_hook(alphas: torch.Tensor, captured: list, mil_model=None):
    """The embedding hook that scales each row by its step on the path and keeps what the
    attributions need; with ``mil_model``, rows are its sentence pieces, each taking its text
    row's step."""

    def scale(module, inputs, output):
        if mil_model is not None:
            owners, starts, lengths = mil_model.pieces_read
            scaled = (alphas[owners.to(alphas.device)][:, None, None]
                      * output.detach()).requires_grad_()
            captured.append((scaled, output.detach(), (owners, starts, lengths)))
            return scaled
        scaled = (alphas[:, None, None] * output.detach()).requires_grad_()
        captured.append((scaled, output.detach()[0], None))
        return scaled

    return scale


def _pieces_back(captured: list, length: int, steps: int) -> torch.Tensor:
    """A mil model's attributions per token of the text: each sentence piece of the path's rows
    (rows 2.. of the batch) adds its gradient times embedding at its place in the text, the
    mean over the path's steps."""
    raw = torch.zeros(length)
    for scaled, embedded, (owners, starts, lengths) in captured:
        products = (scaled.grad * embedded).sum(-1).float().cpu()  # (pieces, Ls)
        for row, (owner, start, size) in enumerate(zip(owners.tolist(), starts.tolist(),
                                                        lengths.tolist(), strict=True)):
            if owner >= 2:
                raw[start : start + size] += products[row, :size] / steps
    return raw


def _backward_through_path(model: SentimentModel, batch, text: str):
    """Score the text, its baseline and the scaled path in one batch, and back-propagate the
    predicted label's logit along the path: ``(probs of the text, predicted, target logits)``."""
    no_cudnn = (torch.backends.cudnn.flags(enabled=False) if model.device.type == "cuda"
                else contextlib.nullcontext())  # cuDNN's RNN backward needs train mode
    with torch.enable_grad(), no_cudnn:
        logits = model.model(batch).logits.float()
        if model.wide is not None:  # wide and deep: the n-gram log-odds, a constant here
            logits = model.wide.join(logits, float(model.wide.logits([text])[0]))
        probs = class_probs(probabilities(logits[:1].detach(), model.num_classes)
                            .cpu().numpy())
        predicted = int(predicted_classes(probs)[0])
        if model.num_classes == 2:  # one logit: positive's; negative's is its opposite
            target = logits if predicted == 1 else -logits
        else:
            target = logits[:, predicted]
        target[2:].sum().backward()
    return probs, predicted, target
