"""``deploy.artifacts.build_wheel``: the wheel holds what the sources hold, nothing left over."""

from __future__ import annotations

import hashlib
import zipfile
from pathlib import Path

import pytest

from lean_ops_spark.deploy.artifacts import build_wheel

SETUP = """from setuptools import find_packages, setup

setup(
    name="lean-ops-spark",
    version="0.0.1",
    long_description=open("README.md").read(),
    packages=find_packages(include=["lean_ops_spark", "lean_ops_spark.*"]),
)
"""


@pytest.fixture
def checkout(tmp_path: Path) -> Path:
    """A tiny project named like ours, with a ``build/lib`` left by an earlier in-tree build."""
    root = tmp_path / "checkout"
    (root / "lean_ops_spark" / "sub").mkdir(parents=True)
    (root / "setup.py").write_text(SETUP)
    (root / "README.md").write_text("# test\n")
    (root / "lean_ops_spark" / "__init__.py").write_text("")
    (root / "lean_ops_spark" / "sub" / "__init__.py").write_text("")
    (root / "lean_ops_spark" / "kept.py").write_text("X = 1\n")
    stale = root / "build" / "lib" / "lean_ops_spark"
    stale.mkdir(parents=True)
    (stale / "removed_module.py").write_text("GONE = True\n")  # deleted from the sources since
    return root


def _names(wheel: Path) -> set[str]:
    with zipfile.ZipFile(wheel) as archive:
        return set(archive.namelist())


def test_the_wheel_has_no_module_deleted_from_the_sources(checkout: Path) -> None:
    names = _names(build_wheel(checkout))
    assert {"lean_ops_spark/__init__.py", "lean_ops_spark/kept.py", "lean_ops_spark/sub/__init__.py"} <= names
    assert not any("removed_module" in n for n in names)
    assert not (checkout / "lean_ops_spark.egg-info").exists()  # the checkout is not built in


def test_the_same_sources_give_the_same_wheel(checkout: Path) -> None:
    first, second = build_wheel(checkout), build_wheel(checkout)
    assert hashlib.sha256(first.read_bytes()).digest() == hashlib.sha256(second.read_bytes()).digest()
