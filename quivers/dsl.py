"""Loading QVR programs from Python: ``load(path)`` and ``loads(text)``.

Importing this module does not import torch: the compiled :class:`Program`
(``quivers/compiled.py``, a ``torch.nn.Module``) is imported when a program is
loaded, or when ``quivers.dsl.Program`` is first looked up.
"""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING, Any

from quivers.compiler import QvrCompileError, compile_source

if TYPE_CHECKING:
    from quivers.compiled import EntryRun, Program


def loads(text: str, name: str = "<string>", **values: Any) -> Program:
    """Compile QVR source text; raises ``QvrCompileError`` listing every error.

    ``values`` are the parameters of template programs (``program gmm(alpha : Real,
    K : FinSet)``): ``loads(text, alpha=1.0, K=3)``. A template left without all of its
    values is compiled when it is called, ``prog.gmm(alpha=1.0, K=3)``.
    """
    from quivers.compiled import Program

    analysis, module, bound = compile_source(text, name, values)
    return Program(analysis, module, name, text=text, bound=bound)


def load(path: str | Path, **values: Any) -> Program:
    """Compile a ``.qvr`` file (``values`` as for :func:`loads`); raises
    ``QvrCompileError`` listing every error."""
    p = Path(path)
    return loads(p.read_text(encoding="utf-8"), str(path), **values)


def __getattr__(name: str) -> Any:
    # ``from quivers.dsl import Program`` keeps working, importing torch only then.
    if name in ("EntryRun", "Program"):
        from quivers import compiled

        return getattr(compiled, name)
    raise AttributeError(f"module 'quivers.dsl' has no attribute '{name}'")


__all__ = ["EntryRun", "Program", "QvrCompileError", "load", "loads"]
