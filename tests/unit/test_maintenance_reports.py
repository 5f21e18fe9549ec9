"""Presenting maintenance (no Spark): property drift, the HTML report, the CloudWatch dashboard,
metric emission, the job's arguments and the CLI's contract."""

from __future__ import annotations

import json
from datetime import date, datetime, timezone
from html.parser import HTMLParser
from pathlib import Path

import boto3
import pytest
from moto import mock_aws

from lean_ops_spark.catalog.naming import TableRef
from lean_ops_spark.cli.main import build_parser, main
from lean_ops_spark.config import load_project
from lean_ops_spark.config.models import HealthThresholds
from lean_ops_spark.errors import ConfigError
from lean_ops_spark.maintenance.dashboard import (
    DASHBOARD_RUN_METRICS,
    dashboard_body,
    dashboard_json,
    deploy_dashboard,
)
from lean_ops_spark.maintenance.health import PartitionField, PartitionHealth, SnapshotPoint, TableHealth
from lean_ops_spark.maintenance.job import OPTIONAL_ARGUMENTS, maintenance_request, resolve_frequency
from lean_ops_spark.maintenance.policy import PlannedOperation
from lean_ops_spark.maintenance.procedures import ProcedureOutcome, RewriteDataFilesResult
from lean_ops_spark.maintenance.properties import property_drift
from lean_ops_spark.maintenance.report_html import render_health_html
from lean_ops_spark.maintenance.runner import (
    MaintenanceReport,
    MaintenanceRequest,
    OperationReport,
    TableReport,
    resolve_tables,
)
from lean_ops_spark.maintenance.telemetry import HEALTH_METRICS, OPERATION_METRICS, emit_health, emit_outcome
from lean_ops_spark.metrics import MemorySink
from lean_ops_spark.runtime.jobs import resolve_job_args

REPO = Path(__file__).resolve().parents[2]
CONF = str(REPO / "conf")
NOW = datetime(2026, 11, 20, 12, 0, tzinfo=timezone.utc)
NOW_MS = int(NOW.timestamp() * 1000)
TABLE = TableRef("lake", "raw", "orders_staging", "raw", "orders")


def sample_health() -> TableHealth:
    parts = (
        PartitionHealth((("ingestion_ts_day", date(2026, 11, 20)),), 8, 8, 8000, 80),
        PartitionHealth((("ingestion_ts_day", date(2026, 11, 19)),), 5, 2, 2 * 10**9, 50),
        PartitionHealth((("ingestion_ts_day", date(2026, 11, 18)),), 1, 0, 3 * 10**8, 10),
    )
    health = TableHealth(
        table=TABLE,
        measured_at_ms=NOW_MS,
        current_snapshot_id=42,
        target_file_size_bytes=256 * 1024 * 1024,
        small_file_threshold_bytes=192 * 1024 * 1024,
        data_file_count=14,
        small_file_count=10,
        data_bytes=sum(p.data_bytes for p in parts),
        record_count=140,
        position_delete_file_count=2,
        equality_delete_file_count=1,
        manifest_count=4,
        manifest_bytes=40_000,
        snapshot_count=3,
        oldest_snapshot_ms=NOW_MS - 7_200_000,
        partition_fields=(PartitionField("ingestion_ts_day", "day", "ingestion_ts", "timestamp"),),
        partitions=parts,
        file_size_histogram=((1024, 10), (268435456, 4)),
        snapshots=(
            SnapshotPoint(1, None, NOW_MS - 7_200_000, "append", 8),
            SnapshotPoint(2, 1, NOW_MS - 3_600_000, "overwrite", 13),
            SnapshotPoint(3, 2, NOW_MS, "replace", 14),
        ),
    )
    return health


# --------------------------------------------------------------------------- health figures


def test_derived_health_figures() -> None:
    h = sample_health()
    assert h.small_file_ratio == pytest.approx(10 / 14)
    assert h.delete_file_count == 3
    assert h.delete_file_ratio == pytest.approx(3 / 14)
    assert h.avg_manifest_bytes == 10_000
    assert h.oldest_snapshot_age_hours == 2.0
    assert [p.label for p in h.top_small_file_partitions(2)] == [
        "ingestion_ts_day=2026-11-20",
        "ingestion_ts_day=2026-11-19",
    ]
    doc = h.as_dict(top_partitions=1)
    assert doc["top_small_file_partitions"] == [
        {
            "partition": "ingestion_ts_day=2026-11-20",
            "small_files": 8,
            "data_files": 8,
            "bytes": 8000,
            "records": 80,
        }
    ]
    assert doc["file_size_histogram"][1] == {"from_bytes": 268435456, "files": 4}
    json.dumps(doc)  # JSON-ready


