"""Automatic variational families ("autoguides") over a model's latent sites.

A guide is an ``nn.Module`` that proposes values for every latent site of a model.
All three guides here live in the unconstrained space of
:class:`~quivers.inference.layout.LatentLayout` (ADVI: Kucukelbir et al., 2017,
"Automatic Differentiation Variational Inference", JMLR 18(14)):

- :class:`AutoNormalGuide`: mean-field Normal, one (loc, scale) per coordinate;
- :class:`AutoMultivariateNormalGuide`: full-rank Normal with a Cholesky factor;
- :class:`AutoDeltaGuide`: a point mass (MAP estimation in the constrained space).

Parameters are created **lazily**, on the first call with data, because site shapes
(e.g. a local trajectory of shape ``(batch, T, H)``) depend on ``x``. A guide built
before its first call therefore has no parameters; :class:`~quivers.inference.svi.SVI`
adds them to the optimiser when they appear (``optim.add_param_group``). Call
:meth:`AutoGuide.setup` yourself to create them earlier.

The guides are not amortised: a local site gets one variational factor per row, so
a guide set up for a batch of N rows refuses an ``x`` with another number of rows.
"""

from __future__ import annotations

import math
from collections.abc import Collection, Mapping
from dataclasses import dataclass
from typing import Any

import torch
from torch import nn
from torch.nn import functional as F

from quivers.inference.layout import LatentLayout, missing_observations
from quivers.runtime.trace import Model, TraceT

_LOG_2PI = math.log(2.0 * math.pi)


def inv_softplus(y: float) -> float:
    """The x with softplus(x) = y: where a softplus-parametrised scale starts."""
    return y + math.log(-math.expm1(-y))


@dataclass
class GuideDraw:
    """Latent traces drawn from a guide and their log density ``log q`` (constrained).

    With ``num_particles=K`` every trace has a leading dimension K and ``log_q`` has
    shape (K,); otherwise ``log_q`` is 0-d. A guide of local sites that are computed
    per row (:mod:`~quivers.inference.local_guides`) also reports ``log_q_rows``, the
    local sites' part of ``log_q`` row by row (shape (*particles, batch)): a minibatch
    ELBO scales it by N/B and counts the rest once.
    """

    values: dict[str, TraceT]
    log_q: torch.Tensor
    log_q_rows: torch.Tensor | None = None


INIT_STRATEGIES = ("feasible", "prior")


