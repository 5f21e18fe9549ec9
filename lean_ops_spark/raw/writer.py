"""Append raw records to a staging table the way Firehose does: several small commits."""

from __future__ import annotations

from collections.abc import Sequence
from typing import TYPE_CHECKING

from lean_ops_spark.catalog.checkpoints import current_snapshot_id
from lean_ops_spark.catalog.naming import TableRef
from lean_ops_spark.raw.generator import RawRecord

if TYPE_CHECKING:
    from pyspark.sql import SparkSession

__all__ = ["append_raw"]


def append_raw(
    spark: SparkSession, table: TableRef, records: Sequence[RawRecord], appends: int = 1
) -> list[int]:
    """Append ``records`` to ``table`` in ``appends`` contiguous chunks (one snapshot each).

    Returns:
        The snapshot ids committed, oldest first.
    """
    schema = spark.table(table.sql).schema
    chunks = max(1, min(appends, len(records)))
    size = -(-len(records) // chunks) if records else 0
    snapshot_ids: list[int] = []
    for start in range(0, len(records), size or 1):
        chunk = records[start : start + size]
        rows = [
            (r.message_id, r.topic, r.payload, r.ingestion_ts, r.producer, r.schema_version) for r in chunk
        ]
        spark.createDataFrame(rows, schema).coalesce(1).writeTo(table.sql).append()
        snapshot = current_snapshot_id(spark, table)
        assert snapshot is not None
        snapshot_ids.append(snapshot)
    return snapshot_ids
