"""The small interface through which training options join the loop (fastai's callbacks, kept
to the events really used): :class:`Step` is what a hook sees of a training step,
:class:`TrainingHook` the events. The options themselves live in their own modules:
:mod:`sentiment.train.adversarial` (adversarial and virtual adversarial training) and
:mod:`sentiment.train.averaging` (a moving average of the weights).
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
from torch import nn

from ..data.batching import Batch
from ..nn.heads import ModelOutput
from ..runtime.precision import autocast


@dataclass
class Step:
    """One training step as a hook sees it: the bare ``model``, the module to call
    (``forward``: ``model`` itself, or wrapped for torchrun), the batch and its input state,
    where and in what precision it runs, and the loss scaler."""

    model: nn.Module
    forward: nn.Module
    batch: Batch
    state: list | None
    device: torch.device
    amp_dtype: torch.dtype | None
    scaler: torch.amp.GradScaler

    def run(self, batch: Batch | None = None, module: nn.Module | None = None) -> ModelOutput:
        """A forward pass of ``batch`` (default: the step's, from its state) under autocast."""
        with autocast(self.device, self.amp_dtype):
            if batch is None:
                return (module or self.forward)(self.batch, self.state)
            return (module or self.forward)(batch)

    def backward(self, loss: torch.Tensor) -> None:
        """Add ``loss``'s gradients to the step's (scaled as the clean loss is)."""
        self.scaler.scale(loss).backward()


class TrainingHook:
    """An option of the training loop. Every event is optional."""

    def after_backward(self, step: Step) -> None:
        """After the clean loss's backward pass, before clipping: add losses of its own."""

    def after_step(self, model: nn.Module) -> None:
        """After the optimizer step."""

    def epoch_sums(self) -> dict:
        """Sums of this epoch's figures (summed over ranks under torchrun); then reset."""
        return {}

    def summarize(self, sums: dict) -> dict:
        """Per-epoch metrics from the summed :meth:`epoch_sums`."""
        return {}

    def remove(self) -> None:
        """Take off anything the hook put on the model (at the end of training)."""
