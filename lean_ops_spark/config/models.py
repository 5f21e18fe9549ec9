"""Typed, frozen configuration models.

They are built only by :mod:`lean_ops_spark.config.loader`, which validates every key;
library code receives these objects, never raw dicts or paths.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from enum import Enum
from types import MappingProxyType

from lean_ops_spark.errors import ConfigError

__all__ = [
    "AUDIT_COLUMNS",
    "RESCUED_DATA_COLUMN",
    "Databases",
    "DriftMode",
    "FieldSpec",
    "FieldType",
    "MaintenanceOperation",
    "MaintenancePolicy",
    "MetricsSettings",
    "PartitionSpec",
    "Profile",
    "ProjectConfig",
    "SparkSettings",
    "TopicContract",
]

SCALAR_TYPES = ("string", "int", "long", "double", "float", "boolean", "date", "timestamp")
DECIMAL_PATTERN = re.compile(r"^decimal\((\d{1,2}),\s*(\d{1,2})\)$")
_SPARK_NAMES = {
    "int": "int",
    "long": "bigint",
    "double": "double",
    "float": "float",
    "string": "string",
    "boolean": "boolean",
    "date": "date",
    "timestamp": "timestamp",
}

#: Column holding, as a JSON object, payload fields the contract does not know and values
#: that failed to cast (what Auto Loader calls the rescued data column).
RESCUED_DATA_COLUMN = "_rescued_data"
#: Audit columns added to every curated row: (name, Spark SQL type).
AUDIT_COLUMNS: tuple[tuple[str, str], ...] = (
    ("_raw_snapshot_id", "bigint"),
    ("_message_id", "string"),
    ("_ingestion_ts", "timestamp"),
    ("_run_id", "string"),
    ("_curated_at", "timestamp"),
)


class DriftMode(str, Enum):
    """What a curation run does when the payload schema drifts from the contract."""

    EVOLVE = "evolve"
    RESCUE = "rescue"
    FAIL = "fail"


@dataclass(frozen=True)
class FieldType:
    """A payload field's type: a scalar, ``decimal(p,s)``, a struct or an array."""

    kind: str
    precision: int | None = None
    scale: int | None = None
    fields: tuple[FieldSpec, ...] = ()
    element: FieldType | None = None

    def spark_ddl(self) -> str:
        """The Spark SQL type, e.g. ``array<struct<sku:string,qty:int>>``."""
        if self.kind == "decimal":
            return f"decimal({self.precision},{self.scale})"
        if self.kind == "struct":
            return "struct<" + ",".join(f"{f.name}:{f.type.spark_ddl()}" for f in self.fields) + ">"
        if self.kind == "array":
            assert self.element is not None
            return f"array<{self.element.spark_ddl()}>"
        return _SPARK_NAMES[self.kind]


@dataclass(frozen=True)
class FieldSpec:
    """One payload field of a topic contract, with its checks."""

    name: str
    type: FieldType
    required: bool = False
    flatten: bool = False
    minimum: float | None = None
    maximum: float | None = None
    allowed: tuple[str, ...] = ()
    max_length: int | None = None
    description: str = ""


@dataclass(frozen=True)
class PartitionSpec:
    """Partitioning of the curated table: a transform over one contract column."""

    column: str
    transform: str = "day"

    def spark_ddl(self) -> str:
        if self.transform == "identity":
            return self.column
        return f"{self.transform}s({self.column})"


