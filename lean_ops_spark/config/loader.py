"""Load and validate ``conf/`` into frozen models.

Layout of a config root (local folder or ``s3://bucket/prefix``)::

    profiles/<name>.yaml      runtime profiles (local, glue, ...)
    topics/<topic>.yaml       one contract per topic
    maintenance/default.yaml  maintenance policy defaults
    semantic/, quality/       semantic models and DQ suites (filled by later issues)
"""

from __future__ import annotations

from dataclasses import replace
from pathlib import Path
from types import MappingProxyType
from typing import Any

import yaml

from lean_ops_spark.config._reader import IDENTIFIER_PATTERN, MappingReader, check_identifier
from lean_ops_spark.config.models import (
    DECIMAL_PATTERN,
    MAINTENANCE_LAYERS,
    RESERVED_COLUMNS,
    SCALAR_TYPES,
    Databases,
    DriftMode,
    FieldSpec,
    FieldType,
    HealthThresholds,
    MaintenanceOperation,
    MaintenancePolicy,
    MetricsSettings,
    PartitionSpec,
    Profile,
    ProjectConfig,
    SparkSettings,
    TopicContract,
)
from lean_ops_spark.config.sources import ConfigSource, open_config_source, read_named_file
from lean_ops_spark.errors import ConfigError

__all__ = [
    "DEFAULT_MAINTENANCE",
    "MAINTENANCE_OPTIONS",
    "load_project",
    "parse_maintenance",
    "parse_profile",
    "parse_topic",
]

TEMPORAL_KINDS = ("timestamp", "date")
ORDERING_KINDS = ("timestamp", "date", "long", "int")
PARTITION_TRANSFORMS = ("day", "month", "hour", "year", "identity")
#: The reserved column names a field could have (the others are not identifiers anyway).
_RESERVED_NAMES = tuple(sorted(name for name in RESERVED_COLUMNS if IDENTIFIER_PATTERN.fullmatch(name)))

#: The platform's maintenance plan, used where conf/maintenance/default.yaml is absent.
DEFAULT_MAINTENANCE: dict[str, Any] = {
    "operations": {
        "expire_snapshots": {"frequency": "daily", "options": {"retain_last": 20, "older_than_days": 7}},
        "rewrite_manifests": {"frequency": "daily"},
        "remove_orphan_files": {"frequency": "weekly", "options": {"older_than_hours": 72}},
        "rewrite_data_files": {
            "frequency": "daily",
            "options": {
                "hot_partition_days": 7,
                "max_concurrent_file_group_rewrites": 2,
                "partial_progress_max_commits": 10,
                "delete_file_threshold": 1,
            },
        },
        "rewrite_position_delete_files": {"frequency": "weekly"},
    },
    "table_properties": {"write.target-file-size-bytes": 268435456},
}
MAINTENANCE_OPERATIONS = tuple(DEFAULT_MAINTENANCE["operations"])


def _load_yaml(text: str, where: str) -> Any:
    try:
        return yaml.safe_load(text)
    except yaml.YAMLError as exc:
        raise ConfigError(f"{where}: not valid YAML: {exc}") from exc


# --------------------------------------------------------------------------- types


def parse_type(value: object, reader: MappingReader, where: str) -> FieldType:
    """Parse a field's ``type`` (plus ``fields``/``items`` for struct and array)."""
    if not isinstance(value, str):
        raise ConfigError(f"{where}.type: expected a type name, got {value!r}")
    text = value.strip().lower()
    if text in SCALAR_TYPES:
        return FieldType(text)
    decimal = DECIMAL_PATTERN.fullmatch(text)
    if decimal:
        precision, scale = int(decimal.group(1)), int(decimal.group(2))
        if not 1 <= precision <= 38 or scale > precision:
            raise ConfigError(f"{where}.type: {value!r} needs 1 <= precision <= 38 and scale <= precision")
        return FieldType("decimal", precision=precision, scale=scale)
    if text == "struct":
        children = reader.sequence("fields", required=True)
        if not children:
            raise ConfigError(f"{where}.fields: a struct needs at least one field")
        return FieldType("struct", fields=_parse_fields(children, f"{where}.fields"))
    if text == "array":
        items = reader.child("items", required=True)
        element = parse_type(items.raw("type", required=True), items, items.where)
        items.finish()
        return FieldType("array", element=element)
    raise ConfigError(
        f"{where}.type: unknown type {value!r} "
        f"(use one of {', '.join(SCALAR_TYPES)}, decimal(p,s), struct, array)"
    )


