"""Weighted deduction in torch: semirings, the dense CKY engine, the hypergraph
engine for any other rule shape, derivations (k-best, sampling) and the
:class:`~quivers.runtime.deduction.module.Deduction` module."""
