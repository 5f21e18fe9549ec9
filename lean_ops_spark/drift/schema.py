"""Field paths and types: the contract as a tree of paths, Spark types as contract types,
and Iceberg's type promotions. Pure (``pyspark.sql.types`` is imported only to convert a
Spark schema, which needs no JVM).

A *path* is a tuple of JSON keys where ``"[]"`` stands for "every element of an array":
``("items", "[]", "quantity")`` is ``items[].quantity`` in messages and
``items.element.quantity`` in Iceberg DDL.
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping
from dataclasses import dataclass, replace
from typing import Any

from lean_ops_spark.config._reader import IDENTIFIER_PATTERN
from lean_ops_spark.config.models import (
    AUDIT_COLUMNS,
    RESCUED_DATA_COLUMN,
    FieldSpec,
    FieldType,
    TopicContract,
)
from lean_ops_spark.errors import ContractError

__all__ = [
    "ELEMENT",
    "FieldPath",
    "PathInfo",
    "contract_paths",
    "ddl_path",
    "field_type_from_spark",
    "is_identifier",
    "json_path",
    "parse_json_path",
    "promote",
    "replace_type",
    "widened",
    "with_field",
]

ELEMENT = "[]"
#: A path into a message: JSON keys, with ELEMENT for array elements.
FieldPath = tuple[str, ...]
#: Curated columns that are not payload columns.
NON_PAYLOAD_COLUMNS = frozenset({RESCUED_DATA_COLUMN, *(name for name, _ in AUDIT_COLUMNS)})
_MAX_DECIMAL_PRECISION = 38


def json_path(path: FieldPath) -> str:
    """``("items", "[]", "sku")`` -> ``items[].sku``."""
    out = ""
    for part in path:
        out = out + ELEMENT if part == ELEMENT else (f"{out}.{part}" if out else part)
    return out


def parse_json_path(text: str) -> FieldPath:
    """The inverse of :func:`json_path`."""
    parts: list[str] = []
    for piece in text.split("."):
        name = piece.rstrip("[]")
        if name:
            parts.append(name)
        parts.extend([ELEMENT] * ((len(piece) - len(name)) // len(ELEMENT)))
    return tuple(parts)


def is_identifier(name: str) -> bool:
    return bool(IDENTIFIER_PATTERN.fullmatch(name))


@dataclass(frozen=True)
class PathInfo:
    """Where a contract path lives in the curated table.

    ``column`` is the top-level curated column holding the value; ``ddl`` the Iceberg
    column path (``items.element.sku``); ``enforced`` is true for values curation checks
    per record (top-level and flattened-struct fields: ``required``, casts).
    """

    path: FieldPath
    type: FieldType
    spec: FieldSpec | None
    column: str
    ddl: str
    enforced: bool
    flattened_parent: bool = False  # a flattened struct (has no column of its own)


def contract_paths(contract: TopicContract) -> dict[FieldPath, PathInfo]:
    """Every path the contract declares, parents before children."""
    out: dict[FieldPath, PathInfo] = {}

    def nested(path: FieldPath, ftype: FieldType, column: str, ddl: str) -> None:
        if ftype.kind == "struct":
            for child in ftype.fields:
                child_path = (*path, child.name)
                child_ddl = f"{ddl}.{child.name}"
                out[child_path] = PathInfo(child_path, child.type, child, column, child_ddl, False)
                nested(child_path, child.type, column, child_ddl)
        elif ftype.kind == "array":
            assert ftype.element is not None
            element_path = (*path, ELEMENT)
            element_ddl = f"{ddl}.element"
            out[element_path] = PathInfo(element_path, ftype.element, None, column, element_ddl, False)
            nested(element_path, ftype.element, column, element_ddl)

    def walk(specs: tuple[FieldSpec, ...], prefix: str, parent: FieldPath) -> None:
        for spec in specs:
            path = (*parent, spec.name)
            column = f"{prefix}{spec.name}"
            if spec.type.kind == "struct" and spec.flatten:
                out[path] = PathInfo(path, spec.type, spec, column, column, False, flattened_parent=True)
                walk(spec.type.fields, f"{column}_", path)
            else:
                out[path] = PathInfo(path, spec.type, spec, column, column, True)
                nested(path, spec.type, column, column)

    walk(contract.fields, "", ())
    return out


def iter_types(ftype: FieldType, path: FieldPath = ()) -> Iterator[tuple[FieldPath, FieldType]]:
    """``ftype`` and every type nested in it, with their paths relative to ``ftype``."""
    yield path, ftype
    if ftype.kind == "struct":
        for child in ftype.fields:
            yield from iter_types(child.type, (*path, child.name))
    elif ftype.kind == "array" and ftype.element is not None:
        yield from iter_types(ftype.element, (*path, ELEMENT))


def ddl_path(contract: TopicContract, path: FieldPath) -> tuple[str, str]:
    """``(column, ddl path)`` of a path that may not exist yet (its parent must).

    A new child of a flattened struct is a new top-level column ``parent_child``; a new
    child of any other struct or array element is a nested field of its column.

    Raises:
        ContractError: the parent is not a struct in the contract.
    """
    known = contract_paths(contract)
    if path in known:
        return known[path].column, known[path].ddl
    if len(path) == 1:
        return path[0], path[0]
    parent = known.get(path[:-1])
    if parent is None or parent.type.kind != "struct":
        raise ContractError(f"{json_path(path)}: its parent is not a struct of the contract")
    if parent.flattened_parent:
        column = f"{parent.column}_{path[-1]}"
        return column, column
    return parent.column, f"{parent.ddl}.{path[-1]}"


# --------------------------------------------------------------------------- promotions


def widened(ftype: FieldType) -> FieldType | None:
    """The widest type Iceberg can promote ``ftype`` to (None: no promotion exists)."""
    if ftype.kind == "int":
        return FieldType("long")
    if ftype.kind == "float":
        return FieldType("double")
    if ftype.kind == "decimal" and (ftype.precision or 0) < _MAX_DECIMAL_PRECISION:
        return FieldType("decimal", precision=_MAX_DECIMAL_PRECISION, scale=ftype.scale)
    return None


def promote(old: FieldType, new: FieldType) -> bool:
    """True when Iceberg can change a column from ``old`` to ``new`` in place
    (int -> long, float -> double, decimal precision increase at the same scale)."""
    if old.kind == "int" and new.kind == "long":
        return True
    if old.kind == "float" and new.kind == "double":
        return True
    return (
        old.kind == "decimal"
        and new.kind == "decimal"
        and old.scale == new.scale
        and (new.precision or 0) > (old.precision or 0)
    )


# --------------------------------------------------------------------------- contract edits


def _edit(specs: tuple[FieldSpec, ...], path: FieldPath, edit: Any) -> tuple[FieldSpec, ...]:
    """Apply ``edit(FieldType, rest_of_path) -> FieldType`` to the field named ``path[0]``."""
    out = []
    found = False
    for spec in specs:
        if spec.name == path[0]:
            found = True
            out.append(replace(spec, type=edit(spec.type, path[1:])))
        else:
            out.append(spec)
    if not found:
        raise ContractError(f"no field {path[0]!r} to change")
    return tuple(out)


def _edit_type(ftype: FieldType, rest: FieldPath, leaf: Any) -> FieldType:
    if not rest:
        result: FieldType = leaf(ftype)
        return result
    if rest[0] == ELEMENT:
        if ftype.kind != "array" or ftype.element is None:
            raise ContractError("path goes into the elements of a field that is not an array")
        return replace(ftype, element=_edit_type(ftype.element, rest[1:], leaf))
    if ftype.kind != "struct":
        raise ContractError(f"path goes into {rest[0]!r} of a field that is not a struct")
    return replace(ftype, fields=_edit(ftype.fields, rest, lambda t, r: _edit_type(t, r, leaf)))


def replace_type(contract: TopicContract, path: FieldPath, new_type: FieldType) -> TopicContract:
    """The contract with the type at ``path`` replaced (checks are kept)."""
    fields = _edit(contract.fields, path, lambda t, r: _edit_type(t, r, lambda _old: new_type))
    return replace(contract, fields=fields)


def with_field(contract: TopicContract, path: FieldPath, new_type: FieldType) -> TopicContract:
    """The contract with an optional field added at ``path`` (its parent must be a struct)."""
    spec = FieldSpec(name=path[-1], type=new_type, description="added by lean-ops schema evolution")
    if len(path) == 1:
        if any(f.name == path[0] for f in contract.fields):
            raise ContractError(f"field {path[0]!r} already exists")
        return replace(contract, fields=(*contract.fields, spec))

    def add(parent: FieldType) -> FieldType:
        if parent.kind != "struct":
            raise ContractError(f"{json_path(path[:-1])} is not a struct")
        if any(f.name == path[-1] for f in parent.fields):
            raise ContractError(f"field {json_path(path)} already exists")
        return replace(parent, fields=(*parent.fields, spec))

    fields = _edit(contract.fields, path[:-1], lambda t, r: _edit_type(t, r, add))
    return replace(contract, fields=fields)


# --------------------------------------------------------------------------- Spark types


def field_type_from_spark(data_type: Any) -> FieldType:
    """A Spark ``DataType`` as a contract :class:`FieldType`.

    Raises:
        ContractError: a type contracts cannot express (maps, binary, ...).
    """
    from pyspark.sql import types as T

    simple: Mapping[type, str] = {
        T.StringType: "string",
        T.IntegerType: "int",
        T.LongType: "long",
        T.DoubleType: "double",
        T.FloatType: "float",
        T.BooleanType: "boolean",
        T.DateType: "date",
        T.TimestampType: "timestamp",
    }
    for cls, kind in simple.items():
        if isinstance(data_type, cls):
            return FieldType(kind)
    if isinstance(data_type, T.DecimalType):
        return FieldType("decimal", precision=data_type.precision, scale=data_type.scale)
    if isinstance(data_type, T.StructType):
        return FieldType(
            "struct",
            fields=tuple(
                FieldSpec(name=f.name, type=field_type_from_spark(f.dataType)) for f in data_type.fields
            ),
        )
    if isinstance(data_type, T.ArrayType):
        return FieldType("array", element=field_type_from_spark(data_type.elementType))
    raise ContractError(f"type {data_type.simpleString()} has no contract equivalent")