def _parse_field(data: object, where: str) -> FieldSpec:
    reader = MappingReader(data, where)
    name = reader.identifier("name", required=True)
    where = f"{where}[{name}]"
    reader.where = where
    ftype = parse_type(reader.raw("type", required=True), reader, where)
    allowed = reader.sequence("allowed")
    spec = FieldSpec(
        name=name,
        type=ftype,
        required=reader.boolean("required", False),
        flatten=reader.boolean("flatten", False),
        minimum=reader.number("min"),
        maximum=reader.number("max"),
        allowed=tuple(str(a) for a in allowed),
        max_length=reader.integer("max_length", minimum=1),
        description=reader.string("description", "") or "",
    )
    reader.finish()
    if spec.flatten and ftype.kind != "struct":
        raise ConfigError(f"{where}.flatten: only struct fields can be flattened")
    numeric = ftype.kind in ("int", "long", "double", "float", "decimal")
    if (spec.minimum is not None or spec.maximum is not None) and not numeric:
        raise ConfigError(f"{where}: min/max apply to numeric fields only, not {ftype.kind}")
    if (spec.allowed or spec.max_length) and ftype.kind != "string":
        raise ConfigError(f"{where}: allowed/max_length apply to string fields only, not {ftype.kind}")
    return spec


def _parse_fields(items: list[Any], where: str) -> tuple[FieldSpec, ...]:
    specs = tuple(_parse_field(item, f"{where}[{i}]") for i, item in enumerate(items))
    seen: set[str] = set()
    for spec in specs:
        if spec.name in seen:
            raise ConfigError(f"{where}: field {spec.name!r} is declared twice")
        seen.add(spec.name)
    return specs


# --------------------------------------------------------------------------- topics


def parse_topic(data: object, where: str, expected_topic: str | None = None) -> TopicContract:
    """Parse one topic contract; ``where`` names its file in every error."""
    reader = MappingReader(data, f"{where}:")
    topic = reader.identifier("topic", required=True)
    if expected_topic is not None and topic != expected_topic:
        raise ConfigError(f"{where}: topic {topic!r} does not match the file name {expected_topic!r}")
    fields = _parse_fields(reader.sequence("fields", required=True), f"{where}: fields")
    if not fields:
        raise ConfigError(f"{where}: fields: a contract needs at least one field")
    key_raw = reader.raw("key", required=True)
    key_list = [key_raw] if isinstance(key_raw, str) else key_raw
    if not isinstance(key_list, list) or not key_list:
        raise ConfigError(f"{where}: key: expected a column name or a list of them")
    key = tuple(check_identifier(k, f"{where}: key") for k in key_list)
    partition_reader = reader.child("partition", required=True)
    partition = PartitionSpec(
        column=partition_reader.identifier("column", required=True),
        transform=partition_reader.choice("transform", PARTITION_TRANSFORMS, "day"),
    )
    partition_reader.finish()
    drift_value = reader.choice("drift_mode", tuple(m.value for m in DriftMode), DriftMode.RESCUE.value)
    versions = reader.sequence("schema_versions") or [1]
    if not all(isinstance(v, int) and not isinstance(v, bool) and v > 0 for v in versions):
        raise ConfigError(f"{where}: schema_versions: expected positive whole numbers, got {versions!r}")
    contract = TopicContract(
        topic=topic,
        key=key,
        ordering_column=reader.identifier("ordering_column", required=True),
        partition=partition,
        fields=fields,
        version=reader.integer("version", 1, minimum=1) or 1,
        description=reader.string("description", "") or "",
        schema_versions=tuple(versions),
        drift_mode=DriftMode(drift_value),
        error_rate_threshold=reader.number("error_rate_threshold", 0.05, minimum=0.0, maximum=1.0) or 0.0,
        max_snapshots_per_run=reader.integer("max_snapshots_per_run", 100, minimum=1) or 100,
        max_records_per_run=reader.integer("max_records_per_run", None, minimum=1),
        max_payload_bytes=reader.integer("max_payload_bytes", 262144, minimum=64) or 262144,
        table_properties=MappingProxyType(reader.string_map("table_properties")),
        source=where,
    )
    reader.finish()
    _check_contract_columns(contract, where)
    return contract


