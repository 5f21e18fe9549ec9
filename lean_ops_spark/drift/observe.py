"""What a batch's payloads look like, measured with Spark, and the rescue of partly parsed values.

:func:`profile_batch` counts a parsed batch (records per reason, valid, distinct keys,
rescued records and paths, partition days: what the ledger and the circuit breaker need)
and, in the same few passes over the pinned batch, observes its payload schema
(:func:`observe_batch` is the observation alone). The observation walks each profiled
payload down to ``max_depth`` levels (object keys and array elements), classifies each value from its JSON text, and aggregates per path:
how many values, nulls, values of each JSON kind, values that do not fit the contract type
(or its widest promotion) of a known path, and the widest integer part of numbers. It also
counts, per struct/array column, the records where ``from_json`` silently lost something
(an unknown nested key, a nested value that did not parse) and, per scalar column, the
values a cast rounded or truncated (or dates whose time part it dropped). Types come from
the JSON text as curation parses it, so a quoted number counts as a number: the same
leniency curation's casts have. Digits no JSON number has (``"01234"``, a zero-padded code)
count as a string, and an integer column's cast of them (1234) as partly parsed.

:func:`rescue_partial_values` keeps those lost values: the raw JSON text of the column goes
into ``_rescued_data`` under the column's payload path, so nothing is silently dropped.
"""

from __future__ import annotations

import logging
import operator
from collections.abc import Callable, Collection, Mapping
from dataclasses import dataclass
from datetime import date
from functools import reduce
from typing import TYPE_CHECKING, Any

from lean_ops_spark import sqlexpr as S
from lean_ops_spark.config.models import RESCUED_DATA_COLUMN, FieldType, TopicContract
from lean_ops_spark.curation.reasons import REASON_CLASS, Reason
from lean_ops_spark.curation.transform import (
    ERROR_COLUMN,
    ParsedColumn,
    classify,
    compact,
    parse_payload,
    parsed_columns,
)
from lean_ops_spark.drift.diff import JSON_KINDS, ObservedPath, ObservedSchema
from lean_ops_spark.drift.schema import ELEMENT, FieldPath, contract_paths
from lean_ops_spark.sqlexpr import Expr

if TYPE_CHECKING:
    from pyspark.sql import DataFrame

__all__ = [
    "FLOAT_DIGITS",
    "LOSSY_COLUMN",
    "SAMPLE_CLEAN_RECORDS",
    "BatchCounts",
    "BatchProfile",
    "batch_counts",
    "keep_profiled_payloads",
    "lossy_columns",
    "observe_batch",
    "parse_batch",
    "profile_batch",
    "rescue_partial_values",
    "with_lossy_values",
]

#: map<string,string>: column -> its raw JSON text, for the columns whose parse lost something
#: (an unknown nested key, a nested value that did not cast, a rounded or truncated number,
#: a date's dropped time part).
LOSSY_COLUMN = "_lossy"
#: Above this many clean records a batch's observation profiles a deterministic sample of
#: them (by message id) and scales their counts; every other record is profiled exactly.
#: Clean records only add values that fit the contract, so the sample estimates the share
#: denominators; 2,000-4,000 records put a share's standard error at ~1 point or less (a
#: decision's threshold is 50% by default). 10,000 cost ~0.7 s more per 105k run (README).
SAMPLE_CLEAN_RECORDS = 2_000
_BUCKETS = 1 << 20
_MAX_SHIFT = 14  # the smallest sample share is 1/16384

log = logging.getLogger(__name__)

_FLAG_PREFIX = "_lossy__"  # with_lossy_values' per-column conditions (dropped again)
_SEP = "\u001f"  # joins path parts into one key column
_META = "\u0000lean-ops:"  # keys of the per-record count entries (not payload paths)
_ENTRIES = "array<struct<key:string,text:string,exact:boolean>>"
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
#: A JSON number as Spark writes one back (no leading zeros): digits that do not match, such
#: as ``01234``, can only have been a JSON string, and a number column would drop their zeros.
_JSON_INTEGER = r"^-?(0|[1-9][0-9]*)$"
_JSON_NUMBER = r"^-?(0|[1-9][0-9]*)(\.[0-9]+)?([eE][-+]?[0-9]+)?$"
#: Significant decimal digits a ``float`` (32-bit) column holds: a value written with more
#: is partly parsed (rounded), and rescued.
FLOAT_DIGITS = 7
_FLOAT_MAX = 3.4028235e38