# --------------------------------------------------------------------------- properties


def test_property_drift_sets_reports_and_respects_the_table_definition() -> None:
    current = {"write.target-file-size-bytes": "536870912", "write.distribution-mode": "none", "x": "1"}
    expected = {
        "write.target-file-size-bytes": "268435456",  # drifted
        "write.metadata.delete-after-commit.enabled": "true",  # missing
        "write.distribution-mode": "hash",  # the contract says "none": conflict
        "x": "1",  # in line
    }
    changes = {c.key: c for c in property_drift(current, expected, {"write.distribution-mode": "none"})}
    assert set(changes) == {
        "write.target-file-size-bytes",
        "write.metadata.delete-after-commit.enabled",
        "write.distribution-mode",
    }
    assert changes["write.target-file-size-bytes"].action == "set"
    assert changes["write.target-file-size-bytes"].actual == "536870912"
    assert changes["write.metadata.delete-after-commit.enabled"].actual is None
    assert changes["write.distribution-mode"].action == "conflict"
    assert "table definition sets 'none'" in changes["write.distribution-mode"].describe()
    dry = property_drift(current, expected, dry_run=True)
    assert {c.action for c in dry} == {"drift"}
    assert property_drift(expected, expected) == ()


# --------------------------------------------------------------------------- HTML


class _Collector(HTMLParser):
    def __init__(self) -> None:
        super().__init__()
        self.tags: list[tuple[str, dict[str, str | None]]] = []

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        self.tags.append((tag, dict(attrs)))


def _report(health: TableHealth) -> MaintenanceReport:
    outcome = ProcedureOutcome(
        "rewrite_data_files", "succeeded", 2.0, "CALL ...", RewriteDataFilesResult(10, 2, 8000, 0, None)
    )
    op = OperationReport(PlannedOperation("rewrite_data_files", True, "small <b>files</b>"), outcome)
    table = TableReport(TABLE, True, health, health, (), (op,))
    return MaintenanceReport((table,), False, None, NOW, 3.0)


def test_html_report_is_self_contained_with_three_charts() -> None:
    health = sample_health()
    page = render_health_html([health], generated_at=NOW, maintenance=_report(health))
    collector = _Collector()
    collector.feed(page)
    tags = [t for t, _ in collector.tags]
    assert page.startswith("<!DOCTYPE html>")
    assert tags.count("svg") >= 3
    for forbidden in ("script", "link", "img", "iframe"):
        assert forbidden not in tags
    assert "http://" not in page and "https://" not in page and "src=" not in page
    # one bar per histogram bucket, one small-file bar per partition with small files, one dot per snapshot
    assert sum(1 for t, a in collector.tags if t == "rect" and a.get("class") == "small-bar") == 2
    assert sum(1 for t, a in collector.tags if t == "circle" and a.get("class") == "snapshot") == 3
    assert "lake.raw.orders_staging" in page
    assert "small &lt;b&gt;files&lt;/b&gt;" in page  # reasons are escaped
    assert "rewrote 10 data files" in page


def test_html_report_copes_with_an_empty_table() -> None:
    empty = TableHealth(TABLE, NOW_MS, None, 1, 1)
    page = render_health_html([empty], generated_at=NOW)
    assert "no data files" in page and "no snapshots" in page


# --------------------------------------------------------------------------- dashboard and metrics


def test_dashboard_charts_every_health_metric_with_search_expressions() -> None:
    body = dashboard_body("LeanOps", "eu-west-1", HealthThresholds(small_file_ratio=0.25))
    metric_widgets = [w for w in body["widgets"] if w["type"] == "metric"]
    expressions = [w["properties"]["metrics"][0][0]["expression"] for w in metric_widgets]
    for metric in HEALTH_METRICS:
        assert f"SEARCH('{{LeanOps,Table}} MetricName=\"{metric.name}\"', 'Maximum', 3600)" in expressions
    for name in DASHBOARD_RUN_METRICS:
        assert name in OPERATION_METRICS  # charts only what is emitted
        assert f"SEARCH('{{LeanOps,Table,Operation}} MetricName=\"{name}\"', 'Sum', 86400)" in expressions
    ratio = next(w for w in metric_widgets if "SmallFileRatio" in w["properties"]["title"])
    assert ratio["properties"]["annotations"]["horizontal"][0]["value"] == 0.25
    assert all(w["properties"]["region"] == "eu-west-1" for w in metric_widgets)
    # widgets never overlap on the 24-column grid
    cells = set()
    for w in body["widgets"]:
        for x in range(w["x"], w["x"] + w["width"]):
            for y in range(w["y"], w["y"] + w["height"]):
                assert (x, y) not in cells
                cells.add((x, y))


