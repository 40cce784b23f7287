"""Bring moto closer to AWS where the step-functions backend of migrate_entity depends on it
(the embedded server with --step-functions and the suite call these at start; each relies on
moto's internals as pinned, checked by engine/rehearsal/moto_contract.py):

* `aws_sdk_bodies()` returns an `aws-sdk:s3:getObject` task's Body as text, as Step Functions
  does on AWS;
* `aws_map_runs()` answers ListMapRuns before the Map state starts with an empty list, as AWS
  does, and `aws_map_run_children()` ListExecutions of a map run (its child executions, which
  moto does not keep) with an empty list where moto fails;
* `aws_export_layout()` writes a DynamoDB export as AWS lays it out: several gzipped JSON-lines
  files under <prefix>/AWSDynamoDB/<export id>/data/, its manifests, and ExportManifest.
"""

from __future__ import annotations

import base64
import functools
import hashlib
import importlib
import json
import uuid
from typing import Any

from botocore.response import StreamingBody
from moto.core.utils import gzip_compress
from moto.dynamodb.models.table_export import TableExport
from moto.dynamodb.models.utilities import dynamo_json_dump

SFN_SDK_TASK = (
    "moto.stepfunctions.parser.asl.component.state.exec.state_task.service."
    "state_task_service_aws_sdk"
)


def aws_sdk_bodies() -> bool:
    """A Step Functions `aws-sdk:s3:getObject` task returns the object's Body as text on AWS;
    moto's leaves botocore's stream in the state's output, and the next path that reads it
    fails (the step-functions backend reads each user's company so). Read it as AWS does."""
    try:  # by name, when called: moto's ASL interpreter takes 2.5 s to import, here
        module = importlib.import_module(SFN_SDK_TASK)
    except ImportError:
        return False
    task = module.StateTaskServiceAwsSdk
    if getattr(task._eval_service_task, "_runbook_bodies", False):
        return True
    original = task._eval_service_task

    @functools.wraps(original)  # moto's own stays reachable (engine/moto_contract)
    def _eval_service_task(self: Any, env: Any, *args: Any, **kwargs: Any) -> None:
        original(self, env, *args, **kwargs)
        answer = env.stack[-1] if env.stack else None
        if isinstance(answer, dict):
            for key, value in list(answer.items()):
                if isinstance(value, StreamingBody):
                    answer[key] = value.read().decode("utf-8")

    _eval_service_task._runbook_bodies = True  # type: ignore[attr-defined]
    task._eval_service_task = _eval_service_task
    return True


def aws_map_runs() -> bool:
    """ListMapRuns right after StartExecution: AWS answers an empty list until the Map state
    starts; moto reads its worker's environment before the worker has made one, and fails
    (HTTP 500 from a server). Answer as AWS does."""
    try:  # by name, when called (as aws_sdk_bodies)
        models = importlib.import_module("moto.stepfunctions.parser.models")
    except ImportError:
        return False
    backend = models.StepFunctionsParserBackend
    if getattr(backend.list_map_runs, "_runbook_map_runs", False):
        return True
    original = backend.list_map_runs

    @functools.wraps(original)  # moto's own stays reachable (engine/moto_contract)
    def list_map_runs(self: Any, execution_arn: str) -> dict[str, Any]:
        execution = self.describe_execution(execution_arn=execution_arn)
        worker = getattr(execution, "exec_worker", None)
        if worker is None or getattr(worker, "env", None) is None:
            return {"mapRuns": []}
        return dict(original(self, execution_arn))

    list_map_runs._runbook_map_runs = True  # type: ignore[attr-defined]
    backend.list_map_runs = list_map_runs
    return True


