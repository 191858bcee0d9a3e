"""One module per ``einloom`` subcommand; each exposes ``register(subparsers)``."""
