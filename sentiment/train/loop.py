"""The one training loop, shared by the sentiment classifier and the language models.

:func:`train` reads as its steps: set up (device, precision, optimizer, hooks), :func:`resume`,
then per epoch :func:`run_epoch` on the training batches, :func:`validate`, :func:`select_best`,
:func:`end_epoch` (checkpoint, metrics) and :func:`should_stop`; at the end the best weights are
restored. The model follows :class:`~sentiment.nn.heads.TaskModel`; the training batches follow
:class:`~sentiment.data.batching.BatchSource`. Options that act inside a step (adversaries,
the weight average) are :class:`~sentiment.train.hooks.TrainingHook` s in their own modules.
"""

from __future__ import annotations

import contextlib
import copy
import json
import logging
import math
import time
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field
from pathlib import Path

import torch
from safetensors.torch import load_model
from torch import nn
from torch.optim.swa_utils import AveragedModel
from tqdm.auto import tqdm

from ..config import TrainConfig
from ..data.batching import Batch, BatchSource
from ..kinds.checkpoint import load_training_state, save_training_state
from ..nn.core import detach_state
from ..runtime.distributed import (
    all_reduce_max,
    all_reduce_sums,
    barrier,
    broadcast,
    is_distributed,
    is_main,
    rank,
)
from ..runtime.precision import autocast, autocast_dtype, dtype_name, resolve_device
from ..train.adversarial import adversarial_hooks
from ..train.averaging import WeightAverage, weight_average
from ..train.hooks import Step, TrainingHook

logger = logging.getLogger(__name__)


def grad_scaler(device: torch.device, dtype: torch.dtype | None) -> torch.amp.GradScaler:
    """The loss scaler for autocast to ``dtype``: active for float16 only (bfloat16 has float32's
    range and needs none); a disabled scaler passes losses and steps through unchanged."""
    return torch.amp.GradScaler(device.type, enabled=dtype == torch.float16)


def layer_groups(model: nn.Module) -> list[list[nn.Parameter]]:
    """The model's parameters from the top down: the head, then each core layer (both
    directions), then the embedding -- the units of discriminative rates and gradual unfreezing."""
    core = model.core
    directions = core.config.num_directions
    core_ids = {id(p) for p in core.parameters()}
    groups = [[p for p in model.parameters() if id(p) not in core_ids]]
    for layer in reversed(range(core.config.num_layers)):
        rnns = core.rnns[layer * directions : (layer + 1) * directions]
        groups.append([p for rnn in rnns for p in rnn.parameters()])
    if core.embedding is not None:
        groups.append(list(core.embedding.parameters()))
    return [group for group in groups if group]


def build_optimizer(model: nn.Module, config: TrainConfig) -> torch.optim.Optimizer:
    """Adam or SGD with one parameter group per :func:`layer_groups` entry; group ``k`` from the
    top trains at ``lr * layer_lr_decay**k`` (ULMFiT's discriminative rates; 1.0: one rate)."""
    if config.freeze_embeddings and model.core.embedding is not None:
        model.core.embedding.weight.requires_grad_(False)
    param_groups = []
    for depth, params in enumerate(layer_groups(model)):
        params = [p for p in params if p.requires_grad]
        if params:
            lr = config.lr * config.layer_lr_decay**depth
            param_groups.append({"params": params, "lr": lr, "base_lr": lr, "depth": depth})
    if config.optimizer == "sgd":
        return torch.optim.SGD(param_groups, lr=config.lr, weight_decay=config.weight_decay)
    return torch.optim.Adam(param_groups, lr=config.lr, weight_decay=config.weight_decay)


def lr_factor(config: TrainConfig, step: int, total_steps: int) -> float:
    """Multiplier of the base rates at optimizer ``step`` of ``total_steps``: linear warm-up over
    ``warmup`` of the steps, then constant, linear decay to 0, or cosine decay to 0."""
    warmup_steps = int(config.warmup * total_steps)
    if step < warmup_steps:
        return (step + 1) / warmup_steps
    if config.schedule == "constant":
        return 1.0
    progress = min(1.0, (step - warmup_steps) / max(1, total_steps - warmup_steps))
    if config.schedule == "linear":
        return 1.0 - progress
    return 0.5 * (1.0 + math.cos(math.pi * progress))


