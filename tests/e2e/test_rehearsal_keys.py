"""A whole rehearsal through the README's console command, with keys only.

`.venv/bin/runbook` with no flags, in a fresh workspace (its own XDG_STATE_HOME), in tmux at
80x24; a scripted operator reads the screen and answers with keys (tmux send-keys): r runs,
g opens a gate, space ticks its manual items, y decides GO, a acknowledges a manual step, the
phase id confirms a destructive step. It goes through the three days to the end of the
clean-up and the sign-offs; then `runbook status --json` must say DONE, every step done.

The fast test presses `+` (a key) up the rehearsal clock's ladder first: CI cannot afford the
waits of the default scale. The same rehearsal at the default scale, no `+`, is opt-in:
RUNBOOK_REHEARSAL_FULL=1 (the done-when: under 15 minutes of wall clock).

No sleeps as waits: every wait polls the screen (or the journal) for a condition, with a
deadline. REHEARSAL_TRACE=1 (with -s) prints each key with the status line it answered.
"""

from __future__ import annotations

import json
import os
import re
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import pytest

from engine.plan.loader import default_runbook_path, load_runbook
from engine.rehearsal.embedded import record_path_for, stop_world
from engine.runbook.model import Runbook
from tests.support.long_runs import long_run
from tests.support.terminal import Terminal

pytestmark = pytest.mark.skipif(shutil.which("tmux") is None, reason="tmux is not installed")

RUNBOOK_BIN = Path(sys.executable).with_name("runbook")  # the venv's console script
WALL_LIMIT_SECONDS = 15 * 60  # the done-when
FASTEST = "x1000000"  # the top rung of the bundled runbook's ladder
SETTLE_SECONDS = 0.3  # a screen unchanged this long is what the operator acts on
STALE_SECONDS = 5.0  # a status line unchanged this long after a key: look at it afresh
# a settled question's keys line: its reason may wrap mid-phrase on an 80-column screen
SETTLED = "enter or esc closes"
RECHECK_SECONDS = 2.0  # a soak not over yet: `e` measures it again this often


def status_line(screen: str) -> str:
    """The console's status line: the line above the footer (the last non-empty line)."""
    lines = [line for line in screen.splitlines() if line.strip()]
    return lines[-2].strip() if len(lines) >= 2 else ""


