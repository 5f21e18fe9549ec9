"""JVM dependencies of the local profile: Maven coordinates, the jar cache, the fetcher.

On Glue the Iceberg runtime comes from ``--datalake-formats iceberg``; everywhere else
Spark needs the Iceberg Spark runtime (and the SQLite JDBC driver for the embedded
catalog) on its classpath. ``fetch_jars`` downloads them once from a Maven repository
(Maven Central by default, or a mirror) into a cache folder that later runs reuse;
``local_jar_paths`` only looks there and never downloads.
"""

from __future__ import annotations

import hashlib
import urllib.error
import urllib.request
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from lean_ops_spark.errors import ConfigError, RuntimeSetupError

__all__ = [
    "DEFAULT_ICEBERG_VERSION",
    "DEFAULT_MAVEN_REPO",
    "GLUE_ICEBERG_VERSIONS",
    "SQLITE_JDBC_VERSION",
    "MavenArtifact",
    "aws_artifacts",
    "aws_jar_paths",
    "default_jars_dir",
    "fetch_jars",
    "local_artifacts",
    "local_jar_paths",
]

#: Iceberg bundled by each Glue version with ``--datalake-formats iceberg``.
GLUE_ICEBERG_VERSIONS: dict[str, str] = {"5.0": "1.7.1", "5.1": "1.10.0"}
DEFAULT_ICEBERG_VERSION = GLUE_ICEBERG_VERSIONS["5.1"]
SQLITE_JDBC_VERSION = "3.50.3.0"
DEFAULT_MAVEN_REPO = "https://repo1.maven.org/maven2"
SCALA_BINARY_VERSION = "2.12"  # Glue 5.x runs Scala 2.12.18


@dataclass(frozen=True)
class MavenArtifact:
    """One jar identified by its Maven coordinates ``group:artifact:version``."""

    group: str
    artifact: str
    version: str

    @property
    def coordinates(self) -> str:
        return f"{self.group}:{self.artifact}:{self.version}"

    @property
    def file_name(self) -> str:
        return f"{self.artifact}-{self.version}.jar"

    def url(self, repo: str) -> str:
        """The jar's address in a Maven-2 layout repository rooted at ``repo``."""
        group_path = self.group.replace(".", "/")
        return f"{repo.rstrip('/')}/{group_path}/{self.artifact}/{self.version}/{self.file_name}"


def local_artifacts(iceberg_version: str = DEFAULT_ICEBERG_VERSION) -> tuple[MavenArtifact, ...]:
    """The jars a local (non-Glue) Spark needs for the embedded catalog."""
    if not iceberg_version or not all(p.isdigit() for p in iceberg_version.split(".")):
        raise ConfigError(f"iceberg version {iceberg_version!r} is not a release number like 1.10.0")
    return (
        MavenArtifact(
            "org.apache.iceberg", f"iceberg-spark-runtime-3.5_{SCALA_BINARY_VERSION}", iceberg_version
        ),
        MavenArtifact("org.xerial", "sqlite-jdbc", SQLITE_JDBC_VERSION),
    )


def aws_artifacts(iceberg_version: str = DEFAULT_ICEBERG_VERSION) -> tuple[MavenArtifact, ...]:
    """Extra jars for the glue profile outside Glue (GlueCatalog + S3FileIO, e.g. against moto).

    Glue itself brings them with ``--datalake-formats iceberg``; ``spark-submit`` and the
    moto-server test need ``iceberg-aws-bundle`` (the AWS SDK v2 shaded) on the classpath.
    """
    local_artifacts(iceberg_version)  # same version check
    return (MavenArtifact("org.apache.iceberg", "iceberg-aws-bundle", iceberg_version),)


