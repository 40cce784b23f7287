"""The embedded rehearsal world: a moto server in its own process, on loopback.

Run as `python -m engine.rehearsal.moto_process --port N`. It outlives the console on purpose, so a
reconnecting console finds the same world.
"""

from __future__ import annotations

import argparse
import logging
import signal
import sys
import threading

from moto.server import ThreadedMotoServer

from engine.rehearsal.moto_contract import MotoChanged, check_moto
from engine.rehearsal.moto_fidelity import (
    aws_blocked_runtimes,
    aws_item_size_limit,
    aws_lambda_rules,
    aws_scan_pages,
    aws_transactions,
)


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--port", type=int, required=True)
    # runtimes AWS blocks creates on today (the runbook's [[lambda_runtimes]]), comma-separated
    parser.add_argument("--blocked-runtimes", default="")
    args = parser.parse_args()
    logging.getLogger("werkzeug").setLevel(logging.ERROR)
    try:  # never a rehearsal on a moto the fidelity patches do not fit
        check_moto()
    except MotoChanged as exc:
        sys.stderr.write(f"{exc}\n")
        sys.exit(3)
    aws_item_size_limit()
    aws_transactions()
    aws_scan_pages()
    aws_lambda_rules()
    aws_blocked_runtimes(frozenset(r for r in args.blocked_runtimes.split(",") if r))

    server = ThreadedMotoServer(ip_address="127.0.0.1", port=args.port, verbose=False)
    server.start()
    stop = threading.Event()
    signal.signal(signal.SIGTERM, lambda *_: stop.set())
    signal.signal(signal.SIGINT, lambda *_: stop.set())
    signal.signal(signal.SIGHUP, signal.SIG_IGN)  # the console's terminal may go away
    stop.wait()
    server.stop()


if __name__ == "__main__":
    main()
