"""A maintenance run: measure -> enforce properties -> plan -> execute -> measure again -> report.

:func:`maintain` is the one function ``lean-ops maintain`` and ``jobs/maintenance_job.py``
call; :func:`survey_health` is what ``lean-ops health`` calls. Both take the session and
a metric sink as parameters and return result objects; nothing here prints.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field, replace
from datetime import datetime, timezone
from typing import TYPE_CHECKING, Any

from lean_ops_spark.catalog.bootstrap import planned_definitions
from lean_ops_spark.catalog.checkpoints import snapshot_records
from lean_ops_spark.catalog.naming import TableRef
from lean_ops_spark.config.models import Profile, ProjectConfig
from lean_ops_spark.drift.audit import audit_table
from lean_ops_spark.errors import CatalogError, ConfigError
from lean_ops_spark.maintenance.health import TableHealth, measure_health
from lean_ops_spark.maintenance.policy import (
    FREQUENCIES,
    OPERATION_ORDER,
    PlanContext,
    PlannedOperation,
    operation_gate,
    plan_maintenance,
)
from lean_ops_spark.maintenance.procedures import ProcedureOutcome, iceberg_runtime_version, run_procedure
from lean_ops_spark.maintenance.properties import PropertyChange, enforce_properties
from lean_ops_spark.maintenance.protection import (
    CheckpointConsumer,
    ExpiryProtection,
    checkpoint_consumers,
    expiry_protection,
    read_consumer_checkpoints,
    read_own_checkpoint,
)
from lean_ops_spark.maintenance.telemetry import emit_health, emit_outcome
from lean_ops_spark.metrics import MetricSink, NullSink

if TYPE_CHECKING:
    from pyspark.sql import SparkSession

__all__ = [
    "ConsumerLookup",
    "HealthSurvey",
    "MaintenanceReport",
    "MaintenanceRequest",
    "OperationReport",
    "TableReport",
    "maintain",
    "maintain_table",
    "resolve_tables",
    "semantic_tables",
    "survey_health",
]

_log = logging.getLogger(__name__)

ConsumerLookup = Callable[["SparkSession", Profile, TableRef], Sequence[CheckpointConsumer]]


@dataclass(frozen=True)
class MaintenanceRequest:
    """What to maintain.

    Attributes:
        tables: ``database.table`` names; empty means every configured table.
        ops: operations to consider (``--ops``); None for all.
        dry_run: measure and plan, change nothing (orphans are listed by a dry-run call).
        frequency: the schedule this run serves (hourly, daily, weekly); None for any.
        now: the run's time (tests pin it); None for the clock.
    """

    tables: tuple[str, ...] = ()
    ops: frozenset[str] | None = None
    dry_run: bool = False
    frequency: str | None = None
    now: datetime | None = None

    def __post_init__(self) -> None:
        unknown = sorted(set(self.ops or ()) - set(OPERATION_ORDER))
        if unknown:
            raise ConfigError(
                f"unknown maintenance operation(s) {', '.join(unknown)} (known: {', '.join(OPERATION_ORDER)})"
            )
        if self.frequency is not None and self.frequency not in FREQUENCIES:
            raise ConfigError(f"frequency {self.frequency!r} is not one of {', '.join(FREQUENCIES)}")


@dataclass(frozen=True)
class OperationReport:
    """One operation of one table: the decision, and what running it did."""

    plan: PlannedOperation
    outcome: ProcedureOutcome | None = None

    @property
    def status(self) -> str:
        """``skipped``, ``planned`` (dry run), or the outcome's status."""
        if not self.plan.run:
            return "skipped"
        return "planned" if self.outcome is None else self.outcome.status

    def as_dict(self) -> dict[str, Any]:
        return {
            **self.plan.as_dict(),
            "status": self.status,
            "outcome": None if self.outcome is None else self.outcome.as_dict(),
        }