def _kind(text: Expr) -> Expr:
    trimmed = S.call("ltrim", text)
    return (
        S.when(text.isNull(), S.lit("null"))
        .when(trimmed.startswith("{"), S.lit("object"))
        .when(trimmed.startswith("["), S.lit("array"))
        .when(text.isin("true", "false"), S.lit("boolean"))
        .when(text.rlike(_JSON_INTEGER), S.lit("integer"))
        .when(text.rlike(_JSON_NUMBER), S.lit("number"))
        .otherwise(S.lit("string"))
    )


def _exponent(text: Expr) -> Expr:
    return S.coalesce(S.call("regexp_extract", text, r"[eE]([-+]?[0-9]+)$", 1).cast("int"), S.lit(0))


def _int_digits(text: Expr) -> Expr:
    """Digits before the point, exponent applied (``1.5E7`` has 8); JSON text re-serialised
    by Spark writes large doubles with an exponent."""
    digits = S.call("length", S.call("regexp_extract", text, r"^-?0*([0-9]*)", 1)) + _exponent(text)
    return S.call("greatest", digits, S.lit(0))


def _frac_digits(text: Expr) -> Expr:
    """Digits after the point, exponent applied (``1.0000001E7`` has 0)."""
    fraction = S.call("regexp_replace", S.call("regexp_extract", text, r"\.([0-9]+)", 1), "0+$", "")
    return S.call("greatest", S.call("length", fraction) - _exponent(text), S.lit(0))


def _significant_digits(text: Expr) -> Expr:
    mantissa = S.call("regexp_replace", S.call("regexp_extract", text, r"^-?([0-9.]+)", 1), r"\.", "")
    return S.call(
        "length", S.call("regexp_replace", S.call("regexp_replace", mantissa, "^0+", ""), "0+$", "")
    )


def _time_part(text: Expr) -> Expr:
    """Does a date's text go on after the day (``2026-11-21T13:45:00Z``)? A date cast reads
    up to the day and ignores the rest after a ``T`` or a space."""
    return S.call("trim", text).rlike("[T ]")


def _sub_micro(text: Expr) -> Expr:
    """Does a timestamp's text give a digit finer than a microsecond (``...00.1234567Z``)?
    A timestamp holds microseconds; the cast drops the rest of the fraction."""
    return text.rlike(r"\.[0-9]{6}[0-9]*[1-9]")


def _fits(text: Expr, ftype: FieldType, *, widest: bool) -> Expr:
    """Does a value's JSON text fit ``ftype`` (or, with ``widest``, its widest promotion)?"""
    numeric = text.rlike(_NUMBER)
    kind = ftype.kind
    if kind == "int":
        target = "bigint" if widest else "int"
        return text.rlike(_INTEGER) & S.coalesce(text.cast(target).isNotNull(), S.lit(False))
    if kind == "long":
        return text.rlike(_INTEGER) & S.coalesce(text.cast("bigint").isNotNull(), S.lit(False))
    if kind == "float":
        if widest:
            return numeric
        return (
            numeric
            & (_significant_digits(text) <= FLOAT_DIGITS)
            & (S.call("abs", text.cast("double")) <= S.lit(_FLOAT_MAX))
        )
    if kind == "double":
        return numeric
    if kind == "decimal":
        scale = ftype.scale or 0
        precision = 38 if widest else ftype.precision or 38
        return (
            numeric
            & (_frac_digits(text) <= scale)
            & S.coalesce(text.cast(f"decimal({precision},{scale})").isNotNull(), S.lit(False))
        )
    if kind == "boolean":
        return text.isin("true", "false")
    if kind == "date":  # a date with a time part casts, but loses the time
        return S.coalesce(text.cast(kind).isNotNull() & ~_time_part(text), S.lit(False))
    if kind == "timestamp":  # nanoseconds cast, but lose their last digits
        return S.coalesce(text.cast(kind).isNotNull() & ~_sub_micro(text), S.lit(False))
    return S.lit(True)


def _key(path: FieldPath) -> str:
    return _SEP.join(path)


def _observable() -> Expr:
    """Records whose payload is a JSON object of this topic (any content errors included).

    A payload that is not a JSON object is classified ``malformed_json`` (or an earlier
    reason of :data:`_NOT_OBSERVED`), so the error column alone tells them apart.
    """
    error = S.col(ERROR_COLUMN)
    return error.isNull() | ~error["reason_code"].isin(*_NOT_OBSERVED)


