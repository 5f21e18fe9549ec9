"""Iceberg table metadata (the spec's ``metadata.json``) parsed into snapshot records.

Shared by the JVM-free readers (the checkpoints Lambda reads ``metadata.json`` files) and
the Spark side (which serialises the loaded table's metadata through Iceberg's
``TableMetadataParser`` in one py4j call instead of running metadata-table queries).
"""

from __future__ import annotations

import json
from collections.abc import Iterator, Mapping
from dataclasses import dataclass, field
from types import MappingProxyType
from typing import TYPE_CHECKING, Any

from lean_ops_spark.catalog.naming import TableRef
from lean_ops_spark.errors import CatalogError

if TYPE_CHECKING:
    from pyspark.sql import SparkSession

__all__ = [
    "SnapshotRecord",
    "TableSnapshots",
    "current_schema",
    "load_metadata_document",
    "load_table_snapshots",
    "parse_table_metadata",
]


@dataclass(frozen=True)
class SnapshotRecord:
    """The parts of a snapshot the walk needs."""

    snapshot_id: int
    parent_id: int | None
    summary: Mapping[str, str]
    committed_at_ms: int = 0
    operation: str | None = None


@dataclass(frozen=True)
class TableSnapshots:
    """One table's snapshots as its current metadata lists them."""

    identifier: str
    exists: bool
    current_snapshot_id: int | None = None
    records: tuple[SnapshotRecord, ...] = ()
    columns: tuple[str, ...] = ()
    metadata_location: str | None = None
    properties: Mapping[str, str] = field(default_factory=lambda: MappingProxyType({}))

    def by_id(self) -> dict[int, SnapshotRecord]:
        return {r.snapshot_id: r for r in self.records}

    def ancestors(self, stop: int | None = None) -> Iterator[SnapshotRecord]:
        """The current snapshot and its ancestors, newest first, down to ``stop`` (excluded)
        or to the oldest one the metadata still lists."""
        by_id = self.by_id()
        snapshot_id = self.current_snapshot_id
        while snapshot_id is not None and snapshot_id != stop and snapshot_id in by_id:
            record = by_id[snapshot_id]
            yield record
            snapshot_id = record.parent_id


def current_schema(document: Mapping[str, Any]) -> Mapping[str, Any]:
    """The current schema of a parsed ``metadata.json``: ``schemas`` by ``current-schema-id``
    (the last one if none matches), or ``schema`` in format v1; empty when there is none."""
    schemas = document.get("schemas")
    if schemas:
        schema_id = document.get("current-schema-id")
        found: Mapping[str, Any] = next((s for s in schemas if s.get("schema-id") == schema_id), schemas[-1])
        return found
    return document.get("schema") or {}


def parse_table_metadata(
    identifier: str, document: Mapping[str, Any], location: str | None = None
) -> TableSnapshots:
    """Snapshots, current snapshot and current columns from a parsed Iceberg ``metadata.json``.

    Follows the table spec (format v1-v3): ``current-snapshot-id`` (-1 or absent when the
    table has none), ``snapshots[]`` with ``snapshot-id``, ``parent-snapshot-id``,
    ``timestamp-ms`` and ``summary`` (whose ``operation`` is the snapshot operation), and
    ``schemas`` + ``current-schema-id`` (``schema`` in v1).
    """
    current = document.get("current-snapshot-id")
    if current is None or int(current) == -1:
        main = (document.get("refs") or {}).get("main") or {}
        current = main.get("snapshot-id")
    records = tuple(
        SnapshotRecord(
            snapshot_id=int(s["snapshot-id"]),
            parent_id=int(s["parent-snapshot-id"]) if s.get("parent-snapshot-id") is not None else None,
            summary={str(k): str(v) for k, v in (s.get("summary") or {}).items()},
            committed_at_ms=int(s.get("timestamp-ms") or 0),
            operation=(s.get("summary") or {}).get("operation"),
        )
        for s in document.get("snapshots") or ()
    )
    columns = tuple(str(f["name"]) for f in current_schema(document).get("fields", ()))
    return TableSnapshots(
        identifier=identifier,
        exists=True,
        current_snapshot_id=None if current is None or int(current) == -1 else int(current),
        records=records,
        columns=columns,
        metadata_location=location,
        properties=MappingProxyType({str(k): str(v) for k, v in (document.get("properties") or {}).items()}),
    )


def load_metadata_document(spark: SparkSession, table: TableRef) -> dict[str, Any]:
    """``table``'s current ``metadata.json`` document through the session's catalog, refreshed.

    One py4j call serialises the loaded ``TableMetadata`` with Iceberg's own
    ``TableMetadataParser`` (the same JSON the catalog pointer's file holds).

    Raises:
        CatalogError: the table cannot be loaded (missing, or a catalog error), naming it.
    """
    jvm: Any = spark.sparkContext._jvm
    try:
        jtable = jvm.org.apache.iceberg.spark.Spark3Util.loadIcebergTable(spark._jsparkSession, table.sql)
        jtable.refresh()
    except Exception as exc:
        text = str(exc)
        first = next((line.strip() for line in text.splitlines() if "Exception" in line), text.strip())
        hint = " (run `lean-ops init` first?)" if "NoSuchTable" in text or "NOT_FOUND" in text else ""
        raise CatalogError(f"cannot load table {table.sql}{hint}: {first[:300]}") from exc
    document: dict[str, Any] = json.loads(
        jvm.org.apache.iceberg.TableMetadataParser.toJson(jtable.operations().current())
    )
    return document


def load_table_snapshots(spark: SparkSession, table: TableRef) -> TableSnapshots:
    """``table``'s current metadata through the session's Iceberg catalog, refreshed.

    Parsing the serialised metadata here avoids a Spark job per metadata-table query.
    """
    return parse_table_metadata(table.identifier, load_metadata_document(spark, table))
