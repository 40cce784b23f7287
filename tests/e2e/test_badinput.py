"""Bad input, as a new user at 2 a.m. would give it: every case is exit 2, one clear line on
stderr, no traceback, and nothing changed (the journal and every file beside it, byte for byte).

Each case runs the real CLI in its own process against one loopback moto server and a copy of
one journal, so the suite stays fast; hypothesis then fuzzes the runbook loader and the journal
reader (they raise only their own one-line errors)."""

from __future__ import annotations

import errno
import hashlib
import os
import shutil
import signal
import subprocess
import sys
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest

from engine.state.journal import TRAILER
from tests.support.badinput import (
    MINI_TEXT,
    cli,
    fifo,
    held_server_pid,
    held_start,
    is_gone,
    lock_folder,
    mount_tmpfs,
    snapshot,
)
from tests.support.paths import MINI_RUNBOOK


@dataclass
class Case:
    """argv gets {journal}, {runbook}, {endpoint} filled in; `prepare` may break the copy."""

    argv: tuple[str, ...]
    expect: str  # a phrase of the one line
    prepare: Callable[[Path], None] | None = None
    runbook_text: str | None = None


def _rb(old: str, new: str) -> str:
    assert old in MINI_TEXT
    return MINI_TEXT.replace(old, new, 1)


def _rewrite_journal(body: bytes) -> Callable[[Path], None]:
    def prepare(journal: Path) -> None:
        journal.write_bytes(body + TRAILER % hashlib.sha256(body).hexdigest().encode())

    return prepare