@mock_aws
def test_dashboard_deploys_to_cloudwatch() -> None:
    client = boto3.client("cloudwatch", region_name="us-east-1")
    body = dashboard_json("LeanOps", "us-east-1")
    deploy_dashboard("lean-ops-table-health", body, client=client)
    stored = client.get_dashboard(DashboardName="lean-ops-table-health")
    assert json.loads(stored["DashboardBody"]) == json.loads(body)
    deploy_dashboard("lean-ops-table-health", body, client=client)  # replace is idempotent
    assert [d["DashboardName"] for d in client.list_dashboards()["DashboardEntries"]] == [
        "lean-ops-table-health"
    ]


def test_health_and_outcome_metrics_carry_table_and_operation_only() -> None:
    sink = MemorySink()
    assert emit_health(sink, sample_health()) == len(HEALTH_METRICS)
    assert sink.values("SmallFileRatio", Table="raw.orders_staging") == [pytest.approx(10 / 14)]
    assert sink.values("OldestSnapshotAgeSeconds") == [7200.0]
    outcome = ProcedureOutcome("rewrite_data_files", "conflict", 1.0, "CALL", error="ValidationException")
    emit_outcome(sink, "raw.orders_staging", outcome)
    assert sink.values("OperationConflicts", Operation="rewrite_data_files") == [1.0]
    assert {dict(m.dimensions).keys() <= {"Table", "Operation"} for m in sink.metrics} == {True}
    assert {m.name for m in sink.metrics} <= {m.name for m in HEALTH_METRICS} | set(OPERATION_METRICS)


# --------------------------------------------------------------------------- job and CLI


def _job_arguments(*argv: str) -> dict[str, str]:
    return resolve_job_args(["maintenance_job.py", *argv], required=(), optional=OPTIONAL_ARGUMENTS)


def test_job_arguments_become_the_maintenance_request() -> None:
    args = _job_arguments(
        "--lean_ops_conf",
        "s3://b/conf",
        "--lean_ops_profile",
        "glue",
        "--lean_ops_tables",
        "raw.a_staging, curated.a",
    )
    assert (args["lean_ops_conf"], args["lean_ops_profile"]) == ("s3://b/conf", "glue")
    request = maintenance_request(args, datetime(2026, 11, 23, 3, tzinfo=timezone.utc))
    assert (request.tables, request.ops, request.dry_run, request.frequency) == (
        ("raw.a_staging", "curated.a"),
        None,
        False,
        "daily",
    )
    chosen = maintenance_request(
        _job_arguments(
            "--lean_ops_ops",
            "expire_snapshots,rewrite_manifests",
            "--lean_ops_dry_run",
            "true",
            "--lean_ops_frequency",
            "any",
        ),
        NOW,
    )
    assert chosen.ops == frozenset({"expire_snapshots", "rewrite_manifests"})
    assert (chosen.dry_run, chosen.frequency, chosen.tables) == (True, None, ())
    assert maintenance_request(
        _job_arguments("--lean_ops_tables", "all", "--lean_ops_dry_run", "false"), NOW
    ) == (maintenance_request({}, NOW))


def test_job_frequency_auto_is_weekly_on_sundays() -> None:
    assert resolve_frequency("auto", datetime(2026, 11, 22, 3, tzinfo=timezone.utc)) == "weekly"  # Sunday
    assert resolve_frequency("auto", datetime(2026, 11, 23, 3, tzinfo=timezone.utc)) == "daily"
    assert resolve_frequency("any", NOW) is None
    assert resolve_frequency("hourly", NOW) == "hourly"