@dataclass(frozen=True)
class TableReport:
    """Everything a run did to one table, with health before and after."""

    table: TableRef
    exists: bool
    health_before: TableHealth | None = None
    health_after: TableHealth | None = None
    properties: tuple[PropertyChange, ...] = ()
    operations: tuple[OperationReport, ...] = ()
    protection: ExpiryProtection | None = None
    error: str | None = None

    @property
    def status(self) -> str:
        if not self.exists and self.error is None:
            return "missing"
        if self.error is not None or any(o.status == "failed" for o in self.operations):
            return "failed"
        if any(o.status == "conflict" for o in self.operations):
            return "conflict"
        return "ok"

    def operation(self, name: str) -> OperationReport:
        for op in self.operations:
            if op.plan.name == name:
                return op
        raise KeyError(name)

    def as_dict(self) -> dict[str, Any]:
        return {
            "table": self.table.sql,
            "layer": self.table.layer,
            "status": self.status,
            "error": self.error,
            "properties": [c.as_dict() for c in self.properties],
            "protection": None
            if self.protection is None
            else {
                "floor_ms": self.protection.floor_ms,
                "blocked": self.protection.blocked,
                "detail": self.protection.describe(),
            },
            "operations": [o.as_dict() for o in self.operations],
            "health_before": None if self.health_before is None else self.health_before.as_dict(),
            "health_after": None if self.health_after is None else self.health_after.as_dict(),
        }


@dataclass(frozen=True)
class MaintenanceReport:
    """A whole run. ``ok`` is false when an operation failed (conflicts are retried next run)."""

    tables: tuple[TableReport, ...]
    dry_run: bool
    frequency: str | None
    started_at: datetime
    seconds: float

    @property
    def ok(self) -> bool:
        return all(t.status in ("ok", "conflict", "missing") for t in self.tables)

    @property
    def conflicts(self) -> int:
        return sum(1 for t in self.tables for o in t.operations if o.status == "conflict")

    def table(self, sql_name: str) -> TableReport:
        for report in self.tables:
            if report.table.sql == sql_name:
                return report
        raise KeyError(sql_name)

    def as_dict(self) -> dict[str, Any]:
        return {
            "ok": self.ok,
            "dry_run": self.dry_run,
            "frequency": self.frequency,
            "started_at": self.started_at.isoformat(),
            "seconds": round(self.seconds, 3),
            "conflicts": self.conflicts,
            "tables": [t.as_dict() for t in self.tables],
        }


@dataclass(frozen=True)
class HealthSurvey:
    """Health of the requested tables (``missing``: configured but not created yet)."""

    tables: tuple[TableHealth, ...]
    missing: tuple[str, ...] = field(default=())

    def as_dict(self) -> dict[str, Any]:
        return {"tables": [h.as_dict() for h in self.tables], "missing": list(self.missing)}


def semantic_tables(config: ProjectConfig) -> tuple[TableRef, ...]:
    """The semantic tables of the configured topics' models (``conf/semantic/<topic>.yaml``),
    the tables the semantic job writes. A topic whose model file cannot be read is skipped
    with a warning (the semantic job refuses it loudly); its tables are not maintained."""
    from lean_ops_spark.config.sources import open_config_source
    from lean_ops_spark.semantic.tables import model_tables

    source = open_config_source(config.root or "conf")
    out: dict[str, TableRef] = {}
    for topic in sorted(config.topics):
        try:
            tables = model_tables(source, config.profile, topic)
        except ConfigError as exc:
            _log.warning("semantic tables of topic %s are not maintained: %s", topic, exc)
            continue
        for table in tables:
            out.setdefault(table.sql, table)
    return tuple(out.values())


