"""Answers broken on the way, at every kind of step (issue 20, item 1's done-when): a whole
run of the bundled runbook, the rollbacks of phase 4 (reads) and, at the end, of phase 5
(restores) included, through a loopback proxy that breaks
the first answer of each kind of call the engine makes (JSON and query operations by name,
REST calls by the shape of their path), each with one of three faults in turn: a 200 whose body is
cut short, a connection closed mid-body, a 200 whose body is not JSON. The answer is broken
after AWS (here moto) applied the call, so a retried write must be idempotent.

One moto server holds two worlds seeded alike in two accounts: the reference runs without the
proxy. At the end the broken world equals the reference: every DynamoDB item, every function's
variables and aliases, alarms, dashboards, log groups, API routes and the backups of every
table (a retried CreateBackup must not make a second one); and every step ended with the same
counts, so no step is DONE with a short count."""

from __future__ import annotations

import json
import re
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

from engine.cli.app import main
from engine.plan.loader import default_runbook_path, load_runbook
from engine.state.journal import JournalStore
from tests.support.faulty_proxy import FaultyProxy, Plan
from tests.support.long_runs import long_run
from tests.support.rehearsal import TIME_SCALE
from tests.support.two_worlds import (
    FIRST,
    SECOND,
    answer_waiting,
    common,
    seed_accounts,
    session_for,
    world_items,
)
from tests.support.world import fresh_moto_server

BROKEN, REFERENCE = FIRST, SECOND
SCALE = 5  # 50 legacy items per entity table: several pages with page_size 7
ROLLBACK_AT = ("gate", "gate-phase5")  # roll back phase 4 (reads) while waiting here, once
# summary fields that measure time or the machine, not what was done
UNCOUNTED = re.compile(r"seconds|rate|latency|per_s|elapsed|_ms$|^p\d+|lag|ts$|_at$")


def first_of_each_kind() -> Callable[[str, int], bool]:
    """The first answer of each kind of call. A REST path is reduced to its shape (a segment
    with a digit, dash, dot or underscore, so names, ids and dates, becomes {}): breaking the
    first read of one function's configuration says what breaking every function's would."""
    kinds: set[str] = set()

    def pick(operation: str, n: int) -> bool:
        kind = re.sub(r"/[^/]*[-\d_.][^/]*", "/{}", operation)
        if n or kind in kinds:
            return False
        kinds.add(kind)
        return True

    return pick


def small_pages_runbook(folder: Path) -> Path:
    """The bundled runbook, every migration scanning 7 items a page: several pages a segment."""

    def small(match: re.Match[str]) -> str:
        params = re.sub(r",? *page_size = \d+", "", match.group(1))
        return f"{params}, page_size = 7 }}"

    text, n = re.subn(
        r'(action = "migrate_entity"\nparams = \{ entity = "\w+"[^}]*?) *\}',
        small,
        default_runbook_path().read_text(),
    )
    assert n == 4, n
    path = folder / "runbook.toml"
    path.write_text(text)
    return path


@pytest.fixture(scope="module")
def worlds(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[str, Any, Path]]:
    rb_path = small_pages_runbook(tmp_path_factory.mktemp("runbook"))
    with fresh_moto_server() as url:
        yield url, seed_accounts(url, load_runbook(rb_path).runbook, SCALE), rb_path


