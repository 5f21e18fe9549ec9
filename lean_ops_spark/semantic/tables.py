"""Semantic tables: names, definitions from the compiled model, idempotent creation."""

from __future__ import annotations

from types import MappingProxyType
from typing import TYPE_CHECKING, Any

from lean_ops_spark.catalog.naming import TableRef
from lean_ops_spark.catalog.schemas import BASE_PROPERTIES, TableDefinition, sql_string
from lean_ops_spark.config.models import Profile
from lean_ops_spark.config.sources import ConfigSource
from lean_ops_spark.errors import CatalogError, ConfigError
from lean_ops_spark.semantic.models import AUDIT_COLUMNS, FINGERPRINT_KEY, SemanticModel

if TYPE_CHECKING:
    from pyspark.sql import SparkSession

__all__ = [
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


def record_fingerprint(spark: SparkSession, table: TableRef, fingerprint: str) -> None:
    """Set the table property ``lean-ops.model-fingerprint`` after a publish (for people and
    tools: the runs compare the fingerprint in the checkpoint's snapshot summary, which
    reaches main atomically with the audited rows)."""
    properties = {r["key"]: r["value"] for r in spark.sql(f"SHOW TBLPROPERTIES {table.sql}").collect()}
    if properties.get(FINGERPRINT_KEY) != fingerprint:
        spark.sql(
            f"ALTER TABLE {table.sql} SET TBLPROPERTIES ({sql_string(FINGERPRINT_KEY)}={sql_string(fingerprint)})"
        )
