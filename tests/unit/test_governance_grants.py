"""Lake Formation grants against moto: plan from config, apply the difference, idempotent rerun,
extras reported and (only when asked) revoked, other principals never touched."""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import boto3
import pytest
from moto import mock_aws

from lean_ops_spark.catalog.metadata import TableSnapshots
from lean_ops_spark.catalog.naming import TableRef
from lean_ops_spark.cli.main import main
from lean_ops_spark.governance.context import GovernanceContext, load_governance_context
from lean_ops_spark.governance.grants import (
    GrantChange,
    GrantPlan,
    LfGrant,
    LfResource,
    apply_grant_plan,
    desired_grants,
    normalize_permission_entry,
    plan_grants,
)
from lean_ops_spark.orchestration.checkpoints import get_all_checkpoints
from tests.unit.test_governance_config import ACCOUNT, REPO, governance_doc, role, write_project

CURATION = role("curation-job")
SNOWFLAKE = role("snowflake")
AUDIT = {"Table": {"DatabaseName": "lakehouse_curated", "Name": "lean_ops_drift_audit"}}


@pytest.fixture
def lf(fake_aws_env: str) -> Iterator[Any]:
    with mock_aws():
        yield boto3.client("lakeformation", region_name="us-east-1")


@pytest.fixture
def context(tmp_path: Path) -> GovernanceContext:
    return load_governance_context(write_project(tmp_path), "test")


ADMIN = role("lake-admin")  # a principal the file does not manage


def _create_semantic_tables(context: GovernanceContext, lf: Any) -> None:
    """What a semantic job's first run leaves in Lake Formation: a permission on each table it
    creates (here an unmanaged admin's, so no managed grant changes)."""
    for table in context.scope().tables("semantic"):
        lf.grant_permissions(
            CatalogId=ACCOUNT,
            Principal={"DataLakePrincipalIdentifier": ADMIN},
            Resource={"Table": {"DatabaseName": table.database, "Name": table.name}},
            Permissions=["DESCRIBE"],
        )


def _plan(context: GovernanceContext, lf: Any, *, semantic_created: bool = True, **kwargs: Any) -> GrantPlan:
    """The plan, by default once the semantic tables exist (the semantic job created them)."""
    if semantic_created and not any(who == ADMIN for who, _what, _p in _listed(lf)):
        _create_semantic_tables(context, lf)
    return plan_grants(context.governance, context.environment, context.scope(), lf, **kwargs)


def _on_audit(changes: tuple[GrantChange, ...]) -> list[tuple[str, tuple[str, ...]]]:
    return [(c.principal, c.permissions) for c in changes if c.resource.table == "lean_ops_drift_audit"]


def _listed(lf: Any) -> set[tuple[str, str, str]]:
    out = set()
    for entry in lf.list_permissions(CatalogId=ACCOUNT)["PrincipalResourcePermissions"]:
        for grant, _raw in normalize_permission_entry(entry):
            out.add((grant.principal, grant.resource.describe(), grant.permission))
    return out


def test_first_run_grants_the_config_and_the_second_changes_nothing(
    context: GovernanceContext, lf: Any
) -> None:
    first = _plan(context, lf)
    assert first.unchanged == 0 and first.extra == () and first.warnings == ()
    apply_grant_plan(first, lf)
    listed = {entry for entry in _listed(lf) if entry[0] != ADMIN}  # not the semantic tables' creator
    # curation: SELECT/DESCRIBE on raw, ALL on curated and quarantine, CREATE_TABLE on the curated db
    assert (CURATION, "table lakehouse_raw.orders_staging", "SELECT") in listed
    assert (CURATION, "table lakehouse_raw.orders_staging", "ALL") not in listed
    assert (CURATION, "table lakehouse_curated.orders_quarantine", "ALL") in listed
    assert (CURATION, "database lakehouse_curated", "CREATE_TABLE") in listed
    assert (
        CURATION,
        "data location arn:aws:s3:::example-lakehouse-warehouse/iceberg/lakehouse_curated.db",
        "DATA_LOCATION_ACCESS",
    ) in listed
    # semantic job reads curated, never quarantine
    semantic = {(r, p) for who, r, p in listed if who == role("semantic-job")}
    assert ("table lakehouse_curated.orders", "SELECT") in semantic
    assert not any("quarantine" in r or "lakehouse_raw" in r for r, _ in semantic)
    # Snowflake: SELECT without the sensitive column, DESCRIBE on the table, nothing outside semantic
    snowflake = {(r, p) for who, r, p in listed if who == SNOWFLAKE}
    assert snowflake == {
        ("table lakehouse_semantic.customer_orders (columns except email)", "SELECT"),
        ("table lakehouse_semantic.customer_orders", "DESCRIBE"),
        ("table lakehouse_semantic.daily_sessions", "SELECT"),
        ("table lakehouse_semantic.daily_sessions", "DESCRIBE"),
    }
    assert len(listed) == sum(len(c.permissions) for c in first.missing)

    second = _plan(context, lf)
    assert second.missing == () and second.extra == ()
    assert second.unchanged == len(listed)
    apply_grant_plan(second, lf)
    assert {entry for entry in _listed(lf) if entry[0] != ADMIN} == listed


