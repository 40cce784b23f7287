"""The view-only console that `runbook serve` shows: no key can act, and it never locks."""

from __future__ import annotations

import fcntl
import time
from pathlib import Path

import pytest
from textual.widgets import Footer

from engine.aws.target import Connection
from engine.cli.context import CliContext
from engine.cli.parser import build_parser
from engine.run.engine import Engine
from engine.session.workspace import Workspace, WorkspaceOptions
from engine.state.journal import JournalStore
from engine.state.lock import JournalLock, lock_path_for
from tests.support.paths import MINI_RUNBOOK
from tests.support.world import seeded_engine
from tui.app import RunbookApp
from tui.screens.gate import GateScreen
from tui.screens.keys import KeysScreen
from tui.serve import view_command
from tui.view import VIEW_ACTIONS, ReadOnlyStore, ViewOnlyApp, peek_holder, view_app

# what an acting key is called in the footer and the keys list, on every screen
ACTING = (
    "Run/resume",
    "Stop",
    "Ack",
    "Rollback",
    "Roll back",
    "Resume",
    "Tick",
    "Re-check",
    "GO",
    "NO-GO",
    "override",
    "scale",
    "Acknowledge",
    "Faster",
    "Slower",
)
KEYS = ["r", "s", "a", "b", "g", "y", "n", "o", "t", "e", "space", "enter", "plus", "minus"]


def _run_to(aws: Connection, journal: Path, where: str) -> Engine:
    """A run of the mini runbook waiting at the gate (GO possible) or at the manual step."""
    engine = seeded_engine(aws, journal, MINI_RUNBOOK, "world-mini", time_scale=1000)
    engine.run()
    engine.tick("gate-phase2", "team-ready", by="alice")
    engine.evaluate_gate("gate-phase2")
    if where == "manual step":
        engine.decide("gate-phase2", go=True, by="alice")
        engine.run()
    return engine


def open_workspace(journal: Path) -> Workspace:
    # an endpoint that is never contacted: the view opens the journal only
    return Workspace(
        WorkspaceOptions(runbook=MINI_RUNBOOK, journal=journal, endpoint_url="http://127.0.0.1:9")
    )


def _offered(app: RunbookApp) -> list[str]:
    """The descriptions of every key the current screen offers (what the footer shows)."""
    return [b.binding.description for b in app.screen.active_bindings.values() if b.enabled]


def _footer_text(app: RunbookApp) -> str:
    footer = app.screen.query_one(Footer)
    return " ".join(str(key.render()) for key in footer.children)


async def _footer_drawn(pilot) -> str:
    """The footer's text once it shows its keys (it is recomposed after the screen mounts)."""
    deadline = time.monotonic() + 5
    while "Keys" not in (text := _footer_text(pilot.app)) and time.monotonic() < deadline:
        await pilot.pause(0.05)
    return text


def _no_acting(texts: list[str] | str) -> None:
    joined = " | ".join(texts) if isinstance(texts, list) else texts
    for name in ACTING:
        assert name not in joined, f"{name!r} offered: {joined}"


@pytest.mark.parametrize("where", ["gate", "manual step"])
async def test_view_only_console_offers_no_acting_key(
    aws: Connection, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, where: str
) -> None:
    journal = tmp_path / "j.toml"
    _run_to(aws, journal, where)
    before = journal.read_bytes()
    log = JournalStore(journal).log_path
    log_before = log.read_bytes()
    flocks: list[tuple] = []
    real_flock = fcntl.flock
    monkeypatch.setattr(fcntl, "flock", lambda *a: (flocks.append(a), real_flock(*a))[1])

    app = view_app(open_workspace(journal))
    assert isinstance(app, ViewOnlyApp) and app.read_only
    assert isinstance(app.engine.store, ReadOnlyStore)
    async with app.run_test(size=(80, 24)) as pilot:
        footer = await _footer_drawn(pilot)
        assert "Keys" in footer and "Quit" in footer  # the footer is drawn ...
        _no_acting(footer)  # ... and offers nothing that acts
        _no_acting(_offered(app))
        for ns, binding, *_ in app.screen.active_bindings.values():
            if ns is app or ns is app.screen:
                assert binding.action.split(".")[-1] in VIEW_ACTIONS, binding.action
        for key in KEYS:
            await pilot.press(key)
            await pilot.app.workers.wait_for_complete()
            await pilot.pause()
            # g opens the gate read-only; nothing else opens
            assert isinstance(app.screen, type(app.main) | GateScreen), (key, app.screen)
            if isinstance(app.screen, GateScreen):
                assert app.screen.read_only
                _no_acting(_offered(app))
                _no_acting(_footer_text(app))
        await pilot.press("escape")
        await pilot.pause()
        assert app.screen is app.main
        app.follow_driver()  # the viewer follows the journal, without a lock
        await pilot.press("question_mark")
        await pilot.pause()
        assert isinstance(app.screen, KeysScreen)
        _no_acting(app.screen.text)
        assert "Run log" in app.screen.text
        assert not app.running
    assert journal.read_bytes() == before  # nothing recorded
    assert log.read_bytes() == log_before
    assert flocks == []  # not even a probe of the journal's lock
    with pytest.raises(PermissionError):
        app.engine.save()  # the store cannot write


