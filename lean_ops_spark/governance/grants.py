"""Lake Formation grants as configuration: plan from config, compare with LF, apply the difference.

Both sides are reduced to *atomic* grants — one (principal, resource, permission) each —
so that the comparison does not depend on how Lake Formation happens to group permissions
or shape resources. In particular a ``SELECT`` on ``TableWithColumns`` with a
``ColumnWildcard`` that excludes nothing is the same grant as a ``SELECT`` on the ``Table``
(Lake Formation reports table-level SELECT either way).

* ``missing`` = desired - current → granted.
* ``extra`` = current - desired, limited to the *managed* scope: principals that the
  governance file grants something to, on resources in this environment's databases or
  under its warehouse. Reported always; revoked only with ``revoke_extra``. Grants to
  other principals (``IAM_ALLOWED_PRINCIPALS``, admins) are never touched.

Missing grants are applied before extras are revoked, so a principal moving from ``ALL``
to ``SELECT`` never loses access in between.

Grants follow from the code rather than the file on one table: when the file grants the
curation job anything, it also holds ``ALL`` on the drift audit table
(``<curated_db>.lean_ops_drift_audit``, :func:`~lean_ops_spark.drift.audit.audit_table`),
which it creates on its first drift and appends to on every one (Lake Formation records
that ``ALL`` for it as the table's creator, so it is never an extra); so does the
maintenance job, which expires and compacts the table like every other. Each is granted
only once the table exists (Lake Formation lists a permission on it), because a grant on a
table that does not exist fails, and until then the plan lists it as ``deferred``. So are the
grants on a semantic table until its model's first semantic run creates it.
"""

from __future__ import annotations

import json
from collections import defaultdict
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from lean_ops_spark.config.environment import Environment
from lean_ops_spark.errors import ConfigError
from lean_ops_spark.governance.config import GovernanceConfig, LayerGrant, resolve_principals
from lean_ops_spark.governance.errors import GovernanceError
from lean_ops_spark.governance.layers import GovernedScope

__all__ = [
    "GrantChange",
    "GrantPlan",
    "LfGrant",
    "LfResource",
    "apply_grant_plan",
    "desired_grants",
    "normalize_permission_entry",
    "plan_grants",
    "read_current_grants",
]

#: ``batch_grant_permissions`` / ``batch_revoke_permissions`` take at most 20 entries.
BATCH_SIZE = 20


@dataclass(frozen=True, order=True)
class LfResource:
    """A Lake Formation resource in canonical form (hashable, sortable)."""

    kind: str  # database | table | table_columns | table_columns_included | table_wildcard | data_location | other
    database: str = ""
    table: str = ""
    columns: tuple[str, ...] = ()  # excluded (table_columns) or included (table_columns_included)
    location: str = ""
    other: str = ""

    def api(self) -> dict[str, Any]:
        """The ``Resource`` argument of ``grant_permissions``."""
        if self.kind == "database":
            return {"Database": {"Name": self.database}}
        if self.kind == "table":
            return {"Table": {"DatabaseName": self.database, "Name": self.table}}
        if self.kind == "table_wildcard":
            return {"Table": {"DatabaseName": self.database, "TableWildcard": {}}}
        if self.kind == "table_columns":
            return {
                "TableWithColumns": {
                    "DatabaseName": self.database,
                    "Name": self.table,
                    "ColumnWildcard": {"ExcludedColumnNames": list(self.columns)},
                }
            }
        if self.kind == "table_columns_included":
            return {
                "TableWithColumns": {
                    "DatabaseName": self.database,
                    "Name": self.table,
                    "ColumnNames": list(self.columns),
                }
            }
        if self.kind == "data_location":
            return {"DataLocation": {"ResourceArn": self.location}}
        raw: dict[str, Any] = json.loads(self.other)
        return raw

    def describe(self) -> str:
        if self.kind == "database":
            return f"database {self.database}"
        if self.kind == "table":
            return f"table {self.database}.{self.table}"
        if self.kind == "table_wildcard":
            return f"every table of {self.database}"
        if self.kind == "table_columns":
            return f"table {self.database}.{self.table} (columns except {', '.join(self.columns)})"
        if self.kind == "table_columns_included":
            return f"table {self.database}.{self.table} (columns {', '.join(self.columns)})"
        if self.kind == "data_location":
            return f"data location {self.location}"
        return self.other


@dataclass(frozen=True, order=True)
class LfGrant:
    """One permission of one principal on one resource."""

    principal: str
    resource: LfResource
    permission: str


