"""Data-quality suites: frozen models and the strict loader of ``conf/quality/<layer>/<topic>.yaml``.

Format (one file per layer and topic; one suite per table of that layer)::

    topic: orders
    tables:
      orders:                                   # <layer db>.orders
        - not_null: [order_id, customer_id]     # one expectation per column
        - unique: [order_id]                    # several columns: a compound key
        - in_set: {column: currency, values: [EUR, USD, GBP]}
        - between: {column: total_amount, min: 0, max: 1000000, mostly: 0.99}
        - regex: {column: order_id, pattern: "^[a-z]{3}-"}
        - row_count: {min: 1, max: 10000000}

No Great Expectations here: :mod:`.runner` turns an :class:`Expectation` into a GE 1.x
expectation when a suite runs.
"""

from __future__ import annotations

import math
from collections.abc import Collection, Mapping
from dataclasses import dataclass
from pathlib import PurePosixPath
from typing import Any

import yaml

from lean_ops_spark.config._reader import MappingReader, check_identifier
from lean_ops_spark.config.sources import ConfigSource
from lean_ops_spark.errors import ConfigError

__all__ = [
    "EXPECTATION_TYPES",
    "QUALITY_LAYERS",
    "Expectation",
    "QualitySuite",
    "check_suite_tables",
    "find_suite",
    "load_suites",
    "parse_suites",
]

QUALITY_LAYERS = ("curated", "semantic")
EXPECTATION_TYPES = ("not_null", "unique", "in_set", "between", "regex", "row_count")


@dataclass(frozen=True)
class Expectation:
    """One check: ``kind`` with its ``columns`` and options (``values``, ``min``, ``max``,
    ``pattern``, ``mostly``), as declared."""

    kind: str
    columns: tuple[str, ...] = ()
    values: tuple[Any, ...] = ()
    minimum: float | None = None
    maximum: float | None = None
    pattern: str | None = None
    mostly: float | None = None

    def describe(self) -> str:
        target = ", ".join(self.columns) or "table"
        parts = [f"{self.kind}({target})"]
        if self.values:
            parts.append(f"values={list(self.values)}")
        if self.minimum is not None or self.maximum is not None:
            parts.append(f"[{self.minimum}, {self.maximum}]")
        if self.pattern:
            parts.append(f"pattern={self.pattern!r}")
        if self.mostly is not None:
            parts.append(f"mostly={self.mostly}")
        return " ".join(parts)


@dataclass(frozen=True)
class QualitySuite:
    """The expectations of one table of one layer."""

    layer: str
    topic: str
    table: str
    expectations: tuple[Expectation, ...]
    source: str = ""

    @property
    def name(self) -> str:
        return f"{self.layer}.{self.table}"


def _columns(value: object, where: str) -> tuple[str, ...]:
    items = [value] if isinstance(value, str) else value
    if not isinstance(items, list) or not items:
        raise ConfigError(f"{where}: expected a column name or a list of them, got {value!r}")
    return tuple(check_identifier(c, where) for c in items)


def _mostly(reader: MappingReader) -> float | None:
    return reader.number("mostly", minimum=0.0, maximum=1.0)


def _bounds(reader: MappingReader, where: str, *, rows: bool) -> tuple[float | None, float | None]:
    """``min`` and ``max``: numbers (whole and not negative for a row count), min <= max.
    Great Expectations refuses min > max only when the suite runs (row_count: with an
    exception, after the semantic job wrote its branch), and NaN compares so that every
    value passes."""
    bounds = (
        reader.number("min", minimum=0 if rows else None),
        reader.number("max", minimum=0 if rows else None),
    )
    for key, value in zip(("min", "max"), bounds, strict=True):
        if value is None:
            continue
        if math.isnan(value):
            raise ConfigError(f"{reader.path(key)}: expected a number, got NaN")
        if rows and not value.is_integer():
            raise ConfigError(f"{reader.path(key)}: expected a whole number of rows, got {value}")
    if bounds[0] is not None and bounds[1] is not None and bounds[0] > bounds[1]:
        raise ConfigError(f"{where}: min ({bounds[0]}) is greater than max ({bounds[1]})")
    return bounds


def _expectations(kind: str, spec: object, where: str) -> list[Expectation]:
    if kind == "not_null":
        if isinstance(spec, (str, list)):
            return [Expectation("not_null", (c,)) for c in _columns(spec, where)]
        reader = MappingReader(spec, where)
        columns = _columns(reader.raw("columns", required=True), f"{where}.columns")
        mostly = _mostly(reader)
        reader.finish()
        return [Expectation("not_null", (c,), mostly=mostly) for c in columns]
    if kind == "unique":
        if isinstance(spec, (str, list)):
            return [Expectation("unique", _columns(spec, where))]
        reader = MappingReader(spec, where)
        columns = _columns(reader.raw("columns", required=True), f"{where}.columns")
        reader.finish()
        return [Expectation("unique", columns)]
    reader = MappingReader(spec, where)
    if kind == "row_count":
        minimum, maximum = _bounds(reader, where, rows=True)
        reader.finish()
        if minimum is None and maximum is None:
            raise ConfigError(f"{where}: row_count needs min, max or both")
        return [Expectation("row_count", minimum=minimum, maximum=maximum)]
    column = (reader.identifier("column", required=True),)
    if kind == "in_set":
        values = reader.sequence("values", required=True)
        if not values or any(isinstance(v, (dict, list)) for v in values):
            raise ConfigError(f"{where}.values: expected a list of scalar values")
        if any(v is None for v in values):
            # Spark's `c IN (..., NULL)` is null, never false, for a value not in the set: every
            # value would pass. Nulls are not checked by in_set at all.
            raise ConfigError(
                f"{where}.values: null cannot be a value of the set (in_set ignores nulls; "
                "declare not_null to refuse them)"
            )
        expectation = Expectation("in_set", column, values=tuple(values), mostly=_mostly(reader))
    elif kind == "between":
        minimum, maximum = _bounds(reader, where, rows=False)
        if minimum is None and maximum is None:
            raise ConfigError(f"{where}: between needs min, max or both")
        expectation = Expectation("between", column, minimum=minimum, maximum=maximum, mostly=_mostly(reader))
    else:  # regex
        pattern = reader.req_string("pattern")
        expectation = Expectation("regex", column, pattern=pattern, mostly=_mostly(reader))
    reader.finish()
    return [expectation]


