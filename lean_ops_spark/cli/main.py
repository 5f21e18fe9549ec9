"""The ``lean-ops`` command: parse arguments, call one library function, print, exit.

Exit codes: 0 success, 1 a run failed (data, checkpoint, quality...), 2 bad configuration
or arguments, 3 incomplete local runtime (e.g. jars never fetched), 4 unexpected error,
130 interrupted, 141 stdout closed by the reader (``lean-ops validate --json | head -1``).
Every error is one line on stderr and, with ``--json``, one ``{"ok": false, "error": ...}``
document on stdout; argument errors too.
"""

from __future__ import annotations

import argparse
import os
import sys
from collections.abc import Sequence
from typing import Any, NoReturn

from lean_ops_spark._version import __version__
from lean_ops_spark.cli.commands import (
    curate,
    demo,
    deploy,
    dq,
    drift,
    grants,
    health,
    iam,
    init,
    maintain,
    pipeline,
    replay,
    seed,
    semantic,
    setup_jars,
    snowflake,
    tables,
    validate,
)
from lean_ops_spark.cli.context import CliContext, add_common_options
from lean_ops_spark.cli.output import print_json
from lean_ops_spark.errors import LeanOpsError

COMMANDS = (
    setup_jars,
    demo,
    validate,
    init,
    tables,
    seed,
    curate,
    replay,
    drift,
    semantic,
    dq,
    pipeline,
    deploy,
    health,
    maintain,
    grants,
    iam,
    snowflake,
)


class UsageError(SystemExit):
    """The command line does not parse (argparse's error, raised instead of printed). A
    ``SystemExit`` with code 2, as argparse's own, for callers of ``build_parser()``."""

    def __init__(self, prog: str, message: str) -> None:
        super().__init__(2)
        self.prog = prog
        self.message = message


class _Parser(argparse.ArgumentParser):
    """An ArgumentParser whose errors ``main`` reports like every other error (one line,
    the JSON document with ``--json``, exit 2) instead of printing the usage and exiting.
    Subcommand parsers are made of the same class (``add_subparsers`` uses the parent's)."""

    def error(self, message: str) -> NoReturn:
        raise UsageError(self.prog, message)


def build_parser() -> argparse.ArgumentParser:
    parser = _Parser(
        prog="lean-ops",
        description="Raw -> curated -> semantic on Iceberg with Spark: the same code on a laptop "
        "(embedded SQLite catalog), under spark-submit, and on AWS Glue 5.x.",
        epilog="Run `lean-ops <command> --help` for a command's options.",
    )
    parser.add_argument("--version", action="version", version=f"lean-ops {__version__}")
    add_common_options(parser)  # before the command too: `lean-ops --home X curate ...`
    common = argparse.ArgumentParser(add_help=False)
    add_common_options(common, defaults=False)
    subparsers = parser.add_subparsers(dest="command", metavar="<command>", required=True)
    for command in COMMANDS:
        command.register(subparsers, common)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    arguments = list(sys.argv[1:] if argv is None else argv)
    parser = build_parser()
    try:
        args = parser.parse_args(arguments)
    except UsageError as exc:
        # Not parsed, so --json is looked for by hand (anywhere, as argparse would take it).
        wants_json = any(
            a == "--json" or (a.startswith("--js") and "--json".startswith(a)) for a in arguments
        )
        _print_error(exc.prog, "UsageError", f"{exc.message} (see `{exc.prog} --help`)", wants_json, {})
        return 2
    ctx = CliContext(args)
    try:
        code: int = args.handler(ctx)
        sys.stdout.flush()  # a closed stdout fails here, not in the interpreter's exit
        return code
    except BrokenPipeError:
        return _stdout_closed()
    except LeanOpsError as exc:
        return _report(ctx, type(exc).__name__, str(exc), exc.exit_code)
    except KeyboardInterrupt:
        return _report(ctx, "Interrupted", "interrupted", 130)
    except Exception as exc:
        return _report(ctx, type(exc).__name__, f"unexpected {type(exc).__name__}: {exc}", 4)
    finally:
        ctx.close()


def _report(ctx: CliContext, kind: str, message: str, code: int) -> int:
    try:
        _print_error(f"lean-ops {ctx.args.command}", kind, message, ctx.json, ctx.partial_result)
    except BrokenPipeError:
        return _stdout_closed()
    return code


def _print_error(prog: str, kind: str, message: str, as_json: bool, partial: dict[str, Any]) -> None:
    first_line = message.strip().splitlines()[0] if message.strip() else kind
    print(f"{prog}: error: {first_line}", file=sys.stderr)
    if as_json:
        # What the command finished before it failed (e.g. the batches a backlog drain committed).
        print_json({"ok": False, "error": {"type": kind, "message": message}, **partial})
        sys.stdout.flush()


def _stdout_closed() -> int:
    """The reader of stdout went away (``| head``): stop quietly, as a command killed by
    SIGPIPE would, instead of a traceback at every later write and at exit."""
    try:
        devnull = os.open(os.devnull, os.O_WRONLY)
        os.dup2(devnull, sys.stdout.fileno())
    except (OSError, ValueError):  # no real file descriptor (captured in tests)
        pass
    return 141


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
