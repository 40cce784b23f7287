"""The headless CLI: `runbook <command>`. Exit codes are a contract (engine/cli/codes.py).

Modules: app (entry and dispatch), parser + values (flags, help), output (Printer, lines),
terminal (prompts, signals), outcome (end lines, resume hints), driving (Workspace), errors,
local_commands, remote (finding a detached engine), detached_run, detached_commands."""
