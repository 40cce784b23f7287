"""The headless rehearsal's shared pieces: its time scale and the run's status as JSON."""

from __future__ import annotations

import json

from engine.cli.app import main

TIME_SCALE = "1000000"  # a 24 h soak takes 0.09 s


def status(common: list[str], capsys) -> dict:
    capsys.readouterr()
    assert main(["status", "--json", *common]) == 0
    return json.loads(capsys.readouterr().out)
