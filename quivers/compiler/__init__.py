"""Layer 3: a checked module to torch modules, through the runtime IR.

``lower`` (no torch) turns the checker's results into ``quivers.runtime.ir``;
``compile_source`` checks, lowers and builds, raising ``QvrCompileError`` with every
diagnostic when the source has errors.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from quivers.core.diagnostics import Diagnostic, Severity

if TYPE_CHECKING:
    from quivers.runtime.build import BuiltModule
    from quivers.semantic.model import Analysis


class QvrCompileError(Exception):
    """A QVR source with errors; ``diagnostics`` lists them all."""

    def __init__(self, path: str, diagnostics: list[Diagnostic]) -> None:
        self.path = path
        self.diagnostics = diagnostics
        lines = [d.render(path) for d in diagnostics]
        count = len(diagnostics)
        super().__init__(f"{path}: {count} error{'s' if count != 1 else ''}:\n" + "\n".join(lines))


def compile_source(text: str, path: str = "<qvr>") -> tuple[Analysis, BuiltModule]:
    from quivers.compiler.lower import lower
    from quivers.runtime.build import build_module
    from quivers.semantic import check_text

    analysis = check_text(text)
    errors = [d for d in analysis.diagnostics if d.severity == Severity.ERROR]
    if errors:
        raise QvrCompileError(path, errors)
    return analysis, build_module(lower(analysis, path))


__all__ = ["QvrCompileError", "compile_source"]
