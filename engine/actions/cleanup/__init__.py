"""Phase 5 deletions (functions, API routes, tables), archived first."""
