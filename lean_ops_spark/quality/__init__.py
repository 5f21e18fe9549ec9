"""Data-quality suites per layer and topic (``conf/quality/<layer>/<topic>.yaml``), run with
Great Expectations 1.x on Spark DataFrames, and their typed results.

``suites`` and ``results`` need neither Spark nor GE; ``runner`` imports GE when a suite
runs. The write-audit-publish gate that uses them is :mod:`lean_ops_spark.semantic.publish`.
"""

from lean_ops_spark.quality.results import DQResult, ExpectationResult
from lean_ops_spark.quality.suites import Expectation, QualitySuite, find_suite, load_suites, parse_suites

__all__ = [
    "DQResult",
    "Expectation",
    "ExpectationResult",
    "QualitySuite",
    "find_suite",
    "load_suites",
    "parse_suites",
]
