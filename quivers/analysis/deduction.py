"""Editor views of ``deduction`` blocks: rule hovers, outline children and the
flowchart (rules as nodes, the categories they pass on as edges)."""

from __future__ import annotations

from quivers.core.diagnostics import Range
from quivers.syntax import ast

START = "start"


def show_term(t: ast.DTerm) -> str:
    if not t.args:
        return t.head.text
    return f"{t.head.text}({', '.join(show_term(a) for a in t.args)})"


def rule_text(rule: ast.RulePart) -> str:
    premises = ", ".join(show_term(p) for p in rule.premises)
    text = f"rule {rule.name.text} : {premises} |- {show_term(rule.conclusion)}"
    return text + (" #[learnable]" if rule.learnable is not None else "")


def entry_text(entry: ast.LexEntry) -> str:
    text = f'"{entry.word.text}" : {show_term(entry.category)} = {show_term(entry.form)}'
    return text + (" #[learnable]" if entry.learnable is not None else "")


def rule_markdown(deduction: str, rule: ast.RulePart) -> str:
    premises = "\n".join(f"- `{show_term(p)}`" for p in rule.premises)
    weight = "a learnable weight" if rule.learnable is not None else "weight: the semiring's one"
    return (
        f"```qvr\n{rule_text(rule)}\n```\n\nrule of deduction `{deduction}` ({weight})\n\n"
        f"premises:\n{premises}\n\nconclusion: `{show_term(rule.conclusion)}`"
    )


def entry_markdown(deduction: str, entry: ast.LexEntry) -> str:
    return (
        f"```qvr\n{entry_text(entry)}\n```\n\nlexicon entry of deduction `{deduction}`: seeds "
        f"`span(i, i+1, {show_term(entry.category)})` at each occurrence of "
        f'"{entry.word.text}"'
    )


def atom_markdown(deduction: str, atom: str) -> str:
    return f"```qvr\natom {atom}\n```\n\na constant of deduction `{deduction}`"


def rules(node: ast.DeductionDecl) -> list[ast.RulePart]:
    return [p for p in node.parts if isinstance(p, ast.RulePart)]


def entries(node: ast.DeductionDecl) -> list[ast.LexEntry]:
    return [e for p in node.parts if isinstance(p, ast.LexiconPart) for e in p.entries]


# ------------------------------------------------------------------ flowchart


def _category(t: ast.DTerm) -> ast.DTerm:
    """What a rule passes on: the category of a ``span`` item, else the item."""
    if t.head.text == "span" and len(t.args) >= 3:
        return t.args[2]
    return t


def _compatible(a: ast.DTerm, b: ast.DTerm, atoms: set[str]) -> bool:
    """Whether two patterns may unify (variables match anything; heads and arities
    must agree, argument by argument)."""
    av = not a.args and a.head.text not in atoms
    bv = not b.args and b.head.text not in atoms
    if av or bv:
        return True
    if a.head.text != b.head.text or len(a.args) != len(b.args):
        return False
    return all(_compatible(x, y, atoms) for x, y in zip(a.args, b.args, strict=True))


def flow(node: ast.DeductionDecl) -> tuple[list[tuple[str, str, str]], list[tuple[str, str, str]]]:
    """(nodes, edges): nodes (id, label, kind) for the lexicon, each rule and the start
    symbol; edges (from, to, category) where a conclusion can feed a premise."""
    atoms = {n.text for p in node.parts if isinstance(p, ast.AtomsPart) for n in p.names}
    start = next(
        (
            o.value.name.text
            for o in node.options
            if o.name.text == "start" and isinstance(o.value, ast.NameOpt)
        ),
        "S",
    )
    nodes = [("lex", "lexicon", "input")]
    rs = rules(node)
    for i, r in enumerate(rs):
        nodes.append((f"r{i}", r.name.text, "morphism"))
    nodes.append(("goal", f"{START} {start}", "return"))
    edges: list[tuple[str, str, str]] = []
    cats = [e.category for e in entries(node)]
    for i, r in enumerate(rs):
        for p in r.premises:
            want = _category(p)
            shown = show_term(want)
            if any(_compatible(c, want, atoms) for c in cats):
                edges.append(("lex", f"r{i}", shown))
            for j, other in enumerate(rs):
                if _compatible(_category(other.conclusion), want, atoms):
                    edges.append((f"r{j}", f"r{i}", shown))
        goal = ast.DTerm(r.conclusion.span, ast.Name(r.conclusion.span, start), [])
        if _compatible(_category(r.conclusion), goal, atoms):
            edges.append((f"r{i}", "goal", start))
    if any(_compatible(c, ast.DTerm(c.span, ast.Name(c.span, start), []), atoms) for c in cats):
        edges.append(("lex", "goal", start))
    return nodes, list(dict.fromkeys(edges))


def rule_ranges(unit: ast.Unit, node: ast.DeductionDecl) -> dict[str, Range]:
    out = {f"r{i}": unit.absolute(r.name.span) for i, r in enumerate(rules(node))}
    out["goal"] = unit.absolute(node.name.span)
    parts = [p for p in node.parts if isinstance(p, ast.LexiconPart)]
    if parts:
        out["lex"] = unit.absolute(parts[0].span)
    return out
