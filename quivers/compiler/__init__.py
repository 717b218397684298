"""Layer 3: a checked module to torch modules, through the runtime IR.

``lower`` (no torch) turns the checker's results into ``quivers.runtime.ir``;
``compile_source`` checks, lowers and builds, raising ``QvrCompileError`` with every
diagnostic when the source has errors.
"""

from __future__ import annotations

from collections.abc import Mapping
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


def compile_source(
    text: str,
    path: str = "<qvr>",
    values: Mapping[str, object] | None = None,
    only: str | None = None,
) -> tuple[Analysis, BuiltModule, dict[str, dict[str, float | int]]]:
    """Check, lower and build ``text``; raises ``QvrCompileError`` listing every error.

    ``values`` are template parameters (``quivers.compiler.templates``): a template
    with all of its values is checked again with them and built; ``only`` names the
    one template a call instantiates. Returns the analysis, the built module and the
    values each built template got.
    """
    from quivers.compiler.lower import lower
    from quivers.compiler.templates import bind, templates_of
    from quivers.runtime.build import build_module
    from quivers.semantic import check, check_text
    from quivers.syntax.cache import FrontendCache

    analysis = check_text(text)
    _raise_errors(path, analysis)
    bound: dict[str, dict[str, float | int]] = {}
    templates = templates_of(analysis)
    if templates or values:
        bound = bind(templates, values or {}, only)
        if bound:  # the sizes and numbers are known now: every check sees them
            # the same (immutable) parse; a fresh check cache, as results depend on values
            analysis = check(analysis.file, FrontendCache(), bound)
            _raise_errors(path, analysis)
    return analysis, build_module(lower(analysis, path, bound)), bound


def _raise_errors(path: str, analysis: Analysis) -> None:
    errors = [d for d in analysis.diagnostics if d.severity == Severity.ERROR]
    if errors:
        raise QvrCompileError(path, errors)


__all__ = ["QvrCompileError", "compile_source"]
