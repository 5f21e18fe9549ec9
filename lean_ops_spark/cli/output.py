"""Printing results: a table for people, one JSON document for machines; and checking,
before a command does its work, that the files it was asked to write can be written."""

from __future__ import annotations

import json
import os
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from lean_ops_spark.errors import ConfigError

__all__ = ["check_output_dir", "check_output_file", "format_table", "print_json"]


def print_json(document: Any) -> None:
    print(json.dumps(document, indent=2, sort_keys=True, default=str))


def format_table(headers: Sequence[str], rows: Sequence[Sequence[Any]]) -> str:
    """A plain aligned text table."""
    cells = [[("" if v is None else str(v)) for v in row] for row in rows]
    widths = [max([len(h)] + [len(r[i]) for r in cells]) for i, h in enumerate(headers)]
    lines = ["  ".join(h.ljust(w) for h, w in zip(headers, widths, strict=True))]
    lines.append("  ".join("-" * w for w in widths))
    lines.extend("  ".join(c.ljust(w) for c, w in zip(row, widths, strict=True)) for row in cells)
    return "\n".join(lines)


def check_output_file(option: str, path: str) -> Path:
    """``path`` (given with ``option``, e.g. ``--html``), checked to be writable before the work
    whose result goes there is done, so a typo does not lose a finished report.

    Raises:
        ConfigError: the folder does not exist or cannot be written, or ``path`` is a folder.
    """
    target = Path(path)
    folder = target.parent
    if target.is_dir():
        raise ConfigError(f"{option} {path}: is a folder, not a file")
    if not folder.is_dir():
        raise ConfigError(f"{option} {path}: the folder {folder} does not exist")
    if not os.access(folder, os.W_OK | os.X_OK) or (target.exists() and not os.access(target, os.W_OK)):
        raise ConfigError(f"{option} {path}: not writable")
    return target


def check_output_dir(option: str, path: str) -> Path:
    """The folder ``path`` (given with ``option``), created if missing, checked to be writable.

    Raises:
        ConfigError: it cannot be created, is a file, or cannot be written.
    """
    folder = Path(path)
    try:
        folder.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise ConfigError(f"{option} {path}: cannot create the folder ({exc.strerror or exc})") from exc
    if not os.access(folder, os.W_OK | os.X_OK):
        raise ConfigError(f"{option} {path}: not writable")
    return folder
