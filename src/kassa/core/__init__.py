"""Plumbing with no business rules: database, ids, money, clock, errors, crypto, logging,
metrics and the HTTP conventions. Nothing in ``core`` imports a domain."""
