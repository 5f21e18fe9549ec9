"""The ``lean-ops`` command: parse arguments, call one library function, print, exit.

Exit codes: 0 success, 1 a run failed (data, checkpoint, quality...), 2 bad configuration
or arguments, 3 incomplete local runtime (e.g. jars never fetched), 4 unexpected error.
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Sequence

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


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
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
    parser = build_parser()
    args = parser.parse_args(argv)
    ctx = CliContext(args)
    try:
        code: int = args.handler(ctx)
        return code
    except LeanOpsError as exc:
        _report(ctx, type(exc).__name__, str(exc))
        return exc.exit_code
    except KeyboardInterrupt:
        _report(ctx, "Interrupted", "interrupted")
        return 130
    except Exception as exc:
        _report(ctx, type(exc).__name__, f"unexpected {type(exc).__name__}: {exc}")
        return 4
    finally:
        ctx.close()


def _report(ctx: CliContext, kind: str, message: str) -> None:
    first_line = message.strip().splitlines()[0] if message.strip() else kind
    print(f"lean-ops {ctx.args.command}: error: {first_line}", file=sys.stderr)
    if ctx.json:
        print_json({"ok": False, "error": {"type": kind, "message": message}})


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