def _struct_lost(fields: Expr, typed: Expr, ftype: FieldType) -> Expr:
    """Did a struct lose a key or a value? ``fields`` is its JSON object as map<string,string>."""
    known = S.array(*[S.lit(f.name) for f in ftype.fields])
    conditions = [S.call("size", S.map_filter(fields, lambda k, _v: ~S.call("array_contains", known, k))) > 0]
    for child in ftype.fields:
        child_raw, child_typed = fields[child.name], typed.getField(child.name)
        conditions.append(child_raw.isNotNull() & child_typed.isNull())
        if child.type.kind in ("struct", "array"):
            conditions.append(child_typed.isNotNull() & _lost(child_raw, child_typed, child.type))
        elif (rounded := _scalar_lost(child_raw, child_typed, child.type)) is not None:
            conditions.append(child_typed.isNotNull() & rounded)
    out = conditions[0]
    for condition in conditions[1:]:
        out = out | S.coalesce(condition, S.lit(False))
    return S.coalesce(out, S.lit(False))


def _lost(raw: Expr, typed: Expr, ftype: FieldType) -> Expr:
    """Did parsing ``raw`` (JSON text) into ``typed`` (of ``ftype``) lose a key or a value?"""
    if ftype.kind == "struct":
        return _struct_lost(S.from_json(raw, _MAP), typed, ftype)
    if ftype.kind == "array":
        assert ftype.element is not None
        element = ftype.element
        elements = S.from_json(raw, "array<string>")

        def element_lost(t: Expr, r: Expr) -> Expr:
            condition = r.isNotNull() & t.isNull()
            if element.kind in ("struct", "array"):
                condition = condition | (t.isNotNull() & _lost(r, t, element))
            elif (rounded := _scalar_lost(r, t, element)) is not None:
                condition = condition | (t.isNotNull() & rounded)
            return S.coalesce(condition, S.lit(False))

        lost = S.coalesce(S.exists(S.zip_with(typed, elements, element_lost), lambda x: x), S.lit(False))
        if element.kind != "struct":
            return lost
        # Arrays of objects (the common case): one parse of the elements as maps instead of a
        # parse per element; the per-element path stays for arrays that are not all objects.
        objects = S.from_json(raw, f"array<{_MAP}>")

        def object_lost(t: Expr, m: Expr) -> Expr:
            return S.coalesce(
                (m.isNotNull() & t.isNull()) | (t.isNotNull() & _struct_lost(m, t, element)), S.lit(False)
            )

        # null only when the elements are not all objects (or typed is null): then the slow path
        fast = S.exists(S.zip_with(typed, objects, object_lost), lambda x: x)
        return S.coalesce(fast, lost)
    return S.lit(False)


def _scalar_lost(raw: Expr, typed: Expr, ftype: FieldType) -> Expr | None:
    """A number that cast but not exactly (truncated, rounded), a date that dropped its
    time part, or a timestamp its nanoseconds; None: the type cannot lose."""
    if ftype.kind == "timestamp":  # no cheap exact test: a timestamp prints unlike its text
        return _sub_micro(raw)
    if ftype.kind in ("int", "long"):
        lost = ~S.call("trim", raw).rlike(_JSON_INTEGER)  # ("007" prints as 7)
    elif ftype.kind == "decimal":
        lost = _frac_digits(raw) > (ftype.scale or 0)
    elif ftype.kind == "float":
        return _significant_digits(raw) > FLOAT_DIGITS
    elif ftype.kind == "date":
        lost = _time_part(raw)
    else:
        return None
    # The common case needs no regex: the JSON text is exactly how the typed value prints
    # (an integer literal; a decimal with the column's scale; a yyyy-mm-dd date), so nothing
    # was lost.
    return S.when(typed.cast("string") == raw, S.lit(False)).otherwise(lost)


#: Types whose parse can lose something without failing (see :func:`_lossy`).
_LOSSY_KINDS = frozenset({"struct", "array", "int", "long", "decimal", "float", "date", "timestamp"})


def _may_lose(column: ParsedColumn) -> bool:
    """Does :func:`_lossy` check ``column``? (without building its expression)"""
    return column.spec.type.kind in _LOSSY_KINDS


