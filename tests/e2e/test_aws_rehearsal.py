"""Issue 8, "Done when": a headless rehearsal on a real-shaped account, and the IAM policy
checked against every AWS call that rehearsal makes (item 7).

The world (engine/rehearsal/seed.py WorldShape, chosen by the runbook's `[embedded.world]`):
- the company functions are invoked by the API through an alias `live`;
- (real-shaped) legacy expenses whose invoiceNum is a number or empty while the company
  expenses table has an invoiceNum GSI of type S, and one legacy item that passes 400 KB once
  company-scoped.
"""

from __future__ import annotations

import json
import tomllib
from pathlib import Path
from typing import Any

import pytest
import tomli_w

from engine.aws import iam_policy
from engine.aws.target import Connection
from engine.cli.app import main
from engine.plan.loader import default_runbook_path, load_runbook
from engine.rehearsal import embedded
from engine.rehearsal.embedded import reconnect, record_path_for, stop_world
from tests.support.approvals import as_flags, manual_items
from tests.support.long_runs import long_run
from tests.support.rehearsal import TIME_SCALE, status
from tests.support.restored import alias_integrations, assert_phase5_restored
from tests.support.worlds import prod_api

ACCOUNT = "123456789012"  # moto's
FINAL_FLAGS = {
    "DUAL_WRITE_ENABLED": "false",
    "MULTI_TABLE_DEPRECATED": "true",
    "READ_FROM_COMPANY_SCOPED": "true",
    "READ_PERCENT": "100",
}


class CallRecorder:
    """Every API call the engine's clients make (botocore 'provide-client-params' hook)."""

    def __init__(self) -> None:
        self.calls: list[tuple[str, str, dict[str, Any]]] = []
        self.paused = False
        self._hooked: set[int] = set()

    def hook(self, client: Any) -> Any:
        if id(client) not in self._hooked:
            self._hooked.add(id(client))
            service = client.meta.service_model.service_name

            def record(params: dict[str, Any], model: Any, **_: Any) -> None:
                if not self.paused:
                    self.calls.append((service, model.name, dict(params)))

            client.meta.events.register("provide-client-params", record)
        return client


@pytest.fixture
def recorder(monkeypatch: pytest.MonkeyPatch) -> CallRecorder:
    rec = CallRecorder()
    original = Connection.client
    monkeypatch.setattr(Connection, "client", lambda self, svc: rec.hook(original(self, svc)))
    seed = embedded.seed_world

    def seed_unrecorded(*args: Any, **kwargs: Any) -> Any:  # the world, not the tool
        rec.paused = True
        try:
            return seed(*args, **kwargs)
        finally:
            rec.paused = False

    monkeypatch.setattr(embedded, "seed_world", seed_unrecorded)
    return rec


def runbook_with_world(tmp_path: Path, world: dict[str, Any]) -> Path:
    data = tomllib.loads(default_runbook_path().read_text())
    data["embedded"]["world"] = world
    path = tmp_path / "runbook.toml"
    path.write_text(tomli_w.dumps(data))
    return path


def drive(rb: Any, common: list[str], capsys: Any) -> tuple[list[str], list[str]]:
    """Answer every gate and manual step like an operator; returns (overrides, acceptances)."""
    overridden: list[str] = []
    accepted: list[str] = []
    for _ in range(80):
        code = main(["run", *common, "--yes", "--time-scale", TIME_SCALE])
        if code == 0:
            return overridden, accepted
        out = capsys.readouterr()
        assert code == 3, out
        waiting = status(common, capsys)["waiting"]
        if waiting["kind"] == "step":
            if rb.step(waiting["id"]).kind != "manual":
                accepted.append(waiting["id"])
            assert main(["ack", waiting["id"], "--by", "rehearsal", *common]) == 0
            continue
        gate = rb.gate(waiting["id"])
        for i, item in enumerate(manual_items(gate)):
            tick = ["tick", gate.id, item.id, "--by", "rehearsal", *as_flags(i), *common]
            assert main(tick) == 0
        capsys.readouterr()
        if main(["decide", gate.id, "--go", "--by", "rehearsal", *common]) != 0:
            overridden.append(f"{gate.id}: {capsys.readouterr().err.strip()}")
            assert (
                main(["decide", gate.id, "--go", "--by", "r", *common, "--override", "rehearsal"])
                == 0
            )
    pytest.fail("the rehearsal did not finish")


