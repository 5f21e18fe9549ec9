"""The one SparkSession builder, for the ``local`` and ``glue`` profiles.

Only ``jobs/``, the CLI and ``tests/conftest.py`` call it; library functions take the
session as a parameter. The catalog name comes from the profile and is the same in every
profile, so SQL text never changes between a laptop and Glue.
"""

from __future__ import annotations

import functools
import threading
from collections.abc import Callable, Iterator
from contextlib import closing, contextmanager
from dataclasses import dataclass
from pathlib import Path
from types import MappingProxyType
from typing import TYPE_CHECKING, Concatenate, ParamSpec, TypeVar

from lean_ops_spark.config.models import Profile
from lean_ops_spark.errors import RuntimeSetupError
from lean_ops_spark.runtime.jars import default_jars_dir, local_jar_paths

if TYPE_CHECKING:
    from pyspark.sql import DataFrame, SparkSession

__all__ = [
    "ICEBERG_EXTENSIONS",
    "LocalHome",
    "build_session",
    "catalog_conf",
    "lenient_casts",
    "local_session_conf",
    "pin",
    "release",
    "session_conf",
]

ICEBERG_EXTENSIONS = "org.apache.iceberg.spark.extensions.IcebergSparkSessionExtensions"

_P = ParamSpec("_P")
_R = TypeVar("_R")


@dataclass(frozen=True)
class LocalHome:
    """The embedded default's files: ``<root>/catalog.db`` and ``<root>/warehouse/``."""

    root: Path

    @classmethod
    def at(cls, root: str | Path) -> LocalHome:
        return cls(Path(root).expanduser().resolve())

    @property
    def catalog_db(self) -> Path:
        return self.root / "catalog.db"

    @property
    def warehouse(self) -> Path:
        return self.root / "warehouse"

    @property
    def catalog_uri(self) -> str:
        """JDBC URI for Spark's JdbcCatalog."""
        return f"jdbc:sqlite:{self.catalog_db}"

    @property
    def sqlalchemy_uri(self) -> str:
        """SQLAlchemy URI for PyIceberg's SqlCatalog (same file, same tables)."""
        return f"sqlite:///{self.catalog_db}"

    @property
    def warehouse_uri(self) -> str:
        return self.warehouse.as_uri()

    def ensure(self) -> None:
        """Create the folders, and the catalog file in SQLite's WAL mode.

        Spark clones sessions internally (e.g. to build cached plans), and each clone opens
        its own catalog connection; in SQLite's default rollback-journal mode a read left
        open on one connection makes another's commit fail with SQLITE_BUSY. WAL mode lets
        readers and the one writer proceed together; the setting is stored in the file.
        """
        import sqlite3

        self.warehouse.mkdir(parents=True, exist_ok=True)
        with closing(sqlite3.connect(self.catalog_db)) as connection:
            connection.execute("PRAGMA journal_mode=WAL")


def catalog_conf(profile: Profile, home: LocalHome | None = None) -> dict[str, str]:
    """Spark catalog settings for ``profile`` (runtime-settable; no static confs).

    Raises:
        RuntimeSetupError: the local profile without a home.
    """
    prefix = f"spark.sql.catalog.{profile.catalog}"
    conf = {prefix: "org.apache.iceberg.spark.SparkCatalog"}
    if profile.kind == "glue":
        assert profile.warehouse is not None  # validated by the loader
        conf.update(
            {
                f"{prefix}.catalog-impl": "org.apache.iceberg.aws.glue.GlueCatalog",
                f"{prefix}.io-impl": "org.apache.iceberg.aws.s3.S3FileIO",
                f"{prefix}.warehouse": profile.warehouse,
            }
        )
        if profile.region:
            conf[f"{prefix}.client.region"] = profile.region
        return conf
    if home is None:
        raise RuntimeSetupError(f"profile {profile.name!r} is local and needs a home folder (--home)")
    conf.update(
        {
            f"{prefix}.type": "jdbc",
            f"{prefix}.uri": home.catalog_uri,
            f"{prefix}.warehouse": home.warehouse_uri,
            # V1 adds view support and matches what PyIceberg >= 0.12 writes.
            f"{prefix}.jdbc.schema-version": "V1",
            # The SQLite driver waits for a lock held by another connection or process
            # (e.g. PyIceberg) instead of failing at once; see LocalHome.ensure for WAL.
            f"{prefix}.jdbc.busy_timeout": "30000",
        }
    )
    return conf


