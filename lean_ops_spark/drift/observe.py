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

import logging
from collections.abc import Collection, Mapping
from typing import TYPE_CHECKING

from lean_ops_spark.config.models import RESCUED_DATA_COLUMN, FieldType, TopicContract
from lean_ops_spark.curation.reasons import Reason
from lean_ops_spark.curation.transform import (
    ERROR_COLUMN,
    FIELDS_COLUMN,
    ParsedColumn,
    classify,
    compact,
    parse_payload,
    parsed_columns,
)
from lean_ops_spark.drift.diff import JSON_KINDS, ObservedPath, ObservedSchema
from lean_ops_spark.drift.schema import ELEMENT, FieldPath, contract_paths

if TYPE_CHECKING:
    from pyspark.sql import Column, DataFrame

__all__ = [
    "LOSSY_COLUMN",
    "SAMPLE_CLEAN_RECORDS",
    "lossy_columns",
    "observe_batch",
    "parse_batch",
    "rescue_partial_values",
    "with_lossy_values",
]

#: map<string,string>: column -> its raw JSON text, for the columns whose parse lost something
#: (an unknown nested key, a nested value that did not cast, a rounded or truncated number).
LOSSY_COLUMN = "_lossy"
#: Above this many clean records a batch's observation profiles a deterministic sample of
#: them (by message id) and scales their counts; every other record is profiled exactly.
SAMPLE_CLEAN_RECORDS = 10_000
_BUCKETS = 1 << 20
_WEIGHT = "_observe_weight"

log = logging.getLogger(__name__)

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
    """The records whose payload is a JSON object of this topic (any content errors included).

    A payload that is not a JSON object is classified ``malformed_json`` (or an earlier
    reason of :data:`_NOT_OBSERVED`), so the error column alone tells them apart.
    """
    from pyspark.sql import functions as F

    error = F.col(ERROR_COLUMN)
    return batch.where(error.isNull() | ~error["reason_code"].isin(*_NOT_OBSERVED))


def _struct_lost(fields: Column, typed: Column, ftype: FieldType) -> Column:
    """Did a struct lose a key or a value? ``fields`` is its JSON object as map<string,string>."""
    from pyspark.sql import functions as F

    known = F.array(*[F.lit(f.name) for f in ftype.fields])
    conditions = [F.size(F.map_filter(fields, lambda k, _v: ~F.array_contains(known, k))) > 0]
    for child in ftype.fields:
        child_raw, child_typed = fields[child.name], typed.getField(child.name)
        conditions.append(child_raw.isNotNull() & child_typed.isNull())
        if child.type.kind in ("struct", "array"):
            conditions.append(child_typed.isNotNull() & _lost(child_raw, child_typed, child.type))
        elif (rounded := _scalar_lost(child_raw, child.type)) is not None:
            conditions.append(child_typed.isNotNull() & rounded)
    out = conditions[0]
    for condition in conditions[1:]:
        out = out | F.coalesce(condition, F.lit(False))
    return F.coalesce(out, F.lit(False))


def _lost(raw: Column, typed: Column, ftype: FieldType) -> Column:
    """Did parsing ``raw`` (JSON text) into ``typed`` (of ``ftype``) lose a key or a value?"""
    from pyspark.sql import functions as F

    if ftype.kind == "struct":
        return _struct_lost(F.from_json(raw, _MAP), typed, ftype)
    if ftype.kind == "array":
        assert ftype.element is not None
        element = ftype.element
        elements = F.from_json(raw, "array<string>")

        def element_lost(t: Column, r: Column) -> Column:
            condition = r.isNotNull() & t.isNull()
            if element.kind in ("struct", "array"):
                condition = condition | (t.isNotNull() & _lost(r, t, element))
            elif (rounded := _scalar_lost(r, element)) is not None:
                condition = condition | (t.isNotNull() & rounded)
            return F.coalesce(condition, F.lit(False))

        lost = F.coalesce(F.exists(F.zip_with(typed, elements, element_lost), lambda x: x), F.lit(False))
        if element.kind != "struct":
            return lost
        # Arrays of objects (the common case): one parse of the elements as maps instead of a
        # parse per element; the per-element path stays for arrays that are not all objects.
        objects = F.from_json(raw, f"array<{_MAP}>")

        def object_lost(t: Column, m: Column) -> Column:
            return F.coalesce(
                (m.isNotNull() & t.isNull()) | (t.isNotNull() & _struct_lost(m, t, element)), F.lit(False)
            )

        fast = F.coalesce(F.exists(F.zip_with(typed, objects, object_lost), lambda x: x), F.lit(False))
        return F.when(objects.isNotNull(), fast).otherwise(lost)
    return F.lit(False)


