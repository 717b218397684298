"""Lifting a model's learnable parameters to latent sites (fully Bayesian treatment).

``bayesian_lift_parameters(model, x, observations, prior_scale, additional_latents)``
returns ``(lifted, lx, lobs)``: ``lifted`` follows the model protocol and has one
global latent site per learnable parameter of ``model`` (named by its parameter name,
prior Normal(0, prior_scale) per entry), followed by the model's own latent sites
listed in ``additional_latents``. Its log density is exactly

    log p(theta) + log p(h, y | x, theta),

the second term being ``model.log_joint`` evaluated with the parameters replaced by
theta, functional-call style: for the duration of the call, every slot of a
module's parameter dict that holds a lifted parameter holds theta instead, and the
originals are put back afterwards (so gradients reach theta, the model is unchanged,
and a parameter shared by several submodules is one site, substituted everywhere).
We swap the slots ourselves rather than call :func:`torch.func.functional_call`
because, in torch 2.13, the latter leaves the substituted tensor in place of the
parameter when one submodule is registered under two names (its tied-weight
bookkeeping saves the already-substituted value as the "original").
``lx`` and ``lobs`` are the inputs to pass to inference with ``lifted``.
"""

from __future__ import annotations

import contextlib
import math
from collections.abc import Callable, Iterator, Mapping
from typing import Any, cast

import torch
from torch import nn
from torch.distributions import constraints

from quivers.runtime.trace import Model, Site, Trace, TraceT, leaves

Slots = dict[str, list[tuple[nn.Module, str]]]


def _parameter_slots(model: Model) -> Slots:
    """For each parameter (by its first name), every (module, attribute) holding it."""
    if not isinstance(model, nn.Module):  # the slots to substitute are a module tree's
        raise TypeError(f"lifting needs a torch.nn.Module model, got {type(model).__name__}")
    canonical = {id(p): n for n, p in model.named_parameters()}
    slots: Slots = {n: [] for n in canonical.values()}
    seen: set[tuple[int, str]] = set()
    for _, module in model.named_modules(remove_duplicate=False):
        for attr, p in module._parameters.items():
            if p is None or (id(module), attr) in seen:
                continue
            seen.add((id(module), attr))
            slots[canonical[id(p)]].append((module, attr))
    return slots


@contextlib.contextmanager
def _substituted(slots: Slots, theta: Mapping[str, torch.Tensor]) -> Iterator[None]:
    saved: list[tuple[nn.Module, str, Any]] = []
    try:
        for name, value in theta.items():
            for module, attr in slots[name]:
                saved.append((module, attr, module._parameters[attr]))
                module._parameters[attr] = value  # type: ignore[assignment]
        yield
    finally:
        for module, attr, original in reversed(saved):
            module._parameters[attr] = original


def _shape_of(trace: TraceT) -> Any:
    if isinstance(trace, tuple | list):
        return tuple(_shape_of(t) for t in trace)
    return tuple(trace.shape)


def _normalise_shape(shape: Any) -> Any:
    if isinstance(shape, torch.Size):
        return tuple(shape)
    if isinstance(shape, tuple | list) and shape and isinstance(shape[0], tuple | list):
        return tuple(_normalise_shape(s) for s in shape)
    return tuple(shape) if isinstance(shape, tuple | list) else shape