def _lossy(column: ParsedColumn) -> Expr | None:
    """Records where ``column`` parsed but not exactly (None: the type cannot lose anything)."""
    if not _may_lose(column):
        return None
    raw, typed = S.col(column.raw_column), S.col(column.name)
    ftype = column.spec.type
    parsed = raw.isNotNull() & typed.isNotNull()
    if ftype.kind in ("struct", "array"):
        # The common case first, without the lambda functions of the full check (Spark
        # interprets those row by row): the JSON text is exactly the typed value written
        # back as JSON, so every key was known and every value parsed exactly.
        exact = S.call("to_json", typed) == raw
        return parsed & S.when(exact, S.lit(False)).otherwise(_lost(raw, typed, ftype))
    rounded = _scalar_lost(raw, typed, ftype)
    return None if rounded is None else parsed & rounded


def with_lossy_values(batch: DataFrame, contract: TopicContract) -> DataFrame:
    """Add :data:`LOSSY_COLUMN` (null when every column parsed exactly).

    Needs the intermediate columns of :func:`~lean_ops_spark.curation.transform.parse_payload`
    (each field's raw text), so it runs before :func:`~lean_ops_spark.curation.transform.compact`.
    """
    conditions = [(c, condition) for c in parsed_columns(contract) if (condition := _lossy(c)) is not None]
    if not conditions:
        return S.with_columns(batch, {LOSSY_COLUMN: S.lit(None).cast(_MAP)})
    # Each condition once, as a column of its own projection, which the map and the test
    # below both read (Spark does not merge projections that would repeat such expressions).
    flags = {f"{_FLAG_PREFIX}{c.name}": condition for c, condition in conditions}
    flagged = S.with_columns(batch, flags)
    entries = [
        S.struct(S.lit(c.name).alias("key"), S.when(S.col(flag), S.col(c.raw_column)).alias("value"))
        for (c, _), flag in zip(conditions, flags, strict=True)
    ]
    lossy = S.call("map_from_entries", S.filter(S.array(*entries), lambda e: e["value"].isNotNull()))
    # Almost every record loses nothing: the conditions alone (no lambda function, which
    # Spark interprets row by row) decide whether the map needs building.
    anything = reduce(operator.or_, [S.coalesce(S.col(flag), S.lit(False)) for flag in flags])
    out = S.with_columns(flagged, {LOSSY_COLUMN: S.when(anything & (S.call("size", lossy) > 0), lossy)})
    return out.drop(*flags)


def parse_batch(raw_batch: DataFrame, contract: TopicContract) -> DataFrame:
    """Parse, type, classify and mark partly parsed values in one projection, then drop the
    intermediate columns: the narrow batch a run pins (pure transform, no action)."""
    return compact(with_lossy_values(classify(parse_payload(raw_batch, contract), contract), contract))


@dataclass(frozen=True)
class BatchCounts:
    """Record counts of a parsed and classified batch: what the ledger and the breaker need."""

    read: int
    valid: int
    kept: int  # distinct keys among the valid records
    by_reason: Mapping[str, int]
    rescued_records: int
    rescued_fields: Mapping[str, int]
    partition_days: tuple[date, ...]  # of the valid records' partition column (none for identity)
    quarantine_days: tuple[date, ...] = ()  # of the quarantined records' ingestion_ts

    @property
    def quarantined(self) -> int:
        return sum(self.by_reason.values())

    @property
    def by_class(self) -> dict[str, int]:
        out: dict[str, int] = {}
        for reason, n in self.by_reason.items():
            error_class = REASON_CLASS[Reason(reason)].value
            out[error_class] = out.get(error_class, 0) + n
        return out


@dataclass(frozen=True)
class BatchProfile:
    """:func:`profile_batch`'s answer: the batch's counts and its observed payload schema."""

    counts: BatchCounts
    observed: ObservedSchema


def _sample_share(records_hint: int, sample_clean: int | None) -> int:
    """Buckets (of :data:`_BUCKETS`) of clean records to profile: the smallest power-of-two
    share that still covers about ``sample_clean`` of ``records_hint`` records (all if fewer)."""
    if sample_clean is None:
        return _BUCKETS
    shift = 0
    while shift < _MAX_SHIFT and (records_hint >> (shift + 1)) >= sample_clean:
        shift += 1
    return _BUCKETS >> shift


def _interesting() -> Expr:
    """Records that can show drift: quarantined, with rescued data, or partly parsed."""
    return (
        S.col(ERROR_COLUMN).isNotNull()
        | S.col(RESCUED_DATA_COLUMN).isNotNull()
        | S.col(LOSSY_COLUMN).isNotNull()
    )