def parse_suites(
    data: object, where: str, layer: str, expected_topic: str | None = None
) -> tuple[QualitySuite, ...]:
    """Parse one suite file of ``layer``.

    Raises:
        ConfigError: naming the file and key of the first problem found.
    """
    if layer not in QUALITY_LAYERS:
        raise ConfigError(f"{where}: unknown layer {layer!r} (use one of {', '.join(QUALITY_LAYERS)})")
    reader = MappingReader(data, f"{where}:")
    topic = reader.identifier("topic", required=True)
    if expected_topic is not None and topic != expected_topic:
        raise ConfigError(f"{where}: topic {topic!r} does not match the file name {expected_topic!r}")
    tables = reader.raw("tables", required=True)
    if not isinstance(tables, Mapping) or not tables:
        raise ConfigError(f"{reader.path('tables')}: expected a mapping of table name -> expectations")
    suites = []
    for table, items in tables.items():
        table_name = check_identifier(table, reader.path("tables"))
        table_where = f"{reader.path('tables')}.{table_name}"
        if not isinstance(items, list) or not items:
            raise ConfigError(f"{table_where}: expected a non-empty list of expectations")
        expectations: list[Expectation] = []
        for index, item in enumerate(items):
            item_where = f"{table_where}[{index}]"
            if not isinstance(item, Mapping) or len(item) != 1:
                raise ConfigError(
                    f"{item_where}: expected one of {', '.join(EXPECTATION_TYPES)} with its settings, got {item!r}"
                )
            ((kind, spec),) = item.items()
            if kind not in EXPECTATION_TYPES:
                raise ConfigError(
                    f"{item_where}: unknown expectation {kind!r} (use one of {', '.join(EXPECTATION_TYPES)})"
                )
            for expectation in _expectations(str(kind), spec, f"{item_where}.{kind}"):
                if expectation in expectations:  # Great Expectations keeps one of equal expectations
                    raise ConfigError(
                        f"{item_where}: {expectation.describe()} is already in this table's suite"
                    )
                expectations.append(expectation)
        suites.append(QualitySuite(layer, topic, table_name, tuple(expectations), where))
    reader.finish()
    return tuple(suites)


def _load_file(source: ConfigSource, relative: str, layer: str) -> tuple[QualitySuite, ...]:
    text = source.read_text(relative)
    if text is None:
        return ()
    where = source.describe(relative)
    try:
        data = yaml.safe_load(text)
    except yaml.YAMLError as exc:
        raise ConfigError(f"{where}: not valid YAML: {exc}") from exc
    return parse_suites(data, where, layer, expected_topic=PurePosixPath(relative).stem)


def load_suites(source: ConfigSource, layer: str, topic: str) -> dict[str, QualitySuite]:
    """``{table: suite}`` from ``quality/<layer>/<topic>.yaml`` (empty when there is no file).

    Raises:
        ConfigError: the file is invalid.
    """
    check_identifier(topic, "topic")
    if layer not in QUALITY_LAYERS:
        raise ConfigError(f"unknown quality layer {layer!r} (use one of {', '.join(QUALITY_LAYERS)})")
    return {s.table: s for s in _load_file(source, f"quality/{layer}/{topic}.yaml", layer)}


def check_suite_tables(suites: Mapping[str, QualitySuite], tables: Collection[str], what: str) -> None:
    """Every suite must name one of ``tables`` (``what`` they are, for the message): a suite
    whose table name has a typo would otherwise never run, and its table would publish unchecked.

    Raises:
        ConfigError: naming the file, the suite's table and the tables there are.
    """
    for name, suite in suites.items():
        if name not in tables:
            known = ", ".join(sorted(tables)) or "none"
            raise ConfigError(
                f"{suite.source}: a suite for table {name!r}, which is not {what} (those are: {known})"
            )


def find_suite(source: ConfigSource, layer: str, table: str) -> QualitySuite | None:
    """The suite of ``table`` in ``layer``, searching every topic file of the layer."""
    if layer not in QUALITY_LAYERS:
        raise ConfigError(f"unknown quality layer {layer!r} (use one of {', '.join(QUALITY_LAYERS)})")
    for relative in source.list_yaml(f"quality/{layer}"):
        for suite in _load_file(source, relative, layer):
            if suite.table == table:
                return suite
    return None
