"""The runbook as data: its pydantic model and the pure item transforms it configures."""
