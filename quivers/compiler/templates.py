"""Template programs, ``program gmm(alpha : Real, K : FinSet) : ...``: the values of
their parameters, checked before the file is checked again and built with them.

A template is compiled only once every parameter has a value, because a ``FinSet``
parameter sizes spaces (plates, event axes) that the runtime allocates. Values come
from ``load(path, alpha=1.0, K=3)`` or from calling the template on a loaded file,
``prog.gmm(alpha=1.0, K=3)``. A number parameter takes an int or float in its kind's
domain; a ``FinSet`` parameter takes a positive int, the set's size. Anything else is
one ``TemplateArgumentError`` (a ``TypeError``) naming the program, the parameter, its
kind and what was given. No torch here.
"""

from __future__ import annotations

import difflib
from collections.abc import Mapping
from dataclasses import dataclass
from numbers import Integral, Real

from quivers.core.families import out_of_domain
from quivers.core.vocabulary import FINSET, TEMPLATE_KINDS
from quivers.semantic.model import Analysis


class TemplateArgumentError(TypeError):
    """A template program called with a missing, unknown or ill-typed parameter."""


@dataclass(frozen=True, slots=True)
class Template:
    """A template program of a checked file: its name and typed parameters."""

    name: str
    params: tuple[tuple[str, str], ...]  # (name, kind) in order

    def signature(self) -> str:
        return f"{self.name}({', '.join(f'{n} : {k}' for n, k in self.params)})"


def templates_of(analysis: Analysis) -> dict[str, Template]:
    """Every template program of the file, by name."""
    return {
        name: Template(name, symbol.info.template)
        for name, symbol in analysis.symbols.items()
        if symbol.info.kind == "program" and symbol.info.template
    }


def bind(
    templates: Mapping[str, Template],
    given: Mapping[str, object],
    only: str | None = None,
) -> dict[str, dict[str, float | int]]:
    """The values of each template's parameters (program -> name -> value).

    With ``only``, ``given`` is a call of that template and must give every one of its
    parameters. Otherwise (``load(path, **given)``) each value goes to every template
    with a parameter of that name; a name no template has is an error, and templates
    left without all their values stay uncompiled until called.
    """
    chosen = {only: templates[only]} if only is not None else dict(templates)
    known = {n for t in chosen.values() for n, _ in t.params}
    for key in given:
        if key not in known:
            where = f"program '{only}'" if only is not None else "no template program"
            have = ", ".join(t.signature() for t in chosen.values()) or "none"
            close = difflib.get_close_matches(key, sorted(known), n=1, cutoff=0.6)
            hint = f"; did you mean '{close[0]}'?" if close else ""
            raise TemplateArgumentError(
                f"{where} has no parameter '{key}' (templates: {have}){hint}"
            )
    out: dict[str, dict[str, float | int]] = {}
    for template in chosen.values():
        values = {n: _value(template, n, k, given[n]) for n, k in template.params if n in given}
        missing = [f"{n} : {k}" for n, k in template.params if n not in given]
        if missing and only is not None:
            raise TemplateArgumentError(
                f"program {template.signature()}: parameter {missing[0]} is not given; "
                f"call prog.{template.name}({', '.join(f'{n}=...' for n, _ in template.params)})"
            )
        if not missing:
            out[template.name] = values
    return out


def _value(template: Template, name: str, kind: str, value: object) -> float | int:
    spec = TEMPLATE_KINDS[kind]
    what = f"program {template.signature()}: parameter '{name} : {kind}' takes {spec.doc}"
    if isinstance(value, bool) or not isinstance(value, Real):
        raise TemplateArgumentError(f"{what}, got {_shown(value)}")
    if kind == FINSET:
        if not isinstance(value, Integral) or int(value) < 1:
            raise TemplateArgumentError(f"{what}, got {_shown(value)}")
        return int(value)
    number = float(value)
    assert spec.domain is not None
    if number != number or out_of_domain(spec.domain, number) is not None:
        raise TemplateArgumentError(f"{what}, got {_shown(value)}")
    return number


def _shown(value: object) -> str:
    return f"{value!r} ({type(value).__name__})"
