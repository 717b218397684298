"""Inference for any model that follows the model protocol.

A model is anything that satisfies :class:`Model` (``quivers.runtime.trace``):
``trace``, ``log_joint``, ``rsample``, ``observed_names``, ``latent_names`` and its
parameters (``docs/dev/model-protocol.md``); compiled QVR programs are such modules,
but nothing here imports the front end.

- guides (:mod:`.guides`): :class:`AutoNormalGuide`, :class:`AutoDeltaGuide`,
  :class:`AutoMultivariateNormalGuide`;
- objective (:mod:`.elbo`): :class:`ELBO`; driver (:mod:`.svi`): :class:`SVI`;
- kernels (:mod:`.hmc`, :mod:`.nuts`): :class:`HMCKernel`, :class:`NUTSKernel`;
  driver (:mod:`.mcmc`): :class:`MCMC`, :class:`MCMCResult`;
- :class:`Predictive`; lifting (:mod:`.lift`): :func:`bayesian_lift_parameters`,
  :func:`lift_from_log_prob`, :func:`lift_to_bayesian_program`;
- :func:`trace` (:mod:`.trace`): one run of a model as a :class:`Trace`;
- diagnostics (:mod:`.diagnostics`): ``r_hat``, ``ess``;
- progress and cancellation (:mod:`.progress`).

Names of the published quivers' inference package that we do not provide raise an
``ImportError`` saying what to use instead (:data:`NOT_PROVIDED`).
"""

from typing import NoReturn

from quivers.inference.compile import CompileFallbackWarning
from quivers.inference.elbo import ELBO
from quivers.inference.guides import (
    AutoDeltaGuide,
    AutoGuide,
    AutoMultivariateNormalGuide,
    AutoNormalGuide,
)
from quivers.inference.hmc import HMCKernel
from quivers.inference.lift import (
    LiftedModel,
    ObservedDensity,
    bayesian_lift_parameters,
    lift_from_log_prob,
    lift_to_bayesian_program,
)
from quivers.inference.mcmc import MCMC, MCMCResult
from quivers.inference.nuts import NUTSKernel
from quivers.inference.predictive import Predictive
from quivers.inference.progress import InferenceCancelled, ProgressInfo
from quivers.inference.svi import SVI
from quivers.inference.trace import trace
from quivers.runtime.trace import Model, Site, Trace

_GUIDES = "AutoNormalGuide, AutoMultivariateNormalGuide or AutoDeltaGuide"
_OBJECTIVE = "ELBO (the only objective; num_particles=K averages K draws)"
# name -> what to use instead
NOT_PROVIDED: dict[str, str] = {
    "monte_carlo_log_joint": (
        "bayesian_lift_parameters(..., additional_latents={name: shape}), which keeps "
        "the model's own latent sites as latents of the exact lifted density"
    ),
    "condition": "pass the observed values as the observations mapping of trace/SVI/MCMC",
    "Conditioned": "pass the observed values as the observations mapping of trace/SVI/MCMC",
    "LatentRegistry": "quivers.inference.layout.LatentLayout.from_trace(model.trace(x, obs), obs)",
    "SampleSite": "quivers.inference.Site",
    "AutoLowRankMultivariateNormalGuide": _GUIDES,
    "AutoLaplaceApproximation": _GUIDES,
    "AutoNormalizingFlow": _GUIDES,
    "AutoIAFGuide": _GUIDES,
    "AutoNeuralSplineGuide": _GUIDES,
    "AutoMixtureGuide": _GUIDES,
    "AutoGuideList": _GUIDES,
    "AutoStructured": _GUIDES,
    "AutoDAIS": _GUIDES,
    "AutoNormal": "AutoNormalGuide",
    "AutoMultivariateNormal": "AutoMultivariateNormalGuide",
    "AutoDelta": "AutoDeltaGuide",
    "Objective": _OBJECTIVE,
    "IWAEBound": _OBJECTIVE,
    "RenyiBound": _OBJECTIVE,
    "VRIWAEBound": _OBJECTIVE,
    "DReGsBound": _OBJECTIVE,
    "ChiVI": _OBJECTIVE,
    "RWS": _OBJECTIVE,
    "WarmupThenHMC": "MCMC(HMCKernel(...) or NUTSKernel(...), num_warmup=...), which adapts during warmup",
    "MCMCKernel": "HMCKernel or NUTSKernel",
}


def __getattr__(name: str) -> NoReturn:
    if name in NOT_PROVIDED:
        raise ImportError(
            f"quivers.inference.{name} is not provided by this implementation; "
            f"use {NOT_PROVIDED[name]}",
            name=name,
        )
    raise AttributeError(f"module 'quivers.inference' has no attribute '{name}'")


__all__ = [
    "ELBO",
    "MCMC",
    "SVI",
    "AutoDeltaGuide",
    "AutoGuide",
    "AutoMultivariateNormalGuide",
    "AutoNormalGuide",
    "CompileFallbackWarning",
    "HMCKernel",
    "InferenceCancelled",
    "LiftedModel",
    "MCMCResult",
    "Model",
    "NUTSKernel",
    "Predictive",
    "ObservedDensity",
    "ProgressInfo",
    "Site",
    "Trace",
    "bayesian_lift_parameters",
    "lift_from_log_prob",
    "lift_to_bayesian_program",
    "trace",
]
