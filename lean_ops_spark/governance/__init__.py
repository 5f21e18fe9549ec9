"""Governance: Lake Formation grants, least-privilege IAM documents, Snowflake SQL and refresh.

* :mod:`.config` — ``conf/governance/<env>.yaml`` (grants, principals, Snowflake), strict.
* :mod:`.semantic_tables` — the semantic tables, read minimally from ``conf/semantic/``.
* :mod:`.layers` — every governed table per layer and its warehouse location.
* :mod:`.grants` — plan from config, compare with ``ListPermissions``, apply the difference.
* :mod:`.iam` — one policy document per role, no wildcard actions, each ``*`` explained.
* :mod:`.snowflake` — catalog integration / ``CREATE ICEBERG TABLE`` / ``REFRESH`` text.
* :mod:`.schema_state` + :mod:`.snowflake_refresh` — which tables changed schema, and the
  refresh through a DB-API connection or a SQL file.

Nothing here imports boto3 or the Snowflake connector at import time.
"""

from lean_ops_spark.governance.config import GovernanceConfig, load_governance, parse_governance
from lean_ops_spark.governance.errors import GovernanceError, SnowflakeError
from lean_ops_spark.governance.grants import GrantPlan, apply_grant_plan, plan_grants
from lean_ops_spark.governance.iam import RolePolicy, role_policies
from lean_ops_spark.governance.layers import GovernedScope
from lean_ops_spark.governance.semantic_tables import SemanticTable, discover_semantic_tables
from lean_ops_spark.governance.snowflake import SnowflakeTarget, ddl_statements
from lean_ops_spark.governance.snowflake_refresh import (
    execute_snowflake_refresh,
    plan_snowflake_refresh,
    refresh_after_commit,
    refresh_snowflake,
)

__all__ = [
    "GovernanceConfig",
    "GovernanceError",
    "GovernedScope",
    "GrantPlan",
    "RolePolicy",
    "SemanticTable",
    "SnowflakeError",
    "SnowflakeTarget",
    "apply_grant_plan",
    "ddl_statements",
    "discover_semantic_tables",
    "execute_snowflake_refresh",
    "load_governance",
    "parse_governance",
    "plan_grants",
    "plan_snowflake_refresh",
    "refresh_after_commit",
    "refresh_snowflake",
    "role_policies",
]
