"""Memory the process holds: handing glibc's free heap back to the kernel between phases."""

from __future__ import annotations

import os


def trim_heap() -> None:
    """Hand the memory glibc's allocator holds free back to the kernel (``malloc_trim``).

    Training on batches of many shapes leaves glibc's heap fragmented, and the report's
    baselines then grew the peak on top of it (BENCHMARKS.md, "Training speed and memory").
    Called between the phases of a long command; a
    no-op elsewhere than glibc, and under tcmalloc (which keeps its own pages on purpose)."""
    if "tcmalloc" in os.environ.get("LD_PRELOAD", ""):
        return
    try:
        import ctypes

        ctypes.CDLL("libc.so.6").malloc_trim(0)
    except (OSError, AttributeError):  # not glibc
        pass


ONEDNN_CACHE = "256"


def cap_kernel_cache() -> None:
    """Cap oneDNN's cache of compiled kernels at :data:`ONEDNN_CACHE` input shapes, unless the
    user set it: oneDNN keeps a primitive for every shape it meets (up to 1,024), and
    length-bucketed batches and a server's requests bring new shapes all the time, so memory
    grew through a whole epoch (BENCHMARKS.md, "Training memory"). A whole-process setting,
    read when oneDNN first runs: the entry points call this before anything scores or trains
    (importing the package sets nothing)."""
    os.environ.setdefault("ONEDNN_PRIMITIVE_CACHE_CAPACITY", ONEDNN_CACHE)
