"""`marginalize` blocks in the layout, the parser and the formatter."""

from __future__ import annotations

import json
import re
from pathlib import Path

from quivers.syntax import ast, parse
from quivers.syntax.formatter import format_source
from tests.syntax.helpers import codes, units

MIXTURE = """\
object K : FinSet 3
object Y : Real 1
program gmm : Y -> Y
    sample w : Simplex 3 <- Dirichlet(1.0)
    sample mu : K <- Normal(0.0, 5.0)
    marginalize c : K <- Categorical(w) [reduction=logsumexp]
        let m = mu[c]
        observe y : Y <- Normal(m, 1.0)
    return y
export gmm
"""


def _program(text: str) -> ast.Program:
    [program] = [i for i in parse(text).items if isinstance(i, ast.Program)]
    return program


def test_the_body_is_the_deeper_steps_after_the_header():
    program = _program(MIXTURE)
    assert [u.depth for u in program.steps] == [0, 0, 0, 1, 1, 0]
    header = program.steps[2].node
    assert isinstance(header, ast.MarginalizeStep)
    assert header.var.text == "c"
    assert isinstance(header.annotation, ast.TypeRef) and header.annotation.name.text == "K"
    assert isinstance(header.source, ast.Apply)
    assert [(o.name.text, o.value.name.text) for o in header.options] == [  # type: ignore[union-attr]
        ("reduction", "logsumexp")
    ]
    body = program.body_of(2)
    assert [type(u.node).__name__ for u in body] == ["LetStep", "SampleStep"]
    assert program.body_of(3) == []  # a plain step opens no block
    assert codes(MIXTURE) == []


def test_a_deeper_line_after_a_plain_step_still_continues_it():
    text = "program p : Y -> Y\n    let a = 1.0 +\n        2.0\n    return a\n"
    program = _program(text)
    assert [u.depth for u in program.steps] == [0, 0]
    assert "2.0" in program.steps[0].text


def test_several_blocks_and_wrapped_options():
    text = (
        "program p : Y -> Y\n"
        "    marginalize a <- Bernoulli(0.5) [\n"
        "        reduction=logsumexp]\n"
        "        observe y : Y <- Normal(0.0, 1.0)\n"
        "    marginalize b <- Bernoulli(0.2)\n"
        "            observe v : Y <- Normal(0.0, 1.0)\n"
        "            let s = v + 1.0\n"
        "    return y\n"
    )
    program = _program(text)
    assert [type(u.node).__name__ for u in program.steps] == [
        "MarginalizeStep",
        "SampleStep",
        "MarginalizeStep",
        "SampleStep",
        "LetStep",
        "ReturnStep",
    ]
    assert [u.depth for u in program.steps] == [0, 1, 0, 1, 1, 0]
    assert codes(text) == []


def test_formatter_indents_the_body_one_level_deeper_and_round_trips():
    messy = MIXTURE.replace("        ", "      ").replace("    marginalize", "  marginalize")
    messy = messy.replace("[reduction=logsumexp]", "[ reduction = logsumexp ]")
    formatted = format_source(messy)
    assert formatted == MIXTURE
    assert format_source(formatted) == formatted
    assert [u.depth for u in units(formatted) if u.kind == "step"] == [0, 0, 0, 1, 1, 0]


def test_textmate_highlights_marginalize_as_a_step_keyword():
    grammar = Path(__file__).resolve().parents[2] / "grammars" / "qvr.tmLanguage.json"
    patterns = json.loads(grammar.read_text("utf-8"))["repository"]["keywords"]["patterns"]
    [step] = [p for p in patterns if p["name"] == "keyword.control.step.qvr"]
    line = "    marginalize c : K <- Categorical(w) [reduction=logsumexp]"
    found = re.search(step["match"], line)
    assert found is not None and found.group() == "marginalize"
