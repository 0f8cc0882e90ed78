"""A moving average of the weights (Polyak averaging) as a hook of the training loop: updated
after every optimizer step; what validation judges and what the run keeps."""

from __future__ import annotations

import torch
from torch import nn
from torch.optim.swa_utils import AveragedModel, get_ema_multi_avg_fn

from ..train.hooks import TrainingHook

EMA_WARMUP = 4  # an average spans at most about the last 1/EMA_WARMUP of the steps so far


def weight_average(model: nn.Module, decay: float) -> AveragedModel | None:
    """An exponential moving average of ``model``'s weights and buffers (None when ``decay`` is
    0). The first update copies them; the k-th later one moves the average ``1 - d`` of the way
    to them with ``d = min(decay, k / (k + 4))``: the average spans about the last quarter of
    the steps taken until that reaches ``1 / (1 - decay)`` steps, so a short run on little data
    is averaged over its own late steps, not held near its first (the warm-up of TensorFlow's
    ``ExponentialMovingAverage(num_updates=)``). Build it before hooks go on ``model``: it is a
    deep copy."""
    if decay == 0:
        return None

    @torch.no_grad()
    def update(averaged: list[torch.Tensor], current: list[torch.Tensor], updates) -> None:
        k = int(updates)
        get_ema_multi_avg_fn(min(decay, k / (k + EMA_WARMUP)))(averaged, current, updates)

    return AveragedModel(model, multi_avg_fn=update, use_buffers=True)


class WeightAverage(TrainingHook):
    """Updates ``average`` from the model after every optimizer step."""

    def __init__(self, average: AveragedModel):
        self.average = average

    def after_step(self, model: nn.Module) -> None:
        self.average.update_parameters(model)
