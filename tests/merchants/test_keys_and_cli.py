"""Merchant accounts and API keys: hashing at rest, rotation with overlap, the CLI."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from datetime import timedelta

import pytest
import stripe

from kassa.core import clock
from kassa.core.errors import InvalidRequest
from kassa.merchants import service
from kassa.merchants.errors import ExpiredApiKey
from tests.factories import new_merchant, stripe_client


async def test_secret_keys_are_stored_only_as_hashes(db):
    m = await new_merchant(db)
    secret = m.key("secret")
    async with db.connection() as conn:
        dump = await conn.fetchval("SELECT string_agg(t::text, ',') FROM api_keys t")
    assert secret not in dump
    assert m.key("publishable") in dump  # publishable keys are public by design


async def test_rotation_keeps_the_old_key_working_for_the_overlap(db, api_url):
    m = await new_merchant(db)
    old = m.key("secret")
    new, expiring = await service.rotate_key(
        db, m.merchant["id"], "secret", overlap=timedelta(hours=1)
    )
    assert len(expiring) == 1
    assert stripe_client(api_url, old).v1.customers.list().object == "list"
    assert stripe_client(api_url, new.secret).v1.customers.list().object == "list"
    auth = service.Authenticator(db, ttl=0)
    assert (await auth(old)).merchant_id == m.merchant["id"]
    clock.advance(3601)
    try:
        with pytest.raises(ExpiredApiKey):
            await auth(old)
        assert (await auth(new.secret)).merchant_id == m.merchant["id"]
    finally:
        clock.reset()


async def test_restricted_key_rejects_unknown_resources(db):
    m = await new_merchant(db)
    with pytest.raises(InvalidRequest):
        await service.create_restricted_key(db, m.merchant["id"], {"spaceships": "write"})
    with pytest.raises(InvalidRequest):
        await service.create_restricted_key(db, m.merchant["id"], {"customers": "admin"})


def test_cli_creates_a_merchant_whose_keys_work(database_url, api_url):
    out = subprocess.run(
        [sys.executable, "-m", "kassa", "merchants", "create", "--name", "CLI Shop", "--json"],
        env={**os.environ, "KASSA_DATABASE_URL": database_url},
        check=True,
        capture_output=True,
        text=True,
    )
    created = json.loads(out.stdout)
    assert created["id"].startswith("acct_")
    assert created["secret_key"].startswith("sk_test_")
    assert created["publishable_key"].startswith("pk_test_")
    client = stripe_client(api_url, created["secret_key"])
    assert client.v1.customers.create({"name": "via cli"}).name == "via cli"
    account = client.v1.accounts.retrieve_current()
    assert (account.id, account.business_profile.name) == (created["id"], "CLI Shop")
    shown = subprocess.run(
        [sys.executable, "-m", "kassa", "merchants", "show", created["id"], "--json"],
        env={**os.environ, "KASSA_DATABASE_URL": database_url},
        check=True,
        capture_output=True,
        text=True,
    )
    keys = json.loads(shown.stdout)["api_keys"]
    assert len(keys) == 4
    assert all(k["key"] is None for k in keys if k["kind"] == "secret")
    with pytest.raises(stripe.AuthenticationError):
        stripe_client(api_url, created["secret_key"] + "x").v1.customers.list()
