"""Data-parallel training over torch.distributed, for runs launched by `torchrun`.

Every rank holds the same model. Each optimization step, rank r renders its own views (the
r-th of the world's batches), the gradients are averaged over the ranks before the optimizers
step (what DistributedDataParallel does), and the densification statistics are summed before
each grow/prune decision, so the replicas stay identical: W ranks with batch B train as one
process with batch W x B. Rank 0 alone runs the pose and depth stages and writes the workspace.

NCCL on GPUs, gloo on CPUs (how the tests run it). Without `torchrun` (WORLD_SIZE unset or 1)
every function here is a no-op and nothing touches torch.distributed.
"""

from __future__ import annotations

import datetime
import os
from contextlib import contextmanager
from typing import Iterable, Iterator

import torch
import torch.distributed as dist
from torch import Tensor

from ..data.errors import VoxsplatError


def launched() -> bool:
    """Whether this process was started by torchrun (or another launcher) as one of several."""
    return int(os.environ.get("WORLD_SIZE", "1")) > 1


def active() -> bool:
    """Whether a process group of more than one rank is running."""
    return dist.is_available() and dist.is_initialized() and dist.get_world_size() > 1


def rank() -> int:
    return dist.get_rank() if active() else 0


def world_size() -> int:
    return dist.get_world_size() if active() else 1


def is_main() -> bool:
    """Rank 0, the one that writes files and prints progress (True outside torchrun)."""
    return rank() == 0


def local_rank() -> int:
    return int(os.environ.get("LOCAL_RANK", "0"))


def init_from_env(device: str) -> None:
    """Join the process group torchrun describes (WORLD_SIZE, RANK, MASTER_ADDR, ...): NCCL
    when `device` ("cpu" | "cuda" | "auto") means the GPU, else gloo. Each rank takes the GPU
    of its LOCAL_RANK. A no-op outside torchrun or when already joined."""
    if not launched() or (dist.is_available() and dist.is_initialized()):
        return
    if not dist.is_available():
        raise VoxsplatError("torchrun started several processes, but this torch build has no "
                            "torch.distributed; run one process (plain `voxsplat ...`)")
    gpu = device != "cpu" and torch.cuda.is_available()
    if gpu:
        if local_rank() >= torch.cuda.device_count():
            raise VoxsplatError(f"torchrun started rank {local_rank()} on a machine with "
                                f"{torch.cuda.device_count()} GPU(s); use --nproc_per_node "
                                f"{torch.cuda.device_count()} or fewer")
        torch.cuda.set_device(local_rank())
    # the other ranks wait while rank 0 runs SfM and MVS: allow for long ones
    dist.init_process_group("nccl" if gpu else "gloo", timeout=datetime.timedelta(hours=6))


def shutdown(finished: bool = True) -> None:
    """Leave the process group; a rank that `finished` first waits for the others to be done
    with it (gloo aborts a rank whose peer tears down first). After an error, leave at once."""
    if dist.is_available() and dist.is_initialized():
        if finished:
            dist.barrier()
        dist.destroy_process_group()


def device_of_rank(device: torch.device) -> torch.device:
    """`cuda` -> this rank's GPU (`cuda:LOCAL_RANK`) in a multi-GPU run; else `device`."""
    if active() and device.type == "cuda" and device.index is None:
        return torch.device("cuda", local_rank())
    return device


def barrier() -> None:
    if active():
        dist.barrier()


class PeerFailed(VoxsplatError):
    """Another process of the run failed; its own message says why (this one says nothing
    more: `scripts.cli` prints no message for it)."""


@contextmanager
def main_first() -> Iterator[None]:
    """Rank 0 runs the block first (e.g. SfM that writes the workspace), the others after it
    finished (and reuse what it wrote). Where it failed, the others raise `PeerFailed`
    instead of running the block themselves."""
    if not active():
        yield
        return
    if is_main():
        try:
            yield
        except BaseException:
            broadcast_object(False)
            raise
        broadcast_object(True)
    else:
        if not broadcast_object():
            raise PeerFailed("the first process of the run failed")
        yield


def broadcast_object(obj=None):
    """Rank 0's `obj` (picklable; tensors on the CPU) on every rank."""
    if not active():
        return obj
    box = [obj]
    dist.broadcast_object_list(box, src=0)
    return box[0]


def broadcast_tensors_(tensors: Iterable[Tensor]) -> None:
    """Overwrite `tensors` with rank 0's (same shapes on every rank: the replicas' start)."""
    if not active():
        return
    with torch.no_grad():
        for t in tensors:
            dist.broadcast(t.data, src=0)


def average_gradients(params: Iterable[Tensor]) -> None:
    """Replace each parameter's gradient by its mean over the ranks, in one all-reduce per
    dtype and device. A parameter without a gradient on some ranks counts zero there; one
    without a gradient on every rank keeps none (so Adam skips it, as in one process)."""
    if not active():
        return
    params = list(params)
    if not params:
        return
    dev = params[0].device
    has = torch.tensor([p.grad is not None for p in params], dtype=torch.float32, device=dev)
    dist.all_reduce(has)
    has = has.cpu().tolist()  # one host sync, not one per parameter
    groups: dict[tuple, list[int]] = {}
    for i, p in enumerate(params):
        if has[i] > 0:
            groups.setdefault((p.dtype, p.device), []).append(i)
    W = world_size()
    for (dtype, device), idx in groups.items():
        flat = torch.cat([(params[i].grad if params[i].grad is not None
                           else torch.zeros_like(params[i])).reshape(-1) for i in idx])
        dist.all_reduce(flat)
        flat /= W
        offset = 0
        for i in idx:
            p = params[i]
            n = p.numel()
            p.grad = flat[offset:offset + n].view_as(p).clone()
            offset += n


def sum_(*tensors: Tensor) -> None:
    """Sum each tensor over the ranks in place (densification statistics)."""
    if active():
        for t in tensors:
            dist.all_reduce(t, op=dist.ReduceOp.SUM)


def max_(*tensors: Tensor) -> None:
    """Element-wise maximum over the ranks, in place."""
    if active():
        for t in tensors:
            dist.all_reduce(t, op=dist.ReduceOp.MAX)