def _scalar_lost(raw: Column, ftype: FieldType) -> Column | None:
    """A number that cast but not exactly (truncated, rounded); None: the type cannot lose."""
    from pyspark.sql import functions as F

    if ftype.kind in ("int", "long"):
        return ~F.trim(raw).rlike(_INTEGER)
    if ftype.kind == "decimal":
        return _frac_digits(raw) > (ftype.scale or 0)
    if ftype.kind == "float":
        return _significant_digits(raw) > _FLOAT_DIGITS
    return None


def _lossy(column: ParsedColumn) -> Column | None:
    """Records where ``column`` parsed but not exactly (None: the type cannot lose anything)."""
    from pyspark.sql import functions as F

    raw, typed = F.col(column.raw_column), F.col(column.name)
    ftype = column.spec.type
    parsed = raw.isNotNull() & typed.isNotNull()
    if ftype.kind in ("struct", "array"):
        return parsed & _lost(raw, typed, ftype)
    rounded = _scalar_lost(raw, ftype)
    return None if rounded is None else parsed & rounded


def with_lossy_values(batch: DataFrame, contract: TopicContract) -> DataFrame:
    """Add :data:`LOSSY_COLUMN` (null when every column parsed exactly).

    Needs the intermediate columns of :func:`~lean_ops_spark.curation.transform.parse_payload`
    (each field's raw text), so it runs before :func:`~lean_ops_spark.curation.transform.compact`.
    """
    from pyspark.sql import functions as F

    entries = [
        F.struct(F.lit(c.name).alias("key"), F.when(condition, F.col(c.raw_column)).alias("value"))
        for c in parsed_columns(contract)
        if (condition := _lossy(c)) is not None
    ]
    if not entries:
        return batch.withColumn(LOSSY_COLUMN, F.lit(None).cast(_MAP))
    lossy = F.map_from_entries(F.filter(F.array(*entries), lambda e: e["value"].isNotNull()))
    return batch.withColumn(LOSSY_COLUMN, F.when(F.size(lossy) > 0, lossy))


def parse_batch(raw_batch: DataFrame, contract: TopicContract) -> DataFrame:
    """Parse, type, classify and mark partly parsed values in one projection, then drop the
    intermediate columns: the narrow batch a run caches (pure transform, no action)."""
    return compact(with_lossy_values(classify(parse_payload(raw_batch, contract), contract), contract))


def _rows_to_profile(
    batch: DataFrame, contract: TopicContract, sample_clean: int
) -> tuple[DataFrame, int, dict[str, int]]:
    """The observable records to profile, with their weight; the record count; lossy counts."""
    from pyspark.sql import functions as F

    if LOSSY_COLUMN not in batch.columns:
        batch = with_lossy_values(batch, contract)
    rows = observable_rows(batch)
    columns = parsed_columns(contract)
    lossy_names = [c.name for c in columns if _lossy(c) is not None]
    interesting = (
        F.col(ERROR_COLUMN).isNotNull()
        | F.col(RESCUED_DATA_COLUMN).isNotNull()
        | F.col(LOSSY_COLUMN).isNotNull()
    )
    bucket = F.pmod(F.xxhash64(F.col("message_id")), F.lit(_BUCKETS))
    shares = [_BUCKETS >> shift for shift in range(0, 15)]  # 1, 1/2, ... 1/16384 of the clean records
    totals = rows.agg(
        F.count(F.lit(1)).alias("records"),
        F.count(F.when(~interesting, 1)).alias("clean"),
        *[
            F.count(F.when(~interesting & (bucket < F.lit(share)), 1)).alias(f"sampled_{i}")
            for i, share in enumerate(shares)
        ],
        *[
            F.count(F.when(F.map_contains_key(F.col(LOSSY_COLUMN), name), 1)).alias(f"lossy_{name}")
            for name in lossy_names
        ],
    ).first()
    assert totals is not None
    records = int(totals["records"])
    lossy_records = {name: int(totals[f"lossy_{name}"]) for name in lossy_names if totals[f"lossy_{name}"]}
    if records == 0:
        return rows, 0, lossy_records
    clean = int(totals["clean"])
    # the smallest share that still profiles at least sample_clean clean records (all if fewer)
    chosen = 0
    for i in range(len(shares)):
        if int(totals[f"sampled_{i}"]) >= min(sample_clean, clean):
            chosen = i
    sampled = int(totals[f"sampled_{chosen}"])
    weight = clean / sampled if sampled else 1.0
    if chosen:
        log.info(
            "%s: schema observation profiles %d of %d clean records (weight %.2f) and all %d others",
            contract.topic,
            sampled,
            clean,
            weight,
            records - clean,
        )
    rows = rows.where(interesting | (bucket < F.lit(shares[chosen]))).withColumn(
        _WEIGHT, F.when(interesting, F.lit(1.0)).otherwise(F.lit(weight))
    )
    if FIELDS_COLUMN not in batch.columns:
        rows = rows.withColumn(FIELDS_COLUMN, F.from_json(F.col("payload"), _MAP))
    return rows, records, lossy_records


