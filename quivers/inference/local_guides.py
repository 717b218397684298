"""Guides whose size does not grow with the number of rows.

The autoguides of :mod:`.guides` hold one variational factor per number of every
latent site, so a local site (one draw per row, e.g. the hidden trajectory of a
``scan``) costs parameters in proportion to the data. The two guides here compute a
row's local factor instead of storing it, so they fit data sets of any size with a
fixed number of parameters, and they work on minibatches:

- :class:`PriorGuide` draws the local sites from the model itself,
  q(z_i | x_i) = p(z_i | x_i, globals). Its KL term is zero and the ELBO becomes the
  expected log likelihood of the observations under the model's own noise: the right
  choice when the local sites are nearly deterministic given the input (the reference
  RNN language model, whose hidden state has a fixed scale of 0.1), and the choice
  that makes a latent-state sequence model train like its deterministic counterpart.
- :class:`AmortizedGuide` is an inference network (Kingma & Welling, 2014; Rezende
  et al., 2014): a row's local sites are Normal in unconstrained space with loc and
  scale computed from that row's input and observations. For a sequence site (a
  ``scan`` trajectory of shape (batch, T, D)) it is the structured guide of Krishnan,
  Shalit & Sontag (2017, "Structured Inference Networks for Nonlinear State Space
  Models", AAAI; the Deep Markov Model): a backward GRU summarises x_t..x_T and the
  observations, and a combiner gives q(z_t | z_{t-1}, summary_t). It suits models
  whose observations say much about each row's latents (a VAE, a state-space model
  observed at every step).

Global sites (drawn once for all rows) keep a mean-field Normal or a delta guide
(``global_guide="normal"`` or ``"delta"``): their factor does not grow with N either.
Both guides report ``log_q_rows``, the local part of ``log q`` per row, so
:class:`~quivers.inference.elbo.ELBO` can scale it by N/B on a minibatch.
"""

from __future__ import annotations

import math
from collections.abc import Collection, Mapping
from typing import Any, cast

import torch
from torch import nn
from torch.distributions import constraints
from torch.nn import functional as F

from quivers.inference.guides import (
    AutoDeltaGuide,
    AutoGuide,
    AutoNormalGuide,
    GuideDraw,
    inv_softplus,
)
from quivers.inference.layout import (
    bijector,
    inverse_shape,
    latent_sites,
    log_abs_det_jacobian,
    missing_observations,
)
from quivers.runtime.trace import Site, leaves

GLOBAL_GUIDES = ("normal", "delta")


def _start_near_zero(last: nn.Linear, size: int, scale: float) -> None:
    """An output layer of [loc; raw scale] (2 x size) that starts at loc ~ 0 and
    scale = ``scale`` for every input, so a fresh guide starts near its prior's centre."""
    with torch.no_grad():
        last.weight.mul_(0.01)
        last.bias.zero_()
        last.bias[size:] = inv_softplus(scale)