def assert_flags_reach_live(conn: Connection, rb: Any) -> None:
    lam = conn.client("lambda")
    for fn in rb.flags.functions:
        latest = lam.get_function_configuration(FunctionName=fn)["Environment"]["Variables"]
        live = lam.get_function_configuration(FunctionName=fn, Qualifier="live")
        assert live["Version"] != "1", f"{fn}: live still on the seeded release"
        env = live["Environment"]["Variables"]
        assert {k: env.get(k) for k in FINAL_FLAGS} == FINAL_FLAGS, fn
        for name, value in rb.embedded["function_env"].items():  # every non-flag variable
            assert env[name] == value, f"{fn}: {name}"
        assert env == latest, f"{fn}: the version behind live differs from $LATEST"


def assert_routes(conn: Connection, rb: Any, journal_steps: dict[str, Any]) -> None:
    gw = conn.client("apigateway")
    api = prod_api(conn)
    methods = {
        r["path"]: set(r.get("resourceMethods") or {})
        for r in gw.get_resources(restApiId=api)["items"]
    }
    for route in rb.inventory.api.routes:
        served = methods.get(route.path, set())
        if route.deprecate:
            assert not served & set(route.methods), f"legacy {route.path} still served"
            continue
        assert served >= set(route.methods), f"company {route.path} lost methods"
        res = next(r for r in gw.get_resources(restApiId=api)["items"] if r["path"] == route.path)
        for m in route.methods:
            uri = gw.get_integration(restApiId=api, resourceId=res["id"], httpMethod=m)["uri"]
            assert uri.endswith(":live/invocations"), uri
    stage = gw.get_stage(restApiId=api, stageName=rb.inventory.api.stage)
    summary = journal_steps["delete-legacy-routes"]["summary"]
    assert summary["stages_redeployed"] == [rb.inventory.api.stage]
    deployments = sorted(gw.get_deployments(restApiId=api)["items"], key=lambda d: d["createdDate"])
    assert len(deployments) >= 2 and stage["deploymentId"] != deployments[0]["id"]


def uncovered_calls(rec: CallRecorder, rb: Any) -> tuple[list[str], int]:
    policy = iam_policy.build_policy(rb, ACCOUNT)
    missing: set[str] = set()
    checked = 0
    for service, op, params in rec.calls:
        if iam_policy.rehearsal_only(service, op, params):
            continue
        action = iam_policy.iam_action(service, op)
        for arn in iam_policy.resources_for_call(service, op, params, "us-east-1", ACCOUNT):
            checked += 1
            if not iam_policy.allows(policy, action, arn):
                missing.add(f"{service}.{op} -> {action} on {arn}")
    return sorted(missing), checked


@long_run  # CI time: the real-shaped rehearsal below walks the same phases and rollbacks
@pytest.mark.slow
def test_rehearsal_through_alias_live_and_the_policy_covers_every_call(
    tmp_path: Path, capsys, recorder: CallRecorder
) -> None:
    runbook_path = runbook_with_world(tmp_path, {"alias": "live"})
    rb = load_runbook(runbook_path).runbook
    journal = tmp_path / "journal.toml"
    common = ["--journal", str(journal), "--runbook", str(runbook_path)]
    try:
        overridden, accepted = drive(rb, common, capsys)
        assert overridden == [] and accepted == []
        final = status(common, capsys)
        assert {s["status"] for s in final["steps"]} == {"done"}
        steps = {s["id"]: s for s in final["steps"]}
        conn, _ = reconnect(record_path_for(journal))
        assert_flags_reach_live(conn, rb)
        assert_routes(conn, rb, steps)
        assert main(["report", *common]) == 0
        # the Phase 5 rollback too: its restores are part of what the policy must allow
        capsys.readouterr()
        assert main(["rollback", "phase5", "--yes", *common]) == 0, capsys.readouterr()
        # issue 19: every deleted table and function is back, with its tags (less aws:),
        # aliases, permissions and mappings (the legacy stream's on the restored stream)
        artifacts = journal.with_name(journal.stem + ".artifacts")
        counts = assert_phase5_restored(conn, steps, artifacts)
        assert counts["functions"] == len(rb.inventory.select_functions("@deprecated"))
        assert counts["aliases"] >= 1 and counts["mappings"] == 1 and counts["statements"] >= 2
        assert counts["tables"] == len(rb.inventory.select_tables("@deprecated"))
        # the legacy route invoking a function through its alias works again
        legacy_paths = {r.path for r in rb.inventory.api.routes if r.deprecate}
        through_alias = alias_integrations(conn, prod_api(conn), legacy_paths)
        assert through_alias, "no legacy route invokes a function through an alias"
    finally:
        stop_world(record_path_for(journal))
    operations = {(s, o) for s, o, _ in recorder.calls}
    for expected in (
        ("lambda", "UpdateAlias"),
        ("lambda", "PublishVersion"),
        ("dynamodb", "RestoreTableFromBackup"),
        ("lambda", "CreateFunction"),
        ("apigateway", "UpdateStage"),
    ):
        assert expected in operations
    missing, checked = uncovered_calls(recorder, rb)
    assert checked > 1000
    assert missing == [], "calls the IAM policy does not allow:\n" + "\n".join(missing)


