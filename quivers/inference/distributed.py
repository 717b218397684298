"""Data-parallel SVI with ``torch.distributed``: one process per worker.

Each worker fits its own shard of every global batch (the
:class:`~torch.utils.data.DistributedSampler` split that
:class:`~quivers.inference.minibatch.MinibatchFit` makes with ``num_replicas`` and
``rank``) and computes the minibatch ELBO of its B rows scaled by N/B. The mean of
the K workers' estimates is the estimate of the global batch of K*B rows (scaled by
N/(K B)), so averaging the gradients (:func:`average_gradients`, one all-reduce of
one flat buffer, as ``DistributedDataParallel`` buckets do) gives every worker the
gradient of the global batch, and identical updates keep the model's and the
guide's parameters, global sites included, identical on every rank.
:func:`broadcast_parameters` makes the starting point identical too, and
:func:`seed_worker` gives every worker its own stream of guide noise.

``torchrun`` sets ``RANK``, ``WORLD_SIZE``, ``MASTER_ADDR`` and ``MASTER_PORT``;
:func:`init_from_env` joins that group (gloo on CPU, nccl on GPUs).
"""

from __future__ import annotations

import os
import sys
from collections.abc import Iterable
from typing import NoReturn

import torch
import torch.distributed as dist


def init_from_env(backend: str | None = None) -> tuple[int, int]:
    """Join the process group ``torchrun`` describes; returns (rank, world size)."""
    if "RANK" not in os.environ or "WORLD_SIZE" not in os.environ:
        raise RuntimeError(
            "--distributed needs the environment torchrun sets (RANK, WORLD_SIZE, "
            "MASTER_ADDR, MASTER_PORT): run it as `torchrun --nproc-per-node=K -m quivers fit ...`"
        )
    if not dist.is_initialized():
        chosen = backend or ("nccl" if torch.cuda.is_available() else "gloo")
        dist.init_process_group(backend=chosen)
    return dist.get_rank(), dist.get_world_size()


def average_gradients(grads: list[torch.Tensor], loss: torch.Tensor) -> torch.Tensor:
    """Replace every gradient (and the loss) by its mean over the workers, in place."""
    world = dist.get_world_size()
    last = loss.reshape(1).to(device=grads[0].device, dtype=grads[0].dtype)
    flat = torch.cat([g.reshape(-1) for g in grads] + [last])
    dist.all_reduce(flat, op=dist.ReduceOp.SUM)
    flat /= world
    offset = 0
    for g in grads:
        n = g.numel()
        g.copy_(flat[offset : offset + n].view_as(g))
        offset += n
    return flat[offset]


def seed_worker(seed: int, rank: int) -> None:
    """Give worker ``rank`` > 0 its own random stream, so the guide's noise on its rows
    is independent of the other workers' (rank 0 keeps the stream of a 1-process fit)."""
    if rank > 0:
        torch.manual_seed(worker_seed(seed, rank))


def worker_seed(seed: int, rank: int) -> int:
    return seed + 1_000_003 * rank


def broadcast_parameters(params: Iterable[torch.Tensor], src: int = 0) -> None:
    """Give every worker rank ``src``'s parameter values."""
    with torch.no_grad():
        for p in params:
            dist.broadcast(p.data, src=src)


def gather_rng_states() -> list[torch.Tensor]:
    """Every worker's torch RNG state, in rank order (a collective: all ranks call it).

    A checkpoint keeps them all, so each resumed worker continues its own stream of
    guide noise and a resumed data-parallel fit ends where an uninterrupted one does.
    """
    states: list[object] = [None] * dist.get_world_size()
    dist.all_gather_object(states, torch.get_rng_state())
    return [torch.as_tensor(s) for s in states]


def shutdown() -> None:
    """Leave the process group after a failed fit, with no barrier: the failed peer
    may never reach one. A worker whose fit completed uses :func:`exit_worker`."""
    if dist.is_initialized():
        dist.destroy_process_group()


def exit_worker(code: int) -> NoReturn:
    """End a ``torchrun`` worker whose fit completed: meet the other workers at a
    barrier, then leave the process at once with ``code``.

    Everything the fit owes is written by then (rank 0 wrote the state file before the
    barrier). Leaving with ``os._exit`` skips tearing down the gloo group and the
    interpreter: on CI a non-writing rank still died, now and then, of
    ``std::terminate`` ("terminate called without an active exception") after the
    barrier, so in that teardown. The kernel closes the sockets; no peer has
    collective work left that needs them.
    """
    if dist.is_initialized():
        dist.barrier()
    sys.stdout.flush()
    sys.stderr.flush()
    os._exit(code)
