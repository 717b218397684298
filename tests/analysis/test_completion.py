"""Completion (scope, syntax-aware keywords, contexts) and signature help."""

from __future__ import annotations

import pytest

from quivers.analysis.completion import complete, signature_help

from .helpers import REFERENCE, at, doc, where, with_broken_neighbours

PROGRAM = """object A : Real 2
morphism f : A -> A [role=kernel] ~ Normal
morphism g : A * A -> A [role=kernel] ~ Normal
program p : A -> A
    sample a <- f
    sample b <- g(a, $0)
    sample c <- f(b)
    return c
morphism later : A -> A [role=kernel] ~ Normal
export p
"""


def labels(text: str) -> list[str]:
    d, line, col = at(text)
    return [i.label for i in complete(d, line, col)]


def items(text: str):  # type: ignore[no-untyped-def]
    d, line, col = at(text)
    return {i.label: i for i in complete(d, line, col)}


def test_top_level_keywords_on_an_empty_line() -> None:
    got = labels("object A : Real 2\n|\n")
    assert set(got) == {
        "object",
        "morphism",
        "let",
        "program",
        "export",
        "composition",
        "deduction",
    }


def test_step_keywords_in_a_program_body() -> None:
    got = labels(PROGRAM.replace("$0", "a").replace("    return c", "    |\n    return c"))
    assert {"sample", "observe", "let", "score", "return"} <= set(got)
    assert "object" not in got and "morphism" not in got


def test_type_keywords_after_colon() -> None:
    got = items("object A : |\n")
    assert set(got) >= {"FinSet", "Real", "Positive", "UnitInterval", "Simplex"}
    assert got["Real"].snippet and got["Real"].insert_text == "Real ${1:1}"


def test_only_names_declared_above_are_in_scope() -> None:
    got = labels(
        "object A : Real 2\nmorphism f : A -> A [role=kernel] ~ Normal\nlet e = |\n"
        "morphism later : A -> A [role=kernel] ~ Normal\n"
    )
    assert "f" in got and "later" not in got
    assert {"scan", "fan", "repeat", "stack", "identity"} <= set(got)


def test_program_locals_bound_by_earlier_steps_only() -> None:
    got = labels(PROGRAM)
    assert "a" in got
    assert "b" not in got and "c" not in got


def test_step_source_offers_families_with_parameter_snippets() -> None:
    got = items(PROGRAM.replace("$0", "a").replace("sample c <- f(b)", "sample c <- $0"))
    assert got["Normal"].insert_text == "Normal(${1:loc}, ${2:scale})" and got["Normal"].snippet
    assert got["StudentT"].insert_text == "StudentT(${1:df}, ${2:loc}, ${3:scale})"
    assert {"f", "g", "a", "b"} <= set(got)
    assert "c" not in got and "later" not in got


def test_families_after_tilde() -> None:
    got = items("object A : Real 2\nmorphism f : A -> A [role=kernel] ~ |\n")
    assert {"Normal", "Categorical", "Dirichlet", "Poisson"} <= set(got)
    assert all(i.kind == "family" for i in got.values())
    assert got["Normal"].insert_text is None  # no call syntax after ~


def test_roles_after_role_equals() -> None:
    got = labels("object A : Real 2\nmorphism f : A -> A [role=|] ~ Normal\n")
    assert got == ["embed", "kernel", "latent", "observed"]


def test_options_inside_brackets_include_family_parameters() -> None:
    got = labels("object A : Real 2\nmorphism f : A -> A [role=kernel, |] ~ Normal\n")
    assert {"replicate", "param_source", "init", "loc", "scale"} <= set(got)
    assert "role" not in got  # already given


def test_options_for_an_embed_exclude_family_parameters() -> None:
    got = labels("object A : FinSet 2\nobject B : Real 3\nmorphism f : A -> B [role=embed, |]\n")
    assert "loc" not in got and "scale" not in got


def test_param_source_and_algebra_values() -> None:
    got = labels("object A : Real 2\nmorphism f : A -> A [role=kernel, param_source=|] ~ Normal\n")
    assert got == ["linear", "mlp"]
    assert "markov" in labels("composition |\n")


def test_arithmetic_in_let_steps() -> None:
    text = PROGRAM.replace("$0", "a").replace("    return c", "    let m = |\n    return c")
    got = labels(text)
    assert {"sigmoid", "tanh", "exp", "log", "sqrt"} <= set(got)
    assert {"a", "b", "c"} <= set(got)


def test_nothing_inside_comments() -> None:
    assert labels("object A : Real 2 # a comm|ent\n") == []


def test_completion_with_a_partial_word() -> None:
    got = labels("object A : Real 2\nmorphism f : A -> A [role=kernel] ~ Nor|\n")
    assert "Normal" in got


