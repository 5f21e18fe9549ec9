"""Helpers for the maintenance Spark tests: private namespaces and tables with known shapes.

Imported by ``tests/spark/test_maintenance_*.py``; they all run on the one shared session.
"""

from __future__ import annotations

import itertools
import os
from pathlib import Path
from typing import Any

import pyarrow as pa
import pyarrow.parquet as pq

from lean_ops_spark.catalog.naming import TableRef

_counter = itertools.count(1)


def new_namespace(spark: Any) -> str:
    """A namespace of the test's own (``lake.mnt<n>``)."""
    name = f"mnt{os.getpid() % 1000}_{next(_counter)}"
    spark.sql(f"CREATE NAMESPACE IF NOT EXISTS lake.{name}")
    return name


def table(namespace: str, name: str, layer: str = "curated", topic: str | None = None) -> TableRef:
    return TableRef("lake", namespace, name, layer, topic)


def snapshot_ids(spark: Any, ref: TableRef) -> list[int]:
    """Live snapshot ids, oldest first."""
    rows = spark.sql(
        f"SELECT snapshot_id FROM {ref.metadata_table('snapshots')} ORDER BY committed_at"
    ).collect()
    return [int(r["snapshot_id"]) for r in rows]


def live_files(spark: Any, ref: TableRef) -> list[Path]:
    """Every data and delete file the current snapshot references, as local paths."""
    rows = spark.sql(f"SELECT file_path FROM {ref.metadata_table('files')}").collect()
    return [Path(r["file_path"].removeprefix("file:")) for r in rows]


def add_equality_delete(
    spark: Any,
    ref: TableRef,
    column: str,
    field_id: int,
    values: list[int],
    path: Path,
    partition_path: str | None = None,
) -> None:
    """Commit one equality delete file (``column`` in ``values``) through Iceberg's Java API.

    Spark does not write equality deletes (Flink and other engines do); the file is a real
    Parquet delete file with the Iceberg field id, so reads apply it too.
    """
    schema = pa.schema([pa.field(column, pa.int64(), metadata={b"PARQUET:field_id": str(field_id).encode()})])
    pq.write_table(pa.table({column: pa.array(values, pa.int64())}, schema=schema), path)
    jvm = spark.sparkContext._jvm
    iceberg_table = jvm.org.apache.iceberg.spark.Spark3Util.loadIcebergTable(spark._jsparkSession, ref.sql)
    ids = spark.sparkContext._gateway.new_array(jvm.int, 1)
    ids[0] = field_id
    builder = (
        jvm.org.apache.iceberg.FileMetadata.deleteFileBuilder(iceberg_table.spec())
        .ofEqualityDeletes(ids)
        .withPath(str(path))
        .withFormat(jvm.org.apache.iceberg.FileFormat.PARQUET)
        .withFileSizeInBytes(path.stat().st_size)
        .withRecordCount(len(values))
    )
    if partition_path is not None:
        builder = builder.withPartitionPath(partition_path)
    delete_file = builder.build()
    iceberg_table.newRowDelta().addDeletes(delete_file).commit()
    spark.sql(f"REFRESH TABLE {ref.sql}")
