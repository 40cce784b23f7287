"""The step-functions backend as it runs on a real account (issue 23): nothing is converted on
the operator's machine. The engine creates the bridge function and its role; the state machine
lists the export's data files (several, laid out as AWS writes them:
moto_fidelity_sfn.aws_export_layout), and each file's child converts it with the bridge (its
deployed zip, run by engine/rehearsal/moto_lambda.py, since moto runs Lambda code in Docker
only) before copying its items. The target, ledgers and counts equal the local backend's, item
for item."""

from __future__ import annotations

import json
from typing import Any

from engine.actions.migrate.sfn_definition import FILES_LABEL
from engine.aws.export_reader import reader_key_for
from engine.core.events import LogLine
from engine.core.world import REAL_ACCOUNT
from tests.support.actions import run
from tests.support.step_functions import (
    BUCKET,
    SFN_PARAMS,
    CallRecorder,
    executions,
    ledgers,
    local_backend,
    moto_world,
    outcome,
    prepare,
    target,
    validation,
)


def data_files(conn: Any, export_arn: str) -> list[str]:
    listing = conn.client("s3").list_objects_v2(Bucket=BUCKET)["Contents"]
    export_id = export_arn.rsplit("/", 1)[-1]
    return sorted(o["Key"] for o in listing if f"/{export_id}/data/" in o["Key"])


def test_a_real_accounts_copy_converts_each_data_file_in_aws(make_ctx: Any, runbook: Any) -> None:
    local = local_backend(make_ctx, runbook)
    with moto_world() as conn:
        journal, expected = prepare(conn, make_ctx, runbook)
        recorder = CallRecorder(conn)
        mctx, events = make_ctx("migrate-expenses", conn, journal=journal)
        mctx.world = REAL_ACCOUNT
        summary = run(mctx, "migrate_entity", SFN_PARAMS)

        assert outcome(summary) == local["outcome"]
        assert target(conn) == local["target"]
        assert ledgers(mctx) == local["ledgers"]
        vctx, _ = make_ctx("validate-migration", conn, journal=journal)
        checked = run(vctx, "validate_migration", {"entities": ["expenses"]})
        assert validation(checked) == local["validation"]
        assert len(executions(conn, summary["execution_arn"])) == 1

        # the export as AWS writes it: several gzipped files, and one child of the outer map
        # (one Convert) per file
        files = data_files(conn, summary["export_arn"])
        assert len(files) >= 2 and all(f.endswith(".json.gz") for f in files)
        reader = [o["Key"] for o in conn.client("s3").list_objects_v2(Bucket=BUCKET)["Contents"]
                  if "/reader/" in o["Key"]]  # fmt: skip
        assert sorted(reader) == sorted(reader_key_for(f, reader[0].rsplit("/", 1)[0] + "/")
                                        for f in files)  # fmt: skip
        cursors = journal.step("migrate-expenses").cursors["sfn"]
        assert cursors["file_counts"]["succeeded"] == len(files)
        said = [e.message for e in events if isinstance(e, LogLine)]
        assert f"expenses: {len(files)} of {len(files)} data files copied" in said
        assert cursors["reader_items"] == expected["source"]  # the export's ItemCount

        # the bridge: its function and role, and a definition that converts before copying
        lam = conn.client("lambda")
        bridges = [f for f in lam.list_functions()["Functions"]
                   if f["FunctionName"].startswith("runbook-bridge-")]  # fmt: skip
        assert len(bridges) == 1
        fn = bridges[0]
        assert fn["Handler"] == "export_reader.handler"
        role = conn.client("iam").get_role(RoleName=fn["Role"].rsplit("/", 1)[-1])["Role"]
        trust = role["AssumeRolePolicyDocument"]
        trust = json.loads(trust) if isinstance(trust, str) else trust
        assert trust["Statement"][0]["Principal"] == {"Service": "lambda.amazonaws.com"}
        sfn = conn.client("stepfunctions")
        body = json.loads(
            sfn.describe_state_machine(stateMachineArn=summary["state_machine_arn"])["definition"]
        )
        child = body["States"][FILES_LABEL]["ItemProcessor"]
        assert child["StartAt"] == "Convert"
        assert child["States"]["Convert"]["Parameters"]["FunctionName"] == fn["FunctionArn"]
        # nothing was converted on this machine: no S3 PutObject of a reader file by the engine
        engine_puts = [c for s, op, c in recorder.calls if (s, op) == ("s3", "PutObject")]
        assert not [c for c in engine_puts if "/reader/" in c["Key"]]
