"""Editor support for .mlspec files: a Pygments lexer and a language server."""
