"""Iceberg table maintenance driven by measured table health.

``health`` measures a table from its metadata tables; ``policy`` decides (pure) which
procedures that health calls for; ``protection`` keeps the snapshots consumers'
checkpoints need; ``procedures`` builds the CALL text and parses typed results;
``runner`` ties them into a reported run; ``report_html`` and ``dashboard`` present it.
"""

from lean_ops_spark.maintenance.health import PartitionHealth, TableHealth, measure_health
from lean_ops_spark.maintenance.policy import PlanContext, PlannedOperation, plan_maintenance
from lean_ops_spark.maintenance.procedures import ProcedureOutcome, run_procedure
from lean_ops_spark.maintenance.runner import (
    HealthSurvey,
    MaintenanceReport,
    MaintenanceRequest,
    TableReport,
    maintain,
    resolve_tables,
    survey_health,
)

__all__ = [
    "HealthSurvey",
    "MaintenanceReport",
    "MaintenanceRequest",
    "PartitionHealth",
    "PlanContext",
    "PlannedOperation",
    "ProcedureOutcome",
    "TableHealth",
    "TableReport",
    "maintain",
    "measure_health",
    "plan_maintenance",
    "resolve_tables",
    "run_procedure",
    "survey_health",
]