class Operator:
    """Reads the screen, presses the key an operator would; remembers which gates it ticked
    (a second space on a ticked item would untick it)."""

    def __init__(self, term: Terminal, runbook: Runbook, run_log: Path) -> None:
        self.term = term
        self.runbook = runbook
        self.run_log = run_log
        self.ticked: set[str] = set()
        self.keys_sent = 0
        # the status line the last key was pressed on: a screen may lag behind the run for a
        # moment, and a key pressed again on it would act twice (a second `a`, a second `r`)
        self.acted_on: tuple[str, float] = ("", 0.0)
        self.measured_at = 0.0  # when `e` last re-measured a gate's automatic items

    def log_tail(self, lines: int = 30) -> str:
        if not self.run_log.exists():
            return f"(no run log at {self.run_log})"
        return "\n".join(self.run_log.read_text().splitlines()[-lines:])

    def press(self, *keys: str, literal: bool = False) -> None:
        self.keys_sent += len(keys) if not literal else 1
        if os.environ.get("REHEARSAL_TRACE"):
            print(f"{time.monotonic():.2f} KEYS {keys} | {status_line(self.term.screen())}")
        self.term.keys(*keys, literal=literal)

    def press_and_see(self, key: str, changed, seconds: float, what: str) -> str:
        self.press(key)
        return self.term.wait(changed, seconds, what)

    def step(self, screen: str) -> bool:
        """One decision from what the screen shows; False once the run is DONE."""
        if SETTLED in screen:  # a question settled meanwhile: close it
            self.press("Escape")
            self.term.seen(lambda s: SETTLED not in s, 10)
            return True
        if "and press enter to confirm" in screen:  # a destructive step: type its phase id
            token = re.search(r"Type (\S+) and press enter to confirm", screen).group(1)
            # the console may open this question itself (the run stopped short of the step)
            # just as a key meant for the main screen lands in it: clear the box first
            self.press("C-a", "C-k")
            self.press(token, literal=True)
            self.press("Enter")
            # keys typed as the box opens, before its input has the focus, are lost: the
            # console says "type phase5 exactly", and the operator types it again
            self.term.seen(
                lambda s: "exactly" in s or ("to confirm" not in s and "enter confirm" not in s),
                10,
            )
            self.term.seen(lambda s: "exactly" not in s, 10)  # the warning goes
            return True
        if "enter submit · esc cancel" in screen:  # an acknowledgement: a note, then enter
            self.press("C-a", "C-k")
            self.press("rehearsed", literal=True)
            self.press("Enter")
            self.term.seen(lambda s: "enter submit" not in s, 5)
            return True
        if screen.lstrip().startswith("GATE "):  # the gate screen (the main one: the top bar)
            return self.gate(screen)
        status = status_line(screen)
        # an attached console whose detached engine finished and left shows the run read-only
        if status.removeprefix("READ-ONLY · ").startswith("DONE"):
            return False
        if status.startswith("READ-ONLY"):  # the engine left before the end: say why, now
            raise AssertionError(f"the detached engine left mid-run:\n{screen}\n{self.log_tail()}")
        acted, at = self.acted_on
        if status == acted and time.monotonic() - at < STALE_SECONDS:
            time.sleep(0.1)  # a poll interval: the screen has not caught up with the key yet
            return True
        # the run may have just stopped short of a destructive step, and the console opens
        # its question on the next refresh: act only on a screen that stays put a moment
        time.sleep(SETTLE_SECONDS)  # a poll interval
        again = self.term.screen()
        if status_line(again) != status or "to confirm" in again or SETTLED in again:
            return True
        self.acted_on = (status, time.monotonic())
        if status.startswith("WAITING at gate"):
            self.press_and_see(
                "g", lambda s: s.lstrip().startswith("GATE ") or SETTLED in s, 20, "the gate"
            )
        elif status.startswith("WAITING at step"):
            # a question settled meanwhile may take the key (the next step closes it)
            self.press_and_see(
                "a", lambda s: "enter submit" in s or SETTLED in s, 20, "the ack prompt"
            )
        elif status.startswith(("READY", "INTERRUPTED")):
            self.press_and_see(
                "r",
                lambda s: (
                    "to confirm" in s
                    or SETTLED in s
                    or not status_line(s).startswith(("READY", "INTERRUPTED"))
                ),
                30,
                "the run to start",
            )
        elif status.startswith("FAILED"):
            raise AssertionError(f"a step failed in the rehearsal:\n{screen}")
        else:  # RUNNING: a step works; look again
            self.acted_on = ("", 0.0)
            time.sleep(0.1)  # a poll interval
        return True

    def stand_in(self, item) -> None:
        """Tick as the rehearsal's second identity: A, then its name in the prompt."""
        self.press_and_see("A", lambda s: "enter submit" in s, 10, "the stand-in prompt")
        name = f"stand-in-{item.id}"
        for _ in range(5):  # keys typed as the box opens, before its input has the focus, are
            self.press("C-a", "C-k")  # lost: type again until the name shows
            self.press(name, literal=True)
            if self.term.seen(lambda s: name in s, 3):
                break
        self.press("Enter")
        self.term.wait(lambda s: f"[x] manual {item.text}" in s, 10, "the stand-in's tick")

    def gate(self, screen: str) -> bool:
        # the title ends where a notification may cover the rest of its line
        title = re.search(r"GATE (.+?)(?:\s{2,}|▌|$)", screen, re.M).group(1).strip()
        gates = [g for g in self.runbook.gates if g.title.startswith(title)]  # cut: its start
        assert len(gates) == 1, f"no one gate titled {title!r}...:\n{screen}"
        gate = gates[0]
        if "all items met" in screen:
            self.press_and_see("y", lambda s: not s.lstrip().startswith("GATE "), 30, "GO")
            return True
        if "evaluating automatic checks" in screen or "[…]" in screen:
            time.sleep(0.1)  # a poll interval: the engine measures
            return True
        if gate.id not in self.ticked:
            self.ticked.add(gate.id)
            # a gate that wants N distinct approvers: the rehearsal's one operator ticks the
            # first items as itself and the last N-1 as stand-ins (A, a name: not verified)
            manual = [i.id for i in gate.items if i.kind == "manual"]
            stand_ins = set(manual[len(manual) - max(0, (gate.min_approvals or 1) - 1) :])
            for index, item in enumerate(gate.items):  # down the list, as an operator does
                here = f"│ {item.id}: "  # the evidence pane shows the highlighted item
                self.term.wait(lambda s, h=here: h in s, 10, f"{item.id} highlighted")
                if item.kind == "manual" and f"[x] manual {item.text}" not in self.term.screen():
                    if item.id in stand_ins:
                        self.stand_in(item)
                    else:
                        self.press_and_see(
                            "space", lambda s, i=item: f"[x] manual {i.text}" in s, 10, "the tick"
                        )
                if index + 1 < len(gate.items):
                    self.press("Down")
            return True
        # an automatic item is not met yet (a soak): measure again, now and then
        if time.monotonic() - self.measured_at < RECHECK_SECONDS:
            time.sleep(0.1)  # a poll interval
            return True
        self.measured_at = time.monotonic()
        self.press("e")  # the verdict line says "evaluating…", then what it measured
        return True


