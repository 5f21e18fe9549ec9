"""Run a table's suite on demand (``lean-ops dq --table <layer>.<table>``)."""

from __future__ import annotations

from pathlib import PurePosixPath
from typing import TYPE_CHECKING

from lean_ops_spark.catalog.naming import TableRef
from lean_ops_spark.config._reader import check_identifier
from lean_ops_spark.config.models import ProjectConfig
from lean_ops_spark.config.sources import ConfigSource, open_config_source
from lean_ops_spark.errors import CatalogError, ConfigError
from lean_ops_spark.quality.results import DQResult
from lean_ops_spark.quality.suites import QUALITY_LAYERS, QualitySuite, find_suite

if TYPE_CHECKING:
    from pyspark.sql import SparkSession

__all__ = ["check_table", "parse_table_name", "table_suite"]


def parse_table_name(config: ProjectConfig, name: str) -> TableRef:
    """``semantic.orders`` / ``curated.orders`` -> the table in the profile's databases.

    Raises:
        ConfigError: not ``<layer>.<table>`` with a known layer.
    """
    layer, _, table = name.partition(".")
    if layer not in QUALITY_LAYERS or not table:
        raise ConfigError(
            f"--table {name!r}: expected <layer>.<table> with layer one of {', '.join(QUALITY_LAYERS)} "
            "(e.g. semantic.orders)"
        )
    databases = config.profile.databases
    database = databases.semantic if layer == "semantic" else databases.curated
    return TableRef(config.profile.catalog, database, check_identifier(table, "--table"), layer)


def _expected_suite_file(source: ConfigSource, config: ProjectConfig, table: TableRef) -> str | None:
    """Where the suite of ``table`` belongs: ``quality/<layer>/<topic>.yaml`` of the topic
    whose curated table or semantic model it is; None for a table of no configured topic."""
    if table.layer == "curated":
        return f"quality/curated/{table.name}.yaml" if table.name in config.topics else None
    from lean_ops_spark.semantic.tables import model_tables

    for topic in sorted(config.topics):
        try:
            models = model_tables(source, config.profile, topic)
        except ConfigError:  # a broken model file is validate's to report, not this lookup's
            continue
        if any(model.name == table.name for model in models):
            return f"quality/semantic/{topic}.yaml"
    return None


def table_suite(config: ProjectConfig, name: str, *, source: ConfigSource | None = None) -> QualitySuite:
    """The suite of table ``<layer>.<table>``, from config only (no Spark): a table without
    one is refused before any session starts.

    Raises:
        ConfigError: a bad name, no suite for the table (naming the suite file looked for),
            or an invalid suite file.
    """
    table = parse_table_name(config, name)
    src = source or open_config_source(config.root or "conf")
    suite = find_suite(src, table.layer, table.name)
    if suite is not None:
        return suite
    folder = f"quality/{table.layer}"
    expected = _expected_suite_file(src, config, table)
    if expected is None:
        owner = "the curated table" if table.layer == "curated" else "a semantic model"
        topics = ", ".join(sorted(config.topics)) or "none"
        files = ", ".join(PurePosixPath(f).name for f in src.list_yaml(folder)) or "no files"
        problem = (
            f"{table.name!r} is not {owner} of a configured topic ({topics}), and no suite file under "
            f"{src.describe(folder)} ({files}) has a suite for it"
        )
    elif src.read_text(expected) is None:
        problem = (
            f"{src.describe(expected)} does not exist (a suite file: `topic: {PurePosixPath(expected).stem}` "
            f"and `tables: {{{table.name}: [<expectations>]}}`; see conf/quality/README.md)"
        )
    else:
        problem = f"{src.describe(expected)} has no suite for table {table.name!r} under `tables:`"
    raise ConfigError(f"no data-quality suite for {name}: {problem}")


def check_table(
    spark: SparkSession,
    config: ProjectConfig,
    name: str,
    *,
    branch: str | None = None,
    source: ConfigSource | None = None,
    suite: QualitySuite | None = None,
) -> DQResult:
    """Validate table ``<layer>.<table>`` (its main, or ``branch``) with its suite.

    Args:
        suite: the table's suite when the caller already has it (:func:`table_suite`, looked
            up before Spark started); otherwise it is looked up here.

    Raises:
        ConfigError: no suite for the table, or an invalid suite file.
        CatalogError: the table or branch does not exist.
    """
    table = parse_table_name(config, name)
    if suite is None:
        suite = table_suite(config, name, source=source)
    from lean_ops_spark.quality.runner import run_suite

    try:
        spark.sql(f"REFRESH TABLE {table.sql}")
        reader = spark.read.format("iceberg")
        if branch:
            reader = reader.option("branch", check_identifier(branch, "--branch"))
        df = reader.load(table.sql)
        df.schema  # noqa: B018 - resolve now: a missing table or branch is a CatalogError, not a GE error
    except ConfigError:
        raise
    except Exception as exc:
        raise CatalogError(f"cannot read {table.sql}{f' branch {branch}' if branch else ''}: {exc}") from exc
    return run_suite(df, suite, table=f"{table.sql}@{branch}" if branch else table.sql)
