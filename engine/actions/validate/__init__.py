"""validate_migration and its comparison of source and target."""
