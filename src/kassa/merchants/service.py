"""Merchant accounts and API keys: creation, rotation with an overlap, authentication."""

from __future__ import annotations

import time
from dataclasses import dataclass, field
from datetime import timedelta
from typing import Any, Literal

from kassa.core import clock
from kassa.core.crypto import sha256_hex
from kassa.core.db import Connection, Database, Record
from kassa.core.errors import InvalidRequest, ResourceMissing
from kassa.core.http.context import ApiKeyIdentity
from kassa.core.ids import new_id, random_token
from kassa.core.money import currency as parse_currency
from kassa.merchants import repository
from kassa.merchants.errors import ExpiredApiKey, InvalidApiKey

KeyKind = Literal["secret", "publishable", "restricted"]
_PREFIX: dict[KeyKind, str] = {"secret": "sk", "publishable": "pk", "restricted": "rk"}
RESOURCES = frozenset(
    {
        "customers",
        "payment_intents",
        "charges",
        "refunds",
        "payment_methods",
        "balance",
        "events",
        "webhook_endpoints",
        "ledger",
        "account",
    }
)


@dataclass(frozen=True)
class IssuedKey:
    """A key as issued: the plaintext exists only in this object, shown to the caller once."""

    id: str
    kind: KeyKind
    livemode: bool
    secret: str
    permissions: dict[str, str] = field(default_factory=dict)

    def public(self) -> dict[str, Any]:
        return {
            "id": self.id,
            "kind": self.kind,
            "livemode": self.livemode,
            "key": self.secret,
            "permissions": self.permissions,
        }


@dataclass(frozen=True)
class NewMerchant:
    merchant: dict[str, Any]
    keys: list[IssuedKey]

    def key(self, kind: KeyKind, livemode: bool = False) -> str:
        return next(k.secret for k in self.keys if k.kind == kind and k.livemode == livemode)


def _display(secret: str) -> str:
    return f"{secret[:8]}…{secret[-4:]}"


async def _issue_key(
    conn: Connection,
    merchant_id: str,
    kind: KeyKind,
    livemode: bool,
    permissions: dict[str, str] | None = None,
    name: str | None = None,
) -> IssuedKey:
    mode = "live" if livemode else "test"
    secret = f"{_PREFIX[kind]}_{mode}_{random_token(32)}"
    row = await repository.insert_key(
        conn,
        id=new_id("key"),
        merchant_id=merchant_id,
        kind=kind,
        livemode=livemode,
        key_hash=sha256_hex(secret),
        plaintext=secret if kind == "publishable" else None,
        display=_display(secret),
        name=name,
        permissions=permissions or {},
        created_at=clock.now(),
    )
    return IssuedKey(row["id"], kind, livemode, secret, dict(permissions or {}))


def account_object(row: Record) -> dict[str, Any]:
    """The Stripe ``account`` object for a merchant."""
    return {
        "id": row["id"],
        "object": "account",
        "business_profile": {"name": row["name"]},
        "country": row["country"],
        "default_currency": row["default_currency"],
        "email": row["email"],
        "created": int(row["created_at"].timestamp()),
        "charges_enabled": row["kyc_status"] == "verified",
        "payouts_enabled": row["kyc_status"] == "verified",
        "details_submitted": row["kyc_status"] in ("pending", "verified"),
        "metadata": row["metadata"],
        "settings": {"dashboard": {"display_name": row["name"]}},
        "type": "standard",
    }


def _check_country(country: str) -> str:
    country = country.upper()
    if len(country) != 2 or not country.isalpha():
        raise InvalidRequest(f"Invalid country: {country}", param="country")
    return country


async def create_merchant(
    db: Database,
    *,
    name: str,
    country: str = "US",
    default_currency: str = "usd",
    email: str | None = None,
    platform_admin: bool = False,
) -> NewMerchant:
    """Open a merchant account with a secret and a publishable key in each mode."""
    if not name.strip():
        raise InvalidRequest("A merchant needs a name", param="name")
    country = _check_country(country)
    cur = parse_currency(default_currency, param="default_currency").code
    async with db.transaction() as conn:
        row = await repository.insert_merchant(
            conn,
            id=new_id("acct"),
            name=name,
            email=email,
            country=country,
            default_currency=cur,
            platform_admin=platform_admin,
            created_at=clock.now(),
        )
        keys = [
            await _issue_key(conn, row["id"], kind, livemode)
            for livemode in (False, True)
            for kind in ("secret", "publishable")
        ]
    return NewMerchant(account_object(row), keys)


