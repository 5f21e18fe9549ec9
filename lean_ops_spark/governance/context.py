"""Load everything a governance command needs from one config root, once."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from lean_ops_spark.config import load_project
from lean_ops_spark.config.environment import Environment, load_environment
from lean_ops_spark.config.models import Profile
from lean_ops_spark.config.sources import open_config_source
from lean_ops_spark.governance.config import GovernanceConfig, load_governance
from lean_ops_spark.governance.layers import GovernedScope
from lean_ops_spark.governance.semantic_tables import SemanticTable, discover_semantic_tables
from lean_ops_spark.governance.snowflake import SnowflakeTarget

__all__ = ["GovernanceContext", "load_governance_context"]


@dataclass(frozen=True)
class GovernanceContext:
    """The environment, its profile and topics, the governance file and the semantic tables."""

    environment: Environment
    profile: Profile
    topics: tuple[str, ...]
    governance: GovernanceConfig
    semantic_tables: tuple[SemanticTable, ...]

    def scope(self) -> GovernedScope:
        """Raises ConfigError unless the profile is glue with an s3:// warehouse."""
        return GovernedScope(self.profile, self.topics, self.semantic_tables)

    def snowflake(self) -> SnowflakeTarget:
        """Raises SnowflakeError when the governance file has no ``snowflake:`` section."""
        return SnowflakeTarget.of(self.governance, self.environment, self.profile)


def load_governance_context(conf: str | Path, env_name: str) -> GovernanceContext:
    """Load ``environments/<env>.yaml``, its profile and topics, ``governance/<env>.yaml``.

    Raises:
        ConfigError: any file missing or invalid (naming the file and key).
    """
    source = open_config_source(conf)
    environment = load_environment(conf, env_name, source=source)
    project = load_project(conf, environment.profile, source=source)
    governance = load_governance(conf, env_name, source=source)
    assert governance is not None  # required=True
    tables = discover_semantic_tables(source, governance.semantic_tables, where=governance.source)
    return GovernanceContext(
        environment=environment,
        profile=project.profile,
        topics=tuple(environment.selected_topics(list(project.topics))),
        governance=governance,
        semantic_tables=tables,
    )
