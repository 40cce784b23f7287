"""Opening a run: runbook + target + journal + lock -> a ready Engine (CLI and console share it)."""