def _sampled(share: int) -> Expr:
    """The deterministic sample (by message id) of ``share`` buckets."""
    return S.call("pmod", S.call("xxhash64", S.col("message_id")), S.lit(_BUCKETS)) < S.lit(share)


def keep_profiled_payloads(
    batch: DataFrame, records_hint: int, sample_clean: int | None = SAMPLE_CLEAN_RECORDS
) -> DataFrame:
    """``batch`` (:func:`parse_batch`'s output) with ``payload`` kept only where a run reads it
    again: records that are quarantined, rescued or partly parsed, and the clean records
    :func:`profile_batch` samples with the same ``records_hint`` and ``sample_clean``.

    A clean record's typed columns already hold everything its payload says, and payloads
    are most of a pinned batch's bytes (~1.8 KB a record in the bench's orders): a 105k
    batch keeps about one payload in ten (a 1/32 sample plus the interesting records). With
    the 1/8 sample of then, keeping only these lowered a run's median by ~1.6 s in an
    interleaved A/B. Pure transform; pass :func:`profile_batch` a ``full_payloads`` source for
    the rare batch whose sample misses every clean record.
    """
    share = _sample_share(records_hint, sample_clean)
    if share >= _BUCKETS:
        return batch
    keep = _interesting() | _sampled(share)
    return S.with_columns(batch, {"payload": S.when(keep, S.col("payload"))})


def _meta(name: str) -> str:
    return _META + name


def _rescued_field_entries() -> Expr:
    """One entry per path in the record's ``_rescued_data`` (key ``_META f<SEP>path``)."""
    rescued = S.col(RESCUED_DATA_COLUMN)
    return S.transform(
        S.call("map_keys", S.from_json(rescued, _MAP)),
        lambda k: S.struct(
            S.call("concat", S.lit(_meta("f" + _SEP)), k).alias("key"),
            S.lit(None).cast("string").alias("text"),
            S.lit(True).alias("exact"),
        ),
    )


def _totals(
    batch: DataFrame,
    contract: TopicContract,
    *,
    observable: Expr,
    rescued: Expr,
    clean: Expr,
    sampled: Expr,
) -> Any:
    """One single-row aggregation: every record count of :class:`BatchCounts` but the
    distinct keys and the rescued paths, plus what sizing the profile needs. (The distinct
    keys are a query of their own: a ``count(DISTINCT ...)`` here would group every other
    count by key too, which costs more CPU than the separate pass.)"""
    error = S.col(ERROR_COLUMN)
    valid = error.isNull()
    reason = error["reason_code"]
    lossy_names = [c.name for c in parsed_columns(contract) if _may_lose(c)]
    days = (  # an identity partition column has no days (and may not be castable to a date)
        S.call("collect_set", S.when(valid, S.call("to_date", S.col(contract.partition.column))))
        if contract.partition.temporal
        else S.array().cast("array<date>")
    )
    row = S.select(
        batch,
        S.call("count", S.lit(1)).alias("read"),
        S.call("count", S.when(valid, 1)).alias("valid"),
        S.call("count", S.when(rescued, 1)).alias("rescued"),
        S.call("count", S.when(observable, 1)).alias("observable"),
        S.call("count", S.when(clean, 1)).alias("clean"),
        S.call("count", S.when(clean & sampled, 1)).alias("clean_sampled"),
        days.alias("days"),
        S.call("collect_set", S.when(~valid, S.call("to_date", S.col("ingestion_ts")))).alias(
            "quarantine_days"
        ),
        *[S.call("count", S.when(reason == r.value, 1)).alias(f"reason_{r.value}") for r in Reason],
        *[
            S.call(
                "count", S.when(observable & S.call("map_contains_key", S.col(LOSSY_COLUMN), name), 1)
            ).alias(f"lossy_{name}")
            for name in lossy_names
        ],
    ).first()
    assert row is not None
    return row, lossy_names


