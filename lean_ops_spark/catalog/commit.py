"""Commit SQL writes (MERGE/DELETE/UPDATE) with custom snapshot-summary properties.

Spark 3.5 has no SQL conf for snapshot properties, so SQL writes go through Iceberg's
``CommitMetadata.withCommitProperties(map, callable, exception class)`` over py4j, with a
Python object implementing ``java.util.concurrent.Callable``. That relies on PySpark's
pinned-thread mode (``PYSPARK_PIN_THREAD=true``, the default): with it off the commit
succeeds and the properties are silently missing, so callers must verify the summary of
the snapshot they committed (as :func:`lean_ops_spark.catalog.metadata.load_table_snapshots` reads it).
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import TYPE_CHECKING, Any

from lean_ops_spark.errors import CheckpointError

if TYPE_CHECKING:
    from pyspark.sql import SparkSession

__all__ = ["with_commit_properties"]


class _JavaCallable:
    """A Python callable exposed to the JVM as ``java.util.concurrent.Callable``."""

    def __init__(self, fn: Callable[[], Any]) -> None:
        self._fn = fn
        self.error: BaseException | None = None

    def call(self) -> None:
        try:
            self._fn()
        except BaseException as exc:  # surfaced on the Python side after the JVM returns
            self.error = exc
            raise

    class Java:
        implements = ["java.util.concurrent.Callable"]  # noqa: RUF012 - py4j protocol


def with_commit_properties(
    spark: SparkSession, properties: Mapping[str, str], write: Callable[[], Any]
) -> None:
    """Run ``write`` (which issues one Iceberg SQL write) with ``properties`` in its snapshot summary.

    Raises:
        CheckpointError: PySpark is not in pinned-thread mode, so properties cannot be attached.
        Exception: whatever ``write`` raised (the original Python exception, not py4j's wrapper).
    """
    from pyspark.java_gateway import ensure_callback_server_started

    sc = spark.sparkContext
    gateway: Any = sc._gateway
    if type(gateway).__name__ != "ClientServer":
        raise CheckpointError(
            f"cannot commit {', '.join(properties)} in the snapshot summary: snapshot properties "
            "need PySpark's pinned-thread mode (PYSPARK_PIN_THREAD=true, the default); nothing was written"
        )
    ensure_callback_server_started(gateway)  # type: ignore[no-untyped-call]
    jvm: Any = sc._jvm
    java_map = jvm.java.util.HashMap()
    for key, value in properties.items():
        java_map.put(key, str(value))
    callable_ = _JavaCallable(write)
    try:
        jvm.org.apache.iceberg.spark.CommitMetadata.withCommitProperties(
            java_map, callable_, jvm.java.lang.Class.forName("java.lang.RuntimeException")
        )
    except Exception:
        if callable_.error is not None:
            raise callable_.error from None
        raise