def set_lr(optimizer: torch.optim.Optimizer, factor: float) -> None:
    for group in optimizer.param_groups:
        group["lr"] = group["base_lr"] * factor


def unfreeze_for_epoch(optimizer: torch.optim.Optimizer, epoch: int, enabled: bool) -> None:
    """Gradual unfreezing (ULMFiT): in epoch ``e`` (from 0) only the top ``e + 1`` parameter
    groups train; all of them when ``enabled`` is False."""
    for group in optimizer.param_groups:
        trainable = not enabled or group["depth"] <= epoch
        for param in group["params"]:
            param.requires_grad_(trainable)


@contextlib.contextmanager
def flush_denormals(device: torch.device):
    """Flush denormal floats to zero on CPU for the duration, then restore the previous setting.

    Decaying gradients otherwise slowed the backward pass badly (BENCHMARKS.md, "Training speed
    and memory"). torch has no
    getter for the flag, so the previous state is read from a denormal product."""
    if device.type != "cpu":
        yield
        return
    was_on = bool((torch.tensor([1e-39]) * 1.0 == 0).item())
    torch.set_flush_denormal(True)
    try:
        yield
    finally:
        torch.set_flush_denormal(was_on)


@dataclass
class Schedule:
    """Where the rates are: the optimizer step and the total the schedule spans."""

    config: TrainConfig
    total_steps: int
    step: int = 0

    def advance(self, optimizer: torch.optim.Optimizer) -> None:
        set_lr(optimizer, lr_factor(self.config, self.step, self.total_steps))
        self.step += 1


@dataclass
class Optimization:
    """What a training pass does after each forward pass: the optimizer and its loss scaler
    (made for the pass's precision when None), clipping, the rate schedule and the hooks."""

    optimizer: torch.optim.Optimizer
    scaler: torch.amp.GradScaler | None = None
    clip: float = 1.0
    schedule: Schedule | None = None
    hooks: Sequence[TrainingHook] = ()

    def step(self, step: Step, loss: torch.Tensor) -> None:
        """Backward pass, the hooks' extra losses, clipping, the optimizer step."""
        if self.schedule is not None:
            self.schedule.advance(self.optimizer)
        self.optimizer.zero_grad(set_to_none=True)
        step.backward(loss)
        for hook in self.hooks:
            hook.after_backward(step)
        step.scaler.unscale_(self.optimizer)
        nn.utils.clip_grad_norm_(step.model.parameters(), self.clip)
        step.scaler.step(self.optimizer)
        step.scaler.update()
        for hook in self.hooks:
            hook.after_step(step.model)


