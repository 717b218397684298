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
- :class:`Predictive`; :func:`bayesian_lift_parameters`;
- diagnostics (:mod:`.diagnostics`): ``r_hat``, ``ess``;
- progress and cancellation (:mod:`.progress`).
"""

from quivers.inference.elbo import ELBO
from quivers.inference.guides import (
    AutoDeltaGuide,
    AutoGuide,
    AutoMultivariateNormalGuide,
    AutoNormalGuide,
)
from quivers.inference.hmc import HMCKernel
from quivers.inference.lift import LiftedModel, bayesian_lift_parameters
from quivers.inference.mcmc import MCMC, MCMCResult
from quivers.inference.nuts import NUTSKernel
from quivers.inference.predictive import Predictive
from quivers.inference.progress import InferenceCancelled, ProgressInfo
from quivers.inference.svi import SVI
from quivers.runtime.trace import Model, Site

__all__ = [
    "ELBO",
    "MCMC",
    "SVI",
    "AutoDeltaGuide",
    "AutoGuide",
    "AutoMultivariateNormalGuide",
    "AutoNormalGuide",
    "HMCKernel",
    "InferenceCancelled",
    "LiftedModel",
    "MCMCResult",
    "Model",
    "NUTSKernel",
    "Predictive",
    "ProgressInfo",
    "Site",
    "bayesian_lift_parameters",
]