def _check_contract_columns(contract: TopicContract, where: str) -> None:
    columns: dict[str, FieldSpec] = {}
    for column, path, spec in contract.flattened_fields():
        if column in columns:
            raise ConfigError(f"{where}: flattening produces column {column!r} twice")
        if column in RESERVED_COLUMNS:
            field = ".".join(path)
            raise ConfigError(
                f"{where}: fields[{field}]: column name {column!r} is reserved (a column of the raw "
                f"record or of curation: {', '.join(_RESERVED_NAMES)}) and parsing into it would replace "
                "that column; leave the field out of the contract (its values stay in _rescued_data)"
            )
        columns[column] = spec
    for key in contract.key:
        if key not in columns:
            raise ConfigError(f"{where}: key column {key!r} is not a (flattened) field")
        if not columns[key].required:
            raise ConfigError(f"{where}: key column {key!r} must be required: true")
        if columns[key].type.kind in ("struct", "array", "double", "float"):
            raise ConfigError(f"{where}: key column {key!r} cannot be of type {columns[key].type.kind}")
    ordering = columns.get(contract.ordering_column)
    if ordering is None:
        raise ConfigError(f"{where}: ordering_column {contract.ordering_column!r} is not a (flattened) field")
    if ordering.type.kind not in ORDERING_KINDS:
        raise ConfigError(
            f"{where}: ordering_column {contract.ordering_column!r} "
            f"must be one of {', '.join(ORDERING_KINDS)}"
        )
    part = columns.get(contract.partition.column)
    if part is None:
        raise ConfigError(
            f"{where}: partition.column {contract.partition.column!r} is not a (flattened) field"
        )
    if contract.partition.temporal and part.type.kind not in TEMPORAL_KINDS:
        raise ConfigError(
            f"{where}: partition.transform {contract.partition.transform!r} needs a timestamp or date column"
        )
    if contract.partition.temporal and not part.required:
        # the curated MERGE matches a key only within the batch's partition days: a version
        # without a partition value would never match the one already curated (a second row)
        raise ConfigError(
            f"{where}: partition.column {contract.partition.column!r} must be required: true "
            "(the MERGE finds a key's curated row by its partition day)"
        )
    if contract.partition.transform == "hour" and part.type.kind != "timestamp":
        raise ConfigError(f"{where}: partition.transform 'hour' needs a timestamp column")


# --------------------------------------------------------------------------- profiles


def parse_profile(data: object, where: str, name: str) -> Profile:
    """Parse one profile file (``profiles/<name>.yaml``)."""
    reader = MappingReader(data, f"{where}:")
    kind = reader.choice("kind", ("local", "glue"), name if name in ("local", "glue") else "local")
    db = reader.child("databases")
    databases = Databases(
        raw=db.identifier("raw", "raw"),
        curated=db.identifier("curated", "curated"),
        semantic=db.identifier("semantic", "semantic"),
    )
    db.finish()
    if len({databases.raw, databases.curated, databases.semantic}) != 3:
        raise ConfigError(f"{where}: databases: raw, curated and semantic must be different databases")
    sp = reader.child("spark")
    spark = SparkSettings(
        master=sp.string("master", "local[*]") or "local[*]",
        shuffle_partitions=sp.integer("shuffle_partitions", 4, minimum=1) or 4,
        driver_memory=sp.string("driver_memory", "2g") or "2g",
        conf=MappingProxyType(sp.string_map("conf")),
    )
    sp.finish()
    mt = reader.child("metrics")
    metrics = MetricsSettings(
        namespace=mt.string("namespace", "LeanOps") or "LeanOps",
        sink=mt.choice("sink", ("log", "cloudwatch", "none"), "log" if kind == "local" else "cloudwatch"),
    )
    mt.finish()
    warehouse = reader.string("warehouse")
    if kind == "glue" and not (warehouse and warehouse.startswith("s3://")):
        raise ConfigError(f"{where}: warehouse: the glue profile needs an s3:// warehouse, got {warehouse!r}")
    iceberg_version = str(reader.raw("iceberg_version", "1.10.0"))
    profile = Profile(
        name=name,
        kind=kind,
        catalog=reader.identifier("catalog", "lake"),
        databases=databases,
        warehouse=warehouse,
        region=reader.string("region"),
        iceberg_version=iceberg_version,
        spark=spark,
        metrics=metrics,
        source=where,
    )
    reader.finish()
    return profile


# --------------------------------------------------------------------------- maintenance