def local_session_conf(profile: Profile, home: LocalHome, jars: list[Path]) -> dict[str, str]:
    """Every Spark setting of a local session (pure: unit-tested without Spark)."""
    conf = {
        "spark.master": profile.spark.master,
        "spark.jars": ",".join(str(j) for j in jars),
        "spark.sql.extensions": ICEBERG_EXTENSIONS,
        "spark.sql.session.timeZone": "UTC",
        "spark.sql.shuffle.partitions": str(profile.spark.shuffle_partitions),
        "spark.default.parallelism": str(profile.spark.shuffle_partitions),
        "spark.driver.memory": profile.spark.driver_memory,
        "spark.sql.adaptive.enabled": "true",
        "spark.ui.showConsoleProgress": "false",
        # A long-lived driver (the local runner, a backlog drained in one session) reuses
        # the classes Spark generated for earlier runs. With the default 100 entries, curation
        # runs alternating with other jobs evict them: measured 18 classes compiled again per
        # warm 105k-record run (4 with 1,000 entries, those holding per-run literals).
        "spark.sql.codegen.cache.maxEntries": "1000",
        # Iceberg tables only: keep Hive out of the laptop profile.
        "spark.sql.catalogImplementation": "in-memory",
        "spark.sql.defaultCatalog": profile.catalog,
    }
    conf.update(catalog_conf(profile, home))
    conf.update(profile.spark.conf)
    return conf


def build_session(
    profile: Profile,
    *,
    home: LocalHome | None = None,
    app_name: str = "lean-ops",
    jars_dir: Path | None = None,
    extra_conf: dict[str, str] | None = None,
) -> SparkSession:
    """Create (local) or adopt (glue) the SparkSession for ``profile``.

    Local: starts ``local[*]`` Spark with the cached Iceberg/SQLite jars, the Iceberg SQL
    extensions and the JDBC catalog on ``home``. Glue: takes the running session, whose
    static confs came from the job parameters, checks the Iceberg extensions are there and
    sets the catalog settings.

    Raises:
        RuntimeSetupError: missing jars (local) or missing Iceberg extensions (glue).
    """
    from pyspark.sql import SparkSession

    if profile.kind == "glue":
        spark = SparkSession.builder.appName(app_name).getOrCreate()
        extensions = spark.conf.get("spark.sql.extensions", "") or ""
        if ICEBERG_EXTENSIONS not in extensions:
            raise RuntimeSetupError(
                "the Spark session has no Iceberg SQL extensions: start the Glue job with "
                "--datalake-formats iceberg and --conf spark.sql.extensions=" + ICEBERG_EXTENSIONS
            )
        for key, value in {**catalog_conf(profile), **(extra_conf or {})}.items():
            spark.conf.set(key, value)
        spark.conf.set("spark.sql.session.timeZone", "UTC")
        return spark

    if home is None:
        raise RuntimeSetupError("the local profile needs a home folder (--home)")
    home.ensure()
    jars = local_jar_paths(jars_dir or default_jars_dir(), profile.iceberg_version)
    builder = SparkSession.builder.appName(app_name)
    for key, value in {**local_session_conf(profile, home, jars), **(extra_conf or {})}.items():
        builder = builder.config(key, value)
    spark = builder.getOrCreate()
    spark.sparkContext.setLogLevel("WARN")
    _quiet_local_loggers(spark)
    return spark


#: Loggers whose warnings a local run does not need, with the level they get instead. Iceberg's
#: ``Tasks`` logs every retried commit with its whole stack trace (two concurrent commits to one
#: table in one process, e.g. a compaction's partial-progress commits beside another commit:
#: retried and committed); a retry that gives up still fails its call with the exception.
#: Spark's ``SparkStringUtils`` says once that a wide plan's text was truncated.
QUIET_LOCAL_LOGGERS = MappingProxyType(
    {
        "org.apache.iceberg.util.Tasks": "ERROR",
        "org.apache.spark.sql.catalyst.util.SparkStringUtils": "ERROR",
    }
)


