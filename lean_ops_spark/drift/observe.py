"""What a batch's payloads look like, measured with Spark, and the rescue of partly parsed values.

:func:`observe_batch` walks every parsed payload down to ``max_depth`` levels (object keys
and array elements), classifies each value from its JSON text, and aggregates per path:
how many values, nulls, values of each JSON kind, values that do not fit the contract type
(or its widest promotion) of a known path, and the widest integer part of numbers. It also
counts, per struct/array column, the records where ``from_json`` silently lost something
(an unknown nested key, a nested value that did not parse) and, per scalar column, the
values a cast rounded or truncated. Types come from the JSON text as curation parses it,
so a quoted number counts as a number: the same leniency curation's casts have.

:func:`rescue_partial_values` keeps those lost values: the raw JSON text of the column goes
into ``_rescued_data`` under the column's payload path, so nothing is silently dropped.
"""

from __future__ import annotations

from collections.abc import Collection, Mapping
from typing import TYPE_CHECKING

from lean_ops_spark.config.models import RESCUED_DATA_COLUMN, FieldType, TopicContract
from lean_ops_spark.curation.reasons import Reason
from lean_ops_spark.curation.transform import ERROR_COLUMN, FIELDS_COLUMN, ParsedColumn, parsed_columns
from lean_ops_spark.drift.diff import JSON_KINDS, ObservedPath, ObservedSchema
from lean_ops_spark.drift.schema import ELEMENT, FieldPath, contract_paths

if TYPE_CHECKING:
    from pyspark.sql import Column, DataFrame

__all__ = ["lossy_columns", "observe_batch", "rescue_partial_values"]

_SEP = "\u001f"  # joins path parts into one key column
_MAP = "map<string,string>"
#: Records that are not this topic's payloads at all: nothing to learn about its schema.
_NOT_OBSERVED = (
    Reason.WRONG_TOPIC.value,
    Reason.OVERSIZE_PAYLOAD.value,
    Reason.UNKNOWN_SCHEMA_VERSION.value,
    Reason.MALFORMED_JSON.value,
)
_INTEGER = r"^-?[0-9]+$"
_NUMBER = r"^-?[0-9]+(\.[0-9]+)?([eE][-+]?[0-9]+)?$"
_FLOAT_DIGITS = 7  # significant decimal digits a float holds
_FLOAT_MAX = 3.4028235e38


def _kind(text: Column) -> Column:
    from pyspark.sql import functions as F

    trimmed = F.ltrim(text)
    return (
        F.when(text.isNull(), F.lit("null"))
        .when(trimmed.startswith("{"), F.lit("object"))
        .when(trimmed.startswith("["), F.lit("array"))
        .when(text.isin("true", "false"), F.lit("boolean"))
        .when(text.rlike(_INTEGER), F.lit("integer"))
        .when(text.rlike(_NUMBER), F.lit("number"))
        .otherwise(F.lit("string"))
    )


def _exponent(text: Column) -> Column:
    from pyspark.sql import functions as F

    return F.coalesce(F.regexp_extract(text, r"[eE]([-+]?[0-9]+)$", 1).cast("int"), F.lit(0))


def _int_digits(text: Column) -> Column:
    """Digits before the point, exponent applied (``1.5E7`` has 8); JSON text re-serialised
    by Spark writes large doubles with an exponent."""
    from pyspark.sql import functions as F

    digits = F.length(F.regexp_extract(text, r"^-?0*([0-9]*)", 1)) + _exponent(text)
    return F.greatest(digits, F.lit(0))


def _frac_digits(text: Column) -> Column:
    """Digits after the point, exponent applied (``1.0000001E7`` has 0)."""
    from pyspark.sql import functions as F

    fraction = F.regexp_replace(F.regexp_extract(text, r"\.([0-9]+)", 1), "0+$", "")
    return F.greatest(F.length(fraction) - _exponent(text), F.lit(0))


def _significant_digits(text: Column) -> Column:
    from pyspark.sql import functions as F

    mantissa = F.regexp_replace(F.regexp_extract(text, r"^-?([0-9.]+)", 1), r"\.", "")
    return F.length(F.regexp_replace(F.regexp_replace(mantissa, "^0+", ""), "0+$", ""))


def _fits(text: Column, ftype: FieldType, *, widest: bool) -> Column:
    """Does a value's JSON text fit ``ftype`` (or, with ``widest``, its widest promotion)?"""
    from pyspark.sql import functions as F

    numeric = text.rlike(_NUMBER)
    kind = ftype.kind
    if kind == "int":
        target = "bigint" if widest else "int"
        return text.rlike(_INTEGER) & F.coalesce(text.cast(target).isNotNull(), F.lit(False))
    if kind == "long":
        return text.rlike(_INTEGER) & F.coalesce(text.cast("bigint").isNotNull(), F.lit(False))
    if kind == "float":
        if widest:
            return numeric
        return (
            numeric
            & (_significant_digits(text) <= _FLOAT_DIGITS)
            & (F.abs(text.cast("double")) <= F.lit(_FLOAT_MAX))
        )
    if kind == "double":
        return numeric
    if kind == "decimal":
        scale = ftype.scale or 0
        precision = 38 if widest else ftype.precision or 38
        return (
            numeric
            & (_frac_digits(text) <= scale)
            & F.coalesce(text.cast(f"decimal({precision},{scale})").isNotNull(), F.lit(False))
        )
    if kind == "boolean":
        return text.isin("true", "false")
    if kind in ("date", "timestamp"):
        return F.coalesce(text.cast(kind).isNotNull(), F.lit(False))
    return F.lit(True)


