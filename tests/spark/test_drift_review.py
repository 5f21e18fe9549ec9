"""Schema drift, reviewed adversarially: the cases the first tests left out, each run through
real curation runs (or ``lean-ops drift``) on the ``things`` contract of ``test_drift``."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pytest

from lean_ops_spark.catalog.bootstrap import bootstrap_tables
from lean_ops_spark.catalog.checkpoints import RAW_CHECKPOINT_KEY, current_snapshot_id, read_checkpoint
from lean_ops_spark.catalog.naming import topic_tables
from lean_ops_spark.cli.main import main
from lean_ops_spark.config import load_project
from lean_ops_spark.drift.audit import AUDIT_TABLE_NAME
from lean_ops_spark.errors import DriftError
from lean_ops_spark.raw import RawRecord
from lean_ops_spark.raw.writer import append_raw
from tests.conftest import CONF, _namespace_counter
from tests.spark.test_drift import NOW, Env, payload


def _audit_rows(env: Env) -> list[tuple[str, str, str, str]]:
    """Every audit row of the env's topic: (run id, field path, kind, action), sorted."""
    table = f"{env.config.profile.catalog}.{env.config.profile.databases.curated}.{AUDIT_TABLE_NAME}"
    if not env.spark.catalog.tableExists(table):
        return []
    env.spark.sql(f"REFRESH TABLE {table}")
    return sorted(
        (r["run_id"], r["field_path"], r["kind"], r["action"]) for r in env.spark.table(table).collect()
    )


def _columns(env: Env) -> dict[str, str]:
    env.spark.sql(f"REFRESH TABLE {env.tables.curated.sql}")
    return {f.name: f.dataType.simpleString() for f in env.spark.table(env.tables.curated.sql).schema.fields}


def test_evolve_keeps_zero_padded_codes_as_text(spark, project_config) -> None:
    """A JSON string of digits with a leading zero (a postcode, an account number) is no JSON
    number: a new field carrying one is a string column, not a bigint that drops the zeros
    (``"01234"`` was curated as 1234, nothing rescued). A column an earlier evolve made
    bigint (from ``"12345"``: quoted numbers count as numbers) keeps such a value's text in
    ``_rescued_data``."""
    env = Env(spark, project_config, "evolve")
    env.land([payload(1, zip="01234", ref="12345"), payload(2, zip="01234", ref="23456")])
    env.curate("run-1")
    assert ("run-1", "zip", "new_field", "add_column") in _audit_rows(env)
    columns = _columns(env)
    assert (columns["zip"], columns["ref"]) == ("string", "bigint")
    rows = env.curated()
    assert rows["t-1"]["zip"] == "01234" and rows["t-1"]["ref"] == 12345
    assert rows["t-1"]["_rescued_data"] is None

    env.land([payload(3, ref="00042"), payload(4, ref="42")])
    result = env.curate("run-2")
    rows = env.curated()
    assert rows["t-3"]["ref"] == rows["t-4"]["ref"] == 42
    assert json.loads(rows["t-3"]["_rescued_data"]) == {"ref": "00042"}  # the zeros are kept
    assert rows["t-4"]["_rescued_data"] is None
    assert result.ledger is not None and result.ledger.rescued_fields == {"ref": 1}


#: New fields top level, in a flattened struct, in an array's structs (a struct), a null-only
#: field, a field whose JSON kind varies, and a widening inside the array's structs.
BATCH = [
    payload(
        1,
        promo="p",
        meta={"source": "s", "region": "eu"},
        items=[{"sku": "a", "n": 3_000_000_000, "dims": {"w": 1}}],
        mixed=1.5,
        nothing=None,
    ),
    payload(2, promo="q", items=[{"sku": "b", "n": 2}], mixed="abc", nothing=None),
]
DRIFTS = {
    ("promo", "new_field", "add_column"),
    ("meta.region", "nested_field_change", "add_column"),
    ("items[].dims", "nested_field_change", "add_column"),
    ("items[].n", "type_widening", "widen_column"),
    ("mixed", "new_field", "add_column"),
    ("nothing", "new_field", "add_column"),
}


def test_an_evolve_that_dies_while_recording_its_drift_records_it_when_run_again(
    spark, project_config, monkeypatch
) -> None:
    """The ALTERs ran before the audit rows were written: a run that died in between (here:
    the audit append fails) left curated evolved, and its re-run took the new columns for
    curated's steady state, so the schema change was never recorded anywhere. The audit
    rows are written first now: a re-run records the drift, and curates the same rows as a
    run that never failed."""
    from lean_ops_spark.drift import handler

    env = Env(spark, project_config, "evolve")
    env.land(BATCH)
    record_drift = handler.record_drift

    def dies(*_args, **_kwargs):
        raise RuntimeError("the driver died while appending the audit rows")

    monkeypatch.setattr(handler, "record_drift", dies)
    with pytest.raises(RuntimeError, match="the driver died"):
        env.curate("run-1")
    monkeypatch.setattr(handler, "record_drift", record_drift)
    assert read_checkpoint(spark, env.tables.curated, RAW_CHECKPOINT_KEY) is None
    env.curate("run-2")
    assert {(p, k, a) for run, p, k, a in _audit_rows(env) if run == "run-2"} == DRIFTS

    columns = _columns(env)
    assert columns["items"] == "array<struct<sku:string,n:bigint,dims:struct<w:bigint>>>"
    assert (columns["meta_region"], columns["mixed"], columns["nothing"]) == ("string", "string", "string")
    rows = env.curated()
    assert rows["t-1"]["items"] == [{"sku": "a", "n": 3_000_000_000, "dims": {"w": 1}}]
    assert (rows["t-1"]["mixed"], rows["t-2"]["mixed"]) == ("1.5", "abc")  # number or text: text
    assert rows["t-1"]["meta_region"] == "eu" and rows["t-2"]["promo"] == "q"
    assert all(r["nothing"] is None and r["_rescued_data"] is None for r in rows.values())


