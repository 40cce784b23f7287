"""The embedded rehearsal world: a moto server in its own process, on loopback.

Run as `python -m engine.rehearsal.moto_process --port N`. It outlives the console on purpose, so a
reconnecting console finds the same world. With `--step-functions` it executes Step Functions
state machines (moto's `stepfunctions.execute_state_machine`): the step-functions backend of
migrate_entity. With `--capacity-counts FILE` it throttles writes to PROVISIONED tables at their
write capacity (engine/rehearsal/moto_capacity.py) and keeps the counts in FILE.
"""

from __future__ import annotations

import argparse
import logging
import os
import signal
import sys
import threading
from pathlib import Path

from moto.core.config import default_user_config
from moto.server import ThreadedMotoServer

from engine.rehearsal.moto_capacity import aws_provisioned_capacity
from engine.rehearsal.moto_contract import MotoChanged, check_moto
from engine.rehearsal.moto_fidelity import (
    aws_blocked_runtimes,
    aws_item_size_limit,
    aws_lambda_rules,
    aws_scan_pages,
    aws_transactions,
)
from engine.rehearsal.moto_fidelity_sfn import (
    aws_export_layout,
    aws_map_run_children,
    aws_map_runs,
    aws_sdk_bodies,
)
from engine.rehearsal.moto_lambda import python_lambdas_in_process
from engine.rehearsal.provisioned import CountsFile, ProvisionedCapacity

# what a function's boto3 finds in Lambda's environment, for this process's handlers
LAMBDA_ENVIRONMENT = {
    "AWS_ACCESS_KEY_ID": "testing",
    "AWS_SECRET_ACCESS_KEY": "testing",
    "AWS_DEFAULT_REGION": "us-east-1",
}


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--port", type=int, required=True)
    # execute Step Functions state machines (a runbook with a step-functions copy): moto's
    # interpreter, its fidelity patches and their contract cost 2.5 s of start, only then
    parser.add_argument("--step-functions", action="store_true")
    # runtimes AWS blocks creates on today (the runbook's [[lambda_runtimes]]), comma-separated
    parser.add_argument("--blocked-runtimes", default="")
    # throttle writes to PROVISIONED tables at their WCU (a world shape's
    # `provisioned_write_units`), counting them into this JSON file
    parser.add_argument("--capacity-counts", default="")
    args = parser.parse_args()
    logging.getLogger("werkzeug").setLevel(logging.ERROR)
    # moto's Step Functions tasks call the moto server of this process: at MOTO_PORT
    os.environ["MOTO_PORT"] = str(args.port)
    logging.getLogger("moto.stepfunctions").setLevel(logging.CRITICAL)  # a stack per state
    try:  # never a rehearsal on a moto the fidelity patches do not fit
        check_moto(step_functions=args.step_functions)
    except MotoChanged as exc:
        sys.stderr.write(f"{exc}\n")
        sys.exit(3)
    aws_item_size_limit()
    aws_transactions()
    aws_scan_pages()
    aws_export_layout()
    aws_lambda_rules()
    if args.step_functions:
        aws_sdk_bodies()
        aws_map_runs()
        aws_map_run_children()
        # the bridge function runs here, its boto3 calls to this very server (never AWS)
        os.environ["AWS_ENDPOINT_URL"] = f"http://127.0.0.1:{args.port}"
        for name, value in LAMBDA_ENVIRONMENT.items():
            os.environ.setdefault(name, value)
        python_lambdas_in_process()
        # the step-functions backend of migrate_entity runs its state machine here (moto's
        # `/moto-api/config` setting, set before the server starts)
        default_user_config["stepfunctions"]["execute_state_machine"] = True
    aws_blocked_runtimes(frozenset(r for r in args.blocked_runtimes.split(",") if r))
    counts = None
    if args.capacity_counts:
        model = ProvisionedCapacity()
        aws_provisioned_capacity(model)
        counts = CountsFile(model, Path(args.capacity_counts))
        counts.start()

    server = ThreadedMotoServer(ip_address="127.0.0.1", port=args.port, verbose=False)
    server.start()
    stop = threading.Event()
    signal.signal(signal.SIGTERM, lambda *_: stop.set())
    signal.signal(signal.SIGINT, lambda *_: stop.set())
    signal.signal(signal.SIGHUP, signal.SIG_IGN)  # the console's terminal may go away
    stop.wait()
    server.stop()
    if counts is not None:
        counts.stop()


if __name__ == "__main__":
    main()