@dataclass(frozen=True)
class TopicContract:
    """What a topic's payload looks like and how curation treats it."""

    topic: str
    key: tuple[str, ...]
    ordering_column: str
    partition: PartitionSpec
    fields: tuple[FieldSpec, ...]
    version: int = 1
    description: str = ""
    schema_versions: tuple[int, ...] = (1,)
    drift_mode: DriftMode = DriftMode.RESCUE
    error_rate_threshold: float = 0.05
    max_snapshots_per_run: int = 100
    max_records_per_run: int | None = None
    max_payload_bytes: int = 262144
    table_properties: Mapping[str, str] = field(default_factory=lambda: MappingProxyType({}))
    source: str = ""

    def flattened_fields(self) -> tuple[tuple[str, tuple[str, ...], FieldSpec], ...]:
        """Curated columns from payload fields: ``(column, json path, spec)``.

        Structs marked ``flatten`` become ``parent_child`` columns (recursively); arrays
        and other structs stay nested.
        """
        out: list[tuple[str, tuple[str, ...], FieldSpec]] = []

        def walk(specs: tuple[FieldSpec, ...], prefix: str, path: tuple[str, ...]) -> None:
            for spec in specs:
                column = f"{prefix}{spec.name}"
                if spec.type.kind == "struct" and spec.flatten:
                    walk(spec.type.fields, f"{column}_", (*path, spec.name))
                else:
                    out.append((column, (*path, spec.name), spec))

        walk(self.fields, "", ())
        return tuple(out)

    def curated_columns(self) -> tuple[tuple[str, str], ...]:
        """Every column of the curated table: payload columns, rescue, then audit columns."""
        payload = tuple((name, spec.type.spark_ddl()) for name, _, spec in self.flattened_fields())
        return (*payload, (RESCUED_DATA_COLUMN, "string"), *AUDIT_COLUMNS)


@dataclass(frozen=True)
class Databases:
    """Database (Glue) / namespace (JDBC) names of the three layers."""

    raw: str = "raw"
    curated: str = "curated"
    semantic: str = "semantic"


@dataclass(frozen=True)
class SparkSettings:
    """Spark settings the session builder applies in the local profile."""

    master: str = "local[*]"
    shuffle_partitions: int = 4
    driver_memory: str = "2g"
    conf: Mapping[str, str] = field(default_factory=lambda: MappingProxyType({}))


@dataclass(frozen=True)
class MetricsSettings:
    """Where metrics go: ``log`` (local) or ``cloudwatch``."""

    namespace: str = "LeanOps"
    sink: str = "log"


@dataclass(frozen=True)
class Profile:
    """A runtime profile: ``local`` (embedded SQLite catalog) or ``glue`` (Glue Data Catalog)."""

    name: str
    kind: str
    catalog: str = "lake"
    databases: Databases = field(default_factory=Databases)
    warehouse: str | None = None
    region: str | None = None
    iceberg_version: str = "1.10.0"
    spark: SparkSettings = field(default_factory=SparkSettings)
    metrics: MetricsSettings = field(default_factory=MetricsSettings)
    source: str = ""


@dataclass(frozen=True)
class MaintenanceOperation:
    """One maintenance procedure's schedule and scope."""

    name: str
    enabled: bool = True
    frequency: str = "daily"
    options: Mapping[str, str] = field(default_factory=lambda: MappingProxyType({}))


@dataclass(frozen=True)
class MaintenancePolicy:
    """Maintenance defaults for all tables (per-layer/per-table overrides come with issue 6)."""

    operations: tuple[MaintenanceOperation, ...]
    table_properties: Mapping[str, str] = field(default_factory=lambda: MappingProxyType({}))
    source: str = ""

    def operation(self, name: str) -> MaintenanceOperation:
        for op in self.operations:
            if op.name == name:
                return op
        raise KeyError(name)


@dataclass(frozen=True)
class ProjectConfig:
    """Everything loaded from one ``conf/`` root for one profile."""

    profile: Profile
    topics: Mapping[str, TopicContract]
    maintenance: MaintenancePolicy
    root: str = ""

    def topic(self, name: str) -> TopicContract:
        try:
            return self.topics[name]
        except KeyError:
            known = ", ".join(sorted(self.topics)) or "none"
            raise ConfigError(f"unknown topic {name!r} (configured topics: {known})") from None
