"""Issue 19, item 9: the embedded moto server (its own process) refuses CreateFunction on a
runtime the runbook's `[[lambda_runtimes]]` says AWS blocks creates on, as AWS does, while the
world's legacy function on it (made before the block) is there."""

from __future__ import annotations

from pathlib import Path

import pytest

from engine.rehearsal.embedded import start_world, stop_world
from engine.rehearsal.legacy_shape import legacy_function_of
from engine.rehearsal.seed_lambda import handler_zip


def test_the_embedded_server_refuses_a_blocked_runtime(tmp_path: Path, runbook) -> None:
    record = tmp_path / "world.embedded.toml"
    conn, _ = start_world(record, runbook)
    try:
        lam = conn.client("lambda")
        fn, _ = legacy_function_of(runbook)
        conf = lam.get_function_configuration(FunctionName=fn)
        assert conf["Runtime"] == "python3.8"
        with pytest.raises(lam.exceptions.InvalidParameterValueException) as refused:
            lam.create_function(
                FunctionName="made-after-the-block",
                Runtime="python3.8",
                Role=conf["Role"],
                Handler="index.handler",
                Code={"ZipFile": handler_zip()},
            )
        assert "no longer supported for creating" in str(refused.value)
        made = lam.create_function(
            FunctionName="made-on-a-supported-runtime",
            Runtime="python3.12",
            Role=conf["Role"],
            Handler="index.handler",
            Code={"ZipFile": handler_zip()},
        )
        assert made["Runtime"] == "python3.12"
    finally:
        stop_world(record)
