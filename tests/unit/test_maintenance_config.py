"""The maintenance policy config: defaults, per-layer and per-table overrides, strict validation."""

from __future__ import annotations

from pathlib import Path

import pytest
import yaml

from lean_ops_spark.config import load_project, parse_maintenance
from lean_ops_spark.config.models import HealthThresholds
from lean_ops_spark.errors import ConfigError

CONF = Path(__file__).resolve().parents[2] / "conf"


def test_empty_file_gives_the_platform_plan() -> None:
    policy = parse_maintenance({}, "m.yaml")
    expire = policy.operation("expire_snapshots")
    assert (
        expire.frequency,
        expire.int_option("retain_last", 0),
        expire.float_option("older_than_days", 0),
    ) == (
        "daily",
        20,
        7.0,
    )
    assert policy.operation("remove_orphan_files").float_option("older_than_hours", 0) == 72
    assert policy.operation("rewrite_data_files").int_option("hot_partition_days", 0) == 7
    assert policy.operation("rewrite_position_delete_files").frequency == "weekly"
    assert policy.operation("rewrite_manifests").frequency == "daily"
    assert policy.thresholds == HealthThresholds()
    assert policy.table_properties["write.target-file-size-bytes"] == str(256 * 1024 * 1024)
    assert policy.for_table("raw", "anything") is policy


def test_layer_and_table_overrides_merge_key_by_key() -> None:
    policy = parse_maintenance(
        {
            "operations": {"expire_snapshots": {"options": {"retain_last": 30}}},
            "thresholds": {"small_file_ratio": 0.4},
            "table_properties": {"write.distribution-mode": "none"},
            "layers": {
                "curated": {
                    "operations": {"expire_snapshots": {"frequency": "weekly"}},
                    "thresholds": {"min_small_files": 8},
                    "table_properties": {"write.distribution-mode": "hash"},
                }
            },
            "tables": {
                "curated.orders": {
                    "operations": {"expire_snapshots": {"options": {"older_than_days": 2}}},
                    "thresholds": {"delete_file_ratio": 0.05},
                }
            },
        },
        "m.yaml",
    )
    orders = policy.for_table("curated", "orders")
    expire = orders.operation("expire_snapshots")
    # defaults < layer < table, each key independently
    assert expire.frequency == "weekly"
    assert expire.options["retain_last"] == "30"
    assert expire.options["older_than_days"] == "2"
    assert orders.thresholds.small_file_ratio == 0.4
    assert orders.thresholds.min_small_files == 8
    assert orders.thresholds.delete_file_ratio == 0.05
    assert orders.table_properties["write.distribution-mode"] == "hash"
    assert "tables.curated.orders" in orders.source

    other_curated = policy.for_table("curated", "clicks")
    assert other_curated.thresholds.delete_file_ratio == HealthThresholds().delete_file_ratio
    assert other_curated.operation("expire_snapshots").options["older_than_days"] == "7"
    raw = policy.for_table("raw", "orders_staging")
    assert raw.operation("expire_snapshots").frequency == "daily"
    assert raw.table_properties["write.distribution-mode"] == "none"


def test_a_table_override_without_a_layer_override_starts_from_the_defaults() -> None:
    policy = parse_maintenance(
        {"tables": {"raw.orders_staging": {"operations": {"remove_orphan_files": {"enabled": False}}}}},
        "m.yaml",
    )
    assert policy.for_table("raw", "orders_staging").operation("remove_orphan_files").enabled is False
    assert policy.for_table("raw", "other_staging").operation("remove_orphan_files").enabled is True


