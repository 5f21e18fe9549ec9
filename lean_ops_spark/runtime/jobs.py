"""What every Glue/spark-submit entry script shares: arguments, session, output, exit code.

The scripts in ``jobs/`` stay a few lines: they import ``awsglue``'s ``getResolvedOptions``
when it exists (on Glue) and hand it here; under ``spark-submit`` or locally it is absent
and argparse reads the same ``--name value`` arguments.

Glue's ``getResolvedOptions`` makes every listed name required and ignores unknown ones,
so optional arguments are asked for only when present in ``argv``.
"""

from __future__ import annotations

import argparse
import difflib
import json
import logging
import os
import sys
from collections.abc import Callable, Mapping, Sequence
from typing import Any

from lean_ops_spark.errors import ConfigError, LeanOpsError

__all__ = ["ArgumentCheck", "GlueResolver", "JobRunner", "resolve_job_args", "run_job"]

GlueResolver = Callable[[list[str], list[str]], Mapping[str, Any]]
JobRunner = Callable[[Any, Any, Mapping[str, str]], Mapping[str, Any]]
ArgumentCheck = Callable[[Any, Mapping[str, str]], None]

#: Always required: where the config is and which profile to run.
COMMON = ("lean_ops_conf", "lean_ops_profile")
_DEFAULTS = {"lean_ops_conf": "conf", "lean_ops_profile": "local"}


def resolve_job_args(
    argv: Sequence[str],
    required: Sequence[str],
    optional: Sequence[str] = (),
    glue_resolver: GlueResolver | None = None,
    description: str = "",
) -> dict[str, str]:
    """Job arguments as ``{name: value}`` (names without ``--``).

    Args:
        argv: ``sys.argv``.
        required: names the job needs (``lean_ops_conf``/``lean_ops_profile`` are added).
        optional: names read only when present.
        glue_resolver: ``awsglue.utils.getResolvedOptions`` on Glue, else None.

    Raises:
        ConfigError: off Glue, an argument the job does not take (a misspelt option would
            otherwise be dropped silently), with the closest one it does take.
    """
    names = [*COMMON, *[n for n in required if n not in COMMON]]
    if glue_resolver is not None:
        present = [n for n in optional if f"--{n}" in argv]
        resolved = glue_resolver(list(argv), ["JOB_NAME", *names, *present])
        return {k: str(v) for k, v in resolved.items() if k in names or k in present}
    parser = argparse.ArgumentParser(
        prog=os.path.basename(argv[0]) if argv else "job", description=description
    )
    for name in names:
        default = _DEFAULTS.get(name)
        parser.add_argument(f"--{name}", required=default is None, default=default)
    for name in optional:
        parser.add_argument(f"--{name}")
    parser.add_argument("--home", default=".lean-ops", help="local profile home (not used on Glue)")
    namespace, unknown = parser.parse_known_args(list(argv[1:]))
    if unknown:  # a misspelt option (``--max-snapshots``) must not be dropped silently
        known = [f"--{name}" for name in (*names, *optional, "home")]
        hints = [
            f"{word} (did you mean {close[0]}?)"
            if (close := difflib.get_close_matches(word, known, n=1))
            else word
            for word in unknown
            if word.startswith("-")
        ]
        raise ConfigError(
            f"unknown argument(s): {', '.join(hints or unknown)}; this job takes {', '.join(known)}"
        )
    return {k: str(v) for k, v in vars(namespace).items() if v is not None}


def run_job(
    job: str,
    runner: JobRunner,
    argv: Sequence[str],
    *,
    required: Sequence[str],
    optional: Sequence[str] = (),
    glue_resolver: GlueResolver | None = None,
    check: ArgumentCheck | None = None,
) -> int:
    """Parse, load config, check, build or adopt the session, run, print one JSON line, exit code.

    ``check(config, arguments)`` raises a ``ConfigError`` for arguments the config refutes
    (an unknown topic or operation) before any JVM starts, which on Glue is billed time.

    Exit 0 on success; a ``LeanOpsError`` prints ``{"ok": false, ...}`` and returns its
    exit code, so Glue marks the run failed and Step Functions' Catch records the cause. A
    result whose ``ok`` is False (maintenance: an operation failed) is printed whole with
    ``"ok": false`` and exits 1. ``LEAN_OPS_ICEBERG_VERSION`` overrides the profile's
    Iceberg version (the local runtime jar in use).
    """
    from lean_ops_spark.config import load_project
    from lean_ops_spark.session import LocalHome, build_session

    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    os.environ.setdefault("PYSPARK_PYTHON", sys.executable)
    try:
        arguments = resolve_job_args(
            argv, required, optional, glue_resolver, description=f"lean-ops {job} job"
        )
        config = load_project(
            arguments["lean_ops_conf"],
            arguments["lean_ops_profile"],
            iceberg_version=os.environ.get("LEAN_OPS_ICEBERG_VERSION") or None,
        )
        if check is not None:
            check(config, arguments)
        home = LocalHome.at(arguments.get("home", ".lean-ops")) if config.profile.kind == "local" else None
        spark = build_session(config.profile, home=home, app_name=f"lean-ops {job}")
        result = runner(spark, config, arguments)
    except LeanOpsError as exc:
        print(
            json.dumps({"ok": False, "job": job, "error": {"type": type(exc).__name__, "message": str(exc)}})
        )
        return exc.exit_code
    ok = result.get("ok") is not False
    print(json.dumps({"ok": ok, "job": job, "result": result}, default=str))
    return 0 if ok else 1