def _profile_values(
    rows: DataFrame, contract: TopicContract, exact: Expr, extra: Expr, max_depth: int
) -> DataFrame:
    """Every value of ``rows``' payloads down to ``max_depth`` levels as ``(key, text, exact)``
    (``key`` the path's parts joined), after the ``extra`` entries of each row."""
    known = contract_paths(contract)
    # no descent into values the contract types as scalars (a string field may carry JSON text)
    stop = S.array(
        *[S.lit(_key(p)) for p, info in known.items() if info.type.kind not in ("struct", "array")]
    )
    empty = S.array().cast("array<struct<key:string,text:string>>")

    def expand(entry: Expr) -> Expr:
        # only objects and arrays have children: tested by their first character, not by the
        # full _kind (whose regexes would run for every scalar value of every level)
        first = S.call("substring", S.call("ltrim", entry["text"]), 1, 1)
        descend = ~S.call("array_contains", stop, entry["key"])
        members = S.transform(
            S.call("map_entries", S.from_json(entry["text"], _MAP)),
            lambda m: S.struct(
                S.call("concat_ws", _SEP, entry["key"], m["key"]).alias("key"), m["value"].alias("text")
            ),
        )
        elements = S.transform(
            S.from_json(entry["text"], "array<string>"),
            lambda e: S.struct(
                S.call("concat_ws", _SEP, entry["key"], S.lit(ELEMENT)).alias("key"), e.alias("text")
            ),
        )
        children = S.when(descend & (first == "{"), members).when(descend & (first == "["), elements)
        return S.coalesce(children, empty)

    # Level d+1 is computed from level d as an array column (one scan, one explode), each
    # level in its own projection so no level is computed twice.
    levels = S.select(
        rows,
        extra.alias("extra"),
        exact.alias("exact"),
        S.coalesce(
            S.transform(
                S.call("map_entries", S.from_json(S.col("payload"), _MAP)),
                lambda m: S.struct(m["key"].alias("key"), m["value"].alias("text")),
            ),
            empty,
        ).alias("level_0"),
    )
    for depth in range(1, max_depth):
        levels = S.with_columns(
            levels, {f"level_{depth}": S.call("flatten", S.transform(S.col(f"level_{depth - 1}"), expand))}
        )
    values = S.transform(
        S.call("concat", *[S.col(f"level_{d}") for d in range(max_depth)]),
        lambda v: S.struct(v["key"].alias("key"), v["text"].alias("text"), S.col("exact").alias("exact")),
    )
    exploded = S.select(levels, S.call("explode", S.call("concat", S.col("extra"), values)).alias("e"))
    return exploded.select("e.*")


def _scalar_paths(contract: TopicContract) -> dict[FieldPath, FieldType]:
    known = contract_paths(contract)
    return {p: info.type for p, info in known.items() if info.type.kind not in ("struct", "array", "string")}


def _aggregate(values: DataFrame, contract: TopicContract) -> list[Any]:
    """Per entry key and ``exact``: entries, value counts by JSON kind, values of a known
    scalar path that do not fit its type, widest integer part."""
    scalar_paths = _scalar_paths(contract)
    text, key = S.col("text"), S.col("key")
    bad = S.lit(False)
    bad_wider = S.lit(False)
    for path, ftype in scalar_paths.items():
        here = key == S.lit(_key(path))
        bad = S.when(here, ~_fits(text, ftype, widest=False)).otherwise(bad)
        bad_wider = S.when(here, ~_fits(text, ftype, widest=True)).otherwise(bad_wider)
    # Each value's kind and fit once, in a projection, before the counts that read them.
    values = S.select(
        values,
        "key",
        "exact",
        "text",
        _kind(text).alias("kind"),
        bad.alias("bad"),
        bad_wider.alias("bad_wider"),
    )
    kind, bad, bad_wider = S.col("kind"), S.col("bad"), S.col("bad_wider")
    present = text.isNotNull()
    numeric = kind.isin("integer", "number")

    def count_if(condition: Expr, name: str) -> Expr:
        return S.call("count", S.when(condition, 1)).alias(name)

    counts = [
        S.call("count", S.lit(1)).alias("n"),
        count_if(present, "present"),
        count_if(text.isNull(), "nulls"),
        *[count_if(kind == k, f"kind_{k}") for k in JSON_KINDS],
        count_if(present & S.coalesce(bad, S.lit(True)), "bad"),
        count_if(present & S.coalesce(bad_wider, S.lit(True)), "bad_wider"),
        S.call("max", S.when(numeric, _int_digits(text))).alias("max_int_digits"),
    ]
    return list(values.groupBy("key", "exact").agg(*map(S.to_column, counts)).collect())