@pytest.mark.parametrize(
    ("needle", "offset", "expect", "absent"),
    [
        ("scan(cell)", 5, {"cell", "tok_embed"}, {"backbone"}),
        ("lm_head(h)", 8, {"h"}, {"next_token"}),
        ("[role=kernel, scale", 6, {"kernel", "embed"}, set()),
    ],
)
def test_completion_survives_broken_neighbours(
    needle: str, offset: int, expect: set[str], absent: set[str]
) -> None:
    text = with_broken_neighbours(REFERENCE)
    d = doc(text)
    line, col = where(text, needle, offset=offset)
    got = {i.label for i in complete(d, line, col)}
    assert expect <= got and not (absent & got)


def test_completion_on_a_broken_line_itself_still_offers_names() -> None:
    got = labels(
        "object A : Real 2\nmorphism f : A -> A [role=kernel] ~ Normal\nlet e = f >> ) |\n"
    )
    assert isinstance(got, list)


# ---------------------------------------------------------------- signature help


def sig(text: str):  # type: ignore[no-untyped-def]
    d, line, col = at(text)
    return signature_help(d, line, col)


def test_signature_of_an_inline_family() -> None:
    s = sig("object R : Real 1\nprogram p : R -> R\n    sample s <- Normal(0.0, |\n")
    assert s is not None
    assert s.label == "Normal(loc: real, scale: positive)"
    assert s.active == 1


def test_signature_of_a_morphism_call() -> None:
    s = sig(PROGRAM)
    assert s is not None
    assert s.label == "g(x1: A, x2: A) -> A" and s.active == 1


def test_signature_of_a_program_with_parameters() -> None:
    text = (
        "object A : FinSet 3\nobject H : Real 4\n"
        "morphism f : A * H -> H [role=kernel] ~ Normal\n"
        "#! One step.\nprogram step(x, h) : A * H -> H\n    sample z <- f(x, h)\n    return z\n"
        "program outer(y, s) : A * H -> H\n    sample t <- step(|\n    return t\n"
    )
    s = sig(text)
    assert s is not None
    assert s.parameters == ("x: A", "h: H")
    assert s.label == "step(x: A, h: H) -> H" and s.active == 0
    assert "One step." in s.documentation


def test_no_signature_outside_a_call() -> None:
    assert sig("object A : Real 2|\n") is None
    assert sig("object R : Real 1\nprogram p : R -> R\n    sample s <- Normal(0.0, 1.0)|\n") is None


def test_long_files_cut_the_list_and_say_so() -> None:
    from quivers.analysis.completion import complete_limited

    decls = "".join(f"object O{i} : Real 2\n" for i in range(400))
    text = decls + "object Target : Real 2\nlet e = |\n"
    d, line, col = at(text)
    everything = complete(d, line, col)
    assert len(everything) > 400
    items, cut = complete_limited(d, line, col, limit=50)
    assert cut and len(items) == 50
    labels = [i.label for i in items]
    assert {"scan", "fan"} <= set(labels)  # keywords are kept
    assert "Target" in labels and "O399" in labels and "O0" not in labels  # nearest first
    # with a word typed, only matching names are kept
    d, line, col = at(decls + "let e = O39|\n")
    items, cut = complete_limited(d, line, col, limit=12)
    assert cut and len(items) == 12
    assert all(_fuzzy("o39", i.label.lower()) for i in items)
    assert {"O39", *(f"O39{k}" for k in range(10))} <= {i.label for i in items}
    # short lists are complete
    d, line, col = at("object A : Real 2\nlet e = |\n")
    assert complete_limited(d, line, col)[1] is False


def _fuzzy(word: str, label: str) -> bool:
    it = iter(label)
    return all(ch in it for ch in word)


def test_signature_help_survives_broken_neighbours() -> None:
    text = with_broken_neighbours(REFERENCE)
    d = doc(text)
    line, col = where(text, "lm_head(h)", offset=8)
    s = signature_help(d, line, col)
    assert s is not None and s.label == "lm_head(x1: Hidden) -> Token"


OPTIONS_DOC = """object Rows : FinSet 6
object C : FinSet 3
object X : Real 2
program gmm(alpha : Positive, K : FinSet) : Rows -> Rows
    sample mu : K <- Normal(0.0, 1.0)
    sample w <- Dirichlet(1.0) [over=C]
    sample k : C <- Categorical(w)
    sample probs <- Dirichlet(alpha) [$0]
    return probs
"""


def test_step_options_and_their_values() -> None:
    assert labels(OPTIONS_DOC) == ["over", "iid_over", "via"]  # reduction is marginalize's
    assert labels(OPTIONS_DOC.replace("[$0]", "[over=C, $0]")) == ["over", "iid_over", "via"]
    # over=: the finite sets in scope, the template's own K among them (X is a space)
    assert labels(OPTIONS_DOC.replace("[$0]", "[over=$0]")) == ["Rows", "C", "K"]
    # via=: bound finite-set values (ids)
    assert labels(OPTIONS_DOC.replace("[$0]", "[via=$0]")) == ["k"]


def test_template_parameters_are_offered_as_family_arguments() -> None:
    assert {"alpha", "K"} <= set(
        labels(OPTIONS_DOC.replace("Dirichlet(alpha) [$0]", "Dirichlet($0)"))
    )
