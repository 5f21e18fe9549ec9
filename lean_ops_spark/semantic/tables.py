"""Semantic tables: names, definitions from the compiled model, idempotent creation, and
the partition spec kept to the model's (:func:`align_partitioning`)."""

from __future__ import annotations

from dataclasses import dataclass
from types import MappingProxyType
from typing import TYPE_CHECKING, Any

from lean_ops_spark.catalog.metadata import load_metadata_document
from lean_ops_spark.catalog.naming import TableRef
from lean_ops_spark.catalog.schemas import (
    BASE_PROPERTIES,
    PartitionSpecField,
    TableDefinition,
    current_partition_spec,
    describe_partitioning,
    partition_evolution_sql,
    sql_string,
)
from lean_ops_spark.config.models import Profile
from lean_ops_spark.config.sources import ConfigSource
from lean_ops_spark.errors import CatalogError, ConfigError
from lean_ops_spark.semantic.models import AUDIT_COLUMNS, FINGERPRINT_KEY, SemanticModel

if TYPE_CHECKING:
    from pyspark.sql import SparkSession

__all__ = [
    "PartitionChange",
    "align_partitioning",
    "ensure_semantic_table",
    "model_tables",
    "record_fingerprint",
    "semantic_table",
    "semantic_table_definition",
]

#: Properties every semantic table has: WAP on (writes go to the audit branch while
#: ``spark.wap.branch`` is set; without it Iceberg silently writes to main).
SEMANTIC_PROPERTIES = MappingProxyType({"write.wap.enabled": "true", "lean-ops.layer": "semantic"})


def semantic_table(profile: Profile, model: SemanticModel) -> TableRef:
    """``<semantic_db>.<model name>``."""
    return TableRef(profile.catalog, profile.databases.semantic, model.name, "semantic", model.topic)


def model_tables(source: ConfigSource, profile: Profile, topic: str) -> tuple[TableRef, ...]:
    """The tables of ``topic``'s semantic models (``semantic/<topic>.yaml`` under ``source``),
    each named as the semantic job names it (:func:`semantic_table`); none without a model file.

    Raises:
        ConfigError: the model file does not load.
    """
    from lean_ops_spark.semantic.loader import load_semantic_models

    models = load_semantic_models(source, topic)
    return tuple(semantic_table(profile, model) for model in models.models) if models is not None else ()


def semantic_table_definition(table: TableRef, model: SemanticModel, schema: Any) -> TableDefinition:
    """The table for ``model``, with column types from the compiled model's Spark ``schema``."""
    docs = {c.name: c.description for c in (*model.columns, *model.measures)}
    columns = tuple((f.name, f.dataType.simpleString(), docs.get(f.name, "")) for f in schema.fields) + tuple(
        (name, dtype, "lean-ops audit column") for name, dtype in AUDIT_COLUMNS
    )
    return TableDefinition(
        table=table,
        columns=columns,
        partitioned_by=(model.partition.spark_ddl(),) if model.partition else (),
        properties=MappingProxyType(
            {
                **BASE_PROPERTIES,
                **SEMANTIC_PROPERTIES,
                "lean-ops.topic": model.topic,
                "lean-ops.model-kind": model.kind.value,
            }
        ),
        comment=model.description or f"Semantic model {model.name} of topic {model.topic}",
    )


