"""One module per ``lean-ops`` subcommand; each exposes ``register(subparsers)``."""
