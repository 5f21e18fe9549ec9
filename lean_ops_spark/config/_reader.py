"""Strict reading of one YAML mapping: typed getters, unknown keys refused.

Every error names the source (file or s3 key) and the dotted key path, so a bad config
fails at load time with a message a person can act on.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from typing import Any

from lean_ops_spark.errors import ConfigError

#: Topic, database, table and column names: lower-case SQL identifiers, nothing to quote.
IDENTIFIER_PATTERN = re.compile(r"^[a-z][a-z0-9_]{0,62}$")


def check_identifier(value: object, where: str) -> str:
    """Return ``value`` if it is a safe identifier, else raise a ConfigError naming ``where``."""
    if not isinstance(value, str) or not IDENTIFIER_PATTERN.fullmatch(value):
        raise ConfigError(
            f"{where}: {value!r} is not a valid identifier "
            "(lower-case letter first, then lower-case letters, digits or '_', at most 63 characters)"
        )
    return value


class MappingReader:
    """Reads keys of one mapping and remembers which ones were used.

    Call :meth:`finish` at the end: any key not read is an unknown key and an error.
    """

    def __init__(self, data: object, where: str) -> None:
        if data is None:
            data = {}
        if not isinstance(data, Mapping):
            raise ConfigError(f"{where.rstrip(':')}: expected a mapping, got {type(data).__name__}")
        self._data: Mapping[str, Any] = data
        self._used: set[str] = set()
        self.where = where

    def path(self, key: str) -> str:
        return f"{self.where}.{key}" if not self.where.endswith(":") else f"{self.where} {key}"

    def has(self, key: str) -> bool:
        return key in self._data

    def raw(self, key: str, default: Any = None, *, required: bool = False) -> Any:
        self._used.add(key)
        if key not in self._data or self._data[key] is None:
            if required:
                raise ConfigError(f"{self.path(key)}: required key is missing")
            return default
        return self._data[key]

    def string(self, key: str, default: str | None = None, *, required: bool = False) -> str | None:
        value = self.raw(key, default, required=required)
        if value is not None and not isinstance(value, str):
            raise ConfigError(f"{self.path(key)}: expected a string, got {value!r}")
        return value

    def req_string(self, key: str) -> str:
        value = self.string(key, required=True)
        assert value is not None
        return value

    def identifier(self, key: str, default: str | None = None, *, required: bool = False) -> str:
        value = self.raw(key, default, required=required)
        return check_identifier(value, self.path(key))

    def boolean(self, key: str, default: bool) -> bool:
        value = self.raw(key, default)
        if not isinstance(value, bool):
            raise ConfigError(f"{self.path(key)}: expected true or false, got {value!r}")
        return value

    def integer(self, key: str, default: int | None = None, *, minimum: int | None = None) -> int | None:
        value = self.raw(key, default)
        if value is None:
            return None
        if isinstance(value, bool) or not isinstance(value, int):
            raise ConfigError(f"{self.path(key)}: expected a whole number, got {value!r}")
        if minimum is not None and value < minimum:
            raise ConfigError(f"{self.path(key)}: must be at least {minimum}, got {value}")
        return value

    def number(
        self,
        key: str,
        default: float | None = None,
        *,
        minimum: float | None = None,
        maximum: float | None = None,
    ) -> float | None:
        value = self.raw(key, default)
        if value is None:
            return None
        if isinstance(value, bool) or not isinstance(value, (int, float)):
            raise ConfigError(f"{self.path(key)}: expected a number, got {value!r}")
        if minimum is not None and value < minimum:
            raise ConfigError(f"{self.path(key)}: must be at least {minimum}, got {value}")
        if maximum is not None and value > maximum:
            raise ConfigError(f"{self.path(key)}: must be at most {maximum}, got {value}")
        return float(value)

    def choice(self, key: str, choices: tuple[str, ...], default: str) -> str:
        value = self.raw(key, default)
        if value not in choices:
            raise ConfigError(f"{self.path(key)}: {value!r} is not one of {', '.join(choices)}")
        return str(value)

    def sequence(self, key: str, *, required: bool = False) -> list[Any]:
        value = self.raw(key, [], required=required)
        if not isinstance(value, list):
            raise ConfigError(f"{self.path(key)}: expected a list, got {value!r}")
        return value

    def string_map(self, key: str) -> dict[str, str]:
        value = self.raw(key, {})
        if not isinstance(value, Mapping):
            raise ConfigError(f"{self.path(key)}: expected a mapping, got {value!r}")
        out: dict[str, str] = {}
        for k, v in value.items():
            if not isinstance(k, str) or isinstance(v, (Mapping, list)) or v is None:
                raise ConfigError(f"{self.path(key)}.{k}: expected a scalar value, got {v!r}")
            out[k] = str(v).lower() if isinstance(v, bool) else str(v)
        return out

    def child(self, key: str, *, required: bool = False) -> MappingReader:
        return MappingReader(self.raw(key, {}, required=required), self.path(key))

    def finish(self) -> None:
        unknown = sorted(set(self._data) - self._used)
        if unknown:
            raise ConfigError(f"{self.where.rstrip(':')}: unknown key(s) {', '.join(map(str, unknown))}")
