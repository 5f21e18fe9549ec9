"""The semantic tables governance and Snowflake work on, without the semantic layer's code.

The semantic layer owns ``conf/semantic/<topic>.yaml`` and validates it strictly. Here we
read those files *minimally* — only the target table name and, if listed, the output
column names — so that grants, IAM policies and Snowflake DDL do not depend on that
layer's loader. An explicit list in the governance file (``semantic_tables:``) wins.

Recognised shapes (the first that matches):

* ``models: [ {<model>}, ... ]`` — several models in one file, else the file is one model;
* the table name in ``table``, ``target_table``, ``name``, or ``target`` (a string or a
  mapping with ``table``/``name``); a ``db.table`` value keeps the last part; the file
  name (``<topic>.yaml`` → ``<topic>``) when none is given;
* columns in ``columns`` (or ``group_by`` + ``measures`` for an aggregate): a list of names,
  a list of mappings with ``name``, or a mapping keyed by name.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import yaml

from lean_ops_spark.config._reader import check_identifier
from lean_ops_spark.config.sources import ConfigSource
from lean_ops_spark.errors import ConfigError

__all__ = ["SemanticTable", "discover_semantic_tables", "semantic_tables_from"]

_NAME_KEYS = ("table", "target_table", "name")


@dataclass(frozen=True)
class SemanticTable:
    """A table of the semantic database: its name and (when the model lists them) its columns."""

    name: str
    columns: tuple[str, ...] = ()
    source: str = ""


def _table_name(model: Mapping[str, Any], fallback: str) -> object:
    for key in _NAME_KEYS:
        if isinstance(model.get(key), str):
            return model[key]
    target = model.get("target")
    if isinstance(target, str):
        return target
    if isinstance(target, Mapping):
        for key in ("table", "name"):
            if isinstance(target.get(key), str):
                return target[key]
    return fallback


def _names(raw: object) -> list[object]:
    if isinstance(raw, Mapping):
        return list(raw)
    if isinstance(raw, list):
        return [c.get("name") if isinstance(c, Mapping) else c for c in raw]
    return []


def _columns(model: Mapping[str, Any], where: str) -> tuple[str, ...]:
    # entity models list ``columns``; aggregate models ``group_by`` then ``measures``
    names = _names(model.get("columns")) or [*_names(model.get("group_by")), *_names(model.get("measures"))]
    return tuple(check_identifier(n, f"{where}: columns") for n in names)


def _models(document: object, where: str, stem: str) -> list[SemanticTable]:
    if document is None:
        return []
    if not isinstance(document, Mapping):
        raise ConfigError(f"{where}: expected a mapping, got {type(document).__name__}")
    raw_models = document.get("models")
    models = raw_models if isinstance(raw_models, list) else [document]
    out = []
    for i, model in enumerate(models):
        at = f"{where}: models[{i}]" if isinstance(raw_models, list) else where
        if not isinstance(model, Mapping):
            raise ConfigError(f"{at}: expected a mapping")
        name = _table_name(model, stem)
        if isinstance(name, str) and "." in name:
            name = name.rsplit(".", 1)[1]
        out.append(SemanticTable(check_identifier(name, f"{at}: table name"), _columns(model, at), where))
    return out


def semantic_tables_from(names: Sequence[str], where: str = "") -> tuple[SemanticTable, ...]:
    """Tables from an explicit list of names (no columns known)."""
    return tuple(SemanticTable(check_identifier(n, f"{where} semantic_tables"), (), where) for n in names)


def discover_semantic_tables(
    source: ConfigSource, explicit: Sequence[str] = (), *, where: str = ""
) -> tuple[SemanticTable, ...]:
    """The semantic tables: ``explicit`` if given, else every model under ``semantic/``.

    Args:
        source: the config root.
        explicit: the governance file's ``semantic_tables`` list.
        where: names the explicit list's file in errors.

    Raises:
        ConfigError: a file is not YAML, a name is not an identifier, or two models target
            the same table.
    """
    if explicit:
        return semantic_tables_from(explicit, where)
    found: dict[str, SemanticTable] = {}
    for relative in source.list_yaml("semantic"):
        text = source.read_text(relative) or ""
        described = source.describe(relative)
        try:
            document = yaml.safe_load(text)
        except yaml.YAMLError as exc:
            raise ConfigError(f"{described}: not valid YAML: {exc}") from exc
        for table in _models(document, described, Path(relative).stem):
            if table.name in found:
                raise ConfigError(
                    f"{described}: table {table.name!r} is also the target of {found[table.name].source}"
                )
            found[table.name] = table
    return tuple(found[name] for name in sorted(found))
