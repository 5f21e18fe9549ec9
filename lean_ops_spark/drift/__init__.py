"""Schema drift: detect what changed in the payloads (or the curated table) against the
topic contract, decide by the topic's ``drift_mode`` (evolve | rescue | fail), evolve the
curated table where allowed, and record every drift (audit table, metric, log line).

``schema`` (paths and types), ``diff`` (typed drift items) and ``policy`` (decisions) are
pure; ``observe`` measures a batch with Spark; ``audit`` writes the notification;
``handler`` composes them for a curation run (:func:`handle_drift`) and for
``lean-ops drift`` (:func:`detect_drift`).
"""

from lean_ops_spark.drift.diff import (
    Drift,
    DriftKind,
    DriftSource,
    DriftThresholds,
    ObservedPath,
    ObservedSchema,
    Reconciliation,
    SchemaChange,
    diff_batch,
    infer_type,
    reconcile_with_curated,
)
from lean_ops_spark.drift.policy import DriftAction, DriftDecision, DriftPlan, decide, plan_drift

__all__ = [
    "Drift",
    "DriftAction",
    "DriftDecision",
    "DriftKind",
    "DriftPlan",
    "DriftSource",
    "DriftThresholds",
    "ObservedPath",
    "ObservedSchema",
    "Reconciliation",
    "SchemaChange",
    "decide",
    "diff_batch",
    "infer_type",
    "plan_drift",
    "reconcile_with_curated",
]
