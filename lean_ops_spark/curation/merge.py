"""MERGE statements for curated and quarantine tables (SQL text builders), and the days a
batch's rows fall into (:func:`batch_partition_days`, the one Spark action here).

The curated MERGE carries the batch's partition predicate in its ``ON`` clause so Iceberg
prunes the target scan to the partitions the batch touches: cost follows the batch, not
the table. This relies on a key's partition (its day, or month or year for those
transforms) being immutable (e.g. an order's creation time), which is what event-time
partitioning means. The quarantine MERGE does the same with the ingestion days of its rows
(a raw record read again keeps its ingestion time).
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from datetime import date, timedelta
from typing import TYPE_CHECKING

from lean_ops_spark.config.models import TopicContract

if TYPE_CHECKING:
    from pyspark.sql import DataFrame

__all__ = [
    "MAX_RANGES",
    "batch_partition_days",
    "curated_merge_sql",
    "day_ranges",
    "days_predicate",
    "partition_predicate",
    "quarantine_merge_sql",
    "version_order",
    "view_name",
]

#: More disjoint day ranges than this collapse into one min..max range (still bounded).
MAX_RANGES = 32


def day_ranges(days: Iterable[date]) -> list[tuple[date, date]]:
    """Consecutive days merged into ``[first, last]`` ranges, sorted."""
    ranges: list[tuple[date, date]] = []
    for day in sorted(set(days)):
        if ranges and day == ranges[-1][1] + timedelta(days=1):
            ranges[-1] = (ranges[-1][0], day)
        else:
            ranges.append((day, day))
    return ranges


def _period(day: date, transform: str) -> tuple[date, date]:
    """The first and last day of the partition ``day`` falls into under ``transform``: the day
    itself for ``day`` and ``hour`` (whole days cover their hours), else its month or year."""
    if transform == "month":
        first = day.replace(day=1)
        following = date(first.year + (first.month == 12), first.month % 12 + 1, 1)
        return first, following - timedelta(days=1)
    if transform == "year":
        return date(day.year, 1, 1), date(day.year, 12, 31)
    return day, day


def partition_predicate(contract: TopicContract, days: Sequence[date], alias: str = "t") -> str | None:
    """A predicate on the target's partition column covering the partitions of ``days``
    (None: nothing to prune by).

    Day ranges are written as plain comparisons on the source column, which Iceberg turns
    into partition filters through the ``days``/``months``/``hours`` transform. A ``month`` or
    ``year`` transform covers each day's whole month or year: the partition the MERGE reads
    anyway, so a version whose column moved within its partition still finds the key's row.
    """
    if not days or not contract.partition.temporal:
        return None
    kind = next(
        spec.type.kind for name, _, spec in contract.flattened_fields() if name == contract.partition.column
    )
    covered: set[date] = set()
    for first, last in {_period(day, contract.partition.transform) for day in days}:
        covered.update(first + timedelta(days=n) for n in range((last - first).days + 1))
    return days_predicate(f"{alias}.{contract.partition.column}", kind, sorted(covered))


def batch_partition_days(rows: DataFrame, contract: TopicContract) -> list[date]:
    """The days of ``rows``' partition column, sorted (one small Spark job), for
    :func:`partition_predicate`. Empty for an ``identity`` partition, whose column has no
    days (it may be an int, which does not even cast to a date) and is not pruned by day."""
    if not contract.partition.temporal:
        return []
    column = contract.partition.column
    found = rows.selectExpr(f"to_date(`{column}`) AS d").distinct().collect()
    return sorted(r["d"] for r in found if r["d"] is not None)


def days_predicate(column: str, kind: str, days: Sequence[date]) -> str:
    """``column`` (a ``timestamp`` or ``date``) within one of ``days``: consecutive days as one
    range of plain comparisons (Iceberg prunes partitions of a ``days``/``months``/``hours``
    transform of the column by them); more than :data:`MAX_RANGES` ranges become one
    ``min..max`` range. The day literals and a timestamp's own day are read in the same session
    time zone, so every value of ``days`` is covered whatever that zone is."""
    ranges = day_ranges(days)
    if len(ranges) > MAX_RANGES:
        ranges = [(ranges[0][0], ranges[-1][1])]

    def literal(day: date) -> str:
        return (
            f"TIMESTAMP '{day.isoformat()} 00:00:00'" if kind == "timestamp" else f"DATE '{day.isoformat()}'"
        )

    parts = [
        f"({column} >= {literal(first)} AND {column} < {literal(last + timedelta(days=1))})"
        for first, last in ranges
    ]
    return "(" + " OR ".join(parts) + ")"


def version_order(alias: str, contract: TopicContract) -> str:
    """A version's place in the newest-wins order, comparable with ``>``: the ordering column,
    then ingestion time, then message id, a null lowest at each level. The order
    :func:`~lean_ops_spark.curation.transform.dedupe_latest` ranks a batch's versions by
    (descending, nulls last), so a tie goes the same way whether both versions arrive in one
    batch or in two, and whichever of two overlapping runs commits last."""
    return f"struct({alias}.{contract.ordering_column}, {alias}._ingestion_ts, {alias}._message_id)"


def curated_merge_sql(target: str, source_view: str, contract: TopicContract, predicate: str | None) -> str:
    """Upsert the newest version per key (:func:`version_order`); an incoming version never
    overwrites a newer one, and a re-delivery of the message a row already holds (the same
    message id, ingested again later) leaves the row as it is."""
    on = " AND ".join(f"t.{key} = s.{key}" for key in contract.key)
    if predicate:
        on = f"{on} AND {predicate}"
    newer = f"{version_order('s', contract)} > {version_order('t', contract)}"
    return (
        f"MERGE INTO {target} t\nUSING {source_view} s\nON {on}\n"
        f"WHEN MATCHED AND {newer} AND NOT (s._message_id <=> t._message_id) THEN UPDATE SET *\n"
        "WHEN NOT MATCHED THEN INSERT *"
    )


def quarantine_merge_sql(target: str, source_view: str, ingestion_days: Sequence[date] = ()) -> str:
    """Insert quarantined records once: keyed by message id, a re-run adds nothing.

    With the batch's ``ingestion_days`` (of its quarantined records), the ``ON`` clause also
    limits the target to those days of ``ingestion_ts`` (the quarantine's partitioning), so
    the MERGE reads the partitions the batch writes, not the whole quarantine. A re-run reads
    the same raw records, with the same ``ingestion_ts``, so it matches every row it wrote;
    rows without one stay matched (``IS NULL``). A message delivered again on another day
    (a re-delivery repeats the message id) gets a row of its own, one per delivery, which
    replay updates one by one.
    """
    on = "t.message_id = s.message_id"
    if ingestion_days:
        on = f"{on} AND (t.ingestion_ts IS NULL OR {days_predicate('t.ingestion_ts', 'timestamp', ingestion_days)})"
    return f"MERGE INTO {target} t\nUSING {source_view} s\nON {on}\nWHEN NOT MATCHED THEN INSERT *"


def view_name(prefix: str, run_id: str) -> str:
    """A temp view name unique to a run (identifier-safe)."""
    safe = "".join(ch if ch.isalnum() else "_" for ch in run_id)
    return f"{prefix}_{safe}"[:120]
