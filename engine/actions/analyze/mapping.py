"""userId -> companyId mapping (plan section 5): memberships, orphans, conflicts, overrides.

Artifact `mapping.jsonl` (beside the journal), one line per user, sorted by user:
    {"user": "user-x", "company": "comp-a", "reason": "member" | "orphan-new-company" | "override"}
Conflicts (a user in two companies, no override) go to `mapping-conflicts.jsonl` and fail the
step; the operator resolves them in the mapping-overrides TOML (`[users] "user-x" = "comp-a"`).
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from pathlib import Path

from pydantic import BaseModel, ConfigDict

from engine.aws import dynamo
from engine.core.context import Action, ActionContext, PlannedCall
from engine.runbook.model import MappingSpec, Runbook
from engine.runbook.transforms import orphan_company_id, orphan_company_name
from engine.state.mapping_record import overrides_for_step
from engine.state.records import Cursors, Summary
from engine.state.resume import cursors_of

MAPPING_ARTIFACT = "mapping.jsonl"
CONFLICTS_ARTIFACT = "mapping-conflicts.jsonl"
RUN_MARKER = "migrationRun"  # attribute on companies/memberships this run created
CREATOR = "runbook-console"


class MappingConflict(Exception):
    """Users belong to several companies and no override says which one to use."""


class MappingParams(BaseModel):
    model_config = ConfigDict(extra="forbid")
    apply: bool = False


class RemoveParams(BaseModel):
    model_config = ConfigDict(extra="forbid")


def _spec(rb: Runbook) -> MappingSpec:
    if rb.mapping is None:
        raise ValueError("the runbook has no [mapping] section")
    return rb.mapping


def membership_keys(rb: Runbook) -> tuple[str, str]:
    """(partition, sort) key names of the company-users table."""
    m = _spec(rb)
    spec = rb.find_table(m.company_users_table)
    if spec and spec.sort_key:
        return spec.partition_key, spec.sort_key
    return m.company_attr, m.user_attr


def company_key(rb: Runbook) -> str:
    m = _spec(rb)
    spec = rb.find_table(m.companies_table)
    return spec.partition_key if spec else m.company_attr


def read_memberships(ctx: ActionContext) -> dict[str, set[str]]:
    """user -> companies, from a streaming scan of company-users (users, not items: small)."""
    m = _spec(ctx.runbook)
    pk, sk = membership_keys(ctx.runbook)
    ddb = ctx.client("dynamodb")
    out: dict[str, set[str]] = {}
    for page, _ in dynamo.scan_pages(
        ddb,
        m.company_users_table,
        clock=ctx.clock,
        ProjectionExpression="#c, #u",
        ExpressionAttributeNames={"#c": pk, "#u": sk},
    ):
        for item in page:
            out.setdefault(str(item[sk]), set()).add(str(item[pk]))
        ctx.clock.check()
    return out


@dataclass
class Resolver:
    """Maps a user to a company the same way in every step: override, membership, orphan rule."""

    prefix: str
    memberships: dict[str, set[str]]
    overrides: dict[str, str]
    conflicts: dict[str, list[str]] = field(default_factory=dict)

    def resolve(self, user: str) -> tuple[str | None, str]:
        if user in self.overrides:
            return self.overrides[user], "override"
        companies = self.memberships.get(user, set())
        if len(companies) == 1:
            company = next(iter(companies))
            # a membership this run created for an orphan keeps its reason on a re-run
            orphan = company == orphan_company_id(self.prefix, user)
            return company, "orphan-new-company" if orphan else "member"
        if len(companies) > 1:
            self.conflicts[user] = sorted(companies)
            return None, "conflict"
        return orphan_company_id(self.prefix, user), "orphan-new-company"

    def company_for(self, user: str) -> str | None:
        return self.resolve(user)[0]


def build_resolver(ctx: ActionContext) -> Resolver:
    """The resolver every step shares: overrides come from the journaled mapping in effect
    (recorded at first use), never from whatever the command line says on a resume."""
    overrides = overrides_for_step(
        ctx.journal,
        ctx.runbook,
        ctx.step_id,
        ctx.overrides_path(),
        explicit=ctx.mapping_overrides is not None,
    )
    ctx.save()  # the record is on disk before anything is written with it
    return Resolver(
        prefix=_spec(ctx.runbook).orphan_company_prefix,
        memberships=read_memberships(ctx),
        overrides=overrides,
    )


def legacy_users(ctx: ActionContext) -> set[str]:
    """Distinct userIds of the legacy users table and every legacy entity table."""
    m = _spec(ctx.runbook)
    ddb = ctx.client("dynamodb")
    users: set[str] = set()
    sources = [(m.legacy_users_table, m.user_attr)]
    sources += [(e.source, e.user_attr) for e in ctx.runbook.entities]
    for table, attr in sources:
        if not dynamo.table_exists(ddb, table):
            ctx.log(f"{table} does not exist; no users read from it", "warning")
            continue
        for page, _ in dynamo.scan_pages(
            ddb,
            table,
            clock=ctx.clock,
            ProjectionExpression="#u",
            ExpressionAttributeNames={"#u": attr},
        ):
            users.update(str(i[attr]) for i in page if isinstance(i.get(attr), str) and i[attr])
            ctx.clock.check()
    return users


def conflict_message(conflicts: dict[str, list[str]], overrides_path: Path) -> str:
    listed = "; ".join(f"{u} is in {', '.join(c)}" for u, c in sorted(conflicts.items()))
    return (
        f"{len(conflicts)} user(s) belong to more than one company: {listed}. "
        f"The migration does not guess: choose one company per user in {overrides_path} "
        f'as [users] "<userId>" = "<companyId>", then re-run this step.'
    )


def _ensure_orphan_company(ctx: ActionContext, user: str, company: str) -> bool:
    """Create the company and the membership; True when this run owns them (created now or on
    an earlier attempt of this run, recognised by the run marker)."""
    m = _spec(ctx.runbook)
    ddb = ctx.client("dynamodb")
    ckey = company_key(ctx.runbook)
    pk, sk = membership_keys(ctx.runbook)
    stamp = {
        RUN_MARKER: ctx.migration_ts,
        "createdBy": CREATOR,
        "createdAt": ctx.migration_ts,
        "updatedAt": ctx.migration_ts,
    }
    company_item = {
        ckey: company,
        "name": orphan_company_name(m.orphan_company_name, user),
        "migratedFromUser": user,
        **stamp,
    }
    created, old = dynamo.conditional_put(
        ddb,
        m.companies_table,
        company_item,
        "attribute_not_exists(#k)",
        names={"#k": ckey},
        clock=ctx.clock,
    )
    ours = created or bool(old and old.get(RUN_MARKER) == ctx.migration_ts)
    member = {pk: company, sk: user, "role": "admin", **stamp}
    dynamo.conditional_put(
        ddb,
        m.company_users_table,
        member,
        "attribute_not_exists(#k)",
        names={"#k": pk},
        clock=ctx.clock,
    )
    return ours


class MappingCursors(Cursors):
    created_companies: list[str] = []  # company ids this run created for orphan users


class MappingSummary(Summary):
    users: int = 0
    members: int = 0
    orphans: int = 0
    overrides: int = 0
    conflicts: int = 0
    applied: bool = False
    companies_created: int = 0
    artifact: str = ""
    overrides_file: str = ""


def run_mapping(ctx: ActionContext, p: MappingParams) -> MappingSummary:
    resolver = build_resolver(ctx)
    users = legacy_users(ctx) | set(resolver.memberships) | set(resolver.overrides)
    rows = []
    counts = {"member": 0, "orphan-new-company": 0, "override": 0, "conflict": 0}
    for user in sorted(users):
        company, reason = resolver.resolve(user)
        counts[reason] += 1
        if company is not None:
            rows.append({"user": user, "company": company, "reason": reason})
    with ctx.artifact(MAPPING_ARTIFACT).open("w") as fh:
        fh.writelines(json.dumps(r, sort_keys=True) + "\n" for r in rows)
    conflicts_path = ctx.artifact(CONFLICTS_ARTIFACT)
    if resolver.conflicts:
        with conflicts_path.open("w") as fh:
            for user, companies in sorted(resolver.conflicts.items()):
                fh.write(json.dumps({"user": user, "companies": companies}) + "\n")
        raise MappingConflict(conflict_message(resolver.conflicts, ctx.overrides_path()))
    conflicts_path.unlink(missing_ok=True)
    for user, company in sorted(resolver.overrides.items()):
        ctx.log(f"mapping override: {user} -> {company}")

    created = ctx.cursors_as(MappingCursors).created_companies
    if p.apply:
        orphans = [r for r in rows if r["reason"] == "orphan-new-company"]
        for n, row in enumerate(orphans, 1):
            ctx.clock.check()
            ours = _ensure_orphan_company(ctx, row["user"], row["company"])
            if ours and row["company"] not in created:
                created.append(row["company"])
            ctx.progress(_spec(ctx.runbook).companies_table, n, len(orphans))
            ctx.checkpoint()
        ctx.checkpoint(force=True)
    return MappingSummary(
        users=len(users),
        members=counts["member"],
        orphans=counts["orphan-new-company"],
        overrides=counts["override"],
        conflicts=counts["conflict"],
        applied=p.apply,
        companies_created=len(created),
        artifact=MAPPING_ARTIFACT,
        overrides_file=str(ctx.overrides_path()) if resolver.overrides else "",
    )


def plan_mapping(rb: Runbook, p: MappingParams) -> list[PlannedCall]:
    m = _spec(rb)
    calls = [PlannedCall("dynamodb", "Scan", m.company_users_table, "memberships")]
    calls += [
        PlannedCall("dynamodb", "Scan", t, "distinct userIds")
        for t in [m.legacy_users_table] + [e.source for e in rb.entities]
    ]
    if p.apply:
        calls += [
            PlannedCall(
                "dynamodb",
                "PutItem",
                m.companies_table,
                "one per orphan user, attribute_not_exists",
            ),
            PlannedCall(
                "dynamodb",
                "PutItem",
                m.company_users_table,
                "membership per orphan user, attribute_not_exists",
            ),
        ]
    return calls


def _created_by_run(ctx: ActionContext) -> list[str]:
    """Company ids the run recorded, plus any carrying this run's marker (crash before a
    checkpoint)."""
    ids: set[str] = set()
    for step in ctx.runbook.steps:
        if step.action == "company_mapping":
            made = cursors_of(ctx.journal, step.id, MappingCursors)
            ids.update(made.created_companies if made else [])
    m = _spec(ctx.runbook)
    ddb = ctx.client("dynamodb")
    ckey = company_key(ctx.runbook)
    if dynamo.table_exists(ddb, m.companies_table):
        for page, _ in dynamo.scan_pages(
            ddb,
            m.companies_table,
            clock=ctx.clock,
            FilterExpression="#r = :ts",
            ExpressionAttributeNames={"#r": RUN_MARKER},
            ExpressionAttributeValues={":ts": dynamo.av(ctx.migration_ts)},
        ):
            ids.update(str(i[ckey]) for i in page)
    return sorted(ids)


class RemoveCursors(Cursors):
    removed_companies: int = 0
    removed_memberships: int = 0


class RemoveSummary(Summary):
    companies_removed: int = 0
    memberships_removed: int = 0
    companies_considered: int = 0


def run_remove(ctx: ActionContext, p: RemoveParams) -> RemoveSummary:
    m = _spec(ctx.runbook)
    ddb = ctx.client("dynamodb")
    ckey = company_key(ctx.runbook)
    pk, sk = membership_keys(ctx.runbook)
    companies = _created_by_run(ctx)
    cond = "#r = :ts"
    names = {"#r": RUN_MARKER}
    values = {":ts": ctx.migration_ts}
    c = ctx.cursors_as(RemoveCursors)
    removed_companies, removed_members = c.removed_companies, c.removed_memberships
    for n, company in enumerate(companies, 1):
        ctx.clock.check()
        for page, _ in dynamo.scan_pages(
            ddb,
            m.company_users_table,
            clock=ctx.clock,
            FilterExpression="#c = :c",
            ExpressionAttributeNames={"#c": pk},
            ExpressionAttributeValues={":c": dynamo.av(company)},
        ):
            for item in page:
                if dynamo.conditional_delete(
                    ddb,
                    m.company_users_table,
                    {pk: item[pk], sk: item[sk]},
                    cond,
                    values,
                    names,
                    ctx.clock,
                ):
                    removed_members += 1
                else:
                    ctx.log(f"kept membership {company}/{item[sk]}: not created by this run")
        if dynamo.conditional_delete(
            ddb, m.companies_table, {ckey: company}, cond, values, names, ctx.clock
        ):
            removed_companies += 1
        c.removed_companies, c.removed_memberships = removed_companies, removed_members
        ctx.progress(m.companies_table, n, len(companies))
        ctx.checkpoint()
    ctx.checkpoint(force=True)
    return RemoveSummary(
        companies_removed=removed_companies,
        memberships_removed=removed_members,
        companies_considered=len(companies),
    )


def plan_remove(rb: Runbook, p: RemoveParams) -> list[PlannedCall]:
    m = _spec(rb)
    return [
        PlannedCall("dynamodb", "Scan", m.companies_table, f"{RUN_MARKER} = this run"),
        PlannedCall(
            "dynamodb",
            "DeleteItem",
            m.company_users_table,
            f"memberships of those companies, only if {RUN_MARKER} = this run",
        ),
        PlannedCall(
            "dynamodb", "DeleteItem", m.companies_table, f"only if {RUN_MARKER} = this run"
        ),
    ]


ACTIONS = (
    Action(
        "company_mapping",
        MappingParams,
        run_mapping,
        plan_mapping,
        "Map every legacy userId to a companyId; with apply, create companies for orphans",
        cursors=MappingCursors,
        summary=MappingSummary,
    ),
    Action(
        "remove_orphan_companies",
        RemoveParams,
        run_remove,
        plan_remove,
        "Rollback: delete the companies and memberships this run created for orphans",
        cursors=RemoveCursors,
        summary=RemoveSummary,
    ),
)
