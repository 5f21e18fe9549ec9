"""What gets shipped: the wheel, the job scripts, ``conf/`` and the Lambda package.

Every artifact is built reproducibly (fixed zip timestamps, sorted entries) so that its
content hash only changes when its content does: that is what lets a second deploy find
nothing to do.
"""

from __future__ import annotations

import base64
import hashlib
import io
import os
import shutil
import subprocess
import sys
import tempfile
import zipfile
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from lean_ops_spark.errors import ConfigError, RuntimeSetupError

__all__ = [
    "JOB_SCRIPTS",
    "LAMBDA_ENTRY",
    "Artifact",
    "WheelBuilder",
    "build_wheel",
    "conf_artifacts",
    "job_script_artifacts",
    "lambda_package",
    "sha256_hex",
]

#: The Glue entry scripts under ``jobs/``, by job role.
JOB_SCRIPTS = {
    "curation": "curation_job.py",
    "semantic": "semantic_job.py",
    "maintenance": "maintenance_job.py",
}
#: The Lambda entry module under ``orchestration/``.
LAMBDA_ENTRY = "checkpoints_lambda.py"
_ZIP_TIME = (1980, 1, 1, 0, 0, 0)
#: ``(project root) -> path of a built wheel``
WheelBuilder = Callable[[Path], Path]


def sha256_hex(payload: bytes) -> str:
    return hashlib.sha256(payload).hexdigest()


@dataclass(frozen=True)
class Artifact:
    """One file to upload: its S3 key relative to the environment prefix, and its bytes."""

    key: str
    body: bytes

    @property
    def sha256(self) -> str:
        return sha256_hex(self.body)


def build_wheel(root: Path) -> Path:
    """``python -m pip wheel --no-deps --no-build-isolation`` of a clean copy of the sources.

    The copy holds the root's files (``setup.py``, ``pyproject.toml``, ``README.md``) and the
    ``lean_ops_spark`` package only: building in the checkout would reuse its ``build/lib``,
    which still holds modules deleted from the sources. ``SOURCE_DATE_EPOCH`` pins the zip
    timestamps so that the same sources give the same bytes (and the same content hash) on
    every build.

    Raises:
        RuntimeSetupError: the build failed (its output is in the message).
    """
    out = Path(tempfile.mkdtemp(prefix="lean-ops-wheel-"))
    with tempfile.TemporaryDirectory(prefix="lean-ops-wheel-src-") as tmp:
        source = _clean_source_copy(root, Path(tmp) / "src")
        env = {**os.environ, "SOURCE_DATE_EPOCH": "315532800"}
        completed = subprocess.run(  # noqa: S603 - fixed argv, our own interpreter
            [
                sys.executable,
                "-m",
                "pip",
                "wheel",
                "--no-deps",
                "--no-build-isolation",
                "--quiet",
                "-w",
                str(out),
                str(source),
            ],
            capture_output=True,
            text=True,
            env=env,
            check=False,
        )
    wheels = sorted(out.glob("lean_ops_spark-*-py3-none-any.whl"))
    if completed.returncode != 0 or not wheels:
        raise RuntimeSetupError(
            f"building the wheel failed: {completed.stderr.strip() or completed.stdout.strip()}"
        )
    return wheels[-1]


def _clean_source_copy(root: Path, target: Path) -> Path:
    """The root's files and the ``lean_ops_spark`` package (no caches) copied to ``target``."""
    package = root / "lean_ops_spark"
    if not (root / "setup.py").is_file() or not package.is_dir():
        raise RuntimeSetupError(f"{root}: not a lean-ops-spark checkout (needs setup.py and lean_ops_spark/)")
    target.mkdir(parents=True)
    for path in root.iterdir():
        if path.is_file():
            shutil.copy2(path, target / path.name)
    shutil.copytree(package, target / package.name, ignore=shutil.ignore_patterns("__pycache__", "*.pyc"))
    return target


def job_script_artifacts(root: Path) -> list[Artifact]:
    """``jobs/<role>_job.py`` for the three Glue jobs.

    Raises:
        ConfigError: a job script is missing.
    """
    artifacts = []
    for script in JOB_SCRIPTS.values():
        path = root / "jobs" / script
        if not path.is_file():
            raise ConfigError(f"{path}: Glue job script missing (deploy ships jobs/{script})")
        artifacts.append(Artifact(f"jobs/{script}", path.read_bytes()))
    return artifacts


def conf_artifacts(conf_root: Path) -> list[Artifact]:
    """Every ``*.yaml``/``*.yml`` under the config root, keyed ``conf/<relative path>``."""
    if not conf_root.is_dir():
        raise ConfigError(f"config folder {conf_root} does not exist")
    files = sorted(p for p in conf_root.rglob("*") if p.is_file() and p.suffix in (".yaml", ".yml"))
    return [Artifact(f"conf/{p.relative_to(conf_root).as_posix()}", p.read_bytes()) for p in files]


def _add(archive: zipfile.ZipFile, name: str, payload: bytes) -> None:
    info = zipfile.ZipInfo(name, date_time=_ZIP_TIME)
    info.external_attr = 0o644 << 16
    info.compress_type = zipfile.ZIP_DEFLATED
    archive.writestr(info, payload)


def lambda_package(root: Path) -> tuple[bytes, str]:
    """The Lambda zip (``checkpoints_lambda.py`` + the ``lean_ops_spark`` package) and its CodeSha256.

    Third-party dependencies (PyYAML, boto3 is in the runtime; PyIceberg only for the
    ``pyiceberg`` source) come from the environment's Lambda layers.
    """
    entry = root / "orchestration" / LAMBDA_ENTRY
    package = root / "lean_ops_spark"
    if not entry.is_file() or not package.is_dir():
        raise ConfigError(f"{root}: not a lean-ops-spark checkout (needs orchestration/{LAMBDA_ENTRY})")
    files = [(LAMBDA_ENTRY, entry)]
    files += [
        (p.relative_to(root).as_posix(), p)
        for p in package.rglob("*")
        if p.is_file() and (p.suffix == ".py" or p.name == "py.typed") and "__pycache__" not in p.parts
    ]
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w") as archive:
        for name, path in sorted(files):
            _add(archive, name, path.read_bytes())
    payload = buffer.getvalue()
    return payload, base64.b64encode(hashlib.sha256(payload).digest()).decode("ascii")
