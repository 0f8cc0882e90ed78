"""Several processes with torchrun: process group from the environment, ranks, reductions.

    torchrun --nproc_per_node 2 scripts/train_sentiment.py --preset tiny
    torchrun --nnodes 2 --nproc_per_node 8 --rdzv-backend c10d --rdzv-endpoint HOST:29400 \\
        scripts/pretrain_lm.py ...

Not launched that way (no ``WORLD_SIZE`` in the environment, or 1), nothing here does anything:
rank 0 of a world of 1. Launched by torchrun, :func:`init_from_env` joins the process group (NCCL
on CUDA, Gloo on CPU) and pins each process to its local GPU. The training loop then shards every
epoch's batches across ranks (:func:`shard_indices`), averages gradients with
``DistributedDataParallel``, sums the metrics of all ranks (:func:`all_reduce_sums`), and leaves
all writing (model folders, metrics, checkpoints, reports) to rank 0 (:func:`is_main`).
"""

from __future__ import annotations

import contextlib
import logging
import os
from collections.abc import Iterator

import torch
import torch.distributed as dist

logger = logging.getLogger(__name__)


def is_distributed() -> bool:
    return dist.is_available() and dist.is_initialized() and dist.get_world_size() > 1


def rank() -> int:
    return dist.get_rank() if is_distributed() else 0


def world_size() -> int:
    return dist.get_world_size() if is_distributed() else 1


def is_main() -> bool:
    """Whether this process writes files (rank 0, or the only process)."""
    return rank() == 0


def local_rank() -> int:
    return int(os.environ.get("LOCAL_RANK", "0"))


def init_from_env(device: str = "auto") -> bool:
    """Join torchrun's process group when the environment says so; True when distributed.

    The backend is NCCL when CUDA is there (and ``device`` is not ``cpu``), else Gloo; each
    process then uses GPU ``LOCAL_RANK``."""
    if int(os.environ.get("WORLD_SIZE", "1")) <= 1 or is_distributed():
        return is_distributed()
    cuda = torch.cuda.is_available() and device != "cpu"
    if cuda:
        torch.cuda.set_device(local_rank())
    dist.init_process_group(backend="nccl" if cuda else "gloo")
    logger.info("process %d of %d (%s)", rank(), world_size(), dist.get_backend())
    return True


def cleanup() -> None:
    if dist.is_available() and dist.is_initialized():
        dist.destroy_process_group()


def barrier() -> None:
    if is_distributed():
        dist.barrier()


@contextlib.contextmanager
def main_process_first() -> Iterator[None]:
    """Rank 0 runs the block first (filling caches), the others after it."""
    if not is_main():
        barrier()
    yield
    if is_main():
        barrier()


def shard_indices(count: int, equal: bool = True) -> range:
    """This rank's share of ``count`` items: every ``world_size``-th from ``rank``. ``equal``:
    the same number on every rank (up to ``world_size - 1`` trailing items are left out of the
    epoch), as training needs: every rank must take the same number of optimizer steps.
    Evaluation keeps them all (``equal=False``)."""
    world = world_size()
    usable = count - count % world if world > 1 and equal else count
    return range(rank(), usable, world)


def all_reduce_sums(sums: dict) -> dict:
    """Every value summed over all ranks (a key missing on a rank counts as 0; integers stay
    integers). Metrics are a handful of numbers, so they travel as Python objects."""
    if not is_distributed():
        return sums
    gathered: list = [None] * world_size()
    dist.all_gather_object(gathered, sums)
    total: dict = {}
    for part in gathered:
        for key, value in part.items():
            total[key] = total.get(key, 0) + value
    return total


def all_reduce_max(value: float) -> float:
    if not is_distributed():
        return value
    device = torch.device("cuda", local_rank()) if dist.get_backend() == "nccl" else "cpu"
    tensor = torch.tensor([value], dtype=torch.float64, device=device)
    dist.all_reduce(tensor, op=dist.ReduceOp.MAX)
    return float(tensor.item())


def broadcast(value):
    """Rank 0's ``value`` on every rank (any picklable object)."""
    if not is_distributed():
        return value
    box = [value]
    dist.broadcast_object_list(box, src=0)
    return box[0]
