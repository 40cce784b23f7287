"""Where the suite's files are, whatever folder a test module sits in."""

from __future__ import annotations

from pathlib import Path

REPO = Path(__file__).resolve().parents[2]
TESTS = REPO / "tests"
DATA = TESTS / "data"

MINI_RUNBOOK = DATA / "mini-runbook.toml"
DETACH_RUNBOOK = DATA / "detach-runbook.toml"
CONSOLE_SAFETY_RUNBOOK = DATA / "console-safety-runbook.toml"
CAPACITY_RUNBOOK = DATA / "capacity-runbook.toml"