def resolve_tables(config: ProjectConfig, names: Sequence[str] = ()) -> tuple[TableRef, ...]:
    """The configured tables (every topic's raw, curated, quarantine, and the semantic tables
    of its models; the drift audit table), or those named.

    A name is ``database.table`` or ``catalog.database.table``; besides the configured
    tables, any table of the semantic database may be named.

    Raises:
        ConfigError: a name that is neither configured nor in the semantic database.
    """
    # The drift audit table, and the semantic tables too: each drifted curation run appends
    # to the one, each semantic run commits to the others (and leaves the snapshots of the
    # audit branches it drops); only maintenance expires and compacts them.
    configured = [d.table for d in planned_definitions(config)]
    if config.topics:
        configured.append(audit_table(config.profile))
    if not names:
        return (*configured, *semantic_tables(config))
    by_name = {t.identifier: t for t in configured}
    profile = config.profile
    out = []
    for name in names:
        parts = name.split(".")
        if len(parts) == 3 and parts[0] == profile.catalog:
            parts = parts[1:]
        key = ".".join(parts)
        if key in by_name:
            out.append(by_name[key])
        elif len(parts) == 2 and parts[0] == profile.databases.semantic:
            out.append(TableRef(profile.catalog, parts[0], parts[1], "semantic"))
        else:
            known = ", ".join(sorted(by_name)) or "none"
            raise ConfigError(
                f"unknown table {name!r} (configured: {known}; or any {profile.databases.semantic}.*)"
            )
    return tuple(out)


def _exists(spark: SparkSession, table: TableRef) -> bool:
    """Whether ``table`` exists; a catalog that cannot answer (access denied, an outage) raises
    a CatalogError naming the table: such a table is not "not created yet"."""
    try:
        return bool(spark.catalog.tableExists(table.sql))
    except Exception as exc:
        raise CatalogError(
            f"{table.sql}: the catalog cannot tell whether the table exists: "
            f"{type(exc).__name__}: {(str(exc).splitlines() or [''])[0]}"
        ) from exc


def survey_health(
    spark: SparkSession,
    config: ProjectConfig,
    tables: Sequence[TableRef],
    *,
    sink: MetricSink | None = None,
    now: datetime | None = None,
) -> HealthSurvey:
    """Measure each existing table (with its own policy's thresholds) and emit health metrics.

    Raises:
        CatalogError: the catalog cannot tell whether a table exists (access denied, an outage).
    """
    sink = sink or NullSink()
    healths, missing = [], []
    for table in tables:
        if not _exists(spark, table):
            missing.append(table.sql)
            continue
        policy = config.maintenance.for_table(table.layer, table.name)
        health = measure_health(spark, table, policy.thresholds, now=now)
        emit_health(sink, health)
        healths.append(health)
    sink.flush()
    return HealthSurvey(tuple(healths), tuple(missing))


def _definition_properties(config: ProjectConfig, table: TableRef) -> dict[str, str]:
    if table.topic is None or table.topic not in config.topics:
        return {}
    for definition in planned_definitions(config, [table.topic]):
        if definition.table == table:
            return dict(definition.properties)
    return {}


def _protection(
    spark: SparkSession, config: ProjectConfig, table: TableRef, lookup: ConsumerLookup
) -> ExpiryProtection:
    """What expiry must keep; blocked when the consumers or their checkpoints cannot be read
    (a catalog error must not read as "no consumer")."""
    try:
        consumers = lookup(spark, config.profile, table)
        checkpoints = read_consumer_checkpoints(spark, consumers)
    except Exception as exc:
        first = str(exc).splitlines()[0] if str(exc) else ""
        return ExpiryProtection(
            blocked=f"the checkpoint consumers of {table.sql} cannot be read, so the snapshots they need "
            f"are unknown: not expiring ({type(exc).__name__}: {first})"
        )
    return expiry_protection(snapshot_records(spark, table), checkpoints, read_own_checkpoint(spark, table))