@pytest.mark.slow
def test_real_shaped_rehearsal_sets_aside_what_the_target_cannot_hold(
    tmp_path: Path, capsys, recorder: CallRecorder
) -> None:
    runbook_path = runbook_with_world(tmp_path, {"real_shaped": True})
    rb = load_runbook(runbook_path).runbook
    journal = tmp_path / "journal.toml"
    common = ["--journal", str(journal), "--runbook", str(runbook_path)]
    try:
        drive(rb, common, capsys)
        final = status(common, capsys)
        assert {s["status"] for s in final["steps"]} == {"done"}
        steps = {s["id"]: s for s in final["steps"]}
        conn, _ = reconnect(record_path_for(journal))
        assert_flags_reach_live(conn, rb)
        assert_routes(conn, rb, steps)

        # the three expenses AWS would reject are set aside with their reasons...
        migrate = steps["migrate-expenses"]["summary"]
        assert migrate["quarantined"] == 3, migrate
        artifacts = journal.with_name(journal.stem + ".artifacts")
        rows = [
            json.loads(line)
            for line in (artifacts / "quarantine-expenses.jsonl").read_text().splitlines()
        ]
        reasons = {row["key"]["expenseId"]: row["reason"] for row in rows}
        assert set(reasons) == {"exp-000000", "exp-000001", "exp-000002"}, reasons
        assert "invoiceNum" in reasons["exp-000000"] and "invoiceNum" in reasons["exp-000001"]
        assert any(w in reasons["exp-000002"].lower() for w in ("size", "400", "kb")), reasons
        # ...and every other item landed
        ddb = conn.client("dynamodb")
        migrated = {
            item["expenseId"]["S"]
            for item in ddb.scan(TableName="construction-expenses-company-expenses")["Items"]
            if item["expenseId"]["S"].startswith("exp-")
        }
        assert migrated == {f"exp-00000{n}" for n in range(3, 7)}
        for entity in ("projects", "contractors", "works"):
            assert steps[f"migrate-{entity}"]["summary"]["quarantined"] == 0
        capsys.readouterr()
        assert main(["report", *common]) == 0
        report = capsys.readouterr().out
        assert "| Zero data loss - All records migrated successfully | 0 | 3 | NOT met |" in report
        # issue 19 "Done when": through Phase 5, then rollback-cleanup, as a new user would
        assert main(["rollback", "phase5", "--yes", *common]) == 0, capsys.readouterr()
        counts = assert_phase5_restored(conn, steps, artifacts)
        assert counts["functions"] == len(rb.inventory.select_functions("@deprecated"))
        assert counts["mappings"] == 1 and counts["aliases"] >= 1
        assert counts["tables"] == len(rb.inventory.select_tables("@deprecated"))
        legacy_paths = {r.path for r in rb.inventory.api.routes if r.deprecate}
        assert alias_integrations(conn, prod_api(conn), legacy_paths)
    finally:
        stop_world(record_path_for(journal))
    missing, _ = uncovered_calls(recorder, rb)
    assert missing == [], "calls the IAM policy does not allow:\n" + "\n".join(missing)
