"""Pure transforms of a raw batch: parse and type the payload, rescue, classify, dedupe.

Every function here is ``DataFrame -> DataFrame`` (no actions, no writes). Parsing reads
the payload once as ``map<string,string>`` so each field's raw JSON text is kept: a value
that is present but does not cast is told apart from an absent one, and goes to
``_rescued_data`` (optional field) or to quarantine (required field).
"""

from __future__ import annotations

import operator
from dataclasses import dataclass
from functools import reduce
from typing import TYPE_CHECKING

from lean_ops_spark.config.models import RESCUED_DATA_COLUMN, FieldSpec, TopicContract
from lean_ops_spark.curation.reasons import REASON_CLASS, Reason

if TYPE_CHECKING:
    from pyspark.sql import Column, DataFrame

__all__ = [
    "ERROR_COLUMN",
    "FIELDS_COLUMN",
    "ParsedColumn",
    "add_audit_columns",
    "classify",
    "compact",
    "dedupe_latest",
    "parse_payload",
    "parsed_columns",
]

FIELDS_COLUMN = "_fields"  # the payload's top-level fields as map<string,string>
ERROR_COLUMN = "_error"  # struct<error_class, reason_code, error_field, error_detail>, null if valid
_STRUCT_PREFIX = "_struct__"  # intermediate maps of flattened structs
_RAW_PREFIX = "_raw__"  # each field's raw JSON text
_MAP = "map<string,string>"


@dataclass(frozen=True)
class ParsedColumn:
    """A curated column, the path of its value in the payload, and its spec."""

    name: str
    path: tuple[str, ...]
    spec: FieldSpec

    @property
    def raw_column(self) -> str:
        return f"{_RAW_PREFIX}{self.name}"

    @property
    def dotted_path(self) -> str:
        return ".".join(self.path)


def parsed_columns(contract: TopicContract) -> tuple[ParsedColumn, ...]:
    return tuple(ParsedColumn(name, path, spec) for name, path, spec in contract.flattened_fields())


def _struct_paths(contract: TopicContract) -> list[tuple[str, ...]]:
    """Paths of the flattened structs, parents before children."""
    paths = {
        column.path[:depth] for column in parsed_columns(contract) for depth in range(1, len(column.path))
    }
    return sorted(paths, key=len)


def _map_column(path: tuple[str, ...]) -> str:
    return _STRUCT_PREFIX + "__".join(path)


def _container(path: tuple[str, ...]) -> Column:
    """The map that holds the value at ``path`` (the top-level map or a struct's map)."""
    from pyspark.sql import functions as F

    return F.col(FIELDS_COLUMN) if len(path) == 1 else F.col(_map_column(path[:-1]))


def _typed(column: ParsedColumn) -> Column:
    from pyspark.sql import functions as F

    raw = F.col(column.raw_column)
    kind = column.spec.type.kind
    if kind == "string":
        return raw
    if kind in ("struct", "array"):
        return F.from_json(raw, column.spec.type.spark_ddl())
    return raw.cast(column.spec.type.spark_ddl())


