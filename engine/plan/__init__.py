"""A runbook file loaded, cross-checked and bound to its actions and checks; `runbook plan`."""
