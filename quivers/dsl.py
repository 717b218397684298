"""Loading QVR programs from Python: ``load(path)`` and ``loads(text)``."""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING, Any

from quivers.compiler import QvrCompileError, compile_source

if TYPE_CHECKING:
    from torch import nn

    from quivers.runtime.build import BuiltModule
    from quivers.semantic.model import Analysis


class Program:
    """A compiled QVR module.

    ``morphism`` is the first export; every later export that is a bare name is an
    attribute of the same name. ``module`` holds every built declaration, and
    ``analysis`` the checker's view of the source (types, symbols, warnings).
    """

    def __init__(self, analysis: Analysis, module: BuiltModule, path: str) -> None:
        self.analysis = analysis
        self.module = module
        self.path = path
        self.exports: dict[str, nn.Module] = {}
        for name, built in module.exports[1:]:
            if name is not None:
                self.exports[name] = built

    @property
    def morphism(self) -> nn.Module:
        if not self.module.exports:
            raise AttributeError(f"{self.path} exports nothing: add `export <program>`")
        return self.module.main

    def __getattr__(self, name: str) -> Any:
        exports = self.__dict__.get("exports", {})
        if name in exports:
            return exports[name]
        raise AttributeError(f"{self.path} has no export named '{name}'")

    def __repr__(self) -> str:
        names = [n or "<expr>" for n, _ in self.module.exports]
        return f"Program({self.path!r}, exports={names})"


def loads(text: str, name: str = "<string>") -> Program:
    """Compile QVR source text; raises ``QvrCompileError`` listing every error."""
    analysis, module = compile_source(text, name)
    return Program(analysis, module, name)


def load(path: str | Path) -> Program:
    """Compile a ``.qvr`` file; raises ``QvrCompileError`` listing every error."""
    p = Path(path)
    return loads(p.read_text(encoding="utf-8"), str(path))


__all__ = ["Program", "QvrCompileError", "load", "loads"]
