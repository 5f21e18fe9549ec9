"""lean-ops-spark: Glue/Spark job code for an Iceberg lakehouse (raw -> curated -> semantic).

Importing the package starts nothing and needs no Spark: the SparkSession is built only by
:func:`lean_ops_spark.session.build_session`, called from ``jobs/``, the CLI and tests.
"""

from lean_ops_spark._version import __version__
from lean_ops_spark.errors import (
    CatalogError,
    CheckpointError,
    ConfigError,
    ContractError,
    DataQualityError,
    DriftError,
    LeanOpsError,
    MaintenanceError,
    RuntimeSetupError,
)

__all__ = [
    "CatalogError",
    "CheckpointError",
    "ConfigError",
    "ContractError",
    "DataQualityError",
    "DriftError",
    "LeanOpsError",
    "MaintenanceError",
    "RuntimeSetupError",
    "__version__",
]
