"""Devices and numeric precision, shared by training and inference."""

from __future__ import annotations

import functools
import hashlib
import json
import logging
import os
import platform
import time
from pathlib import Path

import torch

logger = logging.getLogger(__name__)
# where the measured CPU precision is kept (one small JSON per machine and torch version)
CACHE_DIR = Path(os.environ.get("SENTIMENT_CACHE", Path.home() / ".cache" / "sentiment"))
CPU_PRECISIONS = ("auto", "float32", "bfloat16")


def resolve_device(device: str | torch.device = "auto") -> torch.device:
    """``auto``: CUDA when present, else CPU. A CUDA request without CUDA is an error."""
    if str(device) == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    device = torch.device(device)
    if device.type == "cuda" and not torch.cuda.is_available():
        raise ValueError("device 'cuda' requested but CUDA is not available; use --device cpu")
    return device


@functools.cache
def cpu_has_native_bf16() -> bool:
    """Whether this CPU multiplies bfloat16 in hardware (AVX512-BF16 or AMX), as oneDNN needs
    to make bf16 faster than float32; without it bf16 is emulated and slower."""
    try:
        return bool(torch.cpu._is_avx512_bf16_supported() or torch.cpu._is_amx_tile_supported())
    except (AttributeError, RuntimeError):  # private helpers: treat a missing one as "no"
        return False


def cpu_model() -> str:
    """This CPU's model name (``lscpu``'s "Model name"), for records and the precision cache."""
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or platform.machine()


def _lstm_seconds(dtype: torch.dtype | None, training: bool, rounds: int = 3) -> float:
    """Best of ``rounds`` timings of a fixed LSTM workload shaped like the shipped model's layer
    (batch 32, 128 steps, 256 -> 256), forward (and backward when ``training``)."""
    torch.manual_seed(0)
    lstm = torch.nn.LSTM(256, 256, batch_first=True)
    x = torch.randn(32, 128, 256, requires_grad=training)
    best = float("inf")
    for _ in range(rounds + 1):  # the first call warms oneDNN's kernels up
        start = time.perf_counter()
        with torch.set_grad_enabled(training), autocast(torch.device("cpu"), dtype):
            out, _ = lstm(x)
            if training:
                out.float().sum().backward()
        best = min(best, time.perf_counter() - start)
    return best


def measure_cpu_precision(training: bool) -> dict:
    """Time float32 against bfloat16 autocast on this CPU: ``{"dtype", "float32_s",
    "bfloat16_s", ...}``. Takes about a second."""
    threads = torch.get_num_threads()
    float32 = min(_lstm_seconds(None, training), _lstm_seconds(None, training))
    bfloat16 = min(_lstm_seconds(torch.bfloat16, training),
                   _lstm_seconds(torch.bfloat16, training))
    return {"dtype": "bfloat16" if bfloat16 < float32 else "float32", "float32_s": float32,
            "bfloat16_s": bfloat16, "cpu": cpu_model(), "threads": threads,
            "torch": torch.__version__, "work": "training" if training else "inference"}


def _cache_file() -> Path:
    key = f"{cpu_model()}|{torch.__version__}|{torch.get_num_threads()}"
    return CACHE_DIR / f"precision-{hashlib.sha256(key.encode()).hexdigest()[:16]}.json"


@functools.cache
def cpu_bfloat16_faster(training: bool) -> bool:
    """Whether bfloat16 autocast beats float32 on this CPU, for training or inference.

    Only a CPU with native bf16 instructions can win, and even then it may not: on one Intel
    Xeon with AVX512-BF16 it was slower than float32, on AMD Zen 4 faster (BENCHMARKS.md,
    "Training speed and memory"). So it is measured, once per machine, torch version and thread
    count, and cached in ``CACHE_DIR``.
    ``$SENTIMENT_CPU_PRECISION`` (``float32`` or ``bfloat16``) skips the measurement.
    """
    forced = os.environ.get("SENTIMENT_CPU_PRECISION", "auto")
    if forced not in CPU_PRECISIONS:
        raise ValueError(f"SENTIMENT_CPU_PRECISION must be one of {CPU_PRECISIONS}, "
                         f"not {forced!r}")
    if forced != "auto":
        return forced == "bfloat16"
    if not cpu_has_native_bf16():
        return False
    work = "training" if training else "inference"
    path = _cache_file()
    try:
        cached = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError):
        cached = {}
    if work not in cached:
        cached[work] = measure_cpu_precision(training)
        logger.info("measured %s precision on %s: float32 %.3f s, bfloat16 %.3f s -> %s", work,
                    cached[work]["cpu"], cached[work]["float32_s"], cached[work]["bfloat16_s"],
                    cached[work]["dtype"])
        try:
            path.parent.mkdir(parents=True, exist_ok=True)
            tmp = path.with_suffix(f".{os.getpid()}.tmp")
            tmp.write_text(json.dumps(cached, indent=2), encoding="utf-8")
            tmp.replace(path)
        except OSError as error:  # a read-only home: measure again next time
            logger.warning("could not cache the precision measurement in %s: %s", path, error)
    return cached[work]["dtype"] == "bfloat16"


def autocast_dtype(device: torch.device, mixed_precision: bool = True,
                   training: bool = False) -> torch.dtype | None:
    """The lower precision that autocast uses on ``device``, or None for plain float32.

    float16 on CUDA (with loss scaling); on a CPU, bfloat16 where it measured faster than
    float32 for this work (:func:`cpu_bfloat16_faster`), with float32 weights, optimizer and
    loss; float32 elsewhere.
    """
    if not mixed_precision:
        return None
    if device.type == "cuda":
        return torch.float16
    if device.type == "cpu" and cpu_bfloat16_faster(training):
        return torch.bfloat16
    return None


def dtype_name(dtype: torch.dtype | None) -> str:
    """``"bfloat16"`` for ``torch.bfloat16``; None (no autocast) is ``"float32"``."""
    return str(dtype or torch.float32).removeprefix("torch.")


def autocast(device: torch.device, dtype: torch.dtype | None):
    """``torch.autocast`` to ``dtype`` on ``device``; a no-op context for None."""
    return torch.autocast(device_type=device.type, dtype=dtype or torch.float32,
                          enabled=dtype is not None)
