"""Devices and numeric precision, shared by training and inference."""

from __future__ import annotations

import functools

import torch


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


def dtype_name(dtype: torch.dtype | None) -> str:
    """``"bfloat16"`` for ``torch.bfloat16``; None (no autocast) is ``"float32"``."""
    return str(dtype or torch.float32).removeprefix("torch.")


def autocast(device: torch.device, dtype: torch.dtype | None):
    """``torch.autocast`` to ``dtype`` on ``device``; a no-op context for None."""
    return torch.autocast(device_type=device.type, dtype=dtype or torch.float32,
                          enabled=dtype is not None)
