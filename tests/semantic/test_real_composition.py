"""`composition NAME as real` (issue 11's spelling) and the rows of a relation in
arithmetic, `rel[ids]`: checker rules and their diagnostics."""

from __future__ import annotations

from quivers.semantic import types as T
from quivers.syntax import ast, parse

from .helpers import analyse, diagnose, messages, program_locals

PRELUDE = """\
object Item : FinSet 6
object Code : FinSet 2
object Feature : FinSet 4
morphism Z : Item -> Code [role=latent]
morphism W : Code -> Feature [role=latent]
let loadings = Z >> W
"""

PROGRAM = """\
program p(i) : Item -> Real 4
    let mu = {row}
    observe y : Real 4 <- Normal(mu, 1.0)
    return y
export p
"""


def test_the_issue_spelling_selects_the_real_algebra_and_keeps_its_label():
    text = "composition ppca as real\n" + PRELUDE + "export loadings\n"
    assert diagnose(text) == []
    assert analyse(text).algebra == "real"
    (node,) = [u.node for u in parse(text).units() if isinstance(u.node, ast.CompositionDecl)]
    assert (node.label.text, node.algebra.text) == ("ppca", "real")


def test_the_gallery_spelling_still_works_and_has_no_label():
    text = "composition real as algebra\n" + PRELUDE + "export loadings\n"
    assert diagnose(text) == []
    assert analyse(text).algebra == "real"
    (node,) = [u.node for u in parse(text).units() if isinstance(u.node, ast.CompositionDecl)]
    assert node.label is None and node.algebra.text == "real"


def test_any_algebra_can_follow_as_and_a_misspelt_one_is_e0701():
    assert analyse("composition weather as markov\n" + PRELUDE).algebra == "markov"
    (diag,) = messages("composition ppca as reel\n" + PRELUDE, "E0701")
    assert diag.message == "unknown algebra 'reel'" and "real" in (diag.suggestion or "")
    text = "composition a as real\ncomposition b as markov\n" + PRELUDE + "export W\n"
    assert diagnose(text) == [("E0702", 2)]


def test_a_relation_row_is_a_real_vector_of_the_codomain_size_per_row():
    text = PRELUDE + PROGRAM.format(row="loadings[i]")
    assert diagnose(text) == []
    assert program_locals(text, "p")["mu"] == "Real 4"


def test_host_ids_index_a_relation_too():
    text = PRELUDE + PROGRAM.format(row="W[code]")
    assert diagnose(text) == []
    assert program_locals(text, "p")["code"] == "Code"  # host ids, typed as ids of Code


def test_ids_of_another_set_are_one_e0517():
    text = PRELUDE + PROGRAM.format(row="W[i]")
    (diag,) = messages(text)
    assert diag.code == "E0517" and "Item" in diag.message and "Code" in diag.message


def test_a_family_kernel_is_not_a_relation():
    text = PRELUDE + "morphism k : Item -> Feature [role=kernel] ~ Categorical\n"
    text += PROGRAM.format(row="k[i]")
    assert [c for c, _ in diagnose(text)] == ["E0502"]


def test_relation_flags_follow_the_roles():
    text = PRELUDE + "morphism k : Item -> Feature [role=kernel] ~ Categorical\n"
    text += "morphism t : Item -> Item [role=kernel]\nlet chain = t >> Z >> W\n"
    symbols = analyse(text).symbols
    flags = {n: symbols[n].info.relation for n in ("Z", "W", "loadings", "k", "t", "chain")}
    assert flags == {"Z": True, "W": True, "loadings": True, "k": False, "t": True, "chain": True}
    assert isinstance(symbols["loadings"].info.type, T.Arrow)


SERIES = """\
object Day : FinSet 5
program p : Day -> Day
    sample mu <- Normal(0.0, 1.0)
    sample phi <- Uniform(-1.0, 1.0)
    sample eta : Day <- Normal(0.0, 1.0)
    let h = {value}
    observe r : Day <- Normal(h, 1.0)
    return phi
export p
"""


def test_ar_filter_keeps_the_plate_of_its_innovations():
    text = SERIES.format(value="mu + ar_filter(phi, eta)")
    assert diagnose(text) == []
    assert program_locals(text, "p")["h"] == "Real 1 [Day]"


def test_ar_filter_needs_a_plate_and_one_global_coefficient():
    (diag,) = messages(SERIES.format(value="ar_filter(phi, mu)"))
    assert diag.code == "E0510" and "plate" in diag.message
    (diag,) = messages(SERIES.format(value="ar_filter(eta, eta)"))
    assert diag.code == "E0510" and "one global coefficient" in diag.message
    (diag,) = messages(SERIES.format(value="ar_filter(eta)"))
    assert diag.code == "E0510" and "2 argument" in diag.message