def rehearse(
    tmp_path: Path, faster: int, limit_seconds: float, attached: bool = False
) -> tuple[float, int]:
    """The whole rehearsal in tmux; (wall seconds from the command to DONE, keys pressed).
    `attached`: the run is started detached (`runbook run --detach`), and the console the
    operator drives is attached to it: every key is a command over its control socket."""
    # an attached console's control socket lives beside the journal: a short home for it
    # (a socket path holds at most 107 bytes)
    state = Path(tempfile.mkdtemp(prefix="rk", dir="/tmp")) if attached else tmp_path / "state"
    journal = state / "runbook-console" / "company-scoped-migration--embedded.toml"
    env = {k: v for k, v in os.environ.items() if k not in ("NO_COLOR", "TEXTUAL_THEME")}
    env["XDG_STATE_HOME"] = str(state)
    term = Terminal("rehearsal")
    runbook = load_runbook(default_runbook_path()).runbook
    operator = Operator(term, runbook, journal.with_suffix(".log"))
    began = time.monotonic()
    if attached:
        detached = subprocess.run(
            [str(RUNBOOK_BIN), "run", "--detach"], capture_output=True, text=True, env=env,
            cwd=tmp_path, timeout=300,
        )  # fmt: skip
        assert detached.returncode == 0, detached.stderr
    term.start(f"cd {tmp_path} && {RUNBOOK_BIN}; echo EXITED=$?; sleep 600", env)
    try:
        shown = term.wait(lambda s: "REHEARSAL x" in s, 120, "the console")
        assert "REHEARSAL x1200" in shown  # the default scale of a new run: ~10 min of waits
        assert ("ATTACHED" in shown) is attached, shown
        for _ in range(faster):
            before = re.search(r"REHEARSAL (x\d+)", term.screen()).group(1)
            operator.press_and_see(
                "+", lambda s, b=before: f"REHEARSAL {b} " not in s, 10, "the clock to change"
            )
        deadline = began + limit_seconds
        screen = term.screen()
        while operator.step(screen):
            assert time.monotonic() < deadline, f"not done in {limit_seconds} s:\n{screen}"
            screen = term.screen()
        took = time.monotonic() - began
        operator.press("q")
        term.wait(lambda s: "EXITED=" in s, 30, "the console to quit")
        assert "EXITED=0" in term.screen()
    finally:
        term.close()
        if attached:  # the detached engine outlives its console: it stops here
            subprocess.run([str(RUNBOOK_BIN), "stop"], env=env, cwd=tmp_path, timeout=120)
        stop_world(record_path_for(journal))

    out = subprocess.run(
        [str(RUNBOOK_BIN), "status", "--json"],
        capture_output=True,
        text=True,
        env=env,
        cwd=tmp_path,
    )
    assert out.returncode == 0, out.stderr
    status = json.loads(out.stdout)
    assert status["state"] == "DONE", status["state"]
    assert all(s["status"] == "done" for s in status["steps"]), [
        (s["id"], s["status"]) for s in status["steps"] if s["status"] != "done"
    ]
    assert all(g["decision"] == "GO" for g in status["gates"])
    if attached:
        shutil.rmtree(state, ignore_errors=True)
    return took, operator.keys_sent


@long_run  # CI's 20 minutes: the attached rehearsal below presses the same keys, and
@pytest.mark.slow  # tests/tui/test_tui_rehearsal.py drives this local console whole
def test_a_rehearsal_with_keys_only_at_the_fastest_clock(tmp_path: Path) -> None:
    """`+` four times (x1200 -> x1000000), then the whole run with keys."""
    took, keys = rehearse(tmp_path, faster=4, limit_seconds=WALL_LIMIT_SECONDS)
    print(f"rehearsal at {FASTEST}: {took:.0f} s of wall clock, {keys} keys")
    assert took < WALL_LIMIT_SECONDS


@pytest.mark.slow
@pytest.mark.skipif(
    os.environ.get("RUNBOOK_REHEARSAL_FULL") != "1",
    reason="the default-scale rehearsal takes ~12 min: RUNBOOK_REHEARSAL_FULL=1 runs it",
)
def test_a_rehearsal_with_keys_only_at_the_default_clock(tmp_path: Path) -> None:
    """The done-when as written: the README's command, the default clock, keys only, under
    15 minutes of wall clock."""
    took, keys = rehearse(tmp_path, faster=0, limit_seconds=WALL_LIMIT_SECONDS)
    print(f"rehearsal at x1200: {took:.0f} s of wall clock, {keys} keys")
    assert took < WALL_LIMIT_SECONDS


@pytest.mark.slow
def test_a_rehearsal_with_keys_only_through_an_attached_console(tmp_path: Path) -> None:
    """The same rehearsal, the run detached from the start: the operator's console is
    attached to it, and every key (the clock, run, ticks, GO, acks, the typed confirmations)
    goes over the control socket."""
    took, keys = rehearse(tmp_path, faster=4, limit_seconds=WALL_LIMIT_SECONDS, attached=True)
    print(f"attached rehearsal at {FASTEST}: {took:.0f} s of wall clock, {keys} keys")
    assert took < WALL_LIMIT_SECONDS
