"""``lean-ops setup-jars``: fetch the Iceberg runtime and SQLite JDBC jars once."""

from __future__ import annotations

import argparse
import os
from pathlib import Path

from lean_ops_spark.cli.context import CliContext
from lean_ops_spark.cli.output import print_json
from lean_ops_spark.runtime.jars import DEFAULT_MAVEN_REPO, aws_artifacts, fetch_jars, local_artifacts

HELP = "fetch the local profile's JVM jars (Iceberg runtime, sqlite-jdbc) into the jar cache"


def register(
    subparsers: argparse._SubParsersAction[argparse.ArgumentParser], common: argparse.ArgumentParser
) -> None:
    parser = subparsers.add_parser(
        "setup-jars",
        parents=[common],
        help=HELP,
        description=HELP + ". Downloads only what the cache lacks and verifies SHA-1 sums. "
        "Point --maven-repo (or LEAN_OPS_MAVEN_REPO) at your own mirror, e.g. an Artifactory "
        "remote of Maven Central.",
    )
    parser.add_argument(
        "--iceberg-version",
        default=None,
        help="Iceberg release: 1.10.0 for Glue 5.1 (default), 1.7.1 for Glue 5.0 "
        "(env LEAN_OPS_ICEBERG_VERSION)",
    )
    parser.add_argument(
        "--jars-dir",
        default=None,
        help="jar cache folder (default ~/.cache/lean-ops/jars, env LEAN_OPS_JARS_DIR)",
    )
    parser.add_argument(
        "--maven-repo",
        default=os.environ.get("LEAN_OPS_MAVEN_REPO", DEFAULT_MAVEN_REPO),
        help=f"Maven-2 repository root (default {DEFAULT_MAVEN_REPO})",
    )
    parser.add_argument(
        "--with-aws",
        action="store_true",
        help="also fetch iceberg-aws-bundle (GlueCatalog + S3FileIO outside Glue: spark-submit, the moto test)",
    )
    parser.set_defaults(handler=run)


def run(ctx: CliContext) -> int:
    version = ctx.args.iceberg_version or os.environ.get("LEAN_OPS_ICEBERG_VERSION") or "1.10.0"
    jars_dir = Path(ctx.args.jars_dir).expanduser() if ctx.args.jars_dir else ctx.jars_dir
    with_aws = bool(getattr(ctx.args, "with_aws", False))
    paths = fetch_jars(jars_dir, version, ctx.args.maven_repo, on_progress=ctx.progress, include_aws=with_aws)
    artifacts = local_artifacts(version) + (aws_artifacts(version) if with_aws else ())
    if ctx.json:
        print_json(
            {
                "ok": True,
                "iceberg_version": version,
                "jars_dir": str(jars_dir),
                "jars": [
                    {"coordinates": a.coordinates, "path": str(p), "bytes": p.stat().st_size}
                    for a, p in zip(artifacts, paths, strict=True)
                ],
            }
        )
    else:
        total = sum(p.stat().st_size for p in paths)
        print(f"{len(paths)} jars ready in {jars_dir} ({total / 1e6:.1f} MB), Iceberg {version}")
    return 0