def parse_payload(df: DataFrame, contract: TopicContract) -> DataFrame:
    """Add the contract's typed columns and ``_rescued_data`` to a raw batch.

    ``_rescued_data`` is a JSON object of ``path -> raw JSON text`` for fields the contract
    does not know (top level and inside flattened structs) and for values that did not cast
    (including a flattened struct that is not an object). Intermediate columns are kept for
    :func:`classify`; :func:`add_audit_columns` selects the final shape.
    """
    from pyspark.sql import functions as F

    columns = parsed_columns(contract)
    out = df.withColumn(FIELDS_COLUMN, F.from_json(F.col("payload"), _MAP))
    struct_paths = _struct_paths(contract)
    for path in struct_paths:  # parents first: a child's map is parsed from its parent's
        out = out.withColumn(_map_column(path), F.from_json(_container(path)[path[-1]], _MAP))
    out = out.withColumns({c.raw_column: _container(c.path)[c.path[-1]] for c in columns})
    out = out.withColumns({c.name: _typed(c) for c in columns})

    # Unknown keys: at the top level and inside each flattened struct.
    top_entries, top_any = _unknown_keys(F.col(FIELDS_COLUMN), [f.name for f in contract.fields], "")
    pieces, unknown = [top_entries], [top_any]
    for path in struct_paths:
        children = sorted(
            {c.path[len(path)] for c in columns if c.path[: len(path)] == path and len(c.path) > len(path)}
        )
        entries, any_unknown = _unknown_keys(F.col(_map_column(path)), children, ".".join(path) + ".")
        pieces.append(entries)
        unknown.append(any_unknown)
    # Values present but not castable, and flattened structs that are not objects.
    failed_values = [(c.dotted_path, F.col(c.raw_column), F.col(c.name)) for c in columns]
    failed_values += [
        (".".join(path), _container(path)[path[-1]], F.col(_map_column(path))) for path in struct_paths
    ]
    failures = [
        F.struct(F.lit(key).alias("key"), F.when(raw.isNotNull() & typed.isNull(), raw).alias("value"))
        for key, raw, typed in failed_values
    ]
    failed = F.map_from_entries(F.filter(F.array(*failures), lambda e: e["value"].isNotNull()))
    pieces.append(failed)
    rescued = F.map_concat(*[F.coalesce(p, F.create_map().cast(_MAP)) for p in pieces])
    # Most records rescue nothing: a cheap test (no lambda functions, which Spark interprets
    # row by row) decides whether the map above needs building at all.
    anything = [F.coalesce(u, F.lit(False)) for u in unknown]
    anything += [raw.isNotNull() & typed.isNull() for _, raw, typed in failed_values]
    return out.withColumn(
        RESCUED_DATA_COLUMN,
        F.when(reduce(operator.or_, anything), F.to_json(rescued)).otherwise(F.lit(None).cast("string")),
    )


def compact(df: DataFrame) -> DataFrame:
    """Drop the intermediate parse columns (the payload map, struct maps, each field's raw
    text) once :func:`classify` has used them: the batch a run caches stays narrow (the raw
    ``payload`` is kept, so any of them can be derived again)."""
    drop = [c for c in df.columns if c == FIELDS_COLUMN or c.startswith((_STRUCT_PREFIX, _RAW_PREFIX))]
    return df.drop(*drop)


def _unknown_keys(fields: Column, known_names: list[str], prefix: str) -> tuple[Column, Column]:
    """Entries of a struct's map whose key is not a known child, keyed ``prefix + key``, and
    whether there are any (tested without lambda functions; null when the map is null)."""
    from pyspark.sql import functions as F

    known = F.array(*[F.lit(name) for name in known_names])
    unknown = F.map_filter(fields, lambda k, _v: ~F.array_contains(known, k))
    if prefix:
        unknown = F.transform_keys(unknown, lambda k, _v: F.concat(F.lit(prefix), k))
    return unknown, F.size(F.array_except(F.map_keys(fields), known)) > 0


def _error(reason: Reason, field: str | None, detail: Column) -> Column:
    from pyspark.sql import functions as F

    return F.struct(
        F.lit(REASON_CLASS[reason].value).alias("error_class"),
        F.lit(reason.value).alias("reason_code"),
        F.lit(field).cast("string").alias("error_field"),
        detail.cast("string").alias("error_detail"),
    )


