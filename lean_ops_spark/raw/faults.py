"""Named fault kinds the synthetic generator can inject, and where each must end up."""

from __future__ import annotations

from enum import Enum

__all__ = ["DUPLICATE_KINDS", "ERROR_KINDS", "FaultKind"]


class FaultKind(str, Enum):
    """One kind of bad or awkward input, as producers and Firehose really send it."""

    MALFORMED_JSON = "malformed_json"  # payload is not a JSON object -> DROP
    MISSING_KEY = "missing_key"  # business key absent -> DROP
    MISSING_REQUIRED = "missing_required"  # a required field absent -> DROP
    WRONG_TYPE = "wrong_type"  # a value that does not cast: rescued (optional field) or DROP
    OUT_OF_RANGE = "out_of_range"  # outside min/max, allowed values or max_length -> DROP
    UNKNOWN_FIELDS = "unknown_fields"  # unknown fields -> rescued (evolve: new columns; fail: refused)
    OVERSIZE_PAYLOAD = "oversize_payload"  # payload above max_payload_bytes -> DROP
    WRONG_TOPIC = "wrong_topic"  # misrouted record -> DROP
    UNKNOWN_VERSION = "unknown_version"  # schema version not (yet) in the contract -> RETRY
    EXACT_DUPLICATE = "exact_duplicate"  # Firehose re-delivery: same message again -> superseded
    RESENT_NEWER = "resent_newer"  # the same key re-sent with a newer version -> older superseded
    LATE_EVENT = "late_event"  # event time months back -> lands in its old partition


ERROR_KINDS: tuple[FaultKind, ...] = (
    FaultKind.MALFORMED_JSON,
    FaultKind.MISSING_KEY,
    FaultKind.MISSING_REQUIRED,
    FaultKind.WRONG_TYPE,
    FaultKind.OUT_OF_RANGE,
    FaultKind.UNKNOWN_FIELDS,
    FaultKind.OVERSIZE_PAYLOAD,
    FaultKind.WRONG_TOPIC,
    FaultKind.UNKNOWN_VERSION,
)
DUPLICATE_KINDS: tuple[FaultKind, ...] = (FaultKind.EXACT_DUPLICATE, FaultKind.RESENT_NEWER)
