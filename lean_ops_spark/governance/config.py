"""``conf/governance/<env>.yaml`` → a frozen :class:`GovernanceConfig`.

Who may read what (Lake Formation grants per principal and layer) and how Snowflake reads
the semantic tables. Encryption (KMS, Glue security configuration) and the VPC are
deployment settings and live in ``conf/environments/<env>.yaml`` instead, because
``lean-ops deploy`` applies them. Parsing is strict like the rest of ``config/``: unknown
keys are refused and every message names the file and key. Secrets are never accepted:
the Snowflake connection names environment variables or a Secrets Manager secret.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from types import MappingProxyType
from typing import Any

import yaml

from lean_ops_spark.config._reader import MappingReader, check_identifier
from lean_ops_spark.config.environment import ARN, Environment
from lean_ops_spark.config.sources import ConfigSource, open_config_source, read_named_file
from lean_ops_spark.errors import ConfigError

__all__ = [
    "BUILTIN_PRINCIPALS",
    "DATABASE_PERMISSIONS",
    "LAYERS",
    "TABLE_PERMISSIONS",
    "CatalogIntegrationSettings",
    "GovernanceConfig",
    "LakeFormationSettings",
    "LayerGrant",
    "SnowflakeConnectionSettings",
    "SnowflakeSettings",
    "SnowflakeTableSettings",
    "load_governance",
    "parse_governance",
    "resolve_principals",
]

#: Layers a grant can name; ``quarantine`` tables live in the curated database.
LAYERS = ("raw", "curated", "quarantine", "semantic")
#: Lake Formation permissions on a table (``DATA_LOCATION_ACCESS`` is the ``data_location`` flag).
TABLE_PERMISSIONS = ("ALL", "SELECT", "ALTER", "DROP", "DELETE", "INSERT", "DESCRIBE")
#: Lake Formation permissions on a database.
DATABASE_PERMISSIONS = ("ALL", "ALTER", "DROP", "DESCRIBE", "CREATE_TABLE")
#: Principal names that resolve from the environment (or the Snowflake catalog integration).
BUILTIN_PRINCIPALS = (
    "curation_job",
    "semantic_job",
    "maintenance_job",
    "lambda",
    "state_machine",
    "snowflake",
)
#: Snowflake identifiers we write unquoted (Snowflake folds them to upper case; a reserved
#: keyword is written double-quoted and upper case: governance.snowflake.sql_identifier).
SNOWFLAKE_IDENTIFIER = re.compile(r"^[A-Za-z_][A-Za-z0-9_$]{0,254}$")
SNOWFLAKE_ACCOUNT = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._-]{0,254}$")
ENV_VAR = re.compile(r"^[A-Z_][A-Z0-9_]{0,127}$")
SECRET_ID = re.compile(
    r"^(arn:aws[a-z-]*:secretsmanager:[a-z0-9-]+:\d{12}:secret:)?[A-Za-z0-9/_+=.@-]{1,512}$"
)
ACCOUNT_ID = re.compile(r"^\d{12}$")
REGION = re.compile(r"^[a-z]{2}(-[a-z]+)+-\d$")
#: Keys that would hold a secret: refused with a message saying what to use instead.
_SECRET_KEYS = ("password", "private_key", "private_key_password", "token", "secret", "passphrase")
CATALOG_KINDS = ("glue", "glue_rest")
ACCESS_DELEGATION = ("external_volume", "vended_credentials")
AUTHENTICATORS = ("password", "key_pair")


@dataclass(frozen=True)
class LayerGrant:
    """One principal's Lake Formation permissions on one layer's tables (and its database).

    Args:
        table_permissions: granted on every table of the layer.
        database_permissions: granted on the layer's database (e.g. ``CREATE_TABLE``).
        data_location: ``DATA_LOCATION_ACCESS`` on the layer's warehouse prefix.
        excluded_columns: per table, columns left out of ``SELECT`` (column-level security:
            the ``SELECT`` goes through ``TableWithColumns`` + ``ColumnWildcard``).
    """

    principal: str
    layer: str
    table_permissions: tuple[str, ...] = ()
    database_permissions: tuple[str, ...] = ()
    data_location: bool = False
    excluded_columns: Mapping[str, tuple[str, ...]] = field(default_factory=lambda: MappingProxyType({}))


@dataclass(frozen=True)
class LakeFormationSettings:
    catalog_id: str | None = None
    grants: tuple[LayerGrant, ...] = ()
    #: Default of ``lean-ops grants``: also revoke what the managed principals hold beyond the config.
    revoke_extra: bool = False


@dataclass(frozen=True)
class CatalogIntegrationSettings:
    """The Snowflake catalog integration that reads the Glue Data Catalog.

    ``kind`` ``glue`` is ``CATALOG_SOURCE = GLUE``; ``glue_rest`` is ``CATALOG_SOURCE =
    ICEBERG_REST`` on the Glue Iceberg REST endpoint (what Snowflake recommends; it can use
    catalog-vended credentials instead of an external volume).
    """

    name: str
    kind: str
    role_arn: str
    catalog_id: str | None = None
    region: str | None = None
    namespace: str | None = None
    refresh_interval_seconds: int | None = None
    access_delegation: str = "external_volume"
    #: Include ``CREATE CATALOG INTEGRATION`` in the DDL (off when an admin owns it).
    create: bool = True


@dataclass(frozen=True)
class SnowflakeTableSettings:
    """Per-table overrides: the Snowflake table name and AUTO_REFRESH."""

    name: str | None = None
    auto_refresh: bool | None = None


@dataclass(frozen=True)
class SnowflakeConnectionSettings:
    """Where the connector connects; credentials are named, never given.

    ``password_env`` / ``private_key_file_env`` / ``private_key_password_env`` name
    environment variables; ``secret_id`` names an AWS Secrets Manager secret whose JSON
    holds ``password`` (or ``private_key_file``).
    """

    account: str
    user: str
    role: str | None = None
    warehouse: str | None = None
    authenticator: str = "key_pair"
    password_env: str | None = None
    private_key_file_env: str | None = None
    private_key_password_env: str | None = None
    secret_id: str | None = None


@dataclass(frozen=True)
class SnowflakeSettings:
    database: str
    schema: str
    catalog_integration: CatalogIntegrationSettings
    external_volume: str | None = None
    auto_refresh: bool = False
    replace_invalid_characters: bool | None = None
    tables: Mapping[str, SnowflakeTableSettings] = field(default_factory=lambda: MappingProxyType({}))
    connection: SnowflakeConnectionSettings | None = None
    #: Where refresh SQL goes without a connection (folder or ``s3://``); None = the artifacts prefix.
    sql_dir: str | None = None
    #: The schema fingerprint state (file or ``s3://``); None = the artifacts prefix.
    state: str | None = None

    def table_name(self, semantic_table: str) -> str:
        override = self.tables.get(semantic_table)
        return override.name if override is not None and override.name else semantic_table

    def auto_refresh_for(self, semantic_table: str) -> bool:
        override = self.tables.get(semantic_table)
        if override is not None and override.auto_refresh is not None:
            return override.auto_refresh
        return self.auto_refresh


@dataclass(frozen=True)
class GovernanceConfig:
    """Everything in ``governance/<env>.yaml``."""

    environment: str
    principals: Mapping[str, str] = field(default_factory=lambda: MappingProxyType({}))
    semantic_tables: tuple[str, ...] = ()
    lake_formation: LakeFormationSettings = field(default_factory=LakeFormationSettings)
    snowflake: SnowflakeSettings | None = None
    source: str = ""


def resolve_principals(config: GovernanceConfig, env: Environment) -> dict[str, str]:
    """Principal name → IAM role ARN: the pipeline's roles, Snowflake's, then the configured ones."""
    out = {
        "curation_job": env.job_role_arn(env.curation_job),
        "semantic_job": env.job_role_arn(env.semantic_job),
        "maintenance_job": env.job_role_arn(env.maintenance_job),
        "lambda": env.lambda_role_arn,
        "state_machine": env.state_machine_role_arn,
    }
    if config.snowflake is not None:
        out["snowflake"] = config.snowflake.catalog_integration.role_arn
    out.update(config.principals)
    return out


# --------------------------------------------------------------------------- parsing helpers


def _pattern(
    reader: MappingReader, key: str, pattern: re.Pattern[str], what: str, *, required: bool
) -> str | None:
    value = reader.raw(key, None, required=required)
    if value is None:
        return None
    if not isinstance(value, str) or not pattern.fullmatch(value):
        raise ConfigError(f"{reader.path(key)}: {value!r} is not a valid {what}")
    return value


def _req(reader: MappingReader, key: str, pattern: re.Pattern[str], what: str) -> str:
    value = _pattern(reader, key, pattern, what, required=True)
    assert value is not None
    return value


def _permissions(reader: MappingReader, key: str, value: object, allowed: tuple[str, ...]) -> tuple[str, ...]:
    where = reader.path(key)
    if not isinstance(value, list) or not value:
        raise ConfigError(f"{where}: expected a non-empty list of permissions ({', '.join(allowed)})")
    out: list[str] = []
    for i, item in enumerate(value):
        if item not in allowed:
            raise ConfigError(f"{where}[{i}]: {item!r} is not one of {', '.join(allowed)}")
        if item in out:
            raise ConfigError(f"{where}: {item} is listed twice")
        out.append(str(item))
    if "ALL" in out and len(out) > 1:
        raise ConfigError(f"{where}: ALL already includes {', '.join(p for p in out if p != 'ALL')}")
    return tuple(out)


def _parse_layer(parent: MappingReader, principal: str, layer: str) -> LayerGrant:
    value = parent.raw(layer)
    if isinstance(value, list):
        return LayerGrant(principal, layer, _permissions(parent, layer, value, TABLE_PERMISSIONS))
    reader = parent.child(layer, required=True)
    tables: tuple[str, ...] = ()
    if reader.raw("tables") is not None:
        tables = _permissions(reader, "tables", reader.raw("tables"), TABLE_PERMISSIONS)
    database: tuple[str, ...] = ()
    if reader.raw("database") is not None:
        database = _permissions(reader, "database", reader.raw("database"), DATABASE_PERMISSIONS)
    data_location = reader.boolean("data_location", False)
    excluded_reader = reader.child("excluded_columns")
    excluded: dict[str, tuple[str, ...]] = {}
    raw_excluded = reader.raw("excluded_columns", {})
    for table in raw_excluded if isinstance(raw_excluded, Mapping) else {}:
        check_identifier(table, f"{reader.path('excluded_columns')} table")
        columns = excluded_reader.sequence(str(table), required=True)
        if not columns:
            raise ConfigError(f"{excluded_reader.path(str(table))}: list at least one column")
        excluded[str(table)] = tuple(
            check_identifier(c, f"{excluded_reader.path(str(table))}[{i}]") for i, c in enumerate(columns)
        )
    excluded_reader.finish()
    reader.finish()
    if excluded and "SELECT" not in tables:
        raise ConfigError(
            f"{reader.where}: excluded_columns need SELECT in tables (and not ALL, which includes every column)"
        )
    if not (tables or database or data_location):
        raise ConfigError(f"{reader.where}: grants nothing (give tables, database or data_location)")
    return LayerGrant(principal, layer, tables, database, data_location, MappingProxyType(excluded))


def _parse_lake_formation(reader: MappingReader, principal_names: set[str]) -> LakeFormationSettings:
    section = reader.child("lake_formation")
    catalog_id = _pattern(section, "catalog_id", ACCOUNT_ID, "12-digit catalog (account) id", required=False)
    revoke_extra = section.boolean("revoke_extra", False)
    grants_reader = section.child("grants")
    grants: list[LayerGrant] = []
    raw_grants = section.raw("grants", {})
    for principal in raw_grants if isinstance(raw_grants, Mapping) else {}:
        name = check_identifier(principal, f"{grants_reader.where} principal")
        if name not in principal_names:
            raise ConfigError(
                f"{grants_reader.path(name)}: unknown principal {name!r} "
                f"(built in: {', '.join(BUILTIN_PRINCIPALS)}; others go under principals:)"
            )
        layers = grants_reader.child(name, required=True)
        raw_layers = grants_reader.raw(name)
        for layer in raw_layers if isinstance(raw_layers, Mapping) else {}:
            if layer not in LAYERS:
                raise ConfigError(f"{layers.path(str(layer))}: unknown layer (one of {', '.join(LAYERS)})")
            grants.append(_parse_layer(layers, name, str(layer)))
        layers.finish()
    grants_reader.finish()
    section.finish()
    return LakeFormationSettings(catalog_id, tuple(grants), revoke_extra)


def _parse_catalog_integration(reader: MappingReader) -> CatalogIntegrationSettings:
    section = reader.child("catalog_integration", required=True)
    kind = section.choice("type", CATALOG_KINDS, "glue")
    delegation = section.choice("access_delegation", ACCESS_DELEGATION, "external_volume")
    if kind == "glue" and delegation != "external_volume":
        raise ConfigError(
            f"{section.path('access_delegation')}: catalog-vended credentials need type: glue_rest "
            "(the Glue Iceberg REST endpoint)"
        )
    namespace = section.raw("namespace")
    settings = CatalogIntegrationSettings(
        name=_req(section, "name", SNOWFLAKE_IDENTIFIER, "Snowflake identifier"),
        kind=kind,
        role_arn=_req(section, "role_arn", ARN, "IAM role ARN"),
        catalog_id=_pattern(section, "catalog_id", ACCOUNT_ID, "12-digit Glue catalog id", required=False),
        region=_pattern(section, "region", REGION, "AWS region", required=False),
        namespace=None if namespace is None else check_identifier(namespace, section.path("namespace")),
        refresh_interval_seconds=section.integer("refresh_interval_seconds", None, minimum=30),
        access_delegation=delegation,
        create=section.boolean("create", True),
    )
    section.finish()
    return settings


def _parse_connection(reader: MappingReader) -> SnowflakeConnectionSettings | None:
    if reader.raw("connection") is None:
        return None
    section = reader.child("connection", required=True)
    raw = reader.raw("connection")
    for key in raw if isinstance(raw, Mapping) else {}:
        if str(key).lower() in _SECRET_KEYS:
            raise ConfigError(
                f"{section.path(str(key))}: never put secrets in config; name an environment variable "
                "(password_env, private_key_file_env, private_key_password_env) or an AWS Secrets Manager "
                "secret (secret_id)"
            )
    authenticator = section.choice("authenticator", AUTHENTICATORS, "key_pair")
    settings = SnowflakeConnectionSettings(
        account=_req(section, "account", SNOWFLAKE_ACCOUNT, "Snowflake account identifier"),
        user=_req(section, "user", SNOWFLAKE_IDENTIFIER, "Snowflake user name"),
        role=_pattern(section, "role", SNOWFLAKE_IDENTIFIER, "Snowflake role", required=False),
        warehouse=_pattern(section, "warehouse", SNOWFLAKE_IDENTIFIER, "Snowflake warehouse", required=False),
        authenticator=authenticator,
        password_env=_pattern(section, "password_env", ENV_VAR, "environment variable name", required=False),
        private_key_file_env=_pattern(
            section, "private_key_file_env", ENV_VAR, "environment variable name", required=False
        ),
        private_key_password_env=_pattern(
            section, "private_key_password_env", ENV_VAR, "environment variable name", required=False
        ),
        secret_id=_pattern(
            section, "secret_id", SECRET_ID, "Secrets Manager secret name or ARN", required=False
        ),
    )
    section.finish()
    if settings.secret_id is None:
        needed = "password_env" if authenticator == "password" else "private_key_file_env"
        if getattr(settings, needed) is None:
            raise ConfigError(f"{section.where}: authenticator {authenticator} needs {needed} (or secret_id)")
    return settings


def _parse_snowflake(reader: MappingReader) -> SnowflakeSettings | None:
    if reader.raw("snowflake") is None:
        return None
    section = reader.child("snowflake", required=True)
    integration = _parse_catalog_integration(section)
    volume = _pattern(
        section, "external_volume", SNOWFLAKE_IDENTIFIER, "Snowflake identifier", required=False
    )
    if volume is None and integration.access_delegation == "external_volume":
        raise ConfigError(
            f"{section.path('external_volume')}: required unless the catalog integration uses "
            "access_delegation: vended_credentials"
        )
    tables_reader = section.child("tables")
    tables: dict[str, SnowflakeTableSettings] = {}
    raw_tables = section.raw("tables", {})
    for table in raw_tables if isinstance(raw_tables, Mapping) else {}:
        check_identifier(table, f"{tables_reader.where} table")
        one = tables_reader.child(str(table), required=True)
        auto = one.raw("auto_refresh")
        if auto is not None and not isinstance(auto, bool):
            raise ConfigError(f"{one.path('auto_refresh')}: expected true or false, got {auto!r}")
        tables[str(table)] = SnowflakeTableSettings(
            name=_pattern(one, "name", SNOWFLAKE_IDENTIFIER, "Snowflake identifier", required=False),
            auto_refresh=auto,
        )
        one.finish()
    tables_reader.finish()
    replace_invalid = section.raw("replace_invalid_characters")
    if replace_invalid is not None and not isinstance(replace_invalid, bool):
        raise ConfigError(f"{section.path('replace_invalid_characters')}: expected true or false")
    refresh = section.child("refresh")
    settings = SnowflakeSettings(
        database=_req(section, "database", SNOWFLAKE_IDENTIFIER, "Snowflake identifier"),
        schema=_req(section, "schema", SNOWFLAKE_IDENTIFIER, "Snowflake identifier"),
        catalog_integration=integration,
        external_volume=volume,
        auto_refresh=section.boolean("auto_refresh", False),
        replace_invalid_characters=replace_invalid,
        tables=MappingProxyType(tables),
        connection=_parse_connection(section),
        sql_dir=refresh.string("sql_dir"),
        state=refresh.string("state"),
    )
    refresh.finish()
    section.finish()
    return settings


def parse_governance(data: object, where: str, name: str) -> GovernanceConfig:
    """Parse one ``governance/<name>.yaml``; ``where`` names the file in every error."""
    check_identifier(name, f"{where}: environment name")
    reader = MappingReader(data, f"{where}:")
    principals_reader = reader.child("principals")
    principals: dict[str, str] = {}
    raw_principals = reader.raw("principals", {})
    for principal in raw_principals if isinstance(raw_principals, Mapping) else {}:
        key = check_identifier(principal, f"{principals_reader.where} name")
        if key in BUILTIN_PRINCIPALS:
            raise ConfigError(
                f"{principals_reader.path(key)}: {key!r} is built in (it resolves from the environment file)"
            )
        arn = _req(principals_reader, key, ARN, "IAM role ARN")
        if ":role/" not in arn and ":user/" not in arn:
            raise ConfigError(f"{principals_reader.path(key)}: {arn!r} is not an IAM role or user ARN")
        principals[key] = arn
    principals_reader.finish()
    semantic = tuple(
        check_identifier(t, f"{reader.path('semantic_tables')}[{i}]")
        for i, t in enumerate(reader.sequence("semantic_tables"))
    )
    if len(set(semantic)) != len(semantic):
        raise ConfigError(f"{reader.path('semantic_tables')}: a table is listed twice")
    snowflake = _parse_snowflake(reader)
    names = set(BUILTIN_PRINCIPALS[:-1]) | set(principals) | ({"snowflake"} if snowflake else set())
    lake_formation = _parse_lake_formation(reader, names)
    reader.finish()
    return GovernanceConfig(
        environment=name,
        principals=MappingProxyType(principals),
        semantic_tables=semantic,
        lake_formation=lake_formation,
        snowflake=snowflake,
        source=where,
    )


def load_governance(
    location: str | Path, name: str, *, source: ConfigSource | None = None, required: bool = True
) -> GovernanceConfig | None:
    """Load ``governance/<name>.yaml`` from a config root (folder or ``s3://`` prefix).

    Raises:
        ConfigError: the file is missing (when ``required``; listing the available ones) or invalid.
    """
    src = source or open_config_source(location)
    found = read_named_file(src, "governance", name, "governance config", required=required)
    if found is None:
        return None
    text, where = found
    try:
        data: Any = yaml.safe_load(text)
    except yaml.YAMLError as exc:
        raise ConfigError(f"{where}: not valid YAML: {exc}") from exc
    return parse_governance(data, where, name)