#: Each operation's options: name -> (kind, minimum). Unknown option keys are refused.
MAINTENANCE_OPTIONS: dict[str, dict[str, tuple[str, float]]] = {
    "expire_snapshots": {"retain_last": ("int", 1), "older_than_days": ("number", 0)},
    "rewrite_manifests": {},
    # The procedure itself refuses less than 24 h; 72 h is the production default.
    "remove_orphan_files": {"older_than_hours": ("number", 24)},
    "rewrite_data_files": {
        "hot_partition_days": ("int", 0),
        "max_concurrent_file_group_rewrites": ("int", 1),
        "partial_progress_max_commits": ("int", 1),
        "delete_file_threshold": ("int", 1),
    },
    "rewrite_position_delete_files": {},
}
#: Threshold name -> (kind, minimum, maximum); see HealthThresholds.
_THRESHOLDS: dict[str, tuple[str, float, float | None]] = {
    "small_file_fraction": ("number", 0.0, 1.0),
    "small_file_ratio": ("number", 0.0, 1.0),
    "min_small_files": ("int", 2, None),
    "max_manifests": ("int", 1, None),
    "small_manifest_bytes": ("int", 1, None),
    "delete_file_ratio": ("number", 0.0, None),
    "min_position_delete_files": ("int", 1, None),
}
#: Properties Iceberg manages itself: a maintenance policy cannot enforce them.
_RESERVED_TABLE_PROPERTIES = frozenset(
    {"format-version", "current-snapshot-id", "format", "provider", "location"}
)


def _parse_operation_options(reader: MappingReader, operation: str) -> dict[str, str]:
    allowed = MAINTENANCE_OPTIONS[operation]
    options: dict[str, str] = {}
    for key, (kind, minimum) in allowed.items():
        if not reader.has(key):
            continue
        if kind == "int":
            value: float | None = reader.integer(key, minimum=int(minimum))
        else:
            value = reader.number(key, minimum=minimum)
        if value is not None:
            options[key] = str(int(value)) if kind == "int" else _number_text(value)
    _finish_with_choices(reader, tuple(allowed))
    return options


def _number_text(value: float) -> str:
    return str(int(value)) if float(value).is_integer() else str(value)


def _finish_with_choices(reader: MappingReader, known: tuple[str, ...]) -> None:
    try:
        reader.finish()
    except ConfigError as exc:
        raise ConfigError(f"{exc} (known: {', '.join(known) or 'none'})") from None


def _parse_thresholds(reader: MappingReader, base: HealthThresholds) -> HealthThresholds:
    values: dict[str, Any] = {}
    for key, (kind, minimum, maximum) in _THRESHOLDS.items():
        if not reader.has(key):
            continue
        if kind == "int":
            values[key] = reader.integer(key, minimum=int(minimum))
        else:
            values[key] = reader.number(key, minimum=minimum, maximum=maximum)
    _finish_with_choices(reader, tuple(_THRESHOLDS))
    return replace(base, **{k: v for k, v in values.items() if v is not None})


def _parse_policy_section(reader: MappingReader, base: MaintenancePolicy, source: str) -> MaintenancePolicy:
    """Apply one section (operations, thresholds, table_properties) on top of ``base``.

    Keys of ``reader`` other than these three are left for the caller to read or refuse.
    """
    ops_reader = reader.child("operations")
    operations = []
    for base_op in base.operations:
        if not ops_reader.has(base_op.name):
            ops_reader.raw(base_op.name)  # mark as read (absent or null: inherit)
            operations.append(base_op)
            continue
        op = MappingReader(ops_reader.raw(base_op.name), ops_reader.path(base_op.name))
        options = dict(base_op.options)
        options.update(_parse_operation_options(op.child("options"), base_op.name))
        operations.append(
            MaintenanceOperation(
                name=base_op.name,
                enabled=op.boolean("enabled", base_op.enabled),
                frequency=op.choice("frequency", ("hourly", "daily", "weekly"), base_op.frequency),
                options=MappingProxyType(options),
            )
        )
        _finish_with_choices(op, ("enabled", "frequency", "options"))
    _finish_with_choices(ops_reader, MAINTENANCE_OPERATIONS)
    thresholds = _parse_thresholds(reader.child("thresholds"), base.thresholds)
    overrides = reader.string_map("table_properties")
    reserved = sorted(set(overrides) & _RESERVED_TABLE_PROPERTIES)
    if reserved:
        raise ConfigError(
            f"{reader.path('table_properties')}: {', '.join(reserved)} cannot be enforced by maintenance "
            "(Iceberg manages it)"
        )
    return MaintenancePolicy(
        operations=tuple(operations),
        table_properties=MappingProxyType({**base.table_properties, **overrides}),
        source=source,
        thresholds=thresholds,
    )