class LiftedModel(nn.Module):
    """A protocol-conforming model whose latents are ``base``'s parameters and the
    lifted local/global latent sites of ``base``. It has no learnable parameters."""

    _base: Model  # set with object.__setattr__: not a submodule

    def __init__(
        self,
        base: Model,
        prior_scale: float,
        param_names: tuple[str, ...],
        param_shapes: Mapping[str, torch.Size],
        param_dtypes: Mapping[str, torch.dtype],
        lifted_sites: tuple[str, ...],
    ) -> None:
        super().__init__()
        object.__setattr__(self, "_base", base)  # hidden: the lifted model has no parameters
        self._slots = _parameter_slots(base)
        self.prior_scale = float(prior_scale)
        self.param_names = param_names
        self.param_shapes = dict(param_shapes)
        self.param_dtypes = dict(param_dtypes)
        self.lifted_sites = lifted_sites
        self.latent_names: tuple[str, ...] = param_names + lifted_sites
        self.observed_names: frozenset[str] = frozenset(base.observed_names)

    @property
    def base(self) -> Model:
        return self._base

    def _prior_log_prob(self, theta: torch.Tensor) -> torch.Tensor:
        s = self.prior_scale
        return (-0.5 * (theta / s).square() - math.log(s) - 0.5 * math.log(2 * math.pi)).sum()

    def _prior_total(self, thetas: list[torch.Tensor]) -> torch.Tensor:
        """The summed prior log density of every lifted parameter: one squared norm
        per parameter and one affine map (per-parameter densities cost a dozen
        operations each, forward and backward, on every leapfrog step)."""
        if not thetas:
            return torch.zeros(())
        s = self.prior_scale
        flat = [t.reshape(-1) for t in thetas]
        squares = [f.dot(f) for f in flat]
        total = squares[0] if len(squares) == 1 else torch.stack(squares).sum()
        count = sum(f.numel() for f in flat)
        return (-0.5 / (s * s)) * total - count * (math.log(s) + 0.5 * math.log(2 * math.pi))

    def _split(self, values: Mapping[str, Any]) -> tuple[dict[str, torch.Tensor], dict[str, Any]]:
        theta = {n: values[n] for n in self.param_names if n in values}
        rest = {k: v for k, v in values.items() if k not in self.param_shapes}
        return theta, rest

    def _call(self, theta: Mapping[str, torch.Tensor], method: str, *args: Any, **kw: Any) -> Any:
        with _substituted(self._slots, theta):
            return getattr(self._base, method)(*args, **kw)

    def _draw_theta(self, given: Mapping[str, Any]) -> dict[str, torch.Tensor]:
        theta = {}
        for n in self.param_names:
            if n in given:
                theta[n] = given[n]
            else:
                shape, dtype = self.param_shapes[n], self.param_dtypes[n]
                device = next(iter(self.base.parameters()), torch.zeros(())).device
                theta[n] = torch.randn(shape, dtype=dtype, device=device) * self.prior_scale
        return theta

    def _parameter_sites(self, theta: Mapping[str, torch.Tensor]) -> Trace:
        sites = Trace()
        for n in self.param_names:
            sites[n] = Site(
                name=n,
                trace=theta[n],
                value=theta[n],
                log_prob=self._prior_log_prob(theta[n]),
                support=constraints.real,
                observed=False,
                is_global=True,
            )
        return sites

    def trace(self, x: Any, observations: Mapping[str, Any] | None = None, **run: Any) -> Trace:
        given = dict(observations or {})
        theta_given, rest = self._split(given)
        theta = self._draw_theta(theta_given)
        sites = self._parameter_sites(theta)
        inner = self._call(theta, "trace", x, rest, **run)
        sites.update(inner)
        return sites

    def global_trace(self, **run: Any) -> Trace:
        """The global sites without any input: every lifted parameter (a prior draw)
        and the base model's own global sites. A guide builds its parameters from
        this at construction, so ``Adam(list(model.parameters()) +
        list(guide.parameters()))`` works on a lifted model (which has none itself)."""
        theta = self._draw_theta({})
        sites = self._parameter_sites(theta)
        if callable(getattr(self._base, "global_trace", None)):
            sites.update(self._call(theta, "global_trace", **run) or {})
        return sites

    def log_joint(self, x: Any, values: Mapping[str, Any], **run: Any) -> torch.Tensor:
        theta, rest = self._split(values)
        missing = [n for n in self.param_names if n not in theta]
        if missing:
            raise KeyError(f"log_joint needs a value for every lifted parameter; missing {missing}")
        prior = self._prior_total([theta[n] for n in self.param_names])
        inner: torch.Tensor = self._call(theta, "log_joint", x, rest, **run)
        return prior + inner

    def rsample(self, x: Any, observations: Mapping[str, Any] | None = None, **run: Any) -> Any:
        theta_given, rest = self._split(dict(observations or {}))
        return self._call(self._draw_theta(theta_given), "rsample", x, rest, **run)