def maintain_table(
    spark: SparkSession,
    config: ProjectConfig,
    table: TableRef,
    request: MaintenanceRequest,
    *,
    sink: MetricSink,
    now: datetime,
    consumer_lookup: ConsumerLookup = checkpoint_consumers,
    iceberg_version: tuple[int, ...] | None = None,
) -> TableReport:
    """Maintain one existing table (see :func:`maintain`)."""
    policy = config.maintenance.for_table(table.layer, table.name)
    before = measure_health(spark, table, policy.thresholds, now=now)
    changes = enforce_properties(
        spark,
        table,
        before.properties,
        policy.table_properties,
        _definition_properties(config, table),
        dry_run=request.dry_run,
    )
    if any(c.key == "write.target-file-size-bytes" and c.action == "set" for c in changes):
        before = measure_health(spark, table, policy.thresholds, now=now)  # "small" depends on it
    context = PlanContext(
        now=now,
        frequency=request.frequency,
        only=request.ops,
        dry_run=request.dry_run,
        iceberg_version=iceberg_version,
    )
    protection = None
    if operation_gate("expire_snapshots", policy, context) is None:
        protection = _protection(spark, config, table, consumer_lookup)
        context = replace(context, protection=protection)
    plan = plan_maintenance(before, policy, context)
    reports = []
    for planned in plan:
        _log.info("%s %s: %s (%s)", table.sql, planned.name, "run" if planned.run else "skip", planned.reason)
        # A planned call runs, except in a dry run, where only orphan listing (itself dry) does.
        if planned.call is None or (request.dry_run and planned.name != "remove_orphan_files"):
            reports.append(OperationReport(planned))
            continue
        outcome = run_procedure(spark, table, planned.call)
        _log.info(
            "%s %s: %s in %.1fs: %s",
            table.sql,
            planned.name,
            outcome.status,
            outcome.seconds,
            outcome.summary(),
        )
        emit_outcome(sink, table.identifier, outcome)
        reports.append(OperationReport(planned, outcome))
    changed_table = any(r.outcome is not None and r.plan.name != "remove_orphan_files" for r in reports)
    after = measure_health(spark, table, policy.thresholds, now=now) if changed_table else None
    emit_health(sink, after or before)
    return TableReport(table, True, before, after, changes, tuple(reports), protection)


def maintain(
    spark: SparkSession,
    config: ProjectConfig,
    request: MaintenanceRequest,
    *,
    sink: MetricSink | None = None,
    consumer_lookup: ConsumerLookup = checkpoint_consumers,
    tables: Sequence[TableRef] | None = None,
) -> MaintenanceReport:
    """Run health-driven maintenance on the requested tables and report what was done and why.

    Per table: measure health, set drifted table properties back, look up the consumers'
    checkpoints, plan each operation from health and policy, run the planned procedures
    (or only list orphans in a dry run), measure again, emit metrics. A table whose
    maintenance fails is reported and the run goes on with the next one.

    Args:
        spark: the session.
        config: the project config (policy, profile).
        request: tables, operations, dry run, schedule.
        sink: where metrics go (default: nowhere).
        consumer_lookup: who holds checkpoints into a table (default: the topic layout).
        tables: explicit tables instead of ``request.tables`` (tests, benchmarks).

    Raises:
        ConfigError: an unknown table name.
    """
    sink = sink or NullSink()
    started_at = request.now or datetime.now(timezone.utc)
    clock = time.monotonic()
    targets = tuple(tables) if tables is not None else resolve_tables(config, request.tables)
    version = iceberg_runtime_version(spark)
    reports = []
    for table in targets:
        try:
            exists = _exists(spark, table)
        except CatalogError as exc:  # reported as a failure of this table, not as missing
            _log.error("%s", exc)
            reports.append(TableReport(table, exists=False, error=str(exc)))
            continue
        if not exists:
            reports.append(TableReport(table, exists=False))
            continue
        try:
            reports.append(
                maintain_table(
                    spark,
                    config,
                    table,
                    request,
                    sink=sink,
                    now=started_at,
                    consumer_lookup=consumer_lookup,
                    iceberg_version=version,
                )
            )
        except Exception as exc:  # one table's failure must not stop the others
            _log.exception("maintenance of %s failed", table.sql)
            reports.append(
                TableReport(table, True, error=f"{type(exc).__name__}: {str(exc).splitlines()[0]}")
            )
    sink.flush()
    return MaintenanceReport(
        tuple(reports), request.dry_run, request.frequency, started_at, time.monotonic() - clock
    )
