"""The one exception hierarchy of lean-ops-spark.

Library code raises these; ``cli/`` and ``jobs/`` turn them into one-line messages and
exit codes. Foreign errors are re-raised with ``from`` so the cause stays visible.
"""

from __future__ import annotations

__all__ = [
    "CatalogError",
    "CheckpointError",
    "CircuitBreakerError",
    "ConcurrentRunError",
    "ConfigError",
    "ContractError",
    "DataQualityError",
    "DriftError",
    "LeanOpsError",
    "LedgerError",
    "MaintenanceError",
    "RuntimeSetupError",
]


class LeanOpsError(Exception):
    """Root of every error lean-ops-spark raises on purpose."""

    exit_code = 1


class ConfigError(LeanOpsError):
    """A configuration file or value is invalid (the message names the file and key)."""

    exit_code = 2


class ContractError(LeanOpsError):
    """Data does not fit a topic contract in a way the run cannot handle."""


class CircuitBreakerError(ContractError):
    """A batch's error rate passed the topic's threshold; nothing was written."""


class LedgerError(LeanOpsError):
    """A run's record ledger does not balance: some record is unaccounted for."""


class DriftError(LeanOpsError):
    """Schema drift was detected and the topic's drift mode says stop."""


class DataQualityError(LeanOpsError):
    """A data-quality suite failed."""


class CheckpointError(LeanOpsError):
    """A checkpoint is missing, unreadable, or did not commit with the data."""


class ConcurrentRunError(LeanOpsError):
    """Another run of the same step changed rows this run had read; what this run wrote is
    safe, and running it again starts from the current state."""


class CatalogError(LeanOpsError):
    """A table or namespace is missing or cannot be created or read."""


class MaintenanceError(LeanOpsError):
    """A maintenance procedure refused to run or failed."""


class RuntimeSetupError(LeanOpsError):
    """The local runtime is incomplete (e.g. the Iceberg jars were never fetched)."""

    exit_code = 3
