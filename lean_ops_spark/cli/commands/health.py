"""``lean-ops health``: table health from Iceberg metadata (terminal table, JSON, HTML), metrics,
and the CloudWatch dashboard definition."""

from __future__ import annotations

import argparse
from pathlib import Path
from typing import Any

from lean_ops_spark.cli.context import CliContext
from lean_ops_spark.cli.output import check_output_file, format_table, print_json
from lean_ops_spark.maintenance.dashboard import dashboard_json, deploy_dashboard
from lean_ops_spark.maintenance.health import TableHealth
from lean_ops_spark.maintenance.report_html import render_health_html
from lean_ops_spark.maintenance.runner import resolve_tables, survey_health
from lean_ops_spark.metrics import MetricSink, NullSink, build_sink

HELP = "measure table health from Iceberg metadata: files, small files, deletes, manifests, snapshots"


def register(
    subparsers: argparse._SubParsersAction[argparse.ArgumentParser], common: argparse.ArgumentParser
) -> None:
    parser = subparsers.add_parser(
        "health",
        parents=[common],
        help=HELP,
        description=HELP + ". Reads metadata tables only (no data scan); emits the figures as "
        "metrics to the profile's sink (log locally, CloudWatch on Glue).",
    )
    which = parser.add_mutually_exclusive_group()
    which.add_argument(
        "--table", nargs="+", metavar="T", help="database.table (default: every configured table)"
    )
    which.add_argument("--all", action="store_true", help="every configured table (the default)")
    parser.add_argument("--html", metavar="PATH", help="also write a self-contained HTML report with charts")
    parser.add_argument("--no-metrics", action="store_true", help="do not emit metrics")
    parser.add_argument(
        "--dashboard-out", metavar="PATH", help="write the CloudWatch dashboard definition (JSON) to PATH"
    )
    parser.add_argument(
        "--deploy-dashboard",
        metavar="NAME",
        help="create/replace CloudWatch dashboard NAME (needs AWS credentials)",
    )
    parser.set_defaults(handler=run)


def _size(n: float) -> str:
    return f"{n / 1e6:.2f}"


def _print_text(healths: tuple[TableHealth, ...], missing: tuple[str, ...]) -> None:
    print(
        format_table(
            [
                "table",
                "data files",
                "small",
                "small %",
                "avg MB",
                "deletes pos/eq",
                "del ratio",
                "manifests",
                "avg manifest KB",
                "snapshots",
                "oldest h",
                "MB",
                "rows",
            ],
            [
                [
                    h.table.sql,
                    h.data_file_count,
                    h.small_file_count,
                    f"{h.small_file_ratio:.0%}",
                    _size(h.avg_data_file_bytes),
                    f"{h.position_delete_file_count}/{h.equality_delete_file_count}",
                    f"{h.delete_file_ratio:.2f}",
                    h.manifest_count,
                    f"{h.avg_manifest_bytes / 1024:.1f}",
                    h.snapshot_count,
                    "" if h.oldest_snapshot_age_hours is None else f"{h.oldest_snapshot_age_hours:.1f}",
                    _size(h.data_bytes),
                    h.record_count,
                ]
                for h in healths
            ],
        )
    )
    for h in healths:
        worst = h.top_small_file_partitions(3)
        if worst:
            listed = ", ".join(f"{p.label} ({p.small_file_count}/{p.data_file_count})" for p in worst)
            print(f"{h.table.sql}: most small files in {listed}")
    if missing:
        print(f"{len(missing)} table(s) missing: {', '.join(missing)} (run `lean-ops init`)")


def run(ctx: CliContext) -> int:
    config = ctx.config
    profile = config.profile
    document: dict[str, Any] = {"ok": True}
    for option, path in (("--html", ctx.args.html), ("--dashboard-out", ctx.args.dashboard_out)):
        if path:
            check_output_file(option, path)
    dashboard_only = (ctx.args.dashboard_out or ctx.args.deploy_dashboard) and not (
        ctx.args.table or ctx.args.all
    )
    if ctx.args.dashboard_out or ctx.args.deploy_dashboard:
        body = dashboard_json(
            profile.metrics.namespace, profile.region or "us-east-1", config.maintenance.thresholds
        )
        if ctx.args.dashboard_out:
            Path(ctx.args.dashboard_out).write_text(body, encoding="utf-8")
            document["dashboard_out"] = ctx.args.dashboard_out
        if ctx.args.deploy_dashboard:
            messages = deploy_dashboard(ctx.args.deploy_dashboard, body, region=profile.region)
            document["dashboard"] = {"name": ctx.args.deploy_dashboard, "messages": messages}
        if dashboard_only:
            if ctx.json:
                print_json(document)
            else:
                for key in ("dashboard_out", "dashboard"):
                    if key in document:
                        print(f"{key}: {document[key]}")
            return 0

    tables = resolve_tables(config, ctx.args.table or ())  # unknown names fail before Spark starts
    sink: MetricSink = (
        NullSink() if ctx.args.no_metrics else build_sink(profile.metrics, region=profile.region)
    )
    survey = survey_health(ctx.spark(), config, tables, sink=sink)
    if ctx.args.html:
        thresholds = {
            h.table.sql: config.maintenance.for_table(h.table.layer, h.table.name).thresholds
            for h in survey.tables
        }
        Path(ctx.args.html).write_text(
            render_health_html(survey.tables, thresholds=thresholds), encoding="utf-8"
        )
        document["html"] = ctx.args.html
    if ctx.json:
        print_json({**document, **survey.as_dict()})
        return 0
    _print_text(survey.tables, survey.missing)
    if ctx.args.html:
        print(f"HTML report: {ctx.args.html}")
    return 0
