"""One module per ``lean-ops`` subcommand; each exposes ``register(subparsers, common)`` (``common``: the parent parser of the common options)."""
