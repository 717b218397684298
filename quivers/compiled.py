"""The compiled program users get from :func:`quivers.dsl.load`: a ``torch.nn.Module``.

It lives apart from ``quivers.dsl`` so that importing ``quivers.dsl`` (and with it
``load``/``loads``) does not import torch; torch is imported when a program is built.
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import torch
from torch import nn

if TYPE_CHECKING:
    from quivers.runtime.build import BuiltModule
    from quivers.runtime.deduction.module import Deduction
    from quivers.runtime.trace import Trace
    from quivers.semantic.model import Analysis


@dataclass
class EntryRun:
    """One run of a named declaration (:meth:`Program.run`).

    ``value`` is what it returns; ``trace`` its sites and ``log_joint`` the exact
    total log density of the run (scores included) for a ``program``, None for a
    morphism or ``let``.
    """

    value: Any
    trace: Trace | None
    log_joint: torch.Tensor | None


class Program(nn.Module):
    """A compiled QVR module, as a ``torch.nn.Module``.

    ``morphism`` is the first export; every later export that is a bare name is an
    attribute of the same name. ``module`` holds every built declaration, and
    ``analysis`` the checker's view of the source (types, symbols, warnings).
    ``parameters()``, ``named_parameters()`` and ``.to(...)`` cover every
    declaration (shared ones once). Calling the program runs its first export (see
    :meth:`forward`); :meth:`run` runs any declaration by name. It also follows the
    model protocol (``trace``, ``log_joint``, ...) by delegating to ``morphism``.
    """

    def __init__(self, analysis: Analysis, module: BuiltModule, path: str) -> None:
        super().__init__()
        self.analysis = analysis
        self.module = module
        self.path = path
        self.root = module.root  # a submodule: every declaration's parameters
        self.exports: dict[str, nn.Module] = {}
        for name, built in module.exports[1:]:
            if name is not None:
                self.exports[name] = built

    @property
    def deductions(self) -> dict[str, Deduction]:
        """Every `deduction` block by name (also when the file exports nothing)."""
        return self.module.deductions

    @property
    def morphism(self) -> nn.Module:
        if not self.module.exports:
            raise AttributeError(self._no_export_message())
        return self.module.main

    def _no_export_message(self) -> str:
        if self.module.deductions:
            names = ", ".join(sorted(self.module.deductions))
            return (
                f"{self.path} exports nothing: its deduction blocks ({names}) are in "
                "prog.deductions; fit them with quivers.stochastic.deduction.adam_fit_deduction"
            )
        return f"{self.path} exports nothing: add `export <program>`"

    def __getattr__(self, name: str) -> Any:
        try:
            return super().__getattr__(name)  # parameters, buffers, submodules
        except AttributeError:
            pass
        exports = self.__dict__.get("exports", {})
        if name in exports:
            return exports[name]
        if name == "morphism":
            # Python retries a property that raised AttributeError here: keep its message
            raise AttributeError(self._no_export_message())
        raise AttributeError(f"{self.path} has no export named '{name}'")

    def __repr__(self) -> str:
        names = [n or "<expr>" for n, _ in self.module.exports]
        return f"Program({self.path!r}, exports={names})"

    # ------------------------------------------------------------- running
    def forward(self, x: Any = None, **run: Any) -> Any:
        """Run the first export: without ``x``, the matrix of a finite-set relation
        (``prog(n_steps=4)`` gives ``repeat`` its count); with ``x``, a draw of its
        value (for a ``program``, ``observations=`` may be given too)."""
        return _call(self.morphism, "export", x, run)

    def run(
        self,
        name: str,
        x: Any = None,
        observations: Mapping[str, Any] | None = None,
        seed: int | None = None,
        **run: Any,
    ) -> EntryRun:
        """Run the declaration ``name`` (a program, morphism or ``let``) once.

        A program runs on ``x`` with ``observations`` substituted and returns its
        value, trace and exact log joint; a morphism or ``let`` returns its value
        (its matrix when finite and ``x`` is None). ``seed`` seeds torch first.
        """
        from quivers.runtime.program import ProgramModule

        node = self._declaration(name)
        if seed is not None:
            torch.manual_seed(seed)
        if isinstance(node, ProgramModule):
            if x is None:
                raise TypeError(f"program '{name}' needs an input x")
            value, sites, log_joint = node.traced_run(x, observations, **run)
            return EntryRun(value, sites, log_joint)
        if observations:
            raise TypeError(f"'{name}' is not a program: it takes no observations")
        return EntryRun(_call(node, name, x, run), None, None)

    def _declaration(self, name: str) -> nn.Module:
        for table in (self.module.programs, self.module.lets, self.module.morphisms):
            if name in table:
                return table[name]
        known = sorted({*self.module.programs, *self.module.lets, *self.module.morphisms})
        raise KeyError(f"{self.path} declares no program, morphism or let '{name}' (has {known})")

    # ------------------------------------------------------ model protocol
    @property
    def observed_names(self) -> frozenset[str]:
        return frozenset(getattr(self.morphism, "observed_names", frozenset()))

    @property
    def latent_names(self) -> Sequence[str]:
        return tuple(getattr(self.morphism, "latent_names", ()))

    def trace(self, x: Any, observations: Mapping[str, Any] | None = None, **run: Any) -> Trace:
        return self._program("trace").trace(x, observations, **run)

    def log_joint(self, x: Any, values: Mapping[str, Any], **run: Any) -> torch.Tensor:
        return self._program("log_joint").log_joint(x, values, **run)

    def rsample(self, x: Any, observations: Mapping[str, Any] | None = None, **run: Any) -> Any:
        return self._program("rsample").rsample(x, observations, **run)

    def _program(self, method: str) -> Any:
        from quivers.runtime.program import ProgramModule

        main = self.morphism
        if not isinstance(main, ProgramModule):
            raise TypeError(
                f"{method}: the first export of {self.path} is not a program; "
                "call the Program (prog(...)) or use prog.morphism"
            )
        return main

    def named_declarations(self) -> Iterator[tuple[str, nn.Module]]:
        """Every built program, let and morphism by name."""
        yield from self.module.programs.items()
        yield from self.module.lets.items()
        yield from self.module.morphisms.items()


def _call(node: nn.Module, name: str, x: Any, run: dict[str, Any]) -> Any:
    from quivers.runtime.export import ExportModel
    from quivers.runtime.node import RelationMixin

    if x is None and isinstance(node, ExportModel):
        node = node.inner  # an exported relation is still its matrix
    if x is None:
        if isinstance(node, RelationMixin):
            return node.relation(**run)
        raise TypeError(
            f"'{name}' is not a relation between finite sets: give it an input, prog(x)"
        )
    return node(x, **run)


__all__ = ["EntryRun", "Program"]