def _observed_paths(
    exact_rows: Mapping[str, Any],
    clean_rows: Mapping[str, Any],
    weight: float,
    scalar_paths: Mapping[FieldPath, FieldType],
) -> dict[FieldPath, ObservedPath]:
    """Per path: the exact counts plus the sampled clean counts scaled by ``weight``."""

    def combined(name: str, metric: str) -> int:
        exact, scaled = exact_rows.get(name), clean_rows.get(name)
        return (int(exact[metric]) if exact else 0) + (round(int(scaled[metric]) * weight) if scaled else 0)

    paths: dict[FieldPath, ObservedPath] = {}
    for name in sorted(set(exact_rows) | set(clean_rows)):
        path = tuple(name.split(_SEP))
        digits = [r["max_int_digits"] for r in (exact_rows.get(name), clean_rows.get(name)) if r]
        digits = [d for d in digits if d is not None]
        paths[path] = ObservedPath(
            path=path,
            present=combined(name, "present"),
            nulls=combined(name, "nulls"),
            kinds={k: c for k in JSON_KINDS if (c := combined(name, f"kind_{k}"))},
            bad=combined(name, "bad") if path in scalar_paths else 0,
            bad_wider=combined(name, "bad_wider") if path in scalar_paths else 0,
            max_int_digits=max(digits) if digits else None,
        )
    return paths


def profile_batch(
    batch: DataFrame,
    contract: TopicContract,
    *,
    observe: bool = True,
    max_depth: int = 4,
    sample_clean: int | None = SAMPLE_CLEAN_RECORDS,
    records_hint: int | None = None,
    full_payloads: Callable[[], DataFrame] | None = None,
) -> BatchProfile:
    """Count a parsed and classified batch and (with ``observe``) profile its payload schema,
    in one Spark job.

    ``batch`` is :func:`parse_batch`'s output (or ``classify(parse_payload(...))``), best
    pinned (``session.pin``): this job stores the batch every later step of a run reads. The counts are
    exact. The profile re-parses the payload of every record that could show drift —
    quarantined, with rescued data, or partly parsed — and of the *clean* records (valid,
    nothing rescued, everything parsed exactly) only about ``sample_clean`` of them (None: all).
    A clean record holds only contract paths with values that fit, so it can change no drift
    decision except through the share denominators: the sample is deterministic (by message
    id, the same on a re-run), chosen from ``records_hint`` (the batch's size, e.g. from raw
    metadata; counted first when None) and its counts are scaled to the exact clean total.
    When the sample holds no clean record although the batch has some, every clean record
    is profiled: from ``full_payloads()`` when given (a batch from
    :func:`keep_profiled_payloads` no longer has their payloads), else from ``batch``.
    """
    if LOSSY_COLUMN not in batch.columns:
        batch = with_lossy_values(batch, contract)
    if observe and sample_clean is not None and records_hint is None:
        records_hint = batch.count()
    share = _sample_share(records_hint or 0, sample_clean) if observe else 0
    error = S.col(ERROR_COLUMN)
    observable = _observable()
    rescued = error.isNull() & S.col(RESCUED_DATA_COLUMN).isNotNull()
    interesting = _interesting()
    clean = observable & ~interesting
    sampled = _sampled(share)
    totals, lossy_names = _totals(
        batch, contract, observable=observable, rescued=rescued, clean=clean, sampled=sampled
    )
    records, clean_total, clean_sampled = (
        int(totals["observable"]),
        int(totals["clean"]),
        int(totals["clean_sampled"]),
    )
    if observe and clean_total and not clean_sampled:
        # the hint was far off (more records than the batch has): profile every clean record
        log.warning(
            "%s: records hint %s sampled no clean record; profiling all", contract.topic, records_hint
        )
        source = full_payloads() if full_payloads is not None else batch
        return profile_batch(source, contract, max_depth=max_depth, sample_clean=None)
    kept = batch.where(error.isNull().sql).select(*contract.key).distinct().count()

    # Rescued paths, and (observing) every value of the records to profile, in one aggregation.
    profiled = observable & (interesting | sampled)
    empty = S.array().cast(_ENTRIES)
    fields = S.when(rescued, _rescued_field_entries()).otherwise(empty)
    rows: list[Any] = []
    if observe and records:
        values = _profile_values(
            batch.where((profiled | rescued).sql), contract, interesting, fields, max_depth
        )
        rows = _aggregate(values, contract)
    elif int(totals["rescued"]):
        entries = S.select(batch.where(rescued.sql), S.call("explode", fields).alias("e"))
        rows = _aggregate(entries.select("e.*"), contract)
    exact_rows: dict[str, Any] = {}
    clean_rows: dict[str, Any] = {}
    rescued_fields: dict[str, int] = {}
    field_prefix = _meta("f" + _SEP)
    for row in rows:
        name = str(row["key"])
        if name.startswith(field_prefix):
            rescued_fields[name[len(field_prefix) :]] = int(row["n"])
        else:
            (exact_rows if row["exact"] else clean_rows)[name] = row
    counts = BatchCounts(
        read=int(totals["read"]),
        valid=int(totals["valid"]),
        kept=kept,
        by_reason={r.value: int(totals[f"reason_{r.value}"]) for r in Reason if totals[f"reason_{r.value}"]},
        rescued_records=int(totals["rescued"]),
        rescued_fields=dict(sorted(rescued_fields.items())),
        partition_days=tuple(sorted(d for d in totals["days"] if d is not None)),
        quarantine_days=tuple(sorted(d for d in totals["quarantine_days"] if d is not None)),
    )
    lossy_records = {name: int(totals[f"lossy_{name}"]) for name in lossy_names if totals[f"lossy_{name}"]}
    if not observe or records == 0:
        return BatchProfile(counts, ObservedSchema(records, {}, lossy_records))
    weight = clean_total / clean_sampled if clean_sampled else 1.0
    if clean_sampled < clean_total:
        log.info(
            "%s: schema observation profiles %d of %d clean records (weight %.2f) and all %d others",
            contract.topic,
            clean_sampled,
            clean_total,
            weight,
            records - clean_total,
        )
    paths = _observed_paths(exact_rows, clean_rows, weight, _scalar_paths(contract))
    return BatchProfile(counts, ObservedSchema(records, paths, lossy_records))


