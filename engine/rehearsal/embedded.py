"""Start, record and reconnect to the embedded rehearsal world."""

from __future__ import annotations

import os
import socket
import subprocess
import sys
import time
import tomllib
import uuid
from dataclasses import asdict, dataclass
from datetime import UTC, datetime
from pathlib import Path

import tomli_w

from engine.aws.target import Connection, local_connection
from engine.rehearsal.seed import WORLD_ID_PARAMETER, WorldShape, seed_world
from engine.runbook.model import Runbook
from engine.runbook.runtimes import blocked_runtimes
from engine.state.files import open_private
from engine.state.journal import atomic_write, utcnow

START_TIMEOUT_SECONDS = 30


class WorldGone(Exception):
    """The recorded world no longer runs (reboot, killed server): never resume against a new one."""


@dataclass(frozen=True)
class WorldRecord:
    url: str
    pid: int
    world_id: str
    started_at: str
    region: str
    # the server's capacity counts (a provisioned world: WorldShape.provisioned_write_units)
    capacity_counts: str = ""


def record_path_for(journal_path: Path) -> Path:
    return journal_path.with_name(journal_path.stem + ".embedded.toml")


def counts_path_for(record_path: Path) -> Path:
    return record_path.with_name(record_path.stem + ".capacity.json")


def read_record(path: Path) -> WorldRecord | None:
    try:
        return WorldRecord(**tomllib.loads(path.read_text()))
    except (OSError, tomllib.TOMLDecodeError, TypeError):
        return None


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def _pid_alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    try:  # a killed server nobody has reaped yet is a zombie: gone all the same
        return Path(f"/proc/{pid}/stat").read_text().split(")")[-1].split()[0] != "Z"
    except OSError:
        return True


def _world_id(conn: Connection) -> str | None:
    try:
        ssm = conn.client("ssm")
        return ssm.get_parameter(Name=WORLD_ID_PARAMETER)["Parameter"]["Value"]
    except Exception:
        return None


def reconnect(record_path: Path) -> tuple[Connection, WorldRecord]:
    """The recorded world, verified alive and the same; else WorldGone."""
    record = read_record(record_path)
    if record is None:
        raise WorldGone(f"no embedded world is recorded at {record_path}")
    if not _pid_alive(record.pid):
        raise WorldGone(
            f"the embedded world {record.world_id} (pid {record.pid}, {record.url}) is gone; "
            "it does not survive a reboot or a killed server"
        )
    conn = local_connection(record.url, record.region)
    found = _world_id(conn)
    if found != record.world_id:
        raise WorldGone(
            f"the embedded world {record.world_id} is gone: the server at {record.url} "
            f"reports {found or 'nothing'}"
        )
    return conn, record


def uses_step_functions(runbook: Runbook) -> bool:
    """A migrate step of the runbook copies on Step Functions: its world must execute them."""
    return any(
        step.action == "migrate_entity" and step.params.get("backend") == "step-functions"
        for step in runbook.steps
    )


def start_world(
    record_path: Path, runbook: Runbook, scale: int = 1
) -> tuple[Connection, WorldRecord]:
    """Spawn a moto server in its own session (it outlives us), seed it, record it."""
    port = _free_port()
    record_path.parent.mkdir(parents=True, exist_ok=True)
    log_path = record_path.with_name(record_path.stem + ".server.log")
    log = os.fdopen(open_private(log_path, os.O_WRONLY | os.O_APPEND | os.O_CREAT), "ab")  # robust
    sfn = ["--step-functions"] if uses_step_functions(runbook) else []
    shape = WorldShape.from_config(dict(runbook.embedded.get("world", {})))
    counts = counts_path_for(record_path) if shape.provisioned_write_units is not None else None
    if counts is not None:
        counts.unlink(missing_ok=True)  # never a former world's counts
    metered = ["--capacity-counts", str(counts)] if counts is not None else []
    proc = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "engine.rehearsal.moto_process",
            "--port",
            str(port),
            *sfn,
            *metered,
            "--blocked-runtimes",
            # AWS blocks creates by the calendar: today's date, whatever the plan's clock
            ",".join(sorted(blocked_runtimes(runbook.lambda_runtimes, datetime.now(UTC).date()))),
        ],
        stdin=subprocess.DEVNULL,
        stdout=log,
        stderr=log,
        start_new_session=True,
    )
    log.close()
    try:  # robust: a Ctrl-C (or any failure) before the record is written leaves no server
        return _seed_and_record(proc, port, record_path, runbook, scale, log_path, counts)
    except BaseException:
        proc.kill()
        proc.wait()
        raise


def _seed_and_record(
    proc: subprocess.Popen[bytes],
    port: int,
    record_path: Path,
    runbook: Runbook,
    scale: int,
    log_path: Path,
    counts: Path | None,
) -> tuple[Connection, WorldRecord]:
    url = f"http://127.0.0.1:{port}"
    region = runbook.runbook.region
    conn = local_connection(url, region)
    deadline = time.monotonic() + START_TIMEOUT_SECONDS
    while True:
        try:
            conn.client("sts").get_caller_identity()
            break
        except Exception:
            if proc.poll() is not None or time.monotonic() > deadline:
                proc.kill()
                said = _last_line(log_path)
                raise RuntimeError(
                    f"the embedded moto server did not start on {url}"
                    + (f": {said}" if said else "")
                ) from None
            time.sleep(0.1)
    world_id = f"world-{uuid.uuid4().hex[:12]}"
    shape = WorldShape.from_config(dict(runbook.embedded.get("world", {})))
    seed_world(conn, runbook, world_id, scale=scale, shape=shape)
    record = WorldRecord(
        url=url,
        pid=proc.pid,
        world_id=world_id,
        started_at=utcnow(),
        region=region,
        capacity_counts=str(counts or ""),
    )
    atomic_write(record_path, tomli_w.dumps(asdict(record)).encode())
    return conn, record


def _last_line(log_path: Path) -> str:
    """The server's last words (a moto that the fidelity patches do not fit says which)."""
    try:
        lines = log_path.read_text(errors="replace").strip().splitlines()
    except OSError:
        return ""
    return lines[-1] if lines else ""


def carry_world(from_record: Path, to_record: Path) -> None:
    """A run moved to another journal (`runbook state push`/`pull`) takes its world along:
    the world outlives consoles, and a new one would be another rehearsal."""
    if from_record.is_file():
        atomic_write(to_record, from_record.read_bytes())


def forget_world(record_path: Path) -> None:
    """The side a run left no longer names its world (so never stops it): the world runs on."""
    record_path.unlink(missing_ok=True)


def stop_world(record_path: Path) -> None:
    record = read_record(record_path)
    if record and _pid_alive(record.pid):
        os.kill(record.pid, 15)
    record_path.unlink(missing_ok=True)
