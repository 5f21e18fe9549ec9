"""Typed configuration: frozen models and the loader that builds them from ``conf/``."""

from lean_ops_spark.config.loader import load_project, parse_maintenance, parse_profile, parse_topic
from lean_ops_spark.config.models import (
    AUDIT_COLUMNS,
    RESCUED_DATA_COLUMN,
    Databases,
    DriftMode,
    FieldSpec,
    FieldType,
    MaintenanceOperation,
    MaintenancePolicy,
    MetricsSettings,
    PartitionSpec,
    Profile,
    ProjectConfig,
    SparkSettings,
    TopicContract,
)
from lean_ops_spark.config.sources import open_config_source

__all__ = [
    "AUDIT_COLUMNS",
    "RESCUED_DATA_COLUMN",
    "Databases",
    "DriftMode",
    "FieldSpec",
    "FieldType",
    "MaintenanceOperation",
    "MaintenancePolicy",
    "MetricsSettings",
    "PartitionSpec",
    "Profile",
    "ProjectConfig",
    "SparkSettings",
    "TopicContract",
    "load_project",
    "open_config_source",
    "parse_maintenance",
    "parse_profile",
    "parse_topic",
]
