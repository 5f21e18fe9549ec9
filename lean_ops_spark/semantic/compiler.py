"""Semantic models compiled into DataFrame transforms (pure: no actions, no writes).

Each transform first selects exactly the curated columns the model's expressions read
(found by :mod:`.expressions`), so the set the schema check reports is the set the job
uses: a column the scan missed fails analysis instead of being read unnoticed.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import TYPE_CHECKING

from lean_ops_spark.semantic.models import SemanticModel

if TYPE_CHECKING:
    from pyspark.sql import Column, DataFrame

__all__ = [
    "EXISTS_COLUMN",
    "KEEP_COLUMN",
    "aggregate_rows",
    "entity_rows",
    "group_keys",
    "in_groups",
    "null_safe_join",
]

#: Entity rows: does the row pass the model's filters (else it leaves the table).
KEEP_COLUMN = "_keep"
#: Aggregate rows: does the group still have rows (else it leaves the table).
EXISTS_COLUMN = "_exists"


def _inputs(curated: DataFrame, model: SemanticModel, extra: Sequence[str] = ()) -> DataFrame:
    names = [*model.curated_columns, *[c for c in extra if c not in model.curated_columns]]
    return curated.select(*names)


def _filter(model: SemanticModel) -> Column:
    from pyspark.sql import functions as F

    condition = model.filter_sql()
    return F.coalesce(F.expr(condition), F.lit(False)) if condition else F.lit(True)


def entity_rows(curated: DataFrame, model: SemanticModel) -> DataFrame:
    """One output row per curated row, with ``_keep`` = the row passes the model's filters."""
    from pyspark.sql import functions as F

    inputs = _inputs(curated, model)
    return inputs.select(*[F.expr(c.sql()) for c in model.columns], _filter(model).alias(KEEP_COLUMN))


def group_keys(curated: DataFrame, model: SemanticModel) -> DataFrame:
    """The group a curated row belongs to, filters not applied (a row leaving the filter
    still changes its group)."""
    from pyspark.sql import functions as F

    return _inputs(curated, model).select(*[F.expr(c.sql()) for c in model.columns])


def aggregate_rows(curated: DataFrame, model: SemanticModel) -> DataFrame:
    """The model's groups over ``curated`` (filters applied), measures computed."""
    from pyspark.sql import functions as F

    inputs = _inputs(curated, model).where(_filter(model))
    return inputs.groupBy(*[F.expr(c.sql()) for c in model.columns]).agg(
        *[F.expr(m.sql()) for m in model.measures]
    )


def null_safe_join(left: DataFrame, right: DataFrame, keys: Sequence[str], how: str) -> DataFrame:
    """Join on ``keys`` with ``<=>`` (a NULL group key is a group too), keeping ``left``'s key
    columns. ``right``'s keys are renamed first: both sides often come from the same scan,
    where ``left[k] == right[k]`` could resolve to one column."""
    from functools import reduce

    from pyspark.sql import functions as F

    renamed = right.select(*[F.col(c).alias(f"_right_{c}") if c in keys else F.col(c) for c in right.columns])
    condition = reduce(lambda a, b: a & b, [F.col(k).eqNullSafe(F.col(f"_right_{k}")) for k in keys])
    return left.join(renamed, condition, how).drop(*[f"_right_{k}" for k in keys])


def in_groups(curated: DataFrame, model: SemanticModel, groups: DataFrame) -> DataFrame:
    """The curated rows whose group (the model's group-by values) is one of ``groups``."""
    from pyspark.sql import functions as F

    inputs = _inputs(curated, model)
    keyed = inputs.select("*", *[F.expr(c.value_sql()).alias(f"_group_{c.name}") for c in model.columns])
    wanted = groups.select(*[F.col(c.name).alias(f"_group_{c.name}") for c in model.columns])
    return null_safe_join(keyed, wanted, [f"_group_{c.name}" for c in model.columns], "left_semi").drop(
        *[f"_group_{c.name}" for c in model.columns]
    )
