"""The ledger: the book of record every money-moving feature posts to.

Accounts per (merchant, mode, owner, purpose, currency) with TigerBeetle's four counters and
balance limits; append-only transfers (single-phase, or pending → post/void), linked chains,
journal entries, idempotency by client-chosen id; batch posting in one round trip; balances
now and at a point in time; a verifier that replays everything. See ``docs/ledger.md``.
"""
