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
import re
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


#: One example per command, shown at the end of its ``--help``.
EXAMPLES = {
    "setup-jars": "lean-ops setup-jars --iceberg-version 1.7.1 --with-aws",
    "demo": "lean-ops demo --home /tmp/lake --events 500",
    "validate": "lean-ops validate --conf s3://my-bucket/conf --json",
    "init": "lean-ops init --topics orders",
    "tables": "lean-ops tables --topics orders --json",
    "seed": "lean-ops seed --topic orders --events 5000 --error-rate 0.05 --duplicates 0.05 --late 0.02",
    "curate": "lean-ops curate --topic orders --all-batches --json",
    "replay": "lean-ops replay --topic orders --max-attempts 3",
    "drift": "lean-ops drift --topic orders --json",
    "semantic": "lean-ops semantic --topic orders",
    "dq": "lean-ops dq --table curated.orders --json",
    "pipeline": "lean-ops pipeline --topics orders --env dev",
    "deploy": "lean-ops deploy --env dev --dry-run",
    "health": "lean-ops health --table curated.orders --html health.html",
    "maintain": "lean-ops maintain --table curated.orders --dry-run --ops rewrite_data_files expire_snapshots",
    "grants": "lean-ops grants --env dev --dry-run",
    "iam": "lean-ops iam --env dev --out policies/",
    "snowflake": "lean-ops snowflake ddl --env dev --out snowflake.sql",
    "snowflake ddl": "lean-ops snowflake ddl --env dev --out snowflake.sql",
    "snowflake refresh": "lean-ops snowflake refresh --env dev --dry-run",
}


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
    _add_examples(subparsers, "")
    return parser


class _ExampleFormatter(argparse.HelpFormatter):
    """argparse's formatter, except that the ``example:`` epilog stays one line to copy."""

    def _fill_text(self, text: str, width: int, indent: str) -> str:
        if text.startswith("example: "):
            return indent + text
        return super()._fill_text(text, width, indent)


def _add_examples(subparsers: argparse._SubParsersAction[Any], prefix: str) -> None:
    """``example: ...`` at the end of each (sub)command's help, nested ones (``snowflake ddl``) too."""
    for name, sub in subparsers.choices.items():
        sub.epilog = f"example: {EXAMPLES[prefix + name]}"
        sub.formatter_class = _ExampleFormatter
        for action in sub._actions:
            if isinstance(action, argparse._SubParsersAction):
                _add_examples(action, f"{prefix}{name} ")


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


#: A position line of a YAML parser's error (``  in "<unicode string>", line 46, column 6:``).
_YAML_MARK = re.compile(r'^\s+in "[^"]*", (line \d+, column \d+):?$')


def _one_line(message: str) -> str:
    """The stderr line of an error: its first line; for a YAML parser's error (a config file
    that does not parse), with the positions and the problem its later lines give, without
    the quoted excerpts (the whole text stays in the ``--json`` document)."""
    lines = message.strip().splitlines()
    if not any(_YAML_MARK.match(line) for line in lines[1:]):
        return lines[0]
    parts = [lines[0]]
    for line in lines[1:]:
        mark = _YAML_MARK.match(line)
        if mark:
            parts[-1] += f" (at {mark.group(1)})"
        elif line and not line[0].isspace():
            parts.append(line.strip())
    return ": ".join(parts)


def _print_error(prog: str, kind: str, message: str, as_json: bool, partial: dict[str, Any]) -> None:
    first_line = _one_line(message) if message.strip() else kind
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