def run_epoch(model: nn.Module, batches: Iterable[Batch], device: torch.device,
              amp_dtype: torch.dtype | None = None, optimization: Optimization | None = None,
              forward: nn.Module | None = None, desc: str = "", progress: bool = True) -> dict:
    """One pass; trains when ``optimization`` is given, else evaluates. Returns the metrics
    (summed over ranks under torchrun, where ``forward`` is ``model`` wrapped for it).

    ``amp_dtype``: autocast the forward pass to this dtype (see :func:`autocast_dtype`). Hidden
    state is carried (detached: truncated BPTT) from a batch to the next one only when the next
    batch says it ``continues``; otherwise every batch starts from a zero state.
    """
    training = optimization is not None
    if training and optimization.scaler is None:
        optimization.scaler = grad_scaler(device, amp_dtype)
    model.train(training)
    forward = forward or model
    sums: dict = {}
    tokens, start, state = 0, time.perf_counter(), None
    total = len(batches) if hasattr(batches, "__len__") else None
    # no bar where stderr is not a terminal (a log file got a line per batch); the postfix is
    # drawn with the count, not ahead of it (the count stood at 0/7 while the loss moved)
    bar = tqdm(batches, total=total, desc=desc, disable=None if progress else True, leave=False,
               unit="batch")
    with torch.set_grad_enabled(training):
        for batch in bar:
            batch = batch.to(device)
            state = detach_state(state) if batch.continues else None
            with autocast(device, amp_dtype):
                output = forward(batch, state)
            if training:
                optimization.step(Step(model, forward, batch, state, device, amp_dtype,
                                       optimization.scaler), output.loss)
            state = output.state
            for key, value in model.batch_metrics(output, batch).items():
                sums[key] = sums.get(key, 0) + value
            tokens += batch.num_tokens
            bar.set_postfix(loss=f"{sums['loss_sum'] / sums['count']:.3f}",
                            tok_s=f"{tokens / max(time.perf_counter() - start, 1e-9):.0f}",
                            refresh=False)
    hooks = optimization.hooks if training else ()
    extra = [hook.epoch_sums() for hook in hooks]
    elapsed = all_reduce_max(time.perf_counter() - start)
    reduced = all_reduce_sums({**sums, "tokens": tokens,
                               **{k: v for part in extra for k, v in part.items()}})
    metrics = {**model.summarize({k: reduced[k] for k in sums}), "tokens": reduced["tokens"],
               "seconds": elapsed, "tokens_per_s": reduced["tokens"] / max(elapsed, 1e-9)}
    for hook in hooks:
        metrics.update(hook.summarize(reduced))
    return metrics


@dataclass
class Progress:
    """What a checkpoint records of the run: epochs done, the best metric (and the validation
    loss beside it, which breaks ties), epochs without improvement, optimizer steps."""

    epoch: int = 0
    best: float | None = None
    bad_epochs: int = 0
    step: int = 0
    history: list = field(default_factory=list)  # this call's epoch records (not checkpointed)
    best_loss: float | None = None  # the validation loss of the best epoch

    def to_dict(self) -> dict:
        return {"epoch": self.epoch, "best": self.best, "bad_epochs": self.bad_epochs,
                "step": self.step, "best_loss": self.best_loss}


def resume(output_dir: Path, model, optimizer, scaler, config: TrainConfig,
           average: AveragedModel | None = None) -> Progress:
    """The progress of an interrupted run in ``output_dir`` (model, optimizer and weight average
    restored), or a fresh start; metric lines after the last checkpoint are dropped."""
    metrics_path = output_dir / "metrics.jsonl"
    progress = Progress()
    if config.resume:
        restored = load_training_state(output_dir / "checkpoint", model, optimizer, scaler,
                                       average)
        if restored is not None:
            progress = Progress(**restored)
            logger.info("resuming after epoch %d (best %s)", progress.epoch, progress.best)
    elif metrics_path.exists() and is_main():
        metrics_path.unlink()
    if is_main():
        _trim_metrics(metrics_path, progress.epoch)
    barrier()  # no rank goes on while rank 0 still edits the run's files
    return progress


def _trim_metrics(path: Path, last_epoch: int) -> None:
    """Drop metric lines of epochs after the last checkpoint (an interrupted run's leftovers)."""
    if not path.exists():
        return
    lines = [line for line in path.read_text().splitlines() if line.strip()]
    kept = [line for line in lines if json.loads(line).get("epoch", 0) <= last_epoch]
    path.write_text("".join(line + "\n" for line in kept))


def select_best(progress: Progress, value: float, direction: str,
                loss: float | None = None) -> bool:
    """Record ``value`` of the selection metric; True when it is the best so far.

    A tie on the metric goes to the lower validation ``loss``: accuracy on a small validation
    split moves in steps of 1/n (2 points on 50 reviews), so ties are common there, and without
    this an epoch that only equals an early lucky one counts as no progress and patience stops
    an improving run."""
    better = progress.best is None or (value > progress.best if direction == "max"
                                        else value < progress.best)
    tied_lower_loss = (value == progress.best and loss is not None
                       and progress.best_loss is not None and loss < progress.best_loss)
    if better or tied_lower_loss:
        progress.best, progress.best_loss, progress.bad_epochs = value, loss, 0
        return True
    progress.bad_epochs += 1
    return False


