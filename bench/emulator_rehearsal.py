"""The data phase against a stock moto server, as a user pointing `--endpoint-url` at their own
emulator would run it (issue 17): no fidelity patches on that server, 10,000 legacy expenses,
the whole CLI answering gates and manual steps headless. It prints each data step's wall time
and every read timeout seen in the run's log; run it beside a load (the test suite) to rehearse
a busy machine.

    .venv/bin/python -m bench.emulator_rehearsal [--expenses 10000] [--write-path put]

Progress goes to stderr, the figures to stdout. It stops its moto server on the way out.
"""

from __future__ import annotations

import argparse
import json
import os
import re
import socket
import subprocess
import sys
import tempfile
import time
import tomllib
import urllib.request
from pathlib import Path
from typing import Any

import tomli_w

from engine.aws.target import local_connection
from engine.plan.loader import default_runbook_path, load_runbook
from engine.rehearsal.seed import seed_world

DATA_STEPS = ("migrate-expenses", "migrate-projects", "migrate-contractors", "migrate-works",
              "validate-migration")  # fmt: skip
LEGACY_EXPENSES_PER_SCALE = 7  # the plan's count, multiplied by seed_world's scale


def stock_moto() -> tuple[subprocess.Popen[bytes], str]:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    server = Path(sys.executable).with_name("moto_server")
    proc = subprocess.Popen(
        [str(server), "-H", "127.0.0.1", "-p", str(port)],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    url = f"http://127.0.0.1:{port}"
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        try:
            urllib.request.urlopen(f"{url}/moto-api/", timeout=2)
            return proc, url
        except OSError:
            time.sleep(0.2)
    proc.kill()
    raise RuntimeError("the stock moto server did not start")


def runbook_copy(folder: Path, write_path: str | None) -> Path:
    data = tomllib.loads(default_runbook_path().read_text())
    if write_path:
        for step in data["steps"]:
            if step["action"] == "migrate_entity":
                step["params"]["write_path"] = write_path
    path = folder / "runbook.toml"
    path.write_text(tomli_w.dumps(data))
    return path


def cli(common: list[str], *argv: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "engine.cli", *argv, *common],
        capture_output=True, text=True, stdin=subprocess.DEVNULL,
    )  # fmt: skip


def answer(common: list[str], snapshot: dict[str, Any]) -> None:
    """What an operator does where the run waits: tick, then GO; or acknowledge."""
    waiting = snapshot["waiting"]
    if waiting["kind"] == "gate":
        gate = next(g for g in snapshot["gates"] if g["id"] == waiting["id"])
        for item in gate["items"]:
            if item["kind"] == "manual" and not item["ok"]:
                cli(common, "tick", gate["id"], item["id"], "--by", "bench")
        cli(common, "decide", gate["id"], "--go", "--by", "bench")
    else:
        cli(common, "ack", waiting["id"], "--by", "bench")


def rehearse(common: list[str]) -> dict[str, Any]:
    while True:
        done = cli(common, "run", "--yes", "--until", "validate-migration")
        sys.stderr.write(done.stdout[-400:] + done.stderr[-400:])
        if done.returncode == 0:
            break
        if done.returncode != 3:
            raise RuntimeError(f"run exited {done.returncode}: {done.stderr.strip()[-600:]}")
        answer(common, json.loads(cli(common, "status", "--json").stdout))
    return json.loads(cli(common, "status", "--json").stdout)


def main() -> int:
    parser = argparse.ArgumentParser()
    parser.add_argument("--expenses", type=int, default=10_000)
    parser.add_argument("--write-path", choices=("put", "transact"), default=None)
    args = parser.parse_args()
    rb = load_runbook(default_runbook_path()).runbook
    scale = max(1, round(args.expenses / LEGACY_EXPENSES_PER_SCALE))
    proc, url = stock_moto()
    try:
        with tempfile.TemporaryDirectory() as tmp:
            folder = Path(tmp)
            os.environ["XDG_STATE_HOME"] = str(folder / "state")
            started = time.monotonic()
            counts = seed_world(local_connection(url, rb.runbook.region), rb, "stock", scale)
            sys.stderr.write(f"seeded {counts} in {time.monotonic() - started:.0f} s\n")
            journal = folder / "journal.toml"
            runbook = runbook_copy(folder, args.write_path)
            common = ["--runbook", str(runbook), "--journal", str(journal),
                      "--endpoint-url", url, "--time-scale", "100000"]  # fmt: skip
            started = time.monotonic()
            snapshot = rehearse(common)
            elapsed = time.monotonic() - started
            log = journal.with_name(journal.stem + ".log").read_text(errors="replace")
    finally:
        proc.kill()
        proc.wait()
    timeouts = re.findall(r".*(?:ReadTimeout|Read timeout).*", log)
    slow_told = [line for line in log.splitlines() if 'write_path = "put"' in line]
    print(f"stock moto, {args.expenses:,} expenses, write path {args.write_path or 'runbook'}")
    print(f"run to validate-migration: {elapsed:,.0f} s; read timeouts in the log: {len(timeouts)}")
    for step in snapshot["steps"]:
        if step["id"] in DATA_STEPS:
            print(f"  {step['id']:<22} {step['status']:<8} {step.get('summary', {})}"[:200])
    print(f"slow-transaction advice logged: {len(slow_told)}")
    for line in timeouts[:5] + slow_told[:1]:
        print(f"  {line[:200]}")
    return 0 if not timeouts else 1


if __name__ == "__main__":
    sys.exit(main())
