"""CheckSchemaExists: may the semantic job run for a topic?

The state machine asks this right after a curation run (in the ResolveCuratedSnapshot
step). The answer is "yes" when the topic has a semantic model
(``conf/semantic/<topic>.yaml``) and every curated column the model uses exists in the
curated table. A "no" routes the execution to NotifyMissingSchema (metric + log) and
CurationOnlySuccess.

:func:`check_semantic_schema` is the one place to change when the semantic model format
lands: parse the model, list the curated columns it reads, report the missing ones. Until
then it checks that the model file exists and, when it has a top-level ``columns`` list of
mappings with a ``source`` (or ``name``) key, that those columns exist in curated.
"""

from __future__ import annotations

from collections.abc import Collection
from dataclasses import dataclass
from typing import Any, Protocol

from lean_ops_spark.config.sources import ConfigSource

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
    return f"semantic/{topic}.yaml"


def _referenced_columns(model: Any) -> list[str]:
    if not isinstance(model, dict):
        return []
    names: list[str] = []
    for column in model.get("columns") or ():
        if isinstance(column, dict):
            source = column.get("source", column.get("name"))
            if isinstance(source, str):
                names.append(source)
    return names


def check_semantic_schema(source: ConfigSource, topic: str, curated_columns: Collection[str]) -> SchemaCheck:
    """Default CheckSchemaExists: the model file exists and its source columns are in curated."""
    import yaml

    relative = semantic_model_path(topic)
    text = source.read_text(relative)
    where = source.describe(relative)
    if text is None:
        return SchemaCheck(False, f"no semantic model for topic {topic!r} at {where}")
    try:
        model = yaml.safe_load(text)
    except yaml.YAMLError as exc:
        return SchemaCheck(False, f"{where}: not valid YAML: {exc}", where)
    available = set(curated_columns)
    missing = tuple(c for c in _referenced_columns(model) if c not in available)
    if missing:
        return SchemaCheck(
            False, f"{where}: curated table lacks column(s) {', '.join(missing)}", where, missing
        )
    return SchemaCheck(True, f"semantic model {where}", where)