def should_stop(progress: Progress, config: TrainConfig, started: float) -> str | None:
    """Why training stops before the next epoch (patience, time budget), or None."""
    if progress.bad_epochs >= (config.patience or math.inf):
        return f"no improvement for {progress.bad_epochs} epochs"
    if config.max_minutes is not None and progress.history:
        last = progress.history[-1]
        epoch_seconds = last["train_seconds"] + last["valid_seconds"]
        if time.perf_counter() - started + epoch_seconds > 60 * config.max_minutes:
            return f"another epoch would exceed max_minutes={config.max_minutes}"
    return None


def data_parallel(model: nn.Module, device: torch.device) -> nn.Module | None:
    """``model`` in DistributedDataParallel under torchrun (gradients averaged across ranks
    in the backward pass, so clipping sees the averaged gradients), else None."""
    if not is_distributed():
        return None
    from torch.nn.parallel import DistributedDataParallel

    ids = [device.index if device.index is not None else torch.cuda.current_device()] \
        if device.type == "cuda" else None
    # an adaptive softmax leaves a tail cluster without gradient in a batch that has no word
    # of it; DDP must then look for unused parameters
    sparse_output = any(isinstance(m, nn.AdaptiveLogSoftmaxWithLoss) for m in model.modules())
    return DistributedDataParallel(model, device_ids=ids, find_unused_parameters=sparse_output)


def train(
    model: nn.Module,
    train_batches: BatchSource,
    valid_batches: Iterable[Batch],
    config: TrainConfig,
    output_dir: str | Path,
    save_best: Callable[[nn.Module, Path], None] | None = None,
    unlabelled: BatchSource | None = None,
) -> list[dict]:
    """Train ``model``; keep the best on validation; checkpoint every epoch; resume if asked.

    Writes ``metrics.jsonl`` (one line per epoch) and ``checkpoint/`` into ``output_dir`` and
    calls ``save_best(model, output_dir)`` whenever the validation metric improves. On return the
    model holds the best weights. Returns the per-epoch records of this call.
    With ``config.ema_decay`` the weight average is what is validated, saved and returned; the
    last weights' validation figures are recorded as ``valid_unaveraged_*``.
    ``unlabelled``: batches of unlabelled reviews for ``config.virtual_adversarial``.
    """
    output_dir = Path(output_dir)
    output_dir.mkdir(parents=True, exist_ok=True)
    device, amp_dtype = _place(model, config)
    optimizer, average, hooks, optimization = _set_up(model, config, device, amp_dtype,
                                                      unlabelled)
    progress = resume(output_dir, model, optimizer, optimization.scaler, config, average)
    if is_distributed():  # the checkpoint's RNG state is rank 0's
        torch.manual_seed(_rank_seed(config) + progress.epoch)
    optimization.schedule = Schedule(config, config.epochs * len(train_batches), progress.step)
    judged = average.module if average is not None else model  # what validation judges
    best_state, started, show = None, time.perf_counter(), config.progress and is_main()
    with flush_denormals(device), contextlib.ExitStack() as cleanup:
        for hook in hooks:
            cleanup.callback(hook.remove)
        for epoch in range(progress.epoch, config.epochs):
            reason = broadcast(should_stop(progress, config, started))  # rank 0's clock
            if reason:
                logger.info("stopping: %s", reason)
                break
            unfreeze_for_epoch(optimizer, epoch, config.unfreeze)
            train_batches.set_epoch(epoch)
            trained = run_epoch(model, train_batches, device, amp_dtype, optimization,
                                data_parallel(model, device),  # after unfreezing: DDP takes
                                f"epoch {epoch + 1}/{config.epochs}", show)  # what trains
            record = {"epoch": epoch + 1, **{f"train_{k}": v for k, v in trained.items()},
                      **validate(judged, model if average is not None else None,
                                 valid_batches, device, amp_dtype, show),
                      "lr": optimizer.param_groups[0]["lr"]}
            if (padding := train_batches.padding_share()) is not None:
                record["train_padding_share"] = padding
            if select_best(progress, record[f"valid_{model.selection_metric[0]}"],
                           model.selection_metric[1], record["valid_loss"]):
                best_state, record["best"] = copy.deepcopy(judged.state_dict()), True
                if save_best is not None and is_main():
                    save_best(judged, output_dir)
            progress.epoch, progress.step = epoch + 1, optimization.schedule.step
            end_epoch(output_dir, record, progress, model, optimization, average)
    unfreeze_for_epoch(optimizer, 0, False)
    _restore_best(model, best_state, progress, save_best is not None, output_dir, device)
    return progress.history


