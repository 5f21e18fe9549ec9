"""Snowflake SQL for reading the semantic tables through the Glue Data Catalog (pure text).

The statements Snowflake actually has (DESIGN.md §6, checked against the Snowflake docs):

* ``CREATE CATALOG INTEGRATION … CATALOG_SOURCE = GLUE …`` (the Glue Data Catalog API), or
  ``CATALOG_SOURCE = ICEBERG_REST`` with ``REST_CONFIG = (CATALOG_API_TYPE = AWS_GLUE …)``
  on the Glue Iceberg REST endpoint (which Snowflake recommends; it can vend credentials);
* ``CREATE ICEBERG TABLE t EXTERNAL_VOLUME = '…' CATALOG = '…' CATALOG_TABLE_NAME = '…'
  [CATALOG_NAMESPACE = '…'] [AUTO_REFRESH = TRUE|FALSE]`` per semantic table;
* ``ALTER ICEBERG TABLE t REFRESH`` — without a metadata path: with Glue as the catalog
  Snowflake reads the current metadata location from the catalog itself.

There is no ``CREATE EXTERNAL ICEBERG TABLE``, and ``CATALOG_SYNC`` publishes
*Snowflake-managed* tables to Snowflake Open Catalog; neither reads a Glue table. The
external volume is referenced, not created (``CREATE EXTERNAL VOLUME`` is an account
admin's one-time step). Identifiers are validated by the config and written unquoted
(Snowflake folds them to upper case), except Snowflake's reserved keywords (a semantic
model called ``order``), which :func:`sql_identifier` writes double-quoted *and upper
case* — the name an unquoted identifier resolves to — so every name resolves as before and
a reserved one is valid SQL. String values are quoted and escaped.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

from lean_ops_spark.config._reader import IDENTIFIER_PATTERN
from lean_ops_spark.config.environment import Environment
from lean_ops_spark.config.models import Profile
from lean_ops_spark.governance.config import GovernanceConfig, SnowflakeSettings
from lean_ops_spark.governance.errors import SnowflakeError

__all__ = [
    "SNOWFLAKE_RESERVED_KEYWORDS",
    "SnowflakeStatement",
    "SnowflakeTarget",
    "catalog_integration_sql",
    "create_table_sql",
    "ddl_statements",
    "refresh_table_sql",
    "render_script",
    "sql_identifier",
    "sql_string",
]

#: Snowflake's reserved and limited keywords (docs.snowflake.com/en/sql-reference/reserved-keywords),
#: plus ASC, DESC and LIMIT, which its introduction also names. Quoting one more word than needed
#: costs nothing: ``"NAME"`` is the same object as unquoted ``name``.
SNOWFLAKE_RESERVED_KEYWORDS = frozenset(
    """
    ACCOUNT ALL ALTER AND ANY AS ASC BETWEEN BY CASE CAST CHECK COLUMN CONNECT CONNECTION
    CONSTRAINT CREATE CROSS CURRENT CURRENT_DATE CURRENT_TIME CURRENT_TIMESTAMP CURRENT_USER
    DATABASE DELETE DESC DISTINCT DROP ELSE EXISTS FALSE FOLLOWING FOR FROM FULL GRANT GROUP
    GSCLUSTER HAVING ILIKE IN INCREMENT INNER INSERT INTERSECT INTO IS ISSUE JOIN LATERAL
    LEFT LIKE LIMIT LOCALTIME LOCALTIMESTAMP MINUS NATURAL NOT NULL OF ON OR ORDER
    ORGANIZATION QUALIFY REGEXP REVOKE RIGHT RLIKE ROW ROWS SAMPLE SCHEMA SELECT SET SOME
    START TABLE TABLESAMPLE THEN TO TRIGGER TRUE TRY_CAST UNION UNIQUE UPDATE USING VALUES
    VIEW WHEN WHENEVER WHERE WINDOW WITH
    """.split()  # noqa: SIM905 - a keyword table, read like the docs page
)


def sql_string(value: str) -> str:
    """A Snowflake single-quoted string literal (``'`` doubled, ``\\`` escaped)."""
    return "'" + value.replace("\\", "\\\\").replace("'", "''") + "'"


def sql_identifier(name: str) -> str:
    """An identifier the config validated (``[A-Za-z_][A-Za-z0-9_$]*``) as Snowflake SQL.

    Unquoted, Snowflake resolves ``name`` as ``NAME``; a reserved keyword cannot be written
    unquoted, so it becomes ``"NAME"`` — the same object an unquoted name would be (not
    ``"name"``, which is case-sensitive and would be another object).
    """
    folded = name.upper()
    return f'"{folded}"' if folded in SNOWFLAKE_RESERVED_KEYWORDS else name


@dataclass(frozen=True)
class SnowflakeTarget:
    """Everything the SQL needs: the Snowflake settings and the AWS side they point at."""

    settings: SnowflakeSettings
    environment: str
    account_id: str
    region: str
    semantic_database: str

    @classmethod
    def of(cls, governance: GovernanceConfig, env: Environment, profile: Profile) -> SnowflakeTarget:
        """Raises SnowflakeError when the governance file has no ``snowflake:`` section."""
        if governance.snowflake is None:
            raise SnowflakeError(f"{governance.source}: no snowflake: section")
        return cls(governance.snowflake, env.name, env.account_id, env.region, profile.databases.semantic)

    @property
    def catalog_id(self) -> str:
        return self.settings.catalog_integration.catalog_id or self.account_id

    @property
    def glue_region(self) -> str:
        return self.settings.catalog_integration.region or self.region

    @property
    def namespace(self) -> str:
        return self.settings.catalog_integration.namespace or self.semantic_database

    def table_name(self, semantic_table: str) -> str:
        """``DATABASE.SCHEMA.TABLE`` of a semantic table in Snowflake (reserved words quoted)."""
        s = self.settings
        return ".".join(sql_identifier(part) for part in (s.database, s.schema, s.table_name(semantic_table)))

    def semantic_table(self, name: str) -> str:
        """``name`` or ``<semantic_db>.name`` → ``name``.

        Raises:
            SnowflakeError: the name is in another database or not an identifier.
        """
        database, _, table = name.rpartition(".")
        if database and database != self.semantic_database:
            raise SnowflakeError(
                f"{name!r} is not a table of the semantic database {self.semantic_database!r}"
            )
        if not IDENTIFIER_PATTERN.fullmatch(table):  # it is written into SQL (sql_identifier)
            raise SnowflakeError(f"{name!r} is not a valid semantic table name")
        return table


@dataclass(frozen=True)
class SnowflakeStatement:
    """One statement (no trailing semicolon); ``table`` is the semantic table it is about."""

    kind: str  # catalog_integration | create_table | refresh
    sql: str
    table: str | None = None

    def as_dict(self) -> dict[str, str | None]:
        return {"kind": self.kind, "table": self.table, "sql": self.sql}


def _glue_rest_endpoint(region: str) -> str:
    suffix = "amazonaws.com.cn" if region.startswith("cn-") else "amazonaws.com"
    return f"https://glue.{region}.{suffix}/iceberg"


def catalog_integration_sql(target: SnowflakeTarget) -> str:
    """``CREATE CATALOG INTEGRATION IF NOT EXISTS`` for the Glue catalog or its Iceberg REST endpoint."""
    integration = target.settings.catalog_integration
    lines = [f"CREATE CATALOG INTEGRATION IF NOT EXISTS {sql_identifier(integration.name)}"]
    if integration.kind == "glue":
        lines += [
            "  CATALOG_SOURCE = GLUE",
            "  TABLE_FORMAT = ICEBERG",
            f"  GLUE_AWS_ROLE_ARN = {sql_string(integration.role_arn)}",
            f"  GLUE_CATALOG_ID = {sql_string(target.catalog_id)}",
            f"  GLUE_REGION = {sql_string(target.glue_region)}",
            f"  CATALOG_NAMESPACE = {sql_string(target.namespace)}",
        ]
    else:
        mode = (
            "VENDED_CREDENTIALS"
            if integration.access_delegation == "vended_credentials"
            else "EXTERNAL_VOLUME_CREDENTIALS"
        )
        lines += [
            "  CATALOG_SOURCE = ICEBERG_REST",
            "  TABLE_FORMAT = ICEBERG",
            f"  CATALOG_NAMESPACE = {sql_string(target.namespace)}",
            "  REST_CONFIG = (",
            f"    CATALOG_URI = {sql_string(_glue_rest_endpoint(target.glue_region))}",
            "    CATALOG_API_TYPE = AWS_GLUE",
            f"    CATALOG_NAME = {sql_string(target.catalog_id)}",
            f"    ACCESS_DELEGATION_MODE = {mode}",
            "  )",
            "  REST_AUTHENTICATION = (",
            "    TYPE = SIGV4",
            f"    SIGV4_IAM_ROLE = {sql_string(integration.role_arn)}",
            f"    SIGV4_SIGNING_REGION = {sql_string(target.glue_region)}",
            "  )",
        ]
    lines.append("  ENABLED = TRUE")
    if integration.refresh_interval_seconds is not None:
        lines.append(f"  REFRESH_INTERVAL_SECONDS = {integration.refresh_interval_seconds}")
    return "\n".join(lines)


def create_table_sql(target: SnowflakeTarget, semantic_table: str) -> str:
    """``CREATE ICEBERG TABLE IF NOT EXISTS … CATALOG_TABLE_NAME = '<table>'`` for one semantic table."""
    settings = target.settings
    table = target.semantic_table(semantic_table)
    lines = [f"CREATE ICEBERG TABLE IF NOT EXISTS {target.table_name(table)}"]
    if settings.external_volume is not None:
        lines.append(f"  EXTERNAL_VOLUME = {sql_string(settings.external_volume)}")
    lines += [
        f"  CATALOG = {sql_string(settings.catalog_integration.name)}",
        f"  CATALOG_TABLE_NAME = {sql_string(table)}",
        f"  CATALOG_NAMESPACE = {sql_string(target.namespace)}",
    ]
    if settings.replace_invalid_characters is not None:
        lines.append(f"  REPLACE_INVALID_CHARACTERS = {str(settings.replace_invalid_characters).upper()}")
    lines.append(f"  AUTO_REFRESH = {str(settings.auto_refresh_for(table)).upper()}")
    return "\n".join(lines)


def refresh_table_sql(target: SnowflakeTarget, semantic_table: str) -> str:
    """``ALTER ICEBERG TABLE <t> REFRESH`` (no metadata path: Glue is the catalog)."""
    return f"ALTER ICEBERG TABLE {target.table_name(target.semantic_table(semantic_table))} REFRESH"


def ddl_statements(target: SnowflakeTarget, semantic_tables: Sequence[str]) -> tuple[SnowflakeStatement, ...]:
    """The catalog integration (unless ``create: false``) and one table per semantic table.

    Raises:
        SnowflakeError: ``snowflake.tables`` overrides a table that is not a semantic table.
    """
    unknown = sorted(set(target.settings.tables) - set(semantic_tables))
    if unknown:
        raise SnowflakeError(
            f"snowflake.tables: {', '.join(unknown)} not among the semantic tables "
            f"({', '.join(semantic_tables) or 'none found'})"
        )
    out = []
    if target.settings.catalog_integration.create:
        out.append(SnowflakeStatement("catalog_integration", catalog_integration_sql(target)))
    out += [SnowflakeStatement("create_table", create_table_sql(target, t), t) for t in semantic_tables]
    return tuple(out)


def render_script(statements: Sequence[SnowflakeStatement], header: Sequence[str] = ()) -> str:
    """Statements as one SQL script: ``--`` header lines, then each statement and ``;``."""
    parts = ["\n".join(f"-- {line}".rstrip() for line in header)] if header else []
    parts += [f"{s.sql};" for s in statements]
    return "\n\n".join(parts) + "\n"