@pytest.mark.parametrize(
    ("data", "message"),
    [
        ({"colour": 1}, r"m\.yaml: unknown key\(s\) colour"),
        ({"operations": {"vacuum": {}}}, r"operations: unknown key\(s\) vacuum \(known: expire_snapshots"),
        (
            {"operations": {"expire_snapshots": {"options": {"keep": 3}}}},
            r"expire_snapshots\.options: unknown key\(s\) keep \(known: retain_last, older_than_days\)",
        ),
        (
            {"operations": {"rewrite_manifests": {"options": {"use_caching": True}}}},
            r"rewrite_manifests\.options: unknown key\(s\) use_caching \(known: none\)",
        ),
        (
            {"operations": {"expire_snapshots": {"options": {"retain_last": 0}}}},
            r"retain_last: must be at least 1",
        ),
        (
            {"operations": {"remove_orphan_files": {"options": {"older_than_hours": 12}}}},
            r"remove_orphan_files\.options\.older_than_hours: must be at least 24",
        ),
        (
            {"operations": {"expire_snapshots": {"frequency": "monthly"}}},
            r"frequency: 'monthly' is not one of",
        ),
        ({"thresholds": {"small_file_ratio": 1.5}}, r"thresholds\.small_file_ratio: must be at most 1\.0"),
        ({"thresholds": {"min_small_files": 1}}, r"thresholds\.min_small_files: must be at least 2"),
        (
            {"thresholds": {"small_files": 3}},
            r"thresholds: unknown key\(s\) small_files \(known: small_file_fraction",
        ),
        ({"table_properties": {"format-version": 3}}, r"format-version cannot be enforced by maintenance"),
        (
            {"layers": {"gold": {}}},
            r"layers\.gold: unknown layer \(use one of raw, curated, quarantine, semantic\)",
        ),
        ({"layers": {"raw": {"schedule": "x"}}}, r"layers\.raw: unknown key\(s\) schedule"),
        ({"tables": {"orders": {}}}, r"tables\.orders: a table key is <layer>\.<table>"),
        ({"tables": {"curated.Orders": {}}}, r"tables\.curated\.Orders: 'Orders' is not a valid identifier"),
        (
            {"tables": {"curated.orders": {"thresholds": {"delete_file_ratio": -1}}}},
            r"tables\.curated\.orders\.thresholds\.delete_file_ratio: must be at least 0",
        ),
    ],
)
def test_bad_maintenance_config_names_file_and_key(data: dict[str, object], message: str) -> None:
    with pytest.raises(ConfigError, match=message):
        parse_maintenance(data, "m.yaml")


def test_shipped_config_has_layer_and_table_overrides() -> None:
    policy = load_project(CONF, "local").maintenance
    assert (
        policy.for_table("raw", "orders_staging").operation("rewrite_position_delete_files").enabled is False
    )
    orders = policy.for_table("curated", "orders")
    assert orders.thresholds.delete_file_ratio == 0.05
    assert orders.operation("rewrite_position_delete_files").frequency == "daily"
    assert orders.table_properties["write.distribution-mode"] == "hash"
    clicks = policy.for_table("curated", "clickstream")
    assert clicks.operation("rewrite_position_delete_files").frequency == "weekly"
    assert policy.table_properties["write.metadata.delete-after-commit.enabled"] == "true"


def test_a_bad_override_in_a_file_names_that_file(tmp_path: Path) -> None:
    for folder in ("profiles", "maintenance"):
        (tmp_path / folder).mkdir()
    (tmp_path / "profiles" / "local.yaml").write_text("kind: local\n")
    (tmp_path / "maintenance" / "default.yaml").write_text(
        yaml.safe_dump({"layers": {"curated": {"operations": {"expire_snapshots": {"enabled": "yes"}}}}})
    )
    with pytest.raises(
        ConfigError,
        match=r"maintenance/default\.yaml: layers\.curated\.operations\.expire_snapshots\.enabled",
    ):
        load_project(tmp_path, "local")


def test_a_table_override_of_a_table_property_is_what_bootstrap_creates(tmp_path: Path) -> None:
    # bootstrap took the defaults' table properties for every table, so maintenance then saw
    # its own override as a conflict with "the table definition" and never applied it
    import shutil

    from lean_ops_spark.catalog.bootstrap import planned_definitions
    from lean_ops_spark.catalog.naming import topic_tables
    from lean_ops_spark.config import load_project
    from lean_ops_spark.maintenance.properties import property_drift
    from lean_ops_spark.maintenance.runner import _definition_properties

    conf = tmp_path / "conf"
    shutil.copytree(CONF, conf)
    policy_file = conf / "maintenance" / "default.yaml"
    marker = "  curated.orders:                   # MERGE-heavy, merge-on-read: rewrite deletes sooner\n"
    text = policy_file.read_text()
    assert marker in text
    policy_file.write_text(
        text.replace(
            marker, marker + "    table_properties:\n      write.target-file-size-bytes: 134217728\n"
        )
    )
    config = load_project(conf, "local")
    tables = topic_tables(config.profile, "orders")
    created = {d.table: d.properties for d in planned_definitions(config, ["orders"])}
    assert created[tables.curated]["write.target-file-size-bytes"] == "134217728"
    assert created[tables.raw]["write.target-file-size-bytes"] == "268435456"  # not overridden there
    wanted = config.maintenance.for_table("curated", "orders").table_properties
    drift = property_drift(
        dict(created[tables.curated]), wanted, _definition_properties(config, tables.curated)
    )
    assert [c for c in drift if c.key == "write.target-file-size-bytes"] == []