@dataclass(frozen=True)
class GrantChange:
    """Permissions to grant (``grant``) or revoke (``revoke``) for one principal on one resource."""

    action: str
    principal: str
    principal_names: tuple[str, ...]
    resource: LfResource
    permissions: tuple[str, ...]
    #: The resource as Lake Formation listed it (revokes use the listed shape).
    api_resource: Mapping[str, Any] = field(default_factory=dict, compare=False)

    def as_dict(self) -> dict[str, Any]:
        return {
            "action": self.action,
            "principal": self.principal,
            "principal_names": list(self.principal_names),
            "resource": self.resource.describe(),
            "api_resource": dict(self.api_resource) or self.resource.api(),
            "permissions": list(self.permissions),
        }


@dataclass(frozen=True)
class GrantPlan:
    """What ``lean-ops grants`` found and would do."""

    environment: str
    catalog_id: str
    missing: tuple[GrantChange, ...]
    extra: tuple[GrantChange, ...]
    unchanged: int
    revoke_extra: bool
    warnings: tuple[str, ...] = ()
    #: Desired grants on tables the pipeline has yet to create (granted once they exist).
    deferred: tuple[GrantChange, ...] = ()

    @property
    def pending(self) -> tuple[GrantChange, ...]:
        """The changes an apply makes: every missing grant, then extras if ``revoke_extra``."""
        return self.missing + (self.extra if self.revoke_extra else ())

    def as_dict(self) -> dict[str, Any]:
        return {
            "environment": self.environment,
            "catalog_id": self.catalog_id,
            "revoke_extra": self.revoke_extra,
            "unchanged": self.unchanged,
            "missing": [c.as_dict() for c in self.missing],
            "extra": [c.as_dict() for c in self.extra],
            "deferred": [c.as_dict() for c in self.deferred],
            "warnings": list(self.warnings),
        }


# --------------------------------------------------------------------------- desired state


def _layer_grants(
    grant: LayerGrant, principal: str, scope: GovernedScope, where: str, partition: str
) -> Iterable[LfGrant]:
    tables = scope.tables(grant.layer)
    known = {t.name for t in tables}
    for table_name in grant.excluded_columns:
        if table_name not in known:
            raise ConfigError(
                f"{where}: lake_formation.grants.{grant.principal}.{grant.layer}.excluded_columns: "
                f"{table_name!r} is not a {grant.layer} table (known: {', '.join(sorted(known)) or 'none'})"
            )
    for table in tables:
        excluded = grant.excluded_columns.get(table.name)
        for permission in grant.table_permissions:
            if excluded and permission == "SELECT":
                resource = LfResource("table_columns", table.database, table.name, tuple(sorted(excluded)))
            else:
                resource = LfResource("table", table.database, table.name)
            yield LfGrant(principal, resource, permission)
    database = scope.database(grant.layer)
    for permission in grant.database_permissions:
        yield LfGrant(principal, LfResource("database", database), permission)
    if grant.data_location:
        location = scope.database_location(database).arn(partition)
        yield LfGrant(principal, LfResource("data_location", location=location), "DATA_LOCATION_ACCESS")


def desired_grants(
    config: GovernanceConfig, env: Environment, scope: GovernedScope
) -> tuple[frozenset[LfGrant], dict[str, tuple[str, ...]], tuple[str, ...]]:
    """The atomic grants the config asks for.

    Returns:
        (grants, principal ARN → the names that resolve to it, warnings).

    Raises:
        ConfigError: an excluded-columns table is not in its layer.
    """
    principals = resolve_principals(config, env)
    out: set[LfGrant] = set()
    names: dict[str, list[str]] = defaultdict(list)
    for grant in config.lake_formation.grants:
        arn = principals[grant.principal]
        if grant.principal not in names[arn]:
            names[arn].append(grant.principal)
        out.update(_layer_grants(grant, arn, scope, config.source, env.partition))
    out.update(_pipeline_grants(config, principals, scope))
    warnings = tuple(
        f"{', '.join(group)} share the role {arn}: it gets the union of their grants "
        "(give each its own role for least privilege)"
        for arn, group in sorted(names.items())
        if len(group) > 1
    )
    return frozenset(out), {arn: tuple(group) for arn, group in names.items()}, warnings


