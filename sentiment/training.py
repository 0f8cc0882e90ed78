"""The one training loop, shared by the sentiment classifier and the character language model."""

from __future__ import annotations

import copy
import functools
import json
import logging
import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass, fields
from pathlib import Path

import torch
from safetensors.torch import load_model
from torch import nn
from tqdm.auto import tqdm

from .batching import Batch
from .checkpoint import load_training_state, save_training_state
from .core import detach_state

logger = logging.getLogger(__name__)


@dataclass
class TrainConfig:
    """Settings of :func:`train`."""

    epochs: int = 10
    optimizer: str = "adam"
    lr: float = 1e-3
    weight_decay: float = 0.0
    clip: float = 1.0
    patience: int | None = 3
    device: str = "auto"
    mixed_precision: bool = True  # see autocast_dtype
    seed: int = 0
    resume: bool = True
    progress: bool = True
    max_minutes: float | None = None

    def __post_init__(self) -> None:
        if self.optimizer not in ("adam", "sgd"):
            raise ValueError(f"optimizer must be 'adam' or 'sgd', got {self.optimizer!r}")
        if self.epochs < 1:
            raise ValueError(f"epochs must be >= 1, got {self.epochs}")
        if self.lr <= 0 or self.clip <= 0:
            raise ValueError("lr and clip must be positive")


def config_from_preset(config_class, presets: dict, preset: str, overrides: dict,
                       train_defaults: dict | None = None):
    """``config_class`` from ``presets[preset]`` plus ``overrides``, whose names may belong to it
    or to its nested :class:`TrainConfig` (``train``); an unknown name raises a ValueError."""
    if preset not in presets:
        raise ValueError(f"unknown preset {preset!r}; choose from {sorted(presets)}")
    values = {**presets[preset]}
    train_values = {**(train_defaults or {}), **values.pop("train", {})}
    train_names = {f.name for f in fields(TrainConfig)}
    own_names = {f.name for f in fields(config_class)} - {"train"}
    for name, value in overrides.items():
        if name in train_names:
            train_values[name] = value
        elif name in own_names:
            values[name] = value
        else:
            raise ValueError(f"unknown option {name!r}")
    return config_class(**values, train=TrainConfig(**train_values))


def resolve_device(device: str | torch.device = "auto") -> torch.device:
    """``auto``: CUDA when present, else CPU. A CUDA request without CUDA is an error."""
    if str(device) == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    device = torch.device(device)
    if device.type == "cuda" and not torch.cuda.is_available():
        raise ValueError("device 'cuda' requested but CUDA is not available; use --device cpu")
    return device


def build_optimizer(model: nn.Module, config: TrainConfig) -> torch.optim.Optimizer:
    params = [p for p in model.parameters() if p.requires_grad]
    if config.optimizer == "sgd":
        return torch.optim.SGD(params, lr=config.lr, weight_decay=config.weight_decay)
    return torch.optim.Adam(params, lr=config.lr, weight_decay=config.weight_decay)


@functools.cache
def cpu_has_native_bf16() -> bool:
    """Whether this CPU multiplies bfloat16 in hardware (AVX512-BF16 or AMX), as oneDNN needs
    to make bf16 faster than float32; without it bf16 is emulated and slower."""
    try:
        return bool(torch.cpu._is_avx512_bf16_supported() or torch.cpu._is_amx_tile_supported())
    except (AttributeError, RuntimeError):  # private helpers: treat a missing one as "no"
        return False


def autocast_dtype(device: torch.device, mixed_precision: bool = True) -> torch.dtype | None:
    """The lower precision that autocast uses on ``device``, or None for plain float32.

    float16 on CUDA (with loss scaling); bfloat16 on CPUs with native bf16 instructions, where
    oneDNN's LSTM ran 1.7x faster for training and 3x for inference than float32 (BENCHMARKS.md)
    with float32 weights, optimizer and loss; float32 on other CPUs.
    """
    if not mixed_precision:
        return None
    if device.type == "cuda":
        return torch.float16
    if device.type == "cpu" and cpu_has_native_bf16():
        return torch.bfloat16
    return None


