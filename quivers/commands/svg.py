"""A small layered-layout SVG writer for flowcharts (no browser, no network).

Layout, left to right like the Mermaid chart: each node's column is the length of
the longest path reaching it (a DAG; an edge that would close a cycle is drawn but
not used for layering); within a column nodes are ordered by the mean position of
their neighbours in the previous column (a few barycentre sweeps both ways), then
centred vertically. Node widths come from the label length; edges are cubic curves
from the right side of a node to the left side of the next, with an arrow head.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from xml.sax.saxutils import escape

FONT_SIZE = 13
CHAR_WIDTH = 7.4  # average advance of the sans-serif font at FONT_SIZE
NODE_HEIGHT = 34
PAD_X = 14
GAP_X = 56
GAP_Y = 22
MARGIN = 16

STYLES = {
    "input": ("#ecfdf5", "#047857"),
    "morphism": ("#f8fafc", "#475569"),
    "combinator": ("#f5f3ff", "#6d28d9"),
    "site": ("#dbeafe", "#1d4ed8"),
    "observed": ("#fde7c8", "#b8660b"),
    "value": ("#f8fafc", "#64748b"),
    "return": ("#fef9c3", "#a16207"),
}


MAX_LABEL = 40  # longer labels are shortened with an ellipsis; the full text is a tooltip


def shown(label: str) -> str:
    return label if len(label) <= MAX_LABEL else label[: MAX_LABEL - 1].rstrip() + "\u2026"


@dataclass
class Box:
    id: str
    label: str
    kind: str
    layer: int = 0
    order: float = 0.0
    x: float = 0.0
    y: float = 0.0
    width: float = 0.0


def layout(
    nodes: Sequence[tuple[str, str, str]], edges: Sequence[tuple[str, str]]
) -> tuple[dict[str, Box], dict[tuple[str, str], list[str]], float, float]:
    """Positions for ``nodes`` (id, label, kind).

    Returns the boxes (including invisible ``kind == "dummy"`` points that carry edges
    spanning several columns), the route of each such edge through its dummies, and
    the total width and height.
    """
    boxes = {nid: Box(nid, label, kind) for nid, label, kind in nodes}
    forward = _acyclic(list(boxes), [(a, b) for a, b in edges if a in boxes and b in boxes])
    preds: dict[str, list[str]] = {n: [] for n in boxes}
    succs: dict[str, list[str]] = {n: [] for n in boxes}
    for a, b in forward:
        preds[b].append(a)
        succs[a].append(b)
    for nid in _topological(list(boxes), succs, preds):
        boxes[nid].layer = max((boxes[p].layer + 1 for p in preds[nid]), default=0)
    for nid, box in boxes.items():  # a source sits just before its first use
        if not preds[nid] and succs[nid]:
            box.layer = min(boxes[s].layer for s in succs[nid]) - 1
    routes: dict[tuple[str, str], list[str]] = {}
    for a, b in forward:  # an edge across several columns goes through dummy points
        span = boxes[b].layer - boxes[a].layer
        if span <= 1:
            continue
        chain = []
        for step in range(1, span):
            did = f"_d{len(boxes)}"
            boxes[did] = Box(did, "", "dummy", layer=boxes[a].layer + step)
            preds[did], succs[did] = [], []
            chain.append(did)
        path = [a, *chain, b]
        succs[a].remove(b)
        preds[b].remove(a)
        for u, v in zip(path, path[1:], strict=False):
            succs[u].append(v)
            preds[v].append(u)
        routes[(a, b)] = chain
    layers: dict[int, list[str]] = {}
    for nid, box in boxes.items():  # insertion order: the chart's own order first
        layers.setdefault(box.layer, []).append(nid)
    for column in layers.values():
        for i, nid in enumerate(column):
            boxes[nid].order = float(i)
    count = max(layers, default=-1) + 1
    for _ in range(4):
        for i in range(1, count):
            _sort(layers.get(i, []), boxes, preds)
        for i in range(count - 2, -1, -1):
            _sort(layers.get(i, []), boxes, succs)
    for box in boxes.values():
        if box.kind == "dummy":
            continue
        box.width = max(len(shown(box.label)) * CHAR_WIDTH + 2 * PAD_X, 48.0)
        if box.kind in ("observed", "return"):
            box.width += 16
    tallest = max((len(col) for col in layers.values()), default=0)
    height = tallest * NODE_HEIGHT + max(tallest - 1, 0) * GAP_Y
    x = float(MARGIN)
    for i in range(count):
        column = layers.get(i, [])
        if not column:
            continue
        col_width = max(boxes[n].width for n in column)
        col_height = len(column) * NODE_HEIGHT + (len(column) - 1) * GAP_Y
        y = MARGIN + (height - col_height) / 2
        for nid in column:
            box = boxes[nid]
            box.x = x + (col_width - box.width) / 2
            box.y = y
            y += NODE_HEIGHT + GAP_Y
        x += col_width + GAP_X
    total_width = max(x - GAP_X + MARGIN, 2 * MARGIN)
    return boxes, routes, total_width, height + 2 * MARGIN


def _acyclic(ids: list[str], edges: list[tuple[str, str]]) -> list[tuple[str, str]]:
    """``edges`` without the back edges of a depth-first search (iterative)."""
    succs: dict[str, list[str]] = {n: [] for n in ids}
    for a, b in edges:
        succs[a].append(b)
    state: dict[str, int] = {}  # 1: on the stack, 2: done
    back: set[tuple[str, str]] = set()
    for root in ids:
        if root in state:
            continue
        stack = [(root, iter(succs[root]))]
        state[root] = 1
        while stack:
            node, it = stack[-1]
            nxt = next(it, None)
            if nxt is None:
                state[node] = 2
                stack.pop()
            elif state.get(nxt) == 1:
                back.add((node, nxt))
            elif nxt not in state:
                state[nxt] = 1
                stack.append((nxt, iter(succs[nxt])))
    return [e for e in edges if e not in back]


def _topological(
    ids: list[str], succs: dict[str, list[str]], preds: dict[str, list[str]]
) -> list[str]:
    waiting = {n: len(preds[n]) for n in ids}
    ready = [n for n in ids if waiting[n] == 0]
    out: list[str] = []
    while ready:
        n = ready.pop(0)
        out.append(n)
        for s in succs[n]:
            waiting[s] -= 1
            if waiting[s] == 0:
                ready.append(s)
    return out


def _sort(column: list[str], boxes: dict[str, Box], neighbours: dict[str, list[str]]) -> None:
    def key(nid: str) -> tuple[float, float]:
        near = neighbours[nid]
        centre = sum(boxes[n].order for n in near) / len(near) if near else boxes[nid].order
        return (centre, boxes[nid].order)

    column.sort(key=key)
    for i, nid in enumerate(column):
        boxes[nid].order = float(i)


# ------------------------------------------------------------------- drawing


def render(
    nodes: Sequence[tuple[str, str, str]], edges: Sequence[tuple[str, str]], title: str = ""
) -> str:
    """The SVG document of a flowchart."""
    boxes, routes, width, height = layout(nodes, edges)
    out = [
        '<?xml version="1.0" encoding="UTF-8"?>',
        f'<svg xmlns="http://www.w3.org/2000/svg" width="{width:.0f}" height="{height:.0f}" '
        f'viewBox="0 0 {width:.0f} {height:.0f}" font-family="Helvetica, Arial, sans-serif" '
        f'font-size="{FONT_SIZE}">',
    ]
    if title:
        out.append(f"  <title>{escape(title)}</title>")
    out.append(
        '  <defs><marker id="arrow" viewBox="0 0 10 10" refX="9" refY="5" markerWidth="7" '
        'markerHeight="7" orient="auto-start-reverse"><path d="M0,0 L10,5 L0,10 z" '
        'fill="#475569"/></marker></defs>'
    )
    out.append('  <rect width="100%" height="100%" fill="#ffffff"/>')
    out.append('  <g class="edges" fill="none" stroke="#475569" stroke-width="1.4">')
    for a, b in edges:
        if a not in boxes or b not in boxes:
            continue
        out.append(f"    {_edge(boxes[a], boxes[b], [boxes[d] for d in routes.get((a, b), [])])}")
    out.append("  </g>")
    out.append('  <g class="nodes">')
    for box in boxes.values():
        if box.kind != "dummy":
            out.extend("    " + line for line in _node(box))
    out.append("  </g>")
    out.append("</svg>")
    return "\n".join(out) + "\n"


def _edge(a: Box, b: Box, via: list[Box]) -> str:
    x1, y1 = a.x + a.width, a.y + NODE_HEIGHT / 2
    x2, y2 = b.x, b.y + NODE_HEIGHT / 2
    ends = f'data-from="{escape(a.id)}" data-to="{escape(b.id)}"'
    if x2 <= x1:  # a back edge: loop around below
        low = max(a.y, b.y) + NODE_HEIGHT + GAP_Y / 2
        d = f"M{x1:.1f},{y1:.1f} C{x1 + 30:.1f},{low:.1f} {x2 - 30:.1f},{low:.1f} {x2:.1f},{y2:.1f}"
        return f'<path {ends} d="{d}" marker-end="url(#arrow)"/>'
    points = [(x1, y1), *((p.x, p.y + NODE_HEIGHT / 2) for p in via), (x2, y2)]
    d = f"M{x1:.1f},{y1:.1f}"
    for (ax, ay), (bx, by) in zip(points, points[1:], strict=False):
        bend = (bx - ax) / 2
        d += f" C{ax + bend:.1f},{ay:.1f} {bx - bend:.1f},{by:.1f} {bx:.1f},{by:.1f}"
    return f'<path {ends} d="{d}" marker-end="url(#arrow)"/>'


def _node(box: Box) -> list[str]:
    fill, stroke = STYLES.get(box.kind, STYLES["morphism"])
    x, y, w, h = box.x, box.y, box.width, NODE_HEIGHT
    thick = 2 if box.kind == "observed" else 1.5
    paint = f'fill="{fill}" stroke="{stroke}" stroke-width="{thick}"'
    if box.kind == "input":
        shape = f'<rect x="{x:.1f}" y="{y:.1f}" width="{w:.1f}" height="{h}" rx="{h / 2}" {paint}/>'
    elif box.kind == "site":
        shape = f'<ellipse cx="{x + w / 2:.1f}" cy="{y + h / 2:.1f}" rx="{w / 2:.1f}" ry="{h / 2}" {paint}/>'
    elif box.kind == "observed":
        s = 8
        pts = f"{x + s:.1f},{y:.1f} {x + w:.1f},{y:.1f} {x + w - s:.1f},{y + h:.1f} {x:.1f},{y + h:.1f}"
        shape = f'<polygon points="{pts}" {paint}/>'
    elif box.kind == "return":
        s = 10
        pts = (
            f"{x + s:.1f},{y:.1f} {x + w - s:.1f},{y:.1f} {x + w:.1f},{y + h / 2:.1f} "
            f"{x + w - s:.1f},{y + h:.1f} {x + s:.1f},{y + h:.1f} {x:.1f},{y + h / 2:.1f}"
        )
        shape = f'<polygon points="{pts}" {paint}/>'
    else:
        dash = ' stroke-dasharray="4 3"' if box.kind == "value" else ""
        shape = f'<rect x="{x:.1f}" y="{y:.1f}" width="{w:.1f}" height="{h}" rx="4" {paint}{dash}/>'
    text = (
        f'<text x="{x + w / 2:.1f}" y="{y + h / 2:.1f}" text-anchor="middle" '
        f'dominant-baseline="central" fill="#0f172a">{escape(shown(box.label))}</text>'
    )
    return [
        f'<g class="node {box.kind}" id="{escape(box.id)}">',
        f"  <title>{escape(box.label)}</title>",
        "  " + shape,
        "  " + text,
        "</g>",
    ]
