"""Pure transforms and classifiers (engine/runbook/transforms.py): no I/O."""

from __future__ import annotations

from decimal import Decimal

from engine.runbook.model import EntitySpec
from engine.runbook.transforms import (
    canonical_json,
    checksum_exclusions,
    classify_legacy,
    classify_target,
    content_checksum,
    is_newer,
    json_safe,
    orphan_company_id,
    to_company_scoped,
    to_legacy,
)

TS = "2024-12-01T10:00:00Z"
EXPENSES = EntitySpec(
    name="expenses",
    source="legacy-expenses",
    target="company-expenses",
    id_attr="expenseId",
    required={"expenseId": "string", "amount": "number", "date": "string"},
    relations={"projectId": "projects"},
    sum_attr="amount",
    date_attr="date",
)
LEGACY = {
    "userId": "user123",
    "expenseId": "exp456",
    "amount": Decimal("1500"),
    "description": "Materials",
    "date": "2024-01-15",
    "tags": {"a", "b"},
    "meta": {"n": Decimal("1.50"), "list": [1, "x"]},
}


def test_plan_example_transform() -> None:
    out = to_company_scoped(EXPENSES, LEGACY, "comp789", TS)
    assert out["companyId"] == "comp789" and out["createdBy"] == "user123"
    assert "userId" not in out
    assert out["createdAt"] == TS and out["updatedAt"] == TS  # no createdAt: defaulted
    for k in ("expenseId", "amount", "description", "date", "tags", "meta"):
        assert out[k] == LEGACY[k]
    kept = to_company_scoped(EXPENSES, {**LEGACY, "createdAt": "2024-01-15T10:00:00Z"}, "c", TS)
    assert kept["createdAt"] == "2024-01-15T10:00:00Z"
    assert to_company_scoped(EXPENSES, LEGACY, "comp789", TS) == out  # deterministic


def test_inverse_transform_round_trips() -> None:
    out = to_company_scoped(EXPENSES, LEGACY, "comp789", TS)
    assert to_legacy(EXPENSES, out, TS) == LEGACY
    dated = {**LEGACY, "createdAt": "2024-01-15T10:00:00Z"}
    assert to_legacy(EXPENSES, to_company_scoped(EXPENSES, dated, "c", TS), TS) == dated


def test_checksum_ignores_tenant_and_audit_but_not_content() -> None:
    out = to_company_scoped(EXPENSES, LEGACY, "comp789", TS)
    assert content_checksum(out) == content_checksum(LEGACY)
    assert content_checksum({**LEGACY, "amount": Decimal("1500.00")}) == content_checksum(LEGACY)
    assert content_checksum({**out, "amount": Decimal("1501")}) != content_checksum(LEGACY)
    assert content_checksum({**out, "extra": "x"}) != content_checksum(LEGACY)
    assert canonical_json({"s": {"b", "a"}}) == canonical_json({"s": {"a", "b"}})


def test_classifiers() -> None:
    assert classify_legacy(EXPENSES, LEGACY) is None
    assert classify_legacy(EXPENSES, {k: v for k, v in LEGACY.items() if k != "userId"}) == (
        "missing userId"
    )
    assert "amount should be number" in classify_legacy(EXPENSES, {**LEGACY, "amount": "12"})
    assert classify_legacy(EXPENSES, {**LEGACY, "date": None}) == "missing required date"
    assert "userId is not" in classify_legacy(EXPENSES, {**LEGACY, "userId": ""})
    out = to_company_scoped(EXPENSES, LEGACY, "comp789", TS)
    assert classify_target(EXPENSES, out) is None
    assert "createdBy" in classify_target(EXPENSES, {**out, "createdBy": 5})


def test_orphan_company_ids_are_deterministic_and_distinct() -> None:
    a = orphan_company_id("comp-migrated-", "Bob.X")
    assert a == orphan_company_id("comp-migrated-", "Bob.X")
    assert a.startswith("comp-migrated-bob-x-")
    assert a != orphan_company_id("comp-migrated-", "bob-x")


def test_newer_and_json_safe() -> None:
    assert is_newer("2025-01-01T00:00:00Z", TS)
    assert not is_newer(TS, TS) and not is_newer(None, TS)
    assert json_safe({"a": Decimal("2"), "b": Decimal("2.5"), "s": {"y", "x"}}) == {
        "a": 2,
        "b": "2.5",
        "s": ["x", "y"],
    }


def test_checksum_follows_the_entitys_own_tenant_attribute_names() -> None:
    owners = EXPENSES.model_copy(update={"user_attr": "ownerId", "company_attr": "tenantId"})
    legacy = {k: v for k, v in LEGACY.items() if k != "userId"} | {"ownerId": "user123"}
    out = to_company_scoped(owners, legacy, "comp789", TS)
    assert "tenantId" in out and "ownerId" not in out
    exclude = checksum_exclusions(owners)
    assert content_checksum(out, exclude) == content_checksum(legacy, exclude)
    assert content_checksum({**out, "amount": Decimal("1")}, exclude) != content_checksum(
        legacy, exclude
    )


def test_an_orphan_keeps_its_reason_after_its_company_exists() -> None:
    from engine.actions.analyze.mapping import Resolver

    company = orphan_company_id("comp-migrated-", "u-orphan")
    before = Resolver("comp-migrated-", {}, {})
    after = Resolver("comp-migrated-", {"u-orphan": {company}, "u-1": {"comp-a"}}, {})
    assert before.resolve("u-orphan") == (company, "orphan-new-company")
    assert after.resolve("u-orphan") == (company, "orphan-new-company")  # a re-run
    assert after.resolve("u-1") == ("comp-a", "member")
