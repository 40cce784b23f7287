"""Bad input given to the console (`runbook` with no command), in a real terminal (a pty): one
clear line, exit 2, no traceback on the terminal (it goes to the .log), nothing changed. The
same cases as the CLI's (tests/e2e/test_badinput.py), through the console's own entry."""

from __future__ import annotations

import contextlib
import fcntl
import os
import pty
import select
import shutil
import signal
import struct
import subprocess
import sys
import termios
import time
from pathlib import Path

import pytest

from tests.support.badinput import (
    fifo,
    held_server_pid,
    held_start,
    is_gone,
    lock_folder,
    mount_tmpfs,
    snapshot,
)
from tests.support.paths import MINI_RUNBOOK, REPO

# endpoint and base_run, the CLI suite's module fixtures: tests/e2e/conftest.py


class Terminal:
    """`python -m runbook_entry ARGS` on an 80x24 pty; everything it wrote there, and its code."""

    def __init__(
        self, argv: list[str], env: dict[str, str] | None = None, prefix: tuple[str, ...] = ()
    ) -> None:
        self.leader, follower = pty.openpty()
        fcntl.ioctl(follower, termios.TIOCSWINSZ, struct.pack("HHHH", 24, 80, 0, 0))
        self.proc = subprocess.Popen(
            [*prefix, sys.executable, "-m", "runbook_entry", *argv],
            stdin=follower, stdout=follower, stderr=follower, cwd=REPO,
            env=env or os.environ.copy(), start_new_session=True,
        )  # fmt: skip
        os.close(follower)
        self.out = b""

    def read_until(self, done: callable, timeout: float) -> bool:  # type: ignore[valid-type]
        """Read what the terminal shows until `done(text)` or the child ended (or timeout)."""
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if done(self.text):
                return True
            ready, _, _ = select.select([self.leader], [], [], 0.1)
            if ready:
                try:
                    data = os.read(self.leader, 65536)
                except OSError:  # EIO: every writer of the pty is gone
                    return False
                if not data:
                    return False
                self.out += data
            elif self.proc.poll() is not None:
                return False
        return False

    def finish(self, timeout: float = 30) -> tuple[int, str]:
        deadline = time.monotonic() + timeout
        self.read_until(lambda _: False, timeout)  # until the terminal closes
        try:
            self.proc.wait(timeout=max(0.0, deadline - time.monotonic()))
        except subprocess.TimeoutExpired:  # it opened the console instead of refusing
            self.proc.kill()
            self.proc.wait()
            os.close(self.leader)
            pytest.fail(f"the console did not exit: {self.text[-500:]!r}")
        os.close(self.leader)
        return self.proc.wait(), self.text

    @property
    def text(self) -> str:
        return self.out.decode(errors="replace")


def _lines(text: str) -> list[str]:
    return [line for line in text.replace("\r", "").splitlines() if line.strip()]


def _parent_is_a_file(journal: Path) -> str:
    return str(journal / "inside.toml")


def _fifo_journal(journal: Path) -> str:
    fifo(journal)
    return str(journal)


def _lock_is_a_folder(journal: Path) -> str:
    lock_folder(journal)
    return str(journal)


