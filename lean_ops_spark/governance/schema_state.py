"""Which semantic tables changed schema since Snowflake last refreshed them.

A *schema fingerprint* is the SHA-256 of the table's current Iceberg schema in canonical
JSON (field ids, names, types, required flags — nested types included), read from the
table's ``metadata.json`` the way GetAllCheckpoints reads snapshots: the catalog pointer
(Glue ``metadata_location`` or the local SQLite catalog), then one file read, no JVM.
A column added by drift *evolve*, a changed model, a type promotion — each changes it;
a data commit does not.

The last fingerprint Snowflake was refreshed for is kept per table in a small JSON state
file (local path or ``s3://``). :func:`detect_schema_changes` compares the two; that pure
decision is what the tests pin down.
"""

from __future__ import annotations

import gzip
import hashlib
import json
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path
from typing import Any, Protocol
from urllib.parse import urlparse

from lean_ops_spark.catalog.naming import TableRef
from lean_ops_spark.errors import CatalogError
from lean_ops_spark.governance.errors import GovernanceError

__all__ = [
    "MetadataSchemaSource",
    "RefreshStateStore",
    "SchemaChanges",
    "SchemaSource",
    "SparkSchemaSource",
    "detect_schema_changes",
    "iceberg_schema_fingerprint",
    "open_schema_source",
    "schema_fingerprint",
]

STATE_VERSION = 1


def _digest(document: Any) -> str:
    return hashlib.sha256(json.dumps(document, sort_keys=True, separators=(",", ":")).encode()).hexdigest()


def schema_fingerprint(columns: Iterable[tuple[str, str]]) -> str:
    """Fingerprint of ``(name, type)`` pairs, in order (e.g. a model's declared columns)."""
    return _digest([[name, type_] for name, type_ in columns])


def iceberg_schema_fingerprint(metadata: Mapping[str, Any]) -> str:
    """Fingerprint of the current schema in an Iceberg ``metadata.json`` document (v1 or v2).

    Raises:
        CatalogError: the document has no current schema.
    """
    schema: Any = None
    current = metadata.get("current-schema-id")
    for candidate in metadata.get("schemas") or ():
        if candidate.get("schema-id") == current:
            schema = candidate
    if schema is None:
        schema = metadata.get("schema")  # format v1 without the schemas list
    if not isinstance(schema, Mapping) or "fields" not in schema:
        raise CatalogError("table metadata has no current schema")
    return _digest({"type": "struct", "fields": schema["fields"]})


class SchemaSource(Protocol):
    """Anything that fingerprints the current schema of a batch of tables."""

    def observe(self, tables: Sequence[TableRef]) -> dict[str, str | None]:
        """``{table.identifier: fingerprint, or None when the table does not exist}``."""
        ...


@dataclass(frozen=True)
class MetadataSchemaSource:
    """Catalog pointer + ``metadata.json`` (the functions of ``orchestration/snapshots.py``)."""

    pointers: Any  # (tables) -> {identifier: metadata location | None}
    read: Any  # (location) -> bytes

    def observe(self, tables: Sequence[TableRef]) -> dict[str, str | None]:
        locations = self.pointers(tables)
        out: dict[str, str | None] = {}
        for table in tables:
            location = locations.get(table.identifier)
            if not location:
                out[table.identifier] = None
                continue
            try:
                payload = self.read(location)
                if payload[:2] == b"\x1f\x8b":
                    payload = gzip.decompress(payload)
                document = json.loads(payload)
            except (OSError, ValueError) as exc:
                raise CatalogError(
                    f"{table.identifier}: cannot read table metadata {location}: {exc}"
                ) from exc
            out[table.identifier] = iceberg_schema_fingerprint(document)
        return out


@dataclass(frozen=True)
class SparkSchemaSource:
    """Inside a Spark job: the session's own catalog serialises each table's current metadata.

    The same document the catalog pointer's ``metadata.json`` holds, so the fingerprints
    equal :class:`MetadataSchemaSource`'s; no catalog client or file access of its own.
    """

    spark: Any

    def observe(self, tables: Sequence[TableRef]) -> dict[str, str | None]:
        from lean_ops_spark.catalog.metadata import load_metadata_document

        out: dict[str, str | None] = {}
        for table in tables:
            if not self.spark.catalog.tableExists(table.sql):
                out[table.identifier] = None
                continue
            out[table.identifier] = iceberg_schema_fingerprint(load_metadata_document(self.spark, table))
        return out