def test_the_column_exclusion_is_granted_as_table_with_columns(context: GovernanceContext, lf: Any) -> None:
    apply_grant_plan(_plan(context, lf), lf)
    found = [
        e
        for e in lf.list_permissions(CatalogId=ACCOUNT)["PrincipalResourcePermissions"]
        if e["Principal"]["DataLakePrincipalIdentifier"] == SNOWFLAKE
        and "customer_orders" in json.dumps(e["Resource"])
    ]
    shapes = {json.dumps(e["Resource"], sort_keys=True): sorted(e["Permissions"]) for e in found}
    assert shapes[
        json.dumps(
            {
                "TableWithColumns": {
                    "ColumnWildcard": {"ExcludedColumnNames": ["email"]},
                    "DatabaseName": "lakehouse_semantic",
                    "Name": "customer_orders",
                }
            },
            sort_keys=True,
        )
    ] == ["SELECT"]
    assert shapes[
        json.dumps(
            {"Table": {"DatabaseName": "lakehouse_semantic", "Name": "customer_orders"}}, sort_keys=True
        )
    ] == ["DESCRIBE"]


def test_extras_are_reported_kept_by_default_and_revoked_when_asked(
    context: GovernanceContext, lf: Any
) -> None:
    apply_grant_plan(_plan(context, lf), lf)
    # someone widened the curation role by hand, and gave an unmanaged role access
    lf.grant_permissions(
        CatalogId=ACCOUNT,
        Principal={"DataLakePrincipalIdentifier": CURATION},
        Resource={"Table": {"DatabaseName": "lakehouse_semantic", "Name": "customer_orders"}},
        Permissions=["SELECT", "DROP"],
    )
    lf.grant_permissions(
        CatalogId=ACCOUNT,
        Principal={"DataLakePrincipalIdentifier": role("someone-else")},
        Resource={"Table": {"DatabaseName": "lakehouse_semantic", "Name": "customer_orders"}},
        Permissions=["SELECT"],
    )
    lf.grant_permissions(  # outside this environment's databases: never in scope
        CatalogId=ACCOUNT,
        Principal={"DataLakePrincipalIdentifier": CURATION},
        Resource={"Database": {"Name": "another_team"}},
        Permissions=["DESCRIBE"],
    )
    kept = _plan(context, lf)
    assert kept.missing == ()
    assert [(c.principal, c.resource.describe(), c.permissions) for c in kept.extra] == [
        (CURATION, "table lakehouse_semantic.customer_orders", ("DROP", "SELECT"))
    ]
    assert kept.extra[0].principal_names == ("curation_job",)
    apply_grant_plan(kept, lf)
    assert (CURATION, "table lakehouse_semantic.customer_orders", "DROP") in _listed(lf)

    revoked = _plan(context, lf, revoke_extra=True)
    apply_grant_plan(revoked, lf)
    after = _listed(lf)
    assert (CURATION, "table lakehouse_semantic.customer_orders", "DROP") not in after
    assert (role("someone-else"), "table lakehouse_semantic.customer_orders", "SELECT") in after
    assert (CURATION, "database another_team", "DESCRIBE") in after
    final = _plan(context, lf, revoke_extra=True)
    assert final.missing == () and final.extra == ()


class _ShapeCheckingLakeFormation:
    """moto's Lake Formation client, with the one rule of the real service moto does not check:
    a ``TableWithColumns`` resource takes SELECT only (DESCRIBE, DROP… on it are refused per entry)."""

    def __init__(self, client: Any) -> None:
        self.client = client
        self.revoked: list[tuple[str, tuple[str, ...]]] = []

    def batch_revoke_permissions(self, CatalogId: str, Entries: list[dict[str, Any]]) -> dict[str, Any]:
        failures, valid = [], []
        for entry in Entries:
            if "TableWithColumns" in entry["Resource"] and set(entry["Permissions"]) - {"SELECT"}:
                failures.append(
                    {
                        "RequestEntry": {"Id": entry["Id"]},
                        "Error": {
                            "ErrorCode": "InvalidInputException",
                            "ErrorMessage": "Permissions modification is invalid.",
                        },
                    }
                )
            else:
                valid.append(entry)
                self.revoked.append((next(iter(entry["Resource"])), tuple(sorted(entry["Permissions"]))))
        if valid:
            self.client.batch_revoke_permissions(CatalogId=CatalogId, Entries=valid)
        return {"Failures": failures}

    def __getattr__(self, name: str) -> Any:
        return getattr(self.client, name)


