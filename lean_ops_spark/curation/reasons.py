"""Why a record is quarantined: reason codes and their error classes.

``DROP`` records are permanently bad and never retried; ``RETRY`` records might succeed
later (e.g. after a contract gains a schema version) and are replayed by ``lean-ops replay``.
"""

from __future__ import annotations

from enum import Enum

__all__ = ["REASON_CLASS", "ErrorClass", "Reason"]


class ErrorClass(str, Enum):
    DROP = "DROP"
    RETRY = "RETRY"


class Reason(str, Enum):
    """Reason codes, in the order classification checks them (the first that applies wins)."""

    MISSING_MESSAGE_ID = "MISSING_MESSAGE_ID"
    WRONG_TOPIC = "WRONG_TOPIC"
    OVERSIZE_PAYLOAD = "OVERSIZE_PAYLOAD"
    UNKNOWN_SCHEMA_VERSION = "UNKNOWN_SCHEMA_VERSION"
    MALFORMED_JSON = "MALFORMED_JSON"
    MISSING_KEY = "MISSING_KEY"
    MISSING_REQUIRED_FIELD = "MISSING_REQUIRED_FIELD"
    INVALID_TYPE = "INVALID_TYPE"
    VALUE_OUT_OF_RANGE = "VALUE_OUT_OF_RANGE"
    INVALID_VALUE = "INVALID_VALUE"


REASON_CLASS: dict[Reason, ErrorClass] = {
    Reason.MISSING_MESSAGE_ID: ErrorClass.DROP,
    Reason.WRONG_TOPIC: ErrorClass.DROP,
    Reason.OVERSIZE_PAYLOAD: ErrorClass.DROP,
    Reason.UNKNOWN_SCHEMA_VERSION: ErrorClass.RETRY,
    Reason.MALFORMED_JSON: ErrorClass.DROP,
    Reason.MISSING_KEY: ErrorClass.DROP,
    Reason.MISSING_REQUIRED_FIELD: ErrorClass.DROP,
    Reason.INVALID_TYPE: ErrorClass.DROP,
    Reason.VALUE_OUT_OF_RANGE: ErrorClass.DROP,
    Reason.INVALID_VALUE: ErrorClass.DROP,
}