def grad_scaler(device: torch.device, dtype: torch.dtype | None) -> torch.amp.GradScaler:
    """The loss scaler for autocast to ``dtype``: active for float16 only (bfloat16 has float32's
    range and needs none); a disabled scaler passes losses and steps through unchanged."""
    return torch.amp.GradScaler(device.type, enabled=dtype == torch.float16)


def dtype_name(dtype: torch.dtype | None) -> str:
    """``"bfloat16"`` for ``torch.bfloat16``; None (no autocast) is ``"float32"``."""
    return str(dtype or torch.float32).removeprefix("torch.")


def autocast(device: torch.device, dtype: torch.dtype | None):
    """``torch.autocast`` to ``dtype`` on ``device``; a no-op context for None."""
    return torch.autocast(device_type=device.type, dtype=dtype or torch.float32,
                          enabled=dtype is not None)


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
) -> dict:
    """One pass; trains when ``optimizer`` is given, else evaluates. Returns summed metrics.

    ``amp_dtype``: autocast the forward pass to this dtype (see :func:`autocast_dtype`).

    Hidden state is carried (detached: truncated BPTT) from a batch to the next one only when
    the next batch says it ``continues``; otherwise every batch starts from a zero state.
    """
    training = optimizer is not None
    if training and scaler is None:
        scaler = grad_scaler(device, amp_dtype)
    model.train(training)
    sums: dict = {}
    tokens, start, state = 0, time.perf_counter(), None
    total = len(batches) if hasattr(batches, "__len__") else None
    bar = tqdm(batches, total=total, desc=desc, disable=not progress, leave=False, unit="batch")
    with torch.set_grad_enabled(training):
        for batch in bar:
            batch = batch.to(device)
            state = detach_state(state) if batch.continues else None
            with autocast(device, amp_dtype):
                output = model(batch, state)
            if training:
                optimizer.zero_grad(set_to_none=True)
                scaler.scale(output.loss).backward()
                scaler.unscale_(optimizer)
                nn.utils.clip_grad_norm_(model.parameters(), clip)
                scaler.step(optimizer)
                scaler.update()
            state = output.state
            for key, value in model.batch_metrics(output, batch).items():
                sums[key] = sums.get(key, 0) + value
            tokens += batch.num_tokens
            elapsed = time.perf_counter() - start
            bar.set_postfix(loss=f"{sums['loss_sum'] / sums['count']:.3f}",
                            tok_s=f"{tokens / max(elapsed, 1e-9):.0f}")
    elapsed = time.perf_counter() - start
    return {**model.summarize(sums), "tokens": tokens, "seconds": elapsed,
            "tokens_per_s": tokens / max(elapsed, 1e-9)}


def _improved(value: float, best: float | None, direction: str) -> bool:
    if best is None:
        return True
    return value > best if direction == "max" else value < best


def _out_of_time(max_minutes: float | None, started: float, history: list[dict]) -> bool:
    """Whether one more epoch, as long as the last one, would pass the wall-clock budget."""
    if max_minutes is None or not history:
        return False
    last = history[-1]["train_seconds"] + history[-1]["valid_seconds"]
    return time.perf_counter() - started + last > 60 * max_minutes


def _trim_metrics(path: Path, last_epoch: int) -> None:
    """Drop metric lines of epochs after the last checkpoint (an interrupted run's leftovers)."""
    if not path.exists():
        return
    lines = [line for line in path.read_text().splitlines() if line.strip()]
    kept = [line for line in lines if json.loads(line).get("epoch", 0) <= last_epoch]
    path.write_text("".join(line + "\n" for line in kept))


