"""Semantic models: frozen, validated configuration (built only by :mod:`.loader`).

A topic's models live in ``conf/semantic/<topic>.yaml``. An *entity* model keeps one row
per key (columns are expressions over curated columns: renames, casts, derived fields);
an *aggregate* model keeps one row per group (``group_by`` expressions) with ``measures``
(aggregate expressions). Both may filter curated rows and partition their table.
"""

from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass
from enum import Enum
from typing import Any

from lean_ops_spark.semantic.expressions import normalized, referenced_columns

__all__ = [
    "AUDIT_COLUMNS",
    "FINGERPRINT_KEY",
    "ModelColumn",
    "ModelKind",
    "ModelPartition",
    "SemanticModel",
    "SemanticModels",
]

#: Columns every semantic row carries: the curated snapshot it was computed from and the run.
AUDIT_COLUMNS: tuple[tuple[str, str], ...] = (("_curated_snapshot_id", "bigint"), ("_run_id", "string"))
#: Where a semantic table records :meth:`SemanticModel.fingerprint` of the model that
#: computed its rows: in the summary of each snapshot a run commits (next to the checkpoint)
#: and as a table property.
FINGERPRINT_KEY = "lean-ops.model-fingerprint"


class ModelKind(str, Enum):
    ENTITY = "entity"
    AGGREGATE = "aggregate"


@dataclass(frozen=True)
class ModelColumn:
    """One output column: a Spark SQL expression, optionally cast to ``type``."""

    name: str
    expr: str
    type: str | None = None
    description: str = ""

    @property
    def curated_columns(self) -> tuple[str, ...]:
        return referenced_columns(self.expr)

    def value_sql(self) -> str:
        """``expr``, cast when a type is given."""
        return f"CAST(({self.expr}) AS {self.type})" if self.type else f"({self.expr})"

    def sql(self) -> str:
        """:meth:`value_sql` ``AS name``."""
        return f"{self.value_sql()} AS {self.name}"

    def definition(self) -> dict[str, Any]:
        """What decides the column's values (its description does not)."""
        return {"name": self.name, "expr": normalized(self.expr), "type": self.type}


@dataclass(frozen=True)
class ModelPartition:
    """Partitioning of the semantic table: ``identity``/``year``/``month``/``day``/``hour`` of a column."""

    column: str
    transform: str = "identity"

    def spark_ddl(self) -> str:
        return self.column if self.transform == "identity" else f"{self.transform}s({self.column})"


@dataclass(frozen=True)
class SemanticModel:
    """One semantic table of a topic."""

    name: str
    topic: str
    kind: ModelKind
    #: entity: every output column; aggregate: the group-by columns.
    columns: tuple[ModelColumn, ...]
    #: entity: the key columns; aggregate: the group-by column names.
    key: tuple[str, ...]
    measures: tuple[ModelColumn, ...] = ()
    filters: tuple[str, ...] = ()
    partition: ModelPartition | None = None
    description: str = ""
    source: str = ""

    @property
    def output_columns(self) -> tuple[str, ...]:
        return tuple(c.name for c in (*self.columns, *self.measures))

    @property
    def curated_columns(self) -> tuple[str, ...]:
        """Every curated column the model reads (columns, measures, filters)."""
        names: set[str] = set()
        for column in (*self.columns, *self.measures):
            names.update(column.curated_columns)
        for condition in self.filters:
            names.update(referenced_columns(condition))
        return tuple(sorted(names))

    def filter_sql(self) -> str | None:
        return " AND ".join(f"({f})" for f in self.filters) if self.filters else None

    def fingerprint(self) -> str:
        """A hash of everything that decides the table's rows: kind, key, columns and
        measures (names, expressions, types), filters and partitioning. Descriptions and
        whitespace inside expressions do not count. A table computed under another
        fingerprint is rebuilt (the incremental window never revisits unchanged rows)."""
        definition = {
            "kind": self.kind.value,
            "key": list(self.key),
            "columns": [c.definition() for c in self.columns],
            "measures": [m.definition() for m in self.measures],
            "filters": [normalized(f) for f in self.filters],
            "partition": None
            if self.partition is None
            else {"column": self.partition.column, "transform": self.partition.transform},
        }
        text = json.dumps(definition, sort_keys=True, separators=(",", ":"))
        return "v1:" + hashlib.sha256(text.encode()).hexdigest()[:32]


@dataclass(frozen=True)
class SemanticModels:
    """The models of one topic (one file)."""

    topic: str
    models: tuple[SemanticModel, ...]
    source: str = ""

    def model(self, name: str) -> SemanticModel:
        for model in self.models:
            if model.name == name:
                return model
        raise KeyError(name)

    @property
    def curated_columns(self) -> tuple[str, ...]:
        return tuple(sorted({c for m in self.models for c in m.curated_columns}))