def classify(df: DataFrame, contract: TopicContract) -> DataFrame:
    """Add ``_error`` (null for a valid record): the first failing check, in the order of
    :class:`Reason`, with its class, reason code, field and a readable detail."""
    from pyspark.sql import functions as F

    columns = parsed_columns(contract)
    checks: list[tuple[Column, Column]] = [
        (
            F.col("topic").isNull() | (F.col("topic") != F.lit(contract.topic)),
            _error(
                Reason.WRONG_TOPIC,
                "topic",
                F.format_string("topic %s is not " + contract.topic, F.col("topic")),
            ),
        ),
        (
            F.coalesce(F.octet_length("payload"), F.lit(0)) > F.lit(contract.max_payload_bytes),
            _error(
                Reason.OVERSIZE_PAYLOAD,
                "payload",
                F.format_string(
                    f"payload is %d bytes, limit {contract.max_payload_bytes}", F.octet_length("payload")
                ),
            ),
        ),
        (
            F.col("schema_version").isNotNull() & ~F.col("schema_version").isin(*contract.schema_versions),
            _error(
                Reason.UNKNOWN_SCHEMA_VERSION,
                "schema_version",
                F.format_string(
                    f"schema version %d is not in the contract ({', '.join(map(str, contract.schema_versions))})",
                    F.col("schema_version"),
                ),
            ),
        ),
        (
            F.col(FIELDS_COLUMN).isNull(),
            _error(Reason.MALFORMED_JSON, None, F.lit("payload is not a JSON object")),
        ),
    ]
    by_name = {c.name: c for c in columns}
    for key in contract.key:
        column = by_name[key]
        checks.append(
            (
                F.col(key).isNull(),
                _error(
                    Reason.MISSING_KEY,
                    key,
                    F.when(F.col(column.raw_column).isNull(), F.lit(f"key {key} is absent")).otherwise(
                        F.format_string(
                            f"key {key}=%s is not a valid {column.spec.type.kind}", F.col(column.raw_column)
                        )
                    ),
                ),
            )
        )
    required = [c for c in columns if c.spec.required and c.name not in contract.key]
    for column in required:
        checks.append(
            (
                F.col(column.raw_column).isNull(),
                _error(
                    Reason.MISSING_REQUIRED_FIELD,
                    column.dotted_path,
                    F.lit(f"required field {column.dotted_path} is absent"),
                ),
            )
        )
    for column in required:
        checks.append(
            (
                F.col(column.name).isNull(),
                _error(
                    Reason.INVALID_TYPE,
                    column.dotted_path,
                    F.format_string(
                        f"{column.dotted_path}=%s is not a valid {column.spec.type.spark_ddl()}",
                        F.col(column.raw_column),
                    ),
                ),
            )
        )
    for column in columns:
        spec, value = column.spec, F.col(column.name)
        if spec.minimum is not None or spec.maximum is not None:
            low = value < F.lit(spec.minimum) if spec.minimum is not None else F.lit(False)
            high = value > F.lit(spec.maximum) if spec.maximum is not None else F.lit(False)
            checks.append(
                (
                    value.isNotNull() & (low | high),
                    _error(
                        Reason.VALUE_OUT_OF_RANGE,
                        column.dotted_path,
                        F.format_string(
                            f"{column.dotted_path}=%s is outside [{spec.minimum}, {spec.maximum}]",
                            value.cast("string"),
                        ),
                    ),
                )
            )
        if spec.allowed:
            checks.append(
                (
                    value.isNotNull() & ~value.isin(*spec.allowed),
                    _error(
                        Reason.INVALID_VALUE,
                        column.dotted_path,
                        F.format_string(
                            f"{column.dotted_path}=%s is not one of {', '.join(spec.allowed)}", value
                        ),
                    ),
                )
            )
        if spec.max_length:
            checks.append(
                (
                    value.isNotNull() & (F.length(value) > F.lit(spec.max_length)),
                    _error(
                        Reason.INVALID_VALUE,
                        column.dotted_path,
                        F.format_string(
                            f"{column.dotted_path} is %d characters, limit {spec.max_length}", F.length(value)
                        ),
                    ),
                )
            )
    error = F.coalesce(*[F.when(condition, err) for condition, err in checks])
    return df.withColumn(ERROR_COLUMN, error)


def dedupe_latest(df: DataFrame, contract: TopicContract, rank_column: str = "_version_rank") -> DataFrame:
    """Rank each key's versions, newest first: ordering column, then ingestion time, then
    message id (so ties resolve the same way on every run). Rank 1 is the version to merge."""
    from pyspark.sql import Window
    from pyspark.sql import functions as F

    window = Window.partitionBy(*contract.key).orderBy(
        F.col(contract.ordering_column).desc(), F.col("ingestion_ts").desc(), F.col("message_id").desc()
    )
    return df.withColumn(rank_column, F.row_number().over(window))


def add_audit_columns(df: DataFrame, contract: TopicContract, run_id: str) -> DataFrame:
    """Select exactly the curated table's columns, with the audit columns filled in."""
    from pyspark.sql import functions as F

    payload = [F.col(name) for name, _ in contract.curated_columns()[:-6]]
    return df.select(
        *payload,
        F.col(RESCUED_DATA_COLUMN),
        F.col("_raw_snapshot_id").cast("bigint").alias("_raw_snapshot_id"),
        F.col("message_id").alias("_message_id"),
        F.col("ingestion_ts").alias("_ingestion_ts"),
        F.lit(run_id).alias("_run_id"),
        F.current_timestamp().alias("_curated_at"),
    )
