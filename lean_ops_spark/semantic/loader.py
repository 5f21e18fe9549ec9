"""``conf/semantic/<topic>.yaml`` -> :class:`SemanticModels`, strictly (no Spark).

Format::

    topic: orders
    models:
      - name: orders                 # the table <semantic_db>.orders
        kind: entity
        key: [order_id]
        partition: {column: order_date, transform: month}
        filters: ["status <> 'cancelled'"]
        columns:
          - order_id                                  # same name, same value
          - {name: order_status, expr: status}        # a rename
          - {name: order_date, expr: "to_date(order_ts)", type: date}
      - name: orders_daily_revenue
        kind: aggregate
        group_by: [{name: order_date, expr: "to_date(order_ts)"}, currency]
        measures: [{name: revenue, expr: "sum(total_amount)", type: "decimal(22,2)"}]

Every error names the file and key; unknown keys are refused. A run recomputes only the
rows (groups) whose curated inputs changed, so expressions must be functions of those
inputs: window functions (``OVER``) and time-dependent or non-deterministic functions
(``current_date``, ``rand()``...) are refused. An entity's key must be the curated key
(:func:`check_entity_keys`, which needs the topic contract).
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from pathlib import PurePosixPath

import yaml

from lean_ops_spark.config._reader import MappingReader, check_identifier
from lean_ops_spark.config.models import TopicContract
from lean_ops_spark.config.sources import ConfigSource
from lean_ops_spark.errors import ConfigError
from lean_ops_spark.quality.suites import QualitySuite, check_suite_tables
from lean_ops_spark.semantic.expressions import (
    VOLATILE_FUNCTIONS,
    ExpressionError,
    plain_column,
    referenced_columns,
    volatile_functions,
    window_clauses,
)
from lean_ops_spark.semantic.models import (
    AUDIT_COLUMNS,
    ModelColumn,
    ModelKind,
    ModelPartition,
    SemanticModel,
    SemanticModels,
)

__all__ = [
    "check_entity_keys",
    "check_models_and_suites",
    "load_semantic_models",
    "parse_semantic_models",
    "semantic_model_path",
]

_TYPE = re.compile(
    r"^(string|int|integer|bigint|long|smallint|tinyint|double|float|boolean|date|timestamp"
    r"|decimal\(\s*\d{1,2}\s*,\s*\d{1,2}\s*\))$"
)
_TRANSFORMS = ("identity", "year", "month", "day", "hour")
_RESERVED = frozenset(name for name, _ in AUDIT_COLUMNS)


def semantic_model_path(topic: str) -> str:
    """Where a topic's semantic models live under the config root."""
    return f"semantic/{check_identifier(topic, 'topic')}.yaml"


def _expression(value: object, where: str) -> str:
    if not isinstance(value, str) or not value.strip():
        raise ConfigError(f"{where}: expected a Spark SQL expression, got {value!r}")
    try:
        referenced_columns(value)
        windows = window_clauses(value)
        volatile = volatile_functions(value)
    except ExpressionError as exc:
        raise ConfigError(f"{where}: {exc}") from None
    if windows:
        raise ConfigError(
            f"{where}: window functions (OVER ...) are not supported in semantic models: a run reads "
            "only the changed curated rows (groups), so a window over them would be wrong for every "
            "other row; compute it when reading the table (a view) instead"
        )
    if volatile:
        raise ConfigError(
            f"{where}: {', '.join(volatile)} depends on when, where or by whom the run happens "
            "(time-dependent or non-deterministic): a run recomputes only the rows whose curated "
            "inputs changed, so the other rows would keep stale values; compute it when reading the "
            f"table (a view) instead. Refused functions: {', '.join(sorted(VOLATILE_FUNCTIONS))}"
        )
    return value.strip()