def ensure_semantic_table(spark: SparkSession, definition: TableDefinition) -> bool:
    """Create the table if missing; check an existing one still matches the model.

    Returns True when the table was created.

    Raises:
        ConfigError: the existing table's columns differ from the model (changing a model's
            columns needs a rebuild of its table).
        CatalogError: the table cannot be created.
    """
    table = definition.table
    existing = {
        r["tableName"] for r in spark.sql(f"SHOW TABLES IN {table.catalog}.{table.database}").collect()
    }
    if table.name not in existing:
        try:
            spark.sql(definition.create_sql())
        except Exception as exc:
            raise CatalogError(f"cannot create semantic table {table.sql}: {exc}") from exc
        return True
    spark.sql(f"REFRESH TABLE {table.sql}")
    actual = {f.name: f.dataType.simpleString() for f in spark.table(table.sql).schema.fields}
    wanted = {name: dtype for name, dtype, _ in definition.columns}
    differences = sorted(
        f"{name} ({actual.get(name, 'missing')} in the table, {wanted.get(name, 'not in the model')} in the model)"
        for name in set(actual) | set(wanted)
        if actual.get(name) != wanted.get(name)
    )
    if differences:
        raise ConfigError(
            f"{table.sql} no longer matches its model: {'; '.join(differences)}. Changing a model's columns "
            "needs a rebuild: drop the table and run the semantic job again (it reloads everything)"
        )
    properties = {r["key"]: r["value"] for r in spark.sql(f"SHOW TBLPROPERTIES {table.sql}").collect()}
    if properties.get("write.wap.enabled") != "true":
        spark.sql(f"ALTER TABLE {table.sql} SET TBLPROPERTIES ({sql_string('write.wap.enabled')}='true')")
    return False


@dataclass(frozen=True)
class PartitionChange:
    """A table's partition spec evolved to its definition's (:func:`align_partitioning`)."""

    table: str
    before_spec_id: int
    before: tuple[PartitionSpecField, ...]
    after_spec_id: int
    after: tuple[PartitionSpecField, ...]
    statements: tuple[str, ...]

    def describe(self) -> str:
        """``spec 0 month(order_date) -> spec 1 day(order_date)``."""
        return (
            f"spec {self.before_spec_id} {describe_partitioning(self.before)} -> "
            f"spec {self.after_spec_id} {describe_partitioning(self.after)}"
        )


def align_partitioning(spark: SparkSession, definition: TableDefinition) -> PartitionChange | None:
    """Evolve an existing table's current partition spec to ``definition.partitioned_by``
    when they differ (another transform, another column, a field added or removed); None
    when they already match.

    Iceberg partition evolution (``ALTER TABLE ... REPLACE | ADD | DROP PARTITION FIELD``) is
    a metadata commit of the table, not of a branch, and creates no snapshot: files already
    written keep the spec they were written with and stay readable (scans and MERGEs prune
    each file by its own spec); every file written afterwards, on any branch, uses the new
    one. The current spec is read from the table's metadata (transforms as Iceberg names
    them, columns by source field id), so ``months(d)`` and ``month(d)`` are the same.

    Raises:
        CatalogError: the spec could not be evolved (and is still not the definition's).
    """
    table = definition.table
    wanted = definition.partition_fields
    before_id, before = current_partition_spec(load_metadata_document(spark, table))
    statements = partition_evolution_sql(table.sql, before, wanted)
    if not statements:
        return None
    try:
        for statement in statements:
            spark.sql(statement)
    except Exception as exc:
        _, now = current_partition_spec(load_metadata_document(spark, table))
        if partition_evolution_sql(table.sql, now, wanted):
            raise CatalogError(
                f"cannot evolve the partition spec of {table.sql} from {describe_partitioning(before)} to "
                f"{describe_partitioning(wanted)} ({'; '.join(statements)}): {exc}"
            ) from exc
        return None  # another run of the table evolved it meanwhile
    after_id, after = current_partition_spec(load_metadata_document(spark, table))
    return PartitionChange(table.sql, before_id, before, after_id, after, statements)


def record_fingerprint(spark: SparkSession, table: TableRef, fingerprint: str) -> None:
    """Set the table property ``lean-ops.model-fingerprint`` after a publish (for people and
    tools: the runs compare the fingerprint in the checkpoint's snapshot summary, which
    reaches main atomically with the audited rows)."""
    properties = {r["key"]: r["value"] for r in spark.sql(f"SHOW TBLPROPERTIES {table.sql}").collect()}
    if properties.get(FINGERPRINT_KEY) != fingerprint:
        spark.sql(
            f"ALTER TABLE {table.sql} SET TBLPROPERTIES ({sql_string(FINGERPRINT_KEY)}={sql_string(fingerprint)})"
        )