def _key(path: FieldPath) -> str:
    return _SEP.join(path)


def observable_rows(batch: DataFrame) -> DataFrame:
    """The records whose payload is a JSON object of this topic (any content errors included)."""
    from pyspark.sql import functions as F

    error = F.col(ERROR_COLUMN)
    return batch.where(
        F.col(FIELDS_COLUMN).isNotNull() & (error.isNull() | ~error["reason_code"].isin(*_NOT_OBSERVED))
    )


def _lost(raw: Column, typed: Column, ftype: FieldType) -> Column:
    """Did parsing ``raw`` (JSON text) into ``typed`` (of ``ftype``) lose a key or a value?"""
    from pyspark.sql import functions as F

    if ftype.kind == "struct":
        fields = F.from_json(raw, _MAP)
        known = F.array(*[F.lit(f.name) for f in ftype.fields])
        conditions = [F.size(F.map_filter(fields, lambda k, _v: ~F.array_contains(known, k))) > 0]
        for child in ftype.fields:
            child_raw, child_typed = fields[child.name], typed.getField(child.name)
            conditions.append(child_raw.isNotNull() & child_typed.isNull())
            if child.type.kind in ("struct", "array"):
                conditions.append(child_typed.isNotNull() & _lost(child_raw, child_typed, child.type))
        out = conditions[0]
        for condition in conditions[1:]:
            out = out | F.coalesce(condition, F.lit(False))
        return F.coalesce(out, F.lit(False))
    if ftype.kind == "array":
        assert ftype.element is not None
        element = ftype.element
        elements = F.from_json(raw, "array<string>")

        def element_lost(t: Column, r: Column) -> Column:
            condition = r.isNotNull() & t.isNull()
            if element.kind in ("struct", "array"):
                condition = condition | (t.isNotNull() & _lost(r, t, element))
            return F.coalesce(condition, F.lit(False))

        return F.coalesce(F.exists(F.zip_with(typed, elements, element_lost), lambda x: x), F.lit(False))
    return F.lit(False)


def _lossy(column: ParsedColumn) -> Column | None:
    """Records where ``column`` parsed but not exactly (None: the type cannot lose anything)."""
    from pyspark.sql import functions as F

    raw, typed = F.col(column.raw_column), F.col(column.name)
    ftype = column.spec.type
    parsed = raw.isNotNull() & typed.isNotNull()
    if ftype.kind in ("struct", "array"):
        return parsed & _lost(raw, typed, ftype)
    if ftype.kind in ("int", "long"):
        return parsed & ~F.trim(raw).rlike(_INTEGER)
    if ftype.kind == "decimal":
        return parsed & (_frac_digits(raw) > (ftype.scale or 0))
    if ftype.kind == "float":
        return parsed & (_significant_digits(raw) > _FLOAT_DIGITS)
    return None