def drive(url: str, journal: Path, rb_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    rb = load_runbook(rb_path).runbook
    flags = common(url, journal, rb_path)
    rolled_back = False
    for _ in range(100):
        code = main(["run", "--yes", "--time-scale", TIME_SCALE, *flags])
        out = capsys.readouterr()
        if code == 0:
            return
        assert code == 3, (code, out.err[-2000:])
        main(["status", "--json", *flags])
        waiting = json.loads(capsys.readouterr().out)["waiting"]
        if not rolled_back and (waiting["kind"], waiting["id"]) == ROLLBACK_AT:
            code = main(["rollback", "phase4", "--yes", "--by", "net", *flags])
            assert code == 0, capsys.readouterr().err[-2000:]
            rolled_back = True
            continue
        answer_waiting(flags, rb, capsys, "net")
    pytest.fail("the run did not finish")


def restore_cleanup(url: str, journal: Path, rb_path: Path, capsys: pytest.CaptureFixture[str]):
    """After the run: phase 5 rolled back (tables from backups, functions and routes from their
    archives, legacy re-synced): the restore steps meet broken answers too."""
    code = main(["rollback", "phase5", "--yes", "--by", "net", *common(url, journal, rb_path)])
    assert code == 0, capsys.readouterr().err[-2000:]


def resources(url: str, env: dict[str, str]) -> dict[str, Any]:
    """What the run changed besides items, in a form two accounts can be compared by."""
    session = session_for(env)
    ddb = session.client("dynamodb", endpoint_url=url)
    lam = session.client("lambda", endpoint_url=url)
    cw = session.client("cloudwatch", endpoint_url=url)
    logs = session.client("logs", endpoint_url=url)
    gw = session.client("apigateway", endpoint_url=url)
    tables = ddb.list_tables()["TableNames"]
    functions: dict[str, Any] = {}
    for fn in lam.list_functions()["Functions"]:
        name = fn["FunctionName"]
        aliases = lam.list_aliases(FunctionName=name)["Aliases"]
        functions[name] = {
            "env": (fn.get("Environment") or {}).get("Variables", {}),
            "aliases": sorted(a["Name"] for a in aliases),
        }
    apis = gw.get_rest_apis()["items"]
    routes = {
        api["name"]: sorted(
            f"{method} {r['path']}"
            for r in gw.get_resources(restApiId=api["id"], limit=500)["items"]
            for method in r.get("resourceMethods") or {}
        )
        for api in apis
    }
    return {
        "tables": sorted(tables),
        "backups": sorted(b["TableName"] for b in ddb.list_backups()["BackupSummaries"]),
        "functions": functions,
        "alarms": sorted(a["AlarmName"] for a in cw.describe_alarms()["MetricAlarms"]),
        "dashboards": sorted(d["DashboardName"] for d in cw.list_dashboards()["DashboardEntries"]),
        "log_groups": sorted(g["logGroupName"] for g in logs.describe_log_groups()["logGroups"]),
        "routes": routes,
    }


def counts(journal: Path) -> dict[str, tuple[str, dict[str, int]]]:
    """Each step's status and the counts in its summary."""
    steps = JournalStore(journal).load().steps
    return {
        step_id: (
            state.status,
            {
                k: v
                for k, v in (state.summary or {}).items()
                if isinstance(v, int) and not isinstance(v, bool) and not UNCOUNTED.search(k)
            },
        )
        for step_id, state in steps.items()
    }


@long_run
def test_a_broken_answer_at_every_kind_of_step_changes_nothing(
    worlds: tuple[str, Any, Path],
    tmp_path: Path,
    capsys: pytest.CaptureFixture[str],
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    url, env, rb_path = worlds
    with monkeypatch.context() as m:
        for key, value in env[REFERENCE].items():
            m.setenv(key, value)
        drive(url, tmp_path / "reference.toml", rb_path, capsys)
        restore_cleanup(url, tmp_path / "reference.toml", rb_path, capsys)
    for key, value in env[BROKEN].items():
        monkeypatch.setenv(key, value)
    plan = Plan("rotate", first_of_each_kind())
    with FaultyProxy(url, plan) as proxy:
        drive(proxy.url, tmp_path / "broken.toml", rb_path, capsys)
        restore_cleanup(proxy.url, tmp_path / "broken.toml", rb_path, capsys)

    kinds = {
        fault: sum(1 for f in plan.kinds.values() if f == fault) for fault in plan.kinds.values()
    }
    print(f"{len(plan.broken)} answers broken: {kinds}")
    assert len(plan.broken) >= 30 and len(kinds) == 3, plan.kinds

    ts = {
        account: JournalStore(path).load().run.migration_ts
        for account, path in ((REFERENCE, tmp_path / "reference.toml"),
                              (BROKEN, tmp_path / "broken.toml"))
    }  # fmt: skip
    reference = world_items(url, env[REFERENCE], ts[REFERENCE])
    broken = world_items(url, env[BROKEN], ts[BROKEN])
    assert sorted(broken) == sorted(reference)
    for table in reference:
        assert broken[table] == reference[table], table
    assert resources(url, env[BROKEN]) == resources(url, env[REFERENCE])
    assert counts(tmp_path / "broken.toml") == counts(tmp_path / "reference.toml")
