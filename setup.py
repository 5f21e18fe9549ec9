"""Packaging for lean-ops-spark: a pure-Python wheel (py3-none-any).

Install requirements stay tiny because Glue pip-installs them at every job start, and
pyspark is never declared: Glue (and any Spark cluster) provides it. Local runs get
pyspark through the ``local`` extra.
"""

from pathlib import Path

from setuptools import find_packages, setup

ROOT = Path(__file__).parent
version: dict[str, str] = {}
exec((ROOT / "lean_ops_spark" / "_version.py").read_text(), version)

# One tested set that imports together: pyspark 3.5's pandas API needs numpy < 2
# (np.NaN), which bounds pandas to 2.x and pyarrow to < 19 (pyarrow 19+ needs numpy 2).
LOCAL = [
    "pyspark==3.5.6",  # the Glue 5.1 line
    "numpy>=1.26,<2",
    "pandas>=2.1,<2.3",
    "pyarrow>=18,<19",
]
DQ = ["great-expectations>=1.3,<2"]
LAMBDA = ["pyiceberg[sql-sqlite,glue,pyarrow]>=0.10,<0.13", "boto3>=1.34"]
AWS = ["boto3>=1.34"]
DEV = [
    "pytest>=8",
    "chispa>=0.10",
    "moto[server]>=5.1,<6",
    "ruff>=0.6",
    "mypy>=1.10",
    "types-PyYAML",
    "build>=1.2",
    "setuptools>=68",
    "wheel",
]

setup(
    name="lean-ops-spark",
    version=version["__version__"],
    description="AWS Glue / Spark job code for an Iceberg lakehouse: raw -> curated -> semantic, "
    "with atomic checkpoints, quarantine, drift handling, data quality and table maintenance.",
    long_description=(ROOT / "README.md").read_text(encoding="utf-8"),
    long_description_content_type="text/markdown",
    license="Apache-2.0",
    python_requires=">=3.10",
    packages=find_packages(include=["lean_ops_spark", "lean_ops_spark.*"]),
    package_data={"lean_ops_spark": ["py.typed"]},
    install_requires=["PyYAML>=5.4"],
    extras_require={
        "local": LOCAL,
        "dq": DQ,
        "lambda": LAMBDA,
        "aws": AWS,
        "dev": DEV,
        "all": sorted(set(LOCAL + DQ + LAMBDA + AWS + DEV)),
    },
    entry_points={"console_scripts": ["lean-ops=lean_ops_spark.cli.main:main"]},
    classifiers=[
        "Programming Language :: Python :: 3.11",
        "Topic :: Database",
        "Typing :: Typed",
    ],
)
