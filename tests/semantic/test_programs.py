"""Programs, steps, sites and arithmetic (spec section 6), and the checker cache."""

from __future__ import annotations

import pytest

from .helpers import (
    FrontendCache,
    analyse,
    cache_stats,
    diagnose,
    messages,
    one,
    program_locals,
    types_of,
)

HEAD = """\
object Token : FinSet 16
object X : Real 2
object H : Real 4
object Y : Real 1
morphism embed : Token -> X [role=embed]
morphism cell : X * H -> H [role=kernel, scale=0.1] ~ Normal
morphism head : H -> Token [role=kernel] ~ Categorical
morphism lin : X -> Y [role=kernel] ~ Normal
morphism two : X * H -> Y [role=kernel] ~ Normal
"""


def prog(header: str, *steps: str) -> str:
    return HEAD + header + "\n" + "".join(f"    {s}\n" for s in steps) + "export p\n"


STEP0 = HEAD.count("\n") + 2  # one-based line of the first step


def test_reference_style_program():
    text = prog(
        "program p : Token -> Token",
        "sample h <- embed >> scan(cell)",
        "observe y : Token <- head(h)",
        "return y",
    )
    assert diagnose(text) == []
    assert types_of(text)["p"] == "Token -> Token"
    assert program_locals(text, "p") == {"h": "H", "y": "Token"}


def test_parameters_name_the_domain_factors():
    text = prog(
        "program p(x, h) : X * H -> Y",
        "sample y <- two(x, h)",
        "sample z : H <- cell(x, h)",
        "let s = sum(z) + y",
        "score lp = -s * s / 2.0",
        "return y",
    )
    assert diagnose(text) == []
    assert program_locals(text, "p") == {
        "x": "X", "h": "H", "y": "Y", "z": "H", "s": "Real 1", "lp": "Real 1",
    }  # fmt: skip


def test_tuple_return_and_inline_families():
    text = prog(
        "program p : X -> Y * Real 1",
        "sample slope <- Normal(0.0, 3.0)",
        "sample noise <- HalfNormal(1.0)",
        "let m = slope * 2.0",
        "observe y : Y <- Normal(m, noise)",
        "return (y, slope)",
    )
    assert diagnose(text) == []
    analysis = analyse(text)
    locals_ = next(r for _, r in analysis.results if r.declares == "p").locals
    assert locals_["slope"].is_global and not locals_["y"].is_global


def test_host_data_keeps_its_run_time_width():
    # data's width is unknown until run time: data * 2.0 may well be an H.
    text = prog(
        "program p(x, h) : X * H -> Y",
        "let z = data * 2.0",
        "let w = 1.0 - data",
        "sample y <- two(x, z)",
        "sample v <- two(x, w)",
        "return y",
    )
    assert diagnose(text) == []
    assert program_locals(text, "p")["z"] == "Real ?"
    # A known width other than 1 is kept.
    text = prog("program p(x) : X -> Y", "let z = data + x", "sample y <- lin(z)", "return y")
    assert diagnose(text) == []
    assert program_locals(text, "p")["z"] == "Real 2"


def test_host_data_is_a_free_name():
    text = prog("program p : X -> Y", "let z = tanh(data) * 2.0", "sample y <- lin", "return y")
    assert diagnose(text) == []
    assert program_locals(text, "p")["data"].startswith("Real")


