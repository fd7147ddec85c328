"""Customers through the official stripe SDK against a live Kassa API: every convention the
foundation promises (CRUD, lists, metadata, expand, errors, idempotency, isolation)."""

from __future__ import annotations

import uuid
from concurrent.futures import ThreadPoolExecutor

import pytest
import stripe

from kassa.merchants import service as merchants
from tests.factories import new_merchant, stripe_client


@pytest.fixture
async def merchant(db):
    return await new_merchant(db)


@pytest.fixture
def client(api_url, merchant):
    return stripe_client(api_url, merchant.key("secret"))


def test_customer_lifecycle(client):
    cus = client.v1.customers.create(
        {
            "email": "ada@example.com",
            "name": "Ada Lovelace",
            "phone": "+441234567",
            "description": "first",
            "address": {"line1": "1 Analytical St", "city": "London", "country": "GB"},
            "metadata": {"order": "42", "tier": "gold"},
        }
    )
    assert cus.id.startswith("cus_")
    assert cus.object == "customer"
    assert cus.livemode is False
    assert cus.address.city == "London"

    got = client.v1.customers.retrieve(cus.id)
    assert (got.email, got.name, got.phone) == ("ada@example.com", "Ada Lovelace", "+441234567")
    assert got.metadata.to_dict() == {"order": "42", "tier": "gold"}

    updated = client.v1.customers.update(
        cus.id, {"name": "Ada King", "description": "", "metadata": {"tier": "", "new": "x"}}
    )
    assert updated.name == "Ada King"
    assert updated.description is None
    assert updated.email == "ada@example.com"  # untouched fields keep their values
    assert updated.metadata.to_dict() == {"order": "42", "new": "x"}

    cleared = client.v1.customers.update(cus.id, {"metadata": ""})
    assert cleared.metadata.to_dict() == {}

    deleted = client.v1.customers.delete(cus.id)
    assert deleted.deleted is True
    again = client.v1.customers.retrieve(cus.id)
    assert again.deleted is True
    with pytest.raises(stripe.InvalidRequestError) as err:
        client.v1.customers.update(cus.id, {"name": "ghost"})
    assert err.value.http_status == 404


def test_list_auto_paging_250_and_filters(api_url, db, merchant):
    client = stripe_client(api_url, merchant.key("secret"))
    created = [client.v1.customers.create({"email": f"u{i}@example.com"}).id for i in range(250)]
    seen = [c.id for c in client.v1.customers.list({"limit": 100}).auto_paging_iter()]
    assert seen == list(reversed(created))  # newest first, each exactly once

    page = client.v1.customers.list({"limit": 3, "starting_after": created[10]})
    assert [c.id for c in page.data] == [created[9], created[8], created[7]]
    assert page.has_more is True
    before = client.v1.customers.list({"limit": 3, "ending_before": created[10]})
    assert [c.id for c in before.data] == [created[13], created[12], created[11]]

    by_email = client.v1.customers.list({"email": "u7@example.com"})
    assert [c.id for c in by_email.data] == [created[7]]
    assert by_email.url == "/v1/customers"

    newest = client.v1.customers.retrieve(created[-1])
    in_range = client.v1.customers.list({"created": {"gte": newest.created}, "limit": 100})
    assert created[-1] in [c.id for c in in_range.data]
    assert client.v1.customers.list({"created": {"gt": newest.created}}).data == []


def test_invalid_request_names_the_param(client):
    with pytest.raises(stripe.InvalidRequestError) as err:
        client.v1.customers.create({"email": "x" * 600})
    assert err.value.param == "email"
    with pytest.raises(stripe.InvalidRequestError) as err:
        client.v1.customers.create({"nickname": "x"})
    assert err.value.param == "nickname"
    assert "unknown parameter" in err.value.user_message
    with pytest.raises(stripe.InvalidRequestError) as err:
        client.v1.customers.create({"metadata": {"k" * 41: "v"}})
    assert err.value.param == "metadata"
    with pytest.raises(stripe.InvalidRequestError) as err:
        client.v1.customers.list({"limit": 101})
    assert err.value.param == "limit"
    with pytest.raises(stripe.InvalidRequestError) as err:
        client.v1.customers.retrieve("cus_doesnotexist")
    assert err.value.http_status == 404
    assert err.value.code == "resource_missing"


