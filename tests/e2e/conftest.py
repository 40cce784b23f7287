"""Fixtures of the bad-input tiers (CLI and console): one seeded moto server and one run waiting at
its gate, per module."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.support.badinput import (
    cli,
)
from tests.support.paths import MINI_RUNBOOK
from tests.support.world import fresh_moto_server


@pytest.fixture(scope="module")
def endpoint() -> Iterator[str]:
    from engine.aws.target import local_connection
    from engine.plan.loader import load_runbook
    from engine.rehearsal.seed import seed_world

    with fresh_moto_server() as url:
        seed_world(local_connection(url, "us-east-1"), load_runbook(MINI_RUNBOOK).runbook, "w-bad")
        yield url


@pytest.fixture(scope="module")
def base_run(endpoint: str, tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A run waiting at gate-phase2 (backups done), made once for every case."""
    folder = tmp_path_factory.mktemp("base") / "state"
    folder.mkdir()
    journal = folder / "j.toml"
    proc = cli(
        "run", "--runbook", str(MINI_RUNBOOK), "--endpoint-url", endpoint,
        "--journal", str(journal), "--yes", "--time-scale", "1000",
    )  # fmt: skip
    assert proc.returncode == 3, proc.stderr
    return folder
