"""Data-parallel training with torchrun (DDP): NCCL on GPUs, gloo on CPUs, one or several nodes.

torchrun sets RANK, LOCAL_RANK and WORLD_SIZE (and MASTER_ADDR / MASTER_PORT or a rendezvous);
every process joins one group, trains on its own shard of each epoch, and only rank 0 writes
checkpoints, reports and logs.
"""

import atexit
import os
from dataclasses import dataclass, field

import torch
import torch.distributed as dist
from torch import nn

from filmqnn.train.device import resolve_device


@dataclass(frozen=True)
class DistInfo:
    """This process's place in the run: rank, world size, its device; rank 0 writes files."""

    rank: int = 0
    world: int = 1
    local_rank: int = 0
    device: torch.device = field(default_factory=lambda: torch.device("cpu"))

    @property
    def is_main(self) -> bool:
        return self.rank == 0

    @property
    def enabled(self) -> bool:
        return self.world > 1


def world_size_from_env() -> int:
    """The number of processes torchrun started (1 for a plain run)."""
    return int(os.environ.get("WORLD_SIZE", "1"))


def is_main_process() -> bool:
    """Whether this process is rank 0 (torchrun's RANK; a plain run is)."""
    return int(os.environ.get("RANK", "0")) == 0


def init_distributed(device: str = "auto") -> DistInfo:
    """Pick this process's device and join torchrun's process group (NCCL on CUDA, else gloo).

    A plain run (no WORLD_SIZE, or 1) is rank 0 of 1 and starts no process group.
    """
    world = world_size_from_env()
    local_rank = int(os.environ.get("LOCAL_RANK", "0"))
    dev = resolve_device(device, local_rank if world > 1 else None)
    if world <= 1:
        return DistInfo(device=dev)
    fresh = not dist.is_initialized()
    if fresh:
        backend = "nccl" if dev.type == "cuda" else "gloo"
        dist.init_process_group(backend=backend, device_id=dev if dev.type == "cuda" else None)
    info = DistInfo(dist.get_rank(), dist.get_world_size(), local_rank, dev)
    if fresh:  # leave the group before the interpreter exits: a live gloo group's threads
        atexit.register(shutdown, info)  # can abort the process at teardown
    return info


def wrap(model: nn.Module, info: DistInfo) -> nn.Module:
    """The model wrapped in DistributedDataParallel when running on several processes."""
    if not info.enabled:
        return model
    ids = [info.device.index] if info.device.type == "cuda" else None
    return nn.parallel.DistributedDataParallel(model, device_ids=ids)


def unwrap(model: nn.Module) -> nn.Module:
    """The plain model inside a DDP wrapper (or the model itself)."""
    return model.module if isinstance(model, nn.parallel.DistributedDataParallel) else model


def all_reduce_sum(t: torch.Tensor, info: DistInfo) -> torch.Tensor:
    """Sum `t` over all processes (in place; a no-op on one process)."""
    if info.enabled:
        dist.all_reduce(t)
    return t


def all_reduce_sum_many(tensors: list[torch.Tensor], info: DistInfo) -> None:
    """Sum every tensor of `tensors` over all processes in place, with one collective."""
    if not info.enabled or not tensors:
        return
    flat = torch.cat([t.reshape(-1).to(torch.float64) for t in tensors])
    dist.all_reduce(flat)
    start = 0
    for t in tensors:
        n = t.numel()
        t.copy_(flat[start : start + n].view_as(t))
        start += n


def same_on_all_ranks(values: torch.Tensor, info: DistInfo) -> bool:
    """Whether an integer tensor (e.g. chosen filter indices) is identical on every process."""
    if not info.enabled:
        return True
    v = values.to(torch.int64).reshape(-1)
    lo, hi = v.clone(), v.clone()
    dist.all_reduce(lo, op=dist.ReduceOp.MIN)
    dist.all_reduce(hi, op=dist.ReduceOp.MAX)
    return bool(torch.equal(lo, hi))


def barrier(info: DistInfo) -> None:
    """Wait for every process (a no-op on one process)."""
    if info.enabled:
        dist.barrier()


def shutdown(info: DistInfo) -> None:
    """Leave the process group at the end of a run."""
    if info.enabled and dist.is_initialized():
        dist.destroy_process_group()
