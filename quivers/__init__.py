"""QVR: a small typed probabilistic programming language.

Importing this package is cheap: torch is imported only by ``quivers.compiler``,
``quivers.runtime`` and ``quivers.inference`` (and by ``quivers.dsl.load`` when it
compiles), never by the front end or the editor-facing analysis.
"""

__version__ = "0.1.0"