def test_extras_listed_in_different_shapes_are_revoked_each_in_its_own_shape(
    context: GovernanceContext, lf: Any
) -> None:
    """Lake Formation lists a table-level SELECT as TableWithColumns + ColumnWildcard and DESCRIBE /
    DROP as Table: one combined revoke would put DESCRIBE on TableWithColumns (refused) or SELECT
    on a Table entry that is not the listed one (the SELECT stays)."""
    apply_grant_plan(_plan(context, lf), lf)
    table = {"DatabaseName": "lakehouse_semantic", "Name": "customer_orders"}
    lf.grant_permissions(
        CatalogId=ACCOUNT,
        Principal={"DataLakePrincipalIdentifier": CURATION},
        Resource={"TableWithColumns": {**table, "ColumnWildcard": {}}},
        Permissions=["SELECT"],
    )
    lf.grant_permissions(
        CatalogId=ACCOUNT,
        Principal={"DataLakePrincipalIdentifier": CURATION},
        Resource={"Table": table},
        Permissions=["DESCRIBE", "DROP"],
    )
    plan = _plan(context, lf, revoke_extra=True)
    assert [(next(iter(c.api_resource)), c.permissions) for c in plan.extra] == [
        ("Table", ("DESCRIBE", "DROP")),
        ("TableWithColumns", ("SELECT",)),
    ]
    assert {c.resource.describe() for c in plan.extra} == {"table lakehouse_semantic.customer_orders"}
    checking = _ShapeCheckingLakeFormation(lf)
    apply_grant_plan(plan, checking)
    assert sorted(checking.revoked) == [("Table", ("DESCRIBE", "DROP")), ("TableWithColumns", ("SELECT",))]
    assert not any(who == CURATION and "customer_orders" in what for who, what, _p in _listed(lf))
    final = _plan(context, lf, revoke_extra=True)
    assert final.missing == () and final.extra == ()


def test_revoke_extra_keeps_the_curation_jobs_all_on_the_drift_audit_table(
    context: GovernanceContext, lf: Any
) -> None:
    """Curation creates ``<curated_db>.lean_ops_drift_audit`` on its first drift and appends to it
    on every one (drift.audit); Lake Formation records ALL for it as the creator."""
    apply_grant_plan(_plan(context, lf), lf)
    lf.grant_permissions(  # the first drift
        CatalogId=ACCOUNT,
        Principal={"DataLakePrincipalIdentifier": CURATION},
        Resource=AUDIT,
        Permissions=["ALL"],
    )
    kept = _plan(context, lf, revoke_extra=True)
    assert _on_audit(kept.extra) == []
    assert kept.pending == ()
    apply_grant_plan(kept, lf)
    assert (CURATION, "table lakehouse_curated.lean_ops_drift_audit", "ALL") in _listed(lf)


def test_the_drift_audit_grant_waits_for_the_table(context: GovernanceContext, lf: Any) -> None:
    """Before the first drift nothing is listed on the table: it does not exist, and a grant on
    it would fail the whole apply, so the grant is deferred (the creator gets ALL anyway)."""
    first = _plan(context, lf)
    assert _on_audit(first.missing) == []
    assert _on_audit(first.deferred) == [(CURATION, ("ALL",))]
    apply_grant_plan(first, lf)
    assert not any("lean_ops_drift_audit" in resource for _who, resource, _p in _listed(lf))


def test_the_drift_audit_grant_is_made_once_the_table_exists(context: GovernanceContext, lf: Any) -> None:
    """Created before the curation job's role changed: the new role is granted ALL on it."""
    apply_grant_plan(_plan(context, lf), lf)
    lf.grant_permissions(
        CatalogId=ACCOUNT,
        Principal={"DataLakePrincipalIdentifier": role("previous-curation-job")},
        Resource=AUDIT,
        Permissions=["ALL"],
    )
    plan = _plan(context, lf)
    assert _on_audit(plan.missing) == [(CURATION, ("ALL",))] and plan.deferred == ()
    apply_grant_plan(plan, lf)
    assert _plan(context, lf).pending == ()


