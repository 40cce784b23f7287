"""One user's items in one segment, for the concurrent write path: the world, the mapping done,
throttling injected."""

from __future__ import annotations

from decimal import Decimal
from typing import Any

from botocore.awsrequest import AWSResponse

from engine.rehearsal.seed import create_table
from tests.support.actions import run

EXPENSES = "construction-expenses-multi-table-expenses"


T_EXPENSES = "construction-expenses-company-expenses"


MEMBERS = "construction-expenses-company-users"


N = 400


def build(aws: Any, runbook: Any) -> None:
    ddb = aws.client("dynamodb")
    for spec in runbook.inventory.tables:
        create_table(ddb, spec)
    res = aws.resource("dynamodb")
    with res.Table(MEMBERS).batch_writer() as w:
        w.put_item(Item={"companyId": "comp-a", "userId": "user-a", "role": "admin"})
    with res.Table(EXPENSES).batch_writer() as w:
        for n in range(N):  # one user: a parallel scan would put them all in one segment
            w.put_item(
                Item={
                    "userId": "user-a",
                    "expenseId": f"exp-{n:04d}",
                    "amount": Decimal(n),
                    "date": "2024-01-01",
                }
            )


def mapped(aws: Any, make_ctx: Any, runbook: Any) -> tuple[Any, Any]:
    """The world built and the mapping step done: (the DynamoDB client, the mapping's ctx)."""
    build(aws, runbook)
    ctx, _ = make_ctx("mapping-document", aws)
    run(ctx, "company_mapping", {"apply": True})
    return aws.client("dynamodb"), ctx


def throttling(client: Any, every: int) -> list[int]:
    """Every `every`-th PutItem is answered 400 ProvisionedThroughputExceededException (before
    it reaches the server), as DynamoDB answers a hot partition."""
    count = [0]

    def before_send(request: Any, **_: Any) -> AWSResponse | None:
        if b"PutItem" not in request.headers.get("X-Amz-Target", b""):
            return None
        count[0] += 1
        if count[0] % every:
            return None
        body = (
            b'{"__type": "com.amazonaws.dynamodb.v20120810#ProvisionedThroughputExceededException",'
            b' "message": "Rate exceeded"}'
        )

        class Raw:
            def stream(self, **_: Any) -> Any:
                yield body

        return AWSResponse(request.url, 400, {"Content-Type": "application/x-amz-json-1.0"}, Raw())

    client.meta.events.register_first("before-send.dynamodb", before_send)
    return count
