"""QVR: a small typed probabilistic programming language.

Importing this package is cheap: torch is imported only by ``quivers.compiler``,
``quivers.runtime``, ``quivers.inference`` and ``quivers.dsl`` (whose ``Program`` is a
``torch.nn.Module``), never by the front end or the editor-facing analysis.
"""

__version__ = "0.1.0"
