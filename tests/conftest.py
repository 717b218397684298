"""Suite-wide: AST nodes are never mutated after parsing (docs/dev/architecture.md).

Parsed units are shared (the front-end cache hands the same nodes to every later
parse of the same text; check results and semantic tokens are keyed by node
identity), so a change to a node would leak into other documents. Frozen dataclasses
would enforce it, at about 4% of a cold parse; instead every test runs with nodes that
refuse an assignment to a field that is already set (their ``__init__`` still works).
"""

from __future__ import annotations

from quivers.syntax import ast


def _refuse_mutation(self: ast.Node, name: str, value: object) -> None:
    try:
        getattr(self, name)
    except AttributeError:  # a slot not set yet: the node is being constructed
        object.__setattr__(self, name, value)
        return
    raise AttributeError(
        f"{type(self).__name__}.{name} assigned after parsing: AST nodes are never mutated"
    )


ast.Node.__setattr__ = _refuse_mutation  # type: ignore[method-assign,assignment]
