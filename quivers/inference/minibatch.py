"""Fitting a data set a minibatch at a time: the data set, the loop, its state.

:class:`RowDataset` is a :class:`torch.utils.data.Dataset` of rows ``(x_i,
observations_i)``. :class:`MinibatchFit` runs SVI over it for a number of epochs:
each epoch visits the training rows in a fresh order (a permutation seeded by
``seed + epoch``, as :class:`~torch.utils.data.DistributedSampler` makes it, so the
order is reproducible and a resumed fit sees the same batches), every step is one
:meth:`SVI.step <quivers.inference.svi.SVI.step>` on B rows with ``num_rows=N``
(the unbiased minibatch ELBO), and the held-out rows are scored by their negative
ELBO per token: the local part of the ELBO (each row's log p - log q given a draw of
the global sites), summed over the held-out rows and divided by their tokens.

Data-parallel fitting (:mod:`.distributed`) uses the same loop: with ``num_replicas``
K and ``rank`` r, each worker takes every K-th index of the epoch's permutation, and a
``reduce`` callback averages the gradients between the backward pass and the update,
so K workers with B rows each take the step one process takes on the K*B rows.

:meth:`MinibatchFit.state_dict` holds everything needed to continue exactly: the
model's, guide's and optimiser's states, the position in the data (epoch and batch),
the losses so far and the RNG state; a fit resumed from it ends with the weights of
an uninterrupted one.
"""

from __future__ import annotations

import math
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, cast

import torch
from torch import nn
from torch.utils.data import BatchSampler, Dataset, DistributedSampler
from torch.utils.data._utils.collate import default_collate

from quivers.inference.progress import InferenceCancelled, ProgressFn, ProgressInfo, StopFn
from quivers.inference.svi import SVI

Batch = tuple[Any, dict[str, Any]]


class RowDataset(Dataset[Batch]):
    """Rows of a program's data: ``x[i]`` and ``{name: observations[name][i]}``.

    Every tensor's first axis is the row. Indexing with a list of indices gives a
    whole batch at once (``__getitems__``, which :class:`~torch.utils.data.DataLoader`
    also uses). ``tokens_per_row`` counts the observed numbers of one row (the
    denominator of per-token figures); by default the elements of every observed
    site's row.
    """

    def __init__(
        self,
        x: torch.Tensor,
        observations: Mapping[str, torch.Tensor],
        tokens_per_row: int | None = None,
        observed: Sequence[str] | None = None,
    ) -> None:
        self.x = x
        self.observations = dict(observations)
        rows = int(x.shape[0])
        for name, value in self.observations.items():
            if int(value.shape[0]) != rows:
                raise ValueError(
                    f"observations '{name}' has {int(value.shape[0])} rows, x has {rows}"
                )
        names = list(observed) if observed is not None else list(self.observations)
        if tokens_per_row is None:
            tokens_per_row = sum(int(self.observations[n][0].numel()) for n in names) or 1
        self.tokens_per_row = int(tokens_per_row)

    def __len__(self) -> int:
        return int(self.x.shape[0])

    def __getitem__(self, index: int) -> Batch:
        return self.x[index], {k: v[index] for k, v in self.observations.items()}

    def __getitems__(self, indices: Sequence[int]) -> Batch:
        idx = torch.as_tensor(indices, dtype=torch.long)
        return self.x[idx], {k: v[idx] for k, v in self.observations.items()}

    def subset(self, indices: torch.Tensor) -> RowDataset:
        return RowDataset(*self.__getitems__(indices.tolist()), self.tokens_per_row)

    def split(self, val_fraction: float, seed: int = 0) -> tuple[RowDataset, RowDataset]:
        """A held-out split: ``val_fraction`` of the rows, chosen under ``seed``."""
        if not 0.0 <= val_fraction < 1.0:
            raise ValueError(f"val_fraction must be in [0, 1), got {val_fraction}")
        n = len(self)
        n_val = int(round(n * val_fraction))
        if val_fraction > 0 and n_val == 0:
            n_val = 1
        if n - n_val < 1:
            raise ValueError(f"{n} row(s) leave nothing to train on after the held-out split")
        order = torch.randperm(n, generator=torch.Generator().manual_seed(seed))
        return self.subset(order[n_val:].sort().values), self.subset(order[:n_val].sort().values)


