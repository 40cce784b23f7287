"""A Lambda runtime for moto, in this process.

moto runs a function's code in Docker, which this machine does not have (moto's invoke then
answers FunctionError=Handled). The step-functions backend's bridge function
(engine/aws/export_reader.py) is Python with boto3 only: here its deployed zip (the bytes moto
holds, not our source tree) is imported and its handler called with the invocation's event,
against the same moto. What it does not prove: Lambda's own limits (15 minutes, memory, /tmp).
"""

from __future__ import annotations

import importlib.util
import json
import traceback
import zipimport
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any
from unittest.mock import patch

from moto.awslambda.models import LambdaFunction


def _run_handler(code: bytes, handler: str, event: Any, where: Path) -> Any:
    archive = where / "code.zip"
    archive.write_bytes(code)
    module_name, func = handler.rsplit(".", 1)
    spec = importlib.util.spec_from_loader(module_name, zipimport.zipimporter(str(archive)))
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return getattr(module, func)(event, None)


@contextmanager
def in_process_lambda(tmp: Path) -> Iterator[list[dict[str, Any]]]:
    """Every Lambda invocation runs its zip's handler here; yields the events, in order."""
    events: list[dict[str, Any]] = []

    def _invoke_lambda(self: Any, event: Any = None) -> tuple[str, bool, str]:
        payload = json.loads(event) if isinstance(event, (str, bytes)) else (event or {})
        events.append(payload)
        try:
            result = _run_handler(self.code_bytes, self.handler, payload, tmp)
        except Exception as exc:
            error = {"errorMessage": str(exc), "errorType": type(exc).__name__}
            return json.dumps(error), True, traceback.format_exc()
        return json.dumps(result), False, ""

    with patch.object(LambdaFunction, "_invoke_lambda", _invoke_lambda):
        yield events
