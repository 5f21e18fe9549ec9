"""What tables exist and how big they are, from snapshot summaries (no data scan, no JVM)."""

from __future__ import annotations

from dataclasses import asdict, dataclass
from datetime import datetime, timezone
from typing import Any

from lean_ops_spark.catalog.bootstrap import planned_definitions
from lean_ops_spark.catalog.naming import TableRef
from lean_ops_spark.config.models import ProjectConfig

__all__ = ["TableInfo", "describe_table", "describe_tables"]


@dataclass(frozen=True)
class TableInfo:
    """One table's current state as its catalog and latest snapshot summary tell it."""

    table: str
    layer: str
    topic: str | None
    exists: bool
    current_snapshot_id: int | None = None
    snapshot_count: int = 0
    records: int = 0
    data_files: int = 0
    delete_files: int = 0
    size_bytes: int = 0
    last_updated: str | None = None

    def as_dict(self) -> dict[str, Any]:
        return asdict(self)


def _summary_int(summary: Any, key: str) -> int:
    value = summary.get(key) if summary is not None else None
    return int(value) if value is not None else 0


def describe_table(catalog: Any, ref: TableRef) -> TableInfo:
    """Describe one table through a PyIceberg catalog (``exists=False`` when it does not exist)."""
    from pyiceberg.exceptions import NoSuchNamespaceError, NoSuchTableError

    try:
        table = catalog.load_table(ref.identifier)
    except (NoSuchTableError, NoSuchNamespaceError):
        return TableInfo(ref.sql, ref.layer, ref.topic, exists=False)
    snapshot = table.current_snapshot()
    summary = snapshot.summary if snapshot is not None else None
    updated_ms = table.metadata.last_updated_ms
    return TableInfo(
        table=ref.sql,
        layer=ref.layer,
        topic=ref.topic,
        exists=True,
        current_snapshot_id=snapshot.snapshot_id if snapshot is not None else None,
        snapshot_count=len(table.metadata.snapshots),
        records=_summary_int(summary, "total-records"),
        data_files=_summary_int(summary, "total-data-files"),
        delete_files=_summary_int(summary, "total-delete-files"),
        size_bytes=_summary_int(summary, "total-files-size"),
        last_updated=datetime.fromtimestamp(updated_ms / 1000, tz=timezone.utc).isoformat(),
    )


def describe_tables(catalog: Any, config: ProjectConfig, topics: list[str] | None = None) -> list[TableInfo]:
    """Describe every table bootstrap would create, through a PyIceberg catalog.

    Tables that do not exist yet are listed with ``exists=False``.
    """
    return [describe_table(catalog, definition.table) for definition in planned_definitions(config, topics)]
