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
    "MAINTENANCE_LAYERS",
    "RAW_RECORD_COLUMNS",
    "RESCUED_DATA_COLUMN",
    "RESERVED_COLUMNS",
    "Databases",
    "DriftMode",
    "FieldSpec",
    "FieldType",
    "HealthThresholds",
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
#: Columns of a raw staging record (``catalog.schemas.RAW_STAGING_COLUMNS``): curation parses
#: the payload into columns beside them, in the same DataFrame.
RAW_RECORD_COLUMNS = ("message_id", "topic", "payload", "ingestion_ts", "producer", "schema_version")
#: Names a payload field's curated column cannot have: a column of that name would replace
#: the raw record's own in the batch (every record ``WRONG_TOPIC``, message ids replaced), or
#: clash with the rescue and audit columns. Also ``_raw_snapshot_id`` (added to every batch).
#: A payload field with such a name stays in ``_rescued_data``.
RESERVED_COLUMNS = frozenset(
    {
        *RAW_RECORD_COLUMNS,
        "_raw_snapshot_id",
        RESCUED_DATA_COLUMN,
        *(name for name, _ in AUDIT_COLUMNS),
    }
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

    @property
    def temporal(self) -> bool:
        """A time transform (``day``, ``month``, ...) of a timestamp or date column, so a
        batch's rows fall into days that a MERGE can prune by; False for ``identity``, whose
        column may be of any type (a region, a tenant id) and has no days."""
        return self.transform != "identity"

    def spark_ddl(self) -> str:
        if not self.temporal:
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


#: Layers a maintenance override can name (``TableRef.layer`` values).
MAINTENANCE_LAYERS = ("raw", "curated", "quarantine", "semantic")


@dataclass(frozen=True)
class MaintenanceOperation:
    """One maintenance procedure's schedule and scope.

    ``options`` hold the operation's validated settings as text (the loader checks every
    key and value); read them through the typed accessors.
    """

    name: str
    enabled: bool = True
    frequency: str = "daily"
    options: Mapping[str, str] = field(default_factory=lambda: MappingProxyType({}))

    def int_option(self, key: str, default: int) -> int:
        value = self.options.get(key)
        return default if value is None else int(value)

    def float_option(self, key: str, default: float) -> float:
        value = self.options.get(key)
        return default if value is None else float(value)


@dataclass(frozen=True)
class HealthThresholds:
    """Measured-health levels above which a maintenance procedure is worth running."""

    #: A data file is small below this fraction of the table's target file size
    #: (Iceberg's own ``min-file-size-bytes`` default is 75% of the target).
    small_file_fraction: float = 0.75
    #: Compaction runs when more than this share of data files is small ...
    small_file_ratio: float = 0.30
    #: ... and at least one hot partition holds this many small files (binpack's minimum input).
    min_small_files: int = 5
    #: rewrite_manifests runs when the current snapshot has more manifests than this ...
    max_manifests: int = 20
    #: ... and they average below this size (Iceberg's manifest target is 8 MiB).
    small_manifest_bytes: int = 4 * 1024 * 1024
    #: Compaction that applies deletes runs when delete files / data files exceeds this.
    delete_file_ratio: float = 0.10
    #: Below that ratio, rewrite_position_delete_files runs from this many position delete files.
    min_position_delete_files: int = 10


@dataclass(frozen=True)
class MaintenancePolicy:
    """Maintenance settings: the defaults, plus fully resolved per-layer and per-table policies.

    ``layers`` and ``tables`` hold complete policies (defaults < layer < table, merged by the
    loader); use :meth:`for_table` rather than reading them directly. Table keys are
    ``<layer>.<table name>``, e.g. ``curated.orders`` or ``raw.orders_staging``.
    """

    operations: tuple[MaintenanceOperation, ...]
    table_properties: Mapping[str, str] = field(default_factory=lambda: MappingProxyType({}))
    source: str = ""
    thresholds: HealthThresholds = field(default_factory=HealthThresholds)
    layers: Mapping[str, MaintenancePolicy] = field(default_factory=lambda: MappingProxyType({}))
    tables: Mapping[str, MaintenancePolicy] = field(default_factory=lambda: MappingProxyType({}))

    def operation(self, name: str) -> MaintenanceOperation:
        for op in self.operations:
            if op.name == name:
                return op
        raise KeyError(name)

    def for_table(self, layer: str, name: str) -> MaintenancePolicy:
        """The policy that applies to table ``name`` of ``layer`` (table > layer > defaults)."""
        return self.tables.get(f"{layer}.{name}") or self.layers.get(layer) or self


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