def _column(data: object, where: str) -> ModelColumn:
    if isinstance(data, str):
        name = check_identifier(data, where)
        return ModelColumn(name=name, expr=name)
    reader = MappingReader(data, where)
    name = reader.identifier("name", required=True)
    where = f"{where}[{name}]"
    reader.where = where
    if name in _RESERVED:
        raise ConfigError(f"{where}: {name} is reserved for the audit columns")
    expr = _expression(reader.raw("expr", name), f"{where}.expr")
    type_name = reader.string("type")
    if type_name is not None:
        type_name = type_name.strip().lower()
        if not _TYPE.fullmatch(type_name):
            raise ConfigError(
                f"{where}.type: {type_name!r} is not a supported type "
                "(string, int, bigint, double, float, boolean, date, timestamp, decimal(p,s))"
            )
        type_name = {"long": "bigint", "integer": "int"}.get(type_name, type_name)
    column = ModelColumn(name, expr, type_name, reader.string("description", "") or "")
    reader.finish()
    return column


def _columns(reader: MappingReader, key: str, *, required: bool) -> tuple[ModelColumn, ...]:
    items = reader.sequence(key, required=required)
    if required and not items:
        raise ConfigError(f"{reader.path(key)}: at least one column is needed")
    return tuple(_column(item, f"{reader.path(key)}[{i}]") for i, item in enumerate(items))


def _model(data: object, where: str, topic: str) -> SemanticModel:
    reader = MappingReader(data, where)
    name = reader.identifier("name", required=True)
    where = f"{where}[{name}]"
    reader.where = where
    kind = ModelKind(reader.choice("kind", tuple(k.value for k in ModelKind), ModelKind.ENTITY.value))
    if kind is ModelKind.ENTITY:
        columns = _columns(reader, "columns", required=True)
        measures: tuple[ModelColumn, ...] = ()
        key_value = reader.raw("key", required=True)
        keys = [key_value] if isinstance(key_value, str) else key_value
        if not isinstance(keys, list) or not keys:
            raise ConfigError(f"{reader.path('key')}: expected a column name or a list of them")
        key = tuple(check_identifier(k, reader.path("key")) for k in keys)
        for forbidden in ("group_by", "measures"):
            if reader.has(forbidden):
                raise ConfigError(f"{reader.path(forbidden)}: only aggregate models have {forbidden}")
    else:
        columns = _columns(reader, "group_by", required=True)
        measures = _columns(reader, "measures", required=True)
        key = tuple(c.name for c in columns)
        for forbidden in ("columns", "key"):
            if reader.has(forbidden):
                raise ConfigError(
                    f"{reader.path(forbidden)}: aggregate models use group_by and measures, not {forbidden}"
                )
    names = [c.name for c in (*columns, *measures)]
    duplicates = sorted({n for n in names if names.count(n) > 1})
    if duplicates:
        raise ConfigError(f"{where}: column(s) {', '.join(duplicates)} declared twice")
    missing_key = [k for k in key if k not in names]
    if missing_key:
        raise ConfigError(f"{reader.path('key')}: {', '.join(missing_key)} is not a column of the model")
    filters = tuple(
        _expression(f, f"{reader.path('filters')}[{i}]") for i, f in enumerate(reader.sequence("filters"))
    )
    partition = None
    if reader.has("partition"):
        part = reader.child("partition")
        partition = ModelPartition(
            column=part.identifier("column", required=True),
            transform=part.choice("transform", _TRANSFORMS, "identity"),
        )
        part.finish()
        if partition.column not in names:
            raise ConfigError(
                f"{reader.path('partition')}.column: {partition.column!r} is not a column of the model"
            )
        if kind is ModelKind.AGGREGATE and partition.column not in key:
            raise ConfigError(
                f"{reader.path('partition')}.column: an aggregate table is partitioned by a group_by column"
            )
    description = reader.string("description", "") or ""
    reader.finish()
    return SemanticModel(
        name=name,
        topic=topic,
        kind=kind,
        columns=columns,
        key=key,
        measures=measures,
        filters=filters,
        partition=partition,
        description=description,
        source=where,
    )


def parse_semantic_models(data: object, where: str, expected_topic: str | None = None) -> SemanticModels:
    """Parse one semantic model file.

    Raises:
        ConfigError: naming the file and key of the first problem found.
    """
    reader = MappingReader(data, f"{where}:")
    topic = reader.identifier("topic", required=True)
    if expected_topic is not None and topic != expected_topic:
        raise ConfigError(f"{where}: topic {topic!r} does not match the file name {expected_topic!r}")
    items = reader.sequence("models", required=True)
    if not items:
        raise ConfigError(f"{where}: models: at least one model is needed")
    models = tuple(_model(item, f"{where}: models[{i}]", topic) for i, item in enumerate(items))
    reader.finish()
    names = [m.name for m in models]
    duplicates = sorted({n for n in names if names.count(n) > 1})
    if duplicates:
        raise ConfigError(f"{where}: model(s) {', '.join(duplicates)} declared twice")
    return SemanticModels(topic=topic, models=models, source=where)