class AutoGuide(nn.Module):
    """Base class: lazy set-up from a model trace, draws through the layout.

    Where the guide starts: ``init_strategy="feasible"`` (the default, as Pyro's
    ``init_to_feasible``) puts every latent at the image of 0 in unconstrained
    space; ``"prior"`` starts from a draw of the model. ``init_loc`` overrides
    either for the sites it names. ``exclude`` names sites the guide leaves alone
    (another guide proposes them, e.g. the local sites of a
    :class:`~quivers.inference.local_guides.PriorGuide`). Subclasses implement
    ``_init_params(u0)`` and ``_sample_u(shape)``.
    """

    #: whether the guide has a density (False for the point mass)
    has_density: bool = True
    _model: Model  # set with object.__setattr__: not a submodule

    def __init__(
        self,
        model: Model,
        observed_names: Collection[str] | None = None,
        init_loc: Mapping[str, TraceT] | None = None,
        init_strategy: str = "feasible",
        exclude: Collection[str] = (),
    ) -> None:
        super().__init__()
        self.exclude: frozenset[str] = frozenset(exclude)
        if init_strategy not in INIT_STRATEGIES:
            raise ValueError(
                f"init_strategy must be one of {', '.join(INIT_STRATEGIES)}, got {init_strategy!r}"
            )
        self.init_strategy = init_strategy
        # Not a submodule: the model's parameters are not the guide's.
        object.__setattr__(self, "_model", model)
        names = observed_names if observed_names is not None else model.observed_names
        self.observed_names: frozenset[str] = frozenset(names)
        self._init_loc = dict(init_loc or {})
        self.layout: LatentLayout | None = None
        self._batch: int | None = None

    @property
    def model(self) -> Model:
        """The model (anything that satisfies the model protocol)."""
        return self._model

    @property
    def is_setup(self) -> bool:
        return self.layout is not None

    def setup(self, x: Any, observations: Mapping[str, Any] | None = None, **run: Any) -> None:
        """Create the parameters from one run of the model (no-op once done)."""
        obs = dict(observations or {})
        if self.layout is not None:
            n = self.layout.batch_size_of(x)
            if n != self._batch:
                raise ValueError(
                    f"{type(self).__name__} was set up for {self._batch} rows of local "
                    f"latent sites {list(self.layout.local_sites)}, got x with {n} rows; "
                    "this guide is not amortised: create a new guide for new data"
                )
            return
        missing_observations(self.observed_names, obs)
        with torch.no_grad():
            trace = self.model.trace(x, obs, **run)
        self._build(trace, set(self.observed_names) | set(obs) | self.exclude, x)

    def _setup_globals(self) -> None:
        """Create the parameters now when every latent site is global.

        A global site's shape does not depend on the data, so a model offering
        ``global_trace()`` (a draw of its global sites alone) lets the guide exist
        with its parameters before the first call: the reference recipe
        ``Adam(list(model.parameters()) + list(guide.parameters()))`` then works for a
        regression whose only latents are priors.
        """
        global_trace = getattr(self.model, "global_trace", None)
        if not callable(global_trace):
            return
        names = set(self.model.latent_names) | set(self.model.observed_names)
        wanted = names - set(self.observed_names) - self.exclude
        with torch.no_grad():
            trace = global_trace()
        if trace is None or not wanted or not wanted <= set(trace):
            return
        conditioned = set(self.observed_names) | self.exclude
        self._build({n: trace[n] for n in trace if n in wanted}, conditioned, None)

    def _build(self, trace: Mapping[str, Any], conditioned: set[str], x: Any) -> None:
        layout = LatentLayout.from_trace(trace, conditioned)
        if self.init_strategy == "feasible":
            # Pyro's default (init_to_feasible): the image of 0 in unconstrained space.
            zero = torch.zeros(layout.dim, dtype=layout.dtype, device=layout.device)
            start, _ = layout.constrain(zero, with_jacobian=False)
            init = {name: start[name] for name in layout.site_names}
        else:  # "prior": a draw of the model
            init = {name: trace[name].trace for name in layout.site_names}
        for name, value in self._init_loc.items():
            if name not in init:
                raise KeyError(f"init_loc names '{name}', which is not a latent site")
            init[name] = value
        u0 = layout.unconstrain(init).detach()
        self.layout = layout
        self._batch = layout.batch_size_of(x)
        self._init_params(u0)

    def _init_params(self, u0: torch.Tensor) -> None:
        raise NotImplementedError

    def _sample_u(self, shape: tuple[int, ...]) -> tuple[torch.Tensor, torch.Tensor]:
        """A draw u of shape (*shape, D) and log q(u) of shape ``shape``."""
        raise NotImplementedError

    def _loc(self) -> torch.Tensor:
        raise NotImplementedError

    def sample(
        self,
        x: Any,
        observations: Mapping[str, Any] | None = None,
        num_particles: int | None = None,
        **run: Any,
    ) -> GuideDraw:
        """Draw every latent trace (reparameterised) and its log density."""
        self.setup(x, observations, **run)
        assert self.layout is not None
        shape = () if num_particles is None else (int(num_particles),)
        u, log_qu = self._sample_u(shape)
        values, ladj = self.layout.constrain(u, with_jacobian=self.has_density)
        log_q = log_qu - ladj if self.has_density else log_qu
        return GuideDraw(values, log_q)

    def forward(
        self, x: Any, observations: Mapping[str, Any] | None = None, **run: Any
    ) -> dict[str, TraceT]:
        return self.sample(x, observations, **run).values

    @torch.no_grad()
    def median(self) -> dict[str, TraceT]:
        """The constrained image of the guide's location (its median per site)."""
        if self.layout is None:
            raise RuntimeError("the guide has not been set up yet (call it with data)")
        return self.layout.constrain(self._loc().detach(), with_jacobian=False)[0]


