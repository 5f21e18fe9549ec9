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

from lean_ops_spark import sqlexpr as S
from lean_ops_spark.config.models import RESCUED_DATA_COLUMN, FieldSpec, TopicContract
from lean_ops_spark.curation.reasons import REASON_CLASS, Reason
from lean_ops_spark.sqlexpr import Expr

if TYPE_CHECKING:
    from pyspark.sql import DataFrame

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


def _container(path: tuple[str, ...]) -> Expr:
    """The map that holds the value at ``path`` (the top-level map or a struct's map)."""
    return S.col(FIELDS_COLUMN) if len(path) == 1 else S.col(_map_column(path[:-1]))


def _typed(column: ParsedColumn) -> Expr:
    raw = S.col(column.raw_column)
    kind = column.spec.type.kind
    if kind == "string":
        return raw
    if kind in ("struct", "array"):
        return S.from_json(raw, column.spec.type.spark_ddl())
    return raw.cast(column.spec.type.spark_ddl())


def parse_payload(df: DataFrame, contract: TopicContract) -> DataFrame:
    """Add the contract's typed columns and ``_rescued_data`` to a raw batch.

    ``_rescued_data`` is a JSON object of ``path -> raw JSON text`` for fields the contract
    does not know (top level and inside flattened structs) and for values that did not cast
    (including a flattened struct that is not an object). A path joins keys with ``.``; a
    key that holds a ``.`` itself is put in backticks, so no two values share a path.
    Intermediate columns are kept for :func:`classify`; :func:`add_audit_columns` selects
    the final shape. (Expressions are SQL text: :mod:`lean_ops_spark.sqlexpr`.)
    """
    columns = parsed_columns(contract)
    out = S.with_columns(df, {FIELDS_COLUMN: S.from_json(S.col("payload"), _MAP)})
    struct_paths = _struct_paths(contract)
    for path in struct_paths:  # parents first: a child's map is parsed from its parent's
        out = S.with_columns(out, {_map_column(path): S.from_json(_container(path)[path[-1]], _MAP)})
    out = S.with_columns(out, {c.raw_column: _container(c.path)[c.path[-1]] for c in columns})
    out = S.with_columns(out, {c.name: _typed(c) for c in columns})

    # Unknown keys: at the top level and inside each flattened struct.
    top_entries, top_any = _unknown_keys(S.col(FIELDS_COLUMN), [f.name for f in contract.fields], "")
    pieces, unknown = [top_entries], [top_any]
    for path in struct_paths:
        children = sorted(
            {c.path[len(path)] for c in columns if c.path[: len(path)] == path and len(c.path) > len(path)}
        )
        entries, any_unknown = _unknown_keys(S.col(_map_column(path)), children, ".".join(path) + ".")
        pieces.append(entries)
        unknown.append(any_unknown)
    # Values present but not castable, and flattened structs that are not objects.
    failed_values = [(c.dotted_path, S.col(c.raw_column), S.col(c.name)) for c in columns]
    failed_values += [
        (".".join(path), _container(path)[path[-1]], S.col(_map_column(path))) for path in struct_paths
    ]
    failures = [
        S.struct(S.lit(key).alias("key"), S.when(raw.isNotNull() & typed.isNull(), raw).alias("value"))
        for key, raw, typed in failed_values
    ]
    failed = S.call("map_from_entries", S.filter(S.array(*failures), lambda e: e["value"].isNotNull()))
    pieces.append(failed)
    rescued = S.call("map_concat", *[S.coalesce(p, S.call("map").cast(_MAP)) for p in pieces])
    # Most records rescue nothing: a cheap test (no lambda functions, which Spark interprets
    # row by row) decides whether the map above needs building at all.
    anything = [S.coalesce(u, False) for u in unknown]
    anything += [raw.isNotNull() & typed.isNull() for _, raw, typed in failed_values]
    return S.with_columns(
        out,
        {
            RESCUED_DATA_COLUMN: S.when(reduce(operator.or_, anything), S.call("to_json", rescued)).otherwise(
                S.lit(None).cast("string")
            )
        },
    )