class LocalGuide(nn.Module):
    """Shared set-up: split the latent sites into local and global, guide the globals.

    Subclasses implement ``_setup_local(trace, x, obs)`` and
    ``_sample_local(x, obs, run) -> (values, log_q_rows)``.
    """

    def __init__(
        self,
        model: Any,
        observed_names: Collection[str] | None = None,
        global_guide: str | None = "normal",
        init_scale: float = 0.1,
    ) -> None:
        super().__init__()
        if global_guide is not None and global_guide not in GLOBAL_GUIDES:
            raise ValueError(
                f"global_guide must be one of {', '.join(GLOBAL_GUIDES)} or None, "
                f"got {global_guide!r}"
            )
        object.__setattr__(self, "_model", model)  # not a submodule: not our parameters
        names = observed_names if observed_names is not None else model.observed_names
        self.observed_names: frozenset[str] = frozenset(names)
        self.global_kind = global_guide
        self.init_scale = float(init_scale)
        self.local_sites: tuple[str, ...] = ()
        self.global_sites: tuple[str, ...] = ()
        self.globals: AutoGuide | None = None
        self._ready = False

    @property
    def model(self) -> Any:
        return self._model

    @property
    def is_setup(self) -> bool:
        return self._ready

    def setup(self, x: Any, observations: Mapping[str, Any] | None = None, **run: Any) -> None:
        """Find the local and global sites from one run of the model (once)."""
        if self._ready:
            return
        obs = dict(observations or {})
        missing_observations(self.observed_names, obs)
        with torch.no_grad():
            trace = self.model.trace(x, obs, **run)
        sites = latent_sites(trace, set(self.observed_names) | set(obs))
        self.local_sites = tuple(s.name for s in sites if not s.is_global)
        self.global_sites = tuple(s.name for s in sites if s.is_global)
        if self.global_sites:
            if self.global_kind is None:
                raise ValueError(
                    f"{type(self).__name__}: the model has global latent sites "
                    f"{list(self.global_sites)}; pass global_guide='normal' or 'delta'"
                )
            cls = AutoNormalGuide if self.global_kind == "normal" else AutoDeltaGuide
            self.globals = cls(
                model=self.model, observed_names=self.observed_names, exclude=self.local_sites
            )
            self.globals.setup(x, obs, **run)
        local = {s.name: s for s in sites if not s.is_global}
        self._setup_local(trace, local, x, obs)
        self.to(_device_of(x))  # encoders are built on the CPU; the data says where to run
        self._ready = True

    def _setup_local(
        self, trace: Mapping[str, Site], sites: dict[str, Site], x: Any, obs: dict[str, Any]
    ) -> None:
        raise NotImplementedError

    def _sample_local(
        self, x: Any, obs: dict[str, Any], run: dict[str, Any]
    ) -> tuple[dict[str, Any], torch.Tensor]:
        raise NotImplementedError

    def sample(
        self,
        x: Any,
        observations: Mapping[str, Any] | None = None,
        num_particles: int | None = None,
        **run: Any,
    ) -> GuideDraw:
        """Draw the global sites, then every row's local sites given them."""
        self.setup(x, observations, **run)
        if num_particles is not None:  # particles one after another, stacked
            draws = [self.sample(x, observations, **run) for _ in range(int(num_particles))]
            stacked = {n: _stack([d.values[n] for d in draws]) for n in draws[0].values}
            rows = torch.stack([cast(torch.Tensor, d.log_q_rows) for d in draws])
            return GuideDraw(stacked, torch.stack([d.log_q for d in draws]), rows)
        obs = dict(observations or {})
        values: dict[str, Any] = {}
        log_q = torch.zeros((), device=_device_of(x))
        if self.globals is not None:
            g = self.globals.sample(x, obs, **run)
            values.update(g.values)
            log_q = g.log_q
        local, log_q_rows = self._sample_local(x, {**obs, **values}, run)
        values.update(local)
        return GuideDraw(values, log_q + log_q_rows.sum(), log_q_rows)

    def forward(self, x: Any, observations: Mapping[str, Any] | None = None, **run: Any) -> Any:
        return self.sample(x, observations, **run).values


def _stack(parts: list[Any]) -> Any:
    if isinstance(parts[0], tuple | list):
        return tuple(_stack(list(col)) for col in zip(*parts, strict=True))
    return torch.stack(parts)


class PriorGuide(LocalGuide):
    """Local sites drawn from the model: q(z_i | x_i) = p(z_i | x_i, globals).

    No parameters of its own for the local sites (the model's weights shape the draw
    and get gradients through the reparameterised noise); ``log_q_rows`` is the
    model's own log density of the draw, so it cancels the prior term of the ELBO
    exactly and the objective is E_p(z|x)[log p(y | z, x)].
    """

    def _setup_local(
        self, trace: Mapping[str, Site], sites: dict[str, Site], x: Any, obs: dict[str, Any]
    ) -> None:
        return None

    def row_terms(
        self, x: Any, observations: Mapping[str, Any] | None = None, **run: Any
    ) -> tuple[torch.Tensor, torch.Tensor] | None:
        """log p - log q of one draw as (per row, global), in one run of the model.

        With the model's ``draw_log_joint_rows`` the local sites are drawn and never
        scored: their log p - log q is exactly zero. None when the model lacks it (the
        ELBO then scores the draw from :meth:`sample`, to the same value up to
        rounding).
        """
        draw_and_score = getattr(self.model, "draw_log_joint_rows", None)
        if draw_and_score is None:
            return None
        self.setup(x, observations, **run)
        obs = dict(observations or {})
        values: dict[str, Any] = {}
        log_q_global = torch.zeros((), device=_device_of(x))
        if self.globals is not None:
            g = self.globals.sample(x, obs, **run)
            values, log_q_global = g.values, g.log_q
        _, rows, glob = draw_and_score(x, {**obs, **values}, self.local_sites, **run)
        return rows, glob - log_q_global

    def _sample_local(
        self, x: Any, obs: dict[str, Any], run: dict[str, Any]
    ) -> tuple[dict[str, Any], torch.Tensor]:
        trace = self.model.trace(x, obs, **run)
        values = {n: trace[n].trace for n in self.local_sites}
        rows = _rows_of(x)
        log_q = torch.zeros(rows, device=_device_of(x))
        for name in self.local_sites:
            log_q = log_q + trace[name].log_prob
        return values, log_q