def test_a_curation_job_the_file_does_not_name_gets_nothing_on_the_drift_audit_table(
    tmp_path: Path, lf: Any
) -> None:
    doc = governance_doc()
    del doc["lake_formation"]["grants"]["curation_job"]
    context = load_governance_context(write_project(tmp_path, gov_doc=doc), "test")
    lf.grant_permissions(
        CatalogId=ACCOUNT,
        Principal={"DataLakePrincipalIdentifier": CURATION},
        Resource=AUDIT,
        Permissions=["ALL"],
    )
    plan = _plan(context, lf, revoke_extra=True)
    assert _on_audit(plan.missing + plan.extra + plan.deferred) == []


def test_a_maintenance_job_the_file_names_gets_all_on_the_drift_audit_table_once_it_exists(
    tmp_path: Path, lf: Any
) -> None:
    """Maintenance expires and compacts the drift audit table like every other; granted only
    per table in the file, it had no permission on it (the table is no topic's)."""
    maintenance = role("maintenance-job")
    doc = governance_doc()
    doc["lake_formation"]["grants"]["maintenance_job"] = {"curated": ["ALL"]}
    context = load_governance_context(write_project(tmp_path, gov_doc=doc), "test")
    first = _plan(context, lf)
    assert sorted(_on_audit(first.deferred)) == sorted([(CURATION, ("ALL",)), (maintenance, ("ALL",))])
    apply_grant_plan(first, lf)
    lf.grant_permissions(  # the first drift: curation creates the table
        CatalogId=ACCOUNT,
        Principal={"DataLakePrincipalIdentifier": CURATION},
        Resource=AUDIT,
        Permissions=["ALL"],
    )
    plan = _plan(context, lf)
    assert _on_audit(plan.missing) == [(maintenance, ("ALL",))] and plan.deferred == ()
    apply_grant_plan(plan, lf)
    assert (maintenance, "table lakehouse_curated.lean_ops_drift_audit", "ALL") in _listed(lf)


def test_grants_on_semantic_tables_wait_for_the_semantic_jobs_first_run(
    context: GovernanceContext, lf: Any
) -> None:
    """A semantic table is created by its model's first run; a grant on it before that fails in
    Lake Formation (EntityNotFoundException) and with it the whole apply of a new environment.
    Such grants are deferred until the table exists, then granted."""
    semantic = {t.name for t in context.scope().tables("semantic")}
    first = _plan(context, lf, semantic_created=False)
    assert semantic and {c.resource.table for c in first.deferred} >= semantic
    assert not any(c.resource.table in semantic for c in first.missing)
    apply_grant_plan(first, lf)
    _create_semantic_tables(context, lf)
    second = _plan(context, lf)
    assert {c.resource.table for c in second.missing} >= semantic
    assert not any(c.resource.table in semantic for c in second.deferred)
    apply_grant_plan(second, lf)
    assert (SNOWFLAKE, "table lakehouse_semantic.customer_orders", "DESCRIBE") in _listed(lf)


def test_the_shipped_grants_let_the_lambda_describe_every_table_get_all_checkpoints_reads() -> None:
    """conf/governance/dev.yaml: the checkpoints Lambda lists raw, curated and semantic
    (``<semantic_db>.<topic>`` carries the curated checkpoint); Lake Formation hides a table the
    principal holds nothing on, and a hidden semantic table never starts a semantic catch-up."""
    context = load_governance_context(REPO / "conf", "dev")
    scope = context.scope()
    requested: list[TableRef] = []

    class Recording:
        def load(self, tables: Any) -> dict[str, TableSnapshots]:
            requested.extend(tables)
            return {t.identifier: TableSnapshots(t.identifier, exists=False) for t in tables}

    get_all_checkpoints(Recording(), scope.profile, scope.topics)
    assert {t.layer for t in requested} == {"raw", "curated", "semantic"}
    grants, _names, _warnings = desired_grants(context.governance, context.environment, scope)
    lam = context.environment.lambda_role_arn
    hidden = [
        t.identifier
        for t in requested
        if LfGrant(lam, LfResource("table", t.database, t.name), "DESCRIBE") not in grants
    ]
    assert hidden == []
    assert {g.permission for g in grants if g.principal == lam} == {"DESCRIBE"}  # read only


