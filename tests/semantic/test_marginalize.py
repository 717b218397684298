"""The typing rules of `marginalize` blocks (docs/language.md, "Marginalisation")."""

from __future__ import annotations

from pathlib import Path

from quivers.semantic import check_text
from tests.semantic.helpers import diagnose, one, program_locals

DATA = Path(__file__).resolve().parents[1] / "data" / "marginalize"

HEAD = """\
object K : FinSet 3
object Item : FinSet 4
object Y : Real 1
object X : Real 2
morphism weights : X -> K [role=kernel] ~ Categorical
morphism enc : X -> Y [role=kernel] ~ Normal
morphism table : K -> Y [role=kernel] ~ Normal
"""


def _program(body: str, header: str = "program p(x) : X -> Y") -> str:
    return HEAD + header + "\n" + body + "export p\n"


MIXTURE = _program(
    """\
    sample w : Simplex 3 <- Dirichlet(1.0)
    sample mu : K <- Normal(0.0, 5.0)
    marginalize c : K <- Categorical(w) [reduction=logsumexp]
        let m = mu[c]
        observe y : Y <- Normal(m, 1.0)
    return y
"""
)


def test_a_mixture_checks_and_its_latent_is_a_marginal_value_of_its_set():
    assert diagnose(MIXTURE) == []
    locals_ = program_locals(MIXTURE, "p")
    assert locals_["c"] == "K"
    assert locals_["m"] == "Real 1"
    result = next(r for _, r in check_text(MIXTURE).results if r.declares == "p")
    assert result.locals["c"].kind == "marginal"
    assert not result.locals["c"].is_global  # one latent per row


def test_a_kernel_prior_applied_to_values_and_observed_through_a_kernel():
    text = _program(
        """\
    marginalize c <- weights(x)
        observe y : Y <- table(c)
    return y
"""
    )
    assert diagnose(text) == []
    assert program_locals(text, "p")["c"] == "K"


def test_a_bernoulli_latent_is_a_number_in_arithmetic_a_categorical_one_is_not():
    ok = _program(
        """\
    sample pi <- Beta(1.0, 1.0)
    marginalize z <- Bernoulli(pi)
        let lam = 2.0 * (1.0 - z)
        observe y : Y <- Poisson(lam)
    return y
"""
    )
    assert diagnose(ok) == []
    bad = _program(
        """\
    sample w : Simplex 3 <- Dirichlet(1.0)
    marginalize c : K <- Categorical(w)
        let m = c * 2.0
        observe y : Y <- Normal(m, 1.0)
    return y
"""
    )
    assert one(bad, "E0512").range.line == 10  # zero-based: the `let m` line


def test_a_continuous_kernel_as_prior_is_rejected_naming_its_codomain():
    text = _program(
        """\
    marginalize c <- enc(x)
        observe y : Y <- Normal(c, 1.0)
    return y
"""
    )
    d = one(text, "E0540")
    assert "'enc' gives Y (Real 1)" in d.message


def test_a_relation_as_prior_is_rejected():
    text = HEAD + (
        "morphism rel : X -> K [role=latent]\n"
        "program p(x) : X -> Y\n"
        "    marginalize c <- rel(x)\n"
        "        observe y : Y <- table(c)\n"
        "    return y\n"
        "export p\n"
    )
    codes = [c for c, _ in diagnose(text)]
    assert "E0540" in codes


def test_an_annotation_must_be_a_finite_set_and_fit_the_prior():
    text = _program(
        """\
    marginalize c : Y <- Bernoulli(0.5)
        observe y : Y <- Normal(0.0, 1.0)
    return y
"""
    )
    assert "E0540" in [c for c, _ in diagnose(text)]


def test_body_observe_sites_stay_in_scope_after_the_block():
    text = _program(
        """\
    sample w : Simplex 3 <- Dirichlet(1.0)
    sample mu : K <- Normal(0.0, 5.0)
    marginalize c : K <- Categorical(w)
        let m = mu[c]
        observe y : Y <- Normal(m, 1.0)
    let z = y + 1.0
    return z
"""
    )
    assert diagnose(text) == []


