"""Snapshot lists of many tables, without a JVM: where GetAllCheckpoints gets its facts.

Two sources give the same :class:`TableSnapshots`:

* :class:`MetadataFileSource` (the Lambda's default) reads the catalog's pointer to each
  table's current ``metadata.json`` (one SQL query on the SQLite catalog, one
  ``GetTables`` per database on Glue) and parses the snapshot list that the Iceberg table
  spec puts in that file. It needs only the standard library (plus boto3 on AWS), so a
  fresh process answers for 50 topics well under a second.
* :class:`PyIcebergSource` loads each table through a PyIceberg catalog. Importing
  PyIceberg alone costs about a second on these machines, so it is the reference that the
  tests compare the fast source against, and the fallback for catalogs the fast source
  does not know.

Neither scans data: the snapshot summaries in the table metadata are enough.
"""

from __future__ import annotations

import gzip
import json
import sqlite3
from collections.abc import Callable, Mapping, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Protocol
from urllib.parse import unquote, urlparse

from lean_ops_spark.catalog.metadata import SnapshotRecord, TableSnapshots, parse_table_metadata
from lean_ops_spark.catalog.naming import TableRef
from lean_ops_spark.errors import CatalogError

__all__ = [
    "MetadataFileSource",
    "PyIcebergSource",
    "SnapshotSource",
    "TableSnapshots",
    "glue_pointers",
    "open_snapshot_source",
    "parse_table_metadata",
    "read_local_file",
    "s3_reader",
    "sqlite_pointers",
]

#: ``(tables) -> {identifier: metadata location or None when the table does not exist}``
PointerLookup = Callable[[Sequence[TableRef]], dict[str, str | None]]
#: ``(location) -> bytes of the file``
FileReader = Callable[[str], bytes]


class SnapshotSource(Protocol):
    """Anything that returns :class:`TableSnapshots` for a batch of tables."""

    def load(self, tables: Sequence[TableRef]) -> dict[str, TableSnapshots]:
        """``{table.identifier: TableSnapshots}`` for every requested table (missing ones too)."""
        ...


# --------------------------------------------------------------------------- the spec's metadata.json


def _decode(location: str, payload: bytes) -> Mapping[str, Any]:
    if payload[:2] == b"\x1f\x8b":  # *.gz.metadata.json (write.metadata.compression-codec=gzip)
        payload = gzip.decompress(payload)
    document = json.loads(payload)
    if not isinstance(document, Mapping):
        raise CatalogError(f"{location}: not an Iceberg table metadata document")
    return document


# --------------------------------------------------------------------------- catalog pointers


def sqlite_pointers(catalog_db: Path, catalog_name: str) -> PointerLookup:
    """Pointer lookup on the local SQLite catalog shared by Spark's JdbcCatalog and PyIceberg.

    One query reads every requested table's ``metadata_location`` from ``iceberg_tables``.
    """

    def lookup(tables: Sequence[TableRef]) -> dict[str, str | None]:
        if not catalog_db.is_file():
            raise CatalogError(f"no catalog at {catalog_db}: run `lean-ops init` first")
        namespaces = sorted({t.database for t in tables})
        found: dict[str, str] = {}
        if namespaces:
            # read-only URI: the Lambda/CLI never takes a write lock on a catalog Spark may be using
            with sqlite3.connect(f"{catalog_db.as_uri()}?mode=ro", uri=True) as connection:
                marks = ",".join("?" * len(namespaces))
                rows = connection.execute(
                    "SELECT table_namespace, table_name, metadata_location FROM iceberg_tables "
                    f"WHERE catalog_name = ? AND table_namespace IN ({marks})",
                    (catalog_name, *namespaces),
                ).fetchall()
            found = {f"{ns}.{name}": location for ns, name, location in rows}
        return {t.identifier: found.get(t.identifier) for t in tables}

    return lookup


def glue_pointers(glue_client: Any, catalog_id: str | None = None) -> PointerLookup:
    """Pointer lookup on the Glue Data Catalog: one paginated ``GetTables`` per database.

    GlueCatalog keeps the current metadata file in the table parameter ``metadata_location``.
    """

    def lookup(tables: Sequence[TableRef]) -> dict[str, str | None]:
        found: dict[str, str | None] = {}
        for database in sorted({t.database for t in tables}):
            kwargs: dict[str, Any] = {"DatabaseName": database}
            if catalog_id:
                kwargs["CatalogId"] = catalog_id
            try:
                for page in glue_client.get_paginator("get_tables").paginate(**kwargs):
                    for table in page.get("TableList", []):
                        params = table.get("Parameters") or {}
                        found[f"{database}.{table['Name']}"] = params.get("metadata_location")
            except glue_client.exceptions.EntityNotFoundException:
                continue  # database missing: every table in it is missing
        return {t.identifier: found.get(t.identifier) for t in tables}

    return lookup


# --------------------------------------------------------------------------- file readers


def read_local_file(location: str) -> bytes:
    """Read ``file:/...``, ``file:///...`` or a plain absolute path."""
    path = unquote(urlparse(location).path) if location.startswith("file:") else location
    return Path(path).read_bytes()


