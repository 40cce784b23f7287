"""A Python Lambda runtime for moto, in moto's own process.

moto runs a function's code in Docker (without it, Invoke answers FunctionError=Handled). The
one function a run invokes is the step-functions backend's bridge (engine/aws/export_reader.py,
Python with boto3 only), through its state machine's `lambda:invoke`. Here a Python function's
deployed zip (the bytes moto holds) is imported and its handler called with the invocation's
event, so a rehearsal runs the state machine a real account runs. The handler's boto3 calls go
where the process's AWS_ENDPOINT_URL points: the embedded server sets it to itself, and the
suite's in-process moto intercepts them. Lambda's own limits (15 minutes, memory) are not
imitated. engine/rehearsal/moto_contract.py checks the method it replaces.
"""

from __future__ import annotations

import importlib.util
import json
import tempfile
import traceback
import zipimport
from pathlib import Path
from typing import Any

from moto.awslambda.models import LambdaFunction


def run_handler(code: bytes, handler: str, event: Any) -> Any:
    """Import `handler`'s module from the zip `code` (a fresh module each call, as a cold start)
    and call it with `event`."""
    module_name, func = handler.rsplit(".", 1)
    with tempfile.TemporaryDirectory() as tmp:
        archive = Path(tmp) / "code.zip"
        archive.write_bytes(code)
        spec = importlib.util.spec_from_loader(module_name, zipimport.zipimporter(str(archive)))
        if spec is None or spec.loader is None:
            raise ImportError(f"{handler}: no module {module_name} in the function's zip")
        module = importlib.util.module_from_spec(spec)
        spec.loader.exec_module(module)
        return getattr(module, func)(event, None)


def python_lambdas_in_process() -> bool:
    """Invoke runs a Python function's handler here; other runtimes keep moto's way."""
    if getattr(LambdaFunction._invoke_lambda, "_runbook_in_process", False):
        return True
    original = LambdaFunction._invoke_lambda

    def _invoke_lambda(self: Any, event: Any = None) -> tuple[str, bool, str]:
        if not str(getattr(self, "run_time", "") or "").startswith("python"):
            return original(self, event)
        payload = json.loads(event) if isinstance(event, (str, bytes)) else (event or {})
        try:
            result = run_handler(self.code_bytes, self.handler, payload)
        except Exception as exc:  # Lambda answers any error of the handler as its payload
            error = {"errorMessage": str(exc), "errorType": type(exc).__name__}
            return json.dumps(error), True, traceback.format_exc()
        return json.dumps(result), False, ""

    _invoke_lambda._runbook_in_process = True  # type: ignore[attr-defined]
    _invoke_lambda.__wrapped__ = original  # type: ignore[attr-defined]
    LambdaFunction._invoke_lambda = _invoke_lambda
    return True