def test_cli_has_health_and_maintain_with_their_options() -> None:
    parser = build_parser()
    args = parser.parse_args(
        [
            "maintain",
            "--table",
            "raw.orders_staging",
            "--dry-run",
            "--ops",
            "expire_snapshots",
            "--frequency",
            "weekly",
        ]
    )
    assert (args.table, args.dry_run, args.ops, args.frequency) == (
        ["raw.orders_staging"],
        True,
        ["expire_snapshots"],
        "weekly",
    )
    args = parser.parse_args(["health", "--all", "--html", "h.html", "--json"])
    assert (args.all, args.html, args.json) == (True, "h.html", True)
    with pytest.raises(SystemExit):
        parser.parse_args(["health", "--all", "--table", "raw.x"])  # one or the other


def test_cli_unknown_table_fails_before_spark_with_exit_2(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["maintain", "--conf", CONF, "--table", "raw.nope", "--json"]) == 2
    document = json.loads(capsys.readouterr().out)
    assert document["error"]["type"] == "ConfigError"
    assert "unknown table 'raw.nope'" in document["error"]["message"]


def test_cli_writes_the_dashboard_without_spark(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    out = tmp_path / "dashboard.json"
    assert main(["health", "--conf", CONF, "--dashboard-out", str(out), "--json"]) == 0
    assert json.loads(capsys.readouterr().out)["dashboard_out"] == str(out)
    body = json.loads(out.read_text())
    assert any("SmallFileRatio" in json.dumps(w) for w in body["widgets"])


def test_request_validates_operations_and_frequency() -> None:
    with pytest.raises(ConfigError, match="unknown maintenance operation"):
        MaintenanceRequest(ops=frozenset({"optimize"}))
    with pytest.raises(ConfigError, match="frequency 'monthly'"):
        MaintenanceRequest(frequency="monthly")


def test_resolve_tables_accepts_configured_and_semantic_names_only() -> None:
    config = load_project(CONF, "local")
    every = resolve_tables(config)
    assert {t.sql for t in every} >= {
        "lake.raw.orders_staging",
        "lake.curated.orders",
        "lake.curated.orders_quarantine",
    }
    topic_tables = [t for t in every if t.layer not in ("semantic", "audit")]
    assert len(topic_tables) == 3 * len(config.topics)
    # the drift audit table every drifted curation run appends to
    assert [t.sql for t in every if t.layer == "audit"] == ["lake.curated.lean_ops_drift_audit"]
    # the semantic tables of the topics' models are maintained too (on the default schedule
    # nothing else would ever expire the snapshots every semantic run commits)
    assert {(t.sql, t.topic) for t in every if t.layer == "semantic"} == {
        ("lake.semantic.orders", "orders"),
        ("lake.semantic.orders_daily_revenue", "orders"),
        ("lake.semantic.clickstream", "clickstream"),
    }
    [raw, curated] = resolve_tables(config, ["raw.orders_staging", "lake.curated.orders"])
    assert (raw.layer, raw.topic, curated.layer) == ("raw", "orders", "curated")
    [model] = resolve_tables(config, ["semantic.daily_revenue"])
    assert (model.layer, model.sql) == ("semantic", "lake.semantic.daily_revenue")
    [audit] = resolve_tables(config, ["curated.lean_ops_drift_audit"])
    assert audit.layer == "audit"
    with pytest.raises(ConfigError, match=r"unknown table 'raw\.payments_staging'"):
        resolve_tables(config, ["raw.payments_staging"])


class _DeniedCatalog:
    """A session whose catalog cannot answer (AccessDenied, an outage), without a JVM."""

    class sparkContext:
        _jvm = None

    class catalog:
        @staticmethod
        def tableExists(name: str) -> bool:
            raise RuntimeError(f"AccessDeniedException: no permission on {name}")


def test_a_table_the_catalog_cannot_answer_for_fails_the_run_instead_of_counting_as_missing() -> None:
    """Any ``tableExists`` error read as "not created yet": the run reported every table
    ``missing`` and ``ok``, and a role without access went unnoticed for good."""
    from lean_ops_spark.errors import CatalogError
    from lean_ops_spark.maintenance.runner import maintain, survey_health

    config = load_project(CONF, "local")
    table = resolve_tables(config, ["raw.orders_staging"])[0]
    report = maintain(_DeniedCatalog(), config, MaintenanceRequest(), tables=[table])  # type: ignore[arg-type]
    [only] = report.tables
    assert only.status == "failed" and not report.ok
    assert only.error is not None and "lake.raw.orders_staging" in only.error and "AccessDenied" in only.error
    with pytest.raises(CatalogError, match=r"lake\.raw\.orders_staging: the catalog cannot tell"):
        survey_health(_DeniedCatalog(), config, [table])  # type: ignore[arg-type]