def test_grouped_blocks_need_ids_and_a_prior_shared_by_the_rows():
    grouped = _program(
        """\
    sample w : Simplex 3 <- Dirichlet(1.0)
    sample mu : K <- Normal(0.0, 5.0)
    marginalize c : K <- Categorical(w) [over=Item, via=item]
        let m = mu[c]
        observe y : Y <- Normal(m, 1.0)
    return y
"""
    )
    assert diagnose(grouped) == []
    result = next(r for _, r in check_text(grouped).results if r.declares == "p")
    assert result.locals["item"].kind == "host"
    per_row = _program(
        """\
    marginalize c <- weights(x) [over=Item, via=item]
        observe y : Y <- table(c)
    return y
"""
    )
    d = one(per_row, "E0543")
    assert "same for every row" in d.message
    via_alone = _program(
        """\
    marginalize c <- Bernoulli(0.5) [via=item]
        observe y : Y <- Normal(0.0, 1.0)
    return y
"""
    )
    assert one(via_alone, "E0543").suggestion == "add over=G, or remove via"
    over_space = _program(
        """\
    marginalize c <- Bernoulli(0.5) [over=Y, via=item]
        observe y : Y <- Normal(0.0, 1.0)
    return y
"""
    )
    assert "E0305" in [c for c, _ in diagnose(over_space)]


def test_an_unknown_option_gets_a_suggestion_and_a_fix():
    text = _program(
        """\
    marginalize c <- Bernoulli(0.5) [reductoin=logsumexp]
        observe y : Y <- Normal(0.0, 1.0)
    return y
"""
    )
    d = one(text, "E0303")
    assert d.suggestion == "did you mean 'reduction'?"


def test_nested_blocks_and_plate_sites_in_a_body_are_rejected():
    nested = _program(
        """\
    marginalize a <- Bernoulli(0.5)
        marginalize b <- Bernoulli(0.5)
            observe y : Y <- Normal(0.0, 1.0)
    return y
"""
    )
    assert "E0541" in [c for c, _ in diagnose(nested)]
    plate = _program(
        """\
    marginalize a <- Bernoulli(0.5)
        observe v : K <- Normal(0.0, 1.0)
    return v
""",
        header="program p : K -> K",
    )
    assert "E0541" in [c for c, _ in diagnose(plate)]


FORWARD = (DATA / "hmm.qvr").read_text()


def test_a_forward_cell_returns_its_summed_state_and_scans():
    analysis = check_text(FORWARD)
    assert analysis.diagnostics == []
    assert analysis.symbols["forward"].info.forward
    assert not analysis.symbols["hmm"].info.forward
    assert program_locals(FORWARD, "hmm")["path"] == "State"


def test_returning_a_summed_state_outside_a_cell_shape_is_rejected():
    text = FORWARD.replace(
        "program forward(y, z) : Obs * State -> State", "program forward(y, z) : Obs * State -> Obs"
    )
    assert "E0542" in [c for c, _ in diagnose(text)]


def test_observing_an_input_checks_its_type_against_the_kernel():
    text = FORWARD.replace("observe y <- emission(next)", "observe y <- transition(next)")
    d = [d for d in check_text(text).diagnostics if d.code == "E0505"]
    assert d and "the input 'y' is Obs (FinSet 4)" in d[0].message


def test_a_broken_block_header_still_binds_its_latent():
    text = _program(
        """\
    sample mu : K <- Normal(0.0, 5.0)
    marginalize c : K <- Categorical(
        let m = mu[c]
        observe y : Y <- Normal(m, 1.0)
    return y
"""
    )
    codes = [c for c, _ in diagnose(text)]
    assert codes and "E0502" not in codes  # no cascade of unknown 'c'
