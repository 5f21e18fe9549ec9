"""The maintenance job: what ``jobs/maintenance_job.py`` runs (Glue, spark-submit).

Arguments (Glue names; ``getResolvedOptions`` makes every listed name required, so these
are read only when present): ``lean_ops_tables`` and ``lean_ops_ops`` (comma lists, or
``all``), ``lean_ops_dry_run`` (``true``/``false``) and ``lean_ops_frequency``.

``frequency`` ``auto`` (the default) makes a run on Sunday (UTC) a weekly run and any other
day a daily run, so one daily schedule also runs the weekly operations once a week;
``any`` runs every operation regardless of its frequency.
"""

from __future__ import annotations

from collections.abc import Mapping
from datetime import datetime, timezone
from typing import TYPE_CHECKING, Any

from lean_ops_spark.config.models import ProjectConfig
from lean_ops_spark.metrics import build_sink

if TYPE_CHECKING:
    from pyspark.sql import SparkSession

__all__ = [
    "OPTIONAL_ARGUMENTS",
    "check_maintenance_arguments",
    "maintenance_request",
    "resolve_frequency",
    "run_maintenance_job",
]

OPTIONAL_ARGUMENTS = ("lean_ops_tables", "lean_ops_ops", "lean_ops_dry_run", "lean_ops_frequency")
WEEKLY_ON = 6  # Sunday (datetime.weekday)


def _split(value: str | None) -> tuple[str, ...]:
    if value is None or value.strip().lower() in ("", "all"):
        return ()
    return tuple(v.strip() for v in value.split(",") if v.strip())


def resolve_frequency(frequency: str, now: datetime) -> str | None:
    """``auto`` -> weekly on Sundays (UTC), else daily; ``any`` -> None (every operation)."""
    if frequency == "auto":
        return "weekly" if now.astimezone(timezone.utc).weekday() == WEEKLY_ON else "daily"
    return None if frequency == "any" else frequency


def maintenance_request(arguments: Mapping[str, str], now: datetime) -> Any:
    """The :class:`~lean_ops_spark.maintenance.runner.MaintenanceRequest` the arguments ask for."""
    from lean_ops_spark.maintenance.runner import MaintenanceRequest

    ops = _split(arguments.get("lean_ops_ops"))
    return MaintenanceRequest(
        tables=_split(arguments.get("lean_ops_tables")),
        ops=frozenset(ops) if ops else None,
        dry_run=str(arguments.get("lean_ops_dry_run")).strip().lower() in ("true", "1", "yes"),
        frequency=resolve_frequency(arguments.get("lean_ops_frequency") or "auto", now),
    )


def check_maintenance_arguments(_config: ProjectConfig, arguments: Mapping[str, str]) -> None:
    """Unknown operations or frequencies fail before a session starts (``ConfigError``)."""
    maintenance_request(arguments, datetime.now(timezone.utc))


def run_maintenance_job(
    spark: SparkSession, config: ProjectConfig, arguments: Mapping[str, str]
) -> Mapping[str, Any]:
    """Measure health and run the maintenance the policy asks for; the report as a mapping.

    Its ``ok`` is False when an operation failed (conflicts are not failures: they are
    retried on the next run); the entry script then exits 1.

    Raises:
        ConfigError: an unknown operation or table was asked for.
    """
    from lean_ops_spark.maintenance.runner import maintain

    request = maintenance_request(arguments, datetime.now(timezone.utc))
    sink = build_sink(config.profile.metrics, region=config.profile.region)
    report = maintain(spark, config, request, sink=sink)
    return report.as_dict()
