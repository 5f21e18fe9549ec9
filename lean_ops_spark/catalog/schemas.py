"""Table definitions (columns, partitioning, properties) as pure data and SQL text.

Nothing here touches Spark: the DDL is built from the topic contract and unit-tested.
"""

from __future__ import annotations

import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime, timezone
from types import MappingProxyType
from typing import Any

from lean_ops_spark import sqlexpr
from lean_ops_spark.catalog.metadata import current_schema
from lean_ops_spark.catalog.naming import TableRef, TopicTables
from lean_ops_spark.config.models import MaintenancePolicy, TopicContract

__all__ = [
    "QUARANTINE_COLUMNS",
    "RAW_STAGING_COLUMNS",
    "PartitionSpecField",
    "TableDefinition",
    "current_partition_spec",
    "describe_partitioning",
    "partition_evolution_sql",
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


#: Spark DDL spellings of Iceberg's time transforms (``months(ts)`` and ``month(ts)`` are one).
_DDL_TIME_TRANSFORMS = {
    "years": "year",
    "year": "year",
    "months": "month",
    "month": "month",
    "days": "day",
    "day": "day",
    "date": "day",
    "hours": "hour",
    "hour": "hour",
    "date_hour": "hour",
}
_DDL_COLUMN = r"`?([A-Za-z_][A-Za-z0-9_]*)`?"
_DDL_TIME = re.compile(rf"^([a-z_]+)\(\s*{_DDL_COLUMN}\s*\)$", re.IGNORECASE)
_DDL_WIDTH = re.compile(rf"^(bucket|truncate)\(\s*(\d+)\s*,\s*{_DDL_COLUMN}\s*\)$", re.IGNORECASE)
_DDL_IDENTITY = re.compile(rf"^{_DDL_COLUMN}$")
_SPEC_WIDTH = re.compile(r"^(bucket|truncate)\[(\d+)\]$")


@dataclass(frozen=True)
class PartitionSpecField:
    """One field of an Iceberg partition spec: a transform of a source column.

    ``transform`` is spelled as Iceberg's ``metadata.json`` spells it (``identity``, ``year``,
    ``month``, ``day``, ``hour``, ``bucket[16]``, ``truncate[4]``), whatever DDL spelling
    (``months(ts)``, ``month(ts)``) made it; ``name`` is the field's name in a table's spec
    (None for a field only planned).
    """

    column: str
    transform: str = "identity"
    name: str | None = None

    @classmethod
    def from_ddl(cls, text: str) -> PartitionSpecField:
        """``months(order_date)`` -> (order_date, month); ``bucket(16, id)`` -> (id, bucket[16]);
        ``order_date`` -> (order_date, identity).

        Raises:
            ValueError: ``text`` is not a partition transform of a top-level column.
        """
        text = text.strip()
        match = _DDL_WIDTH.fullmatch(text)
        if match:
            return cls(match.group(3), f"{match.group(1).lower()}[{int(match.group(2))}]")
        match = _DDL_TIME.fullmatch(text)
        if match and match.group(1).lower() in _DDL_TIME_TRANSFORMS:
            return cls(match.group(2), _DDL_TIME_TRANSFORMS[match.group(1).lower()])
        match = _DDL_IDENTITY.fullmatch(text)
        if match:
            return cls(match.group(1))
        raise ValueError(f"not a partition transform of a column: {text!r}")

    def ddl(self) -> str:
        """The Spark DDL term: ``months(`order_date`)``, ``bucket(16, `id`)``, ``order_date``."""
        column = sqlexpr.quote(self.column)
        width = _SPEC_WIDTH.fullmatch(self.transform)
        if width:
            return f"{width.group(1)}({width.group(2)}, {column})"
        return column if self.transform == "identity" else f"{self.transform}s({column})"

    def describe(self) -> str:
        """``month(order_date)``; ``order_date`` for identity."""
        return self.column if self.transform == "identity" else f"{self.transform}({self.column})"

    def same_as(self, other: PartitionSpecField) -> bool:
        """The same transform of the same column (Spark resolves column names case-insensitively;
        the field names may differ)."""
        return self.transform == other.transform and self.column.casefold() == other.column.casefold()


def describe_partitioning(fields: Sequence[PartitionSpecField]) -> str:
    """``month(order_date)``, ``day(ts), region`` or ``unpartitioned``."""
    return ", ".join(f.describe() for f in fields) or "unpartitioned"


def current_partition_spec(document: Mapping[str, Any]) -> tuple[int, tuple[PartitionSpecField, ...]]:
    """The current (default) partition spec of a parsed ``metadata.json``: its id and fields,
    each named by its source column in the current schema. ``void`` fields (a field dropped
    from a format v1 table) are left out: they partition nothing."""
    specs = document.get("partition-specs") or [
        {"spec-id": 0, "fields": document.get("partition-spec") or []}
    ]
    default = int(document.get("default-spec-id", specs[-1].get("spec-id", 0)))
    spec = next((s for s in specs if int(s.get("spec-id", 0)) == default), specs[-1])
    columns = {int(f["id"]): str(f["name"]) for f in current_schema(document).get("fields", ())}
    fields = tuple(
        PartitionSpecField(
            # a nested source column is not a top-level column: it never matches a planned field
            columns.get(int(f["source-id"]), f"<source-id {f['source-id']}>"),
            str(f["transform"]),
            str(f["name"]),
        )
        for f in spec.get("fields", ())
        if str(f["transform"]) != "void"
    )
    return default, fields


def partition_evolution_sql(
    table_sql: str, current: Sequence[PartitionSpecField], wanted: Sequence[PartitionSpecField]
) -> tuple[str, ...]:
    """The ``ALTER TABLE`` statements (Iceberg SQL extensions) that evolve a table's spec from
    ``current`` (fields of the table's spec, with names) to ``wanted``; empty when they hold
    the same fields (in any order). A field replaced by another is one ``REPLACE PARTITION
    FIELD`` (one commit); fields are dropped by name, so a hand-named field is found too.
    Partition evolution is metadata only: files already written keep their spec."""
    dropped = [f for f in current if not any(f.same_as(w) for w in wanted)]
    added = [w for w in wanted if not any(w.same_as(f) for f in current)]

    def named(old: PartitionSpecField) -> str:
        return sqlexpr.quote(old.name) if old.name else old.ddl()

    statements = [
        f"ALTER TABLE {table_sql} REPLACE PARTITION FIELD {named(old)} WITH {new.ddl()}"
        for old, new in zip(dropped, added, strict=False)
    ]
    statements += [
        f"ALTER TABLE {table_sql} DROP PARTITION FIELD {named(old)}" for old in dropped[len(added) :]
    ]
    statements += [
        f"ALTER TABLE {table_sql} ADD PARTITION FIELD {new.ddl()}" for new in added[len(dropped) :]
    ]
    return tuple(statements)


@dataclass(frozen=True)
class TableDefinition:
    """Everything needed to create one Iceberg table."""

    table: TableRef
    columns: tuple[tuple[str, str, str], ...]
    partitioned_by: tuple[str, ...] = ()
    properties: Mapping[str, str] = field(default_factory=lambda: MappingProxyType({}))
    comment: str = ""

    @property
    def partition_fields(self) -> tuple[PartitionSpecField, ...]:
        """:attr:`partitioned_by` as spec fields (``months(ts)`` -> ``month`` of ``ts``).

        Raises:
            ValueError: a term is not a partition transform of a column.
        """
        return tuple(PartitionSpecField.from_ddl(term) for term in self.partitioned_by)

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