@pytest.mark.parametrize(
    ("header", "steps", "code", "step", "words"),
    [
        (
            # one name binds the whole input; three names fit neither 2 factors nor 2 leaves
            "program p(x, h, z) : X * H -> Y",
            ["sample y <- lin(x)", "return y"],
            "E0501",
            -1,
            ["3 parameter", "2 factors"],
        ),
        ("program p : X -> Y", ["sample y <- lin", "return z"], "E0502", 1, ["'z'"]),
        ("program p : X -> Y", ["sample y <- lin", "return yy"], "E0502", 1, ["'yy'"]),
        (
            "program p(x, h) : X * H -> Y",
            ["sample y <- two(h, x)", "return y"],
            "E0503",
            0,
            ["H * X", "X * H"],
        ),
        (
            "program p(x, h) : X * H -> Y",
            ["sample y <- lin(h)", "return y"],
            "E0503",
            0,
            ["H (Real 4)", "X (Real 2)"],
        ),
        ("program p(x, h) : X * H -> Y", ["sample y <- lin(1.0)", "return y"], "E0503", 0, ["1.0"]),
        (
            "program p : X -> Y",
            ["sample s <- Normal(0.0)", "return s"],
            "E0504",
            0,
            ["Normal(loc, scale)", "1 given"],
        ),
        ("program p : X -> Y", ["sample s <- Normal", "return s"], "E0504", 0, ["Normal"]),
        (
            "program p : X -> H",
            ["sample y : H <- lin", "return y"],
            "E0505",
            0,
            ["H (Real 4)", "Y (Real 1)"],
        ),
        (
            "program p : X -> Y",
            ["sample y <- lin", "sample y <- lin", "return y"],
            "E0506",
            1,
            ["'y'"],
        ),
        ("program p : X -> Y", ["sample y <- lin"], "E0507", -1, ["'p'"]),
        (
            "program p : X -> H",
            ["sample y <- lin", "return y"],
            "E0508",
            1,
            ["Y (Real 1)", "H (Real 4)"],
        ),
        (
            "program p : X -> Y",
            ["sample y <- lin", "return y", "sample z <- lin"],
            "E0509",
            2,
            ["never run"],
        ),
        (
            "program p : X -> Y",
            ["sample y <- lin", "let z = tanhh(y)", "return y"],
            "E0510",
            1,
            ["tanhh"],
        ),
        (
            "program p : X -> Y",
            ["sample y <- lin", "let z = exp(y, y)", "return y"],
            "E0510",
            1,
            ["exp takes 1"],
        ),
        (
            "program p(x, h) : X * H -> Y",
            ["let z = x + h", "sample y <- lin(x)", "return y"],
            "E0511",
            0,
            ["X (Real 2)", "H (Real 4)"],
        ),
        (
            "program p(t, x) : Token * X -> Y",
            ["let z = t + 1.0", "sample y <- lin(x)", "return y"],
            "E0512",
            0,
            ["'t'", "Token"],
        ),
        (
            "program p : X -> Y",
            ["sample h <- lin", "sample y <- h", "return y"],
            "E0513",
            1,
            ["'h'", "variable"],
        ),
        (
            "program p : X -> Y",
            ["sample h <- lin", "sample y <- h(h)", "return y"],
            "E0513",
            1,
            ["'h'"],
        ),
        (
            "program p : Token -> Y",
            ["sample y <- lin", "return y"],
            "E0514",
            0,
            ["X (Real 2)", "Token (FinSet 16)"],
        ),
        (
            "program p(t) : Token -> H",
            ["sample y <- Categorical(t)", "return y"],
            "E0515",
            0,
            ["'t'", "Token"],
        ),
        ("program p : X -> Y", [], "E0516", -1, ["'p'"]),
        (
            "program p : X -> Y",
            ["sample y <- lin", "let z = lin + 1.0", "return y"],
            "E0104",
            1,
            ["'lin'"],
        ),
    ],
)
def test_program_rules(header: str, steps: list[str], code: str, step: int, words: list[str]):
    text = prog(header, *steps)
    d = one(text, code)
    for word in words:
        assert word in d.message, d.message
    assert d.range.line + 1 == STEP0 + step


def test_broken_step_does_not_hide_the_others():
    text = prog(
        "program p : X -> Y",
        "sample a <- lin",
        "sample b <- lin $$",
        "sample c <- nope",
        "return a",
    )
    assert diagnose(text) == [("E0002", STEP0 + 1), ("E0101", STEP0 + 2)]
    assert set(program_locals(text, "p")) == {"a", "b", "c"}


def test_unreadable_step_still_binds_its_name():
    text = prog("program p : X -> Y", "sample a <- : : :", "return a")
    assert [c for c, _ in diagnose(text)] == ["E0001"]
    assert "a" in program_locals(text, "p")


def test_unreadable_header_still_declares_the_program():
    text = HEAD + "program p : : : : :\n    sample y <- lin\n    return y\nexport p\n"
    analysis = analyse(text)
    assert "p" in analysis.symbols and analysis.symbols["p"].kind == "program"
    assert [d.code for d in analysis.diagnostics] == ["E0001"]


def test_program_is_a_morphism():
    text = prog("program p : X -> Y", "sample y <- lin", "return y") + "let q = p >> lin\n"
    assert [c for c, _ in diagnose(text)] == ["E0401"]
    text = prog("program p : X -> X", "sample y <- lin", "return y")
    assert "E0508" in [d.code for d in messages(text)]


# ----------------------------------------------------------------- the cache


