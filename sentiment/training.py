"""The one training loop, shared by the sentiment classifier and the language models.

:func:`train` reads as its steps: set up (device, precision, optimizer), :func:`resume`, then per
epoch :func:`run_epoch` on training and validation batches, :func:`select_best`, checkpoint, and
:func:`should_stop`; at the end the best weights are restored. The model follows
:class:`~sentiment.heads.TaskModel`; the training batches follow
:class:`~sentiment.batching.BatchSource`.
"""

from __future__ import annotations

import contextlib
import copy
import json
import logging
import math
import time
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass, field
from pathlib import Path

import torch
import torch.nn.functional as F
from safetensors.torch import load_model
from torch import nn
from torch.optim.swa_utils import AveragedModel, get_ema_multi_avg_fn
from tqdm.auto import tqdm

from .batching import Batch, BatchSource
from .checkpoint import load_training_state, save_training_state
from .config import TrainConfig
from .core import detach_state
from .distributed import (
    all_reduce_max,
    all_reduce_sums,
    barrier,
    broadcast,
    is_distributed,
    is_main,
    rank,
)
from .precision import (  # noqa: F401  (re-exported: the loop's public helpers)
    autocast,
    autocast_dtype,
    cpu_has_native_bf16,
    dtype_name,
    resolve_device,
)

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

    Decaying gradients otherwise slowed the backward pass 10x (BENCHMARKS.md). torch has no
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


class AdversarialEmbedding:
    """Adversarial training on the word embeddings (Miyato et al., 2017, without their embedding
    normalisation): after the clean loss's backward pass, :meth:`perturb` sets each text's push
    ``r = epsilon * ||e|| * g / ||g||`` (``e`` its embeddings, ``g`` the loss's gradient on them,
    norms over the whole text), and the next forward pass adds ``r`` to the embeddings. Scaled
    by ``||e||``, the push cannot be outgrown by growing the embeddings. A forward hook on the
    embedding; :meth:`remove` takes it off."""

    def __init__(self, embedding: nn.Module | None, epsilon: float):
        if embedding is None:
            raise ValueError("adversarial training needs a model with a word embedding "
                             "(input_type='embedding')")
        self.epsilon = epsilon
        self.captured: torch.Tensor | None = None
        self.push: torch.Tensor | None = None
        self.handle = embedding.register_forward_hook(self._hook)

    def _hook(self, module: nn.Module, inputs, output: torch.Tensor) -> torch.Tensor | None:
        if self.push is not None:
            return output + self.push
        if not torch.is_grad_enabled():
            return None
        if not output.requires_grad:  # frozen embeddings: the gradient is still wanted
            output = output.detach().requires_grad_()
        output.retain_grad()
        self.captured = output
        return output

    def perturb(self, gradient: torch.Tensor | None = None, epsilon: float | None = None
                ) -> bool:
        """Set the push from the last training forward pass's gradient (its embeddings' ``.grad``
        unless ``gradient`` is given); False if it had none. ``epsilon``: this push's size
        instead of the adversary's own."""
        embedded, self.captured = self.captured, None
        if embedded is None:
            return False
        if gradient is None:
            gradient = embedded.grad
        if gradient is None:
            return False
        gradient = torch.nan_to_num(gradient.float())  # (B, T, E)
        direction = gradient / gradient.norm(dim=(1, 2), keepdim=True).clamp_min(1e-12)
        epsilon = self.epsilon if epsilon is None else epsilon
        size = epsilon * embedded.detach().float().norm(dim=(1, 2), keepdim=True)  # (B,1,1)
        self.push = (size * direction).to(embedded.dtype)
        return True

    def clear(self) -> None:
        self.push = None

    def remove(self) -> None:
        self.handle.remove()
        self.captured = self.push = None