async def test_view_follows_a_driver_without_taking_the_lock(
    aws: Connection, tmp_path: Path
) -> None:
    journal = tmp_path / "j.toml"
    _run_to(aws, journal, "gate")
    app = view_app(open_workspace(journal))
    assert app.holder is None
    async with app.run_test(size=(80, 24)) as pilot:
        await pilot.pause()
        top = str(app.main.query_one("#topbar").render())
        assert "VIEW ONLY · no console drives now" in top and "quit, then runbook" not in top
        with JournalLock(journal, "run"):  # a driver can start while the view watches
            app.follow_driver()
            await pilot.pause()
            assert app.holder is not None and app.holder.operation == "run"
            assert "VIEW ONLY · driven by" in str(app.main.query_one("#topbar").render())
        app.follow_driver()
        await pilot.pause()
        assert app.holder is None  # the driver left: its record is emptied
    assert lock_path_for(journal).read_bytes() == b""


def test_peek_holder_ignores_a_dead_driver_record(tmp_path: Path) -> None:
    journal = tmp_path / "j.toml"
    assert peek_holder(journal) is None  # no lock file: nobody
    with JournalLock(journal, "run"):
        assert peek_holder(journal).operation == "run"
    lock_path_for(journal).write_text(  # a driver killed -9: its record stays, its flock not
        'user = "bob"\nhost = "elsewhere"\npid = 1\nsince = "x"\noperation = "run"\n'
    )
    assert peek_holder(journal) is None


def test_serve_refuses_a_non_loopback_host_and_passes_the_target_on(tmp_path: Path) -> None:
    parser = build_parser()
    with pytest.raises(SystemExit) as exc:
        parser.parse_args(["serve", "--host", "0.0.0.0"])
    assert exc.value.code == 2
    with pytest.raises(SystemExit):
        parser.parse_args(["serve", "--host", "example.com"])
    assert parser.parse_args(["serve", "--host", "localhost"]).host == "127.0.0.1"
    args = parser.parse_args(
        [
            "serve",
            "--port",
            "8123",
            "--journal",
            str(tmp_path / "j.toml"),
            "--runbook",
            str(MINI_RUNBOOK),
            "--endpoint-url",
            "http://127.0.0.1:4566",
        ]
    )
    assert (args.port, args.host) == (8123, "127.0.0.1")
    command = view_command(CliContext.of(args, []).target, open_workspace(tmp_path / "j.toml"))
    assert " view --runbook " in command
    assert f"--journal {tmp_path / 'j.toml'}" in command
    assert "--endpoint-url http://127.0.0.1:4566" in command
    assert "--fresh" not in command and "--time-scale" not in command
    assert "NO authentication" in parser._subparsers._group_actions[0].choices["serve"].description


@pytest.mark.parametrize("view_only", [True, False])
async def test_a_key_added_later_is_not_offered_in_the_view(
    aws: Connection, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, view_only: bool
) -> None:
    """The view offers an allow-list: a new command key (say, a clock-scale key) is absent
    from it unless it is added to VIEW_ACTIONS on purpose."""
    journal = tmp_path / "j.toml"
    engine = _run_to(aws, journal, "gate")
    pressed: list[str] = []
    monkeypatch.setattr(RunbookApp, "action_probe", lambda self: pressed.append("f6"), False)
    app = view_app(open_workspace(journal)) if view_only else RunbookApp(engine, greet=False)
    app.bind("f6", "probe", description="A new command")
    async with app.run_test(size=(80, 24)) as pilot:
        await _footer_drawn(pilot)
        await pilot.press("f6")
        await pilot.pause()
        offered = _offered(app)
    assert ("A new command" in offered) is not view_only
    assert pressed == ([] if view_only else ["f6"])


def test_serve_says_what_is_wrong_in_one_line(tmp_path: Path, capsys) -> None:
    import runbook_entry

    target = ["--runbook", str(MINI_RUNBOOK), "--journal", str(tmp_path / "none.toml")]
    assert runbook_entry.main(["serve", *target]) == 2
    assert "no run yet" in capsys.readouterr().err
    assert runbook_entry.main(["serve", *target, "--fresh"]) == 2
    assert "serve only shows the run; --fresh would change it" in capsys.readouterr().err
    assert runbook_entry.main(["--time-scale", "5", "serve", *target]) == 2
    assert "--time-scale would change it" in capsys.readouterr().err
    assert not (tmp_path / "none.toml").exists()


def test_only_the_servers_own_origin_may_open_its_websocket() -> None:
    """Issue 20, item 7: the Host the browser asked for is the origin it may come from, which
    covers `ssh -L 9000:127.0.0.1:8000` (page and socket both localhost:9000)."""
    from tui.serve import same_origin

    assert same_origin("http://127.0.0.1:8000", "127.0.0.1:8000")
    assert same_origin("http://localhost:9000", "localhost:9000")  # through an ssh tunnel
    assert same_origin(None, "127.0.0.1:8000")  # no browser page: nothing to forge
    assert not same_origin("http://evil.example.com", "127.0.0.1:8000")
    assert not same_origin("http://127.0.0.1:8001", "127.0.0.1:8000")  # another local site
    assert not same_origin("null", "127.0.0.1:8000")  # a sandboxed or file: page
