"""Opening and closing accounts. Account ids are derived from the account's key, so every
domain can name an account (``account_id(...)``) without a look-up."""

from __future__ import annotations

import hashlib
import re
from collections.abc import Sequence

from kassa.core import clock
from kassa.core.db import Connection, Database
from kassa.core.errors import InvalidRequest, ResourceMissing
from kassa.core.money import currency as parse_currency
from kassa.ledger import repository
from kassa.ledger.errors import AccountConflict
from kassa.ledger.model import AccountSpec

_NAME = re.compile(r"^[a-z0-9][a-z0-9_:.\-]{0,63}$")
_ALPHABET = "0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz"


def account_id(merchant_id: str, livemode: bool, owner: str, purpose: str, currency: str) -> str:
    """The id of the account with this key: ``la_`` and 22 base62 characters of a SHA-256
    of the key (ids never collide across merchants or modes)."""
    key = "\x1f".join((merchant_id, "live" if livemode else "test", owner, purpose, currency))
    n = int.from_bytes(hashlib.sha256(key.encode()).digest()[:16], "big")
    chars = []
    for _ in range(22):
        n, r = divmod(n, 62)
        chars.append(_ALPHABET[r])
    return "la_" + "".join(chars)


def spec_id(merchant_id: str, livemode: bool, spec: AccountSpec) -> str:
    return account_id(merchant_id, livemode, spec.owner, spec.purpose, spec.currency.lower())


def _check(spec: AccountSpec) -> None:
    for name in ("owner", "purpose"):
        if not _NAME.match(getattr(spec, name)):
            raise InvalidRequest(f"Invalid ledger account {name}: {getattr(spec, name)!r}")
    parse_currency(spec.currency)
    if not 1 <= spec.shards <= 64:
        raise InvalidRequest("A ledger account has 1 to 64 shards", param="shards")
    if spec.debits_must_not_exceed_credits and spec.credits_must_not_exceed_debits:
        raise InvalidRequest("An account takes at most one balance limit")
    limited = spec.debits_must_not_exceed_credits or spec.credits_must_not_exceed_debits
    if spec.shards > 1 and limited:
        raise InvalidRequest("A split account cannot carry a balance limit", param="shards")


async def open_accounts_in(
    conn: Connection, merchant_id: str, livemode: bool, specs: Sequence[AccountSpec]
) -> list[str]:
    """Open the accounts (no money moves); those that exist are kept as they are, and must
    have the same flags. Returns their ids in order.

    An existing account keeps its split even if ``spec`` asks for another: only accounts
    without limits are split, postings use the stored split and reads sum whatever rows
    exist, so the chart can split an account further (``payments_0005``) without code and
    schema having to change at the same instant."""
    for spec in specs:
        _check(spec)
    ids = [spec_id(merchant_id, livemode, s) for s in specs]
    # Usually they all exist already: one read, no write.
    stored = {r["id"]: r for r in await repository.get_accounts(conn, merchant_id, ids)}
    missing = [(aid, s) for aid, s in zip(ids, specs, strict=True) if aid not in stored]
    if missing:
        now = clock.now()
        rows = [
            (
                merchant_id,
                aid,
                shard,
                livemode,
                s.owner,
                s.purpose,
                s.currency.lower(),
                s.shards,
                s.debits_must_not_exceed_credits,
                s.credits_must_not_exceed_debits,
                now,
                s.metadata,
            )
            for aid, s in missing
            for shard in range(s.shards)
        ]
        await repository.insert_accounts(conn, sorted(rows, key=lambda r: (r[1], r[2])))
        stored = {r["id"]: r for r in await repository.get_accounts(conn, merchant_id, ids)}
    for aid, s in zip(ids, specs, strict=True):
        row = stored[aid]
        for field in ("debits_must_not_exceed_credits", "credits_must_not_exceed_debits"):
            if row[field] != getattr(s, field):
                raise AccountConflict(aid, field)
    return ids


async def open_accounts(
    db: Database, merchant_id: str, livemode: bool, specs: Sequence[AccountSpec]
) -> list[str]:
    """Open the accounts in their own transaction: see ``open_accounts_in``."""
    async with db.transaction() as conn:
        return await open_accounts_in(conn, merchant_id, livemode, specs)


async def close_account(db: Database, merchant_id: str, account_id: str) -> None:
    """Close an account: new transfers touching it fail (``*_account_already_closed``); voids
    of its pending transfers still go through so holds can be released."""
    async with db.transaction() as conn:
        if await repository.close_account(conn, merchant_id, account_id) == 0:
            raise ResourceMissing("ledger account", account_id)