def open_schema_source(
    profile: Any, *, catalog_db: Path | None = None, clients: Mapping[str, Any] | None = None
) -> MetadataSchemaSource:
    """The schema source of a profile: Glue (+ S3) on AWS, the SQLite catalog locally.

    Args:
        profile: a :class:`~lean_ops_spark.config.models.Profile`.
        catalog_db: the local profile's SQLite catalog file.
        clients: boto3 clients by service name (``glue``, ``s3``); created when absent.

    Raises:
        CatalogError: the local profile without a catalog file.
    """
    from lean_ops_spark.orchestration.snapshots import (
        glue_pointers,
        read_local_file,
        s3_reader,
        sqlite_pointers,
    )

    if profile.kind == "glue":
        given = dict(clients or {})
        if "glue" not in given or "s3" not in given:
            import boto3

            given.setdefault("glue", boto3.client("glue", region_name=profile.region))
            given.setdefault("s3", boto3.client("s3", region_name=profile.region))
        return MetadataSchemaSource(glue_pointers(given["glue"]), s3_reader(given["s3"]))
    if catalog_db is None:
        raise CatalogError(f"profile {profile.name!r} is local and needs its catalog file (--home)")
    return MetadataSchemaSource(sqlite_pointers(catalog_db, profile.catalog), read_local_file)


@dataclass(frozen=True)
class SchemaChanges:
    """The decision: which tables Snowflake must refresh (``changed``) or create (``new``)."""

    changed: tuple[str, ...] = ()
    new: tuple[str, ...] = ()
    unchanged: tuple[str, ...] = ()
    missing: tuple[str, ...] = ()

    @property
    def affected(self) -> tuple[str, ...]:
        return tuple(sorted((*self.changed, *self.new)))

    def as_dict(self) -> dict[str, list[str]]:
        return {
            "changed": list(self.changed),
            "new": list(self.new),
            "unchanged": list(self.unchanged),
            "missing": list(self.missing),
        }


def detect_schema_changes(observed: Mapping[str, str | None], refreshed: Mapping[str, str]) -> SchemaChanges:
    """Compare each table's current fingerprint with the one Snowflake was last refreshed for.

    Args:
        observed: table → current fingerprint (None: not in the catalog yet).
        refreshed: table → fingerprint at the last refresh (the state file).

    Returns:
        ``changed`` (fingerprint differs), ``new`` (never refreshed: Snowflake may not have
        the table), ``unchanged``, ``missing`` (not in the catalog: nothing to refresh yet).
    """
    changed, new, unchanged, missing = [], [], [], []
    for table in sorted(observed):
        current = observed[table]
        if current is None:
            missing.append(table)
        elif table not in refreshed:
            new.append(table)
        elif refreshed[table] != current:
            changed.append(table)
        else:
            unchanged.append(table)
    return SchemaChanges(tuple(changed), tuple(new), tuple(unchanged), tuple(missing))


def _denied(exc: Any) -> bool:
    """Whether a botocore ``ClientError`` is S3's 403 (AccessDenied)."""
    response = getattr(exc, "response", None) or {}
    code = str((response.get("Error") or {}).get("Code", ""))
    status = (response.get("ResponseMetadata") or {}).get("HTTPStatusCode")
    return code in ("AccessDenied", "403", "Forbidden") or status == 403


