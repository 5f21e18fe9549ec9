"""JVM-free catalog access through PyIceberg (the ``lambda`` extra).

The local profile opens PyIceberg's ``SqlCatalog`` on the same SQLite file as Spark's
JDBC catalog, under the same catalog name, so both see the same tables. The glue profile
opens PyIceberg's Glue catalog.
"""

from __future__ import annotations

from typing import Any

from lean_ops_spark.config.models import Profile
from lean_ops_spark.errors import RuntimeSetupError
from lean_ops_spark.session import LocalHome

__all__ = ["open_pyiceberg_catalog"]


def open_pyiceberg_catalog(profile: Profile, home: LocalHome | None = None, **overrides: str) -> Any:
    """A PyIceberg ``Catalog`` for ``profile``.

    Args:
        profile: local (SQLite file under ``home``) or glue.
        home: the local home; required for the local profile.
        overrides: extra catalog properties (e.g. ``glue.endpoint`` in tests).

    Raises:
        RuntimeSetupError: PyIceberg is not installed or the local home is missing.
    """
    try:
        from pyiceberg.catalog import load_catalog
    except ImportError as exc:
        raise RuntimeSetupError("PyIceberg is not installed: pip install 'lean-ops-spark[lambda]'") from exc
    if profile.kind == "glue":
        props = {"type": "glue", "warehouse": profile.warehouse or ""}
        if profile.region:
            props["glue.region"] = profile.region
            props["s3.region"] = profile.region
        return load_catalog(profile.catalog, **{**props, **overrides})
    if home is None:
        raise RuntimeSetupError(f"profile {profile.name!r} is local and needs a home folder (--home)")
    if not home.catalog_db.is_file():
        raise RuntimeSetupError(f"no catalog at {home.catalog_db}: run `lean-ops init` first")
    from pyiceberg.catalog.sql import SqlCatalog

    return SqlCatalog(
        profile.catalog,
        **{"uri": home.sqlalchemy_uri, "warehouse": home.warehouse_uri, **overrides},
    )
