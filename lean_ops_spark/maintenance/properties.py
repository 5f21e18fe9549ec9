"""Table properties the maintenance policy enforces: drift found, reported and set back.

The policy's ``table_properties`` (defaults < layer < table) are compared with the table's
current properties. A key that the table's own definition (its topic contract, via
bootstrap) sets to another value is a *conflict*: reported, never applied, so ``init`` and
``maintain`` never flip a property back and forth.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import asdict, dataclass
from typing import TYPE_CHECKING, Any

from lean_ops_spark.catalog.naming import TableRef
from lean_ops_spark.catalog.schemas import sql_string

if TYPE_CHECKING:
    from pyspark.sql import SparkSession

__all__ = ["PropertyChange", "enforce_properties", "property_drift"]


@dataclass(frozen=True)
class PropertyChange:
    """One drifted property: what it is, what the policy wants, and what was done.

    ``action``: ``set`` (applied), ``drift`` (found in a dry run, not applied) or
    ``conflict`` (the table's definition wants ``owner_value``; left alone).
    """

    key: str
    expected: str
    actual: str | None
    action: str
    owner_value: str | None = None

    def as_dict(self) -> dict[str, Any]:
        return asdict(self)

    def describe(self) -> str:
        was = "unset" if self.actual is None else repr(self.actual)
        if self.action == "conflict":
            return (
                f"{self.key}: policy wants {self.expected!r} but the table definition sets "
                f"{self.owner_value!r} (left {was})"
            )
        verb = "set" if self.action == "set" else "would set"
        return f"{self.key}: {verb} {self.expected!r} (was {was})"


def property_drift(
    current: Mapping[str, str],
    expected: Mapping[str, str],
    definition: Mapping[str, str] | None = None,
    *,
    dry_run: bool = False,
) -> tuple[PropertyChange, ...]:
    """Compare properties (pure). ``definition``: what bootstrap's table definition sets."""
    definition = definition or {}
    changes = []
    for key in sorted(expected):
        value = expected[key]
        owner = definition.get(key)
        if owner is not None and owner != value:
            if current.get(key) != value:
                changes.append(PropertyChange(key, value, current.get(key), "conflict", owner))
            continue
        if current.get(key) != value:
            changes.append(PropertyChange(key, value, current.get(key), "drift" if dry_run else "set"))
    return tuple(changes)


def enforce_properties(
    spark: SparkSession,
    table: TableRef,
    current: Mapping[str, str],
    expected: Mapping[str, str],
    definition: Mapping[str, str] | None = None,
    *,
    dry_run: bool = False,
) -> tuple[PropertyChange, ...]:
    """Set drifted properties back in one ``ALTER TABLE`` (none if nothing drifted or dry run)."""
    changes = property_drift(current, expected, definition, dry_run=dry_run)
    to_set = [c for c in changes if c.action == "set"]
    if to_set:
        assignments = ", ".join(f"{sql_string(c.key)}={sql_string(c.expected)}" for c in to_set)
        spark.sql(f"ALTER TABLE {table.sql} SET TBLPROPERTIES ({assignments})")
    return changes
