"""Typed data-quality results: which expectations failed, with sample values (no GE import)."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from lean_ops_spark.quality.suites import Expectation

__all__ = ["DQResult", "ExpectationResult"]


@dataclass(frozen=True)
class ExpectationResult:
    """One expectation's outcome."""

    expectation: Expectation
    ge_type: str
    success: bool
    element_count: int | None = None
    unexpected_count: int | None = None
    unexpected_percent: float | None = None
    observed_value: Any = None
    sample_values: tuple[Any, ...] = ()
    error: str | None = None

    def describe(self) -> str:
        """``unique(order_id): 2 unexpected (0.7%), e.g. ['o-1', 'o-1']``."""
        text = self.expectation.describe()
        if self.error:
            return f"{text}: error: {self.error}"
        if self.unexpected_count is not None:
            percent = f" ({self.unexpected_percent:.1f}%)" if self.unexpected_percent is not None else ""
            samples = f", e.g. {list(self.sample_values)}" if self.sample_values else ""
            return f"{text}: {self.unexpected_count} unexpected{percent}{samples}"
        if self.observed_value is not None:
            return f"{text}: observed {self.observed_value}"
        return text

    def as_dict(self) -> dict[str, Any]:
        return {
            "expectation": self.expectation.describe(),
            "kind": self.expectation.kind,
            "columns": list(self.expectation.columns),
            "ge_type": self.ge_type,
            "success": self.success,
            "element_count": self.element_count,
            "unexpected_count": self.unexpected_count,
            "unexpected_percent": self.unexpected_percent,
            "observed_value": self.observed_value,
            "sample_values": list(self.sample_values),
            "error": self.error,
        }


@dataclass(frozen=True)
class DQResult:
    """A suite's outcome on one table (or branch)."""

    table: str
    suite: str
    success: bool
    results: tuple[ExpectationResult, ...]
    source: str = ""
    duration_seconds: float = 0.0

    @property
    def failed(self) -> tuple[ExpectationResult, ...]:
        return tuple(r for r in self.results if not r.success)

    def summary(self) -> str:
        if self.success:
            return f"{len(self.results)} expectations passed"
        return f"{len(self.failed)} of {len(self.results)} expectations failed: " + "; ".join(
            r.describe() for r in self.failed
        )

    def as_dict(self) -> dict[str, Any]:
        return {
            "table": self.table,
            "suite": self.suite,
            "source": self.source,
            "success": self.success,
            "evaluated": len(self.results),
            "failed": len(self.failed),
            "results": [r.as_dict() for r in self.results],
            "duration_seconds": round(self.duration_seconds, 3),
        }