def _cut(journal: Path) -> None:
    raw = journal.read_bytes()
    journal.write_bytes(raw[: len(raw) // 2])


def _edit(journal: Path) -> None:
    """A hand edit that keeps the file valid TOML but not its closing checksum."""
    raw = journal.read_bytes()
    assert b'status = "done"' in raw
    journal.write_bytes(raw.replace(b'status = "done"', b'status = "failed"', 1))


def _flip_status(journal: Path) -> None:
    raw = journal.read_bytes()
    body = raw[: raw.rindex(b"# end of journal")]
    _rewrite_journal(body.replace(b'status = "done"', b'status = "finished"', 1))(journal)


def _bad_overrides(journal: Path) -> None:
    """The operator's overrides file beside the journal, not TOML."""
    journal.with_name("j.mapping-overrides.toml").write_text("[users\nuser-01 = comp-a\n")


RUN = ("run", "--runbook", "{runbook}", "--endpoint-url", "{endpoint}", "--journal", "{journal}")
STATUS = ("status", "--runbook", "{runbook}", "--journal", "{journal}")
AT = ("--runbook", "{runbook}", "--endpoint-url", "{endpoint}", "--journal", "{journal}")

CASES: dict[str, Case] = {
    "time-scale-nan": Case((*RUN, "--time-scale", "nan"), "above 0 and at most 10,000,000"),
    "time-scale-inf": Case((*RUN, "--time-scale", "inf"), "above 0 and at most 10,000,000"),
    "time-scale-zero": Case((*RUN, "--time-scale", "0"), "above 0 and at most 10,000,000"),
    "time-scale-negative": Case((*RUN, "--time-scale=-5"), "above 0 and at most 10,000,000"),
    "time-scale-word": Case((*RUN, "--time-scale", "fast"), "not a number"),
    "by-blank": Case(("tick", "gate-phase2", "team-ready", "--by", "", *AT), "not blank"),
    "by-spaces": Case(("ack", "handover", "--by", "   ", *AT), "not blank"),
    "override-blank": Case(
        ("decide", "gate-phase2", "--go", "--by", "al", "--override", "", *AT),
        "--override: must give the reason (not blank)",
    ),
    "runbook-nested-too-deep": Case(
        ("check", "--runbook", "{runbook}"),
        "nested too deeply to read",
        runbook_text=MINI_TEXT + "deep = " + "[" * 5000 + "]" * 5000 + "\n",
    ),
    "only-with-until": Case(
        (*RUN, "--only", "final-backups", "--until", "handover"), "cannot be combined"
    ),
    "until-unknown": Case((*RUN, "--until", "nope"), "neither a step nor a gate"),
    "only-unknown": Case((*RUN, "--only", "nope"), "not a step of this runbook"),
    "simulate-above-100": Case(
        ("simulate", "--error-rate", "150", *AT), "percentage from 0 to 100"
    ),
    "simulate-negative": Case(("simulate", "--error-rate=-1", *AT), "percentage from 0 to 100"),
    "simulate-not-embedded": Case(("simulate", "--error-rate", "5", *AT), "embedded"),
    "simulate-nothing": Case(("simulate", *AT), "--error-rate, --app-writes or both"),
    "simulate-app-writes-zero": Case(("simulate", "--app-writes", "0", *AT), "above 0"),
    "simulate-app-not-embedded": Case(("simulate", "--app-writes", "5", *AT), "embedded"),
    "unknown-option": Case((*RUN, "--bogus"), "unrecognized arguments"),
    "mapping-overrides-missing": Case(
        (*RUN, "--mapping-overrides", "/nonexistent/overrides.toml"), "no such file"
    ),
    # issue 20, item 5: refused before inventory, backups and monitoring run, not at the mapping
    "mapping-overrides-not-toml": Case(
        RUN, "j.mapping-overrides.toml: not a valid TOML overrides file", prepare=_bad_overrides
    ),
    "decide-unknown-gate": Case(("decide", "nope", "--go", "--by", "al", *AT), "no gate 'nope'"),
    "tick-unknown-item": Case(("tick", "gate-phase2", "nope", "--by", "al", *AT), "no item"),
    "ack-unknown-step": Case(("ack", "nope", "--by", "al", *AT), "no step 'nope'"),
    "nogo-without-note": Case(
        ("decide", "gate-phase2", "--no-go", "--by", "al", *AT), "needs a note"
    ),
    "runbook-missing": Case(
        ("check", "--runbook", "/nonexistent/rb.toml"), "No such file", runbook_text=None
    ),
    "runbook-not-toml": Case(("check", "--runbook", "{runbook}"), "(toml)", runbook_text="[[x"),
    "runbook-unsafe-step-id": Case(
        ("check", "--runbook", "{runbook}"),
        "steps[0].id",
        runbook_text=_rb('id = "backup-tables"', 'id = "x/../../../../escaped"'),
    ),
    "runbook-unknown-table-group": Case(
        ("check", "--runbook", "{runbook}"),
        "unknown table group 'nope'",
        runbook_text=_rb('tables = ["@all"]', 'tables = ["@group:nope"]'),
    ),
    "runbook-unknown-table": Case(
        ("check", "--runbook", "{runbook}"),
        "unknown table 'mini-typo'",
        runbook_text=_rb('tables = ["mini-company"]', 'tables = ["mini-typo"]'),
    ),
    "runbook-gate-check-unknown-step": Case(
        ("check", "--runbook", "{runbook}"),
        "unknown step 'backup-tablez'",
        runbook_text=_rb(
            'params = { step = "backup-tables" }', 'params = { step = "backup-tablez" }'
        ),
    ),
    "runbook-gate-check-later-step": Case(
        ("check", "--runbook", "{runbook}"),
        "comes after gate",
        runbook_text=_rb(
            'params = { step = "backup-tables" }', 'params = { step = "final-backups" }'
        ),
    ),
    "runbook-unknown-phase": Case(
        ("check", "--runbook", "{runbook}"),
        "unknown phase",
        runbook_text=_rb('phase = "phase2"\ntitle = "Final', 'phase = "phase9"\ntitle = "Final'),
    ),
    "runbook-id-differs": Case(
        STATUS, "is for runbook 'mini'", runbook_text=_rb('id = "mini"', 'id = "other"')
    ),
    "journal-truncated": Case(STATUS, "truncated", prepare=_cut),
    "journal-edited": Case(STATUS, "was edited", prepare=_edit),
    "journal-not-toml": Case(STATUS, "corrupt", prepare=_rewrite_journal(b"[[[ not toml\n")),
    "journal-not-utf8": Case(STATUS, "corrupt", prepare=_rewrite_journal(b"\xff\xfe\x00x = 1\n")),
    "journal-schema": Case(STATUS, "journal schema", prepare=_flip_status),
    "journal-fifo": Case(STATUS, "not a regular file", prepare=fifo),
    "journal-fifo-run": Case(RUN, "not a regular file", prepare=fifo),
    "journal-parent-is-a-file": Case(
        (
            "run",
            "--runbook",
            "{runbook}",
            "--endpoint-url",
            "{endpoint}",
            "--journal",
            "{journal}/inside.toml",
        ),
        "a folder on the path is a file",
    ),
    "lock-path-is-a-folder": Case(RUN, "is a folder", prepare=lock_folder),
    # issue 20, item 6: a bad target is refused before anything is written
    "endpoint-garbage": Case(
        ("run", "--runbook", "{runbook}", "--endpoint-url", "garbage", "--journal", "{journal}"),
        "not an http(s) endpoint URL: 'garbage'",
    ),
    "endpoint-ftp": Case(
        ("run", "--runbook", "{runbook}", "--endpoint-url", "ftp://h/", "--journal", "{journal}"),
        "not an http(s) endpoint URL: 'ftp://h/'",
    ),
    "region-garbage": Case(
        ("run", "--runbook", "{runbook}", "--region", "mars-1", "--journal", "{journal}"),
        "not an AWS region: 'mars-1'",
    ),
    "time-scale-huge": Case(
        (*RUN, "--time-scale", "1e300"), "must be above 0 and at most 10,000,000, not '1e300'"
    ),
    "iam-policy-account": Case(
        ("iam-policy", "--runbook", "{runbook}", "--account", "abc"),
        "not an AWS account id (12 digits, or *): 'abc'",
    ),
    "unknown-profile": Case(
        (
            "run",
            "--runbook",
            "{runbook}",
            "--profile",
            "no-such-profile-xyz",
            "--journal",
            "{journal}",
        ),
        "no-such-profile-xyz",
    ),
}


@pytest.mark.parametrize("name", sorted(CASES))
def test_bad_input_is_one_line_exit_2_and_changes_nothing(
    name: str, base_run: Path, endpoint: str, tmp_path: Path
) -> None:
    case = CASES[name]
    folder = tmp_path / "state"
    shutil.copytree(base_run, folder, symlinks=True)
    journal = folder / "j.toml"
    runbook = tmp_path / "rb.toml"
    runbook.write_text(MINI_TEXT if case.runbook_text is None else case.runbook_text)
    if case.prepare:
        case.prepare(journal)
    before = snapshot(folder)
    fields = {"journal": str(journal), "runbook": str(runbook), "endpoint": endpoint}
    env = {**os.environ, "XDG_STATE_HOME": str(tmp_path / "xdg"), "AWS_CONFIG_FILE": "/dev/null"}
    proc = cli(*(a.format(**fields) for a in case.argv), env=env, timeout=30)
    assert proc.returncode == 2, (proc.returncode, proc.stdout, proc.stderr)
    lines = proc.stderr.strip().splitlines()
    assert len(lines) == 1, proc.stderr
    assert case.expect in lines[0], lines[0]
    assert "Traceback" not in proc.stderr + proc.stdout
    assert snapshot(folder) == before
    if name in LOGGED:  # an OS error: the operator gets one line, the .log gets the traceback
        assert "Traceback" in (folder / "j.log").read_text()


LOGGED = {"lock-path-is-a-folder"}


# ---- cases that need the process to be somebody else, or a real small / read-only disk ---


@pytest.fixture
def small_disk(tmp_path: Path) -> Iterator[Path]:
    where = tmp_path / "disk"
    if os.geteuid() != 0 or not mount_tmpfs(where, "2m"):
        pytest.skip("needs root to mount a small tmpfs")
    try:
        yield where
    finally:
        subprocess.run(["umount", "-l", str(where)], check=False)


def _fill(folder: Path) -> None:
    with (folder / "filler").open("wb") as fh:
        try:
            while True:
                fh.write(b"\0" * 65536)
                fh.flush()
        except OSError as exc:
            assert exc.errno == errno.ENOSPC


def test_full_disk_and_read_only_folder(small_disk: Path, base_run: Path, endpoint: str) -> None:
    folder = small_disk / "state"
    shutil.copytree(base_run, folder, symlinks=True)
    journal = folder / "j.toml"
    argv = ("tick", "gate-phase2", "team-ready", "--by", "al", "--runbook", str(MINI_RUNBOOK),
            "--endpoint-url", endpoint, "--journal", str(journal))  # fmt: skip
    _fill(small_disk)
    before = snapshot(folder)
    proc = cli(*argv)
    assert proc.returncode == 2, proc.stderr
    assert proc.stderr.count("\n") == 1 and "no space left" in proc.stderr
    assert "Traceback" not in proc.stderr and snapshot(folder) == before
    (small_disk / "filler").unlink()
    subprocess.run(["mount", "-o", "remount,ro", str(small_disk)], check=True)
    proc = cli(*argv)
    assert proc.returncode == 2, proc.stderr
    assert proc.stderr.count("\n") == 1 and "read-only file system" in proc.stderr
    assert "Traceback" not in proc.stderr and snapshot(folder) == before


def test_permission_denied(base_run: Path, endpoint: str, tmp_path: Path) -> None:
    folder = tmp_path / "state"
    shutil.copytree(base_run, folder, symlinks=True)
    (folder / "j.toml").chmod(0o444)
    folder.chmod(0o555)
    before = snapshot(folder)
    argv = [sys.executable, "-m", "engine.cli", "tick", "gate-phase2", "team-ready", "--by",
            "al", "--runbook", str(MINI_RUNBOOK), "--endpoint-url", endpoint,
            "--journal", str(folder / "j.toml")]  # fmt: skip
    if os.geteuid() == 0:  # root ignores modes unless it gives up overriding them
        if not shutil.which("setpriv"):
            pytest.skip("root without setpriv cannot be denied anything")
        argv = ["setpriv", "--bounding-set", "-dac_override,-dac_read_search", *argv]
    proc = subprocess.run(argv, capture_output=True, text=True, stdin=subprocess.DEVNULL,
                          timeout=60)  # fmt: skip
    folder.chmod(0o700)
    assert proc.returncode == 2, proc.stderr
    assert proc.stderr.count("\n") == 1 and "permission denied" in proc.stderr, proc.stderr
    assert "Traceback" not in proc.stderr and snapshot(folder) == before


def test_eof_at_the_prompt_is_declined(base_run: Path, endpoint: str, tmp_path: Path) -> None:
    """A destructive rollback asks on the terminal; end of input there is a 'no'."""
    import pty

    folder = tmp_path / "state"
    shutil.copytree(base_run, folder, symlinks=True)
    at = ("--runbook", str(MINI_RUNBOOK), "--endpoint-url", endpoint, "--journal",
          str(folder / "j.toml"))  # fmt: skip
    for argv in (("tick", "gate-phase2", "team-ready"), ("decide", "gate-phase2", "--go")):
        assert cli(*argv, "--by", "al", *at).returncode == 0  # phase 2 reached: a rollback asks
    before = snapshot(folder)
    leader, follower = pty.openpty()
    proc = subprocess.Popen(
        [sys.executable, "-m", "engine.cli", "rollback", "phase2", "--by", "al",
         "--runbook", str(MINI_RUNBOOK), "--endpoint-url", endpoint,
         "--journal", str(folder / "j.toml")],
        stdin=follower, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
    )  # fmt: skip
    os.close(follower)
    os.write(leader, b"\x04")  # Ctrl-D: end of input at the prompt
    _out, err = proc.communicate(timeout=60)
    os.close(leader)
    assert proc.returncode == 2, err
    assert err.count("\n") == 1 and "declined, nothing was changed" in err
    assert "Traceback" not in err and snapshot(folder) == before


def test_ctrl_c_during_the_first_start_leaves_no_server(tmp_path: Path) -> None:
    env, marker = held_start(tmp_path)
    proc = subprocess.Popen(
        [sys.executable, "-m", "engine.cli", "run", "--runbook", str(MINI_RUNBOOK), "--yes"],
        env=env, stdin=subprocess.DEVNULL, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
        text=True,
    )  # fmt: skip
    server = held_server_pid(marker, proc)
    proc.send_signal(signal.SIGINT)
    _out, err = proc.communicate(timeout=60)
    assert proc.returncode == 2, err
    assert err.count("\n") == 1 and "interrupted before the run began" in err, err
    assert "Traceback" not in err
    assert is_gone(server), "a moto server was left behind"
    assert not list((tmp_path / "xdg").rglob("*.toml"))  # no journal, no world record


def test_a_rollback_of_a_phase_not_reached_is_refused(base_run: Path, endpoint: str, tmp_path):
    """Issue 20, item 4: the run waits before phase 2; rolling phase 2 back runs nothing,
    journals nothing, and says why (exit 1: refused)."""
    folder = tmp_path / "state"
    shutil.copytree(base_run, folder, symlinks=True)
    before = snapshot(folder)
    proc = cli("rollback", "phase2", "--yes", "--by", "al", "--runbook", str(MINI_RUNBOOK),
               "--endpoint-url", endpoint, "--journal", str(folder / "j.toml"))  # fmt: skip
    assert proc.returncode == 1, proc.stderr
    assert proc.stderr.count("\n") == 1 and "phase phase2 has not been reached" in proc.stderr
    assert snapshot(folder) == before


def test_a_log_that_is_a_symlink_is_refused_before_anything_is_done(
    base_run: Path, endpoint: str, tmp_path: Path
) -> None:
    """Issue 20, item 9: `tick` refused over a symlinked .log did journal the tick; now the
    files are checked before acting, so the refusal is true: nothing changed."""
    folder = tmp_path / "state"
    shutil.copytree(base_run, folder, symlinks=True)
    log = folder / "j.log"
    elsewhere = tmp_path / "elsewhere.log"
    elsewhere.write_text("")
    log.unlink(missing_ok=True)
    log.symlink_to(elsewhere)
    before = snapshot(folder)
    proc = cli("tick", "gate-phase2", "team-ready", "--by", "al", "--runbook", str(MINI_RUNBOOK),
               "--endpoint-url", endpoint, "--journal", str(folder / "j.toml"))  # fmt: skip
    assert proc.returncode == 2, proc.stderr
    assert proc.stderr.count("\n") == 1 and "is a symlink; refusing to follow it" in proc.stderr
    assert snapshot(folder) == before and elsewhere.read_text() == ""