def aws_map_run_children() -> bool:
    """ListExecutions by mapRunArn lists a map run's child executions on AWS; moto keeps none,
    and fails on the missing stateMachineArn (HTTP 500 from a server). Answer an empty list:
    what AWS answers before a child starts. (moto lists a nested map's runs under the parent
    execution instead, where the engine reads them too: engine/aws/stepfunctions.py.)"""
    try:
        responses = importlib.import_module("moto.stepfunctions.responses")
    except ImportError:
        return False
    response = responses.StepFunctionResponse
    if getattr(response.list_executions, "_runbook_children", False):
        return True
    original = response.list_executions

    @functools.wraps(original)  # moto's own stays reachable (engine/moto_contract)
    def list_executions(self: Any) -> Any:
        if self._get_param("mapRunArn") and not self._get_param("stateMachineArn"):
            return responses.ActionResult({"executions": []})
        return original(self)

    list_executions._runbook_children = True  # type: ignore[attr-defined]
    response.list_executions = list_executions
    return True


EXPORT_FILE_ITEMS = 64  # AWS splits an export by size; here by count: a few files, as there


def _export_root(export: Any) -> str:
    """<prefix>/AWSDynamoDB/<export id>: where AWS writes the export's files."""
    prefix = str(export.s3_prefix or "").strip("/")
    return (prefix + "/" if prefix else "") + f"AWSDynamoDB/{export.arn.rsplit('/', 1)[-1]}"


def aws_export_layout() -> bool:
    """ExportTableToPointInTime: moto writes one file in a directory of its own naming and no
    manifest; AWS writes gzipped JSON lines in several files under the export's id, with
    manifest-files.json (one line per file: its items and key) and manifest-summary.json, and
    DescribeExport names the summary (ExportManifest). Write and answer as AWS does."""
    if getattr(TableExport._backup_to_s3_file, "_runbook_layout", False):
        return True
    original_backup = TableExport._backup_to_s3_file
    original_response = TableExport.response

    @functools.wraps(original_backup)  # moto's own stays reachable (engine/moto_contract)
    def _backup_to_s3_file(self: Any, s3_backend: Any) -> None:
        root = _export_root(self)
        files: list[dict[str, Any]] = []
        lines: list[str] = []

        def flush() -> None:
            body = gzip_compress("".join(lines).encode("utf-8"))
            key = f"{root}/data/{uuid.uuid4().hex}.json.gz"
            s3_backend.put_object(bucket_name=self.s3_bucket, key_name=key, value=body)
            digest = hashlib.md5(body, usedforsecurity=False)
            files.append({
                "itemCount": len(lines),
                "md5Checksum": base64.b64encode(digest.digest()).decode(),
                "etag": digest.hexdigest(),
                "dataFileS3Key": key,
            })  # fmt: skip
            lines.clear()

        for item in self.table.all_items():
            json_item = item.to_json(root_attr_name="Item")
            lines.append(dynamo_json_dump(json_item) + "\n")
            self.processed_bytes += len(lines[-1])
            self.item_count += 1
            if len(lines) >= EXPORT_FILE_ITEMS:
                flush()
        if lines or not files:
            flush()
        listing = "".join(json.dumps(f) + "\n" for f in files).encode("utf-8")
        s3_backend.put_object(
            bucket_name=self.s3_bucket, key_name=f"{root}/manifest-files.json", value=listing
        )
        summary = {
            "version": "2020-06-30",
            "exportArn": self.arn,
            "tableArn": self.table.table_arn,
            "s3Bucket": self.s3_bucket,
            "s3Prefix": self.s3_prefix,
            "manifestFilesS3Key": f"{root}/manifest-files.json",
            "billedSizeBytes": self.processed_bytes,
            "itemCount": self.item_count,
            "outputFormat": "DYNAMODB_JSON",
        }
        s3_backend.put_object(
            bucket_name=self.s3_bucket,
            key_name=f"{root}/manifest-summary.json",
            value=json.dumps(summary).encode("utf-8"),
        )
        self.status = "COMPLETED" if self.error_count == 0 else "FAILED"

    @functools.wraps(original_response)
    def response(self: Any) -> dict[str, Any]:
        out = dict(original_response(self))
        if self.status == "COMPLETED":
            out["ExportManifest"] = f"{_export_root(self)}/manifest-summary.json"
        return out

    _backup_to_s3_file._runbook_layout = True  # type: ignore[attr-defined]
    TableExport._backup_to_s3_file = _backup_to_s3_file
    TableExport.response = response
    return True
