"""What both variants share: domain, settings, schema, API contract, faults, supervisor."""
