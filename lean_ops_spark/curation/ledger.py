"""The record ledger of a run: every raw record read is accounted for exactly once."""

from __future__ import annotations

from dataclasses import asdict, dataclass, field
from typing import Any

__all__ = ["Ledger"]


@dataclass(frozen=True)
class Ledger:
    """``read = upserted + superseded_in_batch + stale + quarantined``.

    What is measured independently, and so really checked: ``expected_read`` comes from
    Iceberg metadata (``added-records`` of the raw append snapshots in the range) and
    ``read`` from the rows the read returned; ``read = valid + quarantined`` (one
    aggregation: every record is classified exactly once); ``upserted`` comes from the
    committed curated snapshot and may not exceed ``kept``. ``superseded_in_batch``
    (``valid - kept``) and ``stale`` (``kept - upserted``) are derived, so given those checks
    the sum itself holds by construction: a kept version the MERGE did not write is counted
    as stale, whatever the reason.
    """

    read: int
    expected_read: int | None
    valid: int
    kept: int  # one version per key after in-batch dedupe
    upserted: int  # inserted or updated in curated
    inserted: int | None
    updated: int | None
    quarantined_by_reason: dict[str, int] = field(default_factory=dict)
    quarantined_by_class: dict[str, int] = field(default_factory=dict)
    rescued_records: int = 0
    rescued_fields: dict[str, int] = field(default_factory=dict)

    @property
    def quarantined(self) -> int:
        return sum(self.quarantined_by_reason.values())

    @property
    def superseded_in_batch(self) -> int:
        """Valid records that lost to a newer version of their key in the same batch."""
        return self.valid - self.kept

    @property
    def stale(self) -> int:
        """Kept versions not newer than the version already in curated (left untouched)."""
        return self.kept - self.upserted

    def problems(self) -> list[str]:
        """Why the ledger does not balance (empty when it does)."""
        issues = []
        if self.expected_read is not None and self.read != self.expected_read:
            issues.append(f"read {self.read} rows but the raw snapshots added {self.expected_read}")
        if self.read != self.valid + self.quarantined:
            issues.append(f"read {self.read} != valid {self.valid} + quarantined {self.quarantined}")
        if self.quarantined != sum(self.quarantined_by_class.values()):
            issues.append("quarantined by reason and by class disagree")
        if self.superseded_in_batch < 0:
            issues.append(f"kept {self.kept} versions out of {self.valid} valid records")
        if self.stale < 0:
            issues.append(f"upserted {self.upserted} rows out of {self.kept} kept versions")
        total = self.upserted + self.superseded_in_batch + self.stale + self.quarantined
        if total != self.read:
            issues.append(f"read {self.read} != upserted + superseded + stale + quarantined = {total}")
        return issues

    @property
    def balanced(self) -> bool:
        return not self.problems()

    def as_dict(self) -> dict[str, Any]:
        data = asdict(self)
        data.update(
            quarantined=self.quarantined,
            superseded_in_batch=self.superseded_in_batch,
            stale=self.stale,
            balanced=self.balanced,
        )
        return data
