"""Layout: how a file is cut into units (spec section 2, grammars/qvr.lark header)."""

from __future__ import annotations

from .helpers import ast, codes, layout, parse, units


def _shape(text: str) -> list[tuple[str, int, int]]:
    """(kind, first line, last line) of each unit."""
    return [(u.kind, u.line, u.end_line) for u in units(text)]


def test_one_unit_per_top_level_line():
    text = "object A : Real 2\nobject B : FinSet 3\nlet f = g\n"
    assert _shape(text) == [("declaration", 0, 0), ("declaration", 1, 1), ("declaration", 2, 2)]


def test_indented_line_continues_a_declaration():
    text = "morphism f : A ->\n    B [role=kernel]\n  ~ Normal\nobject B : Real 1\n"
    shape = _shape(text)
    assert shape[0] == ("declaration", 0, 2)
    node = units(text)[0].node
    assert isinstance(node, ast.MorphismDecl)
    assert node.family is not None and node.family.name.text == "Normal"


def test_open_bracket_continues_at_column_zero():
    text = "let g = fan(f,\nh)\nobject A : Real 1\n"
    assert _shape(text) == [("declaration", 0, 1), ("declaration", 2, 2)]
    node = units(text)[0].node
    assert isinstance(node, ast.LetDecl) and isinstance(node.expr, ast.Fan)
    assert [p.name.text for p in node.expr.parts] == ["f", "h"]


def test_open_bracket_does_not_swallow_next_declaration():
    text = "let g = fan(f, h\nobject A : Real 1\nprogram p : A -> A\n    return x\n"
    kinds = [(u.kind, u.line) for u in units(text)]
    assert kinds == [("declaration", 0), ("declaration", 1), ("program_header", 2), ("step", 3)]


def test_open_bracket_does_not_swallow_next_step():
    text = "program p : A -> A\n    sample x <- f(a,\n    return x\n"
    assert [u.kind for u in units(text)] == ["program_header", "step", "step"]


def test_brackets_inside_strings_and_comments_do_not_count():
    text = 'morphism f : A -> B [role=kernel, init="(("] # ((\nobject C : Real 1\n'
    assert len(units(text)) == 2


def test_program_steps_and_deeper_continuation():
    text = "program p : A -> B\n    sample x <- f >>\n        g\n    return x\nobject C : Real 1\n"
    assert _shape(text) == [
        ("program_header", 0, 0),
        ("step", 1, 2),
        ("step", 3, 3),
        ("declaration", 4, 4),
    ]
    file = parse(text)
    program = file.items[0]
    assert isinstance(program, ast.Program) and len(program.steps) == 2


def test_tab_counts_as_eight_columns():
    assert layout._indent("\tx") == 8
    assert layout._indent("  \tx") == 8
    assert layout._indent("        \tx") == 16
    # A tab-indented step and an 8-space step are at the same depth: two steps.
    text = "program p : A -> A\n\tsample x <- f\n        return x\n"
    assert [u.kind for u in units(text)] == ["program_header", "step", "step"]
    # Four spaces then a deeper tab line: a continuation of the first step.
    text = "program p : A -> A\n    sample x <- f >>\n\tg\n    return x\n"
    assert _shape(text)[1] == ("step", 1, 2)


def test_blank_and_comment_lines_do_not_end_a_program():
    text = (
        "program p : A -> A\n"
        "    sample x <- f\n"
        "\n"
        "# a comment at column 0\n"
        "      # an indented comment\n"
        "    return x\n"
    )
    file = parse(text)
    assert len(file.items) == 1
    program = file.items[0]
    assert isinstance(program, ast.Program)
    assert [type(s.node).__name__ for s in program.steps] == ["SampleStep", "ReturnStep"]
    assert file.diagnostics == []


def test_block_comment_is_blanked_keeping_offsets():
    text = "object A : Real 2 #{ a\nblock }#\nobject B : Real 3\n"
    lay = layout.split(text)
    assert len(lay.masked) == len(text)
    assert lay.masked.count("\n") == text.count("\n")
    assert [c.kind for c in lay.comments] == ["block"]
    assert lay.comments[0].text == "#{ a\nblock }#"
    assert [u.line for u in units(text)] == [0, 2]
    assert parse(text).diagnostics == []


def test_block_comment_inside_a_statement():
    node = units("object A : #{ the type: }# Real 2\n")[0].node
    assert isinstance(node, ast.ObjectDecl) and isinstance(node.type, ast.SpaceType)


def test_unterminated_block_comment_is_E0003_and_hides_the_rest():
    text = "object A : Real 2\n#{ never closed\nobject B : Real 3\n"
    assert codes(text) == [("E0003", 1)]
    assert len(units(text)) == 1


def test_hash_inside_string_is_not_a_comment():
    text = 'morphism f : A -> B [role=kernel, init="a#b"]\n'
    lay = layout.split(text)
    assert lay.comments == []
    node = units(text)[0].node
    assert isinstance(node, ast.MorphismDecl)
    assert isinstance(node.options[1].value, ast.StringOpt)
    assert node.options[1].value.text == "a#b"


def test_line_comment_kinds():
    lay = layout.split("# plain\n#! doc\nobject A : Real 1 # trailing\n")
    assert [(c.kind, c.line, c.col) for c in lay.comments] == [
        ("line", 0, 0),
        ("doc", 1, 0),
        ("line", 2, 18),
    ]


def test_orphan_step_at_column_zero_is_E0004():
    text = "object A : Real 1\nsample x <- f\nreturn x\nobject B : Real 1\n"
    assert codes(text) == [("E0004", 1), ("E0004", 2)]
    assert [u.kind for u in units(text)] == ["declaration", "step", "step", "declaration"]


def test_orphan_step_ends_the_program_above():
    text = "program p : A -> A\n    sample x <- f\nreturn x\n    return y\n"
    file = parse(text)
    program = file.items[0]
    assert isinstance(program, ast.Program) and len(program.steps) == 1
    assert ("E0004", 2) in codes(text)


def test_let_at_column_zero_is_a_declaration_not_an_orphan():
    text = "program p : A -> A\n    return x\nlet g = f\n"
    assert [u.kind for u in units(text)] == ["program_header", "step", "declaration"]
    assert codes(text) == []


def test_indented_first_line_of_file():
    assert [u.kind for u in units("    object A : Real 1\n")] == ["declaration"]
    assert codes("    sample x <- f\n") == [("E0004", 0)]  # a step outside any program
    assert units("    sample x <- f\n")[0].kind == "step"


def test_crlf_and_missing_final_newline():
    text = "object A : Real 2\r\nobject B : Real 3"
    found = units(text)
    assert [u.line for u in found] == [0, 1]
    assert all(isinstance(u.node, ast.ObjectDecl) for u in found)
    assert codes(text) == []


def test_empty_and_comment_only_files():
    for text in ("", "\n\n", "# only a comment\n", "#{ block }#", "   \t \n"):
        assert units(text) == []
        assert codes(text) == []
