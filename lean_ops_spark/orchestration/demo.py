"""``lean-ops demo``: the whole platform on the embedded default, in a few minutes.

Bootstrap -> seed both example topics with injected faults in several Firehose-like
appends -> run the pipeline (the state machine definition, local tasks) with a small
per-run cap so the backlog loop is exercised -> health-driven maintenance -> a health
report. Everything runs on the project home's SQLite catalog and warehouse.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass, replace
from datetime import datetime, timezone
from pathlib import Path
from typing import TYPE_CHECKING, Any

from lean_ops_spark.catalog.bootstrap import bootstrap_tables
from lean_ops_spark.catalog.naming import topic_tables
from lean_ops_spark.config.models import ProjectConfig
from lean_ops_spark.orchestration.local_runner import ExecutionEvent
from lean_ops_spark.orchestration.pipeline import PipelineResult, local_environment, run_pipeline
from lean_ops_spark.orchestration.snapshots import open_snapshot_source
from lean_ops_spark.raw import fault_rates, generate_events, new_seed
from lean_ops_spark.raw.writer import append_raw
from lean_ops_spark.session import LocalHome

if TYPE_CHECKING:
    from pyspark.sql import SparkSession

__all__ = ["DemoReport", "demo_config", "run_demo"]


@dataclass(frozen=True)
class DemoReport:
    """What the demo did: seeds, the pipeline per topic, maintenance, where the report is."""

    seed: int
    seeded: dict[str, dict[str, Any]]
    pipeline: PipelineResult
    maintenance: dict[str, Any]
    health_report: Path
    duration_seconds: float

    def as_dict(self) -> dict[str, Any]:
        return {
            "ok": self.pipeline.ok,
            "seed": self.seed,
            "seeded": self.seeded,
            "pipeline": [t.as_dict() for t in self.pipeline.topics],
            "maintenance": self.maintenance,
            "health_report": str(self.health_report),
            "duration_seconds": round(self.duration_seconds, 1),
        }


def demo_config(config: ProjectConfig, max_snapshots_per_run: int) -> ProjectConfig:
    """The config with a small per-run cap, so a few appends make a backlog to loop over."""
    topics = {
        name: replace(c, max_snapshots_per_run=max_snapshots_per_run) for name, c in config.topics.items()
    }
    return replace(config, topics=topics)


def run_demo(
    config: ProjectConfig,
    home: LocalHome,
    spark: Callable[[], SparkSession],
    *,
    events: int = 2000,
    appends: int = 6,
    max_snapshots_per_run: int = 2,
    seed: int | None = None,
    say: Callable[[str], None] = lambda _line: None,
    on_event: Callable[[str, ExecutionEvent], None] = lambda _topic, _event: None,
) -> DemoReport:
    """Run the demo end to end (see the module docstring) and return its report. Without a
    ``seed``, a new one (printed): a second demo in the same home adds new keys and message ids."""
    from lean_ops_spark.maintenance.report_html import render_health_html
    from lean_ops_spark.maintenance.runner import MaintenanceRequest, maintain, resolve_tables, survey_health

    started = time.time()
    session = spark()
    cfg = demo_config(config, max_snapshots_per_run)
    bootstrap_tables(session, cfg)
    seeded: dict[str, dict[str, Any]] = {}
    now = datetime.now(timezone.utc)
    seed = new_seed() if seed is None else seed
    for topic in sorted(cfg.topics):
        contract = cfg.topic(topic)
        # Faults below each topic's breaker threshold: the demo shows quarantine, not a trip.
        error_rate = min(0.05, contract.error_rate_threshold * 0.6)
        batch = generate_events(contract, events, fault_rates(error_rate, 0.05, 0.02), seed=seed, now=now)
        snapshots = append_raw(session, topic_tables(cfg.profile, topic).raw, batch.records, appends)
        seeded[topic] = {**batch.as_dict(), "appends": len(snapshots)}
        say(f"seeded {topic}: {len(batch.records)} raw records in {len(snapshots)} appends (seed {seed})")

    environment = replace(local_environment(cfg), backlog_threshold_snapshots=1, backlog_threshold_records=1)
    say("running the pipeline (the Step Functions definition, local tasks) ...")
    result = run_pipeline(
        cfg,
        open_snapshot_source(cfg.profile, home.catalog_db),
        sorted(cfg.topics),
        spark=lambda: session,
        environment=environment,
        job_defaults={"home": str(home.root)},
        on_event=on_event,
    )

    say("running health-driven maintenance ...")
    report = maintain(session, cfg, MaintenanceRequest())
    tables = resolve_tables(cfg)
    survey = survey_health(session, cfg, tables)
    html = render_health_html(survey.tables, maintenance=report, title="lean-ops demo: table health")
    path = home.root / "health.html"
    path.write_text(html, encoding="utf-8")
    return DemoReport(seed, seeded, result, report.as_dict(), path, time.time() - started)