def _set_up(model: nn.Module, config: TrainConfig, device: torch.device,
            amp_dtype: torch.dtype | None, unlabelled: BatchSource | None):
    """``(optimizer, weight average or None, hooks, optimization)`` for :func:`train`."""
    optimizer = build_optimizer(model, config)
    average = weight_average(model, config.ema_decay)  # before the adversary hooks the model
    hooks = adversarial_hooks(model, config, unlabelled) + (
        [WeightAverage(average)] if average is not None else [])
    optimization = Optimization(optimizer, grad_scaler(device, amp_dtype), config.clip,
                                hooks=hooks)
    return optimizer, average, hooks, optimization


def _restore_best(model: nn.Module, best_state: dict | None, progress, saved: bool,
                  output_dir: Path, device: torch.device) -> None:
    """Leave the best weights in ``model``: those of this call, or a resumed run's best, which
    its ``save_best`` wrote to ``model.safetensors``."""
    best_file = output_dir / "model.safetensors"
    if best_state is not None:
        model.load_state_dict(best_state)
    elif progress.best is not None and saved and best_file.exists():
        load_model(model, str(best_file), device=str(device))


def _rank_seed(config: TrainConfig) -> int:
    return config.seed + 1_000_003 * rank()  # each rank its own dropout masks


def _place(model: nn.Module, config: TrainConfig) -> tuple[torch.device, torch.dtype | None]:
    """Seed this rank, move ``model`` to the run's device; the device and autocast dtype."""
    device = resolve_device(config.device)
    torch.manual_seed(_rank_seed(config))
    model.to(device)
    amp_dtype = autocast_dtype(device, config.mixed_precision, training=True)
    if amp_dtype is not None:
        logger.info("mixed precision: %s autocast on %s", dtype_name(amp_dtype), device.type)
    return device, amp_dtype


def validate(judged: nn.Module, unaveraged: nn.Module | None, batches: Iterable[Batch],
             device: torch.device, amp_dtype: torch.dtype | None, progress: bool) -> dict:
    """``valid_*`` metrics of the model validation judges, and ``valid_unaveraged_*`` of the
    last weights when a weight average is what it judges."""
    record = {}
    with torch.inference_mode():
        if unaveraged is not None:
            last = run_epoch(unaveraged, batches, device, amp_dtype,
                             desc="validate (last weights)", progress=progress)
            record.update({f"valid_unaveraged_{k}": v for k, v in last.items()})
        record.update({f"valid_{k}": v for k, v in run_epoch(
            judged, batches, device, amp_dtype, desc="validate", progress=progress).items()})
    return record


def end_epoch(output_dir: Path, record: dict, progress: Progress, model: nn.Module,
              optimization: Optimization, average: AveragedModel | None) -> None:
    """Checkpoint the run and append the epoch's metrics (rank 0 writes; every rank waits, so
    that a resume finds both complete), then log the epoch."""
    if is_main():
        save_training_state(output_dir / "checkpoint", model, optimization.optimizer,
                            progress.to_dict(), optimization.scaler, average)
        with open(output_dir / "metrics.jsonl", "a") as out:
            out.write(json.dumps(record) + "\n")
    barrier()
    progress.history.append(record)
    metric = model.selection_metric[0]
    padding = record.get("train_padding_share")
    logger.info("epoch %d: train loss %.4f, valid loss %.4f, valid %s %.4f, %.0f tokens/s%s",
                record["epoch"], record["train_loss"], record["valid_loss"], metric,
                record[f"valid_{metric}"], record["train_tokens_per_s"],
                f", padding {100 * padding:.1f}%" if padding is not None else "")
