"""The raw side: the staging-table contract, the synthetic event generator and its faults."""

from lean_ops_spark.raw.faults import DUPLICATE_KINDS, ERROR_KINDS, FaultKind
from lean_ops_spark.raw.generator import (
    GeneratedBatch,
    RawRecord,
    SeedExpectation,
    fault_rates,
    generate_events,
    new_seed,
)

__all__ = [
    "DUPLICATE_KINDS",
    "ERROR_KINDS",
    "FaultKind",
    "GeneratedBatch",
    "RawRecord",
    "SeedExpectation",
    "fault_rates",
    "generate_events",
    "new_seed",
]
