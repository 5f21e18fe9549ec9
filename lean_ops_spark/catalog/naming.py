"""Table names: one place that turns a profile + topic into fully qualified names."""

from __future__ import annotations

import hashlib
import re
from dataclasses import dataclass

from lean_ops_spark.config._reader import check_identifier
from lean_ops_spark.config.models import Profile

__all__ = ["TableRef", "TopicTables", "safe_name", "topic_tables"]


@dataclass(frozen=True)
class TableRef:
    """A table in the profile's catalog; every part is a validated identifier."""

    catalog: str
    database: str
    name: str
    layer: str
    topic: str | None = None

    def __post_init__(self) -> None:
        for part, what in ((self.catalog, "catalog"), (self.database, "database"), (self.name, "table")):
            check_identifier(part, f"{what} name")

    @property
    def sql(self) -> str:
        """``catalog.database.table`` for Spark SQL and DataFrame readers."""
        return f"{self.catalog}.{self.database}.{self.name}"

    @property
    def identifier(self) -> str:
        """``database.table`` for PyIceberg and the Glue Data Catalog."""
        return f"{self.database}.{self.name}"

    def metadata_table(self, kind: str) -> str:
        """A metadata table such as ``snapshots`` or ``files``."""
        return f"{self.sql}.{check_identifier(kind, 'metadata table')}"

    def __str__(self) -> str:
        return self.sql


@dataclass(frozen=True)
class TopicTables:
    """The tables a topic owns in each layer."""

    raw: TableRef
    curated: TableRef
    quarantine: TableRef

    def all(self) -> tuple[TableRef, ...]:
        return (self.raw, self.curated, self.quarantine)


def topic_tables(profile: Profile, topic: str) -> TopicTables:
    """``<raw_db>.<topic>_staging``, ``<curated_db>.<topic>``, ``<curated_db>.<topic>_quarantine``."""
    check_identifier(topic, "topic")
    db = profile.databases
    return TopicTables(
        raw=TableRef(profile.catalog, db.raw, f"{topic}_staging", "raw", topic),
        curated=TableRef(profile.catalog, db.curated, topic, "curated", topic),
        quarantine=TableRef(profile.catalog, db.curated, f"{topic}_quarantine", "quarantine", topic),
    )


def safe_name(text: str, unsafe: str, *, separator: str, digits: int) -> str:
    """``text`` with each character matching the regular expression ``unsafe`` replaced by
    ``_``; when any was, ``separator`` and the first ``digits`` hex digits of the SHA-256 of
    ``text`` as given follow, so two texts never share a name (``a+b`` and ``a=b``)."""
    safe = re.sub(unsafe, "_", text)
    if safe == text:
        return text
    return safe + separator + hashlib.sha256(text.encode("utf-8")).hexdigest()[:digits]
