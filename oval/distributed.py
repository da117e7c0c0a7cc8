"""torchrun / DistributedDataParallel set-up: one process per device, rank 0 logs and saves."""
import dataclasses
import inspect
import os

import torch


@dataclasses.dataclass
class Dist:
    rank: int = 0
    world: int = 1
    device: torch.device = torch.device("cpu")

    @property
    def main(self) -> bool:
        return self.rank == 0


def init(device: torch.device) -> Dist:
    """Joins the process group when launched by torchrun (WORLD_SIZE > 1); gloo on CPU, NCCL on CUDA."""
    world = int(os.environ.get("WORLD_SIZE", "1"))
    if world <= 1:
        return Dist(device=device)
    import torch.distributed as dist

    if device.type == "cuda":
        device = torch.device("cuda", int(os.environ.get("LOCAL_RANK", "0")))
        torch.cuda.set_device(device)
    dist.init_process_group("nccl" if device.type == "cuda" else "gloo")
    return Dist(dist.get_rank(), dist.get_world_size(), device)


def wrap(model: torch.nn.Module, d: Dist) -> torch.nn.Module:
    if d.world <= 1:
        return model
    from torch.nn.parallel import DistributedDataParallel

    # Entropy tables are rebuilt on rank 0 for validation and change shape: never sync buffers in
    # forward (they are equal at start, when DDP syncs them once).
    ids = [d.device.index] if d.device.type == "cuda" else None
    params = inspect.signature(DistributedDataParallel).parameters
    no_sync = {"forward_sync_buffers": False} if "forward_sync_buffers" in params else {"broadcast_buffers": False}
    return DistributedDataParallel(model, device_ids=ids, **no_sync)


def all_finite(value: torch.Tensor, d: Dist) -> bool:
    """True when the value is finite on every rank: ranks must skip a bad step together or not at all."""
    ok = torch.isfinite(value).float().reshape(1)
    if d.world > 1:
        torch.distributed.all_reduce(ok, op=torch.distributed.ReduceOp.MIN)
    return bool(ok.item())


def barrier(d: Dist) -> None:
    if d.world > 1:
        torch.distributed.barrier()


def shutdown(d: Dist) -> None:
    if d.world > 1:
        torch.distributed.destroy_process_group()