class AutoNormalGuide(AutoGuide):
    """Mean-field Normal guide in unconstrained space (ADVI's mean-field family).

    q(u) = prod_i Normal(u_i; loc_i, scale_i), scale = softplus(raw) starting at
    ``init_scale``; ``loc`` starts where ``init_strategy`` says (see :class:`AutoGuide`).
    Kucukelbir et al. (2017), section 2.
    """

    def __init__(
        self,
        model: Model,
        observed_names: Collection[str] | None = None,
        init_scale: float = 0.1,
        init_loc: Mapping[str, TraceT] | None = None,
        init_strategy: str = "feasible",
        exclude: Collection[str] = (),
    ) -> None:
        super().__init__(model, observed_names, init_loc, init_strategy, exclude)
        if init_scale <= 0:
            raise ValueError(f"init_scale must be positive, got {init_scale}")
        self.init_scale = float(init_scale)
        self.loc: nn.Parameter | None = None
        self.scale_raw: nn.Parameter | None = None
        self._setup_globals()

    def _init_params(self, u0: torch.Tensor) -> None:
        self.loc = nn.Parameter(u0.clone())
        self.scale_raw = nn.Parameter(torch.full_like(u0, inv_softplus(self.init_scale)))

    @property
    def scale(self) -> torch.Tensor:
        assert self.scale_raw is not None, "guide not set up"
        return F.softplus(self.scale_raw)

    def _loc(self) -> torch.Tensor:
        assert self.loc is not None, "guide not set up"
        return self.loc

    def _sample_u(self, shape: tuple[int, ...]) -> tuple[torch.Tensor, torch.Tensor]:
        loc, scale = self._loc(), self.scale
        eps = torch.randn(shape + loc.shape, dtype=loc.dtype, device=loc.device)
        u = loc + scale * eps
        log_q = (-0.5 * eps.square() - scale.log()).sum(-1) - 0.5 * loc.numel() * _LOG_2PI
        return u, log_q

    def site_loc_scale(self, name: str) -> tuple[torch.Tensor, torch.Tensor]:
        """Unconstrained (loc, scale) of one site's leaves, concatenated and flat."""
        assert self.layout is not None, "guide not set up"
        idx = [
            torch.arange(s.start, s.start + s.size, device=self.layout.device)
            for s in self.layout.slots
            if s.site == name
        ]
        if not idx:
            raise KeyError(f"'{name}' is not a latent site of this guide")
        i = torch.cat(idx)
        return self._loc().detach()[i], self.scale.detach()[i]


class AutoDeltaGuide(AutoGuide):
    """A point mass at ``loc`` (log q = 0): SVI with it is MAP estimation.

    The density maximised is the model's, in the constrained space (no Jacobian).
    """

    has_density = False

    def __init__(
        self,
        model: Model,
        observed_names: Collection[str] | None = None,
        init_loc: Mapping[str, TraceT] | None = None,
        init_strategy: str = "feasible",
        exclude: Collection[str] = (),
    ) -> None:
        super().__init__(model, observed_names, init_loc, init_strategy, exclude)
        self.loc: nn.Parameter | None = None
        self._setup_globals()

    def _init_params(self, u0: torch.Tensor) -> None:
        self.loc = nn.Parameter(u0.clone())

    def _loc(self) -> torch.Tensor:
        assert self.loc is not None, "guide not set up"
        return self.loc

    def _sample_u(self, shape: tuple[int, ...]) -> tuple[torch.Tensor, torch.Tensor]:
        loc = self._loc()
        return loc.expand(shape + loc.shape), loc.new_zeros(shape)


class AutoMultivariateNormalGuide(AutoGuide):
    """Full-rank Normal guide in unconstrained space (ADVI's full-rank family).

    q(u) = Normal(u; loc, L L^T) with L lower triangular, its diagonal positive through
    softplus and initialised to ``init_scale``. Memory is O(D^2): meant for models
    with up to a few thousand latent coordinates.
    """

    def __init__(
        self,
        model: Model,
        observed_names: Collection[str] | None = None,
        init_scale: float = 0.1,
        init_loc: Mapping[str, TraceT] | None = None,
        init_strategy: str = "feasible",
        exclude: Collection[str] = (),
    ) -> None:
        super().__init__(model, observed_names, init_loc, init_strategy, exclude)
        if init_scale <= 0:
            raise ValueError(f"init_scale must be positive, got {init_scale}")
        self.init_scale = float(init_scale)
        self.loc: nn.Parameter | None = None
        self.tril_raw: nn.Parameter | None = None
        self.diag_raw: nn.Parameter | None = None
        self._setup_globals()

    def _init_params(self, u0: torch.Tensor) -> None:
        d = u0.numel()
        self.loc = nn.Parameter(u0.clone())
        self.tril_raw = nn.Parameter(u0.new_zeros(d, d))
        self.diag_raw = nn.Parameter(torch.full_like(u0, inv_softplus(self.init_scale)))

    def _loc(self) -> torch.Tensor:
        assert self.loc is not None, "guide not set up"
        return self.loc

    @property
    def scale_tril(self) -> torch.Tensor:
        assert self.tril_raw is not None and self.diag_raw is not None, "guide not set up"
        return torch.tril(self.tril_raw, -1) + torch.diag_embed(F.softplus(self.diag_raw))

    @property
    def covariance(self) -> torch.Tensor:
        lower = self.scale_tril
        return lower @ lower.T

    def _sample_u(self, shape: tuple[int, ...]) -> tuple[torch.Tensor, torch.Tensor]:
        loc, lower = self._loc(), self.scale_tril
        eps = torch.randn(shape + loc.shape, dtype=loc.dtype, device=loc.device)
        u = loc + eps @ lower.T
        log_det = torch.diagonal(lower).log().sum()
        log_q = -0.5 * eps.square().sum(-1) - log_det - 0.5 * loc.numel() * _LOG_2PI
        return u, log_q