@dataclass
class RefreshStateStore:
    """The JSON state file: per table, the fingerprint Snowflake was last refreshed for.

    ``location`` is a local path or ``s3://bucket/key`` (then ``s3_client`` is used).
    Layout: ``{"version": 1, "tables": {"<table>": {"fingerprint", "refreshed_at", "how"}}}``.
    """

    location: str
    s3_client: Any = None
    _document: dict[str, Any] = field(default_factory=dict, init=False, repr=False)

    def _s3(self) -> tuple[Any, str, str]:
        parsed = urlparse(self.location)
        if self.s3_client is None:
            import boto3

            self.s3_client = boto3.client("s3")
        return self.s3_client, parsed.netloc, parsed.path.lstrip("/")

    def _read_s3(self) -> str | None:
        """The state file's text, or None when S3 confirms there is no such file.

        Without ``s3:ListBucket`` S3 answers GetObject on a missing key with 403 AccessDenied
        (not 404 NoSuchKey), which is also what a real denial looks like. So a 403 is never
        taken for "no state yet" on its own: the key is listed (the semantic job's policy
        allows exactly that prefix), and only a listing without it means the file is absent.
        """
        client, bucket, key = self._s3()
        try:
            return str(client.get_object(Bucket=bucket, Key=key)["Body"].read().decode())
        except client.exceptions.NoSuchKey:
            return None
        except client.exceptions.ClientError as exc:
            if not _denied(exc):
                raise GovernanceError(
                    f"{self.location}: cannot read the Snowflake refresh state: {exc}"
                ) from exc
            denied = exc
        try:
            listed = client.list_objects_v2(Bucket=bucket, Prefix=key, MaxKeys=1)
        except client.exceptions.ClientError as exc:
            raise GovernanceError(
                f"{self.location}: reading the Snowflake refresh state was denied ({denied}) and so was "
                f"listing it ({exc}); the reader needs s3:GetObject on it and s3:ListBucket on bucket "
                f"{bucket} for the prefix {key!r} (without ListBucket S3 answers a missing file with 403)"
            ) from exc
        if any(item.get("Key") == key for item in listed.get("Contents") or ()):
            raise GovernanceError(
                f"{self.location}: the Snowflake refresh state exists but reading it was denied: {denied}"
            ) from denied
        return None  # the 403 was S3 hiding a missing key: no refresh recorded yet

    def load(self) -> dict[str, str]:
        """``{table: fingerprint}``; empty when the file does not exist yet.

        Raises:
            GovernanceError: the file exists but is not a state document or cannot be read
                (a denied read of an existing file, or a denied read and listing, is an error,
                never an empty state).
        """
        try:
            if self.location.startswith("s3://"):
                found = self._read_s3()
                if found is None:
                    return {}
                text = found
            else:
                path = Path(self.location)
                if not path.is_file():
                    return {}
                text = path.read_text(encoding="utf-8")
            document = json.loads(text)
        except GovernanceError:
            raise
        except (OSError, ValueError) as exc:
            raise GovernanceError(f"{self.location}: cannot read the Snowflake refresh state: {exc}") from exc
        if not isinstance(document, dict) or document.get("version") != STATE_VERSION:
            raise GovernanceError(
                f"{self.location}: not a lean-ops Snowflake refresh state (version {STATE_VERSION})"
            )
        self._document = document
        return {t: str(v["fingerprint"]) for t, v in (document.get("tables") or {}).items()}

    def save(
        self, updates: Mapping[str, tuple[str, str]], *, now: datetime, keep: Iterable[str] = ()
    ) -> None:
        """Record ``{table: (fingerprint, how)}``; other tables keep their entry if listed in ``keep``.

        Raises:
            GovernanceError: the write failed.
        """
        previous = dict(self._document.get("tables") or {})
        tables = {t: previous[t] for t in keep if t in previous}
        stamp = now.strftime("%Y-%m-%dT%H:%M:%SZ")
        for table, (fingerprint, how) in updates.items():
            tables[table] = {"fingerprint": fingerprint, "refreshed_at": stamp, "how": how}
        document = {"version": STATE_VERSION, "tables": dict(sorted(tables.items()))}
        text = json.dumps(document, indent=2, sort_keys=True) + "\n"
        try:
            if self.location.startswith("s3://"):
                client, bucket, key = self._s3()
                client.put_object(Bucket=bucket, Key=key, Body=text.encode(), ContentType="application/json")
            else:
                path = Path(self.location)
                path.parent.mkdir(parents=True, exist_ok=True)
                tmp = path.with_suffix(path.suffix + ".tmp")
                tmp.write_text(text, encoding="utf-8")
                tmp.replace(path)
        except Exception as exc:
            raise GovernanceError(
                f"{self.location}: cannot write the Snowflake refresh state: {exc}"
            ) from exc
        self._document = document
