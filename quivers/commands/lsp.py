"""``qvr lsp``: the language server over stdio."""

from __future__ import annotations

import argparse

from quivers.commands import CliError


def run(args: argparse.Namespace) -> int:
    try:
        from quivers_lsp.server import main
    except ImportError as exc:
        raise CliError(f"the language server is not installed ({exc})") from None
    main()
    return 0
