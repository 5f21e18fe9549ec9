"""The semantic layer: models as configuration (``conf/semantic/<topic>.yaml``), compiled
into DataFrame transforms over curated, run incrementally from a checkpoint and published
through write-audit-publish.

``models``/``loader``/``expressions`` are pure config (the Lambda's CheckSchemaExists uses
them without a JVM); ``compiler`` holds the DataFrame transforms; ``incremental`` the change
window (run ids since the checkpoint, read as of the pinned curated snapshot); ``tables``
the table definitions; ``publish`` the audit branch and fast-forward; ``job`` the run.
"""

from lean_ops_spark.semantic.loader import load_semantic_models, parse_semantic_models
from lean_ops_spark.semantic.models import (
    ModelColumn,
    ModelKind,
    ModelPartition,
    SemanticModel,
    SemanticModels,
)

__all__ = [
    "ModelColumn",
    "ModelKind",
    "ModelPartition",
    "SemanticModel",
    "SemanticModels",
    "load_semantic_models",
    "parse_semantic_models",
]