def observe_batch(
    batch: DataFrame,
    contract: TopicContract,
    *,
    max_depth: int = 4,
    sample_clean: int = SAMPLE_CLEAN_RECORDS,
) -> ObservedSchema:
    """Summarise the payload schema of a parsed and classified batch.

    ``batch`` is :func:`parse_batch`'s output (or ``classify(parse_payload(...))``). Two
    Spark jobs: one aggregation over the batch, then the per-path profile, which re-parses
    the payload of every record that could show drift — quarantined, with rescued data, or
    partly parsed — and of the *clean* records (valid, nothing rescued, everything parsed
    exactly) only up to ``sample_clean`` of them. A clean record holds only contract paths
    with values that fit, so it can change no drift decision except through the share
    denominators: above ``sample_clean``, a deterministic sample of them (by message id, the
    same on a re-run) is profiled and its counts are scaled to the exact clean total.
    ``records`` and every count from the other records stay exact.
    """
    from pyspark.sql import functions as F

    rows, records, lossy_records = _rows_to_profile(batch, contract, sample_clean)
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
        F.col(_WEIGHT),
        F.transform(
            F.map_entries(F.col(FIELDS_COLUMN)),
            lambda m: F.struct(m["key"].alias("key"), m["value"].alias("text")),
        ).alias("level_0"),
    )
    for depth in range(1, max_depth):
        levels = levels.withColumn(
            f"level_{depth}", F.flatten(F.transform(F.col(f"level_{depth - 1}"), expand))
        )
    values = (
        levels.select(
            F.col(_WEIGHT),
            F.explode(F.concat(*[F.col(f"level_{d}") for d in range(max_depth)])).alias("value"),
        )
        .select(F.col(_WEIGHT), F.col("value.key").alias("key"), F.col("value.text").alias("text"))
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
    w = F.col(_WEIGHT)

    def weighted(condition: Column, name: str) -> Column:
        return F.round(F.coalesce(F.sum(F.when(condition, w)), F.lit(0.0))).cast("bigint").alias(name)

    aggregated = (
        values.groupBy("key")
        .agg(
            weighted(present, "present"),
            weighted(text.isNull(), "nulls"),
            *[weighted(F.col("kind") == k, f"kind_{k}") for k in JSON_KINDS],
            weighted(present & F.coalesce(bad, F.lit(True)), "bad"),
            weighted(present & F.coalesce(bad_wider, F.lit(True)), "bad_wider"),
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

    if LOSSY_COLUMN not in batch.columns:
        batch = with_lossy_values(batch, contract)
    by_name: Mapping[str, ParsedColumn] = {c.name: c for c in parsed_columns(contract)}
    entries = [
        F.struct(
            F.lit(by_name[name].dotted_path).alias("key"),
            F.col(LOSSY_COLUMN)[name].alias("value"),
        )
        for name in columns
        if name in by_name and _lossy(by_name[name]) is not None
    ]
    if not entries:
        return batch
    existing = F.coalesce(F.from_json(F.col(RESCUED_DATA_COLUMN), _MAP), F.create_map().cast(_MAP))
    extra = F.map_from_entries(F.filter(F.array(*entries), lambda e: e["value"].isNotNull()))
    new = F.map_filter(extra, lambda k, _v: ~F.array_contains(F.map_keys(existing), k))
    return batch.withColumn(
        RESCUED_DATA_COLUMN,
        F.when(F.size(new) > 0, F.to_json(F.map_concat(existing, new))).otherwise(F.col(RESCUED_DATA_COLUMN)),
    )