_INTEGERS = ("tinyint", "smallint", "int", "bigint")


def _lossless(source: str, target: str) -> bool:
    """Is the cast ``source`` -> ``target`` one-to-one and never NULL for a non-NULL value?"""
    if target in (source, "string"):
        return True
    return source in _INTEGERS and target in _INTEGERS and _INTEGERS.index(source) <= _INTEGERS.index(target)


def check_entity_keys(models: SemanticModels, contract: TopicContract) -> None:
    """Every entity model's key is the curated key: one column per curated key column, each a
    plain reference to it (the name as is or renamed, optionally cast to its own type, a
    wider integer or a string).

    A run turns each changed curated row into one entity row and MERGEs it on the model's
    key, so any other key (a non-key column, an expression) gives several curated rows one
    entity key (duplicates, or one changed row overwriting the others), or a key that
    changes or is NULL (stale rows, NULL keys inserted again).

    Raises:
        ConfigError: naming the model file, the model and its key.
    """
    types = dict(contract.curated_columns())
    curated_key = {k.lower(): k for k in contract.key}
    wanted = ", ".join(contract.key)
    for model in models.models:
        if model.kind is not ModelKind.ENTITY:
            continue
        columns = {c.name: c for c in model.columns}
        problems: list[str] = []
        referenced: list[str] = []
        for name in model.key:
            column = columns[name]
            source = curated_key.get(plain_column(column.expr) or "")
            if source is None:
                problems.append(f"{name} is {column.expr!r}, not a plain curated key column")
                continue
            referenced.append(source)
            if column.type is not None and not _lossless(types.get(source, ""), column.type):
                problems.append(
                    f"{name} casts {source} ({types.get(source)}) to {column.type}, which can merge or NULL "
                    "distinct keys"
                )
        duplicates = sorted({r for r in referenced if referenced.count(r) > 1})
        if duplicates:
            problems.append(f"{', '.join(duplicates)} used twice")
        absent = [k for k in contract.key if k not in referenced]
        if absent and not problems:
            problems.append(f"{', '.join(absent)} missing")
        if problems:
            raise ConfigError(
                f"{model.source}.key: entity model {model.name!r} keys on [{', '.join(model.key)}]; an entity "
                f"model's key must be the curated key of topic {contract.topic!r}, [{wanted}], each a plain "
                f"column (renamed, or cast without loss): {'; '.join(problems)}. A run merges one row per "
                "changed curated row on the key (for one row per another column, use an aggregate model)"
            )


def check_models_and_suites(
    models: SemanticModels | None, suites: Mapping[str, QualitySuite], contract: TopicContract
) -> None:
    """What the semantic job and ``lean-ops validate`` check of a topic's models against its
    contract and its semantic suites: entity keys (:func:`check_entity_keys`), and that each
    suite names one of the models' tables (a typo would publish that table unchecked).

    Raises:
        ConfigError: naming the file and what is wrong.
    """
    if models is not None:
        check_entity_keys(models, contract)
    names = {m.name for m in models.models} if models else set()
    check_suite_tables(suites, names, f"a semantic model of topic {contract.topic!r}")


def load_semantic_models(source: ConfigSource, topic: str) -> SemanticModels | None:
    """The topic's models from ``semantic/<topic>.yaml`` under the config root (None: no file).

    Raises:
        ConfigError: the file is not valid YAML or not a valid model file.
    """
    relative = semantic_model_path(topic)
    text = source.read_text(relative)
    if text is None:
        return None
    where = source.describe(relative)
    try:
        data = yaml.safe_load(text)
    except yaml.YAMLError as exc:
        raise ConfigError(f"{where}: not valid YAML: {exc}") from exc
    return parse_semantic_models(data, where, expected_topic=PurePosixPath(relative).stem)
