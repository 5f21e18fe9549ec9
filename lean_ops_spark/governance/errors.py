"""Errors of the governance side: an AWS or Snowflake call failed (the resource is named)."""

from __future__ import annotations

from lean_ops_spark.errors import LeanOpsError

__all__ = ["GovernanceError", "SnowflakeError"]


class GovernanceError(LeanOpsError):
    """A Lake Formation, IAM or Glue call made for governance failed."""


class SnowflakeError(GovernanceError):
    """A Snowflake statement failed, or the connector is missing or misconfigured."""