def aws_jar_paths(jars_dir: Path, iceberg_version: str = DEFAULT_ICEBERG_VERSION) -> list[Path]:
    """Paths of the cached AWS jars; never downloads.

    Raises:
        RuntimeSetupError: a jar is missing, with the command that fetches it.
    """
    paths = [jars_dir / a.file_name for a in aws_artifacts(iceberg_version)]
    missing = [p for p in paths if not p.is_file()]
    if missing:
        raise RuntimeSetupError(
            f"missing JVM dependencies in {jars_dir}: {', '.join(p.name for p in missing)}. "
            f"Run `lean-ops setup-jars --with-aws --iceberg-version {iceberg_version}`."
        )
    return paths


def default_jars_dir() -> Path:
    """The per-user jar cache shared by every checkout: ``~/.cache/lean-ops/jars``."""
    return Path.home() / ".cache" / "lean-ops" / "jars"


def local_jar_paths(jars_dir: Path, iceberg_version: str = DEFAULT_ICEBERG_VERSION) -> list[Path]:
    """Paths of the cached jars for ``iceberg_version``; never downloads.

    Raises:
        RuntimeSetupError: a jar is missing, with the command that fetches it.
    """
    paths = [jars_dir / a.file_name for a in local_artifacts(iceberg_version)]
    missing = [p for p in paths if not p.is_file()]
    if missing:
        names = ", ".join(p.name for p in missing)
        raise RuntimeSetupError(
            f"missing JVM dependencies in {jars_dir}: {names}. "
            f"Run `make setup` or `lean-ops setup-jars --iceberg-version {iceberg_version}`."
        )
    return paths


def _download(url: str, timeout: float) -> bytes:
    with urllib.request.urlopen(url, timeout=timeout) as response:  # noqa: S310 - https/file repos only
        data: bytes = response.read()
        return data


def fetch_jars(
    jars_dir: Path,
    iceberg_version: str = DEFAULT_ICEBERG_VERSION,
    repo: str = DEFAULT_MAVEN_REPO,
    *,
    timeout: float = 300.0,
    on_progress: Callable[[str], None] | None = None,
    download: Callable[[str, float], bytes] = _download,
    include_aws: bool = False,
) -> list[Path]:
    """Fetch the local jars into ``jars_dir`` unless already there; verify SHA-1 sums.

    Args:
        jars_dir: the cache folder (created if needed).
        iceberg_version: the Iceberg release (1.10.0 for Glue 5.1, 1.7.1 for Glue 5.0).
        repo: a Maven-2 layout repository (Maven Central or a mirror such as Artifactory).
        on_progress: called with one human-readable line per jar.
        download: the transport (replaced in tests).
        include_aws: also fetch ``iceberg-aws-bundle`` (GlueCatalog/S3FileIO outside Glue).

    Returns:
        The jar paths, in classpath order.

    Raises:
        RuntimeSetupError: a download failed or a checksum did not match.
    """
    jars_dir.mkdir(parents=True, exist_ok=True)
    say = on_progress or (lambda _line: None)
    paths = []
    artifacts = local_artifacts(iceberg_version) + (aws_artifacts(iceberg_version) if include_aws else ())
    for artifact in artifacts:
        target = jars_dir / artifact.file_name
        paths.append(target)
        if target.is_file() and target.stat().st_size > 0:
            say(f"cached      {artifact.coordinates} ({target.stat().st_size / 1e6:.1f} MB)")
            continue
        url = artifact.url(repo)
        try:
            payload = download(url, timeout)
            expected = download(url + ".sha1", timeout).decode("ascii").split()[0].strip()
        except (urllib.error.URLError, OSError, TimeoutError) as exc:
            raise RuntimeSetupError(f"could not download {artifact.coordinates} from {url}: {exc}") from exc
        actual = hashlib.sha1(payload, usedforsecurity=False).hexdigest()
        if actual != expected.lower():
            raise RuntimeSetupError(
                f"checksum mismatch for {artifact.coordinates} from {url}: sha1 {actual} != {expected}"
            )
        partial = target.with_suffix(".jar.part")
        partial.write_bytes(payload)
        partial.replace(target)  # atomic: a crash never leaves a truncated jar in the cache
        say(f"downloaded  {artifact.coordinates} ({len(payload) / 1e6:.1f} MB)")
    return paths
