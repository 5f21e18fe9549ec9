"""Table definitions (columns, partitioning, properties) as pure data and SQL text.

Nothing here touches Spark: the DDL is built from the topic contract and unit-tested.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import datetime, timezone
from types import MappingProxyType

from lean_ops_spark import sqlexpr
from lean_ops_spark.catalog.naming import TableRef, TopicTables
from lean_ops_spark.config.models import MaintenancePolicy, TopicContract

__all__ = [
    "QUARANTINE_COLUMNS",
    "RAW_STAGING_COLUMNS",
    "TableDefinition",
    "sql_string",
    "topic_table_definitions",
]

#: What Firehose writes into ``<raw_db>.<topic>_staging``: one row per message, append-only.
RAW_STAGING_COLUMNS: tuple[tuple[str, str, str], ...] = (
    ("message_id", "string", "the producer's message id (required); a re-delivery of the message repeats it"),
    ("topic", "string", "the topic the producer addressed"),
    ("payload", "string", "the event as a JSON document, untouched"),
    ("ingestion_ts", "timestamp", "when Firehose delivered the record (UTC)"),
    ("producer", "string", "optional producer name"),
    ("schema_version", "int", "optional payload schema version declared by the producer"),
)

#: Quarantined records of a topic: the whole raw record (nothing lost) plus why, keyed by
#: message_id so a re-run never duplicates a row.
QUARANTINE_COLUMNS: tuple[tuple[str, str, str], ...] = (
    ("message_id", "string", "the raw record's message id"),
    ("topic", "string", "topic of the raw record"),
    ("raw_snapshot_id", "bigint", "raw snapshot the record was read from"),
    ("ingestion_ts", "timestamp", "raw ingestion time"),
    ("payload", "string", "the raw payload, untouched"),
    ("producer", "string", "the raw record's producer"),
    ("schema_version", "int", "the raw record's declared schema version"),
    ("error_class", "string", "DROP (permanently bad) or RETRY (may succeed later)"),
    ("reason_code", "string", "machine-readable reason, e.g. MISSING_REQUIRED_FIELD"),
    ("error_field", "string", "the field the reason is about, if any"),
    ("error_detail", "string", "human-readable detail"),
    ("attempt_count", "int", "how many times curation tried this record"),
    ("run_id", "string", "the curation or replay run that last wrote the row"),
    ("quarantined_at", "timestamp", "first time the record was quarantined"),
    ("last_attempt_at", "timestamp", "last time the record was tried"),
    ("replay_status", "string", "pending, replayed or exhausted (RETRY rows); none for DROP rows"),
)

BASE_PROPERTIES: Mapping[str, str] = MappingProxyType(
    {
        "format-version": "2",
        "write.metadata.delete-after-commit.enabled": "true",
        "write.metadata.previous-versions-max": "50",
    }
)


@dataclass(frozen=True)
class TableDefinition:
    """Everything needed to create one Iceberg table."""

    table: TableRef
    columns: tuple[tuple[str, str, str], ...]
    partitioned_by: tuple[str, ...] = ()
    properties: Mapping[str, str] = field(default_factory=lambda: MappingProxyType({}))
    comment: str = ""

    def create_sql(self) -> str:
        """``CREATE TABLE IF NOT EXISTS ... USING iceberg`` for this definition."""
        cols = ",\n  ".join(
            f"{name} {dtype}" + (f" COMMENT {sql_string(doc)}" if doc else "")
            for name, dtype, doc in self.columns
        )
        parts = [f"CREATE TABLE IF NOT EXISTS {self.table.sql} (\n  {cols}\n) USING iceberg"]
        if self.partitioned_by:
            parts.append(f"PARTITIONED BY ({', '.join(self.partitioned_by)})")
        if self.comment:
            parts.append(f"COMMENT {sql_string(self.comment)}")
        if self.properties:
            props = ", ".join(f"{sql_string(k)}={sql_string(v)}" for k, v in sorted(self.properties.items()))
            parts.append(f"TBLPROPERTIES ({props})")
        return "\n".join(parts)


def sql_string(value: str) -> str:
    """A single-quoted Spark SQL string literal (the one :func:`lean_ops_spark.sqlexpr.lit` writes)."""
    return sqlexpr.lit(value).sql


def instant_literal(moment: datetime) -> str:
    """``TIMESTAMP '2026-01-01 05:00:00.000250Z'``: ``moment``'s instant to the microsecond,
    whatever Spark's session zone. A naive ``moment`` is local time, which is what ``collect()``
    returns for a timestamp (in this Python process's zone, not the session's)."""
    utc = moment.astimezone(timezone.utc)
    return f"TIMESTAMP '{utc.strftime('%Y-%m-%d %H:%M:%S.%f')}Z'"


def collected_timestamp_literal(value: datetime, spark_type: str | None) -> str:
    """A timestamp value ``collect()`` returned, as a literal of its column's Spark type: a
    ``timestamp_ntz`` is the wall-clock time it holds (``TIMESTAMP_NTZ '...'``), any other
    the instant (:func:`instant_literal`)."""
    if spark_type == "timestamp_ntz":
        return f"TIMESTAMP_NTZ '{value.strftime('%Y-%m-%d %H:%M:%S.%f')}'"
    return instant_literal(value)


def topic_table_definitions(
    tables: TopicTables,
    contract: TopicContract,
    extra_properties: Mapping[str, str] | None = None,
    *,
    maintenance: MaintenancePolicy | None = None,
) -> tuple[TableDefinition, ...]:
    """The raw staging, curated and quarantine tables of one topic.

    ``maintenance``: each table also gets the table properties its maintenance policy sets
    (defaults < layer < table), below what the contract sets.
    """

    def common_for(table: TableRef) -> dict[str, str]:
        policy = maintenance.for_table(table.layer, table.name).table_properties if maintenance else {}
        return {**BASE_PROPERTIES, **(extra_properties or {}), **policy}

    common = common_for(tables.raw)
    raw = TableDefinition(
        table=tables.raw,
        columns=RAW_STAGING_COLUMNS,
        partitioned_by=("days(ingestion_ts)",),
        properties=MappingProxyType({**common, "lean-ops.layer": "raw", "lean-ops.topic": contract.topic}),
        comment=f"Raw staging for topic {contract.topic} (Firehose, append-only)",
    )
    docs = {name: spec.description for name, _, spec in contract.flattened_fields()}
    curated_columns = tuple((name, dtype, docs.get(name, "")) for name, dtype in contract.curated_columns())
    curated = TableDefinition(
        table=tables.curated,
        columns=curated_columns,
        partitioned_by=(contract.partition.spark_ddl(),),
        properties=MappingProxyType(
            {
                **common_for(tables.curated),
                "write.distribution-mode": "hash",
                **contract.table_properties,
                "lean-ops.layer": "curated",
                "lean-ops.topic": contract.topic,
                "lean-ops.contract-version": str(contract.version),
            }
        ),
        comment=contract.description or f"Curated {contract.topic}",
    )
    quarantine = TableDefinition(
        table=tables.quarantine,
        columns=QUARANTINE_COLUMNS,
        partitioned_by=("days(ingestion_ts)",),
        properties=MappingProxyType(
            {
                **common_for(tables.quarantine),
                "lean-ops.layer": "quarantine",
                "lean-ops.topic": contract.topic,
            }
        ),
        comment=f"Quarantined records of topic {contract.topic}",
    )
    return (raw, curated, quarantine)