def test_unchanged_items_are_not_rechecked():
    lines = [f"object Q{i}_cachetest : Real {i + 1}" for i in range(30)]
    lines += [
        f"morphism m{i}_cachetest : Q{i}_cachetest -> Q{i}_cachetest [role=kernel] ~ Normal"
        for i in range(30)
    ]
    text = "\n".join(lines) + "\n"
    cache = FrontendCache()
    analyse(text, cache)
    before = cache_stats(cache)
    analyse(text, cache)
    mid = cache_stats(cache)
    assert mid["checked"] == before["checked"]
    assert mid["reused"] - before["reused"] == 60
    # Edit one morphism: it alone is re-checked.
    edited = lines[:]
    edited[45] = edited[45].replace("Normal", "StudentT")
    analyse("\n".join(edited) + "\n", cache)
    after = cache_stats(cache)
    assert after["checked"] - mid["checked"] == 1
    # Change an object's type: the object and its one user are re-checked.
    edited = lines[:]
    edited[3] = edited[3].replace("Real", "Positive")
    analyse("\n".join(edited) + "\n", cache)
    last = cache_stats(cache)
    assert last["checked"] - after["checked"] == 2


def test_inserting_a_line_rechecks_only_it():
    lines = [f"object R{i}_insert : Real {i + 1}" for i in range(20)]
    cache = FrontendCache()
    analyse("\n".join(lines) + "\n", cache)
    before = cache_stats(cache)
    lines.insert(10, "object NewOne_insert : Real 3")
    analysis = analyse("\n".join(lines) + "\n", cache)
    after = cache_stats(cache)
    assert after["checked"] - before["checked"] == 1
    assert analysis.symbols["R15_insert"].line == 16  # placed at its new line


def test_cached_results_are_placed_at_their_new_position():
    body = "object A : Real 1\nlet t = nope_cached\n"
    first = analyse(body)
    second = analyse("\n\n\n" + body)
    assert [d.range.line for d in first.diagnostics if d.code == "E0101"] == [1]
    assert [d.range.line for d in second.diagnostics if d.code == "E0101"] == [4]


def test_later_declaration_invalidates_a_use():
    text = "object A : Real 1\nlet t = later_f\n"
    assert [c for c, _ in diagnose(text) if c != "W0601"] == ["E0101"]
    text2 = text + "morphism later_f : A -> A [role=kernel] ~ Normal\n"
    assert [c for c, _ in diagnose(text2) if c != "W0601"] == ["E0102"]


def test_parameters_may_name_the_whole_input_or_its_leaves() -> None:
    base = (
        "object E : Real 4\nobject C : Real 3\nobject H : Real 3\n"
        "object State : C * H\nobject Stream : E * E\n"
    )
    whole = base + "program block(x) : Stream -> Stream\n    return x\nexport block\n"
    assert diagnose(whole) == []
    leaves = (
        base
        + "morphism step : E * C * H -> State [role=kernel, scale=0.1] ~ Normal\n"
        + "program cell(x, c, h) : E * State -> State\n"
        + "    sample s <- step(x, c, h)\n"
        + "    return s\n"
        + "let run = scan(cell)\n"
        + "let run2 = scan(step)\n"
        + "export run\n"
    )
    assert diagnose(leaves) == []
    assert types_of(leaves)["run2"] == "E -> State"


# ------------------------------------------------------------- did you mean


def test_did_you_mean_is_incremental_and_exact(monkeypatch: pytest.MonkeyPatch):
    import difflib

    from quivers.semantic import checker

    decls = "".join(f"let dym{i}_x = dym_a{i} >> dym_b{i}\n" for i in range(120))
    cache = FrontendCache()
    analyse(decls, cache)  # the cold check searches every name
    scanned: list[int] = []
    real = checker._best_match

    def counting(word, pool):
        pool = list(pool)
        scanned.append(len(pool))
        return real(word, pool)

    monkeypatch.setattr(checker, "_best_match", counting)
    # An edit that declares one more name: each unknown name is compared with it only.
    edited = decls + "let dym_a7x = dym5_x\n"
    analysis = analyse(edited, cache)
    assert sum(scanned) <= 2 * 121
    # ... and every suggestion is difflib's over the file's morphism-like names.
    pool = [n for n, s in analysis.symbols.items() if s.kind in ("morphism", "let", "program")]
    for d in analysis.diagnostics:
        if d.code != "E0101":
            continue
        name = edited[d.range.offset : d.range.end_offset]
        close = difflib.get_close_matches(name, pool, n=1, cutoff=0.6)
        expected = f"did you mean '{close[0]}'?" if close else None
        assert d.suggestion == expected, name


def test_checker_cache_is_freed_when_the_parser_cache_is():
    cache = FrontendCache(max_chars=50_000)
    head = "object A : Real 1\nmorphism f : A -> A [role=kernel] ~ Normal\n"
    parts = ", ".join(["f"] * 4_000)  # one unit of 12,000 characters
    for k in range(10):
        analyse(head + f"let g = fan({parts}{' ' * k})\nlet h = f\n", cache)
    # Each version's nodes died with the parser's cache; the checker let them go too.
    assert len(cache.checks) <= 8
