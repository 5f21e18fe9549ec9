"""The CloudWatch "table health monitoring dashboard": its definition, and deploying it.

Widgets use ``SEARCH`` expressions over the ``Table`` dimension, so a new table appears on
the dashboard as soon as it emits metrics, without redeploying. The metric names come from
:mod:`lean_ops_spark.maintenance.telemetry`, the same list the emitters use.
"""

from __future__ import annotations

import json
from typing import Any

from lean_ops_spark.config.models import HealthThresholds
from lean_ops_spark.errors import MaintenanceError, RuntimeSetupError
from lean_ops_spark.maintenance.telemetry import HEALTH_METRICS

__all__ = ["DASHBOARD_RUN_METRICS", "dashboard_body", "dashboard_json", "deploy_dashboard"]

#: Per-operation metrics charted (a subset of telemetry.OPERATION_METRICS).
DASHBOARD_RUN_METRICS = (
    "FilesRewritten",
    "BytesRewritten",
    "SnapshotsExpired",
    "ManifestsRewritten",
    "OrphanFilesDeleted",
    "OperationSeconds",
    "OperationConflicts",
    "OperationFailures",
)

_WIDTH, _HEIGHT = 12, 6


def _search(namespace: str, metric: str, dimensions: str, stat: str, period: int) -> str:
    return f"SEARCH('{{{namespace},{dimensions}}} MetricName=\"{metric}\"', '{stat}', {period})"


def _widget(
    title: str,
    expression: str,
    region: str,
    *,
    x: int,
    y: int,
    annotations: list[dict[str, Any]] | None = None,
    stat: str = "Maximum",
    period: int = 3600,
) -> dict[str, Any]:
    properties: dict[str, Any] = {
        "title": title,
        "region": region,
        "view": "timeSeries",
        "stacked": False,
        "stat": stat,
        "period": period,
        "metrics": [[{"expression": expression, "id": "e1", "label": ""}]],
        "yAxis": {"left": {"min": 0}},
    }
    if annotations:
        properties["annotations"] = {"horizontal": annotations}
    return {"type": "metric", "x": x, "y": y, "width": _WIDTH, "height": _HEIGHT, "properties": properties}


def dashboard_body(
    namespace: str, region: str, thresholds: HealthThresholds | None = None, period: int = 3600
) -> dict[str, Any]:
    """The dashboard definition (``DashboardBody`` as a dict).

    Args:
        namespace: the metrics namespace (``profile.metrics.namespace``).
        region: the region the widgets read from.
        thresholds: drawn as horizontal lines on the ratio and count charts (policy defaults).
        period: seconds per data point.
    """
    th = thresholds or HealthThresholds()
    lines = {
        "SmallFileRatio": [{"label": "compaction threshold", "value": th.small_file_ratio}],
        "DeleteFileRatio": [{"label": "delete compaction threshold", "value": th.delete_file_ratio}],
        "ManifestCount": [{"label": "rewrite_manifests threshold", "value": th.max_manifests}],
    }
    widgets: list[dict[str, Any]] = [
        {
            "type": "text",
            "x": 0,
            "y": 0,
            "width": 24,
            "height": 2,
            "properties": {
                "markdown": "## Iceberg table health (lean-ops)\nOne line per table (`Table` dimension); "
                "emitted by `lean-ops health` and every maintenance run. Lines mark the policy thresholds."
            },
        }
    ]
    y = 2
    for i, metric in enumerate(HEALTH_METRICS):
        widgets.append(
            _widget(
                f"{metric.label} ({metric.name})",
                _search(namespace, metric.name, "Table", "Maximum", period),
                region,
                x=(i % 2) * _WIDTH,
                y=y + (i // 2) * _HEIGHT,
                annotations=lines.get(metric.name),
                period=period,
            )
        )
    y += ((len(HEALTH_METRICS) + 1) // 2) * _HEIGHT
    widgets.append(
        {
            "type": "text",
            "x": 0,
            "y": y,
            "width": 24,
            "height": 1,
            "properties": {"markdown": "### Maintenance runs (per table and operation)"},
        }
    )
    y += 1
    for i, name in enumerate(DASHBOARD_RUN_METRICS):
        widgets.append(
            _widget(
                name,
                _search(namespace, name, "Table,Operation", "Sum", 86400),
                region,
                x=(i % 2) * _WIDTH,
                y=y + (i // 2) * _HEIGHT,
                stat="Sum",
                period=86400,
            )
        )
    return {"start": "-P14D", "periodOverride": "inherit", "widgets": widgets}


def dashboard_json(namespace: str, region: str, thresholds: HealthThresholds | None = None) -> str:
    """:func:`dashboard_body` as the JSON text ``put_dashboard`` takes."""
    return json.dumps(dashboard_body(namespace, region, thresholds), indent=2, sort_keys=True)


def deploy_dashboard(name: str, body: str, *, client: Any = None, region: str | None = None) -> list[str]:
    """Create or replace dashboard ``name`` (``PutDashboard``); returns validation messages.

    Raises:
        RuntimeSetupError: boto3 is missing.
        MaintenanceError: CloudWatch rejected the definition.
    """
    if client is None:
        try:
            import boto3
        except ImportError as exc:
            raise RuntimeSetupError("boto3 is not installed: pip install 'lean-ops-spark[aws]'") from exc
        client = boto3.client("cloudwatch", region_name=region)
    try:
        response = client.put_dashboard(DashboardName=name, DashboardBody=body)
    except Exception as exc:
        raise MaintenanceError(f"CloudWatch rejected dashboard {name!r}: {exc}") from exc
    return [str(m.get("Message", m)) for m in response.get("DashboardValidationMessages", [])]