def _pipeline_grants(
    config: GovernanceConfig, principals: Mapping[str, str], scope: GovernedScope
) -> Iterable[LfGrant]:
    """``ALL`` on the drift audit table for the curation job (which creates and appends to it)
    and the maintenance job (which expires and compacts it), each when the file grants it
    anything (a principal the file does not name is not managed here)."""
    named = {g.principal for g in config.lake_formation.grants}
    for principal in ("curation_job", "maintenance_job"):
        if principal not in named:
            continue
        for table in scope.tables("audit"):
            yield LfGrant(principals[principal], LfResource("table", table.database, table.name), "ALL")


def _not_created_yet(scope: GovernedScope, listed: Iterable[LfGrant]) -> set[tuple[str, str]]:
    """``(database, table)`` of the tables the pipeline creates when first needed (the drift
    audit table on the first drift, a semantic table on its model's first run) that do not
    exist yet: Lake Formation lists no permission on them (a table's creator always has one)."""
    on_demand = {(t.database, t.name) for layer in ("audit", "semantic") for t in scope.tables(layer)}
    return on_demand - {(g.resource.database, g.resource.table) for g in listed if g.resource.table}


# --------------------------------------------------------------------------- current state


def _strip_catalog(value: Any) -> Any:
    if isinstance(value, Mapping):
        return {k: _strip_catalog(v) for k, v in value.items() if k != "CatalogId"}
    return value


def _resource(raw: Mapping[str, Any]) -> LfResource:
    resource = _strip_catalog(raw)
    if "Database" in resource:
        return LfResource("database", resource["Database"].get("Name", ""))
    if "Table" in resource:
        table = resource["Table"]
        if "TableWildcard" in table:
            return LfResource("table_wildcard", table.get("DatabaseName", ""))
        return LfResource("table", table.get("DatabaseName", ""), table.get("Name", ""))
    if "TableWithColumns" in resource:
        table = resource["TableWithColumns"]
        database, name = table.get("DatabaseName", ""), table.get("Name", "")
        if table.get("ColumnNames"):
            return LfResource("table_columns_included", database, name, tuple(sorted(table["ColumnNames"])))
        excluded = tuple(sorted((table.get("ColumnWildcard") or {}).get("ExcludedColumnNames") or ()))
        if excluded:
            return LfResource("table_columns", database, name, excluded)
        return LfResource("table", database, name)  # every column = the table
    if "DataLocation" in resource:
        return LfResource(
            "data_location", location=str(resource["DataLocation"].get("ResourceArn", "")).rstrip("/")
        )
    return LfResource("other", other=json.dumps(resource, sort_keys=True))


def normalize_permission_entry(entry: Mapping[str, Any]) -> list[tuple[LfGrant, Mapping[str, Any]]]:
    """One ``PrincipalResourcePermissions`` entry → atomic grants, each with the listed resource."""
    principal = str((entry.get("Principal") or {}).get("DataLakePrincipalIdentifier", ""))
    raw = entry.get("Resource") or {}
    resource = _resource(raw)
    return [(LfGrant(principal, resource, str(p)), raw) for p in entry.get("Permissions") or ()]


def read_current_grants(lf_client: Any, catalog_id: str) -> dict[LfGrant, Mapping[str, Any]]:
    """Every grant in the catalog (paginated ``ListPermissions``), atomic, with its listed resource.

    One unfiltered listing: ``ListPermissions`` refuses a principal filter without a
    resource, and one call per resource would be slower for any real estate.
    """
    current: dict[LfGrant, Mapping[str, Any]] = {}
    kwargs: dict[str, Any] = {"CatalogId": catalog_id}
    while True:
        page = lf_client.list_permissions(**kwargs)
        for entry in page.get("PrincipalResourcePermissions", []):
            for grant, raw in normalize_permission_entry(entry):
                current.setdefault(grant, raw)
        token = page.get("NextToken")
        if not token:
            return current
        kwargs["NextToken"] = token


# --------------------------------------------------------------------------- plan / apply


def _in_scope(grant: LfGrant, principals: set[str], scope: GovernedScope, partition: str) -> bool:
    if grant.principal not in principals:
        return False
    if grant.resource.kind == "data_location":
        root = scope.warehouse.arn(partition)
        return grant.resource.location == root or grant.resource.location.startswith(root + "/")
    return grant.resource.kind != "other" and grant.resource.database in scope.databases


