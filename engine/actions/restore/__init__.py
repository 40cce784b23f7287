"""Phase 5 restores: what a deletion removed, rebuilt from its archive or backup."""