def bayesian_lift_parameters(
    model: Model,
    x: Any,
    observations: Mapping[str, Any] | None = None,
    prior_scale: float = 1.0,
    additional_latents: Mapping[str, Any] | None = None,
    **run: Any,
) -> tuple[LiftedModel, Any, dict[str, Any]]:
    """Make every learnable parameter of ``model`` a latent site with a
    Normal(0, ``prior_scale``) prior; ``additional_latents`` maps the model's own
    latent sites to keep as latents to their trace shapes (checked against a run of
    the model, ``None`` to skip the check). Every latent site of ``model`` must be
    either listed there or given in ``observations``.

    Returns ``(lifted, lx, lobs)``; pass ``lifted, lx, lobs`` to ``MCMC.run`` or SVI.
    """
    if prior_scale <= 0:
        raise ValueError(f"prior_scale must be positive, got {prior_scale}")
    obs = dict(observations or {})
    extra = dict(additional_latents or {})
    named = list(model.named_parameters())  # shared parameters appear once
    names = tuple(n for n, p in named if p.requires_grad)
    shapes = {n: p.shape for n, p in named if p.requires_grad}
    dtypes = {n: p.dtype for n, p in named if p.requires_grad}
    clash = sorted(set(names) & (set(obs) | set(extra)))
    if clash:
        raise ValueError(f"parameter names {clash} collide with site or data names")
    with torch.no_grad():
        trace = model.trace(x, obs, **run)
    unknown = sorted(set(extra) - set(trace))
    if unknown:
        raise ValueError(
            f"additional_latents names {unknown}, which are not sites of the model "
            f"(sites: {list(trace)})"
        )
    for name, site in trace.items():
        if site.observed or name in obs:
            if name in extra:
                raise ValueError(f"site '{name}' is observed; it cannot also be lifted")
            continue
        if name not in extra:
            raise ValueError(
                f"latent site '{name}' is neither observed nor lifted: list it in "
                f"additional_latents (shape {_shape_of(site.trace)}) or give its value "
                "in observations"
            )
        want = extra[name]
        got = _shape_of(site.trace)
        if want is not None and _normalise_shape(want) != got:
            raise ValueError(
                f"additional_latents['{name}'] has shape {tuple(want)}, but the model's "
                f"site '{name}' has trace shape {got}"
            )
        for leaf in cast(list[constraints.Constraint], leaves(site.support)):
            if leaf.is_discrete:
                raise ValueError(f"latent site '{name}' is discrete and cannot be lifted")
    lifted_sites = tuple(n for n in trace if n in extra)
    lifted = LiftedModel(model, prior_scale, names, shapes, dtypes, lifted_sites)
    lobs = {k: v for k, v in obs.items() if k not in extra}
    return lifted, x, lobs


LogProbFn = Callable[[Any, Any], torch.Tensor]


