"""Lowering a checked module to the runtime IR."""

from __future__ import annotations

import pytest

from quivers.compiler import QvrCompileError
from quivers.runtime import ir

from .helpers import load, lowered, program

REFERENCE_HEAD = """object Token : FinSet 256
object Embedded : Real 64
object Hidden : Real 128
morphism tok_embed : Token -> Embedded [role=embed]
morphism cell : Embedded * Hidden -> Hidden [role=kernel, scale=0.1] ~ Normal
morphism lm_head : Hidden -> Token [role=kernel] ~ Categorical
let backbone = tok_embed >> scan(cell)
"""


def test_objects_become_ir_types_with_names() -> None:
    m = lowered("object T : FinSet 3\nobject C : {a, b}\nobject R : Positive 2\nobject P : T * R\n")
    assert m.objects["T"] == ir.FinSetT(3, None, "T")
    assert m.objects["C"] == ir.FinSetT(2, ("a", "b"), "C")
    assert m.objects["R"] == ir.SpaceT("positive", 2, "R")
    p = m.objects["P"]
    assert isinstance(p, ir.ProductT) and p.name == "P" and len(p.factors) == 2


def test_morphism_options_are_lowered() -> None:
    m = lowered(
        REFERENCE_HEAD
        + "morphism head2 : Hidden -> Token [role=kernel, param_source=mlp(32, 16), init=0.02, replicate=3] ~ Categorical\n"
        + "morphism lin : Hidden -> Hidden [role=kernel, param_source=linear, loc=0.0] ~ Normal\n"
    )
    decls = {d.name: d for d in m.morphisms}
    cell = decls["cell"]
    assert cell.role == "kernel" and cell.family == "Normal" and cell.fixed == (("scale", 0.1),)
    assert cell.param_source == ir.ParamSource("mlp", (64,))  # the default
    head2 = decls["head2"]
    assert head2.param_source == ir.ParamSource("mlp", (32, 16))
    assert head2.init == 0.02 and head2.replicate == 3
    assert decls["lin"].param_source == ir.ParamSource("linear", ())
    assert decls["lin"].fixed == (("loc", 0.0),)
    assert decls["tok_embed"].role == "embed" and decls["tok_embed"].family is None


def test_observed_relations() -> None:
    m = lowered(
        "object A : FinSet 2\nobject X : Real 3\n"
        "morphism t : A -> A [role=observed] ~ [[0.9, 0.1], [0.2, 0.8]]\n"
        "morphism p : X -> X [role=observed] ~ Normal(0.0, 1.0)\n"
    )
    t, p = m.morphisms
    assert t.observed_matrix == ((0.9, 0.1), (0.2, 0.8)) and t.family is None
    assert p.observed_family == "Normal" and p.observed_args == (0.0, 1.0)


def test_expressions_keep_structure_and_types() -> None:
    m = lowered(REFERENCE_HEAD)
    (let,) = m.lets
    assert isinstance(let.expr, ir.Compose)
    assert isinstance(let.expr.first, ir.Ref) and let.expr.first.name == "tok_embed"
    scan = let.expr.second
    assert isinstance(scan, ir.Scan)
    assert scan.input_type == ir.SpaceT("real", 64, "Embedded")
    assert scan.state_type == ir.SpaceT("real", 128, "Hidden")


def test_program_steps() -> None:
    m = lowered(
        REFERENCE_HEAD
        + "program p : Token -> Token\n"
        + "    sample h <- backbone\n"
        + "    observe y : Token <- lm_head(h)\n"
        + "    return y\n"
        + "export p\n"
    )
    prog = program(m, "p")
    sample, observe, ret = prog.steps
    assert isinstance(sample, ir.SampleStep) and not sample.observed and not sample.is_global
    assert isinstance(sample.source, ir.KernelSource) and sample.source.args is None
    assert isinstance(observe, ir.SampleStep) and observe.observed
    assert isinstance(observe.source, ir.KernelSource) and observe.source.args == ("h",)
    assert ret == ir.ReturnStep(("y",))
    assert m.exports[0][0] == "p"


def test_inline_families_globals_and_host_data() -> None:
    m = lowered(
        "object X : Real 1\n"
        "program reg : X -> X\n"
        "    sample slope <- Normal(0.0, 3.0)\n"
        "    let mu = slope * x + 1.5\n"
        "    observe y <- Normal(mu, 1.0)\n"
        "    score s = -abs(slope)\n"
        "    return y\n"
        "export reg\n"
    )
    prog = program(m, "reg")
    slope, mu, y, score, _ = prog.steps
    assert isinstance(slope, ir.SampleStep) and slope.is_global
    assert slope.source == ir.FamilySource("Normal", (ir.Num(0.0), ir.Num(3.0)))
    assert isinstance(mu, ir.LetStep)
    assert mu.value == ir.BinOp(
        "+", ir.BinOp("*", ir.Var("slope"), ir.Var("x", host=True)), ir.Num(1.5)
    )
    assert isinstance(y, ir.SampleStep) and y.observed and not y.is_global
    assert isinstance(score, ir.ScoreStep)
    assert score.value == ir.Neg(ir.Call("abs", (ir.Var("slope"),)))
    assert prog.host_names == ("x",)


def test_compile_error_lists_every_error_with_position() -> None:
    with pytest.raises(QvrCompileError) as info:
        load(REFERENCE_HEAD.replace("scan(cell)", "scan(cel)") + "let bad = lm_head >> lm_head\n")
    text = str(info.value)
    assert "2 errors" in text
    assert "t.qvr:7:" in text and "E0101" in text and "did you mean 'cell'?" in text
    assert "t.qvr:8:" in text and "E0401" in text
    assert len(info.value.diagnostics) == 2


def test_program_exports_and_attributes() -> None:
    prog = load(
        REFERENCE_HEAD
        + "program p : Token -> Token\n"
        + "    sample h <- backbone\n"
        + "    observe y : Token <- lm_head(h)\n"
        + "    return y\n"
        + "export p\nexport backbone\n"
    )
    assert hasattr(prog.morphism, "rsample")
    assert prog.backbone is prog.module.exports[1][1]
    with pytest.raises(AttributeError, match="no export named 'nothing'"):
        _ = prog.nothing


def test_let_of_globals_is_global_and_observe_is_always_local() -> None:
    m = lowered(
        "object X : Real 1\n"
        "program p : X -> X\n"
        "    sample a <- Normal(0.0, 1.0)\n"
        "    let a2 = a * 2.0\n"
        "    sample z <- Normal(a2, 1.0)\n"
        "    observe y <- Normal(a, 1.0)\n"
        "    return y\n"
        "export p\n"
    )
    steps = {s.var: s for s in program(m, "p").steps if isinstance(s, ir.SampleStep)}
    assert steps["a"].is_global and steps["z"].is_global
    assert not steps["y"].is_global
