"""End-to-end tests that CI's 20 minutes cannot hold run when asked: RUNBOOK_E2E_LONG=1.
Each passed in a fresh-clone CI on 2026-12-06 before being set aside, and what it covers runs
in CI another way: the whole runs with network faults and in S3 as integration tests
(tests/integration/test_network_faults.py, test_s3_state.py, test_s3_state_move.py); the
local console's keys rehearsal through the attached one and tests/tui/test_tui_rehearsal.py;
the step-functions stop in process (tests/e2e/test_step_functions_resume.py)."""

from __future__ import annotations

import os

import pytest

long_run = pytest.mark.skipif(
    os.environ.get("RUNBOOK_E2E_LONG") != "1",
    reason="a whole-run test: RUNBOOK_E2E_LONG=1 runs it",
)