def test_expand_of_unknown_path_is_rejected_before_acting(client, merchant):
    before = client.v1.customers.list({"limit": 100}).data
    with pytest.raises(stripe.InvalidRequestError) as err:
        client.v1.customers.create({"email": "e@example.com", "expand": ["nonsense"]})
    assert err.value.param == "expand"
    assert client.v1.customers.list({"limit": 100}).data == before
    with pytest.raises(stripe.InvalidRequestError) as err:
        client.v1.customers.list({"expand": ["customer"]})
    assert err.value.param == "expand"


def test_authentication_errors(api_url):
    with pytest.raises(stripe.AuthenticationError):
        stripe_client(api_url, "sk_test_not_a_real_key_000000").v1.customers.list()


async def test_restricted_key_permissions(api_url, db, merchant):
    read_only = await merchants.create_restricted_key(
        db, merchant.merchant["id"], {"customers": "read"}
    )
    rk = stripe_client(api_url, read_only.secret)
    assert rk.v1.customers.list().object == "list"
    with pytest.raises(stripe.PermissionError):
        rk.v1.customers.create({"email": "no@example.com"})
    nothing = await merchants.create_restricted_key(db, merchant.merchant["id"], {})
    with pytest.raises(stripe.PermissionError):
        stripe_client(api_url, nothing.secret).v1.customers.list()
    with pytest.raises(stripe.PermissionError):
        stripe_client(api_url, merchant.key("publishable")).v1.customers.list()


def test_idempotency_replay_and_mismatch(client):
    key = f"idem-{uuid.uuid4()}"
    first = client.v1.customers.create({"email": "i@example.com"}, {"idempotency_key": key})
    second = client.v1.customers.create({"email": "i@example.com"}, {"idempotency_key": key})
    assert second.id == first.id
    assert second.last_response.headers.get("Idempotent-Replayed") == "true"
    with pytest.raises(stripe.IdempotencyError):
        client.v1.customers.create({"email": "other@example.com"}, {"idempotency_key": key})


def test_fifty_concurrent_creates_with_one_key_make_one_customer(client):
    key = f"race-{uuid.uuid4()}"
    email = f"race-{uuid.uuid4().hex[:8]}@example.com"

    def create(_: int) -> str:
        return client.v1.customers.create({"email": email}, {"idempotency_key": key}).id

    with ThreadPoolExecutor(max_workers=50) as pool:
        ids = list(pool.map(create, range(50)))
    assert len(set(ids)) == 1
    assert [c.id for c in client.v1.customers.list({"email": email}).data] == [ids[0]]


async def test_merchants_and_modes_are_isolated(api_url, db, merchant):
    other = await new_merchant(db)
    mine = stripe_client(api_url, merchant.key("secret"))
    theirs = stripe_client(api_url, other.key("secret"))
    live = stripe_client(api_url, merchant.key("secret", livemode=True))

    cus = mine.v1.customers.create({"email": "private@example.com"})
    for c in (theirs, live):
        with pytest.raises(stripe.InvalidRequestError) as err:
            c.v1.customers.retrieve(cus.id)
        assert err.value.http_status == 404
        with pytest.raises(stripe.InvalidRequestError):
            c.v1.customers.update(cus.id, {"name": "hijack"})
        with pytest.raises(stripe.InvalidRequestError):
            c.v1.customers.delete(cus.id)
        assert cus.id not in [x.id for x in c.v1.customers.list({"limit": 100}).data]

    live_cus = live.v1.customers.create({"email": "live@example.com"})
    assert live_cus.livemode is True
    with pytest.raises(stripe.InvalidRequestError):
        mine.v1.customers.retrieve(live_cus.id)
    assert mine.v1.customers.retrieve(cus.id).name is None  # nothing changed it
