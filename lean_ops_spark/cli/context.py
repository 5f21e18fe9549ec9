"""What every command shares: the common options, the loaded config, the session.

This is the edge of the program, so it is the one place that reads environment
variables (as defaults for the common options).
"""

from __future__ import annotations

import argparse
import os
import shlex
import sys
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

from lean_ops_spark.config import ProjectConfig, load_project
from lean_ops_spark.curation.job import positive_int as parse_positive_int
from lean_ops_spark.errors import CatalogError, RuntimeSetupError
from lean_ops_spark.runtime.jars import default_jars_dir, local_jar_paths
from lean_ops_spark.session import LocalHome, build_session

if TYPE_CHECKING:
    from pyspark.sql import SparkSession

    from lean_ops_spark.catalog.naming import TableRef

__all__ = ["CliContext", "add_common_options", "add_env_option", "positive_int"]

#: The commands that may start Spark on a local home that has no catalog yet (they create it).
CREATES_HOME = frozenset({"init", "demo"})


def positive_int(text: str) -> int:
    """argparse type of a count that must be at least 1 (``--max-snapshots``, ``--max-attempts``)."""
    try:
        return parse_positive_int(text)
    except ValueError as exc:
        raise argparse.ArgumentTypeError(str(exc)) from None


def add_env_option(parser: argparse.ArgumentParser) -> None:
    """``--env NAME`` (required): the AWS environment a governance command works on."""
    parser.add_argument(
        "--env", required=True, metavar="NAME", help="environment (conf/environments/<NAME>.yaml)"
    )


def add_common_options(parser: argparse.ArgumentParser, *, defaults: bool = True) -> None:
    """``--profile``, ``--conf``, ``--home``, ``--json`` (every command has them).

    The program's parser takes them with their ``defaults`` (so they may come before the
    command, ``lean-ops --home X curate``); each command's parser takes them without
    (``argparse.SUPPRESS``), so one given after the command wins and one not given there
    leaves the value from before the command.
    """

    def default(value: object) -> object:
        return value if defaults else argparse.SUPPRESS

    group = parser.add_argument_group("common options")
    group.add_argument(
        "--profile",
        default=default(os.environ.get("LEAN_OPS_PROFILE", "local")),
        help="runtime profile from <conf>/profiles/ (default: local, env LEAN_OPS_PROFILE)",
    )
    group.add_argument(
        "--conf",
        default=default(os.environ.get("LEAN_OPS_CONF", "conf")),
        help="config root: a folder or s3://bucket/prefix (default: ./conf, env LEAN_OPS_CONF)",
    )
    group.add_argument(
        "--home",
        default=default(os.environ.get("LEAN_OPS_HOME", ".lean-ops")),
        help="local profile's home: SQLite catalog + warehouse (default: ./.lean-ops, env LEAN_OPS_HOME)",
    )
    group.add_argument(
        "--json", action="store_true", default=default(False), help="print one JSON document on stdout"
    )


@dataclass
class CliContext:
    """Lazily loaded config and SparkSession for one command invocation."""

    args: argparse.Namespace
    _config: ProjectConfig | None = field(default=None, init=False)
    _spark: Any = field(default=None, init=False)
    _owns_spark: bool = field(default=False, init=False)
    #: What the command finished before it failed, added to the ``--json`` error document.
    partial_result: dict[str, Any] = field(default_factory=dict, init=False)

    @property
    def json(self) -> bool:
        return bool(self.args.json)

    @property
    def home(self) -> LocalHome:
        return LocalHome.at(self.args.home)

    @property
    def jars_dir(self) -> Path:
        env = os.environ.get("LEAN_OPS_JARS_DIR")
        return Path(env).expanduser() if env else default_jars_dir()

    @property
    def config(self) -> ProjectConfig:
        if self._config is None:
            self._config = load_project(
                self.args.conf,
                self.args.profile,
                iceberg_version=os.environ.get("LEAN_OPS_ICEBERG_VERSION") or None,
            )
        return self._config

    def progress(self, line: str) -> None:
        """Human progress on stderr (stdout stays clean for --json)."""
        print(line, file=sys.stderr, flush=True)

    def require_catalog(self) -> None:
        """Refuse a local home that was never initialised (as ``lean-ops tables`` does),
        instead of letting Spark create an empty catalog there and fail later on a missing table.

        Raises:
            RuntimeSetupError: the local profile's home has no ``catalog.db``.
        """
        home = self.home
        if self.config.profile.kind == "local" and not home.catalog_db.is_file():
            raise RuntimeSetupError(f"no catalog at {home.catalog_db}: run `{self.init_command()}` first")

    def init_command(self, topic: str | None = None) -> str:
        """The ``lean-ops init`` command line that creates what this invocation lacks: with
        ``--home`` when the home is not the default one (a plain ``init`` would create ./.lean-ops)."""
        words = ["lean-ops", "init"]
        if Path(self.args.home) != Path(".lean-ops"):
            words += ["--home", self.args.home]
        if topic is not None:
            words += ["--topics", topic]
        return shlex.join(words)

    def require_local_runtime(self) -> None:
        """A local run's home and jars, checked before any work (``pipeline`` starts Spark only
        when a topic has something to run, possibly after other topics finished).

        Raises:
            RuntimeSetupError: no ``catalog.db`` in the home, or a jar was never fetched.
        """
        self.require_catalog()
        if self.config.profile.kind == "local":
            local_jar_paths(self.jars_dir, self.config.profile.iceberg_version)

    @contextmanager
    def tables_required(self, topic: str, *tables: TableRef) -> Iterator[None]:
        """Turn Spark's error for a table that was never created (an unexpected
        ``AnalysisException``, exit 4) into one naming the missing tables and the ``init`` to run.

        Raises:
            CatalogError: the block failed on a missing table and one of ``tables`` does not exist.
        """
        try:
            yield
        except Exception as exc:
            text = str(exc)
            if "TABLE_OR_VIEW_NOT_FOUND" not in text and "NoSuchTable" not in text:
                raise
            spark = self.spark()
            missing = [t.sql for t in tables if not spark.catalog.tableExists(t.sql)]
            if not missing:
                raise
            raise CatalogError(
                f"table(s) missing: {', '.join(missing)}: run `{self.init_command(topic)}` first"
            ) from exc

    def spark(self) -> SparkSession:
        if self._spark is None:
            from pyspark.sql import SparkSession

            if self.args.command not in CREATES_HOME:
                self.require_catalog()

            os.environ.setdefault("PYSPARK_PYTHON", sys.executable)
            # Stop the session at exit only if this command started it (not in tests or on Glue).
            self._owns_spark = SparkSession.getActiveSession() is None
            self.progress(f"starting Spark ({self.config.profile.name} profile) ...")
            self._spark = build_session(
                self.config.profile,
                home=self.home,
                app_name=f"lean-ops {self.args.command}",
                jars_dir=self.jars_dir,
            )
        spark: SparkSession = self._spark
        return spark

    def close(self) -> None:
        if self._spark is not None and self._owns_spark and self.config.profile.kind == "local":
            self._spark.stop()
