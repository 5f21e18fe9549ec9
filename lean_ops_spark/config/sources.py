"""Where configuration files come from: a local folder or an ``s3://bucket/prefix``."""

from __future__ import annotations

from pathlib import Path
from typing import Any, Literal, Protocol, overload

from lean_ops_spark.errors import ConfigError

__all__ = ["ConfigSource", "LocalConfigSource", "S3ConfigSource", "open_config_source", "read_named_file"]


class ConfigSource(Protocol):
    """Read-only view of a ``conf/`` root."""

    def describe(self, relative: str) -> str:
        """A human-readable location of ``relative`` (for error messages)."""
        ...

    def list_yaml(self, folder: str) -> list[str]:
        """Relative paths of the ``*.yaml``/``*.yml`` files directly in ``folder``, sorted."""
        ...

    def read_text(self, relative: str) -> str | None:
        """The file's text, or None if it does not exist."""
        ...


class LocalConfigSource:
    def __init__(self, root: Path) -> None:
        if not root.is_dir():
            raise ConfigError(f"config folder {root} does not exist (pass --conf DIR or s3://bucket/prefix)")
        self.root = root

    def describe(self, relative: str) -> str:
        return str(self.root / relative)

    def list_yaml(self, folder: str) -> list[str]:
        base = self.root / folder
        if not base.is_dir():
            return []
        return sorted(
            f"{folder}/{p.name}" for p in base.iterdir() if p.is_file() and p.suffix in (".yaml", ".yml")
        )

    def read_text(self, relative: str) -> str | None:
        path = self.root / relative
        return _decode(path.read_bytes(), str(path)) if path.is_file() else None


class S3ConfigSource:
    """Configuration under an S3 prefix, e.g. the one ``lean-ops deploy`` uploads."""

    def __init__(self, uri: str, client: Any = None) -> None:
        without_scheme = uri[len("s3://") :]
        bucket, _, prefix = without_scheme.partition("/")
        if not bucket:
            raise ConfigError(f"config location {uri!r} has no bucket")
        self.bucket = bucket
        self.prefix = prefix.strip("/")
        if client is None:
            try:
                import boto3
            except ImportError as exc:  # pragma: no cover - boto3 is on Glue and in the aws extra
                raise ConfigError(
                    "reading config from S3 needs boto3 (pip install 'lean-ops-spark[aws]')"
                ) from exc
            client = boto3.client("s3")
        self.client = client

    def _key(self, relative: str) -> str:
        return f"{self.prefix}/{relative}" if self.prefix else relative

    def describe(self, relative: str) -> str:
        return f"s3://{self.bucket}/{self._key(relative)}"

    def list_yaml(self, folder: str) -> list[str]:
        prefix = self._key(folder).rstrip("/") + "/"
        names: list[str] = []
        paginator = self.client.get_paginator("list_objects_v2")
        for page in paginator.paginate(Bucket=self.bucket, Prefix=prefix, Delimiter="/"):
            for item in page.get("Contents", []):
                name = item["Key"][len(prefix) :]
                if name.endswith((".yaml", ".yml")):
                    names.append(f"{folder}/{name}")
        return sorted(names)

    def read_text(self, relative: str) -> str | None:
        try:
            response = self.client.get_object(Bucket=self.bucket, Key=self._key(relative))
        except self.client.exceptions.NoSuchKey:
            return None
        body: bytes = response["Body"].read()
        return _decode(body, self.describe(relative))


def _decode(data: bytes, location: str) -> str:
    """A config file's text; a file in another encoding is a ConfigError naming it."""
    try:
        return data.decode("utf-8")
    except UnicodeDecodeError as exc:
        raise ConfigError(
            f"{location} is not UTF-8 text (byte {exc.start}: {data[exc.start : exc.start + 1]!r}); "
            "save it as UTF-8"
        ) from exc


def open_config_source(location: str | Path, s3_client: Any = None) -> ConfigSource:
    """A source for a local folder or an ``s3://`` prefix."""
    text = str(location)
    if text.startswith("s3://"):
        return S3ConfigSource(text, s3_client)
    return LocalConfigSource(Path(text).expanduser().resolve())


@overload
def read_named_file(
    src: ConfigSource, folder: str, name: str, kind: str, *, required: Literal[True] = ...
) -> tuple[str, str]: ...


@overload
def read_named_file(
    src: ConfigSource, folder: str, name: str, kind: str, *, required: bool
) -> tuple[str, str] | None: ...


def read_named_file(
    src: ConfigSource, folder: str, name: str, kind: str, *, required: bool = True
) -> tuple[str, str] | None:
    """Text and location of ``<folder>/<name>.yaml``, e.g. a profile or an environment.

    Returns None when the file is missing and not ``required``.

    Raises:
        ConfigError: ``name`` is not an identifier, or a required file is missing (listing
            the names that exist in ``folder``).
    """
    from lean_ops_spark.config._reader import check_identifier

    check_identifier(name, f"{kind} name")
    relative = f"{folder}/{name}.yaml"
    text = src.read_text(relative)
    if text is None:
        if not required:
            return None
        available = [Path(p).stem for p in src.list_yaml(folder)]
        raise ConfigError(
            f"{kind} {name!r} not found at {src.describe(relative)} (available: {', '.join(available) or 'none'})"
        )
    return text, src.describe(relative)
