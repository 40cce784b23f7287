"""Reading the legacy data: analyze_legacy and the userId -> companyId mapping."""
