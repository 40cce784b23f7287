"""The runbook's REST API by identity: resolved once, on Day 1 (the inventory), by its name and
the stage the runbook names, or the id the runbook pins (engine/aws/apigateway.resolve_api),
then journaled (`Journal.api_id`). Every later step and rollback uses the journaled id, never a
lookup by name: a staging stack of the same name is never touched.

The other lookups by name (issue 19, audited): a DynamoDB table, a Lambda function, a log group,
an SSM parameter and a CloudWatch alarm are each unique by name within an account and region,
so their name is their identity there; each is matched exactly (DescribeLogGroups' prefix
filter is followed by an exact comparison), never by the first of a prefix or a pattern."""

from __future__ import annotations

from engine.aws.apigateway import ApiNotResolved, resolve_api
from engine.core.context import ActionContext


def api_id_of(ctx: ActionContext) -> str | None:
    """The journaled id of the runbook's API (None: the runbook has no API). A journal without
    one (written before this was journaled) resolves it now, as Day 1 would, and journals it.
    ApiNotResolved when the API is not exactly one, or the runbook pins another id."""
    api = ctx.runbook.inventory.api
    if api is None:
        return None
    journal = ctx.journal
    if journal.api_id and api.id and api.id != journal.api_id:
        raise ApiNotResolved(
            f"the runbook pins REST API {api.id}, but this run journaled {journal.api_id} on "
            "Day 1; one run migrates one API"
        )
    if not journal.api_id:
        journal.api_id = resolve_api(ctx.client("apigateway"), api.name, api.stage, api.id)
        ctx.log(f"REST API {api.name!r} (stage {api.stage}) is {journal.api_id}; journaled")
        ctx.checkpoint(force=True)
    return journal.api_id