async def create_restricted_key(
    db: Database,
    merchant_id: str,
    permissions: dict[str, str],
    *,
    livemode: bool = False,
    name: str | None = None,
) -> IssuedKey:
    """Issue a restricted key granting ``read``/``write``/``none`` per resource."""
    for resource, access in permissions.items():
        if resource not in RESOURCES:
            raise InvalidRequest(f"Unknown resource: {resource}", param="permissions")
        if access not in ("none", "read", "write"):
            raise InvalidRequest(f"Invalid permission: {access}", param="permissions")
    async with db.transaction() as conn:
        if await repository.get_merchant(conn, merchant_id) is None:
            raise ResourceMissing("account", merchant_id)
        return await _issue_key(conn, merchant_id, "restricted", livemode, permissions, name)


async def rotate_key(
    db: Database,
    merchant_id: str,
    kind: KeyKind = "secret",
    *,
    livemode: bool = False,
    overlap: timedelta = timedelta(hours=24),
) -> tuple[IssuedKey, list[str]]:
    """Issue a new key of ``kind``; the old ones keep working for ``overlap``, then expire."""
    async with db.transaction() as conn:
        if await repository.get_merchant(conn, merchant_id) is None:
            raise ResourceMissing("account", merchant_id)
        new = await _issue_key(conn, merchant_id, kind, livemode)
        expired = await repository.expire_keys(
            conn, merchant_id, kind, livemode, clock.now() + overlap, new.id
        )
    return new, expired


async def get_merchant(db: Database, merchant_id: str) -> dict[str, Any]:
    async with db.connection() as conn:
        row = await repository.get_merchant(conn, merchant_id)
        if row is None:
            raise ResourceMissing("account", merchant_id)
        keys = await repository.list_keys(conn, merchant_id)
    account = account_object(row)
    account["api_keys"] = [
        {
            "id": k["id"],
            "kind": k["kind"],
            "livemode": k["livemode"],
            "display": k["display"],
            "key": k["plaintext"],
            "permissions": k["permissions"],
            "expires_at": k["expires_at"].isoformat() if k["expires_at"] else None,
        }
        for k in keys
    ]
    return account


async def list_merchants(db: Database) -> list[dict[str, Any]]:
    async with db.connection() as conn:
        return [account_object(r) for r in await repository.list_merchants(conn)]


async def find_merchant_by_name(db: Database, name: str) -> dict[str, Any] | None:
    async with db.connection() as conn:
        row = await repository.find_merchant_by_name(conn, name)
    return account_object(row) if row else None


class Authenticator:
    """Turns an API key into an ``ApiKeyIdentity``.

    Results are cached in-process for ``ttl`` seconds so most requests skip a round trip;
    a rotated key's expiry is therefore enforced within ``ttl`` seconds."""

    def __init__(self, db: Database, ttl: float = 10.0) -> None:
        self.db = db
        self.ttl = ttl
        self._cache: dict[str, tuple[float, ApiKeyIdentity, float | None]] = {}

    async def __call__(self, secret: str) -> ApiKeyIdentity:
        digest = sha256_hex(secret)
        now = time.monotonic()
        hit = self._cache.get(digest)
        if hit is None or hit[0] < now:
            async with self.db.connection() as conn:
                row = await repository.key_for_hash(conn, digest)
            if row is None:
                raise InvalidApiKey(_display(secret) if len(secret) > 12 else "***")
            identity = ApiKeyIdentity(
                key_id=row["id"],
                merchant_id=row["merchant_id"],
                livemode=row["livemode"],
                kind=row["kind"],
                permissions=dict(row["permissions"]),
                platform_admin=row["platform_admin"],
                display=row["display"],
            )
            expires = row["expires_at"].timestamp() if row["expires_at"] else None
            hit = (now + self.ttl, identity, expires)
            if len(self._cache) > 100_000:
                self._cache.clear()
            self._cache[digest] = hit
        _, identity, expires = hit
        if expires is not None and expires <= clock.timestamp():
            raise ExpiredApiKey(identity.display)
        return identity
