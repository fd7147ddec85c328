"""Stripe's HTTP conventions, reusable by every resource: form-encoded bodies with bracket
keys, parameter validation with Stripe errors, pagination, expansion and idempotency."""