def fetch(dataset: Dataset[Any], indices: Sequence[int]) -> Batch:
    """A batch of a data set: one batched fetch when it offers one, else collated rows."""
    getitems = getattr(dataset, "__getitems__", None)
    if getitems is not None:
        return cast(Batch, getitems(indices))
    collate: Callable[[list[Any]], Any] = default_collate
    return cast(Batch, collate([dataset[i] for i in indices]))


@dataclass
class FitState:
    """Where a minibatch fit is: epoch, batches done in it, steps, history."""

    epoch: int = 0
    batch: int = 0
    step: int = 0
    losses: list[float] = field(default_factory=list)
    held_out: list[tuple[int, float]] = field(default_factory=list)  # (step, nats/token)
    tokens: int = 0  # input numbers consumed (for tokens per second)
    seconds: float = 0.0  # time spent in steps


Reduce = Callable[[list[torch.Tensor], torch.Tensor], torch.Tensor]


class MinibatchFit:
    """SVI over a data set in minibatches, with epochs, shuffling and held-out scoring.

    ``svi`` carries model, guide, optimiser and objective (an
    :class:`~quivers.inference.elbo.ELBO`, called with ``num_rows``). ``eval_every``
    scores the held-out rows every so many steps (and at the end of every epoch).
    ``reduce(grads, loss) -> loss`` is the data-parallel hook (see :mod:`.distributed`).
    ``clip_norm`` clips the gradient's norm per data-set row (the minibatch gradient of
    the N-row objective divided by N, so the threshold does not depend on N) to keep
    a recurrent model's occasional gradient spike from throwing Adam off.
    ``device``: where the model lives; the data sets stay where they are (host memory)
    and each batch is moved there as it is fetched, as a ``DataLoader`` loop does.
    """

    def __init__(
        self,
        svi: SVI,
        train: Dataset[Any],
        held_out: Dataset[Any] | None = None,
        batch_size: int = 32,
        epochs: int = 1,
        seed: int = 0,
        shuffle: bool = True,
        eval_every: int | None = None,
        num_replicas: int = 1,
        rank: int = 0,
        reduce: Reduce | None = None,
        run: Mapping[str, Any] | None = None,
        clip_norm: float | None = None,
        device: torch.device | str | None = None,
    ) -> None:
        if batch_size < 1 or epochs < 0:
            raise ValueError("batch_size must be >= 1 and epochs >= 0")
        self.svi = svi
        self.train = train
        self.held_out = held_out
        self.batch_size = int(batch_size)
        self.epochs = int(epochs)
        self.seed = int(seed)
        self.shuffle = shuffle
        self.eval_every = eval_every
        self.num_replicas = int(num_replicas)
        self.rank = int(rank)
        self.reduce = reduce
        self.clip_norm = clip_norm
        self.device = torch.device(device) if device is not None else None
        self.run_args = dict(run or {})
        self.state = FitState()
        self.num_rows = len(train)  # type: ignore[arg-type]
        if self.num_rows < self.num_replicas:
            raise ValueError(f"{self.num_rows} training row(s) for {self.num_replicas} workers")

    # ------------------------------------------------------------ data order
    def epoch_batches(self, epoch: int) -> list[list[int]]:
        """This worker's batches of ``epoch``: the permutation under ``seed + epoch``,
        every ``num_replicas``-th index from ``rank``, cut into ``batch_size`` rows."""
        sampler: DistributedSampler[int] = DistributedSampler(
            self.train,
            num_replicas=self.num_replicas,
            rank=self.rank,
            shuffle=self.shuffle,
            seed=self.seed,
            drop_last=True,
        )
        sampler.set_epoch(epoch)
        return [list(b) for b in BatchSampler(sampler, self.batch_size, drop_last=False)]

    def steps_per_epoch(self) -> int:
        return len(self.epoch_batches(0))

    # ---------------------------------------------------------------- fitting
    def prepare(self) -> None:
        """Set the guide and the optimiser up on the first batch (before loading a state)."""
        x, obs = self._fetch(self.train, self.epoch_batches(0)[0])
        self.svi.prepare(x, obs, **self.run_args)

    def _fetch(self, dataset: Dataset[Any], indices: Sequence[int]) -> Batch:
        """A batch, on the fit's device."""
        x, obs = fetch(dataset, indices)
        if self.device is None:
            return x, obs
        return _to(x, self.device), {k: _to(v, self.device) for k, v in obs.items()}

    def fit(
        self,
        progress: ProgressFn | None = None,
        should_stop: StopFn | None = None,
        checkpoint: Callable[[], None] | None = None,
        checkpoint_every: int | None = None,
    ) -> FitState:
        """Run from the current state to the end of the last epoch.

        ``progress`` gets a :class:`ProgressInfo` (phase ``"fit"``; stats ``loss``,
        ``epoch``, ``tokens_per_s`` and, after a held-out evaluation, ``held_out``)
        after each step; ``checkpoint()`` is called every ``checkpoint_every`` steps;
        ``should_stop()`` is polled before each step and ends the fit with
        :class:`InferenceCancelled` (the state is consistent: a checkpoint taken then
        resumes exactly).
        """
        st = self.state
        total = self.steps_per_epoch() * self.epochs
        while st.epoch < self.epochs:
            batches = self.epoch_batches(st.epoch)
            while st.batch < len(batches):
                if should_stop is not None and should_stop():
                    raise InferenceCancelled(
                        f"fit stopped after {st.step} of {total} steps", st.losses
                    )
                start = time.perf_counter()
                x, obs = self._fetch(self.train, batches[st.batch])
                loss = self._step(x, obs)
                st.seconds += time.perf_counter() - start
                st.tokens += int(x.numel()) * self.num_replicas
                st.losses.append(loss)
                st.batch += 1
                st.step += 1
                end_of_epoch = st.batch == len(batches)
                if self.held_out is not None and (
                    end_of_epoch or (self.eval_every and st.step % self.eval_every == 0)
                ):
                    st.held_out.append((st.step, self.evaluate(self.held_out)))
                if end_of_epoch:
                    st.epoch += 1
                    st.batch = 0
                if progress is not None:
                    progress(ProgressInfo("fit", st.step, total, stats=self._stats()))
                if checkpoint is not None and checkpoint_every and st.step % checkpoint_every == 0:
                    checkpoint()
                if end_of_epoch:
                    break
            if not batches:  # no rows for this worker: nothing to do in any epoch
                break
        return st

    def _step(self, x: Any, obs: dict[str, Any]) -> float:
        loss = self.svi.loss_and_grads(x, obs, self.num_rows, **self.run_args)
        if self.reduce is not None:
            grads = [p.grad for p in self.svi.parameters() if p.grad is not None]
            loss = float(self.reduce(grads, torch.tensor(loss, device=grads[0].device)))
        if self.clip_norm is not None:
            torch.nn.utils.clip_grad_norm_(self.svi.parameters(), self.clip_norm * self.num_rows)
        self.svi.apply_grads()
        return loss

    def _stats(self) -> dict[str, float]:
        st = self.state
        stats = {
            "loss": st.losses[-1],
            "epoch": float(st.epoch),
            "tokens_per_s": st.tokens / st.seconds if st.seconds > 0 else float("nan"),
        }
        if st.held_out:
            stats["held_out"] = st.held_out[-1][1]
        return stats

    @torch.no_grad()
    def evaluate(self, dataset: Dataset[Any], seed: int | None = None) -> float:
        """The held-out negative ELBO per token (nats): the rows' local terms only.

        The draws use their own RNG stream under ``seed`` (default: the fit's), so the
        figure is reproducible and the fit's random stream is left as it was.
        """
        objective = self.svi.objective
        row_terms = getattr(objective, "row_terms", None)
        if row_terms is None:
            raise TypeError("held-out scoring needs an objective with row_terms (ELBO)")
        n = len(dataset)  # type: ignore[arg-type]
        tokens_per_row = getattr(dataset, "tokens_per_row", 1)
        total = 0.0
        with torch.random.fork_rng(devices=self._cuda_devices()):
            torch.manual_seed(self.seed if seed is None else seed)
            for lo in range(0, n, self.batch_size):
                x, obs = self._fetch(dataset, list(range(lo, min(n, lo + self.batch_size))))
                terms = row_terms(self.svi.model, self.svi.guide, x, obs, **self.run_args)
                total += float(-terms.rows.sum(-1).mean())
        return total / max(n * tokens_per_row, 1)

    # ------------------------------------------------------------ checkpoints
    def _model(self) -> nn.Module:
        model = self.svi.model
        if not isinstance(model, nn.Module):
            raise TypeError("checkpoints need a model that is an nn.Module (for its state_dict)")
        return model

    def state_dict(self, rng_of_ranks: list[torch.Tensor] | None = None) -> dict[str, Any]:
        """Everything a resumed fit needs (plain tensors, dicts and numbers).

        ``rng_of_ranks``: every worker's RNG state (data-parallel fits), so that each
        resumes its own random stream.
        """
        st = self.state
        assert self.svi.optim is not None, "prepare() or a step comes first"
        return {
            "model": _host_copy(self._model().state_dict()),
            "guide": _host_copy(self.svi.guide.state_dict()),
            "optim": self.svi.optim.state_dict(),
            "loop": {
                "epoch": st.epoch,
                "batch": st.batch,
                "step": st.step,
                "losses": list(st.losses),
                "held_out": [list(h) for h in st.held_out],
                "tokens": st.tokens,
                "seconds": st.seconds,
                "seed": self.seed,
                "batch_size": self.batch_size,
                "num_rows": self.num_rows,
            },
            "rng": torch.get_rng_state(),
            "rng_of_ranks": list(rng_of_ranks or []),
            # the guide's noise on a CUDA device comes from that device's generator
            "cuda_rng": [torch.cuda.get_rng_state(d) for d in self._cuda_devices()],
        }

    def load_state_dict(self, state: Mapping[str, Any]) -> None:
        """Continue from :meth:`state_dict` (call :meth:`prepare` first)."""
        loop = state["loop"]
        for key, mine in (("batch_size", self.batch_size), ("num_rows", self.num_rows)):
            if int(loop[key]) != mine:
                raise ValueError(f"the saved fit has {key} {loop[key]}, this one {mine}")
        assert self.svi.optim is not None, "prepare() comes first"
        self._model().load_state_dict(state["model"])
        self.svi.guide.load_state_dict(state["guide"])
        self.svi.optim.load_state_dict(state["optim"])
        self.seed = int(loop["seed"])
        self.state = FitState(
            epoch=int(loop["epoch"]),
            batch=int(loop["batch"]),
            step=int(loop["step"]),
            losses=[float(v) for v in loop["losses"]],
            held_out=[(int(s), float(v)) for s, v in loop["held_out"]],
            tokens=int(loop["tokens"]),
            seconds=float(loop["seconds"]),
        )
        ranks = state.get("rng_of_ranks") or []
        own = ranks[self.rank] if len(ranks) == self.num_replicas else state["rng"]
        torch.set_rng_state(own)
        cuda_rng = state.get("cuda_rng") or []
        for d, rng in zip(self._cuda_devices(), cuda_rng, strict=False):
            torch.cuda.set_rng_state(rng.cpu(), d)

    def _cuda_devices(self) -> list[int]:
        """The CUDA device of the fit, if it runs on one (for its random stream)."""
        if self.device is None or self.device.type != "cuda":
            return []
        index = self.device.index
        return [torch.cuda.current_device() if index is None else index]


def _to(value: Any, device: torch.device) -> Any:
    """A batch part on ``device`` (tensors, and tuples of them; anything else as it is)."""
    if isinstance(value, torch.Tensor):
        return value.to(device, non_blocking=True)
    if isinstance(value, tuple | list):
        return type(value)(_to(v, device) for v in value)
    return value


def _host_copy(state: Mapping[str, torch.Tensor]) -> dict[str, torch.Tensor]:
    """A state dict's tensors copied to host memory (a checkpoint loads anywhere)."""
    return {k: v.detach().to("cpu", copy=True) for k, v in state.items()}


def bits(nats: float) -> float:
    """Nats to bits."""
    return nats / math.log(2.0)