def compact(df: DataFrame) -> DataFrame:
    """Drop the intermediate parse columns (the payload map, struct maps, each field's raw
    text) once :func:`classify` has used them: the batch a run caches stays narrow (the raw
    ``payload`` is kept, so any of them can be derived again)."""
    drop = [c for c in df.columns if c == FIELDS_COLUMN or c.startswith((_STRUCT_PREFIX, _RAW_PREFIX))]
    return df.drop(*drop)


def _rescue_key(prefix: str, key: Expr) -> Expr:
    """``prefix + key``, a key that holds a ``.`` or a backtick put in backticks (its own
    backticks doubled): a top-level key ``meta.region`` is rescued under `` `meta.region` ``,
    never under the path of ``region`` inside a flattened ``meta`` (``meta.region``)."""
    quoted = S.call("concat", S.lit("`"), S.call("replace", key, "`", "``"), S.lit("`"))
    name = S.when(key.rlike("[.`]"), quoted).otherwise(key)
    return S.call("concat", prefix, name) if prefix else name


def _unknown_keys(fields: Expr, known_names: list[str], prefix: str) -> tuple[Expr, Expr]:
    """Entries of a struct's map whose key is not a known child, keyed by
    :func:`_rescue_key`, and whether there are any (tested without lambda functions; null
    when the map is null)."""
    known = S.array(*known_names)
    unknown = S.map_filter(fields, lambda k, _v: ~S.call("array_contains", known, k))
    unknown = S.transform_keys(unknown, lambda k, _v: _rescue_key(prefix, k))
    return unknown, S.call("size", S.call("array_except", S.call("map_keys", fields), known)) > 0


def _literal(text: str) -> str:
    """``text`` as literal text in a ``format_string`` template (a contract's ``allowed``
    values may hold ``%``, which would otherwise be read as a conversion and fail the run)."""
    return text.replace("%", "%%")


def _error(reason: Reason, field: str | None, detail: Expr) -> Expr:
    return S.struct(
        S.lit(REASON_CLASS[reason].value).alias("error_class"),
        S.lit(reason.value).alias("reason_code"),
        S.lit(field).cast("string").alias("error_field"),
        detail.cast("string").alias("error_detail"),
    )


