"""`mlspec lsp`: the language server of .mlspec files on stdin and stdout."""

from __future__ import annotations


def cmd_lsp(args) -> int:
    from mlspec.editor.lsp import serve

    serve()
    return 0


def add_lsp(sub) -> None:
    p = sub.add_parser("lsp", help="run the .mlspec language server on stdin/stdout",
                       description="Runs the language server of .mlspec files for editors "
                                   "(diagnostics as `check` finds them, and more), speaking "
                                   "the Language Server Protocol on stdin and stdout.")
    p.add_argument("--stdio", action="store_true",
                   help="accepted for editor clients; stdio is the only transport")
    p.set_defaults(fn=cmd_lsp, catches_signals=True)  # its client stops it
