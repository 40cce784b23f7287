"""What seeding a function needs: a handler package, and the stack header with which the seed
stands in for CloudFormation and for history (moto's fidelity layer lets reserved `aws:` tags
and runtimes AWS now blocks through with it: the world's functions were made before the block).
"""

from __future__ import annotations

import contextlib
import io
import zipfile
from collections.abc import Iterator
from typing import Any

from engine.rehearsal.stack_header import STACK_HEADER


def handler_zip() -> bytes:
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w") as zf:
        zf.writestr("index.py", "def handler(event, context):\n    return {'statusCode': 200}\n")
    return buf.getvalue()


@contextlib.contextmanager
def as_stack(client: Any) -> Iterator[Any]:
    """While open, the client's requests carry the header with which moto's fidelity layer lets
    reserved `aws:` tags through: the seed stands in for CloudFormation. The client may be the
    engine's own (a Connection caches clients), so the header goes when the block ends."""

    def mark(request: Any, **_: Any) -> None:
        request.headers[STACK_HEADER] = "cloudformation"

    client.meta.events.register("before-sign", mark, unique_id="runbook-rehearsal-stack")
    try:
        yield client
    finally:
        client.meta.events.unregister("before-sign", unique_id="runbook-rehearsal-stack")