class VirtualAdversary:
    """Virtual adversarial training (Miyato et al., 2017) on unlabelled reviews.

    Each training step also takes a batch of unlabelled reviews: the model's own class
    probabilities ``p`` on them (held fixed), each review's embeddings pushed by ``epsilon`` times
    their norm in the direction that most changes ``p``, and the KL divergence from ``p`` to the
    pushed prediction added to the loss, so the model learns to be smooth around text it has no
    labels for. The direction is the gradient of the loss against the model's own predicted
    class: for two classes that is, up to sign, the gradient of the logit, which is what
    Miyato's one power iteration approximates (the KL is even in the push to second order), so
    it needs no finite-difference probe (which bfloat16 would round away). Costs one forward and
    backward pass of the unlabelled batch to find the push and one to learn from it.
    """

    def __init__(self, adversary: AdversarialEmbedding, epsilon: float, batches: BatchSource,
                 weight: float = 1.0):
        if len(batches) == 0:
            raise ValueError("virtual adversarial training needs unlabelled reviews; got none")
        self.adversary = adversary
        self.epsilon = epsilon
        self.weight = weight
        self.batches = batches
        self.passes = 0
        self._iterator: Iterator[Batch] | None = None

    def next_batch(self) -> Batch:
        """The next unlabelled batch; reshuffled each time the reviews are used up."""
        while True:
            if self._iterator is None:
                self.batches.set_epoch(self.passes)
                self._iterator = iter(self.batches)
            batch = next(self._iterator, None)
            if batch is not None:
                return batch
            self._iterator, self.passes = None, self.passes + 1

    def loss(self, model: nn.Module, forward: nn.Module | None, device: torch.device,
             amp_dtype: torch.dtype | None) -> torch.Tensor | None:
        """The weighted KL divergence of the pushed prediction from the clean one on the next
        unlabelled batch (None when that batch gave no gradient to push along)."""
        batch = self.next_batch().to(device)
        batch = Batch(batch.inputs, batch.lengths, None, batch.num_tokens)  # labels never used
        with autocast(device, amp_dtype):
            clean = model(batch)  # the bare module: only the embeddings' gradient is taken
        embedded = self.adversary.captured
        logits = clean.logits.float()
        if logits.ndim == 1:
            target = torch.sigmoid(logits).detach()
            own = F.binary_cross_entropy_with_logits(logits, (logits > 0).float())
        else:
            target = torch.softmax(logits, dim=-1).detach()
            own = F.cross_entropy(logits, logits.argmax(-1))
        if embedded is None or not embedded.requires_grad:
            self.adversary.captured = None
            return None
        (gradient,) = torch.autograd.grad(own, embedded)
        if not self.adversary.perturb(gradient, self.epsilon):
            return None
        try:
            with autocast(device, amp_dtype):
                pushed = (forward or model)(batch).logits.float()
        finally:
            self.adversary.clear()
        if pushed.ndim == 1:  # KL(p || q) for Bernoulli p, q
            log_q1, log_q0 = F.logsigmoid(pushed), F.logsigmoid(-pushed)
            log_p1, log_p0 = (torch.log(target.clamp_min(1e-12)),
                              torch.log((1 - target).clamp_min(1e-12)))
            kl = target * (log_p1 - log_q1) + (1 - target) * (log_p0 - log_q0)
            return self.weight * kl.mean()
        return self.weight * F.kl_div(F.log_softmax(pushed, dim=-1), target,
                                      reduction="batchmean")


@dataclass
class Schedule:
    """Where the rates are: the optimizer step and the total the schedule spans."""

    config: TrainConfig
    total_steps: int
    step: int = 0

    def advance(self, optimizer: torch.optim.Optimizer) -> None:
        set_lr(optimizer, lr_factor(self.config, self.step, self.total_steps))
        self.step += 1