def train(
    model: nn.Module,
    train_batches: Iterable[Batch],
    valid_batches: Iterable[Batch],
    config: TrainConfig,
    output_dir: str | Path,
    save_best: Callable[[nn.Module, Path], None] | None = None,
) -> list[dict]:
    """Train ``model``; keep the best on validation; checkpoint every epoch; resume if asked.

    Writes ``metrics.jsonl`` (one line per epoch) and ``checkpoint/`` into ``output_dir`` and
    calls ``save_best(model, output_dir)`` whenever the validation metric improves. On return the
    model holds the best weights. Returns the per-epoch records.
    """
    output_dir = Path(output_dir)
    output_dir.mkdir(parents=True, exist_ok=True)
    device = resolve_device(config.device)
    if device.type == "cpu":
        torch.set_flush_denormal(True)  # decaying gradients otherwise slow the backward pass 10x
    torch.manual_seed(config.seed)
    model.to(device)
    amp_dtype = autocast_dtype(device, config.mixed_precision)
    if amp_dtype is not None:
        logger.info("mixed precision: %s autocast on %s", dtype_name(amp_dtype), device.type)
    optimizer = build_optimizer(model, config)
    scaler = grad_scaler(device, amp_dtype)
    metric, direction = model.selection_metric
    metrics_path = output_dir / "metrics.jsonl"
    progress = {"epoch": 0, "best": None, "bad_epochs": 0}
    if config.resume:
        restored = load_training_state(output_dir / "checkpoint", model, optimizer, scaler)
        if restored is not None:
            progress = restored
            logger.info("resuming after epoch %d (best %s %s)", progress["epoch"], metric,
                        progress["best"])
    elif metrics_path.exists():
        metrics_path.unlink()
    _trim_metrics(metrics_path, progress["epoch"])
    best_state = None  # after a resume the best weights are the saved model's, not the last
    history = []
    started = time.perf_counter()
    for epoch in range(progress["epoch"], config.epochs):
        if progress["bad_epochs"] >= (config.patience or float("inf")):
            break
        if _out_of_time(config.max_minutes, started, history):
            logger.info("stopping: another epoch would exceed max_minutes=%s", config.max_minutes)
            break
        if hasattr(train_batches, "set_epoch"):
            train_batches.set_epoch(epoch)
        padding = train_batches.padding_share() if hasattr(train_batches, "padding_share") else None
        trained = run_epoch(model, train_batches, device, optimizer, scaler, config.clip, amp_dtype,
                            desc=f"epoch {epoch + 1}/{config.epochs}", progress=config.progress)
        with torch.inference_mode():
            validated = run_epoch(model, valid_batches, device, amp_dtype=amp_dtype,
                                  desc="validate", progress=config.progress)
        record = {"epoch": epoch + 1, **{f"train_{k}": v for k, v in trained.items()},
                  **{f"valid_{k}": v for k, v in validated.items()}}
        if padding is not None:
            record["train_padding_share"] = padding
        if _improved(validated[metric], progress["best"], direction):
            progress.update(best=validated[metric], bad_epochs=0)
            best_state = copy.deepcopy(model.state_dict())
            if save_best is not None:
                save_best(model, output_dir)
            record["best"] = True
        else:
            progress["bad_epochs"] += 1
        progress["epoch"] = epoch + 1
        save_training_state(output_dir / "checkpoint", model, optimizer, progress, scaler)
        with open(metrics_path, "a") as out:
            out.write(json.dumps(record) + "\n")
        history.append(record)
        logger.info(
            "epoch %d: train loss %.4f, valid loss %.4f, valid %s %.4f, %.0f tokens/s%s",
            epoch + 1, trained["loss"], validated["loss"], metric, validated[metric],
            trained["tokens_per_s"],
            f", padding {100 * padding:.1f}%" if padding is not None else "",
        )
    best_file = output_dir / "model.safetensors"
    if best_state is not None:
        model.load_state_dict(best_state)
    elif progress["best"] is not None and save_best is not None and best_file.exists():
        load_model(model, str(best_file), device=str(device))
    return history