def test_evolve_rescues_keys_that_differ_by_case_or_take_a_curation_column(spark, project_config) -> None:
    """(Checked and fine; not covered before.) A key that differs only by case from a
    contract field (``Code``), keys named like curation columns (``_run_id``,
    ``_rescued_data``) and a top-level key spelling a flattened column (``meta_source``) are
    never columns: their values are rescued, the contract fields keep theirs."""
    env = Env(spark, project_config, "evolve")
    before = _columns(env)
    env.land(
        [
            payload(
                1,
                Code="X",
                _run_id="theirs",
                _rescued_data="oops",
                meta_source="top",
                items=[{"sku": "a", "N": 5}],
            ),
            payload(2),
        ]
    )
    result = env.curate("run-1")
    assert result.ledger is not None and result.ledger.quarantined == 0
    assert {(p, a) for _r, p, _k, a in _audit_rows(env)} == {
        ("Code", "rescue"),
        ("_run_id", "rescue"),
        ("_rescued_data", "rescue"),
        ("meta_source", "rescue"),
        ("items[].N", "rescue"),
    }
    assert _columns(env) == before
    row = env.curated()["t-1"]
    assert (row["code"], row["meta_source"], row["_run_id"]) == ("c", "s", "run-1")
    rescued = json.loads(row["_rescued_data"])
    assert {k: rescued[k] for k in ("Code", "_run_id", "_rescued_data", "meta_source")} == {
        "Code": "X",
        "_run_id": "theirs",
        "_rescued_data": "oops",
        "meta_source": "top",
    }
    assert json.loads(rescued["items"]) == [{"sku": "a", "N": 5}]


def test_fail_names_the_topic_the_paths_and_what_was_seen_and_writes_nothing(spark, project_config) -> None:
    """(Checked and fine; the message's content was not covered before.)"""
    env = Env(spark, project_config, "fail")
    before = _columns(env)
    env.land(BATCH)
    with pytest.raises(DriftError) as failure:
        env.curate("run-1")
    message = str(failure.value)
    assert message.startswith("things: schema drift with drift_mode fail: ")
    for seen in (
        "new_field promo (- -> string)",
        "nested_field_change items[].dims (- -> struct<w:bigint>)",
        "type_widening items[].n (int -> bigint)",
        "nested_field_change meta.region (- -> string)",
    ):
        assert seen in message
    assert "nothing written, checkpoint unchanged" in message
    assert _columns(env) == before
    assert current_snapshot_id(spark, env.tables.curated) is None
    assert read_checkpoint(spark, env.tables.curated, RAW_CHECKPOINT_KEY) is None
    assert {(p, k, a) for _r, p, k, a in _audit_rows(env)} == {(p, k, "fail") for p, k, _a in DRIFTS}


def test_lean_ops_drift_exit_codes_and_json(spark, local_home, tmp_path, capsys) -> None:
    """(Checked and fine; the command was only tested without Spark.) Exit 1 and the
    decisions with drift, 0 without; writes nothing either way."""
    n = next(_namespace_counter)
    conf = tmp_path / "conf"
    shutil.copytree(CONF, conf)
    profile = conf / "profiles" / "local.yaml"
    text = profile.read_text()
    for layer in ("raw", "curated", "semantic"):
        text = text.replace(f"  {layer}: {layer}\n", f"  {layer}: t{n}_{layer}\n")
    Path(profile).write_text(text)
    config = load_project(conf, "local")
    assert config.profile.databases.curated == f"t{n}_curated"
    bootstrap_tables(spark, config, ["orders"])
    tables = topic_tables(config.profile, "orders")
    common = ["--conf", str(conf), "--home", str(local_home.root), "--json"]

    assert main(["drift", "--topic", "orders", *common]) == 0  # no raw data
    assert json.loads(capsys.readouterr().out)["drifted"] is False

    body = {
        "order_id": "o1",
        "customer_id": "c1",
        "status": "paid",
        "order_ts": "2026-11-20T10:00:00Z",
        "updated_at": "2026-11-20T10:00:00Z",
        "currency": "EUR",
        "total_amount": 10.5,
        "gift_wrap": True,
    }
    append_raw(spark, tables.raw, [RawRecord("m1", "orders", json.dumps(body), NOW, "shop", 1)])
    assert main(["drift", "--topic", "orders", *common]) == 1
    document = json.loads(capsys.readouterr().out)
    assert document["ok"] is True and document["drifted"] is True
    assert [(d["field_path"], d["kind"], d["action"]) for d in document["would"]] == [
        ("gift_wrap", "new_field", "rescue")
    ]
    assert document["would_apply"] == [] and document["records_read"] == 1
    assert current_snapshot_id(spark, tables.curated) is None