def _device_of(x: Any) -> torch.device:
    """Where a row batch lives (its first tensor's device; the CPU for no tensor)."""
    if isinstance(x, torch.Tensor):
        return x.device
    if isinstance(x, tuple | list) and x:
        return _device_of(x[0])
    return torch.device("cpu")


def _rows_of(x: Any) -> int:
    if isinstance(x, torch.Tensor) and x.dim() > 0:
        return int(x.shape[0])
    if isinstance(x, tuple | list) and x:
        return _rows_of(x[0])
    return 1


class _Features(nn.Module):
    """A row's input and observations as real features.

    Integer tensors are ids: embedded (the vocabulary size comes from
    ``categories`` or from the site's discrete support); floating tensors are used as
    they are. ``step_features(x)`` keeps a sequence input's time axis,
    ``row_features(x, obs)`` gives one vector per row.
    """

    def __init__(
        self,
        x: Any,
        obs: dict[str, torch.Tensor],
        categories: dict[str, int],
        width: int,
        sequence: bool,
    ) -> None:
        super().__init__()
        self.sequence = sequence
        self.obs_names = tuple(sorted(n for n, v in obs.items() if isinstance(v, torch.Tensor)))
        self.embeds = nn.ModuleDict()
        for name, value in (("x", x), *((n, obs[n]) for n in self.obs_names)):
            if not value.is_floating_point():
                if name not in categories:
                    raise ValueError(
                        f"AmortizedGuide: '{name}' holds integer ids but its number of "
                        f"categories is unknown; pass categories={{'{name}': K}}"
                    )
                self.embeds[name] = nn.Embedding(categories[name], width)
        rows = _rows_of(x)
        self.step_dim = self._step(x).shape[-1] if sequence else 0
        self.row_dim = self.row_features(x, obs).shape[-1] if rows else 0

    def _encode(self, name: str, value: torch.Tensor, keep: int) -> torch.Tensor:
        """Embed ids / flatten reals, keeping ``keep`` leading axes."""
        if name in self.embeds:
            value = cast(nn.Embedding, self.embeds[name])(value.long())
        else:
            value = value.to(torch.get_default_dtype())
        return value.reshape(*value.shape[:keep], -1)

    def _step(self, x: torch.Tensor) -> torch.Tensor:
        out = self._encode("x", x, 2)
        return out if out.dim() == 3 else out.unsqueeze(-1)

    def step_features(self, x: torch.Tensor) -> torch.Tensor:
        return self._step(x)

    def row_features(self, x: Any, obs: Mapping[str, Any]) -> torch.Tensor:
        parts = [] if self.sequence else [self._encode("x", x, 1).reshape(_rows_of(x), -1)]
        for name in self.obs_names:
            v = obs[name]
            parts.append(self._encode(name, v, 1).reshape(v.shape[0], -1))
        if not parts:
            return torch.zeros(_rows_of(x), 0, device=_device_of(x))
        return torch.cat(parts, dim=-1)