def observe_batch(
    batch: DataFrame,
    contract: TopicContract,
    *,
    max_depth: int = 4,
    sample_clean: int | None = SAMPLE_CLEAN_RECORDS,
    records_hint: int | None = None,
) -> ObservedSchema:
    """The payload schema a parsed and classified batch shows (see :func:`profile_batch`)."""
    return profile_batch(
        batch, contract, max_depth=max_depth, sample_clean=sample_clean, records_hint=records_hint
    ).observed


def batch_counts(batch: DataFrame, contract: TopicContract) -> BatchCounts:
    """Only the counts of :func:`profile_batch` (no schema profile)."""
    return profile_batch(batch, contract, observe=False).counts


def lossy_columns(
    contract: TopicContract, observed: ObservedSchema, changed: Collection[str] = ()
) -> tuple[str, ...]:
    """Columns of ``contract`` with records that lost something when parsed, plus the
    ``changed`` columns that can lose something.

    ``changed`` are columns whose type ``observed`` did not parse with (added or widened
    since): a value that overflowed the old type was a plain cast failure there, and may be
    rounded or lose keys in the new one; only the re-parse can tell.
    """
    by_name = {c.name: c for c in parsed_columns(contract)}
    lossy = {name for name, n in observed.lossy_records.items() if n and name in by_name}
    lossy.update(name for name in changed if name in by_name and _may_lose(by_name[name]))
    return tuple(sorted(lossy))


def rescue_partial_values(batch: DataFrame, contract: TopicContract, columns: Collection[str]) -> DataFrame:
    """Keep the raw JSON text of ``columns`` in ``_rescued_data`` where parsing lost something.

    Pure transform (no action). The key is the column's payload path, as for a value that
    did not cast at all; a key already rescued by curation is left as it is.
    """
    if LOSSY_COLUMN not in batch.columns:
        batch = with_lossy_values(batch, contract)
    by_name: Mapping[str, ParsedColumn] = {c.name: c for c in parsed_columns(contract)}
    entries = [
        S.struct(
            S.lit(by_name[name].dotted_path).alias("key"),
            S.col(LOSSY_COLUMN)[name].alias("value"),
        )
        for name in columns
        if name in by_name and _may_lose(by_name[name])
    ]
    if not entries:
        return batch
    existing = S.coalesce(S.from_json(S.col(RESCUED_DATA_COLUMN), _MAP), S.call("map").cast(_MAP))
    extra = S.call("map_from_entries", S.filter(S.array(*entries), lambda e: e["value"].isNotNull()))
    new = S.map_filter(extra, lambda k, _v: ~S.call("array_contains", S.call("map_keys", existing), k))
    rescued = S.when(S.call("size", new) > 0, S.call("to_json", S.call("map_concat", existing, new)))
    return S.with_columns(batch, {RESCUED_DATA_COLUMN: rescued.otherwise(S.col(RESCUED_DATA_COLUMN))})