def classify(df: DataFrame, contract: TopicContract) -> DataFrame:
    """Add ``_error`` (null for a valid record): the first failing check, in the order of
    :class:`Reason`, with its class, reason code, field and a readable detail."""
    columns = parsed_columns(contract)
    checks: list[tuple[Expr, Expr]] = [
        (
            S.coalesce(S.call("trim", S.col("message_id")), S.lit("")) == S.lit(""),
            _error(Reason.MISSING_MESSAGE_ID, "message_id", S.lit("message_id is absent or blank")),
        ),
        (
            S.col("topic").isNull() | (S.col("topic") != S.lit(contract.topic)),
            _error(
                Reason.WRONG_TOPIC,
                "topic",
                S.format_string("topic %s is not " + contract.topic, S.col("topic")),
            ),
        ),
        (
            S.coalesce(S.call("octet_length", S.col("payload")), S.lit(0))
            > S.lit(contract.max_payload_bytes),
            _error(
                Reason.OVERSIZE_PAYLOAD,
                "payload",
                S.format_string(
                    f"payload is %d bytes, limit {contract.max_payload_bytes}",
                    S.call("octet_length", S.col("payload")),
                ),
            ),
        ),
        (
            S.col("schema_version").isNotNull() & ~S.col("schema_version").isin(*contract.schema_versions),
            _error(
                Reason.UNKNOWN_SCHEMA_VERSION,
                "schema_version",
                S.format_string(
                    f"schema version %d is not in the contract ({', '.join(map(str, contract.schema_versions))})",
                    S.col("schema_version"),
                ),
            ),
        ),
        (
            S.col(FIELDS_COLUMN).isNull(),
            _error(Reason.MALFORMED_JSON, None, S.lit("payload is not a JSON object")),
        ),
    ]
    by_name = {c.name: c for c in columns}
    for key in contract.key:
        column = by_name[key]
        checks.append(
            (
                S.col(key).isNull(),
                _error(
                    Reason.MISSING_KEY,
                    key,
                    S.when(S.col(column.raw_column).isNull(), S.lit(f"key {key} is absent")).otherwise(
                        S.format_string(
                            f"key {key}=%s is not a valid {column.spec.type.kind}", S.col(column.raw_column)
                        )
                    ),
                ),
            )
        )
    required = [c for c in columns if c.spec.required and c.name not in contract.key]
    for column in required:
        checks.append(
            (
                S.col(column.raw_column).isNull(),
                _error(
                    Reason.MISSING_REQUIRED_FIELD,
                    column.dotted_path,
                    S.lit(f"required field {column.dotted_path} is absent"),
                ),
            )
        )
    for column in required:
        checks.append(
            (
                S.col(column.name).isNull(),
                _error(
                    Reason.INVALID_TYPE,
                    column.dotted_path,
                    S.format_string(
                        f"{column.dotted_path}=%s is not a valid {column.spec.type.spark_ddl()}",
                        S.col(column.raw_column),
                    ),
                ),
            )
        )
    for column in columns:
        spec, value = column.spec, S.col(column.name)
        if spec.minimum is not None or spec.maximum is not None:
            low = value < S.lit(spec.minimum) if spec.minimum is not None else S.lit(False)
            high = value > S.lit(spec.maximum) if spec.maximum is not None else S.lit(False)
            checks.append(
                (
                    value.isNotNull() & (low | high),
                    _error(
                        Reason.VALUE_OUT_OF_RANGE,
                        column.dotted_path,
                        S.format_string(
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
                        S.format_string(
                            f"{column.dotted_path}=%s is not one of {_literal(', '.join(spec.allowed))}",
                            value,
                        ),
                    ),
                )
            )
        if spec.max_length:
            checks.append(
                (
                    value.isNotNull() & (S.call("length", value) > S.lit(spec.max_length)),
                    _error(
                        Reason.INVALID_VALUE,
                        column.dotted_path,
                        S.format_string(
                            f"{column.dotted_path} is %d characters, limit {spec.max_length}",
                            S.call("length", value),
                        ),
                    ),
                )
            )
    error = S.coalesce(*[S.when(condition, err) for condition, err in checks])
    return S.with_columns(df, {ERROR_COLUMN: error})


def dedupe_latest(df: DataFrame, contract: TopicContract, rank_column: str = "_version_rank") -> DataFrame:
    """Rank each key's versions, newest first: ordering column, then ingestion time, then
    message id, a null last at each level (so ties resolve the same way on every run, and as
    the curated MERGE's ``merge.version_order`` resolves them). Rank 1 is the version to merge."""
    from pyspark.sql import Window
    from pyspark.sql import functions as F

    window = Window.partitionBy(*contract.key).orderBy(
        F.col(contract.ordering_column).desc_nulls_last(),
        F.col("ingestion_ts").desc_nulls_last(),
        F.col("message_id").desc_nulls_last(),
    )
    return df.withColumn(rank_column, F.row_number().over(window))


def add_audit_columns(df: DataFrame, contract: TopicContract, run_id: str) -> DataFrame:
    """Select exactly the curated table's columns, with the audit columns filled in."""
    payload = [name for name, _ in contract.curated_columns()[:-6]]
    return S.select(
        df,
        *payload,
        RESCUED_DATA_COLUMN,
        S.col("_raw_snapshot_id").cast("bigint").alias("_raw_snapshot_id"),
        S.col("message_id").alias("_message_id"),
        S.col("ingestion_ts").alias("_ingestion_ts"),
        S.lit(run_id).alias("_run_id"),
        S.call("current_timestamp").alias("_curated_at"),
    )
