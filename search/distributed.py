"""Distributed search on torch.distributed: the process group, the DDP wrapper and the collectives.

Every process runs the same search on its shard of each global batch (see `search_loader`):
- weight steps run through `DistributedDataParallel`, which averages the weight gradients during
  backward (before gradient clipping, as a single process with the global batch would clip);
- the architecture logits are left out of DDP (an architecture step computes only their
  gradients, `backward(inputs=alphas)`, which DDP's reducer cannot follow) and their gradients are
  averaged explicitly, just before the architecture optimizer steps (`average_gradients_before_step`).
The processes therefore hold identical weights and alphas after every step. Launch with
`torchrun --nproc_per_node=N script.py`; gloo is used on CPU, nccl on GPU.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from typing import Any, Callable, Optional, TypeVar

import torch
import torch.distributed as dist
from torch import nn
from torch.nn.parallel import DistributedDataParallel

from supernet import SoftmaxMixture, SupernetExecutor

T = TypeVar("T")


@dataclass(frozen=True)
class DistributedContext:
    """Where this process stands: its rank among `world_size` processes (`enabled` when > 0 peers
    share the search through torch.distributed)."""

    enabled: bool = False
    rank: int = 0
    world_size: int = 1
    local_rank: int = 0

    @property
    def is_main(self) -> bool:
        """Whether this process writes files (rank 0)."""
        return self.rank == 0

    def all_reduce_sum(self, tensor: torch.Tensor) -> torch.Tensor:
        """Sum `tensor` over the processes, in place (and return it)."""
        if self.enabled:
            dist.all_reduce(tensor, op=dist.ReduceOp.SUM)
        return tensor

    def any(self, flag: bool, device: Optional[torch.device] = None) -> bool:
        """Whether `flag` is true on any process (every process gets the same answer)."""
        if not self.enabled:
            return bool(flag)
        value = torch.tensor([1.0 if flag else 0.0], device=device or _collective_device())
        dist.all_reduce(value, op=dist.ReduceOp.SUM)
        return bool(value.item() > 0)

    def broadcast_object(self, obj: T) -> T:
        """Rank 0's `obj`, on every process."""
        if not self.enabled:
            return obj
        holder = [obj]
        dist.broadcast_object_list(holder, src=0)
        return holder[0]

    def all_gather_object(self, obj: T) -> list[T]:
        """Every process's `obj`, in rank order."""
        if not self.enabled:
            return [obj]
        gathered: list[Any] = [None] * self.world_size
        dist.all_gather_object(gathered, obj)
        return gathered

    def agree(self, check: Callable[[], T]) -> T:
        """Run `check` on every process; if it raises on any, raise on all (no process is left
        waiting in a collective for one that failed). The first failing rank's error is re-raised;
        otherwise `check`'s result is returned."""
        error: Optional[BaseException] = None
        result: Optional[T] = None
        try:
            result = check()
        except Exception as err:  # re-raised below, here or on the peers
            error = err
        if not self.enabled:
            if error is not None:
                raise error
            return result
        errors = self.all_gather_object(None if error is None else (type(error).__name__, str(error)))
        if error is not None:
            raise error
        for rank, failure in enumerate(errors):
            if failure is not None:
                kind, message = failure
                raise RuntimeError(f"rank {rank} stopped the distributed search: {kind}: {message}")
        return result


SINGLE_PROCESS = DistributedContext()


def is_main_process() -> bool:
    """Whether this process should write files: rank 0 of a distributed run, or a lone process."""
    return not (dist.is_available() and dist.is_initialized()) or dist.get_rank() == 0


def launched_distributed() -> bool:
    """Whether this process belongs to a multi-process launch (torchrun's WORLD_SIZE > 1, or an
    initialized process group of more than one process)."""
    if not dist.is_available():
        return False
    if dist.is_initialized():
        return dist.get_world_size() > 1
    return int(os.environ.get("WORLD_SIZE", "1")) > 1


