"""The canonical formatter: canonical spacing, idempotent, keeps every comment, and
declines (returns None) on syntax errors."""

from __future__ import annotations

import random
import re

import pytest

from quivers.syntax.formatter import format_source
from quivers.syntax.layout import split

from .helpers import BROKEN, examples

MESSY = """object   A:Real   2
morphism f:A->A[ role = kernel ,scale = 0.1 ]~Normal # trailing



#! doc
program p(x):A->A
  sample h<-f( x )
        # inner comment
  let m=-h*2.0+ sqrt(h)
  return h
export p
"""

CANONICAL = """object A : Real 2
morphism f : A -> A [role=kernel, scale=0.1] ~ Normal  # trailing

#! doc
program p(x) : A -> A
    sample h <- f(x)
    # inner comment
    let m = -h * 2.0 + sqrt(h)
    return h
export p
"""

# strings and the turnstile are single tokens too (messing inside them changes them)
_TOKEN = re.compile(
    r'"(?:[^"\\\n]|\\.)*"|\|-|(?:\d+\.\d*|\.\d+|\d+)(?:[eE][+-]?\d+)?|[A-Za-z_]\w*|->|<-|>>|\S'
)


def comments(text: str) -> list[str]:
    return [c.text.strip() for c in split(text).comments]


def test_messy_input_becomes_canonical() -> None:
    assert format_source(MESSY) == CANONICAL
    assert format_source(CANONICAL) == CANONICAL


def test_wrapped_options_keep_tight_equals_on_continuation_lines() -> None:
    text = "object A : Real 2\nmorphism f : A -> A [role=kernel,\n  scale = 0.1] ~ Normal\n"
    assert format_source(text) == (
        "object A : Real 2\nmorphism f : A -> A [role=kernel,\n    scale=0.1] ~ Normal\n"
    )


def test_block_comments_are_kept_verbatim() -> None:
    text = "object A : Real 2\n#{ a block\n   comment  }#\nlet g = fan(f,f)>>f @ f\n"
    out = format_source(text)
    assert out is not None and "#{ a block\n   comment  }#\n" in out
    assert "let g = fan(f, f) >> f @ f" in out


@pytest.mark.parametrize("name", sorted(examples()))
def test_examples_are_fixed_points_or_converge(name: str) -> None:
    text = examples()[name]
    once = format_source(text)
    assert once is not None
    assert format_source(once) == once
    assert comments(once) == comments(text)


def mess_up(text: str, rng: random.Random) -> str:
    """Re-space every code line at random (tokens unchanged) and re-indent steps."""
    out = []
    for line in text.split("\n"):
        if "#" in line or not line.strip():
            out.append(line)
            continue
        indent = line[: len(line) - len(line.lstrip())]
        if indent:
            indent = " " * (2 + (len(indent) > 4) * 4)  # steps at 2, continuations at 6
        tokens = _TOKEN.findall(line)
        pieces = [tokens[0]]
        for a, b in zip(tokens, tokens[1:], strict=False):
            words = (a[-1].isalnum() or a[-1] in "_.") and (b[0].isalnum() or b[0] in "_.")
            pieces.append(" " * rng.randint(1 if words else 0, 3) + b)
        out.append(indent + "".join(pieces) + " " * rng.randint(0, 2))
    extra = rng.randint(0, 3)
    return "\n" * extra + "\n\n\n".join("\n".join(out).split("\n\n"))


@pytest.mark.parametrize("seed", range(3))
def test_messy_versions_of_every_example_format_like_the_example(seed: int) -> None:
    rng = random.Random(seed)
    for name, text in examples().items():
        messy = mess_up(text, rng)
        got = format_source(messy)
        assert got == format_source(text), name
        assert comments(got or "") == comments(text)


def test_every_comment_survives() -> None:
    text = (
        "# head\n\n#! doc of A\nobject A : Real 2  # trailing A\n#{ block }#\n"
        "program p : A -> A  # on the header\n    # leading step comment\n"
        "    sample h <- Normal(0.0, 1.0)  # trailing step\n#{ multi\nline }#\n    return h\n"
        "# the end\n"
    )
    out = format_source(text)
    assert out is not None
    assert comments(out) == comments(text)
    assert format_source(out) == out


@pytest.mark.parametrize(
    "text",
    [
        "object A : Real 2\nlet e = (\n",
        "object A : Real\n",
        "morphism f : A -> [role=\n",
        "object A : Real 2\nobject $ : Real 2\n",
        "object A : Real 2\nprogram p : A -> A\n    sample <- \n",
    ],
)
def test_declines_on_syntax_errors(text: str) -> None:
    assert format_source(text) is None


def test_declines_on_every_broken_corpus_file_with_a_syntax_error() -> None:
    for path in sorted(BROKEN.glob("e000*.qvr")):
        assert format_source(path.read_text()) is None, path.name


def test_type_errors_do_not_stop_formatting() -> None:
    assert (
        format_source("object A:Real 2\nlet e=nope>>A\n")
        == "object A : Real 2\nlet e = nope >> A\n"
    )


def test_empty_and_whitespace_only() -> None:
    assert format_source("") == ""
    assert format_source("\n\n   \n") == ""


STEP_OPTIONS_CANONICAL = """object K : FinSet 4
object C : FinSet 3
program p : K -> K
    sample rows : K <- Dirichlet(0.5) [over=C, iid_over=K]
    sample mu <- Normal(0.0, 1.0) [iid_over=K]
    observe y <- Normal(mu, 1.0) [via=group]
    sample z <- Normal(0.0, 1.0) [over=[C, K]]
    return rows
export p
"""


def test_step_options_round_trip() -> None:
    messy = (
        STEP_OPTIONS_CANONICAL.replace("[over=C, iid_over=K]", "[ over = C ,iid_over=K ]")
        .replace(") [via=group]", ")[via= group]")
        .replace("[over=[C, K]]", "[over = [ C,K ] ]")
    )
    assert messy != STEP_OPTIONS_CANONICAL
    assert format_source(messy) == STEP_OPTIONS_CANONICAL
    assert format_source(STEP_OPTIONS_CANONICAL) == STEP_OPTIONS_CANONICAL


def test_template_headers_round_trip() -> None:
    canonical = (
        "object Rows : FinSet 6\n"
        "program gmm(alpha : Positive, K : FinSet) : Rows -> Rows\n"
        "    sample probs <- Dirichlet(alpha) [over=K]\n"
        "    return probs\n"
        "export gmm\n"
    )
    messy = canonical.replace(
        "gmm(alpha : Positive, K : FinSet)", "gmm( alpha:Positive ,K :FinSet )"
    )
    assert format_source(messy) == canonical
    assert format_source(canonical) == canonical
