"""The architecture's import invariants (docs/dev/architecture.md)."""

from __future__ import annotations

from .helpers import imported_modules

FRONT_END = "quivers.syntax", "quivers.semantic", "quivers.compiler", "quivers.dsl"


def test_import_quivers_and_the_front_end_do_not_import_torch() -> None:
    mods = imported_modules(
        "import quivers, quivers.syntax, quivers.semantic, quivers.analysis, "
        "quivers.compiler.lower, quivers.runtime.ir, quivers.cli, quivers.dsl"
    )
    assert "torch" not in mods


def test_syntax_depends_on_lark_and_core_only() -> None:
    mods = imported_modules("import quivers.syntax, quivers.syntax.formatter")
    ours = {m for m in mods if m.startswith("quivers.")}
    assert ours <= {m for m in ours if m.startswith(("quivers.syntax", "quivers.core"))}


def test_semantic_and_analysis_know_nothing_of_lsp_or_the_runtime() -> None:
    mods = imported_modules("import quivers.semantic, quivers.analysis")
    assert not {m for m in mods if m.startswith(("pygls", "lsprotocol", "quivers.runtime."))} - {
        "quivers.runtime.ir"
    }
    assert not any(m.startswith(("quivers.compiler", "quivers.inference")) for m in mods)


def test_inference_never_imports_the_front_end() -> None:
    mods = imported_modules("import quivers.inference")
    assert not any(m.startswith(FRONT_END) for m in mods)


def test_runtime_never_imports_the_front_end() -> None:
    mods = imported_modules("import quivers.runtime.build")
    assert not any(m.startswith(FRONT_END) for m in mods)


def test_server_process_imports_no_torch() -> None:
    mods = imported_modules("import quivers_lsp.server; quivers_lsp.server.build_server()")
    assert "torch" not in mods
    assert "pygls" in mods
