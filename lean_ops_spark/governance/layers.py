"""The governed estate: every table per layer and where its files live in the warehouse.

Grants, IAM policies and Snowflake DDL all start from one :class:`GovernedScope` — the
profile's databases, the environment's topics (raw, curated, quarantine tables, named by
``catalog/naming.py``), the semantic tables and the drift audit table (``audit``:
``<curated_db>.lean_ops_drift_audit``, which curation creates on the first drift and
appends to, named by ``drift/audit.py``). Table locations follow Iceberg's
GlueCatalog default, ``<warehouse>/<database>.db/<table>`` (databases are created without
a ``LocationUri``, as ``lean-ops init`` does).
"""

from __future__ import annotations

from dataclasses import dataclass
from urllib.parse import urlparse

from lean_ops_spark.catalog.naming import TableRef, topic_tables
from lean_ops_spark.config.models import Profile
from lean_ops_spark.drift.audit import audit_table
from lean_ops_spark.errors import ConfigError
from lean_ops_spark.governance.semantic_tables import SemanticTable

__all__ = ["GovernedScope", "S3Location"]


@dataclass(frozen=True)
class S3Location:
    """``s3://bucket/key`` split; ``key`` has no leading or trailing slash."""

    bucket: str
    key: str

    @property
    def uri(self) -> str:
        return f"s3://{self.bucket}/{self.key}" if self.key else f"s3://{self.bucket}"

    def arn(self, partition: str = "aws") -> str:
        """``arn:aws:s3:::bucket/key`` (Lake Formation's DataLocation form, no trailing slash)."""
        return (
            f"arn:{partition}:s3:::{self.bucket}/{self.key}"
            if self.key
            else f"arn:{partition}:s3:::{self.bucket}"
        )

    def child(self, *parts: str) -> S3Location:
        key = "/".join(p.strip("/") for p in (self.key, *parts) if p.strip("/"))
        return S3Location(self.bucket, key)


@dataclass(frozen=True)
class GovernedScope:
    """The tables of one environment, per layer, and their warehouse locations."""

    profile: Profile
    topics: tuple[str, ...]
    semantic_tables: tuple[SemanticTable, ...]

    def __post_init__(self) -> None:
        warehouse = self.profile.warehouse or ""
        if self.profile.kind != "glue" or not warehouse.startswith("s3://"):
            raise ConfigError(
                f"{self.profile.source or self.profile.name}: governance needs a glue profile "
                f"with an s3:// warehouse (got {self.profile.kind!r}, {warehouse!r})"
            )

    @property
    def warehouse(self) -> S3Location:
        parsed = urlparse(self.profile.warehouse or "")
        return S3Location(parsed.netloc, parsed.path.strip("/"))

    def database(self, layer: str) -> str:
        """The layer's Glue database (quarantine and the drift audit table live in the curated one)."""
        db = self.profile.databases
        return {
            "raw": db.raw,
            "curated": db.curated,
            "quarantine": db.curated,
            "audit": db.curated,
            "semantic": db.semantic,
        }[layer]

    @property
    def databases(self) -> tuple[str, ...]:
        return tuple(sorted({self.database(layer) for layer in ("raw", "curated", "semantic")}))

    def tables(self, layer: str) -> tuple[TableRef, ...]:
        """Every table of ``layer``: per topic for raw/curated/quarantine, per model for semantic,
        and for ``audit`` the one drift audit table every topic's curation run appends to."""
        if layer == "audit":
            return (audit_table(self.profile),)
        if layer == "semantic":
            return tuple(
                TableRef(self.profile.catalog, self.profile.databases.semantic, t.name, "semantic")
                for t in self.semantic_tables
            )
        return tuple(getattr(topic_tables(self.profile, topic), layer) for topic in self.topics)

    def database_location(self, database: str) -> S3Location:
        """``<warehouse>/<database>.db`` (GlueCatalog's default database folder)."""
        return self.warehouse.child(f"{database}.db")

    def table_location(self, table: TableRef) -> S3Location:
        """``<warehouse>/<database>.db/<table>``: data under ``data/``, metadata under ``metadata/``."""
        return self.database_location(table.database).child(table.name)

    def semantic_table(self, name: str) -> SemanticTable | None:
        return next((t for t in self.semantic_tables if t.name == name), None)
