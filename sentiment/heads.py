"""Task models: small heads on the shared :class:`~sentiment.core.RNNCore`.

Every task model has the same contract, so one training loop serves both:
``forward(batch, state=None) -> ModelOutput(logits, loss or None, state)``,
``batch_metrics(output, batch) -> dict`` of sums and ``summarize(sums) -> dict`` of metrics.
"""

from __future__ import annotations

import math
from typing import NamedTuple

import torch
import torch.nn.functional as F
from torch import nn

from .batching import Batch
from .core import CoreConfig, RNNCore, valid_mask

POOLINGS = ("final", "concat")


def float32_linear(linear: nn.Linear, x: torch.Tensor) -> torch.Tensor:
    """``linear(x)`` in float32 even inside autocast: the logits (and the probabilities and
    losses made from them) keep float32 precision; the layer is small next to the RNN."""
    with torch.autocast(device_type=x.device.type, enabled=False):
        return linear(x.float())


class ModelOutput(NamedTuple):
    logits: torch.Tensor
    loss: torch.Tensor | None
    state: list | None


class SentimentClassifier(nn.Module):
    """Core -> pooled states -> dropout -> linear to one logit (positive vs negative).

    ``pooling="final"``: the last layer's final forward and backward states (the seed's design).
    ``pooling="concat"``: those plus max- and mean-pooling over all valid positions (fastai's
    ``PoolingLinearClassifier``).
    """

    task = "sentiment"
    selection_metric = ("accuracy", "max")

    def __init__(self, core_config: CoreConfig, dropout: float = 0.5, pooling: str = "final"):
        super().__init__()
        if pooling not in POOLINGS:
            raise ValueError(f"pooling must be one of {POOLINGS}, got {pooling!r}")
        self.core = RNNCore(core_config)
        self.pooling = pooling
        self.dropout = nn.Dropout(dropout)
        width = core_config.output_dim * (3 if pooling == "concat" else 1)
        self.fc = nn.Linear(width, 1)
        self.head_config = {"dropout": dropout, "pooling": pooling}

    def forward(self, batch: Batch, state: list | None = None) -> ModelOutput:
        out = self.core(batch.inputs, batch.lengths, state)
        features = out.final.float()  # (B, D*H); pooled in float32 under autocast too
        if self.pooling == "concat":
            outputs = out.outputs
            batch_size, steps, _ = outputs.shape
            valid = valid_mask(batch.lengths, batch_size, steps, outputs.device)
            valid = valid.unsqueeze(-1)  # (B, T, 1)
            maxed = outputs.masked_fill(~valid, float("-inf")).amax(dim=1).float()  # (B, D*H)
            mean = outputs.sum(dim=1, dtype=torch.float32) / valid.sum(dim=1)  # (B, D*H)
            features = torch.cat([features, maxed, mean], dim=-1)  # (B, 3*D*H)
        logits = float32_linear(self.fc, self.dropout(features)).squeeze(-1)  # (B,)
        loss = None
        if batch.targets is not None:
            loss = F.binary_cross_entropy_with_logits(logits.float(), batch.targets.float())
        return ModelOutput(logits, loss, None)

    @staticmethod
    def batch_metrics(output: ModelOutput, batch: Batch) -> dict:
        count = batch.targets.numel()
        predicted = (output.logits.detach() > 0).float()
        return {
            "loss_sum": float(output.loss.detach()) * count,
            "correct": int((predicted == batch.targets).sum()),
            "count": count,
        }

    @staticmethod
    def summarize(sums: dict) -> dict:
        count = max(sums.get("count", 0), 1)
        return {"loss": sums["loss_sum"] / count, "accuracy": sums["correct"] / count}


class LanguageModel(nn.Module):
    """Core (unidirectional) -> linear to the vocabulary; optional weight tying."""

    task = "language-model"
    selection_metric = ("perplexity", "min")

    def __init__(self, core_config: CoreConfig, tie_weights: bool = False, dropout: float = 0.0):
        super().__init__()
        if core_config.bidirectional:
            raise ValueError("a language model's core must be unidirectional")
        self.core = RNNCore(core_config)
        self.dropout = nn.Dropout(dropout)
        self.decoder = nn.Linear(core_config.hidden_dim, core_config.vocab_size)
        if tie_weights:
            if core_config.input_type != "embedding":
                raise ValueError("weight tying needs input_type='embedding'")
            if core_config.embed_dim != core_config.hidden_dim:
                raise ValueError(
                    f"weight tying needs embed_dim == hidden_dim "
                    f"(got {core_config.embed_dim} and {core_config.hidden_dim})"
                )
            self.decoder.weight = self.core.embedding.weight
        self.head_config = {"tie_weights": tie_weights, "dropout": dropout}

    def forward(self, batch: Batch, state: list | None = None) -> ModelOutput:
        out = self.core(batch.inputs, None, state)
        logits = float32_linear(self.decoder, self.dropout(out.outputs))  # (B, T, V)
        loss = None
        if batch.targets is not None:
            loss = F.cross_entropy(
                logits.float().reshape(-1, logits.size(-1)), batch.targets.reshape(-1).long()
            )
        return ModelOutput(logits, loss, out.state)

    @staticmethod
    def batch_metrics(output: ModelOutput, batch: Batch) -> dict:
        count = batch.targets.numel()
        return {"loss_sum": float(output.loss.detach()) * count, "count": count}

    @staticmethod
    def summarize(sums: dict) -> dict:
        loss = sums["loss_sum"] / max(sums.get("count", 0), 1)
        return {
            "loss": loss,
            "perplexity": math.exp(min(loss, 50.0)),
            "bits_per_char": loss / math.log(2),
        }
