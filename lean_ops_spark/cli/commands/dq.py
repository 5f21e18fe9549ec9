"""``lean-ops dq``: run a table's data-quality suite (Great Expectations) and print the results."""

from __future__ import annotations

import argparse

from lean_ops_spark.cli.context import CliContext
from lean_ops_spark.cli.output import format_table, print_json
from lean_ops_spark.quality.check import check_table, table_suite
from lean_ops_spark.quality.results import DQResult

HELP = "run a table's data-quality suite (conf/quality/<layer>/<topic>.yaml) and print the results"


def register(
    subparsers: argparse._SubParsersAction[argparse.ArgumentParser], common: argparse.ArgumentParser
) -> None:
    parser = subparsers.add_parser(
        "dq",
        parents=[common],
        help=HELP,
        description=HELP + ". --branch validates a branch instead of main, e.g. the audit branch "
        "a failed semantic run kept (lean_ops_audit_<run id>, named in its output). Exit 1 when an "
        "expectation fails.",
    )
    parser.add_argument(
        "--table", required=True, help="<layer>.<table>, e.g. semantic.orders or curated.orders"
    )
    parser.add_argument("--branch", help="validate this branch of the table (default: main)")
    parser.set_defaults(handler=run)


def _print(result: DQResult) -> None:
    print(f"{result.table} ({result.suite}, {result.source}): {result.summary()}")
    print(
        format_table(
            ["expectation", "ok", "unexpected", "observed", "samples"],
            [
                [
                    r.expectation.describe(),
                    "yes" if r.success else "NO",
                    "" if r.unexpected_count is None else r.unexpected_count,
                    "" if r.observed_value is None else r.observed_value,
                    ", ".join(map(str, r.sample_values)) if r.sample_values else (r.error or ""),
                ]
                for r in result.results
            ],
        )
    )


def run(ctx: CliContext) -> int:
    # A bad name or a table without a suite fails before Spark starts.
    suite = table_suite(ctx.config, ctx.args.table)
    result = check_table(ctx.spark(), ctx.config, ctx.args.table, branch=ctx.args.branch, suite=suite)
    if ctx.json:
        print_json({"ok": result.success, **result.as_dict()})
    else:
        _print(result)
    return 0 if result.success else 1
