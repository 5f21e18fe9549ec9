"""The wheel Glue installs: pure Python, tiny requirements, no pyspark, imports without Spark."""

from __future__ import annotations

import subprocess
import venv
import zipfile
from pathlib import Path

import pytest

from lean_ops_spark.deploy.artifacts import build_wheel

REPO = Path(__file__).resolve().parents[2]


@pytest.fixture(scope="module")
def wheel() -> Path:
    return build_wheel(REPO)  # what lean-ops deploy ships


def test_wheel_is_pure_python_and_never_declares_pyspark(wheel: Path) -> None:
    assert wheel.name.endswith("-py3-none-any.whl")
    with zipfile.ZipFile(wheel) as archive:
        names = archive.namelist()
        metadata = next(archive.read(n).decode() for n in names if n.endswith(".dist-info/METADATA"))
    assert "lean_ops_spark/py.typed" in names
    # every module of the source tree is in the wheel (a folder without __init__.py is not)
    source = {str(p.relative_to(REPO)) for p in (REPO / "lean_ops_spark").rglob("*.py")}
    assert source <= set(names), sorted(source - set(names))
    assert not any(n.startswith(("tests/", "conf/", "jobs/")) for n in names)
    requires = [line for line in metadata.splitlines() if line.startswith("Requires-Dist:")]
    base = [r for r in requires if "extra ==" not in r]
    assert base == ["Requires-Dist: PyYAML>=5.4"]
    assert not any("pyspark" in r.lower() for r in base)
    assert any("pyspark==3.5.6" in r and 'extra == "local"' in r for r in requires)


@pytest.mark.slow
def test_wheel_installs_and_imports_in_a_fresh_venv_without_pyspark(wheel: Path, tmp_path: Path) -> None:
    env_dir = tmp_path / "venv"
    venv.create(env_dir, with_pip=True)
    python = env_dir / "bin" / "python"
    subprocess.run([str(python), "-m", "pip", "install", "-q", str(wheel)], check=True)
    probe = (
        "import importlib.util, sys, lean_ops_spark, lean_ops_spark.config, lean_ops_spark.session, "
        "lean_ops_spark.cli.main\n"
        "assert importlib.util.find_spec('pyspark') is None, 'pyspark must not be installed'\n"
        "assert 'pyspark' not in sys.modules\n"
        "print(lean_ops_spark.__version__)"
    )
    result = subprocess.run([str(python), "-c", probe], check=True, capture_output=True, text=True)
    assert result.stdout.strip() == __import__("lean_ops_spark").__version__
