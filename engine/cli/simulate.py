"""`runbook simulate`: the embedded world's simulated traffic. `--error-rate` sets what the
simulated functions fail (and who sees it); `--app-writes RATE` writes as the application does
beside the run, in the foreground, until `--seconds` pass or Ctrl-C / SIGTERM, then reports how
many of its writes were throttled (a provisioned world throttles: docs/performance.md)."""

from __future__ import annotations

import json
import signal
import threading
from typing import Any

from engine.cli.codes import EXIT_OK
from engine.cli.context import CliContext
from engine.cli.output import say, say_error
from engine.core.outcome import BadRequest
from engine.rehearsal.app_writer import AppWriter, app_tables, application_client
from engine.rehearsal.simulator import set_error_rate, set_errors_seen_by
from engine.runbook.model import Runbook


def cmd_simulate(ctx: CliContext) -> int:
    args = ctx.args
    if args.error_rate is None and args.app_writes is None:
        raise BadRequest("simulate: say --error-rate, --app-writes or both")
    ws = ctx.workspace()
    if not ws.is_embedded:
        raise BadRequest("simulate drives the embedded rehearsal world only")
    if args.error_rate is not None:
        engine = ws.open_read_only(connected=True)
        set_error_rate(engine.clients, args.error_rate)
        set_errors_seen_by(engine.clients, args.seen_by)
        seen = "thrown" if args.seen_by == "lambda" else "returned as 500 (API Gateway 5XX only)"
        say(f"simulated traffic now fails {args.error_rate:g}% of calls, {seen}")
    if args.app_writes is not None:
        conn = ws.target_connection()  # the recorded world, which must still run
        _write_as_the_application(
            ws.loaded.runbook, conn.endpoint_url or "", conn.region, args.app_writes, args
        )
    return EXIT_OK


def _write_as_the_application(
    runbook: Runbook, url: str, region: str, rate: float, args: Any
) -> None:
    tables = app_tables(runbook)
    if not tables:
        raise BadRequest("simulate --app-writes: the runbook's entities have no target tables")
    companies = list(runbook.embedded.get("companies", []))
    writer = AppWriter(application_client(url, region), tables, companies, rate)
    stop = threading.Event()
    previous = {s: signal.signal(s, lambda *_: stop.set()) for s in (signal.SIGINT, signal.SIGTERM)}
    names = ", ".join(t.name for t in tables)
    until = f"for {args.seconds:g} s" if args.seconds else "until Ctrl-C"
    say_error(f"writing {rate:g} application items/s into {names}, {until}")
    try:
        report = writer.run(stop, args.seconds)
    finally:
        for sig, handler in previous.items():
            signal.signal(sig, handler)
    say(json.dumps(report.as_json()) if args.json else report.line())
