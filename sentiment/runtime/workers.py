"""Threads that score side by side: the server's batch workers and file scoring's chunk
workers share one pool and one rule for torch's threads."""

from __future__ import annotations

from concurrent.futures import ThreadPoolExecutor

try:
    import torch
except ImportError:  # an install without torch: ONNX Runtime keeps its own threads
    torch = None


def default_workers(device) -> int:
    """How many batches to score at once on ``device``, each on its share of torch's threads:
    two one-thread workers on a CPU (one tokenizes while the other is in the model, which serves
    more requests than one two-thread worker: BENCHMARKS.md, "Inference: predict, files,
    serving"), one on a GPU."""
    threads = torch.get_num_threads() if torch is not None else 1
    return 2 if str(device) == "cpu" and threads >= 2 else 1


def worker_pool(workers: int, name: str, threads: int | None = None) -> ThreadPoolExecutor:
    """``workers`` threads for scoring side by side; with more than one, each runs torch on
    ``threads`` threads (default: an equal share of torch's; the count is per thread)."""
    if workers < 1:
        raise ValueError(f"workers must be >= 1, got {workers}")
    if torch is None:
        return ThreadPoolExecutor(workers, thread_name_prefix=name)
    if workers > 1 and threads is None:
        threads = max(1, torch.get_num_threads() // workers)
    return ThreadPoolExecutor(workers, thread_name_prefix=name,
                              initializer=torch.set_num_threads if threads else None,
                              initargs=(threads,) if threads else ())
