"""Run a table's suite on demand (``lean-ops dq --table <layer>.<table>``)."""

from __future__ import annotations

from typing import TYPE_CHECKING

from lean_ops_spark.catalog.naming import TableRef
from lean_ops_spark.config._reader import check_identifier
from lean_ops_spark.config.models import ProjectConfig
from lean_ops_spark.config.sources import ConfigSource, open_config_source
from lean_ops_spark.errors import CatalogError, ConfigError
from lean_ops_spark.quality.results import DQResult
from lean_ops_spark.quality.suites import QUALITY_LAYERS, find_suite

if TYPE_CHECKING:
    from pyspark.sql import SparkSession

__all__ = ["check_table", "parse_table_name"]


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


def check_table(
    spark: SparkSession,
    config: ProjectConfig,
    name: str,
    *,
    branch: str | None = None,
    source: ConfigSource | None = None,
) -> DQResult:
    """Validate table ``<layer>.<table>`` (its main, or ``branch``) with its suite.

    Raises:
        ConfigError: no suite for the table, or an invalid suite file.
        CatalogError: the table or branch does not exist.
    """
    table = parse_table_name(config, name)
    src = source or open_config_source(config.root or "conf")
    suite = find_suite(src, table.layer, table.name)
    if suite is None:
        raise ConfigError(f"no data-quality suite for {name} under {src.describe(f'quality/{table.layer}')}")
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
