"""The jar fetcher, with a fake transport: checksums, cache reuse, clear errors."""

from __future__ import annotations

import hashlib
import urllib.error
from pathlib import Path

import pytest

from lean_ops_spark.errors import ConfigError, RuntimeSetupError
from lean_ops_spark.runtime.jars import fetch_jars, local_artifacts, local_jar_paths


class FakeRepo:
    def __init__(self, corrupt: bool = False) -> None:
        self.calls: list[str] = []
        self.corrupt = corrupt

    def __call__(self, url: str, timeout: float) -> bytes:
        self.calls.append(url)
        body = f"jar bytes of {url.removesuffix('.sha1')}".encode()
        if url.endswith(".sha1"):
            return (hashlib.sha1(body).hexdigest() + "  file.jar\n").encode()
        return body + (b"tampered" if self.corrupt else b"")


def test_artifacts_follow_maven_layout_for_the_chosen_iceberg_version() -> None:
    runtime, sqlite = local_artifacts("1.7.1")
    assert runtime.coordinates == "org.apache.iceberg:iceberg-spark-runtime-3.5_2.12:1.7.1"
    assert runtime.url("https://mirror.example/maven2/") == (
        "https://mirror.example/maven2/org/apache/iceberg/iceberg-spark-runtime-3.5_2.12/1.7.1/"
        "iceberg-spark-runtime-3.5_2.12-1.7.1.jar"
    )
    assert sqlite.group == "org.xerial"


def test_fetch_downloads_once_and_then_reuses_the_cache(tmp_path: Path) -> None:
    repo = FakeRepo()
    first = fetch_jars(tmp_path, "1.10.0", "https://m.example", download=repo)
    assert len(repo.calls) == 4  # two jars + two checksums
    assert all(p.is_file() for p in first)
    second = fetch_jars(tmp_path, "1.10.0", "https://m.example", download=repo)
    assert second == first
    assert len(repo.calls) == 4  # nothing downloaded again
    assert local_jar_paths(tmp_path, "1.10.0") == first


def test_checksum_mismatch_leaves_nothing_in_the_cache(tmp_path: Path) -> None:
    with pytest.raises(RuntimeSetupError, match=r"checksum mismatch for org\.apache\.iceberg"):
        fetch_jars(tmp_path, "1.10.0", "https://m.example", download=FakeRepo(corrupt=True))
    assert list(tmp_path.iterdir()) == []


def test_unreachable_repository_names_the_artifact_and_url(tmp_path: Path) -> None:
    def offline(url: str, timeout: float) -> bytes:
        raise urllib.error.URLError("no route")

    with pytest.raises(
        RuntimeSetupError, match=r"could not download org\.apache\.iceberg:.* from https://m\.example/"
    ):
        fetch_jars(tmp_path, "1.10.0", "https://m.example", download=offline)


def test_missing_jars_say_how_to_fetch_them(tmp_path: Path) -> None:
    with pytest.raises(RuntimeSetupError, match=r"make setup.*--iceberg-version 1\.7\.1"):
        local_jar_paths(tmp_path, "1.7.1")


def test_iceberg_version_must_be_a_release_number() -> None:
    with pytest.raises(ConfigError, match="not a release number"):
        local_artifacts("latest")