def setup_distributed(
    distributed: Optional[bool], device: Optional[torch.device]
) -> tuple[DistributedContext, torch.device]:
    """Join (or create) the default process group when the search is distributed.

    `distributed=None` decides from the environment (`launched_distributed()`). The process group is
    created from torchrun's environment variables with gloo on CPU and nccl on GPU, and is left up
    (later searches in the same processes reuse it). Returns the context and the device this process
    searches on (`cuda:LOCAL_RANK` on GPU machines).
    """
    if distributed is None:
        distributed = launched_distributed()
    local_rank = int(os.environ.get("LOCAL_RANK", "0"))
    if device is None:
        device = (
            torch.device(f"cuda:{local_rank}" if distributed else "cuda")
            if torch.cuda.is_available()
            else torch.device("cpu")
        )
    elif device.type == "cuda" and device.index is None and distributed:
        device = torch.device(f"cuda:{local_rank}")
    if not distributed:
        return SINGLE_PROCESS, device
    if not dist.is_available():
        raise RuntimeError("distributed=True, but this PyTorch build has no torch.distributed")
    if not dist.is_initialized():
        missing = [v for v in ("RANK", "WORLD_SIZE", "MASTER_ADDR", "MASTER_PORT") if v not in os.environ]
        if missing:
            raise RuntimeError(
                f"distributed=True needs a process group, but {missing} are not set: launch with "
                "`torchrun --nproc_per_node=N your_script.py`, or call torch.distributed.init_process_group() first"
            )
        if device.type == "cuda":
            torch.cuda.set_device(device)
        dist.init_process_group(backend="nccl" if device.type == "cuda" else "gloo")
    elif device.type == "cuda":
        torch.cuda.set_device(device)
    context = DistributedContext(
        enabled=True, rank=dist.get_rank(), world_size=dist.get_world_size(), local_rank=local_rank
    )
    return context, device


def _collective_device() -> torch.device:
    if dist.is_initialized() and dist.get_backend() == "nccl":
        return torch.device("cuda", torch.cuda.current_device())
    return torch.device("cpu")


def wrap_weights(supernet: SupernetExecutor, device: torch.device) -> nn.Module:
    """`DistributedDataParallel` over the supernet's weights (its alphas are left out, see the
    module doc); the supernet itself when it has no weight to synchronise."""
    if not supernet.weight_parameters():
        return supernet
    arch = {id(alpha) for alpha in supernet.arch_parameters()}
    ignored = [name for name, param in supernet.named_parameters() if id(param) in arch]
    DistributedDataParallel._set_params_and_buffers_to_ignore_for_model(supernet, ignored)
    return DistributedDataParallel(
        supernet,
        device_ids=[device.index] if device.type == "cuda" else None,
        find_unused_parameters=samples_paths(supernet),
    )


def samples_paths(supernet: SupernetExecutor) -> bool:
    """Whether the supernet's mixture runs only some options per step (GDAS, ProxylessNAS...),
    leaving the weights of the others without gradient: DDP must then look for unused parameters.
    The mixture is asked once per switch, without disturbing the random generators."""
    if type(supernet.mixture) is SoftmaxMixture:
        return False
    devices = (
        [supernet.arch_parameters()[0].device]
        if supernet.arch_parameters() and supernet.arch_parameters()[0].is_cuda
        else []
    )
    with torch.random.fork_rng(devices=devices), torch.no_grad():
        return any(supernet.mixture.weights(alpha, True, sid)[1] is not None for sid, alpha in supernet.alphas.items())


def average_gradients(params: list[torch.Tensor], context: DistributedContext) -> None:
    """Replace each parameter's gradient by its mean over the processes, in one collective.

    A parameter without gradient on every process keeps none; one that has a gradient on some
    processes only counts zero on the others (as DDP does).
    """
    if not context.enabled or not params:
        return
    device = params[0].device
    pieces = [
        p.grad.detach().reshape(-1) if p.grad is not None else torch.zeros(p.numel(), device=device, dtype=p.dtype)
        for p in params
    ]
    present = torch.tensor([p.grad is not None for p in params], device=device, dtype=pieces[0].dtype)
    flat = torch.cat([*pieces, present])
    context.all_reduce_sum(flat)
    flat /= context.world_size
    offset = 0
    for param, had in zip(params, flat[-len(params) :].tolist()):
        chunk = flat[offset : offset + param.numel()].view_as(param)
        offset += param.numel()
        if had > 0:
            param.grad = chunk.clone()
        else:
            param.grad = None


def average_gradients_before_step(optimizer: torch.optim.Optimizer, context: DistributedContext) -> Any:
    """Average the gradients of `optimizer`'s parameters over the processes before each of its
    steps (a step pre-hook). Returns the hook handle (None when not distributed)."""
    if not context.enabled:
        return None
    params = [p for group in optimizer.param_groups for p in group["params"]]

    def hook(_optimizer: torch.optim.Optimizer, _args: Any, _kwargs: Any) -> None:
        average_gradients(params, context)

    return optimizer.register_step_pre_hook(hook)
