"""migrate_entity, how it writes, its per-item ledger, resume state and inverses."""
