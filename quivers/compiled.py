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

    def __init__(
        self,
        analysis: Analysis,
        module: BuiltModule,
        path: str,
        text: str | None = None,
        bound: Mapping[str, Mapping[str, float | int]] | None = None,
        focus: str | None = None,
    ) -> None:
        super().__init__()
        from quivers.compiler.templates import templates_of

        self.analysis = analysis
        self.module = module
        self.path = path
        self._text = text
        # template programs by name, and the values those that were built got
        self.templates = templates_of(analysis)
        self.template_values = {k: dict(v) for k, v in (bound or {}).items()}
        self._focus = focus  # the template an instantiation was made for: its morphism
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
        if self._focus is not None:
            for name, built in self.module.exports:
                if name == self._focus:
                    return built
            return self.module.programs[self._focus]
        first = self.analysis.exports[0] if self.analysis.exports else None
        if first in self.templates and first not in self.template_values:
            raise AttributeError(self._unbuilt_message(first))
        if not self.module.exports:
            raise AttributeError(self._no_export_message())
        return self.module.main

    def _unbuilt_message(self, name: str) -> str:
        template = self.templates[name]
        given = ", ".join(f"{n}=..." for n, _ in template.params)
        return (
            f"{self.path}: program {template.signature()} is a template; give its "
            f"parameters: load(path, {given}) or prog.{name}({given})"
        )

    def instantiate(self, name: str, **values: Any) -> Program:
        """The file compiled again with the template ``name`` given ``values``: a new
        ``Program`` whose ``morphism`` is that program (``prog.gmm(alpha=1.0)`` calls
        this). Every parameter must be given (``TemplateArgumentError`` names the
        missing or ill-typed one)."""
        from quivers.compiler import compile_source
        from quivers.compiler.templates import TemplateArgumentError

        if name not in self.templates:
            raise TemplateArgumentError(f"{self.path}: '{name}' is not a template program")
        if self._text is None:
            raise TemplateArgumentError(f"{self.path}: the source is not kept; load it again")
        analysis, module, bound = compile_source(self._text, self.path, values, only=name)
        return Program(analysis, module, self.path, text=self._text, bound=bound, focus=name)

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
        templates = self.__dict__.get("templates", {})
        if name in templates and name not in self.__dict__.get("template_values", {}):
            return _TemplateCall(self, name)
        if name in exports:
            return exports[name]
        if name == "morphism":
            # Python retries a property that raised AttributeError here: keep its message
            first = self.analysis.exports[0] if self.analysis.exports else None
            if first is not None and first in templates:
                raise AttributeError(self._unbuilt_message(first))
            raise AttributeError(self._no_export_message())
        raise AttributeError(f"{self.path} has no export named '{name}'")

    def __repr__(self) -> str:
        names = [n or "<expr>" for n, _ in self.module.exports]
        return f"Program({self.path!r}, exports={names})"

    # ------------------------------------------------------------- running
    def forward(self, x: Any = None, **run: Any) -> Any:
        """Run the first export: without ``x``, the matrix of a finite-set relation
        (``prog(n_steps=4)`` gives ``repeat`` its count); with ``x``, a draw of its
        value (for a ``program``, ``observations=`` may be given too). Run-time
        arguments are the compiled model's; a template's parameters are given when it
        is compiled, ``prog.NAME(alpha=...)`` (``docs/language.md`` 10.1.1)."""
        first = self.analysis.exports[0] if self.analysis.exports else None
        if self._focus is None and first in self.templates and first not in self.template_values:
            from quivers.compiler.templates import TemplateArgumentError

            raise TemplateArgumentError(self._unbuilt_message(first))
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


class _TemplateCall:
    """``prog.gmm``: a template program of a loaded file, waiting for its values;
    calling it, ``prog.gmm(alpha=1.0, K=3)``, compiles the file with them."""

    def __init__(self, program: Program, name: str) -> None:
        self._program, self._name = program, name

    def __call__(self, **values: Any) -> Program:
        return self._program.instantiate(self._name, **values)

    def __repr__(self) -> str:
        return f"<template program {self._program.templates[self._name].signature()}>"


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