class ObservedDensity(nn.Module):
    """A model with one observed site ``target_key`` whose log density is given by a
    function of the input and the observation; its parameters are ``base``'s.

    This is what :func:`lift_from_log_prob` and :func:`lift_to_bayesian_program`
    lift: a parameter-only module (no ``sample`` steps) plus a likelihood. ``draw``,
    when given, samples the observation (``rsample``); a density alone cannot.
    """

    latent_names: tuple[str, ...] = ()

    def __init__(
        self,
        base: nn.Module,
        target_key: str,
        log_prob_fn: LogProbFn,
        draw: Callable[[Any], torch.Tensor] | None = None,
    ) -> None:
        super().__init__()
        self.base = base  # a submodule: its parameters are this model's
        self.target_key = target_key
        self.observed_names: frozenset[str] = frozenset({target_key})
        self._log_prob_fn = log_prob_fn
        self._draw = draw

    def named_parameters(
        self, prefix: str = "", recurse: bool = True, remove_duplicate: bool = True
    ) -> Iterator[tuple[str, nn.Parameter]]:
        """``base``'s parameters under ``base``'s own names, so that the lifted sites
        are named as ``model.named_parameters()`` names them (no ``base.`` prefix)."""
        return self.base.named_parameters(prefix, recurse, remove_duplicate)

    def _site_log_prob(self, x: Any, y: Any) -> torch.Tensor:
        lp = self._log_prob_fn(x, y)
        if not isinstance(lp, torch.Tensor):
            raise TypeError(
                f"site '{self.target_key}': the log density must be a tensor, "
                f"got {type(lp).__name__}"
            )
        return lp.flatten(1).sum(1) if lp.dim() > 1 else lp  # per row, or 0-d

    def _observation(self, values: Mapping[str, Any] | None) -> Any:
        if values is None or self.target_key not in values:
            if self._draw is None:
                raise KeyError(
                    f"site '{self.target_key}': missing observation; a model given by its "
                    "log density alone cannot draw it"
                )
            return None
        return values[self.target_key]

    def trace(self, x: Any, observations: Mapping[str, Any] | None = None, **run: Any) -> Trace:
        y = self._observation(observations)
        if y is None:
            assert self._draw is not None
            y = self._draw(x)
        lp = self._site_log_prob(x, y)
        site = Site(self.target_key, y, y, lp, constraints.real, True, lp.dim() == 0)
        return Trace({self.target_key: site})

    def log_joint(self, x: Any, values: Mapping[str, Any], **run: Any) -> torch.Tensor:
        y = self._observation(values)
        if y is None:
            raise KeyError(f"log_joint needs a value for site '{self.target_key}'")
        return self._site_log_prob(x, y).sum()

    def rsample(self, x: Any, observations: Mapping[str, Any] | None = None, **run: Any) -> Any:
        return self.trace(x, observations, **run)[self.target_key].value


def lift_from_log_prob(
    model: nn.Module,
    log_prob_fn: LogProbFn,
    target_key: str,
    x: Any,
    observations: Mapping[str, Any],
    parameter_prior_scale: float = 1.0,
) -> tuple[LiftedModel, Any, dict[str, Any]]:
    """Lift a parameter-only ``model`` whose likelihood is ``log_prob_fn(x, y)``
    (``y = observations[target_key]``; a tensor per row or 0-d): every parameter of
    ``model`` gets a Normal(0, ``parameter_prior_scale``) prior, and the lifted log
    density is exactly ``log p(theta) + log_prob_fn(x, y)`` summed over rows with
    the parameters set to theta. Returns ``(lifted, lx, lobs)``.
    """
    wrapped = ObservedDensity(model, target_key, log_prob_fn)
    return bayesian_lift_parameters(wrapped, x, observations, parameter_prior_scale)


def lift_to_bayesian_program(
    model: nn.Module,
    location_fn: Callable[[Any], torch.Tensor],
    observation_family: Callable[..., torch.distributions.Distribution],
    target_key: str,
    x: Any,
    observations: Mapping[str, Any],
    observation_kwargs: Mapping[str, Any] | None = None,
    parameter_prior_scale: float = 1.0,
) -> tuple[LiftedModel, Any, dict[str, Any]]:
    """Lift a parameter-only ``model`` observed through a distribution family:
    ``y = observations[target_key]`` has density
    ``observation_family(location_fn(x), **observation_kwargs)`` (its first
    argument is the location, e.g. ``torch.distributions.Normal``), summed over
    every entry of a row. Every parameter gets a Normal(0, ``parameter_prior_scale``)
    prior. Returns ``(lifted, lx, lobs)``.
    """
    kwargs = dict(observation_kwargs or {})

    def family(inp: Any) -> torch.distributions.Distribution:
        return observation_family(location_fn(inp), **kwargs)

    wrapped = ObservedDensity(
        model, target_key, lambda inp, y: family(inp).log_prob(y), lambda inp: family(inp).sample()
    )
    return bayesian_lift_parameters(wrapped, x, observations, parameter_prior_scale)