def _builtin_maintenance() -> MaintenancePolicy:
    operations = tuple(
        MaintenanceOperation(
            name=name,
            frequency=spec["frequency"],
            options=MappingProxyType({k: str(v) for k, v in spec.get("options", {}).items()}),
        )
        for name, spec in DEFAULT_MAINTENANCE["operations"].items()
    )
    properties = {k: str(v) for k, v in DEFAULT_MAINTENANCE["table_properties"].items()}
    return MaintenancePolicy(operations, MappingProxyType(properties), "built-in defaults")


def _mapping_keys(reader: MappingReader, key: str) -> list[str]:
    value = reader.raw(key, {})
    if not isinstance(value, dict):
        raise ConfigError(f"{reader.path(key)}: expected a mapping, got {value!r}")
    return [str(k) for k in value]


def parse_maintenance(data: object, where: str) -> MaintenancePolicy:
    """Parse ``maintenance/default.yaml`` into a policy with resolved overrides.

    Top level: ``operations`` (frequency, enabled, options per operation), ``thresholds``
    (the health levels that make an operation run), ``table_properties`` (enforced on every
    table), then ``layers.<layer>`` and ``tables.<layer>.<table>`` sections with the same
    three keys. Overrides merge key by key: defaults < layer < table.

    Raises:
        ConfigError: unknown keys, bad values or names, naming the file and key.
    """
    reader = MappingReader(data, f"{where}:")
    defaults = _parse_policy_section(reader, _builtin_maintenance(), where)

    layers: dict[str, MaintenancePolicy] = {}
    layers_reader = reader.child("layers")
    for layer in _mapping_keys(reader, "layers"):
        if layer not in MAINTENANCE_LAYERS:
            raise ConfigError(
                f"{layers_reader.path(layer)}: unknown layer (use one of {', '.join(MAINTENANCE_LAYERS)})"
            )
        section = MappingReader(layers_reader.raw(layer), layers_reader.path(layer))
        layers[layer] = _parse_policy_section(section, defaults, f"{where} layers.{layer}")
        _finish_with_choices(section, ("operations", "thresholds", "table_properties"))

    tables: dict[str, MaintenancePolicy] = {}
    tables_reader = reader.child("tables")
    for key in _mapping_keys(reader, "tables"):
        layer, _, name = key.partition(".")
        if layer not in MAINTENANCE_LAYERS or not name:
            raise ConfigError(
                f"{tables_reader.path(key)}: a table key is <layer>.<table> with layer one of "
                f"{', '.join(MAINTENANCE_LAYERS)}, e.g. curated.orders"
            )
        check_identifier(name, tables_reader.path(key))
        section = MappingReader(tables_reader.raw(key), tables_reader.path(key))
        base = layers.get(layer, defaults)
        tables[key] = _parse_policy_section(section, base, f"{where} tables.{key}")
        _finish_with_choices(section, ("operations", "thresholds", "table_properties"))

    reader.finish()
    return replace(defaults, layers=MappingProxyType(layers), tables=MappingProxyType(tables))


# --------------------------------------------------------------------------- project


def load_project(
    location: str | Path,
    profile: str = "local",
    *,
    source: ConfigSource | None = None,
    iceberg_version: str | None = None,
) -> ProjectConfig:
    """Load the profile, every topic contract and the maintenance policy from a config root.

    Args:
        location: a local folder or ``s3://bucket/prefix``.
        profile: profile name (``profiles/<profile>.yaml``).
        source: an already opened source (tests pass one with a moto S3 client).
        iceberg_version: overrides the profile's Iceberg version (``LEAN_OPS_ICEBERG_VERSION``).

    Raises:
        ConfigError: naming the file and key of the first problem found.
    """
    src = source or open_config_source(location)
    text, where = read_named_file(src, "profiles", profile, "profile")
    parsed_profile = parse_profile(_load_yaml(text, where), where, profile)
    if iceberg_version:
        parsed_profile = replace(parsed_profile, iceberg_version=iceberg_version)

    topics: dict[str, TopicContract] = {}
    for relative in src.list_yaml("topics"):
        where = src.describe(relative)
        stem = Path(relative).stem
        check_identifier(stem, f"{where}: file name")
        contract = parse_topic(_load_yaml(src.read_text(relative) or "", where), where, expected_topic=stem)
        topics[contract.topic] = contract

    maintenance_file = "maintenance/default.yaml"
    maintenance_text = src.read_text(maintenance_file)
    maintenance = parse_maintenance(
        _load_yaml(maintenance_text, src.describe(maintenance_file)) if maintenance_text else {},
        src.describe(maintenance_file),
    )
    return ProjectConfig(
        profile=parsed_profile, topics=MappingProxyType(topics), maintenance=maintenance, root=str(location)
    )