def s3_reader(s3_client: Any) -> FileReader:
    """Read ``s3://`` (and ``s3a://``/``s3n://``) locations with a boto3 S3 client."""

    def read(location: str) -> bytes:
        if location.startswith("file:") or location.startswith("/"):
            return read_local_file(location)
        parsed = urlparse(location)
        body: bytes = s3_client.get_object(Bucket=parsed.netloc, Key=parsed.path.lstrip("/"))["Body"].read()
        return body

    return read


@dataclass(frozen=True)
class MetadataFileSource:
    """Catalog pointer + the ``metadata.json`` it points to; files read in parallel."""

    pointers: PointerLookup
    read: FileReader = read_local_file
    max_workers: int = 16

    def load(self, tables: Sequence[TableRef]) -> dict[str, TableSnapshots]:
        locations = self.pointers(tables)

        def one(table: TableRef) -> TableSnapshots:
            location = locations.get(table.identifier)
            if not location:
                return TableSnapshots(table.identifier, exists=False)
            try:
                document = _decode(location, self.read(location))
            except (OSError, ValueError) as exc:
                raise CatalogError(
                    f"{table.identifier}: cannot read table metadata {location}: {exc}"
                ) from exc
            return parse_table_metadata(table.identifier, document, location)

        if len(tables) <= 2 or self.max_workers <= 1:
            results = [one(t) for t in tables]
        else:
            with ThreadPoolExecutor(max_workers=min(self.max_workers, len(tables))) as pool:
                results = list(pool.map(one, tables))
        return {r.identifier: r for r in results}


# --------------------------------------------------------------------------- PyIceberg


@dataclass
class PyIcebergSource:
    """Tables loaded one by one through a PyIceberg catalog (slow to import; the reference)."""

    catalog: Any
    _cache: dict[str, TableSnapshots] = field(default_factory=dict, init=False, repr=False)

    def load(self, tables: Sequence[TableRef]) -> dict[str, TableSnapshots]:
        from pyiceberg.exceptions import NoSuchNamespaceError, NoSuchTableError

        out: dict[str, TableSnapshots] = {}
        for table in tables:
            try:
                loaded = self.catalog.load_table(table.identifier)
            except (NoSuchTableError, NoSuchNamespaceError):
                out[table.identifier] = TableSnapshots(table.identifier, exists=False)
                continue
            metadata = loaded.metadata
            out[table.identifier] = TableSnapshots(
                identifier=table.identifier,
                exists=True,
                current_snapshot_id=metadata.current_snapshot_id,
                records=tuple(_pyiceberg_record(s) for s in metadata.snapshots),
                columns=tuple(f.name for f in loaded.schema().fields),
                metadata_location=loaded.metadata_location,
            )
        return out


def _pyiceberg_record(snapshot: Any) -> SnapshotRecord:
    summary = snapshot.summary
    properties: dict[str, str] = {}
    operation: str | None = None
    if summary is not None:
        operation = summary.operation.value
        properties = {
            "operation": operation,
            **{str(k): str(v) for k, v in summary.additional_properties.items()},
        }
    return SnapshotRecord(
        snapshot_id=snapshot.snapshot_id,
        parent_id=snapshot.parent_snapshot_id,
        summary=properties,
        committed_at_ms=snapshot.timestamp_ms,
        operation=operation,
    )


def open_snapshot_source(
    profile: Any,
    catalog_db: Path | None = None,
    *,
    kind: str = "metadata",
    clients: Mapping[str, Any] | None = None,
) -> SnapshotSource:
    """The snapshot source for a profile: local SQLite catalog or Glue Data Catalog.

    Args:
        profile: a :class:`~lean_ops_spark.config.models.Profile`.
        catalog_db: the local profile's SQLite catalog file.
        kind: ``metadata`` (fast, the default) or ``pyiceberg`` (reference).
        clients: boto3 clients by service name (``glue``, ``s3``); created when absent.

    Raises:
        CatalogError: an unknown kind, or the local profile without a catalog file.
    """
    if kind not in ("metadata", "pyiceberg"):
        raise CatalogError(f"unknown snapshot source {kind!r} (metadata or pyiceberg)")
    if kind == "pyiceberg":
        from lean_ops_spark.catalog.pyiceberg_catalog import open_pyiceberg_catalog
        from lean_ops_spark.session import LocalHome

        home = LocalHome(catalog_db.parent) if catalog_db is not None else None
        return PyIcebergSource(open_pyiceberg_catalog(profile, home))
    if profile.kind == "glue":
        given = dict(clients or {})
        if "glue" not in given or "s3" not in given:
            import boto3

            given.setdefault("glue", boto3.client("glue", region_name=profile.region))
            given.setdefault("s3", boto3.client("s3", region_name=profile.region))
        return MetadataFileSource(glue_pointers(given["glue"]), s3_reader(given["s3"]))
    if catalog_db is None:
        raise CatalogError(f"profile {profile.name!r} is local and needs its catalog file (--home)")
    return MetadataFileSource(sqlite_pointers(catalog_db, profile.catalog))
