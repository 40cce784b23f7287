"""The legacy dataset of the data-action tests: several thousand items with orphans, collisions,
malformed items, newer target items and a user in two companies."""

from __future__ import annotations

from decimal import Decimal
from typing import Any

from engine.aws import dynamo
from engine.rehearsal.seed import create_table
from engine.runbook.transforms import orphan_company_id

EXPENSES = "construction-expenses-multi-table-expenses"


PROJECTS = "construction-expenses-multi-table-projects"


T_EXPENSES = "construction-expenses-company-expenses"


T_PROJECTS = "construction-expenses-company-projects"


MEMBERS = "construction-expenses-company-users"


COMPANIES = ["comp-a", "comp-b", "comp-c"]


USERS = [f"user-{n:02d}" for n in range(12)]  # user-NN -> COMPANIES[NN % 3]


ORPHANS = ["user-orphan-1", "user-orphan-2"]


N_EXPENSES = 3000


NEWER = 5  # legacy items whose target twin the application updated after the run began


def company_of(user: str) -> str:
    if user in ORPHANS:
        return orphan_company_id("comp-migrated-", user)
    return COMPANIES[int(user.split("-")[1]) % 3]


def build(
    conn: Any, runbook: Any, dual: bool = False, n_expenses: int = N_EXPENSES
) -> dict[str, int]:
    """A legacy dataset of `n_expenses` (> 100) expenses and its oddities; returns expected
    outcome counts for expenses."""
    ddb = conn.client("dynamodb")
    for spec in runbook.inventory.tables:
        create_table(ddb, spec)
    res = conn.resource("dynamodb")
    with res.Table(MEMBERS).batch_writer() as w:
        for u in USERS:
            w.put_item(Item={"companyId": company_of(u), "userId": u, "role": "admin"})
        if dual:
            w.put_item(Item={"companyId": "comp-a", "userId": "user-dual", "role": "admin"})
            w.put_item(Item={"companyId": "comp-b", "userId": "user-dual", "role": "admin"})
    everyone = USERS + ORPHANS
    with res.Table(PROJECTS).batch_writer() as w:
        for n in range(100):
            w.put_item(
                Item={"userId": everyone[n % 14], "projectId": f"pro-{n:04d}", "name": f"P{n}"}
            )
    with res.Table(EXPENSES).batch_writer() as w:
        for n in range(n_expenses):
            user = everyone[n % 14]
            item = {
                "userId": user,
                "expenseId": f"exp-{n:05d}",
                "amount": Decimal(n % 997) + Decimal("0.25"),
                "date": f"2024-{1 + n % 12:02d}-{1 + n % 28:02d}",
                "description": f"Expense {n}",
                "projectId": f"pro-{n % 14:04d}",  # a project of the same user
                "tags": {"a", f"t{n % 3}"},
            }
            if n % 7 == 0:
                item["createdAt"] = "2024-01-02T03:04:05Z"
            w.put_item(Item=item)
        # malformed: 4 items
        w.put_item(Item={"userId": "user-00", "expenseId": "bad-1", "date": "2024-01-01"})
        w.put_item(Item={"userId": "user-01", "expenseId": "bad-2", "amount": "12", "date": "x"})
        w.put_item(Item={"userId": "user-02", "expenseId": "bad-3", "amount": 1})
        w.put_item(Item={"userId": "user-03", "expenseId": "bad-4", "amount": True, "date": "d"})
        # legacy-duplicate-key: user-00 and user-03 are both in comp-a
        for u in ("user-00", "user-03"):
            w.put_item(Item={"userId": u, "expenseId": "dup-1", "amount": 5, "date": "2024-01-01"})
        # target-owned-by-other: comp-b already has own-1 created by user-01; legacy has user-04
        w.put_item(Item={"userId": "user-04", "expenseId": "own-1", "amount": 7, "date": "2024"})
        if dual:
            w.put_item(
                Item={"userId": "user-dual", "expenseId": "dual-1", "amount": 1, "date": "2024"}
            )
    with res.Table(T_EXPENSES).batch_writer() as w:
        w.put_item(
            Item={
                "companyId": "comp-b",
                "expenseId": "own-1",
                "amount": 9,
                "date": "2024",
                "createdBy": "user-01",
                "createdAt": "2024-11-01T00:00:00Z",
                "updatedAt": "2024-11-01T00:00:00Z",
            }
        )
        for n in range(NEWER):  # the application updated these after the run began
            user = everyone[n % 14]
            w.put_item(
                Item={
                    "companyId": company_of(user),
                    "expenseId": f"exp-{n:05d}",
                    "amount": Decimal(999),
                    "date": "2025-01-01",
                    "createdBy": user,
                    "createdAt": "2024-11-01T00:00:00Z",
                    "updatedAt": "2025-01-01T00:00:00Z",
                }
            )
        # an older application copy of exp-00100: the migration overwrites it
        user = everyone[100 % 14]
        w.put_item(
            Item={
                "companyId": company_of(user),
                "expenseId": "exp-00100",
                "amount": 1,
                "date": "2020-01-01",
                "createdBy": user,
                "createdAt": "2024-11-01T00:00:00Z",
                "updatedAt": "2024-11-01T00:00:00Z",
            }
        )
    return {
        "source": n_expenses + 4 + 3,
        "quarantined": 4,
        "collisions": 3,
        "skipped_newer": NEWER,
        "migrated": n_expenses - NEWER,
    }


def target_items(conn: Any, table: str) -> list[dict[str, Any]]:
    return [i for page, _ in dynamo.scan_pages(conn.client("dynamodb"), table) for i in page]