def observe_batch(batch: DataFrame, contract: TopicContract, *, max_depth: int = 4) -> ObservedSchema:
    """Summarise the payload schema of a parsed and classified batch.

    ``batch`` is the output of ``classify(parse_payload(raw, contract), contract)``. This
    triggers two Spark jobs (on a cached batch, cheap) and collects one row per path.
    """
    from pyspark.sql import functions as F

    rows = observable_rows(batch)
    columns = parsed_columns(contract)
    lossy = {c.name: cond for c in columns if (cond := _lossy(c)) is not None}
    totals = rows.agg(
        F.count(F.lit(1)).alias("records"),
        *[F.count(F.when(cond, 1)).alias(f"lossy_{name}") for name, cond in lossy.items()],
    ).first()
    assert totals is not None
    records = int(totals["records"])
    lossy_records = {name: int(totals[f"lossy_{name}"]) for name in lossy if totals[f"lossy_{name}"]}
    if records == 0:
        return ObservedSchema(0, {}, lossy_records)

    known = contract_paths(contract)
    # no descent into values the contract types as scalars (a string field may carry JSON text)
    stop = F.array(
        *[F.lit(_key(p)) for p, info in known.items() if info.type.kind not in ("struct", "array")]
    )
    empty = F.array().cast("array<struct<key:string,text:string>>")

    def expand(entry: Column) -> Column:
        kind = _kind(entry["text"])
        descend = ~F.array_contains(stop, entry["key"])
        members = F.transform(
            F.map_entries(F.from_json(entry["text"], _MAP)),
            lambda m: F.struct(
                F.concat_ws(_SEP, entry["key"], m["key"]).alias("key"), m["value"].alias("text")
            ),
        )
        elements = F.transform(
            F.from_json(entry["text"], "array<string>"),
            lambda e: F.struct(F.concat_ws(_SEP, entry["key"], F.lit(ELEMENT)).alias("key"), e.alias("text")),
        )
        children = F.when(descend & (kind == "object"), members).when(descend & (kind == "array"), elements)
        return F.coalesce(children, empty)

    # One scan and one explode: level d+1 is computed from level d as an array column
    # (a union of per-level DataFrames would re-read the batch once per branch).
    levels = rows.select(
        F.transform(
            F.map_entries(F.col(FIELDS_COLUMN)),
            lambda m: F.struct(m["key"].alias("key"), m["value"].alias("text")),
        ).alias("level_0")
    )
    for depth in range(1, max_depth):
        levels = levels.withColumn(
            f"level_{depth}", F.flatten(F.transform(F.col(f"level_{depth - 1}"), expand))
        )
    values = (
        levels.select(F.explode(F.concat(*[F.col(f"level_{d}") for d in range(max_depth)])).alias("value"))
        .select(F.col("value.key").alias("key"), F.col("value.text").alias("text"))
        .withColumn("kind", _kind(F.col("text")))
    )

    scalar_paths = {
        p: info.type for p, info in known.items() if info.type.kind not in ("struct", "array", "string")
    }
    bad = F.lit(False)
    bad_wider = F.lit(False)
    text = F.col("text")
    for path, ftype in scalar_paths.items():
        here = F.col("key") == F.lit(_key(path))
        bad = F.when(here, ~_fits(text, ftype, widest=False)).otherwise(bad)
        bad_wider = F.when(here, ~_fits(text, ftype, widest=True)).otherwise(bad_wider)
    present = text.isNotNull()
    numeric = F.col("kind").isin("integer", "number")
    aggregated = (
        values.groupBy("key")
        .agg(
            F.count(text).alias("present"),
            F.count(F.when(text.isNull(), 1)).alias("nulls"),
            *[F.count(F.when(F.col("kind") == k, 1)).alias(f"kind_{k}") for k in JSON_KINDS],
            F.count(F.when(present & F.coalesce(bad, F.lit(True)), 1)).alias("bad"),
            F.count(F.when(present & F.coalesce(bad_wider, F.lit(True)), 1)).alias("bad_wider"),
            F.max(F.when(numeric, _int_digits(text))).alias("max_int_digits"),
        )
        .collect()
    )
    paths: dict[FieldPath, ObservedPath] = {}
    for row in aggregated:
        path = tuple(str(row["key"]).split(_SEP))
        paths[path] = ObservedPath(
            path=path,
            present=int(row["present"]),
            nulls=int(row["nulls"]),
            kinds={k: int(row[f"kind_{k}"]) for k in JSON_KINDS if row[f"kind_{k}"]},
            bad=int(row["bad"]) if path in scalar_paths else 0,
            bad_wider=int(row["bad_wider"]) if path in scalar_paths else 0,
            max_int_digits=row["max_int_digits"],
        )
    return ObservedSchema(records, paths, lossy_records)


def lossy_columns(contract: TopicContract, observed: ObservedSchema) -> tuple[str, ...]:
    """Columns of ``contract`` with records that lost something when parsed."""
    names = {c.name for c in parsed_columns(contract)}
    return tuple(sorted(name for name, n in observed.lossy_records.items() if n and name in names))


def rescue_partial_values(batch: DataFrame, contract: TopicContract, columns: Collection[str]) -> DataFrame:
    """Keep the raw JSON text of ``columns`` in ``_rescued_data`` where parsing lost something.

    Pure transform (no action). The key is the column's payload path, as for a value that
    did not cast at all; a key already rescued by curation is left as it is.
    """
    from pyspark.sql import functions as F

    by_name: Mapping[str, ParsedColumn] = {c.name: c for c in parsed_columns(contract)}
    entries = []
    for name in columns:
        column = by_name[name]
        condition = _lossy(column)
        if condition is None:
            continue
        entries.append(
            F.struct(
                F.lit(column.dotted_path).alias("key"),
                F.when(condition, F.col(column.raw_column)).alias("value"),
            )
        )
    if not entries:
        return batch
    existing = F.coalesce(F.from_json(F.col(RESCUED_DATA_COLUMN), _MAP), F.create_map().cast(_MAP))
    extra = F.map_from_entries(F.filter(F.array(*entries), lambda e: e["value"].isNotNull()))
    new = F.map_filter(extra, lambda k, _v: ~F.array_contains(F.map_keys(existing), k))
    return batch.withColumn(
        RESCUED_DATA_COLUMN,
        F.when(F.size(new) > 0, F.to_json(F.map_concat(existing, new))).otherwise(F.col(RESCUED_DATA_COLUMN)),
    )