def _group(
    action: str,
    grants: Iterable[LfGrant],
    names: Mapping[str, Sequence[str]],
    listed: Mapping[LfGrant, Mapping[str, Any]],
) -> tuple[GrantChange, ...]:
    """One change per principal, resource *and listed shape*.

    Lake Formation may list the permissions of one table in different shapes — a table-level
    SELECT as ``TableWithColumns`` + ``ColumnWildcard``, DESCRIBE or ALTER as ``Table`` — and
    a revoke must use each one's own shape (``TableWithColumns`` takes SELECT only), so
    permissions are combined only when they were listed alike.
    """
    by_target: dict[tuple[str, LfResource, str], list[LfGrant]] = defaultdict(list)
    for grant in grants:
        shape = json.dumps(listed.get(grant, {}), sort_keys=True)
        by_target[(grant.principal, grant.resource, shape)].append(grant)
    changes = []
    for (principal, resource, _shape), group in sorted(by_target.items()):
        api = dict(listed.get(group[0], {}))
        changes.append(
            GrantChange(
                action,
                principal,
                tuple(names.get(principal, ())),
                resource,
                tuple(sorted(g.permission for g in group)),
                api,
            )
        )
    return tuple(changes)


def plan_grants(
    config: GovernanceConfig,
    env: Environment,
    scope: GovernedScope,
    lf_client: Any,
    *,
    revoke_extra: bool | None = None,
) -> GrantPlan:
    """Compare the configured grants with Lake Formation's; nothing is changed.

    Args:
        revoke_extra: apply would also revoke extras; None = the file's ``revoke_extra``.

    Raises:
        ConfigError: the config names a table that is not in its layer.
        GovernanceError: listing the current permissions failed.
    """
    catalog_id = config.lake_formation.catalog_id or env.account_id
    desired, names, warnings = desired_grants(config, env, scope)
    try:
        listed = read_current_grants(lf_client, catalog_id)
    except Exception as exc:
        raise GovernanceError(
            f"lakeformation ListPermissions ({catalog_id}): {type(exc).__name__}: {exc}"
        ) from exc
    managed = {g.principal for g in desired}
    current = {g for g in listed if _in_scope(g, managed, scope, env.partition)}
    not_created = _not_created_yet(scope, listed)
    deferred = {g for g in desired - current if (g.resource.database, g.resource.table) in not_created}
    missing = desired - current - deferred
    extra = current - desired
    return GrantPlan(
        environment=env.name,
        catalog_id=catalog_id,
        missing=_group("grant", missing, names, {}),
        extra=_group("revoke", extra, names, listed),
        unchanged=len(desired & current),
        revoke_extra=config.lake_formation.revoke_extra if revoke_extra is None else revoke_extra,
        warnings=warnings,
        deferred=_group("grant", deferred, names, {}),
    )


def _batches(changes: Sequence[GrantChange]) -> Iterable[Sequence[GrantChange]]:
    for start in range(0, len(changes), BATCH_SIZE):
        yield changes[start : start + BATCH_SIZE]


def apply_grant_plan(
    plan: GrantPlan, lf_client: Any, on_change: Callable[[GrantChange], None] = lambda _c: None
) -> GrantPlan:
    """Grant what is missing, then (with ``revoke_extra``) revoke extras; returns the plan.

    Raises:
        GovernanceError: a batch call failed or reported failures (naming principal and resource);
            earlier batches stay applied and a second run continues from there.
    """
    for action, changes in (("grant", plan.missing), ("revoke", plan.extra if plan.revoke_extra else ())):
        call = lf_client.batch_grant_permissions if action == "grant" else lf_client.batch_revoke_permissions
        for batch in _batches(changes):
            entries = [
                {
                    "Id": str(i),
                    "Principal": {"DataLakePrincipalIdentifier": c.principal},
                    "Resource": dict(c.api_resource) or c.resource.api(),
                    "Permissions": list(c.permissions),
                }
                for i, c in enumerate(batch)
            ]
            try:
                response = call(CatalogId=plan.catalog_id, Entries=entries)
            except Exception as exc:
                raise GovernanceError(f"lakeformation batch {action}: {type(exc).__name__}: {exc}") from exc
            failures = response.get("Failures") or []
            if failures:
                first = failures[0]
                change = batch[int(first.get("RequestEntry", {}).get("Id", 0))]
                detail = first.get("Error", {})
                raise GovernanceError(
                    f"lakeformation {action} {', '.join(change.permissions)} on {change.resource.describe()} "
                    f"for {change.principal}: {detail.get('ErrorCode')}: {detail.get('ErrorMessage')} "
                    f"({len(failures)} of {len(batch)} entries failed)"
                )
            for change in batch:
                on_change(change)
    return plan