def _quiet_local_loggers(spark: SparkSession) -> None:
    """Set :data:`QUIET_LOCAL_LOGGERS` in the local JVM's log4j (Glue keeps its own logging)."""
    jvm = spark.sparkContext._jvm
    assert jvm is not None
    for logger, level in QUIET_LOCAL_LOGGERS.items():
        jvm.org.apache.logging.log4j.core.config.Configurator.setLevel(
            logger, jvm.org.apache.logging.log4j.Level.toLevel(level)
        )


#: Blocks of :func:`session_conf` open per (session, key), in the order they opened (each with
#: the value it sets), and the value before the first of them.
_OPEN_CONFS: dict[tuple[int, str], tuple[list[tuple[object, str]], str | None]] = {}
_OPEN_CONFS_LOCK = threading.Lock()


@contextmanager
def session_conf(spark: SparkSession, key: str, value: str) -> Iterator[None]:
    """Set a runtime SQL conf inside the block and always restore the previous value (the
    session is shared: tests, the local pipeline, a Glue job running several steps).

    Blocks may nest and may overlap in threads of one session: when one closes, the conf
    takes the value of the latest block still open, and the value from before the first
    block once none is (restoring what each block saw on entry would leave a conf set for
    good, or unset it under a block still running, when two threads' blocks overlap).
    """
    slot, token = (id(spark._jsparkSession), key), object()
    with _OPEN_CONFS_LOCK:
        blocks, previous = _OPEN_CONFS.get(slot) or ([], spark.conf.get(key, None))
        blocks.append((token, value))
        _OPEN_CONFS[slot] = (blocks, previous)
        spark.conf.set(key, value)
    try:
        yield
    finally:
        with _OPEN_CONFS_LOCK:
            blocks, previous = _OPEN_CONFS[slot]
            blocks[:] = [b for b in blocks if b[0] is not token]
            if blocks:
                spark.conf.set(key, blocks[-1][1])
            else:
                del _OPEN_CONFS[slot]
                if previous is None:
                    spark.conf.unset(key)
                else:
                    spark.conf.set(key, previous)


def lenient_casts(
    fn: Callable[Concatenate[SparkSession, _P], _R],
) -> Callable[Concatenate[SparkSession, _P], _R]:
    """Run ``fn(spark, ...)`` with Spark's ANSI mode off (``spark.sql.ansi.enabled``), restored
    afterwards. The parse and classification read a value that does not cast, a missing map
    key or an unparsable timestamp as null and classify the record (quarantine, rescue); with
    ANSI on, the first such value fails the whole run (Glue lets a job turn it on with
    ``--conf``). Spark fixes a cast's mode when the query is built, so the whole call runs
    inside."""

    @functools.wraps(fn)
    def wrapper(spark: SparkSession, /, *args: _P.args, **kwargs: _P.kwargs) -> _R:
        with session_conf(spark, "spark.sql.ansi.enabled", "false"):
            return fn(spark, *args, **kwargs)

    return wrapper


def pin(df: DataFrame) -> DataFrame:
    """``df`` stored on the executors by the first job that reads it, behind a one-node plan.

    A lazy local checkpoint: that first job computes ``df`` and keeps its rows (memory,
    spilling to disk); every later query reads them. Unlike ``persist()``, the result's plan
    is one node instead of ``df``'s lineage, so a batch parsed by a large expression tree is
    not analysed, optimised and matched against the cache again by every query built on it,
    and its rows are stored as they are instead of being encoded into columns. In a 105k-record
    curation run that saved ~4.5 s of ~26 (an interleaved A/B: README, Performance).

    The price: a block lost with its executor is not recomputed, the query reading it fails
    (pin only what a job may re-run from the start, as curation may). Free with :func:`release`.
    """
    return df.localCheckpoint(eager=False)


def release(df: DataFrame) -> None:
    """Free what :func:`pin` (or ``persist()``) stored for ``df``; a second call does nothing."""
    df.unpersist()
    plan = df._jdf.queryExecution().logical()
    if plan.getClass().getName() == "org.apache.spark.sql.execution.LogicalRDD":
        plan.rdd().unpersist(False)