def test_a_changed_config_grants_and_revokes_only_the_difference(tmp_path: Path, lf: Any) -> None:
    before = load_governance_context(write_project(tmp_path / "a"), "test")
    apply_grant_plan(_plan(before, lf), lf)
    doc = governance_doc()
    doc["lake_formation"]["grants"]["analyst"] = {"semantic": ["SELECT", "DESCRIBE"]}  # + DESCRIBE
    del doc["lake_formation"]["grants"]["lambda"]["raw"]  # - DESCRIBE on raw
    after = load_governance_context(write_project(tmp_path / "b", gov_doc=doc), "test")
    plan = _plan(after, lf, revoke_extra=True)
    assert sorted((c.action, c.resource.describe(), c.permissions) for c in plan.pending) == [
        ("grant", "table lakehouse_semantic.customer_orders", ("DESCRIBE",)),
        ("grant", "table lakehouse_semantic.daily_sessions", ("DESCRIBE",)),
        ("revoke", "table lakehouse_raw.clickstream_staging", ("DESCRIBE",)),
        ("revoke", "table lakehouse_raw.orders_staging", ("DESCRIBE",)),
    ]
    apply_grant_plan(plan, lf)
    assert _plan(after, lf, revoke_extra=True).pending == ()


def test_a_shared_role_is_warned_about(tmp_path: Path, lf: Any) -> None:
    from tests.unit.test_governance_config import governed_env_doc

    env = governed_env_doc()
    for job in env["glue"]["jobs"].values():
        job.pop("role_arn")
    context = load_governance_context(write_project(tmp_path, env_doc=env), "test")
    plan = _plan(context, lf)
    assert plan.warnings == (
        "curation_job, semantic_job share the role arn:aws:iam::123456789012:role/glue: it gets the union "
        "of their grants (give each its own role for least privilege)",
    )


def test_an_excluded_column_table_must_be_in_its_layer(tmp_path: Path, lf: Any) -> None:
    from lean_ops_spark.errors import ConfigError

    doc = governance_doc()
    doc["lake_formation"]["grants"]["snowflake"]["semantic"]["excluded_columns"] = {"nope": ["x"]}
    context = load_governance_context(write_project(tmp_path, gov_doc=doc), "test")
    with pytest.raises(
        ConfigError, match=r"excluded_columns: 'nope' is not a semantic table \(known: customer_orders"
    ):
        _plan(context, lf)


def test_listed_shapes_normalize_to_the_same_grant() -> None:
    """Lake Formation reports a table-level SELECT as TableWithColumns + an empty ColumnWildcard."""
    principal = {"DataLakePrincipalIdentifier": SNOWFLAKE}
    as_columns = normalize_permission_entry(
        {
            "Principal": principal,
            "Resource": {
                "TableWithColumns": {
                    "CatalogId": ACCOUNT,
                    "DatabaseName": "d",
                    "Name": "t",
                    "ColumnWildcard": {},
                }
            },
            "Permissions": ["SELECT"],
        }
    )
    as_table = normalize_permission_entry(
        {
            "Principal": principal,
            "Resource": {"Table": {"DatabaseName": "d", "Name": "t"}},
            "Permissions": ["SELECT"],
        }
    )
    assert (
        [g for g, _ in as_columns]
        == [g for g, _ in as_table]
        == [LfGrant(SNOWFLAKE, LfResource("table", "d", "t"), "SELECT")]
    )
    # the listed shape is kept for the revoke call
    assert as_columns[0][1]["TableWithColumns"]["ColumnWildcard"] == {}
    location = normalize_permission_entry(
        {
            "Principal": principal,
            "Resource": {"DataLocation": {"ResourceArn": "arn:aws:s3:::b/p/"}},
            "Permissions": ["DATA_LOCATION_ACCESS"],
        }
    )
    assert location[0][0].resource == LfResource("data_location", location="arn:aws:s3:::b/p")


def test_cli_dry_run_changes_nothing_then_apply_then_nothing_to_do(
    tmp_path: Path, lf: Any, capsys: pytest.CaptureFixture[str]
) -> None:
    conf = write_project(tmp_path)
    argv = ["grants", "--env", "test", "--conf", str(conf)]
    assert main([*argv, "--dry-run", "--json"]) == 0
    document = json.loads(capsys.readouterr().out)
    assert document["dry_run"] is True and document["missing"] and document["extra"] == []
    assert lf.list_permissions(CatalogId=ACCOUNT)["PrincipalResourcePermissions"] == []
    assert main(argv) == 0
    assert "to grant" in capsys.readouterr().out
    assert main([*argv, "--json"]) == 0
    again = json.loads(capsys.readouterr().out)
    assert again["missing"] == [] and again["extra"] == [] and again["unchanged"] > 0
