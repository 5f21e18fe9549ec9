"""Create the namespaces and tables of the configured topics, idempotently."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import TYPE_CHECKING

from lean_ops_spark.catalog.naming import TableRef, topic_tables
from lean_ops_spark.catalog.schemas import TableDefinition, sql_string, topic_table_definitions
from lean_ops_spark.config.models import ProjectConfig
from lean_ops_spark.errors import CatalogError

if TYPE_CHECKING:
    from pyspark.sql import SparkSession

__all__ = ["BootstrapResult", "TableStatus", "bootstrap_tables", "planned_definitions"]

#: Properties Iceberg manages itself; never compared or reapplied (``format-version`` is
#: only ever raised: :func:`_format_upgrade`).
_RESERVED_PROPERTIES = frozenset({"format-version", "current-snapshot-id", "format", "provider", "location"})


@dataclass(frozen=True)
class TableStatus:
    """What bootstrap did to one table."""

    table: str
    layer: str
    topic: str | None
    action: str  # created | exists | updated
    changed_properties: dict[str, str] = field(default_factory=dict)
    missing_columns: tuple[str, ...] = ()
    #: the table's partitioning when it is not the configured one (bootstrap never changes a
    #: spec: curation still writes correct rows, but its MERGE prunes by the configured one)
    partitioning_differs: str | None = None


@dataclass(frozen=True)
class BootstrapResult:
    namespaces: tuple[str, ...]
    tables: tuple[TableStatus, ...]

    @property
    def created(self) -> int:
        return sum(1 for t in self.tables if t.action == "created")

    @property
    def changed(self) -> bool:
        return any(t.action != "exists" for t in self.tables)


def planned_definitions(config: ProjectConfig, topics: list[str] | None = None) -> list[TableDefinition]:
    """Table definitions for ``topics`` (default: every configured topic), in creation order."""
    names = topics or sorted(config.topics)
    definitions: list[TableDefinition] = []
    for name in names:
        contract = config.topic(name)
        definitions.extend(
            topic_table_definitions(
                topic_tables(config.profile, name), contract, maintenance=config.maintenance
            )
        )
    return definitions


def _existing_tables(spark: SparkSession, catalog: str, database: str) -> set[str]:
    rows = spark.sql(f"SHOW TABLES IN {catalog}.{database}").collect()
    return {row["tableName"] for row in rows}


def _properties(spark: SparkSession, table: TableRef) -> dict[str, str]:
    return {row["key"]: row["value"] for row in spark.sql(f"SHOW TBLPROPERTIES {table.sql}").collect()}


def _columns(spark: SparkSession, table: TableRef) -> set[str]:
    return set(spark.table(table.sql).columns)


def _partitioning(spark: SparkSession, table: TableRef) -> tuple[str, ...]:
    """The table's partition transforms as ``DESCRIBE TABLE`` lists them (``days(order_ts)``)."""
    rows = spark.sql(f"DESCRIBE TABLE {table.sql}").collect()
    names = [str(r["col_name"] or "").strip() for r in rows]
    fields: list[str] = []
    if "# Partitioning" in names:
        for row in rows[names.index("# Partitioning") + 1 :]:
            name = str(row["col_name"] or "").strip()
            if not name.startswith("Part "):
                break
            fields.append(str(row["data_type"]).strip())
    return tuple(fields)


def _format_upgrade(definition: TableDefinition, current: dict[str, str]) -> dict[str, str]:
    """``format-version`` raised to the definition's (v1 tables have no row-level deletes, so a
    merge-on-read MERGE would fail); never lowered, which Iceberg does not allow."""
    wanted, present = definition.properties.get("format-version"), current.get("format-version")
    if wanted and present and present.isdigit() and wanted.isdigit() and int(present) < int(wanted):
        return {"format-version": wanted}
    return {}


def bootstrap_tables(
    spark: SparkSession, config: ProjectConfig, topics: list[str] | None = None
) -> BootstrapResult:
    """Create missing namespaces and tables; bring drifted table properties back to config.

    Existing tables keep their data and schema: columns the contract has but the table
    lacks are reported (schema changes are the drift handler's job), never added here.

    Raises:
        CatalogError: a namespace or table could not be created, naming it.
    """
    profile = config.profile
    namespaces = (profile.databases.raw, profile.databases.curated, profile.databases.semantic)
    for namespace in namespaces:
        try:
            spark.sql(f"CREATE NAMESPACE IF NOT EXISTS {profile.catalog}.{namespace}")
        except Exception as exc:
            raise CatalogError(f"cannot create namespace {profile.catalog}.{namespace}: {exc}") from exc

    existing: dict[str, set[str]] = {}
    statuses: list[TableStatus] = []
    for definition in planned_definitions(config, topics):
        ref = definition.table
        if ref.database not in existing:
            existing[ref.database] = _existing_tables(spark, ref.catalog, ref.database)
        if ref.name not in existing[ref.database]:
            try:
                spark.sql(definition.create_sql())
            except Exception as exc:
                raise CatalogError(f"cannot create table {ref.sql}: {exc}") from exc
            statuses.append(TableStatus(ref.sql, ref.layer, ref.topic, "created"))
            continue
        current = _properties(spark, ref)
        drifted = {
            k: v
            for k, v in definition.properties.items()
            if k not in _RESERVED_PROPERTIES and current.get(k) != v
        }
        drifted.update(_format_upgrade(definition, current))
        if drifted:
            assignments = ", ".join(f"{sql_string(k)}={sql_string(v)}" for k, v in sorted(drifted.items()))
            spark.sql(f"ALTER TABLE {ref.sql} SET TBLPROPERTIES ({assignments})")
        present = _columns(spark, ref)
        missing = tuple(name for name, _, _ in definition.columns if name not in present)
        partitioning = _partitioning(spark, ref)
        differs = None
        if [p.replace(" ", "").lower() for p in partitioning] != [
            p.replace(" ", "").lower() for p in definition.partitioned_by
        ]:
            differs = ", ".join(partitioning) or "unpartitioned"
        statuses.append(
            TableStatus(
                ref.sql, ref.layer, ref.topic, "updated" if drifted else "exists", drifted, missing, differs
            )
        )
    return BootstrapResult(
        namespaces=tuple(f"{profile.catalog}.{n}" for n in namespaces), tables=tuple(statuses)
    )