class _SiteHead(nn.Module):
    """Normal(loc, scale) over one local site's unconstrained event, from features."""

    def __init__(self, site: Site, in_dim: int, hidden: int, init_scale: float) -> None:
        super().__init__()
        self.name = site.name
        leaf = cast(torch.Tensor, site.trace)
        support = cast(constraints.Constraint, leaves(site.support)[0])
        self.transform = bijector(support)
        event = leaf.shape[1:]
        self.event = inverse_shape(self.transform, event) if self.transform else event
        size = int(self.event.numel())
        self.net = nn.Sequential(nn.Linear(in_dim, hidden), nn.Tanh(), nn.Linear(hidden, 2 * size))
        _start_near_zero(cast(nn.Linear, self.net[2]), size, init_scale)

    def loc_scale(self, features: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        loc, raw = self.net(features).chunk(2, dim=-1)
        return loc, F.softplus(raw)


class _SequenceHead(nn.Module):
    """The Deep Markov Model's structured guide for one trajectory site (batch, T, D).

    A backward GRU over the per-step input features (with the row's observation
    features appended at every step) gives g_t, a summary of x_t..x_T and the
    observations; the combiner makes q(z_t | z_{t-1}, g_t) a Normal whose loc and
    scale come from [g_t, z_{t-1}] (Krishnan et al., 2017, section 5).
    """

    def __init__(self, site: Site, step_dim: int, row_dim: int, hidden: int, scale: float):
        super().__init__()
        self.name = site.name
        leaf = cast(torch.Tensor, site.trace)
        support = cast(constraints.Constraint, leaves(site.support)[0])
        if bijector(support) is not None:
            raise ValueError(
                f"AmortizedGuide: the trajectory site '{site.name}' has support {support}; "
                "the sequence guide handles real-valued states"
            )
        self.dim = int(leaf.shape[-1])
        self.rnn = nn.GRU(step_dim + row_dim, hidden, batch_first=True)
        self.combine = nn.Sequential(
            nn.Linear(hidden + self.dim, hidden), nn.Tanh(), nn.Linear(hidden, 2 * self.dim)
        )
        _start_near_zero(cast(nn.Linear, self.combine[2]), self.dim, scale)

    def sample(self, steps: torch.Tensor, row: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        batch, length = steps.shape[0], steps.shape[1]
        inp = torch.cat((steps, row.unsqueeze(1).expand(batch, length, row.shape[-1])), dim=-1)
        summary, _ = self.rnn(inp.flip(1))  # backward in time: g_t sees x_t..x_T
        summary = summary.flip(1)
        z = steps.new_zeros(batch, self.dim)
        zs, log_q = [], steps.new_zeros(batch)
        for t in range(length):
            loc, raw = self.combine(torch.cat((summary[:, t], z), dim=-1)).chunk(2, dim=-1)
            scale = F.softplus(raw)
            eps = torch.randn_like(loc)
            z = loc + scale * eps
            log_q = log_q - (0.5 * eps.square() + scale.log()).sum(-1)
            zs.append(z)
        log_q = log_q - 0.5 * length * self.dim * math.log(2 * math.pi)
        if not zs:
            return steps.new_zeros(batch, 0, self.dim), log_q
        return torch.stack(zs, dim=1), log_q


class AmortizedGuide(LocalGuide):
    """An inference network for the local sites; a mean-field or delta guide for globals.

    Each local site is Normal in its unconstrained space (mapped to its support by
    the same bijection as the autoguides, with the Jacobian in ``log q``). A site
    whose trace is a trajectory (batch, T, D) over a sequence input (batch, T, ...)
    gets the structured recurrent guide of Krishnan et al. (2017); any other local
    site an MLP of the row's features. Integer inputs and observations are embedded:
    their number of categories comes from ``categories`` (``{"x": 256}``), from a
    discrete observed site's support, or from the model's input type when it is a
    finite set. ``hidden`` is the width of the networks. The parameter count depends
    on the model's shapes, never on the number of rows.
    """

    def __init__(
        self,
        model: Any,
        observed_names: Collection[str] | None = None,
        global_guide: str | None = "normal",
        init_scale: float = 0.1,
        hidden: int = 64,
        categories: Mapping[str, int] | None = None,
    ) -> None:
        super().__init__(model, observed_names, global_guide, init_scale)
        self.hidden = int(hidden)
        self._categories = dict(categories or {})
        self.features: _Features | None = None
        self.heads = nn.ModuleDict()
        self.sequence = False
        self.summary: nn.GRU | None = None  # a sequence summary for non-trajectory sites

    def _setup_local(
        self, trace: Mapping[str, Site], sites: dict[str, Site], x: Any, obs: dict[str, Any]
    ) -> None:
        if not isinstance(x, torch.Tensor):
            raise ValueError("AmortizedGuide needs the program input x as one tensor")
        categories = dict(self._categories)
        for name, site in trace.items():
            support = (
                cast(constraints.Constraint, leaves(site.support)[0]) if site.observed else None
            )
            if support is not None and support.is_discrete and name not in categories:
                upper = getattr(support, "upper_bound", None)
                if upper is not None:
                    categories[name] = int(upper) + 1
        dom = getattr(getattr(self.model, "decl", None), "dom", None)
        size = getattr(dom, "size", None)
        if "x" not in categories and isinstance(size, int):
            categories["x"] = size
        for name, site in sites.items():
            if len(leaves(site.trace)) != 1:
                raise ValueError(
                    f"AmortizedGuide: local site '{name}' has a composite trace; "
                    "it handles one tensor per site"
                )
        length = int(x.shape[1]) if x.dim() >= 2 else -1
        seq = {
            n
            for n, s in sites.items()
            if cast(torch.Tensor, s.trace).dim() == 3 and s.trace.shape[1] == length
        }
        ids_sequence = not x.is_floating_point() and x.dim() == 2
        real_sequence = x.is_floating_point() and x.dim() == 3
        self.sequence = bool(seq) and (ids_sequence or real_sequence)
        given = {n: v for n, v in obs.items() if n in self.observed_names}
        # built on the CPU (a shape probe runs through the new embeddings); setup then
        # moves the guide to the data's device
        cpu_given = {n: v.cpu() if isinstance(v, torch.Tensor) else v for n, v in given.items()}
        self.features = _Features(x.cpu(), cpu_given, categories, 16, self.sequence)
        for name, site in sites.items():
            if self.sequence and name in seq:
                self.heads[name] = _SequenceHead(
                    site,
                    self.features.step_dim,
                    self.features.row_dim,
                    self.hidden,
                    self.init_scale,
                )
            else:
                in_dim = self.features.row_dim + (self.hidden if self.sequence else 0)
                self.heads[name] = _SiteHead(site, in_dim, self.hidden, self.init_scale)
        if self.sequence and any(isinstance(h, _SiteHead) for h in self.heads.values()):
            self.summary = nn.GRU(self.features.step_dim, self.hidden, batch_first=True)

    def _sample_local(
        self, x: Any, obs: dict[str, Any], run: dict[str, Any]
    ) -> tuple[dict[str, Any], torch.Tensor]:
        assert self.features is not None
        row = self.features.row_features(x, obs)
        steps = self.features.step_features(x) if self.sequence else None
        values: dict[str, Any] = {}
        log_q = row.new_zeros(_rows_of(x))
        pooled = None
        for name in self.local_sites:
            head = self.heads[name]
            if isinstance(head, _SequenceHead):
                assert steps is not None
                z, lq = head.sample(steps, row)
                values[name] = z
                log_q = log_q + lq
                continue
            assert isinstance(head, _SiteHead)
            feats = row
            if self.sequence:
                if pooled is None:
                    assert self.summary is not None and steps is not None
                    pooled = self.summary(steps)[0][:, -1]
                feats = torch.cat((row, pooled), dim=-1)
            loc, scale = head.loc_scale(feats)
            eps = torch.randn_like(loc)
            u = loc + scale * eps
            lq = -(0.5 * eps.square() + scale.log()).sum(-1) - 0.5 * loc.shape[-1] * math.log(
                2 * math.pi
            )
            u = u.reshape((u.shape[0], *head.event))
            if head.transform is None:
                z = u
            else:
                z = head.transform(u)
                ladj = log_abs_det_jacobian(head.transform, u, z)
                lq = lq - ladj.reshape(u.shape[0], -1).sum(-1)
            values[name] = z
            log_q = log_q + lq
        return values, log_q
