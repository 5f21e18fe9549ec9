"""CheckSchemaExists: may the semantic job run for a topic?

The state machine asks this right after a curation run (in the ResolveCuratedSnapshot
step). The answer is "yes" when the topic has a semantic model file
(``conf/semantic/<topic>.yaml``) that loads, and every curated column its models read
(columns, measures and filters, found by :mod:`lean_ops_spark.semantic.expressions`) is
in the curated table. A "no" routes the execution to NotifyMissingSchema (metric + a log
line carrying :attr:`SchemaCheck.reason`, which names the missing file, the invalid key or
the missing columns), then CurationOnlySuccess once the raw backlog needs no further round:
curation has already succeeded.

No Spark and no catalog access: the caller passes the curated table's columns (read from
its metadata file in the Lambda).
"""

from __future__ import annotations

from collections.abc import Collection
from dataclasses import dataclass
from typing import Protocol

from lean_ops_spark.config.sources import ConfigSource
from lean_ops_spark.errors import ConfigError
from lean_ops_spark.semantic.loader import load_semantic_models
from lean_ops_spark.semantic.loader import semantic_model_path as _model_path

__all__ = ["SchemaCheck", "SemanticSchemaCheck", "check_semantic_schema", "semantic_model_path"]


@dataclass(frozen=True)
class SchemaCheck:
    """The answer to CheckSchemaExists for one topic."""

    exists: bool
    reason: str
    model: str | None = None
    missing_columns: tuple[str, ...] = ()


class SemanticSchemaCheck(Protocol):
    """The interface the state machine's schema step calls (no Spark, no catalog writes).

    Args:
        source: the config root (local folder or the deployed ``s3://`` prefix).
        topic: the topic whose curation run just committed.
        curated_columns: the curated table's current top-level column names.
    """

    def __call__(self, source: ConfigSource, topic: str, curated_columns: Collection[str]) -> SchemaCheck: ...


def semantic_model_path(topic: str) -> str:
    """Where a topic's semantic model lives under the config root."""
    return _model_path(topic)


def check_semantic_schema(source: ConfigSource, topic: str, curated_columns: Collection[str]) -> SchemaCheck:
    """The model file exists and loads, and every curated column its models read exists."""
    relative = semantic_model_path(topic)
    where = source.describe(relative)
    try:
        models = load_semantic_models(source, topic)
    except ConfigError as exc:
        return SchemaCheck(False, f"invalid semantic model: {exc}", where)
    if models is None:
        return SchemaCheck(False, f"no semantic model for topic {topic!r} at {where}")
    available = set(curated_columns)
    missing = tuple(c for c in models.curated_columns if c not in available)
    if missing:
        return SchemaCheck(
            False,
            f"{where}: curated table lacks column(s) {', '.join(missing)} "
            f"(read by model(s) {', '.join(m.name for m in models.models if set(m.curated_columns) & set(missing))})",
            where,
            missing,
        )
    names = ", ".join(m.name for m in models.models)
    return SchemaCheck(True, f"semantic model {where} ({names})", where)
