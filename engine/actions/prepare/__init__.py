"""Phase 1 actions: the inventory diff, backups, monitoring (dashboard and alarms)."""