def run_epoch(
    model: nn.Module,
    batches: Iterable[Batch],
    device: torch.device,
    optimizer: torch.optim.Optimizer | None = None,
    scaler: torch.amp.GradScaler | None = None,
    clip: float = 1.0,
    amp_dtype: torch.dtype | None = None,
    desc: str = "",
    progress: bool = True,
    schedule: Schedule | None = None,
    forward: nn.Module | None = None,
    adversary: AdversarialEmbedding | None = None,
    virtual: VirtualAdversary | None = None,
    average: AveragedModel | None = None,
) -> dict:
    """One pass; trains when ``optimizer`` is given, else evaluates. Returns summed metrics.

    ``amp_dtype``: autocast the forward pass to this dtype (see :func:`autocast_dtype`).
    ``schedule``: sets the learning rates before every optimizer step.
    ``forward``: the module to call (``model`` wrapped in DistributedDataParallel under
    torchrun); the metrics are then summed over all ranks, and tokens/s is the total.
    ``adversary``: every training batch also runs pushed along its loss's gradient, that loss
    added (a second forward and backward pass; the metrics are the clean pass's).
    ``virtual``: every training step also learns from a batch of unlabelled reviews
    (:class:`VirtualAdversary`); its mean loss is reported as ``virtual_loss``.
    ``average``: updated from ``model`` after every optimizer step (:func:`weight_average`).

    Hidden state is carried (detached: truncated BPTT) from a batch to the next one only when
    the next batch says it ``continues``; otherwise every batch starts from a zero state.
    """
    training = optimizer is not None
    if training and scaler is None:
        scaler = grad_scaler(device, amp_dtype)
    model.train(training)
    sums: dict = {}
    tokens, start, state = 0, time.perf_counter(), None
    virtual_sum, virtual_count = 0.0, 0
    total = len(batches) if hasattr(batches, "__len__") else None
    bar = tqdm(batches, total=total, desc=desc, disable=not progress, leave=False, unit="batch")
    with torch.set_grad_enabled(training):
        for batch in bar:
            batch = batch.to(device)
            state = detach_state(state) if batch.continues else None
            with autocast(device, amp_dtype):
                output = (forward or model)(batch, state)
            if training:
                if schedule is not None:
                    schedule.advance(optimizer)
                optimizer.zero_grad(set_to_none=True)
                scaler.scale(output.loss).backward()
                if adversary is not None and adversary.perturb():
                    with autocast(device, amp_dtype):
                        pushed = (forward or model)(batch, state)
                    adversary.clear()
                    scaler.scale(pushed.loss).backward()
                if virtual is not None:
                    smooth = virtual.loss(model, forward, device, amp_dtype)
                    if smooth is not None:
                        scaler.scale(smooth).backward()
                        virtual_sum += float(smooth.detach())
                        virtual_count += 1
                scaler.unscale_(optimizer)
                nn.utils.clip_grad_norm_(model.parameters(), clip)
                scaler.step(optimizer)
                scaler.update()
                if average is not None:
                    average.update_parameters(model)
            state = output.state
            for key, value in model.batch_metrics(output, batch).items():
                sums[key] = sums.get(key, 0) + value
            tokens += batch.num_tokens
            elapsed = time.perf_counter() - start
            bar.set_postfix(loss=f"{sums['loss_sum'] / sums['count']:.3f}",
                            tok_s=f"{tokens / max(elapsed, 1e-9):.0f}")
    elapsed = all_reduce_max(time.perf_counter() - start)
    sums = all_reduce_sums({**sums, "tokens": tokens, "virtual_sum": virtual_sum,
                            "virtual_count": virtual_count})
    tokens, virtual_sum, virtual_count = (sums.pop(k) for k in ("tokens", "virtual_sum",
                                                                "virtual_count"))
    extra = {"virtual_loss": virtual_sum / virtual_count} if virtual_count else {}
    return {**model.summarize(sums), "tokens": tokens, "seconds": elapsed,
            "tokens_per_s": tokens / max(elapsed, 1e-9), **extra}


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
    device = resolve_device(config.device)
    rank_seed = config.seed + 1_000_003 * rank()  # each rank its own dropout masks
    torch.manual_seed(rank_seed)
    model.to(device)
    amp_dtype = autocast_dtype(device, config.mixed_precision)
    if amp_dtype is not None:
        logger.info("mixed precision: %s autocast on %s", dtype_name(amp_dtype), device.type)
    optimizer = build_optimizer(model, config)
    scaler = grad_scaler(device, amp_dtype)
    metric, direction = model.selection_metric
    average = weight_average(model, config.ema_decay)  # before the adversary hooks the model
    judged = average.module if average is not None else model  # what validation judges
    progress = resume(output_dir, model, optimizer, scaler, config, average)
    if is_distributed():  # the checkpoint's RNG state is rank 0's
        torch.manual_seed(rank_seed + progress.epoch)
    schedule = Schedule(config, config.epochs * len(train_batches), progress.step)
    best_state = None  # after a resume the best weights are the saved model's, not the last
    started = time.perf_counter()
    if config.virtual_adversarial > 0 and getattr(model, "task", None) != "sentiment":
        raise ValueError("virtual_adversarial trains classifiers (it keeps a class prediction "
                         "steady); a language model learns from unlabelled text directly")
    if config.virtual_adversarial > 0 and unlabelled is None:
        raise ValueError("virtual_adversarial needs unlabelled reviews to train on")
    adversary = (AdversarialEmbedding(model.core.embedding, config.adversarial)
                 if config.adversarial > 0 or config.virtual_adversarial > 0 else None)
    virtual = (VirtualAdversary(adversary, config.virtual_adversarial, unlabelled)
               if config.virtual_adversarial > 0 else None)
    labelled_adversary = adversary if config.adversarial > 0 else None
    with flush_denormals(device), contextlib.ExitStack() as cleanup:
        if adversary is not None:
            cleanup.callback(adversary.remove)
        for epoch in range(progress.epoch, config.epochs):
            reason = broadcast(should_stop(progress, config, started))  # rank 0's clock
            if reason:
                logger.info("stopping: %s", reason)
                break
            unfreeze_for_epoch(optimizer, epoch, config.unfreeze)
            forward = data_parallel(model, device)  # after unfreezing: DDP takes what trains
            train_batches.set_epoch(epoch)
            padding = train_batches.padding_share()
            show = config.progress and is_main()
            trained = run_epoch(model, train_batches, device, optimizer, scaler, config.clip,
                                amp_dtype, f"epoch {epoch + 1}/{config.epochs}", show,
                                schedule, forward, labelled_adversary, virtual, average)
            record = {"epoch": epoch + 1, **{f"train_{k}": v for k, v in trained.items()}}
            with torch.inference_mode():
                if average is not None:
                    unaveraged = run_epoch(model, valid_batches, device, amp_dtype=amp_dtype,
                                           desc="validate (last weights)", progress=show)
                    record.update({f"valid_unaveraged_{k}": v for k, v in unaveraged.items()})
                validated = run_epoch(judged, valid_batches, device, amp_dtype=amp_dtype,
                                      desc="validate", progress=show)
            record.update({f"valid_{k}": v for k, v in validated.items()})
            record["lr"] = optimizer.param_groups[0]["lr"]
            if padding is not None:
                record["train_padding_share"] = padding
            if select_best(progress, validated[metric], direction, validated["loss"]):
                best_state = copy.deepcopy(judged.state_dict())
                if save_best is not None and is_main():
                    save_best(judged, output_dir)
                record["best"] = True
            progress.epoch, progress.step = epoch + 1, schedule.step
            if is_main():  # one writer; the others wait so that a resume finds it complete
                save_training_state(output_dir / "checkpoint", model, optimizer,
                                    progress.to_dict(), scaler, average)
                with open(output_dir / "metrics.jsonl", "a") as out:
                    out.write(json.dumps(record) + "\n")
            barrier()
            progress.history.append(record)
            logger.info(
                "epoch %d: train loss %.4f, valid loss %.4f, valid %s %.4f, %.0f tokens/s%s",
                epoch + 1, trained["loss"], validated["loss"], metric, validated[metric],
                trained["tokens_per_s"],
                f", padding {100 * padding:.1f}%" if padding is not None else "",
            )
    unfreeze_for_epoch(optimizer, 0, False)
    best_file = output_dir / "model.safetensors"
    if best_state is not None:
        model.load_state_dict(best_state)
    elif progress.best is not None and save_best is not None and best_file.exists():
        load_model(model, str(best_file), device=str(device))
    return progress.history
