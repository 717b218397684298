"""The one helper for compiler tests: check + lower QVR text to IR, or load it."""

from __future__ import annotations

from quivers.compiler.lower import lower
from quivers.dsl import Program, loads
from quivers.runtime import ir
from quivers.semantic import check_text


def lowered(text: str) -> ir.ModuleIR:
    analysis = check_text(text)
    errors = [d.render("t") for d in analysis.diagnostics if d.severity.value == "error"]
    assert not errors, errors
    return lower(analysis, "t.qvr")


def load(text: str) -> Program:
    return loads(text, "t.qvr")


def program(module: ir.ModuleIR, name: str) -> ir.ProgramDecl:
    return next(p for p in module.programs if p.name == name)