def _truncated(journal: Path) -> str:
    raw = journal.read_bytes()
    journal.write_bytes(raw[: len(raw) // 2])
    return str(journal)


# name -> (how the journal is broken, returning the --journal to give; extra args; a phrase)
CASES = {
    "journal-parent-is-a-file": (_parent_is_a_file, [], "a folder on the path is a file"),
    "journal-fifo": (_fifo_journal, [], "not a regular file"),
    "lock-path-is-a-folder": (_lock_is_a_folder, [], "is a folder"),
    "journal-truncated": (_truncated, [], "truncated"),
    "unknown-profile": (str, ["--profile", "no-such-profile-xyz"], "no-such-profile-xyz"),
}
LOGGED = {"lock-path-is-a-folder"}  # an OS error: the traceback is in the .log


@pytest.mark.parametrize("name", sorted(CASES))
def test_console_bad_input_is_one_line_exit_2(
    name: str,
    base_run: Path,
    endpoint: str,
    tmp_path: Path,
) -> None:
    breaks, extra, expect = CASES[name]
    folder = tmp_path / "state"
    shutil.copytree(base_run, folder, symlinks=True)
    journal_arg = breaks(folder / "j.toml")
    before = snapshot(folder)
    target = [] if "--profile" in extra else ["--endpoint-url", endpoint]
    env = {**os.environ, "XDG_STATE_HOME": str(tmp_path / "xdg"), "AWS_CONFIG_FILE": "/dev/null"}
    argv = ["--runbook", str(MINI_RUNBOOK), *target, *extra, "--journal", journal_arg]
    code, shown = Terminal(argv, env).finish()
    assert code == 2, (code, shown)
    lines = _lines(shown)
    assert len(lines) == 1 and expect in lines[0], shown
    assert "Traceback" not in shown
    assert snapshot(folder) == before
    if name in LOGGED:
        assert "Traceback" in (folder / "j.log").read_text()


def _denied() -> tuple[str, ...]:
    """As root, give up overriding file modes (root ignores them otherwise)."""
    if os.geteuid() != 0:
        return ()
    if not shutil.which("setpriv"):
        pytest.skip("root without setpriv cannot be denied anything")
    return ("setpriv", "--bounding-set", "-dac_override,-dac_read_search")


def test_console_permission_denied(base_run: Path, endpoint: str, tmp_path: Path) -> None:
    folder = tmp_path / "state"
    shutil.copytree(base_run, folder, symlinks=True)
    (folder / "j.toml").chmod(0o444)
    folder.chmod(0o555)
    before = snapshot(folder)
    argv = ["--runbook", str(MINI_RUNBOOK), "--endpoint-url", endpoint,
            "--journal", str(folder / "j.toml")]  # fmt: skip
    try:
        code, shown = Terminal(argv, prefix=_denied()).finish()
    finally:
        folder.chmod(0o700)
    assert code == 2, shown
    lines = _lines(shown)
    assert len(lines) == 1 and "permission denied" in lines[0], shown
    assert "Traceback" not in shown and snapshot(folder) == before


def test_console_read_only_folder_and_full_disk(
    base_run: Path,
    endpoint: str,
    tmp_path: Path,
) -> None:
    where = tmp_path / "disk"
    if os.geteuid() != 0 or not mount_tmpfs(where, "2m"):
        pytest.skip("needs root to mount a small tmpfs")
    try:
        folder = where / "state"
        shutil.copytree(base_run, folder, symlinks=True)
        argv = ["--runbook", str(MINI_RUNBOOK), "--endpoint-url", endpoint,
                "--journal", str(folder / "j.toml")]  # fmt: skip
        with (where / "filler").open("wb") as fh:
            try:
                while True:
                    fh.write(b"\0" * 65536)
                    fh.flush()
            except OSError:
                pass
        before = snapshot(folder)
        code, shown = Terminal(argv).finish()
        assert code == 2, shown
        lines = _lines(shown)
        assert len(lines) == 1 and "no space left" in lines[0], shown
        assert "Traceback" not in shown and snapshot(folder) == before
        (where / "filler").unlink()
        subprocess.run(["mount", "-o", "remount,ro", str(where)], check=True)
        code, shown = Terminal(argv).finish()
        assert code == 2, shown
        lines = _lines(shown)
        assert len(lines) == 1 and "read-only file system" in lines[0], shown
        assert "Traceback" not in shown and snapshot(folder) == before
    finally:
        subprocess.run(["umount", "-l", str(where)], check=False)


def test_console_ctrl_c_during_the_first_start_leaves_no_server(tmp_path: Path) -> None:
    """The console starts the embedded world itself; Ctrl-C while it starts: one line, exit 2,
    no moto server left, no journal."""
    env, marker = held_start(tmp_path)
    term = Terminal(["--runbook", str(MINI_RUNBOOK)], env)
    server = held_server_pid(marker, term.proc)
    os.killpg(term.proc.pid, signal.SIGINT)  # Ctrl-C reaches the terminal's process group
    code, shown = term.finish()
    assert code == 2, shown
    lines = _lines(shown)
    assert "Starting the embedded" in lines[0], shown
    assert len(lines) == 2 and "interrupted before the run began" in lines[1], shown
    assert "Traceback" not in shown
    assert is_gone(server), "a moto server was left behind"
    assert not list((tmp_path / "xdg").rglob("*.toml"))


def test_console_eof_at_the_world_gone_prompt_is_declined(tmp_path: Path) -> None:
    """The embedded world of a journal is gone: the console asks whether to start a fresh one;
    end of input there is a 'no' (one line, exit 2, the journal and its record untouched)."""
    from engine.rehearsal.embedded import read_record, record_path_for

    state = tmp_path / "xdg"
    env = {**os.environ, "XDG_STATE_HOME": str(state)}
    folder = tmp_path / "state"
    folder.mkdir()
    journal = folder / "j.toml"
    made = subprocess.run(
        [sys.executable, "-m", "engine.cli", "run", "--runbook", str(MINI_RUNBOOK), "--journal",
         str(journal), "--yes", "--time-scale", "1000"],
        capture_output=True, text=True, env=env, stdin=subprocess.DEVNULL, timeout=120,
    )  # fmt: skip
    assert made.returncode == 3, made.stderr
    record = read_record(record_path_for(journal))
    assert record is not None
    os.kill(record.pid, signal.SIGKILL)  # the world is gone (as after a reboot)
    deadline = time.monotonic() + 10
    while not is_gone(record.pid) and time.monotonic() < deadline:
        time.sleep(0.02)
    before = snapshot(folder)
    term = Terminal(["--runbook", str(MINI_RUNBOOK), "--journal", str(journal)], env)
    assert term.read_until(lambda text: "[y/N]" in text, 30), term.text
    os.write(term.leader, b"\x04")  # Ctrl-D: end of input at the prompt
    code, shown = term.finish()
    assert code == 2, shown
    answer = _lines(shown.split("[y/N]", 1)[1])
    assert len(answer) == 1 and "declined" in answer[0], shown
    assert "Traceback" not in shown
    assert snapshot(folder) == before


@pytest.mark.parametrize("follower", ["read-only", "attached"])
def test_a_following_console_leaves_quietly_when_its_terminal_hangs_up(
    base_run: Path, endpoint: str, tmp_path: Path, follower: str
) -> None:
    """Issue 20, item 13: a console that does not drive (read-only beside another driver, or
    attached to a detached engine) loses its terminal (SSH dropped: the terminal is gone, then
    SIGHUP). It leaves like the driving console does: no Textual traceback in the .log."""
    from engine.control.client import EngineGone, RemoteEngine
    from engine.control.paths import socket_path
    from engine.state.lock import JournalLock, is_locked

    folder = tmp_path / "state"
    shutil.copytree(base_run, folder, symlinks=True)
    journal = folder / "j.toml"
    at = ["--runbook", str(MINI_RUNBOOK), "--endpoint-url", endpoint, "--journal", str(journal)]
    driver = JournalLock(journal, "run")
    if follower == "read-only":
        driver.acquire()  # somebody else drives
        argv, shown = at, "READ-ONLY"
    else:
        started = subprocess.run([sys.executable, "-m", "engine.cli", "run", "--detach", *at],
                                 cwd=REPO, capture_output=True, text=True, timeout=60)  # fmt: skip
        assert started.returncode == 0, started.stderr
        argv, shown = ["attach", *at], "ATTACHED"
    log_before = (folder / "j.log").read_text()
    try:
        term = Terminal(argv)
        assert term.read_until(lambda text: shown in text, 60), term.text[-500:]
        os.close(term.leader)  # the terminal is gone: every write to it fails
        term.proc.send_signal(signal.SIGHUP)
        code = term.proc.wait(timeout=30)
    finally:
        if follower == "read-only":
            driver.release()
        else:
            with contextlib.suppress(EngineGone):  # an idle engine exits before it answers
                RemoteEngine(socket_path(journal)).stop("test")
            deadline = time.monotonic() + 30
            while is_locked(journal) is not None and time.monotonic() < deadline:
                time.sleep(0.05)  # the engine lets go of the lock as it exits
    new = (folder / "j.log").read_text()[len(log_before) :]
    assert "Traceback" not in new and "OSError" not in new, new[-2000:]
    assert code in (0, 129, 130), code
