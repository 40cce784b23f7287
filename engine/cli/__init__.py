"""The headless CLI: `runbook <command>`. Exit codes are a contract (see EXIT_*).

A package of small modules; this file keeps the names others import from `engine.cli`."""

from engine.cli.app import *  # noqa: F403
from engine.cli.app import _err, _need_remote, _print, _workspace  # noqa: F401
