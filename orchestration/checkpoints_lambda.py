"""AWS Lambda entry points: GetAllCheckpoints and ResolveCuratedSnapshot.

Deployed by ``lean-ops deploy`` with the lean_ops_spark package beside it. Environment:

``LEAN_OPS_CONF``      config root, e.g. ``s3://bucket/lean-ops/dev/conf`` (required)
``LEAN_OPS_PROFILE``   runtime profile (default ``glue``)
``LEAN_OPS_HOME``      local profile only: the folder holding ``catalog.db``
``LEAN_OPS_SNAPSHOT_SOURCE``  ``metadata`` (default, fast) or ``pyiceberg``

Events: ``{"topic": "orders"}`` / ``{"topics": [...]}`` / ``{}`` for GetAllCheckpoints;
``{"topic": "orders", "run_id": "..."}`` for ResolveCuratedSnapshot. Nothing happens at
import: the runtime is built on the first invocation and reused while the container lives.
"""

from __future__ import annotations

import os
from typing import Any

from lean_ops_spark.orchestration.handlers import (
    LambdaRuntime,
    curation_result,
    get_all_checkpoints_event,
    open_runtime,
)

_runtime: LambdaRuntime | None = None


def _get_runtime() -> LambdaRuntime:
    global _runtime
    if _runtime is None:
        conf = os.environ.get("LEAN_OPS_CONF")
        if not conf:
            raise RuntimeError("LEAN_OPS_CONF is not set (the config root, e.g. s3://bucket/prefix/conf)")
        _runtime = open_runtime(
            conf,
            os.environ.get("LEAN_OPS_PROFILE", "glue"),
            home=os.environ.get("LEAN_OPS_HOME") or None,
            source_kind=os.environ.get("LEAN_OPS_SNAPSHOT_SOURCE", "metadata"),
        )
    return _runtime


def handler(event: dict[str, Any] | None, context: Any = None) -> dict[str, Any]:
    """GetAllCheckpoints."""
    return get_all_checkpoints_event(event or {}, _get_runtime())


def curation_result_handler(event: dict[str, Any] | None, context: Any = None) -> dict[str, Any]:
    """ResolveCuratedSnapshot (+ CheckSchemaExists and the backlog left)."""
    return curation_result(event or {}, _get_runtime())


def reset() -> None:
    """Forget the cached runtime (tests; a warm container never needs it)."""
    global _runtime
    _runtime = None
