"""Torch building blocks that a compiled QVR module is made of.

``quivers.runtime.ir`` is plain data and imports no torch; every other module here
does. Import them explicitly (``quivers.runtime.build``); this package's
``__init__`` stays light on purpose.
"""
